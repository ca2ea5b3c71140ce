/**
 * Quiescent groups (`RaftOptions.quiesce`, docs/DESIGN.md "Quiescent groups"): an idle, fully
 * replicated group stops heartbeating; anything that is news wakes it; a quiet follower whose
 * leader died waits for the shell's `unquiesce()`; reads stay linearizable and leases safe.
 */

import assert from "node:assert/strict";
import {
  bootstrapState,
  makeMessage,
  type Message,
  MessageType,
  type NodeId,
  Role,
} from "../../lib/raft/mod.ts";
import {
  type ClusterOptions,
  commands,
  ELECTION_TICKS,
  type Network,
  newCluster,
  newNode,
} from "./_network.ts";

const IDS: NodeId[] = ["a", "b", "c"];

/** Ticks the listed nodes (default all) once and lets the cluster settle, `n` times. */
function run(net: Network, n: number, ids: NodeId[] = [...net.nodes.keys()]): void {
  for (let i = 0; i < n; i++) {
    net.tick(ids, 1);
    net.stabilize();
  }
}

function quietIds(net: Network): NodeId[] {
  return [...net.nodes.values()].filter((r) => r.raft.quiesced).map((r) => r.raft.id);
}

/** A group led by `a` in term 2 that has gone quiet. */
function quietGroup(options: ClusterOptions = {}): Network {
  const net = newCluster(IDS, { quiesce: true, ...options });
  net.campaign("a");
  assert.deepEqual(net.leaders(), ["a"]);
  run(net, 1); // the first heartbeat is the quiesce heartbeat: nothing is left to replicate
  assert.deepEqual(quietIds(net), [...net.nodes.keys()]);
  return net;
}

function isQuiesceHeartbeat(m: Message): boolean {
  return m.type === MessageType.Heartbeat && m.index > 0;
}

Deno.test("quiesce: an idle group goes quiet after one heartbeat and sends nothing while quiet", () => {
  const net = quietGroup();
  const a = net.node("a");
  // The quiesce heartbeat named the leader's last entry, its term, and the commit index.
  const hbs = net.sent.filter(isQuiesceHeartbeat);
  assert.deepEqual(hbs.map((m) => [m.to, m.index, m.logTerm, m.commit]).sort(), [
    ["b", a.lastIndex, 2, a.lastIndex],
    ["c", a.lastIndex, 2, a.lastIndex],
  ]);
  // No answer: the followers went quiet without a word.
  assert.equal(
    net.sent.filter((m) => m.type === MessageType.HeartbeatResp && m.context === 0)
      .length,
    0,
  );
  const mark = net.sent.length;
  run(net, 20 * ELECTION_TICKS);
  assert.deepEqual(net.sentSince(mark), [], "no message in 20 election timeouts");
  assert.deepEqual(net.leaders(), ["a"]);
  for (const id of IDS) {
    assert.equal(net.node(id).term, 2);
    assert.equal(net.node(id).commitIndex, a.lastIndex);
    assert.equal(net.node(id).hasReady(), false, `${id} has nothing to do`);
  }
});

Deno.test("quiesce: off by default, heartbeats go on as before", () => {
  const net = newCluster(IDS);
  net.campaign("a");
  const mark = net.sent.length;
  run(net, 5);
  assert.deepEqual(quietIds(net), []);
  const heartbeats = net.sentSince(mark, (m) => m.type === MessageType.Heartbeat);
  assert.equal(heartbeats.length, 10, "one heartbeat per follower per tick");
  assert.ok(heartbeats.every((m) => m.index === 0 && m.logTerm === 0));
});

Deno.test("quiesce: a proposal wakes the group, commits everywhere, and the group goes quiet again", () => {
  const net = quietGroup();
  const a = net.node("a");
  assert.equal(a.propose(commands("x")).ok, true);
  assert.equal(a.quiesced, false, "a proposal wakes the leader");
  net.stabilize();
  for (const id of IDS) {
    assert.equal(net.node(id).commitIndex, a.lastIndex, `${id} committed`);
    assert.equal(net.node(id).quiesced, false, `${id} woke up`);
    assert.ok(net.record(id).applied.some((e) => new TextDecoder().decode(e.data) === "x"));
  }
  run(net, 1);
  assert.deepEqual(quietIds(net), IDS);
  const mark = net.sent.length;
  run(net, 5 * ELECTION_TICKS);
  assert.deepEqual(net.sentSince(mark), []);
});

Deno.test("quiesce: the leader waits until every follower holds the log, learners included", () => {
  const net = newCluster(IDS, { quiesce: true, learners: ["d"] });
  net.campaign("a");
  net.dropWhere((m) => m.to === "d"); // d misses everything
  const a = net.node("a");
  assert.equal(a.propose(commands("x")).ok, true);
  net.stabilize();
  run(net, 3 * ELECTION_TICKS);
  assert.deepEqual(quietIds(net), [], "a learner behind keeps the group awake");
  net.heal();
  run(net, 2);
  assert.deepEqual(quietIds(net), [...IDS, "d"]);
});

