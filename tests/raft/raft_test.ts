/**
 * The Raft paper and thesis, one rule a test. Every test drives a small cluster by hand through
 * the in-memory network of `_network.ts`; nothing depends on timing or chance.
 *
 * Section numbers: "§5.x" is the Raft paper (Ongaro & Ousterhout, 2014); "§3.x", "§4.x", "§6.x"
 * and "§9.x" are Ongaro's thesis (2014).
 */

import assert from "node:assert/strict";
import {
  bootstrapState,
  type ConfState,
  type Entry,
  EntryType,
  makeMessage,
  type Message,
  MessageType,
  type NodeId,
  ProgressState,
  type Raft,
  type RaftInitialState,
  Role,
} from "../../lib/raft/mod.ts";
import {
  type ClusterOptions,
  commands,
  ELECTION_TICKS,
  entry,
  HEARTBEAT_TICKS,
  Network,
  newCluster,
  newNode,
  stateWithLog,
  text,
} from "./_network.ts";

// ------------------------------------------------------------------------------------- helpers

/** A cluster of `ids` in which the first one has won the election of term 2 and committed. */
function elected(ids: NodeId[], options: ClusterOptions = {}): Network {
  const net = newCluster(ids, options);
  net.campaign(ids[0]);
  assert.deepEqual(net.leaders(), [ids[0]]);
  assert.equal(net.node(ids[0]).term, 2);
  return net;
}

/** Predicate: a message of `type` (optionally from/to given nodes). */
function isMsg(type: MessageType, from?: NodeId, to?: NodeId): (m: Message) => boolean {
  return (m) =>
    m.type === type && (from === undefined || m.from === from) &&
    (to === undefined || m.to === to);
}

/** The texts of the non-empty Normal entries a node applied (leaders' no-ops left out). */
function appliedTexts(net: Network, id: NodeId): string[] {
  return net.record(id).applied.filter((e) => e.type === EntryType.Normal && e.data.length > 0)
    .map(text);
}

/** (index, term) of every entry the node holds. */
function logShape(raft: Raft): [number, number][] {
  const out: [number, number][] = [];
  for (let i = raft.status().snapshotIndex + 1; i <= raft.lastIndex; i++) {
    out.push([i, raft.termAt(i)!]);
  }
  return out;
}

/** Ticks `id` and lets the cluster settle after each tick. */
function tickAndSettle(net: Network, id: NodeId, ticks: number): void {
  for (let i = 0; i < ticks; i++) {
    net.node(id).tick();
    net.stabilize();
  }
}

function conf(voters: NodeId[], learners: NodeId[] = []): ConfState {
  return { voters, learners };
}

/** Same random draw every time: every election timeout is 1.5 x electionTicks. */
const FIXED_RANDOM = { random: () => 0.5 };

/** The state of a brand-new node joining an existing group: nothing at all. */
const EMPTY_STATE: RaftInitialState = {
  hardState: { term: 0, vote: "" },
  snapshot: null,
  entries: [],
};

// ---------------------------------------------------------------------- §5.2 leader election

Deno.test("§5.2 a follower that hears from no leader for an election timeout becomes a candidate", () => {
  const net = newCluster(["a", "b", "c"], { preVote: false });
  const a = net.node("a");
  let ticks = 0;
  while (a.role === Role.Follower && ticks < 2 * ELECTION_TICKS) {
    a.tick();
    ticks++;
  }
  assert.equal(a.role, Role.Candidate);
  assert.equal(a.term, 2, "a candidate increments its current term");
  assert.equal(a.status().vote, "a", "a candidate votes for itself");
  net.processReady(["a"]);
  const votes = net.inFlight.filter(isMsg(MessageType.Vote, "a"));
  assert.deepEqual(votes.map((m) => m.to).sort(), ["b", "c"], "and asks every other voter");
  for (const m of votes) {
    assert.equal(m.term, 2);
    assert.equal(m.index, 1, "with the index of its last entry");
    assert.equal(m.logTerm, 1, "and that entry's term");
  }
});

Deno.test("§5.2 election timeouts are randomized within [electionTicks, 2 x electionTicks)", () => {
  const table = [{ draw: 0, want: ELECTION_TICKS }, { draw: 0.999, want: 2 * ELECTION_TICKS - 1 }];
  for (const { draw, want } of table) {
    const node = newNode("a", bootstrapState(conf(["a", "b", "c"])), {
      preVote: false,
      random: () => draw,
    });
    let ticks = 0;
    while (node.role === Role.Follower) {
      node.tick();
      ticks++;
      assert.ok(ticks <= 2 * ELECTION_TICKS, "campaigned within two timeouts");
    }
    assert.equal(ticks, want, `random() = ${draw}`);
  }
});

Deno.test("§5.2 a candidate that wins votes from a majority becomes leader and says so", () => {
  const net = newCluster(["a", "b", "c", "d", "e"], { preVote: false });
  net.isolate("d");
  net.isolate("e");
  net.campaign("a");
  assert.deepEqual(net.leaders(), ["a"], "three votes of five suffice");
  assert.equal(net.node("a").term, 2);
  for (const id of ["b", "c"]) {
    assert.equal(net.node(id).leader, "a", `${id} learns the leader from its AppendEntries`);
  }
  assert.equal(net.node("d").leader, "");
});

Deno.test("§5.2 a candidate without a majority keeps waiting", () => {
  const net = newCluster(["a", "b", "c", "d", "e"], { preVote: false });
  net.isolate("c");
  net.isolate("d");
  net.isolate("e");
  net.campaign("a");
  assert.equal(net.node("a").role, Role.Candidate);
  assert.deepEqual(net.leaders(), []);
});

Deno.test("§5.2 a candidate rejected by a majority returns to follower", () => {
  // b and c hold a longer log than a, so they refuse a's vote request (§5.4.1).
  const c5 = conf(["a", "b", "c"]);
  const net = new Network();
  net.add(newNode("a", stateWithLog(c5, [], 1), { preVote: false }, 1));
  net.add(newNode("b", stateWithLog(c5, [1], 1), { preVote: false }, 2));
  net.add(newNode("c", stateWithLog(c5, [1], 1), { preVote: false }, 3));
  net.campaign("a");
  assert.equal(net.node("a").role, Role.Follower);
  assert.equal(net.node("a").term, 2, "it keeps the term it campaigned in");
  assert.deepEqual(net.leaders(), []);
});

Deno.test("§5.2 each server votes for at most one candidate in a term, first come first served", () => {
  const net = newCluster(["a", "b", "c"], { preVote: false });
  const b = net.node("b");
  const vote = (from: NodeId): Message =>
    makeMessage(MessageType.Vote, { from, to: "b", term: 2, index: 1, logTerm: 1 });
  b.step(vote("a"));
  b.step(vote("c"));
  b.step(vote("a")); // a retransmission from the same candidate is answered the same way
  net.processReady(["b"]);
  const answers = net.take(isMsg(MessageType.VoteResp, "b"));
  assert.deepEqual(answers.map((m) => [m.to, m.reject]), [["a", false], ["c", true], ["a", false]]);
  assert.deepEqual(net.record("b").hardState, { term: 2, vote: "a" });
});

