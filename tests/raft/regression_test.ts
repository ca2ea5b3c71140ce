/**
 * Regression tests for bugs found in lib/raft, each with the scenario that exposed it.
 */

import assert from "node:assert/strict";
import { MessageType } from "../../lib/raft/mod.ts";
import { HEARTBEAT_TICKS, type Network, newCluster } from "./_network.ts";

function tickAndSettle(net: Network, id: string, ticks: number): void {
  for (let i = 0; i < ticks; i++) {
    net.node(id).tick();
    net.stabilize();
  }
}

// Bug: `pendingReadsMax` bounds only reads asked on this node. A forwarded ReadIndex goes straight
// to #addRead in #stepLeader with no bound check, so followers can grow the leader's read queue
// without limit, and they are never told to back off.
// Fix (raft.ts, #stepLeader, ReadIndex): apply the same check as readIndex() and answer
// `ReadIndexResp { context: m.context, reject: true }` when
// `#readOnly.size() + #readsAwaitingCommit.length >= #pendingReadsMax`.
Deno.test("§6.4 forwarded reads are refused beyond the leader's pendingReadsMax", () => {
  const net = newCluster(["a", "b", "c"], { pendingReadsMax: 2 });
  net.campaign("a");
  net.dropWhere((m) => m.type === MessageType.HeartbeatResp); // keep the reads pending
  for (let id = 1; id <= 4; id++) net.node("b").readIndex(id);
  net.stabilize();
  assert.deepEqual(net.record("b").failedReads, [3, 4]);
});

// Bug: reads waiting for a heartbeat round hang forever when a membership change leaves the
// leader as the only voter: the removed peer's progress is deleted, so no heartbeat is sent and
// no ack can ever complete the round. Reads asked afterwards are served at once (single-voter
// path in #addRead), overtaking the stuck ones. ReadOnlyQueue.releaseAll() is documented as
// "used when the leader is the only voter" but nothing calls it.
// Fix (raft.ts, #refreshConf, leader branch): after updating progress, if the configuration's
// only voter is this node, `for (const r of this.#readOnly.releaseAll()) this.#serveRead(r);`.
// This is safe: with the new configuration in the log, no other node can be elected.
Deno.test("§6.4 pending reads are served when the leader becomes the only voter", () => {
  const net = newCluster(["a", "b"]);
  net.campaign("a");
  const a = net.node("a");
  net.dropWhere((m) => m.type === MessageType.HeartbeatResp);
  a.readIndex(1);
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, []);
  net.heal();
  assert.equal(a.proposeConfChange({ type: "remove", node: "b" }).ok, true);
  net.stabilize();
  tickAndSettle(net, "a", 5 * HEARTBEAT_TICKS);
  assert.deepEqual(a.conf.voters, ["a"]);
  assert.deepEqual(net.record("a").readStates, [{ requestId: 1, index: 2 }]);
});
