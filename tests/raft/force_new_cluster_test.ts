/**
 * Tests of `forceNewClusterState` (lib/raft/force_new_cluster.ts), the core of
 * `counter recover --force-new-cluster`: the state it builds, and, on small in-memory clusters,
 * that recovering ONE survivor and adding the others back empty never leaves two nodes with
 * different entries at the same index and term (issue 9, point 3). The old procedure, forcing
 * every survivor in place, did exactly that.
 */

import assert from "node:assert/strict";
import {
  bootstrapState,
  decodeConfState,
  type Entry,
  EntryType,
  forceNewClusterState,
  MessageType,
  type NodeId,
  type RaftInitialState,
} from "../../lib/raft/mod.ts";
import {
  commands,
  ELECTION_TICKS,
  entry,
  type Network,
  newCluster,
  newNode,
  type NodeRecord,
  text,
} from "./_network.ts";

const CONF3 = { voters: ["a", "b", "c"], learners: [] };

Deno.test("forceNewClusterState appends a one-voter config in a term above every term seen", () => {
  const recovered: RaftInitialState = {
    hardState: { term: 7, vote: "b" },
    snapshot: null,
    entries: [...bootstrapState(CONF3).entries, entry(2, 3, "x"), entry(3, 5, "y")],
  };
  const forced = forceNewClusterState(recovered, "a");
  assert.equal(forced.lastIndex, 3);
  assert.equal(forced.lastTerm, 5);
  assert.deepEqual(forced.entry.index, 4);
  assert.deepEqual(forced.entry.term, 8);
  assert.equal(forced.entry.type, EntryType.Config);
  assert.deepEqual(decodeConfState(forced.entry.data), { voters: ["a"], learners: [] });
  // No vote in the new term: the node has not voted in it.
  assert.deepEqual(forced.state.hardState, { term: 8, vote: "" });
  assert.deepEqual(forced.state.entries, [...recovered.entries, forced.entry]);
  // The input is left alone.
  assert.equal(recovered.entries.length, 3);
});

Deno.test("forceNewClusterState takes the last log term when it is above the hard state's", () => {
  // A hard state behind the log cannot be written by this project, but the term must still
  // exceed every term in the log.
  const recovered: RaftInitialState = {
    hardState: { term: 2, vote: "" },
    snapshot: null,
    entries: [...bootstrapState(CONF3).entries, entry(2, 6, "x")],
  };
  assert.equal(forceNewClusterState(recovered, "b").entry.term, 7);
});

Deno.test("forceNewClusterState continues after a snapshot when the log is empty", () => {
  const snapshot = { index: 40, term: 4, conf: CONF3, data: new Uint8Array([1]) };
  const forced = forceNewClusterState(
    { hardState: { term: 4, vote: "a" }, snapshot, entries: [] },
    "c",
  );
  assert.equal(forced.entry.index, 41);
  assert.equal(forced.entry.term, 5);
  assert.equal(forced.state.snapshot, snapshot);
  assert.deepEqual(forced.state.entries, [forced.entry]);
});

Deno.test("forceNewClusterState refuses a node that holds nothing", () => {
  assert.throws(
    () =>
      forceNewClusterState({ hardState: { term: 0, vote: "" }, snapshot: null, entries: [] }, "a"),
    /holds no log entry and no snapshot/,
  );
  assert.throws(() => forceNewClusterState(bootstrapState(CONF3), ""), /needs a node id/);
});

/** What a shell would have on disk for `rec`: its persisted hard state, snapshot and log. */
function persisted(rec: NodeRecord, initial: RaftInitialState): RaftInitialState {
  let hardState = initial.hardState;
  let snapshot = initial.snapshot;
  let log: Entry[] = [...initial.entries];
  for (const rd of rec.readies) {
    if (rd.snapshot !== null) {
      snapshot = rd.snapshot;
      log = [];
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      log = log.filter((e) => e.index < first).concat(rd.entries);
    }
    if (rd.hardState !== null) hardState = rd.hardState;
  }
  return { hardState, snapshot, entries: log };
}

/** The Normal entries `rec` applied, as text, with their index and term. */
function appliedCommands(rec: NodeRecord): string[] {
  return rec.applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
    .map((e) => `${e.index}@${e.term}:${text(e)}`);
}

/**
 * Raft's Log Matching property on what the nodes applied: two nodes that applied an entry at
 * the same index applied the same entry there. A violation is the divergence of issue 9.
 */
function assertAppliedAgree(net: Network, ids: NodeId[]): void {
  for (const x of ids) {
    for (const y of ids) {
      if (x >= y) continue;
      const byIndex = new Map(net.record(x).applied.map((e) => [e.index, e]));
      for (const e of net.record(y).applied) {
        const other = byIndex.get(e.index);
        if (other === undefined) continue;
        assert.deepEqual(
          { term: other.term, type: other.type, data: text(other) },
          { term: e.term, type: e.type, data: text(e) },
          `${x} and ${y} applied different entries at index ${e.index}`,
        );
      }
    }
  }
}