Deno.test("§5.2 a vote is kept across a restart: the persisted vote still binds", () => {
  const restarted = newNode("b", {
    ...bootstrapState(conf(["a", "b", "c"])),
    hardState: { term: 2, vote: "a" },
  });
  const vote = (from: NodeId): Message =>
    makeMessage(MessageType.Vote, { from, to: "b", term: 2, index: 1, logTerm: 1 });
  restarted.step(vote("c"));
  restarted.step(vote("a"));
  const rd = restarted.ready();
  assert.equal(rd.hardState, null);
  assert.deepEqual(rd.messages.map((m) => [m.to, m.reject]), [["c", true], ["a", false]]);
});

Deno.test("§5.2 a candidate that hears from a leader of its own term returns to follower", () => {
  const net = newCluster(["a", "b", "c"], { preVote: false });
  const b = net.node("b");
  b.campaign();
  assert.equal(b.role, Role.Candidate);
  assert.equal(b.term, 2);
  b.step(makeMessage(MessageType.App, { from: "a", to: "b", term: 2, index: 1, logTerm: 1 }));
  assert.equal(b.role, Role.Follower);
  assert.equal(b.leader, "a");
  assert.equal(b.term, 2);
});

Deno.test("§5.1 a server that sees a higher term adopts it and reverts to follower", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.step(makeMessage(MessageType.AppResp, { from: "b", to: "a", term: 7 }));
  assert.equal(a.role, Role.Follower);
  assert.equal(a.term, 7);
  assert.equal(a.leader, "");
  net.processReady(["a"]);
  assert.deepEqual(net.record("a").hardState, { term: 7, vote: "" }, "the new term is persisted");
});

Deno.test("§5.1 a request with a stale term is refused, and the sender learns the newer term", () => {
  const net = elected(["a", "b", "c"]);
  const b = net.node("b");
  const before = logShape(b);
  b.step(makeMessage(MessageType.App, {
    from: "c",
    to: "b",
    term: 1,
    index: 2,
    logTerm: 2,
    entries: [entry(3, 1, "stale")],
  }));
  assert.deepEqual(logShape(b), before, "nothing appended");
  assert.equal(b.leader, "a");
  net.processReady(["b"]);
  const [answer] = net.take(isMsg(MessageType.AppResp, "b", "c"));
  assert.equal(answer.term, 2);
  b.step(makeMessage(MessageType.Vote, { from: "c", to: "b", term: 1, index: 9, logTerm: 9 }));
  net.processReady(["b"]);
  // A stale candidate is refused with the current term too, so it stops campaigning below it
  // (a voter whose configuration lags may send it nothing else).
  const [refusal] = net.take(isMsg(MessageType.VoteResp, "b", "c"));
  assert.equal(refusal?.reject, true);
  assert.equal(refusal?.term, 2);
});

// -------------------------------------------------------------------- §5.4.1 election restriction

Deno.test("§5.4.1 a voter denies its vote to a candidate whose log is less up to date", () => {
  // The voter's log ends at index 3, term 2.
  const table: { index: number; logTerm: number; granted: boolean }[] = [
    { index: 3, logTerm: 2, granted: true }, // same
    { index: 4, logTerm: 2, granted: true }, // same last term, longer
    { index: 1, logTerm: 3, granted: true }, // later last term wins even when shorter
    { index: 2, logTerm: 2, granted: false }, // same last term, shorter
    { index: 9, logTerm: 1, granted: false }, // earlier last term loses even when longer
  ];
  for (const c of table) {
    const voter = newNode("b", stateWithLog(conf(["a", "b", "c"]), [2, 2], 2), { preVote: false });
    voter.step(makeMessage(MessageType.Vote, {
      from: "a",
      to: "b",
      term: 3,
      index: c.index,
      logTerm: c.logTerm,
    }));
    const rd = voter.ready();
    const [resp] = rd.messages.filter(isMsg(MessageType.VoteResp));
    assert.equal(resp.reject, !c.granted, JSON.stringify(c));
    assert.deepEqual(rd.hardState, { term: 3, vote: c.granted ? "a" : "" }, JSON.stringify(c));
  }
});

Deno.test("§5.4.1 a node missing committed entries cannot become leader", () => {
  const net = elected(["a", "b", "c"], { checkQuorum: false });
  net.isolate("c");
  net.node("a").propose(commands("x"));
  net.stabilize();
  assert.equal(net.node("a").commitIndex, 3);
  net.heal();
  net.isolate("a"); // the leader crashes
  net.campaign("c");
  assert.notEqual(net.node("c").role, Role.Leader, "b refuses: c lacks the committed entry 3");
  net.campaign("b");
  assert.deepEqual(net.leaders().filter((id) => id !== "a"), ["b"]);
});

// ---------------------------------------------------------------------------- §9.6 PreVote

Deno.test("§9.6 PreVote: a candidate asks for term + 1 without moving its own term", () => {
  const net = newCluster(["a", "b", "c"]);
  const mark = net.sent.length;
  net.node("a").campaign();
  assert.equal(net.node("a").role, Role.PreCandidate);
  assert.equal(net.node("a").term, 1);
  net.stabilize();
  const kinds = net.sentSince(mark, (m) => m.from === "a" && m.type !== MessageType.App)
    .map((m) => [m.type, m.term]);
  assert.deepEqual(kinds, [
    [MessageType.PreVote, 2],
    [MessageType.PreVote, 2],
    [MessageType.Vote, 2],
    [MessageType.Vote, 2],
  ]);
  assert.deepEqual(net.leaders(), ["a"]);
  assert.equal(net.node("a").term, 2, "only the real election moves the term");
});

Deno.test("§9.6 PreVote: granting a pre-vote changes neither the voter's term nor its vote", () => {
  const b = newNode("b", bootstrapState(conf(["a", "b", "c"])));
  b.step(makeMessage(MessageType.PreVote, { from: "a", to: "b", term: 5, index: 1, logTerm: 1 }));
  assert.equal(b.term, 1);
  const rd = b.ready();
  assert.equal(rd.hardState, null, "nothing to persist");
  assert.deepEqual(rd.messages.map((m) => [m.type, m.term, m.reject]), [
    [MessageType.PreVoteResp, 5, false],
  ]);
});

Deno.test("§9.6 PreVote: a partitioned node does not inflate its term, so its return is harmless", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("c");
  net.tick(["c"], 10 * ELECTION_TICKS);
  net.stabilize();
  assert.equal(net.node("c").term, 2, "its pre-votes failed, so it never bumped the term");
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(net.leaders(), ["a"]);
  assert.equal(net.node("a").term, 2);
  assert.equal(net.node("c").role, Role.Follower);
  assert.equal(net.node("c").leader, "a");
});

Deno.test("§9.6 without PreVote a returning partitioned node deposes a healthy leader", () => {
  // The disruption PreVote exists to prevent.
  const net = elected(["a", "b", "c"], { preVote: false, checkQuorum: false });
  net.isolate("c");
  net.tick(["c"], 4 * ELECTION_TICKS);
  net.stabilize();
  const cTerm = net.node("c").term;
  assert.ok(cTerm > 2, "each timeout started a real election");
  net.heal();
  net.node("a").tick();
  net.processReady(["a"]);
  net.deliver(); // heartbeat reaches c, which answers with its higher term
  net.processReady(["c"]);
  net.deliver();
  assert.equal(net.node("a").role, Role.Follower);
  assert.equal(net.node("a").term, cTerm);
});

