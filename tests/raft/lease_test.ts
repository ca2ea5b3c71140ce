/**
 * Leader leases (lib/raft/raft.ts `#inLease`, lib/raft/read_only.ts): a lease read must never
 * miss a write committed by another leader, whatever election timeout each node was given.
 */

import assert from "node:assert/strict";
import {
  bootstrapState,
  type ConfState,
  MessageType,
  type NodeId,
  Role,
} from "../../lib/raft/mod.ts";
import { commands, ELECTION_TICKS, Network, newNode } from "./_network.ts";

const VOTERS: NodeId[] = ["n1", "n2", "n3"];
const CONF: ConfState = { voters: VOTERS, learners: [] };

/** A group where node `i` has election timeout `electionTicks[i]` and n1 leads with a lease. */
function leaderWithLease(electionTicks: number[]): Network {
  const net = new Network();
  VOTERS.forEach((id, i) => {
    net.add(newNode(id, bootstrapState(CONF), { electionTicks: electionTicks[i] }, i + 1));
  });
  net.campaign("n1");
  const n1 = net.node("n1");
  assert.equal(n1.role, Role.Leader);
  assert.equal(n1.propose(commands("before")).ok, true);
  net.stabilize();
  net.tick(["n1"], 1); // a heartbeat round, answered by both followers, confirms the lease
  net.stabilize();
  n1.readIndex(1, { lease: true });
  assert.deepEqual(n1.ready().readStates, [{ requestId: 1, index: n1.commitIndex }]);
  return net;
}

/**
 * Cuts leader n1 off, lets n2 and n3 elect a leader that commits a write, and asks n1 for a lease
 * read every tick: none may be served below that write.
 */
function cutOffAndCheckNoStaleRead(net: Network, ticksMax: number): void {
  const n1 = net.node("n1");
  const oldCommit = n1.commitIndex;
  net.isolate("n1");
  let newCommit = 0;
  let reads = 1;
  for (let tick = 1; tick <= ticksMax && n1.role === Role.Leader; tick++) {
    net.tick(VOTERS, 1);
    net.stabilize();
    const leader = ["n2", "n3"].find((id) => net.node(id).role === Role.Leader);
    if (leader !== undefined && newCommit === 0) {
      const l = net.node(leader);
      assert.equal(l.propose(commands("after")).ok, true);
      net.stabilize();
      newCommit = l.commitIndex;
      assert.ok(newCommit > oldCommit);
    }
    n1.readIndex(++reads, { lease: true });
    for (const rs of n1.ready().readStates) {
      assert.ok(
        newCommit === 0 || rs.index >= newCommit,
        `tick ${tick}: n1 served a lease read at index ${rs.index}, but ${newCommit} is committed`,
      );
    }
  }
  assert.ok(newCommit > 0, "n2 or n3 was elected and committed a write");
}

Deno.test("lease: a leader with a longer election timeout than its followers serves no stale read", () => {
  // n1's timeout is 3x the followers'. Its lease must follow the followers' promise (they ignore
  // candidates for 10 ticks after a heartbeat), not its own 30 ticks.
  const net = leaderWithLease([3 * ELECTION_TICKS, ELECTION_TICKS, ELECTION_TICKS]);
  cutOffAndCheckNoStaleRead(net, 3 * ELECTION_TICKS);
});

Deno.test("lease: the lease lasts 90% of the shortest election timeout among the acks", () => {
  const net = leaderWithLease([ELECTION_TICKS, 2 * ELECTION_TICKS, 4 * ELECTION_TICKS]);
  const n1 = net.node("n1");
  // Both followers acknowledged: the shortest promise is n2's 20 ticks, so 18 ticks of lease.
  net.isolate("n1");
  const served: number[] = [];
  for (let tick = 1; tick <= 20; tick++) {
    net.tick(["n1"], 1);
    n1.readIndex(100 + tick, { lease: true });
    if (n1.ready().readStates.length > 0) served.push(tick);
  }
  assert.deepEqual(served, Array.from({ length: 17 }, (_, i) => i + 1));
});

Deno.test("lease: a heartbeat answer carries the follower's own election timeout", () => {
  const net = leaderWithLease([ELECTION_TICKS, 25, 35]);
  const mark = net.sent.length;
  net.tick(["n1"], 1);
  net.stabilize();
  const answers = net.sentSince(mark, (m) => m.type === MessageType.HeartbeatResp);
  assert.deepEqual(
    answers.map((m) => [m.from, m.electionTicks]).sort(),
    [["n2", 25], ["n3", 35]],
  );
});

Deno.test("lease: a leader that grew its group from one voter holds no lease from that time", () => {
  // As after `counter recover --force-new-cluster`: n1 leads alone, confirms read rounds with its
  // own ack only, then adds n2 and n3. Once cut off, it must not serve lease reads while they
  // elect a leader and commit.
  const net = new Network();
  net.add(newNode("n1", bootstrapState({ voters: ["n1"], learners: [] }), {}, 1));
  for (const [i, id] of ["n2", "n3"].entries()) {
    net.add(
      newNode(id, { hardState: { term: 0, vote: "" }, snapshot: null, entries: [] }, {}, i + 2),
    );
  }
  net.campaign("n1");
  const n1 = net.node("n1");
  assert.equal(n1.role, Role.Leader);
  n1.readIndex(1, {}); // alone: served at once, after a round only n1 acknowledged
  net.tick(["n1"], 2);
  net.stabilize();
  // As the operator adds members back: each as a learner first (whose heartbeat answers confirm
  // rounds that n1's own ack already decided), then promoted.
  for (const id of ["n2", "n3"]) {
    for (const type of ["addLearner", "promote"] as const) {
      assert.ok(n1.proposeConfChange({ type, node: id }).ok, `${type} ${id}`);
      for (let i = 0; i < 5; i++) {
        net.tick(["n1"], 1); // heartbeats find the new member and bring it up to date
        net.stabilize();
      }
    }
  }
  assert.deepEqual(n1.conf.voters, ["n1", "n2", "n3"]);
  cutOffAndCheckNoStaleRead(net, 6 * ELECTION_TICKS);
});