Deno.test("quiesce: a quiet follower never campaigns; after the leader dies, unquiesce() brings an election", () => {
  const net = quietGroup();
  net.isolate("a"); // the leader's node dies
  const mark = net.sent.length;
  run(net, 20 * ELECTION_TICKS, ["b", "c"]);
  assert.deepEqual(net.sentSince(mark), [], "nothing wakes a quiet follower by itself");
  assert.deepEqual(quietIds(net), IDS);
  // The shell's node liveness says a is dead: it wakes the followers.
  net.node("b").unquiesce();
  net.node("c").unquiesce();
  assert.deepEqual(quietIds(net), ["a"]);
  run(net, 4 * ELECTION_TICKS, ["b", "c"]);
  const leaders = net.leaders().filter((id) => id !== "a");
  assert.equal(leaders.length, 1, "b or c won an election");
  const leader = net.node(leaders[0]);
  assert.ok(leader.term > 2);
  assert.equal(leader.propose(commands("after")).ok, true);
  net.stabilize();
  for (const id of ["b", "c"]) assert.equal(net.node(id).commitIndex, leader.lastIndex);
});

Deno.test("quiesce: unquiesce() under a live leader wakes the leader, and no election follows", () => {
  const net = quietGroup();
  const b = net.node("b");
  const mark = net.sent.length;
  b.unquiesce();
  net.stabilize();
  // b told a it was awake (a heartbeat answer without a round); a resumed heartbeats.
  const told = net.sentSince(mark, (m) => m.type === MessageType.HeartbeatResp && m.from === "b");
  assert.equal(told[0].context, 0);
  assert.equal(net.node("a").quiesced, false);
  run(net, 3 * ELECTION_TICKS);
  assert.deepEqual(net.leaders(), ["a"]);
  for (const id of IDS) assert.equal(net.node(id).term, 2, `${id} stays in term 2`);
  assert.deepEqual(quietIds(net), IDS, "and the group went quiet again");
  assert.equal(
    net.sentSince(mark, (m) => m.type === MessageType.PreVote || m.type === MessageType.Vote)
      .length,
    0,
  );
});

Deno.test("quiesce: a follower that lost the quiesce heartbeat wakes the leader by campaigning", () => {
  const net = newCluster(IDS, { quiesce: true });
  net.campaign("a");
  net.dropWhere((m) => m.to === "c" && isQuiesceHeartbeat(m));
  run(net, 1);
  assert.deepEqual(quietIds(net), ["a", "b"]);
  net.heal();
  // c's timer runs out: its PreVote wakes the leader (which refuses it, as does b), the leader's
  // heartbeats bring c back, and the group goes quiet; no term changes.
  run(net, 3 * ELECTION_TICKS);
  assert.deepEqual(net.leaders(), ["a"]);
  for (const id of IDS) assert.equal(net.node(id).term, 2);
  assert.deepEqual(quietIds(net), IDS);
  assert.ok(net.sent.some((m) => m.type === MessageType.PreVote && m.from === "c"));
});

Deno.test("quiesce: a quiesce heartbeat of an old term does nothing", () => {
  const net = quietGroup();
  const stale = net.sent.find((m) => isQuiesceHeartbeat(m) && m.to === "b")!;
  // a dies; b and c elect a new leader in a later term.
  net.isolate("a");
  net.node("b").unquiesce();
  net.node("c").unquiesce();
  run(net, 4 * ELECTION_TICKS, ["b", "c"]);
  const b = net.node("b");
  assert.ok(b.term > 2);
  assert.equal(b.quiesced, false);
  const mark = net.sent.length;
  b.step({ ...stale });
  assert.equal(b.quiesced, false, "an old leader cannot quiet b");
  assert.ok(b.term > 2);
  net.processReady(["b"]);
  // b tells the old leader about the newer term, as for any stale heartbeat.
  const answers = net.sentSince(mark, (m) => m.from === "b" && m.to === "a");
  assert.deepEqual(answers.map((m) => [m.type, m.term]), [[MessageType.AppResp, b.term]]);
});