Deno.test("§9.6 PreVote: a pre-candidate whose pre-votes are refused returns to follower", () => {
  const c3 = conf(["a", "b", "c"]);
  const net = new Network();
  net.add(newNode("a", stateWithLog(c3, [], 1), {}, 1));
  net.add(newNode("b", stateWithLog(c3, [1], 1), {}, 2));
  net.add(newNode("c", stateWithLog(c3, [1], 1), {}, 3));
  net.campaign("a");
  assert.equal(net.node("a").role, Role.Follower);
  assert.equal(net.node("a").term, 1);
  for (const id of ["b", "c"]) assert.equal(net.node(id).term, 1, `${id} kept its term`);
});

// ------------------------------------------------------------------------- §6.2 CheckQuorum

Deno.test("§6.2 CheckQuorum: a leader that hears from no quorum for an election timeout steps down", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("a");
  const a = net.node("a");
  a.readIndex(1);
  // The first check passes on the answers of the election round; the second finds silence.
  for (let i = 0; i < 2 * ELECTION_TICKS && a.role === Role.Leader; i++) {
    a.tick();
    net.processReady(["a"]);
  }
  assert.equal(a.role, Role.Follower);
  assert.equal(a.term, 2, "stepping down does not change the term");
  assert.equal(a.leader, "");
  net.processReady(["a"]);
  assert.deepEqual(net.record("a").failedReads, [1], "its pending read can no longer be served");
  assert.equal(a.propose(commands("x")).ok, false);
});

Deno.test("§6.2 CheckQuorum: a leader that hears from a quorum stays leader", () => {
  const net = elected(["a", "b", "c", "d", "e"]);
  net.isolate("d");
  net.isolate("e");
  tickAndSettle(net, "a", 5 * ELECTION_TICKS);
  assert.deepEqual(net.leaders(), ["a"]);
  const peers = net.node("a").status().peers;
  assert.deepEqual(
    peers.filter((p) => p.recentActive).map((p) => p.id).sort(),
    ["b", "c"],
    "activity is tracked per peer",
  );
});

Deno.test("§6.2 without CheckQuorum an isolated leader keeps believing it leads", () => {
  const net = elected(["a", "b", "c"], { checkQuorum: false });
  net.isolate("a");
  tickAndSettle(net, "a", 5 * ELECTION_TICKS);
  assert.equal(net.node("a").role, Role.Leader);
});

// ------------------------------------------------------------------ §4.2.3 leader stickiness

Deno.test("§4.2.3 a follower that recently heard from the leader ignores vote requests", () => {
  const net = elected(["a", "b", "c"], { preVote: false, ...FIXED_RANDOM });
  const vote = makeMessage(MessageType.Vote, { from: "c", to: "b", term: 3, index: 2, logTerm: 2 });
  const b = net.node("b");
  b.step(vote);
  assert.equal(b.term, 2, "the disruptive term is not adopted");
  assert.equal(b.leader, "a");
  net.processReady(["b"]);
  assert.deepEqual(net.take(isMsg(MessageType.VoteResp, "b")), [], "not even a rejection");
  // The leader too ignores it: it has heard from a quorum within the timeout.
  net.node("a").step({ ...vote, to: "a" });
  assert.equal(net.node("a").role, Role.Leader);
  // Once a full election timeout passes in silence, b may vote again.
  net.tick(["b"], ELECTION_TICKS);
  assert.equal(b.role, Role.Follower, "randomized timeout (15 ticks) not reached yet");
  b.step(vote);
  assert.equal(b.term, 3);
  net.processReady(["b"]);
  const [resp] = net.take(isMsg(MessageType.VoteResp, "b"));
  assert.equal(resp.reject, false);
});

Deno.test("§4.2.3 a follower in contact with the leader ignores pre-votes too", () => {
  const net = elected(["a", "b", "c"], FIXED_RANDOM);
  const b = net.node("b");
  b.step(makeMessage(MessageType.PreVote, { from: "c", to: "b", term: 3, index: 2, logTerm: 2 }));
  net.processReady(["b"]);
  assert.deepEqual(net.take(isMsg(MessageType.PreVoteResp, "b")), []);
});

// ------------------------------------------------------------------------ §5.3 log replication

Deno.test("§5.3 the leader commits an entry once a majority stores it, then followers apply it", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("c");
  const result = net.node("a").propose(commands("x"));
  assert.deepEqual(result, { ok: true, firstIndex: 3, term: 2 });
  net.stabilize();
  assert.equal(net.node("a").commitIndex, 3, "a and b are a majority");
  assert.deepEqual(appliedTexts(net, "a"), ["x"]);
  assert.deepEqual(appliedTexts(net, "b"), ["x"], "b learns the commit index from the leader");
  assert.deepEqual(appliedTexts(net, "c"), []);
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(appliedTexts(net, "c"), ["x"], "the leader retries until c catches up");
  assert.equal(net.node("c").commitIndex, 3);
});

Deno.test("§5.3 every node applies the same commands in the same order", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.propose(commands("1", "2"));
  net.stabilize();
  a.propose(commands("3"));
  a.propose(commands("4"));
  net.stabilize();
  for (const id of ["a", "b", "c"]) {
    assert.deepEqual(appliedTexts(net, id), ["1", "2", "3", "4"], id);
    assert.deepEqual(net.record(id).applied.map((e) => e.index), [1, 2, 3, 4, 5, 6], id);
  }
});

Deno.test("§5.3 a leader counts its own copy only once it is persisted", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.propose(commands("x"));
  const rd = a.ready();
  assert.deepEqual(rd.entries.map((e) => e.index), [3]);
  // Its appends may leave before its own write finishes (messagesEarly) ...
  const toB = rd.messagesEarly.filter(isMsg(MessageType.App, "a", "b"));
  assert.equal(toB.length, 1);
  net.send(toB[0]);
  net.processReady(["b"]);
  net.deliver();
  // ... but b's copy alone is one of three.
  assert.equal(a.commitIndex, 2);
  a.advance(rd);
  assert.equal(a.commitIndex, 3, "a's own copy, once on disk, makes the majority");
});

Deno.test("§5.3 a follower refuses entries whose predecessor it does not hold, with a hint", () => {
  const net = elected(["a", "b", "c"]);
  const b = net.node("b");
  b.step(makeMessage(MessageType.App, {
    from: "a",
    to: "b",
    term: 2,
    index: 5,
    logTerm: 2,
    entries: [entry(6, 2)],
  }));
  net.processReady(["b"]);
  const [resp] = net.take(isMsg(MessageType.AppResp, "b", "a"));
  assert.equal(resp.reject, true);
  assert.equal(resp.index, 5, "names the rejected index");
  assert.equal(resp.rejectHint, 2, "its last index: nothing past it can match");
  assert.equal(resp.logTerm, 2, "and that entry's term");
  assert.equal(b.lastIndex, 2);
});

Deno.test("§5.3 the leader overwrites a follower's conflicting entries with its own", () => {
  // Figure 7-like: c holds uncommitted entries of term 3 that the new leader never had.
  const c3 = conf(["a", "b", "c"]);
  const net = new Network();
  net.add(newNode("a", stateWithLog(c3, [2, 2, 4], 4), {}, 1));
  net.add(newNode("b", stateWithLog(c3, [2, 2, 4], 4), {}, 2));
  net.add(newNode("c", stateWithLog(c3, [2, 3, 3, 3, 3], 4), {}, 3));
  net.campaign("a");
  assert.deepEqual(net.leaders(), ["a"]);
  const want = [[1, 1], [2, 2], [3, 2], [4, 4], [5, 5]];
  for (const id of ["a", "b", "c"]) assert.deepEqual(logShape(net.node(id)), want, id);
});