/**
 * Five nodes a..e. Leader a commits x1, x2 everywhere, is cut off and takes a write W that no one
 * else sees. b..e elect a leader in a later term, which commits Z (an acknowledged increment).
 * Then three nodes, the new leader among them, are lost for good: the survivors are a (with W
 * uncommitted) and `holder`, a follower that holds Z.
 */
function lostMajority(): { net: Network; holder: NodeId; lost: NodeId[] } {
  const ids = ["a", "b", "c", "d", "e"];
  const net = newCluster(ids);
  net.campaign("a");
  net.node("a").propose(commands("x1", "x2"));
  net.stabilize();
  net.isolate("a");
  net.node("a").propose(commands("W"));
  net.stabilize();
  const rest = ids.filter((id) => id !== "a");
  for (let i = 0; i < 4 * ELECTION_TICKS && net.leaders().length < 2; i++) {
    net.tick(rest);
    net.stabilize();
  }
  const leader = net.leaders().find((id) => id !== "a");
  assert.ok(leader !== undefined, "b..e elected a leader");
  net.node(leader).propose(commands("Z"));
  net.stabilize();
  assert.ok(appliedCommands(net.record(leader)).some((c) => c.endsWith(":Z")), "Z committed");
  const followers = rest.filter((id) => id !== leader);
  const holder = followers[0];
  const lost = [leader, ...followers.slice(1)];
  for (const id of lost) net.nodes.delete(id);
  net.heal();
  return { net, holder, lost };
}

/** Replaces node `id` by a process restarted from `state` (same id, given seed). */
function restart(net: Network, id: NodeId, state: RaftInitialState, seed: number): void {
  net.add(newNode(id, state, {}, seed));
}

/**
 * The new procedure: `recovered` is forced into a one-voter group, every other survivor is
 * wiped and added back (learner, then voter). Returns the ids now in the group.
 */
function recoverOneAndRejoin(
  net: Network,
  survivor: NodeId,
  others: NodeId[],
  initial: RaftInitialState,
): void {
  const forced = forceNewClusterState(persisted(net.record(survivor), initial), survivor);
  restart(net, survivor, forced.state, 11);
  for (const id of others) {
    restart(net, id, { hardState: { term: 0, vote: "" }, snapshot: null, entries: [] }, 12);
  }
  net.campaign(survivor);
  assert.equal(net.node(survivor).role, "leader");
  for (const id of others) {
    assert.ok(net.node(survivor).proposeConfChange({ type: "addLearner", node: id }).ok);
    net.stabilize();
    assert.ok(net.node(survivor).proposeConfChange({ type: "promote", node: id }).ok);
    net.stabilize();
  }
  net.node(survivor).propose(commands("after"));
  net.stabilize();
}

Deno.test("forcing the survivor that holds Z keeps Z, and the wiped survivor converges", () => {
  const { net, holder } = lostMajority();
  recoverOneAndRejoin(net, holder, ["a"], bootstrapState(CONF5));
  assertAppliedAgree(net, [holder, "a"]);
  const a = appliedCommands(net.record("a"));
  assert.deepEqual(a, appliedCommands(net.record(holder)).slice(-a.length));
  assert.ok(a.some((c) => c.endsWith(":Z")), "the acknowledged Z survived");
  assert.ok(!a.some((c) => c.endsWith(":W")), "W was never committed and is gone");
  assert.ok(a.some((c) => c.endsWith(":after")));
});

Deno.test("forcing the survivor that lacks Z loses Z everywhere, but no node diverges", () => {
  // The wrong survivor: what the recover preview warns about. Z is gone, W commits, and every
  // node agrees on that history.
  const { net, holder } = lostMajority();
  recoverOneAndRejoin(net, "a", [holder], bootstrapState(CONF5));
  assertAppliedAgree(net, [holder, "a"]);
  const fresh = appliedCommands(net.record(holder));
  assert.ok(fresh.some((c) => c.endsWith(":W")));
  assert.ok(!fresh.some((c) => c.endsWith(":Z")));
});

Deno.test("two survivors both forced stay separate one-node groups: no vote or entry crosses", () => {
  // Every node reset at once: each forced node's configuration names only itself, so its core
  // never sends the other a message; the shell's distinct cluster ids refuse them besides.
  const { net, holder } = lostMajority();
  const init = bootstrapState(CONF5);
  const forcedA = forceNewClusterState(persisted(net.record("a"), init), "a");
  const forcedH = forceNewClusterState(persisted(net.record(holder), init), holder);
  restart(net, "a", forcedA.state, 21);
  restart(net, holder, forcedH.state, 22);
  const mark = net.sent.length;
  for (let i = 0; i < 6 * ELECTION_TICKS; i++) {
    net.tick();
    net.stabilize();
  }
  assert.deepEqual(net.leaders().sort(), ["a", holder].sort());
  const crossing = net.sentSince(mark, (m) => m.from !== m.to);
  assert.deepEqual(crossing.map((m) => `${MessageType[m.type]} ${m.from}->${m.to}`), []);
});

const CONF5 = { voters: ["a", "b", "c", "d", "e"], learners: [] };
