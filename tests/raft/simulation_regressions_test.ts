/**
 * Hand-written replays of the lib/raft bugs the cluster simulator found, one scenario each, so
 * that each fix stays fixed even if the simulator's seeds come to mean different runs.
 *
 * The scenarios drive bare `Raft` objects through a tiny in-test network that persists every
 * Ready at once and delivers messages only when asked, optionally dropping some.
 */

import assert from "node:assert/strict";
import {
  bootstrapState,
  type ConfState,
  EntryType,
  makeMessage,
  type Message,
  MessageType,
  type NodeId,
  Raft,
  type RaftInitialState,
  type RaftOptions,
  Role,
} from "../../lib/raft/mod.ts";

const ELECTION_TICKS = 10;
const HEARTBEAT_TICKS = 1;

/** A few nodes, an in-order message queue, and disks that are written the moment asked. */
class MiniNet {
  readonly nodes = new Map<NodeId, Raft>();
  readonly disks = new Map<NodeId, RaftInitialState>();
  queue: Message[] = [];
  /** Messages for which this returns true are lost. */
  drop: (m: Message) => boolean = () => false;
  readonly #options: Partial<RaftOptions>;

  constructor(ids: NodeId[], conf: ConfState, options: Partial<RaftOptions> = {}) {
    this.#options = options;
    for (const id of ids) {
      this.disks.set(id, bootstrapState(conf));
      this.start(id);
    }
  }

  /** (Re)starts `id` from what its disk holds. */
  start(id: NodeId): Raft {
    const disk = this.disks.get(id)!;
    const raft = new Raft(
      {
        id,
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        // Always the shortest randomized timeout: the scenarios count ticks exactly.
        random: () => 0,
        ...this.#options,
      },
      { hardState: { ...disk.hardState }, snapshot: disk.snapshot, entries: disk.entries.slice() },
    );
    this.nodes.set(id, raft);
    return raft;
  }

  node(id: NodeId): Raft {
    return this.nodes.get(id)!;
  }

  /** Persists and "sends" every node's Ready until none is left (no delivery). */
  flush(): void {
    for (let again = true; again;) {
      again = false;
      for (const [id, r] of this.nodes) {
        if (!r.hasReady()) continue;
        again = true;
        const rd = r.ready();
        const disk = this.disks.get(id)!;
        if (rd.hardState !== null) disk.hardState = { ...rd.hardState };
        if (rd.entries.length > 0) {
          const keep = rd.entries[0].index - (disk.snapshot?.index ?? 0) - 1;
          disk.entries = disk.entries.slice(0, keep).concat(rd.entries);
        }
        for (const m of [...rd.messagesEarly, ...rd.messages]) {
          if (!this.drop(m)) this.queue.push(m);
        }
        r.advance(rd);
      }
    }
  }

  /** Delivers queued messages (and what they cause) until the network is quiet. */
  settle(): void {
    this.flush();
    for (let rounds = 0; this.queue.length > 0; rounds++) {
      assert.ok(rounds < 10_000, "the network never went quiet");
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.nodes.get(m.to)?.step(m);
      this.flush();
    }
  }

  /** Ticks `ids` once each, `times` times, settling after each round. */
  tick(ids: NodeId[], times: number): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.node(id).tick();
      this.settle();
    }
  }

  leaders(): NodeId[] {
    return [...this.nodes].filter(([, r]) => r.role === Role.Leader).map(([id]) => id);
  }
}

function increment(n: number): Uint8Array {
  return new Uint8Array([n]);
}

// Found by the simulator (seeds with inflightMax 1 and a lossy network): in Replicate state the
// leader stops sending once its in-flight window is full, and only AppResp frees the window. When
// every append in the window was lost no AppResp ever comes, and the follower was never caught
// up again. Fix: a heartbeat answer frees the oldest slot of a full window (as etcd does), so one
// more append goes out and its rejection sends the leader back to probing.
Deno.test("simulator regression: a window full of lost appends is freed by a heartbeat answer", () => {
  const net = new MiniNet(["n1", "n2", "n3"], { voters: ["n1", "n2", "n3"], learners: [] }, {
    inflightMax: 1,
  });
  net.node("n1").campaign();
  net.settle();
  assert.deepEqual(net.leaders(), ["n1"]);
  // Lose the appends carrying new entries to n3; everything else gets through.
  net.drop = (m) => m.type === MessageType.App && m.to === "n3" && m.entries.length > 0;
  for (let i = 1; i <= 3; i++) {
    assert.equal(net.node("n1").propose([increment(i)]).ok, true);
    net.settle();
  }
  assert.equal(net.node("n1").commitIndex, 5, "n1 and n2 commit without n3");
  assert.equal(net.node("n3").lastIndex, 2);
  net.drop = () => false;
  net.tick(["n1"], 5 * HEARTBEAT_TICKS);
  assert.equal(net.node("n3").lastIndex, 5, "n3 caught up after the lost window");
  assert.equal(net.node("n3").commitIndex, 5);
});