Deno.test("§5.3 fast back-off: a conflicting follower is repaired in one rejection per term", () => {
  const c3 = conf(["a", "b", "c"]);
  const table: { name: string; leader: number[]; follower: number[]; rejectsMax: number }[] = [
    {
      // The follower's hint (its last index and term) lets the leader skip its whole term 4.
      name: "leader far ahead in a term the follower never saw",
      leader: [2, ...Array(30).fill(4)],
      follower: [2, 3, 3, 3, 3, 3],
      rejectsMax: 1,
    },
    {
      // The follower skips its own long run of term 3 in one step.
      name: "follower holds a long suffix of a stale term",
      leader: [2, 2, 2, 4],
      follower: [2, 2, 2, ...Array(40).fill(3)],
      rejectsMax: 1,
    },
    {
      name: "several diverging terms on both sides",
      leader: [2, 2, 5, 5, 5, 7, 7],
      follower: [2, 2, 3, 3, 4, 4, 6, 6, 6, 6],
      rejectsMax: 2,
    },
  ];
  for (const c of table) {
    const term = Math.max(...c.leader, ...c.follower);
    const net = new Network();
    net.add(newNode("a", stateWithLog(c3, c.leader, term), {}, 1));
    net.add(newNode("b", stateWithLog(c3, c.leader, term), {}, 2));
    net.add(newNode("c", stateWithLog(c3, c.follower, term), {}, 3));
    const mark = net.sent.length;
    net.campaign("a");
    assert.deepEqual(net.leaders(), ["a"], c.name);
    const rejects = net.sentSince(mark, (m) => isMsg(MessageType.AppResp, "c")(m) && m.reject);
    assert.ok(rejects.length <= c.rejectsMax, `${c.name}: ${rejects.length} rejections`);
    assert.deepEqual(logShape(net.node("c")), logShape(net.node("a")), c.name);
  }
});

Deno.test("§5.3 the leader keeps at most inflightMax appends in flight to a follower", () => {
  const net = elected(["a", "b", "c"], { inflightMax: 2 });
  net.isolate("c");
  const a = net.node("a");
  const mark = net.sent.length;
  for (let i = 0; i < 5; i++) {
    a.propose(commands(`${i}`));
    net.processReady(["a"]);
  }
  const toC = net.sentSince(mark, isMsg(MessageType.App, "a", "c"));
  assert.equal(toC.length, 2, "the window is full after two unanswered appends");
  const peer = a.status().peers.find((p) => p.id === "c")!;
  assert.equal(peer.state, ProgressState.Replicate);
});

Deno.test("§5.3 the leader retries indefinitely: a follower whose whole window was lost catches up", () => {
  const net = elected(["a", "b", "c"], { inflightMax: 2 });
  net.isolate("c");
  const a = net.node("a");
  for (let i = 0; i < 3; i++) {
    a.propose(commands(`${i}`));
    net.stabilize();
  }
  assert.equal(a.commitIndex, 5);
  net.heal();
  // No AppResp will ever come back for the lost appends; heartbeat answers must restart things.
  tickAndSettle(net, "a", 10 * HEARTBEAT_TICKS);
  assert.equal(net.node("c").lastIndex, 5);
  assert.equal(net.node("c").commitIndex, 5);
  assert.deepEqual(appliedTexts(net, "c"), ["0", "1", "2"]);
});

Deno.test("§5.3 AppendEntries are split at msgBytesMax, one entry at least per message", () => {
  const net = elected(["a", "b", "c"], { msgBytesMax: 30 });
  const a = net.node("a");
  const mark = net.sent.length;
  a.propose(commands("one", "two", "three"));
  net.stabilize();
  const toB = net.sentSince(
    mark,
    (m) => isMsg(MessageType.App, "a", "b")(m) && m.entries.length > 0,
  );
  assert.deepEqual(toB.map((m) => m.entries.map(text)), [["one"], ["two"], ["three"]]);
  assert.deepEqual(appliedTexts(net, "b"), ["one", "two", "three"]);
});

Deno.test("committed entries are handed to the state machine at most applyBatchMax at a time", () => {
  const net = newCluster(["a"], { applyBatchMax: 2 });
  net.campaign("a");
  const a = net.node("a");
  a.propose(commands("1", "2", "3", "4", "5"));
  const batches: string[][] = [];
  while (a.hasReady()) {
    const rd = a.ready();
    if (rd.committedEntries.length > 0) batches.push(rd.committedEntries.map(text));
    a.advance(rd);
  }
  assert.deepEqual(batches, [["1", "2"], ["3", "4"], ["5"]]);
});

Deno.test("reportUnreachable stops optimistic streaming until the follower answers again", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  const state = (id: NodeId) => a.status().peers.find((p) => p.id === id)!.state;
  assert.equal(state("b"), ProgressState.Replicate);
  a.reportUnreachable("b");
  assert.equal(state("b"), ProgressState.Probe);
  a.propose(commands("x"));
  net.stabilize();
  assert.equal(state("b"), ProgressState.Replicate);
  assert.deepEqual(appliedTexts(net, "b"), ["x"]);
});

Deno.test("§5.3 a follower learns the commit index from heartbeats only up to what it holds", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("c");
  net.node("a").propose(commands("x", "y"));
  net.stabilize();
  assert.equal(net.node("a").commitIndex, 4);
  net.heal();
  net.node("a").tick();
  net.processReady(["a"]);
  const [hb] = net.inFlight.filter(isMsg(MessageType.Heartbeat, "a", "c"));
  assert.equal(hb.commit, 2, "c's match is 2; a larger commit could make it apply unknown entries");
});

Deno.test("proposals are refused beyond uncommittedMax entries", () => {
  const net = elected(["a", "b", "c"], { uncommittedMax: 3 });
  net.isolate("a");
  const a = net.node("a");
  assert.equal(a.propose(commands("1", "2")).ok, true);
  assert.equal(a.propose(commands("3")).ok, true);
  assert.deepEqual(a.propose(commands("4")), { ok: false, reason: "too many uncommitted entries" });
  assert.deepEqual(a.propose(commands("x")), { ok: false, reason: "too many uncommitted entries" });
});

Deno.test("a follower refuses proposals: only the leader appends", () => {
  const net = elected(["a", "b", "c"]);
  assert.deepEqual(net.node("b").propose(commands("x")), { ok: false, reason: "not the leader" });
});

// ------------------------------------------------------------ §5.4.2 commit rule (Figure 8)

/**
 * Figure 8 (c): s1 leads term 4 and has just put its term-2 entry at index 2 on s3, so a
 * majority (s1, s2, s3) holds it. s5 holds a term-3 entry at index 2.
 */
function figure8(): Network {
  const c5 = conf(["s1", "s2", "s3", "s4", "s5"]);
  const net = new Network();
  const logs: Record<string, number[]> = { s1: [2], s2: [2], s3: [], s4: [], s5: [3] };
  Object.entries(logs).forEach(([id, terms], i) => {
    net.add(newNode(id, stateWithLog(c5, terms, 3), FIXED_RANDOM, i + 1));
  });
  return net;
}