Deno.test("quiesce: a regular heartbeat sent before the quiesce heartbeat does not wake a quiet follower", () => {
  const net = newCluster(IDS, { quiesce: true });
  net.campaign("a");
  const a = net.node("a");
  assert.equal(a.propose(commands("x")).ok, true);
  net.processReady(["a"]);
  net.deliver();
  net.processReady();
  // The round heartbeat a sends next is held back, delivered only after the quiesce heartbeat.
  a.readIndex(1);
  net.processReady(["a"]);
  const late = net.take((m) => m.type === MessageType.Heartbeat && m.to === "b");
  assert.equal(late.length, 1);
  assert.ok(late[0].context > 0);
  net.stabilize();
  assert.equal(net.record("a").readStates.length, 1, "c's answer confirmed the read");
  run(net, 1);
  assert.equal(net.node("b").quiesced, true);
  net.send(late[0]);
  assert.equal(net.node("b").quiesced, true, "old news");
  // b answers it (with its round number): that does not wake the leader either.
  net.stabilize();
  assert.deepEqual(quietIds(net), IDS);
  // A heartbeat of a new round is the leader awake: it wakes b.
  a.readIndex(2);
  net.stabilize();
  assert.equal(net.node("b").quiesced, false);
  assert.deepEqual(net.record("a").readStates.map((r) => r.requestId), [1, 2]);
});

Deno.test("quiesce: a follower that does not hold the leader's last entry refuses to go quiet", () => {
  const net = quietGroup();
  const a = net.node("a");
  const b = net.node("b");
  net.isolate("b");
  assert.equal(a.propose(commands("x")).ok, true);
  net.stabilize(); // a and c commit without b
  net.heal();
  const hb = makeMessage(MessageType.Heartbeat, {
    from: "a",
    to: "b",
    term: 2,
    commit: b.lastIndex,
    index: a.lastIndex,
    logTerm: 2,
    context: 1,
  });
  b.step(hb);
  assert.equal(b.quiesced, false, "b woke and stays awake");
  const rd = b.ready();
  const answer = rd.messages.find((m) => m.type === MessageType.HeartbeatResp)!;
  assert.equal(answer.reject, true);
  assert.equal(answer.context, 0, "no round is acknowledged");
  assert.equal(answer.index, b.lastIndex);
  b.advance(rd);
  // The answer wakes the leader, which brings b up to date; then everyone goes quiet.
  net.send(answer);
  assert.equal(a.quiesced, false);
  net.stabilize();
  run(net, 2);
  assert.equal(b.lastIndex, a.lastIndex);
  assert.deepEqual(quietIds(net), IDS);
});

Deno.test("quiesce: a quiet leader does not step down for want of answers, nor right after it wakes", () => {
  const net = quietGroup();
  const a = net.node("a");
  run(net, 10 * ELECTION_TICKS, ["a"]); // no follower ticks, nothing to answer
  assert.equal(a.role, Role.Leader);
  net.isolate("a");
  assert.equal(a.propose(commands("x")).ok, true);
  // CheckQuorum starts a fresh window on waking: a full election timeout without a quorum
  // passes before it counts silence.
  run(net, ELECTION_TICKS, ["a"]);
  assert.equal(a.role, Role.Leader, "not deposed by the time spent quiet");
  run(net, ELECTION_TICKS, ["a"]);
  assert.equal(a.role, Role.Follower, "deposed once a full window passed without a quorum");
});

Deno.test("quiesce: a linearizable read wakes the leader and is served after a round", () => {
  const net = quietGroup();
  const a = net.node("a");
  a.readIndex(7);
  assert.equal(a.quiesced, false);
  net.processReady(["a"]);
  assert.deepEqual(net.record("a").readStates, [], "not before a quorum answers");
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, [{ requestId: 7, index: a.commitIndex }]);
});

Deno.test("quiesce: a lease read is served from the lease only while its time lasts, quiet or not", () => {
  const net = quietGroup();
  const a = net.node("a");
  // It went quiet before any heartbeat round was answered: no lease yet, the read wakes the
  // group and waits for a round (which confirms a lease).
  a.readIndex(1, { lease: true });
  net.processReady(["a"]);
  assert.deepEqual(net.record("a").readStates, []);
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, [{ requestId: 1, index: a.commitIndex }]);
  run(net, 1);
  assert.deepEqual(quietIds(net), IDS);
  // The lease confirmed just before the group went quiet still holds: no round needed.
  a.readIndex(2, { lease: true });
  assert.deepEqual(a.ready().readStates, [{ requestId: 2, index: a.commitIndex }]);
  net.stabilize();
  run(net, 1);
  assert.deepEqual(quietIds(net), IDS);
  // Quiet for two election timeouts: the lease ran out on the ticks, though no heartbeat went.
  run(net, 2 * ELECTION_TICKS);
  a.readIndex(3, { lease: true });
  net.processReady(["a"]);
  assert.equal(net.record("a").readStates.length, 1, "no lease read from an expired lease");
  net.stabilize();
  assert.deepEqual(net.record("a").readStates.at(-1), { requestId: 3, index: a.commitIndex });
});