// Found by the simulator (membership seeds): a leader that proposes its own removal applies the
// new configuration at once and stops being promotable. If it then loses leadership before the
// change commits (crash, CheckQuorum), it may be the only node holding the longest log: the
// remaining voters still use the old configuration, need its vote, and it refuses them because
// their logs are behind, while it never campaigns itself. The group stalls forever.
// Fix: `promotable` also holds while the latest configuration (which removes the node) is not
// known committed and the configuration before it has the node as a voter; the node wins with the
// new configuration's votes, commits its removal, and hands over.
Deno.test("simulator regression: a leader that lost leadership while removing itself can still campaign", () => {
  const net = new MiniNet(["n1", "n2"], { voters: ["n1", "n2"], learners: [] });
  net.node("n1").campaign();
  net.settle();
  assert.deepEqual(net.leaders(), ["n1"]);
  // n2 hears nothing more: n1's removal and the entries after it stay on n1 alone.
  net.drop = (m) => m.to === "n2";
  assert.equal(net.node("n1").proposeConfChange({ type: "remove", node: "n1" }).ok, true);
  assert.equal(net.node("n1").propose([increment(1)]).ok, true);
  net.settle();
  assert.deepEqual(net.node("n1").conf.voters, ["n2"]);
  assert.equal(net.node("n1").commitIndex, 2, "the removal needs n2, which heard nothing");
  // n1 crashes and restarts: it knows nothing committed beyond its log's start.
  net.start("n1");
  net.drop = () => false;
  assert.equal(net.node("n1").promotable, true, "the removal is not known committed");
  net.tick(["n1", "n2"], 20 * ELECTION_TICKS);
  const leaders = net.leaders();
  assert.deepEqual(leaders, ["n2"], "n2 leads the new configuration in the end");
  assert.deepEqual(net.node("n2").conf.voters, ["n2"]);
  assert.equal(net.node("n2").commitIndex, net.node("n2").lastIndex);
  const n2Log = net.disks.get("n2")!.entries;
  assert.ok(
    n2Log.some((e) => e.type === EntryType.Normal && e.data.length === 1 && e.data[0] === 1),
    "the entry n1 appended after its removal survived",
  );
  assert.equal(net.node("n1").promotable, false, "once committed, the removal stops n1");
});

// Found by the simulator (membership seeds): a node that may not campaign (a learner, a new empty
// node, a removed one) still reset its election clock at every randomized timeout, so its
// "I heard from a leader recently" lease never ran out, and it ignored every candidate as
// disruptive. A new voter that needs such a node's vote could then never be elected.
// Fix: only a node that campaigns restarts its election clock on timeout.
Deno.test("simulator regression: a node that may not campaign lets its leader lease run out", () => {
  const conf = { voters: ["n1", "n2"], learners: ["n3"] };
  const n3 = new Raft(
    { id: "n3", electionTicks: ELECTION_TICKS, heartbeatTicks: HEARTBEAT_TICKS, random: () => 0 },
    bootstrapState(conf),
  );
  n3.step(makeMessage(MessageType.Heartbeat, { from: "n1", to: "n3", term: 2, commit: 1 }));
  assert.equal(n3.leader, "n1");
  n3.ready();
  for (let i = 0; i < ELECTION_TICKS; i++) n3.tick();
  assert.equal(n3.promotable, false);
  // A full election timeout without its leader: a PreVote must now get an answer.
  n3.step(
    makeMessage(MessageType.PreVote, { from: "n2", to: "n3", term: 3, index: 1, logTerm: 1 }),
  );
  const answers = n3.ready().messages.filter((m) => m.type === MessageType.PreVoteResp);
  assert.equal(answers.length, 1, "the PreVote was not ignored as disruptive");
  assert.equal(answers[0].reject, false);
});