Deno.test("§5.4.2 a leader does not commit an entry of an earlier term by counting replicas", () => {
  const net = figure8();
  // s1 wins term 4, but its appends (which carry its term-4 no-op) are lost.
  net.dropWhere(isMsg(MessageType.App, "s1"));
  net.campaign("s1");
  assert.deepEqual(net.leaders(), ["s1"]);
  assert.equal(net.node("s1").term, 4);
  // Only the term-2 entry at index 2 reaches s2 and s3.
  const e2 = entry(2, 2);
  for (const to of ["s2", "s3"]) {
    net.send(makeMessage(MessageType.App, {
      from: "s1",
      to,
      term: 4,
      index: 1,
      logTerm: 1,
      entries: [e2],
      commit: 0,
    }));
  }
  net.stabilize();
  const s1 = net.node("s1");
  const matches = s1.status().peers.filter((p) => p.match >= 2).map((p) => p.id).sort();
  assert.deepEqual(matches, ["s2", "s3"], "with s1 itself, 3 of 5 hold index 2");
  assert.equal(s1.commitIndex, 0, "yet index 2 is of term 2, not 4: it is not committed");

  // Figure 8 (d): why. s1 crashes; s5 (last term 3) can still win and overwrite index 2.
  net.heal();
  net.isolate("s1");
  net.tick(["s2", "s3", "s4"], ELECTION_TICKS); // their lease on s1 runs out
  net.campaign("s5");
  assert.deepEqual(net.leaders().filter((id) => id !== "s1"), ["s5"]);
  for (const id of ["s2", "s3", "s4"]) {
    assert.equal(net.node(id).termAt(2), 3, `${id}: index 2 now holds s5's term-3 entry`);
  }
  for (const id of ["s2", "s3", "s4", "s5"]) {
    const applied2 = net.record(id).applied.find((e) => e.index === 2);
    assert.equal(applied2?.term ?? 3, 3, `${id} never applied the overwritten entry`);
  }
});

Deno.test("§5.4.2 once an entry of its term is committed, earlier entries commit with it", () => {
  const net = figure8();
  net.isolate("s5"); // down during term 4, as in the figure
  net.campaign("s1");
  const s1 = net.node("s1");
  assert.equal(s1.commitIndex, 3, "the term-4 no-op at index 3 is on a majority");
  for (const id of ["s2", "s3"]) assert.equal(net.node(id).termAt(2), 2, id);
  assert.deepEqual(net.record("s2").applied.map((e) => [e.index, e.term]), [[1, 1], [2, 2], [
    3,
    4,
  ]]);
  // Figure 8 (e): now s5 cannot win, so the term-2 entry is safe.
  net.heal();
  net.isolate("s1");
  net.tick(["s2", "s3", "s4"], ELECTION_TICKS);
  net.campaign("s5");
  assert.notEqual(net.node("s5").role, Role.Leader);
});

// ------------------------------------------------------------------------ §6.4 ReadIndex

Deno.test("§6.4 ReadIndex: many reads share one heartbeat round", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  const mark = net.sent.length;
  for (let id = 1; id <= 5; id++) a.readIndex(id);
  net.stabilize();
  const heartbeats = net.sentSince(mark, isMsg(MessageType.Heartbeat, "a"));
  assert.equal(heartbeats.length, 2, "one heartbeat per follower for all five reads");
  assert.ok(heartbeats[0].context > 0);
  assert.equal(heartbeats[1].context, heartbeats[0].context);
  assert.deepEqual(
    net.record("a").readStates,
    [1, 2, 3, 4, 5].map((requestId) => ({ requestId, index: 2 })),
    "each read is served at the commit index of its arrival",
  );
});

Deno.test("§6.4 ReadIndex: a read waits for a quorum to confirm the leader still leads", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("b");
  net.isolate("c");
  net.node("a").readIndex(1);
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, [], "a deposed leader could serve a stale value");
  net.heal();
  // The round's own heartbeats were lost; the next regular heartbeat carries the round.
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(net.record("a").readStates, [{ requestId: 1, index: 2 }]);
});

Deno.test("§6.4 ReadIndex: a new leader serves reads only after committing an entry of its term", () => {
  const net = newCluster(["a", "b", "c"]);
  net.dropWhere(isMsg(MessageType.App, "a"));
  net.campaign("a");
  const a = net.node("a");
  assert.equal(a.role, Role.Leader);
  assert.equal(a.commitIndex, 0, "it does not know the commit index yet");
  const mark = net.sent.length;
  a.readIndex(1);
  net.stabilize();
  assert.deepEqual(
    net.sentSince(mark, (m) => m.type === MessageType.Heartbeat && m.context > 0),
    [],
    "no read round starts before the no-op commits",
  );
  assert.deepEqual(net.record("a").readStates, []);
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(a.commitIndex, 2);
  assert.deepEqual(net.record("a").readStates, [{ requestId: 1, index: 2 }]);
});

Deno.test("§6.4 ReadIndex: a follower forwards reads to the leader and gets back the index", () => {
  const net = elected(["a", "b", "c"]);
  net.node("a").propose(commands("x"));
  net.stabilize();
  net.node("b").readIndex(7);
  net.stabilize();
  assert.deepEqual(net.record("b").readStates, [{ requestId: 7, index: 3 }]);
  assert.deepEqual(net.record("a").readStates, [], "the leader does not serve it itself");
});

Deno.test("§6.4 ReadIndex: a read fails at once when no leader is known", () => {
  const net = newCluster(["a", "b", "c"]);
  net.node("b").readIndex(1);
  net.processReady(["b"]);
  assert.deepEqual(net.record("b").failedReads, [1]);
  assert.deepEqual(net.inFlight, []);
});

Deno.test("§6.4 ReadIndex: pending reads, local and forwarded, fail when the leader steps down", () => {
  const net = elected(["a", "b", "c"]);
  net.dropWhere(isMsg(MessageType.HeartbeatResp));
  net.node("a").readIndex(1);
  net.node("b").readIndex(2);
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, []);
  net.node("a").step(makeMessage(MessageType.AppResp, { from: "c", to: "a", term: 3 }));
  net.stabilize();
  assert.deepEqual(net.record("a").failedReads, [1]);
  assert.deepEqual(net.record("b").failedReads, [2], "the follower is told to retry elsewhere");
  assert.deepEqual(net.record("b").readStates, []);
});

Deno.test("§6.4 ReadIndex: a follower's forwarded reads fail as soon as it learns of a new term", () => {
  // The leader a is cut off with b's ReadIndex request in flight; it will never answer.
  const net = elected(["a", "b", "c"]);
  net.isolate("a");
  net.node("b").readIndex(7);
  net.stabilize();
  assert.deepEqual(net.record("b").failedReads, []);
  // c is elected in term 3; b fails the read when it hears of the new term, not at a timeout.
  net.tick(["b"], ELECTION_TICKS); // b's lease on a runs out (b itself does not campaign yet)
  assert.equal(net.node("b").role, Role.Follower);
  net.node("c").campaign();
  net.stabilize();
  assert.deepEqual(net.leaders().sort(), ["a", "c"]);
  assert.deepEqual(net.record("b").failedReads, [7]);
  assert.deepEqual(net.record("b").readStates, []);
  // A late answer from the deposed leader serves nothing.
  net.send(
    makeMessage(MessageType.ReadIndexResp, { from: "a", to: "b", term: 3, context: 7, index: 2 }),
  );
  net.processReady(["b"]);
  assert.deepEqual(net.record("b").readStates, []);
});

Deno.test("§6.4 ReadIndex: a duplicated answer to a forwarded read is ignored", () => {
  const net = elected(["a", "b", "c"]);
  net.dropWhere(isMsg(MessageType.ReadIndexResp, "a", "b"));
  net.node("b").readIndex(7);
  net.stabilize();
  const answer = net.sentSince(0, isMsg(MessageType.ReadIndexResp, "a", "b"));
  assert.equal(answer.length, 1);
  net.send(answer[0]);
  net.send(answer[0]);
  net.processReady(["b"]);
  assert.deepEqual(net.record("b").readStates, [{ requestId: 7, index: answer[0].index }]);
});