Deno.test("quiesce: a cut-off quiet leader serves no stale lease read after the others elect", () => {
  const net = quietGroup();
  const a = net.node("a");
  a.readIndex(1); // a round answered by both followers: a holds a lease
  net.stabilize();
  run(net, 1);
  assert.deepEqual(quietIds(net), IDS);
  a.readIndex(2, { lease: true });
  assert.equal(a.ready().readStates.length, 1, "a serves from its lease");
  net.stabilize();
  run(net, 1);
  assert.deepEqual(quietIds(net), IDS);
  // a is cut off at once; the shell wakes b and c at once (the earliest any liveness could).
  net.isolate("a");
  net.node("b").unquiesce();
  net.node("c").unquiesce();
  let newCommit = 0;
  for (let tick = 1; tick <= 6 * ELECTION_TICKS && newCommit === 0; tick++) {
    run(net, 1); // a ticks too, quiet: its lease runs out on these ticks
    const leader = ["b", "c"].find((id) => net.node(id).role === Role.Leader);
    if (leader === undefined) continue;
    const l = net.node(leader);
    assert.equal(l.propose(commands("after")).ok, true);
    net.stabilize();
    newCommit = l.commitIndex;
  }
  assert.ok(newCommit > 0, "b or c was elected and committed");
  assert.equal(a.quiesced, true, "a heard nothing all along");
  for (let read = 3; read < 3 + ELECTION_TICKS && a.role === Role.Leader; read++) {
    a.readIndex(read, { lease: true });
    for (const rs of a.ready().readStates) {
      assert.ok(rs.index >= newCommit, `a served a lease read at ${rs.index} < ${newCommit}`);
    }
    run(net, 1);
  }
});

Deno.test("quiesce: a membership change wakes the group, commits, and the group goes quiet again", () => {
  const net = quietGroup({ learners: ["d"] });
  const a = net.node("a");
  assert.equal(a.proposeConfChange({ type: "promote", node: "d" }).ok, true);
  assert.equal(a.quiesced, false);
  net.stabilize();
  for (const id of [...IDS, "d"]) {
    assert.deepEqual(net.node(id).conf.voters, ["a", "b", "c", "d"], id);
  }
  run(net, 1);
  assert.deepEqual(quietIds(net), [...IDS, "d"]);
});

Deno.test("quiesce: a leadership transfer wakes the group and the new leader quiets it", () => {
  const net = quietGroup();
  assert.equal(net.node("a").transferLeader("b"), null);
  assert.equal(net.node("a").quiesced, false);
  net.stabilize();
  assert.deepEqual(net.leaders(), ["b"]);
  const b = net.node("b");
  assert.equal(b.term, 3);
  run(net, 2);
  assert.deepEqual(quietIds(net), IDS);
  assert.equal(net.node("c").leader, "b");
});

Deno.test("quiesce: a learner restarted under a quiet leader waits for the host to wake the leader", () => {
  const net = quietGroup({ learners: ["d"] });
  const a = net.node("a");
  // d restarts having lost its log (it never campaigns: a learner); a still counts on it.
  net.add(newNode("d", bootstrapState({ voters: IDS, learners: ["d"] }), {}, 9));
  const mark = net.sent.length;
  run(net, 10 * ELECTION_TICKS);
  assert.deepEqual(net.sentSince(mark), [], "nothing would ever bring d up to date");
  assert.equal(net.node("d").lastIndex, 1);
  // The host's liveness sees d's node come back and wakes the groups led here that it is in.
  a.unquiesce();
  net.stabilize();
  run(net, 2);
  assert.equal(net.node("d").lastIndex, a.lastIndex);
  assert.equal(net.node("d").commitIndex, a.commitIndex);
  assert.deepEqual(quietIds(net), [...IDS, "d"]);
});

// Found by the multi-group simulator (seed 3044, `--groups 2`): the quiesce heartbeat to a
// learner was lost, the learner never campaigns, and the idle group stayed with the learner awake
// and short of the final commit index until the next write.
Deno.test("quiesce: a learner that missed the quiesce heartbeat wakes its quiet leader", () => {
  const net = quietGroup({ learners: ["d"] });
  const a = net.node("a");
  assert.equal(a.propose(commands("x")).ok, true);
  const target = a.lastIndex;
  // d takes and acknowledges x, but hears nothing that carries its commit, the leader's quiesce
  // heartbeat included.
  net.dropWhere((m) => m.to === "d" && m.commit >= target);
  net.stabilize();
  run(net, 2);
  assert.deepEqual(quietIds(net), IDS, "the leader went quiet, counting on d");
  const d = net.node("d");
  assert.equal(d.lastIndex, target);
  assert.ok(d.commitIndex < target, "d does not know x is committed");
  net.heal();
  // Within two election timeouts (its randomized timeout) d tells the leader it is awake.
  run(net, 2 * ELECTION_TICKS + 2);
  assert.equal(d.commitIndex, target);
  assert.deepEqual(quietIds(net), [...IDS, "d"]);
});