// Found by the simulator (a lease-read seed with leadership transfers): a leader sends TimeoutNow,
// the transfer is abandoned after an election timeout, and the leader's next heartbeat round
// renews its lease. But the TimeoutNow is still on its way: the target campaigns with votes that
// ignore the voters' leases, wins the next term, and commits increments while the old leader
// serves lease reads that miss them.
// Fix: once a leader has sent TimeoutNow, it serves no lease read for the rest of its term.
Deno.test("simulator regression: no lease reads once TimeoutNow went out, even after the transfer is abandoned", () => {
  const net = new MiniNet(["n1", "n2", "n3"], { voters: ["n1", "n2", "n3"], learners: [] });
  net.node("n1").campaign();
  net.settle();
  net.tick(["n1"], HEARTBEAT_TICKS); // a heartbeat round confirms n1's lease
  const n1 = net.node("n1");
  n1.readIndex(1, { lease: true });
  assert.deepEqual(n1.ready().readStates, [{ requestId: 1, index: 2 }], "lease reads work");
  // The TimeoutNow to n2 is held up in the network.
  const held: Message[] = [];
  net.drop = (m) => m.type === MessageType.TimeoutNow && held.push(m) > 0;
  assert.equal(n1.transferLeader("n2"), null);
  net.settle();
  assert.equal(held.length, 1);
  net.drop = () => false;
  // The transfer is abandoned; heartbeats go on and are answered.
  net.tick(["n1"], ELECTION_TICKS + HEARTBEAT_TICKS);
  assert.equal(n1.role, Role.Leader);
  assert.equal(n1.propose([increment(1)]).ok, true, "the transfer was abandoned");
  net.settle();
  n1.readIndex(2, { lease: true });
  assert.deepEqual(n1.ready().readStates, [], "no lease read after TimeoutNow went out");
  // Why: the held TimeoutNow arrives, n2 wins term 3 although n3 heard from n1 just now.
  net.queue.push(...held);
  net.settle();
  assert.deepEqual(net.leaders(), ["n2"]);
  assert.equal(net.node("n2").term, 3);
});

// Found by the simulator: a follower that restarts forgets the leader lease it was honouring,
// and would grant its vote at once. A candidate cut off from the leader could then win a new term
// and commit increments while the old leader, still within its lease, serves lease reads that
// miss them. Fix: with `respectLeaseOnStart` (the node shell sets it), a node ignores vote
// requests for one election timeout after starting.
Deno.test("simulator regression: a follower restarted within the leader's lease does not vote at once", () => {
  const net = new MiniNet(["n1", "n2", "n3"], { voters: ["n1", "n2", "n3"], learners: [] }, {
    respectLeaseOnStart: true,
  });
  // Let the start-up guard of every node run out, then elect n1.
  net.tick(["n1", "n2", "n3"], ELECTION_TICKS);
  net.node("n1").campaign();
  net.settle();
  assert.equal(net.node("n1").role, Role.Leader);
  let preVotesOfN3 = 0;
  const cutN1N3 = (m: Message) =>
    (m.from === "n1" && m.to === "n3") || (m.from === "n3" && m.to === "n1");
  net.drop = (m) => {
    if (m.type === MessageType.PreVote && m.from === "n3") preVotesOfN3++;
    return cutN1N3(m);
  };
  // n3 hears nothing from n1 and campaigns every election timeout; n2, in n1's lease, ignores it.
  const all = ["n1", "n2", "n3"];
  while (preVotesOfN3 === 0) net.tick(all, 1);
  net.tick(all, 5);
  net.drop = (m) => m.from === "n1" || m.to === "n1";
  net.start("n2"); // n2 restarts: it must still refuse n3 for an election timeout
  for (let i = 0; i < 5; i++) net.tick(all, 1);
  assert.notEqual(net.node("n3").role, Role.Leader, "n3 won with the restarted n2's vote");
  const n1 = net.node("n1");
  assert.equal(n1.role, Role.Leader);
  const committed = Math.max(...all.map((id) => net.node(id).commitIndex));
  n1.readIndex(1, { lease: true });
  for (const rs of n1.ready().readStates) {
    assert.ok(rs.index >= committed, `lease read at ${rs.index} misses index ${committed}`);
  }
});