Deno.test("§5.3 a stale duplicated AppendEntries rejection does not lower a follower's match", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.propose(commands("x", "y", "z"));
  net.stabilize();
  const matchOf = (id: NodeId) => a.status().peers.find((p) => p.id === id)!.match;
  const last = a.lastIndex;
  assert.equal(matchOf("b"), last);
  // A copy of a rejection b sent long ago, when it held only the bootstrap entry.
  a.step(makeMessage(MessageType.AppResp, {
    from: "b",
    to: "a",
    term: 2,
    index: last - 2,
    reject: true,
    rejectHint: 1,
    logTerm: 1,
  }));
  assert.equal(matchOf("b"), last);
  assert.equal(a.status().peers.find((p) => p.id === "b")!.state, ProgressState.Replicate);
});

Deno.test("§6.4 ReadIndex: reads are refused beyond pendingReadsMax", () => {
  const net = elected(["a", "b", "c"], { pendingReadsMax: 2 });
  net.isolate("a");
  const a = net.node("a");
  for (let id = 1; id <= 4; id++) a.readIndex(id);
  net.processReady(["a"]);
  assert.deepEqual(net.record("a").failedReads, [3, 4]);
});

// --------------------------------------------------------------- §3.10 leadership transfer

Deno.test("§3.10 leadership transfer: an up-to-date target is told to campaign at once", () => {
  const net = elected(["a", "b", "c"]);
  const mark = net.sent.length;
  assert.equal(net.node("a").transferLeader("b"), null);
  net.stabilize();
  assert.deepEqual(net.leaders(), ["b"]);
  assert.equal(net.node("b").term, 3);
  assert.equal(net.node("a").leader, "b");
  assert.equal(net.sentSince(mark, isMsg(MessageType.TimeoutNow, "a", "b")).length, 1);
  assert.deepEqual(
    net.sentSince(mark, isMsg(MessageType.PreVote)),
    [],
    "the target skips PreVote: the voters' lease would refuse it",
  );
});

Deno.test("§3.10 leadership transfer: the leader first brings a lagging target up to date", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("c");
  net.node("a").propose(commands("x", "y"));
  net.stabilize();
  net.heal();
  assert.equal(net.node("a").transferLeader("c"), null);
  net.stabilize();
  assert.deepEqual(net.leaders(), ["c"]);
  assert.deepEqual(appliedTexts(net, "c"), ["x", "y"]);
});

Deno.test("§3.10 leadership transfer: proposals are refused until it ends or times out", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("c");
  const a = net.node("a");
  assert.equal(a.transferLeader("c"), null);
  assert.deepEqual(a.propose(commands("x")), {
    ok: false,
    reason: "leadership transfer in progress",
  });
  tickAndSettle(net, "a", ELECTION_TICKS);
  assert.equal(a.role, Role.Leader, "b keeps a in power");
  assert.equal(a.propose(commands("x")).ok, true, "the transfer was abandoned");
});

Deno.test("§3.10 leadership transfer: refused off the leader, to itself, and to non-voters", () => {
  const net = elected(["a", "b", "c"], { learners: ["d"] });
  const a = net.node("a");
  assert.equal(net.node("b").transferLeader("c"), "not the leader");
  assert.equal(a.transferLeader("a"), "already the leader");
  assert.equal(typeof a.transferLeader("d"), "string");
  assert.equal(typeof a.transferLeader("z"), "string");
  assert.equal(a.propose(commands("x")).ok, true, "no transfer was started");
});

// -------------------------------------------------------------------------- single node

Deno.test("a single-node group elects itself and commits once its own write is persisted", () => {
  const net = newCluster(["a"]);
  const a = net.node("a");
  net.tick(["a"], 2 * ELECTION_TICKS);
  assert.equal(a.role, Role.Leader, "PreVote and vote won alone");
  assert.equal(a.term, 2);
  assert.equal(a.commitIndex, 0, "the no-op is not on disk yet");
  net.stabilize();
  assert.equal(a.commitIndex, 2);
  a.propose(commands("x"));
  const rd = a.ready();
  assert.deepEqual(rd.committedEntries, [], "nothing commits before its write");
  a.advance(rd);
  assert.equal(a.commitIndex, 3);
  assert.deepEqual(a.ready().committedEntries.map(text), ["x"]);
  assert.deepEqual(net.inFlight, [], "no one to talk to");
});

Deno.test("a single-node group serves reads without any round trip", () => {
  const net = newCluster(["a"]);
  const a = net.node("a");
  a.campaign();
  a.readIndex(1); // before the first commit of its term: waits for the no-op to be on disk
  assert.equal(a.hasReady(), true);
  const rd = a.ready();
  assert.deepEqual(rd.readStates, []);
  a.advance(rd);
  net.stabilize();
  a.readIndex(2);
  net.stabilize();
  assert.deepEqual(net.record("a").readStates, [
    { requestId: 1, index: 2 },
    { requestId: 2, index: 2 },
  ]);
  assert.deepEqual(net.sent, []);
});

// --------------------------------------------------------------------------- learners

Deno.test("§4.2.1 learners receive the log but are never asked to vote and never campaign", () => {
  const net = newCluster(["a", "b", "c"], { learners: ["d"] });
  net.campaign("a");
  assert.deepEqual(net.leaders(), ["a"]);
  assert.deepEqual(net.sent.filter((m) => m.to === "d" && m.type === MessageType.PreVote), []);
  assert.deepEqual(net.sent.filter((m) => m.to === "d" && m.type === MessageType.Vote), []);
  net.node("a").propose(commands("x"));
  net.stabilize();
  assert.deepEqual(appliedTexts(net, "d"), ["x"]);
  net.isolate("d");
  net.tick(["d"], 10 * ELECTION_TICKS);
  net.stabilize();
  assert.equal(net.node("d").role, Role.Follower);
  assert.equal(net.node("d").term, 2);
  assert.equal(net.node("d").promotable, false);
});

Deno.test("§4.2.1 a learner's vote does not count", () => {
  const net = newCluster(["a", "b", "c"], { learners: ["d"], preVote: false });
  const a = net.node("a");
  a.campaign();
  a.step(makeMessage(MessageType.VoteResp, { from: "d", to: "a", term: 2 }));
  assert.equal(a.role, Role.Candidate, "a (yes) + d (learner) is not a majority of a, b, c");
  a.step(makeMessage(MessageType.VoteResp, { from: "b", to: "a", term: 2 }));
  assert.equal(a.role, Role.Leader);
});

Deno.test("§4.2.1 learners do not count towards the commit quorum", () => {
  const net = elected(["a", "b", "c"], { learners: ["d", "e"] });
  net.isolate("b");
  net.isolate("c");
  net.node("a").propose(commands("x"));
  net.stabilize();
  assert.equal(net.node("d").lastIndex, 3, "the learners hold the entry");
  assert.equal(net.node("e").lastIndex, 3);
  assert.equal(net.node("a").commitIndex, 2, "a + two learners is still one voter of three");
});

// -------------------------------------------------------------------- §4.1 membership

Deno.test("§4.1 a membership change is refused until the leader commits an entry of its term", () => {
  const net = newCluster(["a", "b", "c"]);
  net.dropWhere(isMsg(MessageType.App, "a"));
  net.campaign("a");
  const a = net.node("a");
  assert.deepEqual(a.proposeConfChange({ type: "addLearner", node: "d" }), {
    ok: false,
    reason: "the leader has not committed an entry of its term yet",
  });
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(a.commitIndex, 2);
  assert.deepEqual(a.proposeConfChange({ type: "addLearner", node: "d" }), {
    ok: true,
    firstIndex: 3,
    term: 2,
  });
});

Deno.test("§4.1 only one membership change may be uncommitted at a time", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("b");
  net.isolate("c");
  const a = net.node("a");
  assert.equal(a.proposeConfChange({ type: "addLearner", node: "d" }).ok, true);
  assert.deepEqual(a.proposeConfChange({ type: "addLearner", node: "e" }), {
    ok: false,
    reason: "another membership change is in progress",
  });
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(a.commitIndex, 3);
  assert.equal(a.proposeConfChange({ type: "addLearner", node: "e" }).ok, true);
});

Deno.test("§4.1 a configuration takes effect as soon as its entry is in the log", () => {
  const net = elected(["a", "b", "c"]);
  net.isolate("b");
  net.isolate("c");
  const a = net.node("a");
  a.proposeConfChange({ type: "addVoter", node: "d" });
  assert.deepEqual(a.conf, conf(["a", "b", "c", "d"]), "before it commits");
  assert.ok(a.status().peers.some((p) => p.id === "d"), "the leader tracks the new member");
  assert.deepEqual(net.node("b").conf, conf(["a", "b", "c"]));
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(net.node("b").conf, conf(["a", "b", "c", "d"]));
});

Deno.test("§4.1 a new voter catches up from an empty log and then counts in the quorum", () => {
  const net = elected(["a", "b", "c"]);
  const d = net.add(newNode("d", EMPTY_STATE, {}, 4));
  const a = net.node("a");
  a.propose(commands("x"));
  net.stabilize();
  assert.equal(a.proposeConfChange({ type: "addVoter", node: "d" }).ok, true);
  net.stabilize();
  // The leader first contacts the new member with its next heartbeat.
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(logShape(d), logShape(a));
  assert.deepEqual(d.conf, conf(["a", "b", "c", "d"]));
  assert.deepEqual(appliedTexts(net, "d"), ["x"]);
  // Four voters: a quorum is three. a + d is not enough ...
  net.isolate("b");
  net.isolate("c");
  a.propose(commands("y"));
  net.stabilize();
  assert.equal(a.commitIndex, 4);
  // ... a + c + d is.
  net.heal();
  net.isolate("b");
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(a.commitIndex, 5);
});

Deno.test("§4.1 a removed follower stops receiving the log", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.proposeConfChange({ type: "remove", node: "c" });
  net.stabilize();
  assert.deepEqual(a.conf, conf(["a", "b"]));
  const mark = net.sent.length;
  a.propose(commands("x"));
  net.stabilize();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.deepEqual(net.sentSince(mark, (m) => m.to === "c"), []);
  assert.equal(a.commitIndex, 4, "a and b are the majority of two");
});

Deno.test("§4.2.2 a leader that removes itself leads until the change commits, then steps down", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  net.isolate("c");
  assert.equal(a.proposeConfChange({ type: "remove", node: "a" }).ok, true);
  net.stabilize();
  // The new configuration {b, c} needs both: a itself no longer counts.
  assert.equal(a.role, Role.Leader);
  assert.equal(a.commitIndex, 2);
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(a.role, Role.Follower);
  assert.equal(a.promotable, false);
  const leaders = net.leaders();
  assert.equal(leaders.length, 1);
  assert.ok(["b", "c"].includes(leaders[0]), "it handed over to an up-to-date voter");
  assert.deepEqual(net.node(leaders[0]).conf, conf(["b", "c"]));
  net.tick(["a"], 10 * ELECTION_TICKS);
  assert.equal(a.role, Role.Follower, "the removed node never campaigns");
});

// ------------------------------------------------------------------------ §5.7 snapshots

Deno.test("§5.7 a follower behind the compacted log is sent a snapshot, then the rest", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  net.isolate("c");
  for (let i = 0; i < 5; i++) {
    a.propose(commands(`${i}`));
    net.stabilize();
  }
  assert.equal(a.commitIndex, 7);
  const data = new TextEncoder().encode("state at 6");
  a.setSnapshot({ index: 6, term: a.termAt(6)!, conf: a.confAt(6), data }, 6);
  assert.equal(a.status().snapshotIndex, 6);
  assert.equal(a.termAt(5), undefined, "compacted");
  net.heal();
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  const c = net.node("c");
  const installed = net.record("c").snapshots;
  assert.equal(installed.length, 1);
  assert.equal(installed[0].index, 6);
  assert.deepEqual(installed[0].data, data);
  assert.deepEqual(installed[0].conf, conf(["a", "b", "c"]));
  assert.deepEqual(logShape(c), logShape(a));
  assert.equal(c.commitIndex, 7);
  assert.deepEqual(net.record("c").applied.map((e) => e.index).filter((i) => i > 6), [7]);
  const peer = a.status().peers.find((p) => p.id === "c")!;
  assert.equal(peer.state, ProgressState.Replicate);
  assert.equal(peer.match, 7);
});

Deno.test("§5.7 a lost snapshot is sent again once the shell reports the failure", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  net.isolate("c");
  a.propose(commands("x", "y"));
  net.stabilize();
  a.setSnapshot({ index: 4, term: 2, conf: a.confAt(4), data: new Uint8Array([4]) }, 4);
  net.heal();
  net.dropWhere(isMsg(MessageType.Snap));
  const mark = net.sent.length;
  tickAndSettle(net, "a", 3 * HEARTBEAT_TICKS);
  const peer = () => a.status().peers.find((p) => p.id === "c")!;
  assert.equal(peer().state, ProgressState.Snapshot);
  assert.equal(net.sentSince(mark, isMsg(MessageType.Snap)).length, 1, "one snapshot at a time");
  net.heal();
  a.reportSnapshot("c", false);
  assert.equal(peer().state, ProgressState.Probe);
  tickAndSettle(net, "a", HEARTBEAT_TICKS);
  assert.equal(net.sentSince(mark, isMsg(MessageType.Snap)).length, 2);
  assert.equal(net.record("c").snapshots.length, 1);
  assert.equal(net.node("c").lastIndex, 4);
  assert.equal(peer().state, ProgressState.Replicate);
});

Deno.test("§5.7 a snapshot never rolls back a follower's commit index", () => {
  const net = elected(["a", "b", "c"]);
  const b = net.node("b");
  const before = b.commitIndex;
  b.step(makeMessage(MessageType.Snap, {
    from: "a",
    to: "b",
    term: 2,
    snapshot: { index: 1, term: 1, conf: conf(["a", "b", "c"]), data: new Uint8Array() },
  }));
  assert.equal(b.commitIndex, before);
  const rd = b.ready();
  assert.equal(rd.snapshot, null);
  const [resp] = rd.messages.filter(isMsg(MessageType.AppResp));
  assert.equal(resp.index, before, "the leader learns where b really is");
});

// ------------------------------------------------------ Ready: messagesEarly vs messages

Deno.test("Ready: a voter that grants a vote sends the answer only after persisting it", () => {
  const b = newNode("b", bootstrapState(conf(["a", "b", "c"])));
  b.step(makeMessage(MessageType.Vote, { from: "a", to: "b", term: 2, index: 1, logTerm: 1 }));
  const rd = b.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: "a" });
  assert.deepEqual(rd.messagesEarly, []);
  assert.deepEqual(rd.messages.map((m) => m.type), [MessageType.VoteResp]);
});

Deno.test("Ready: a node whose term or vote changed sends nothing early, not even appends", () => {
  // a becomes candidate and then leader without a Ready in between.
  const a = newNode("a", bootstrapState(conf(["a", "b", "c"])), { preVote: false });
  a.campaign();
  a.step(makeMessage(MessageType.VoteResp, { from: "b", to: "a", term: 2 }));
  assert.equal(a.role, Role.Leader);
  const rd = a.ready();
  assert.deepEqual(rd.hardState, { term: 2, vote: "a" });
  assert.deepEqual(rd.messagesEarly, []);
  const types = new Set(rd.messages.map((m) => m.type));
  assert.ok(types.has(MessageType.App), "its appends wait for the term to be on disk");
  a.advance(rd);
  // Once the term is on disk, its appends and heartbeats may go at once.
  a.step(makeMessage(MessageType.AppResp, { from: "b", to: "a", term: 2, index: 2 }));
  a.propose(commands("x"));
  a.tick();
  const next = a.ready();
  assert.equal(next.hardState, null);
  assert.deepEqual(next.messages, []);
  assert.deepEqual(
    [...new Set(next.messagesEarly.map((m) => m.type))].sort(),
    [MessageType.App, MessageType.Heartbeat],
  );
});

Deno.test("Ready: a follower's AppResp is never in messagesEarly", () => {
  const net = elected(["a", "b", "c"]);
  const b = net.node("b");
  const app = (index: number, logTerm: number, entries: Entry[]): Message =>
    makeMessage(MessageType.App, { from: "a", to: "b", term: 2, index, logTerm, entries });
  // Accepting: the answer promises the entries are on disk.
  b.step(app(2, 2, [entry(3, 2, "x")]));
  // Rejecting, and a heartbeat: nothing to persist, still not early.
  b.step(app(9, 2, []));
  b.step(makeMessage(MessageType.Heartbeat, { from: "a", to: "b", term: 2, commit: 2 }));
  const rd = b.ready();
  assert.equal(rd.hardState, null);
  assert.deepEqual(rd.entries.map((e) => e.index), [3]);
  assert.deepEqual(rd.messagesEarly, []);
  assert.deepEqual(rd.messages.map((m) => [m.type, m.reject]), [
    [MessageType.AppResp, false],
    [MessageType.AppResp, true],
    [MessageType.HeartbeatResp, false],
  ]);
});

Deno.test("Ready: a follower that installs a snapshot answers only after persisting it", () => {
  const net = elected(["a", "b", "c"]);
  const b = net.node("b");
  const snap = { index: 10, term: 2, conf: conf(["a", "b", "c"]), data: new Uint8Array([7]) };
  b.step(makeMessage(MessageType.Snap, { from: "a", to: "b", term: 2, snapshot: snap }));
  const rd = b.ready();
  assert.deepEqual(rd.snapshot, snap);
  assert.deepEqual(rd.messagesEarly, []);
  assert.deepEqual(rd.messages.map((m) => [m.type, m.index]), [[MessageType.AppResp, 10]]);
  b.advance(rd);
  assert.equal(b.hasReady(), false, "a snapshot is handed out once");
  assert.equal(b.commitIndex, 10);
});

Deno.test("Ready: hasReady is false once everything was handed out and advanced", () => {
  const net = elected(["a", "b", "c"]);
  for (const id of ["a", "b", "c"]) assert.equal(net.node(id).hasReady(), false, id);
  net.node("a").propose(commands("x"));
  assert.equal(net.node("a").hasReady(), true);
});

// ------------------------------------------------------------------ a follower that lost data

Deno.test("a follower refuses, not clamps, a heartbeat commit above its last index", () => {
  const c = conf(["a", "b", "c"]);
  // b holds only the bootstrap entry; a heartbeat says index 5 is committed and b acknowledged it.
  const b = newNode("b", stateWithLog(c, [], 2));
  b.step(makeMessage(MessageType.Heartbeat, { from: "a", to: "b", term: 2, commit: 5 }));
  const rd = b.ready();
  assert.equal(b.commitIndex, 0, "nothing becomes committed that this log never held");
  assert.deepEqual(rd.committedEntries, []);
  const resp = rd.messages.find(isMsg(MessageType.HeartbeatResp, "b", "a"));
  assert.ok(resp !== undefined);
  assert.equal(resp.reject, true);
  assert.equal(resp.index, 1, "the answer says how far this log really goes");
  b.advance(rd);
  // A heartbeat within the log is accepted and reports the last index.
  b.step(makeMessage(MessageType.Heartbeat, { from: "a", to: "b", term: 2, commit: 1 }));
  const ok = b.ready().messages.find(isMsg(MessageType.HeartbeatResp, "b", "a"));
  assert.equal(ok?.reject, false);
  assert.equal(ok?.index, 1);
  assert.equal(b.commitIndex, 1);
});

Deno.test("a leader stops counting a follower that reports less than it acknowledged", () => {
  const net = elected(["a", "b", "c"]);
  const a = net.node("a");
  a.propose(commands("x", "y"));
  net.stabilize();
  const matchOf = (id: NodeId) => a.status().peers.find((p) => p.id === id)!.match;
  assert.equal(matchOf("b"), a.lastIndex);
  // b's data dir is wiped and it comes back under the same id with only the bootstrap entry.
  const b = newNode("b", bootstrapState(conf(["a", "b", "c"])), {}, 2);
  for (let i = 0; i < HEARTBEAT_TICKS; i++) a.tick();
  const hb = a.ready().messagesEarly.find(isMsg(MessageType.Heartbeat, "a", "b"));
  assert.ok(hb !== undefined);
  b.step(hb);
  const resp = b.ready().messages.find(isMsg(MessageType.HeartbeatResp, "b", "a"));
  assert.equal(resp?.reject, true);
  a.step(resp!);
  assert.equal(matchOf("b"), 1, "the lost entries are no longer counted as b's");
  const probe = a.ready().messagesEarly.find(isMsg(MessageType.App, "a", "b"));
  assert.equal(probe?.index, 1, "a probes b again from what b really holds");
  // A repeated (duplicated) rejection changes nothing more.
  a.step(resp!);
  assert.equal(matchOf("b"), 1);
});

Deno.test("§5.2: a rejected candidate of a higher term does not restart the voters' timers", () => {
  // c's log is stale and its election timeout is a third of b's. Without PreVote it campaigns
  // again and again; b must still time out and win, or the group never has a leader again.
  const c3 = conf(["a", "b", "c"]);
  const net = new Network();
  net.add(newNode("a", stateWithLog(c3, [2, 2], 2), { preVote: false }, 1));
  net.add(newNode("b", stateWithLog(c3, [2, 2], 2), { preVote: false, electionTicks: 30 }, 2));
  net.add(newNode("c", stateWithLog(c3, [2], 2), { preVote: false, electionTicks: 10 }, 3));
  net.isolate("a"); // the old leader is gone for good
  for (let t = 0; t < 600 && net.leaders().length === 0; t++) {
    net.tick(["b", "c"]);
    net.stabilize();
  }
  assert.deepEqual(net.leaders(), ["b"], "the node whose log is up to date wins");
});
