/**
 * The simulator's checks can fail: each test feeds the checker a history broken by hand and
 * expects the right property to be reported, next to the same history unbroken, which passes.
 */

import assert from "node:assert/strict";
import {
  type Entry,
  EntryType,
  type HardState,
  makeMessage,
  MessageType,
} from "../../lib/raft/mod.ts";
import { Check, Checker, CheckFailure, type CheckName, type DiskView } from "./sim/checker.ts";
import { deltaOf, encodeIncrement, encodeValue, proposalIdOf, valueOf } from "./sim/codec.ts";
import { SimDisk } from "./sim/disk.ts";

function checker(): Checker {
  return new Checker({ deltaOf, proposalIdOf, valueOf });
}

function inc(index: number, term: number, delta: number, id: number): Entry {
  return { index, term, type: EntryType.Normal, data: encodeIncrement(BigInt(delta), id) };
}

function noop(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}

function fails(check: CheckName, fn: () => void): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckFailure, `expected a CheckFailure, got ${e}`);
    assert.equal(e.check, check, e.message);
    return true;
  });
}

function log(terms: Record<number, number>, snapshotIndex = 0) {
  return { termAt: (i: number) => terms[i], snapshotIndex };
}

function disk(hardState: HardState, held: Record<number, number>): DiskView {
  return {
    hardState,
    holds: (i, t) => held[i] !== undefined && (t === undefined || held[i] === t),
  };
}

Deno.test("checker: two leaders in one term break election safety", () => {
  const c = checker();
  c.leaderElected("n1", 2, log({}));
  c.leaderElected("n1", 2, log({}));
  c.leaderElected("n2", 3, log({}));
  fails(Check.electionSafety, () => c.leaderElected("n2", 2, log({})));
});

Deno.test("checker: a leader missing a committed entry breaks leader completeness", () => {
  const c = checker();
  c.entryApplied("n1", 2, noop(1, 1), 0n);
  c.entryApplied("n1", 2, inc(2, 2, 5, 1), 5n);
  c.leaderElected("n2", 3, log({ 1: 1, 2: 2 }));
  c.leaderElected("n4", 4, log({ 2: 2 }, 2)); // index 1 is inside its snapshot
  // A leader of an earlier term may win late with old votes: it owes nothing committed later.
  c.leaderElected("n5", 1, log({ 1: 1 }));
  fails(Check.leaderCompleteness, () => c.leaderElected("n3", 5, log({ 1: 1, 2: 3 })));
});

Deno.test("checker: one (index, term) with two contents breaks log matching", () => {
  const c = checker();
  c.entriesAppended("n1", 0, 0, [noop(1, 1), inc(2, 1, 5, 1)]);
  c.entriesAppended("n2", 1, 1, [inc(2, 1, 5, 1)]);
  fails(Check.logMatching, () => c.entriesAppended("n3", 1, 1, [inc(2, 1, 6, 1)]));
  fails(Check.logMatching, () => c.entriesAppended("n3", 1, 0, [inc(2, 1, 5, 1)]));
  fails(Check.logMatching, () => c.entriesAppended("n3", 2, 2, [inc(3, 1, 1, 2)]));
});

Deno.test("checker: different entries or values at one index break state machine safety", () => {
  const c = checker();
  c.entryApplied("n1", 1, noop(1, 1), 0n);
  c.entryApplied("n1", 1, inc(2, 1, 5, 1), 5n);
  c.entryApplied("n2", 1, noop(1, 1), 0n);
  fails(Check.stateMachineSafety, () => c.entryApplied("n2", 1, inc(2, 1, 7, 2), 7n));

  const d = checker();
  d.entryApplied("n1", 1, noop(1, 1), 0n);
  fails(Check.stateMachineSafety, () => d.entryApplied("n1", 1, inc(2, 1, 5, 1), 6n));

  const gap = checker();
  gap.entryApplied("n1", 1, noop(1, 1), 0n);
  fails(Check.stateMachineSafety, () => gap.entryApplied("n1", 1, inc(3, 1, 5, 1), 5n));

  const twice = checker();
  twice.entryApplied("n1", 1, inc(1, 1, 5, 1), 5n);
  fails(Check.stateMachineSafety, () => twice.entryApplied("n1", 1, inc(2, 1, 5, 1), 10n));
});

Deno.test("checker: a snapshot with the wrong value breaks state machine safety", () => {
  const c = checker();
  c.entryApplied("n1", 1, inc(1, 1, 5, 1), 5n);
  c.entryApplied("n1", 1, inc(2, 1, 3, 2), 8n);
  const good = { index: 2, term: 1, conf: { voters: ["n1"], learners: [] }, data: encodeValue(8n) };
  c.snapshotApplied("n2", 1, good);
  fails(
    Check.stateMachineSafety,
    () => c.snapshotApplied("n3", 1, { ...good, data: encodeValue(9n) }),
  );
  fails(Check.stateMachineSafety, () => c.snapshotApplied("n2", 1, good)); // not past its applied index
});

Deno.test("checker: answering before the disk holds the promise breaks durability", () => {
  const c = checker();
  const voteFor = (to: string, term: number) =>
    makeMessage(MessageType.VoteResp, { from: "n1", to, term });
  c.messageSent("n1", voteFor("n2", 3), disk({ term: 3, vote: "n2" }, {}));
  c.messageSent("n1", voteFor("n2", 3), disk({ term: 4, vote: "" }, {})); // moved on since: fine
  fails(
    Check.durability,
    () => c.messageSent("n1", voteFor("n2", 3), disk({ term: 3, vote: "" }, {})),
  );
  fails(
    Check.durability,
    () => c.messageSent("n1", voteFor("n2", 3), disk({ term: 2, vote: "" }, {})),
  );

  const app = makeMessage(MessageType.App, {
    from: "n2",
    to: "n1",
    term: 3,
    index: 0,
    logTerm: 0,
    entries: [noop(1, 3)],
  });
  c.messageSent("n2", app, disk({ term: 3, vote: "n2" }, {}));
  const ack = makeMessage(MessageType.AppResp, { from: "n1", to: "n2", term: 3, index: 1 });
  c.messageSent("n1", ack, disk({ term: 3, vote: "n2" }, { 1: 3 }));
  fails(Check.durability, () => c.messageSent("n1", ack, disk({ term: 3, vote: "n2" }, {})));
  fails(Check.durability, () => c.messageSent("n1", ack, disk({ term: 3, vote: "n2" }, { 1: 2 })));
});

Deno.test("checker: a commit no majority holds on disk breaks durability", () => {
  const c = checker();
  const conf = { voters: ["n1", "n2", "n3"], learners: [] };
  const disks = new Map<string, SimDisk>();
  for (const id of conf.voters) {
    disks.set(id, new SimDisk({ hardState: { term: 2, vote: "n1" }, snapshot: null, entries: [] }));
  }
  disks.get("n1")!.write({ hardState: null, snapshot: null, entries: [noop(1, 2)] });
  fails(Check.durability, () => c.commitExposed("n1", 1, 2, [conf], (id) => disks.get(id)));
  disks.get("n3")!.write({ hardState: null, snapshot: null, entries: [noop(1, 2)] });
  c.commitExposed("n1", 1, 2, [conf], (id) => disks.get(id));
});

Deno.test("checker: a stale read breaks linearizability", () => {
  const c = checker();
  c.entryApplied("n1", 1, inc(1, 1, 5, 1), 5n);
  c.entryApplied("n1", 1, inc(2, 1, 3, 2), 8n);
  c.proposalAcked(2, 2, 1);
  const ackedBefore = c.ackedIndexMax;
  assert.equal(ackedBefore, 2);
  c.readIndexReturned("n2", 1, ackedBefore, 2);
  c.readServed("n2", 1, ackedBefore, 2, 8n);
  fails(Check.linearizability, () => c.readIndexReturned("n2", 2, ackedBefore, 1));
  fails(Check.linearizability, () => c.readServed("n2", 2, ackedBefore, 1, 5n));
  fails(Check.linearizability, () => c.readServed("n2", 2, ackedBefore, 2, 5n));
});

Deno.test("checker: acknowledging what was not committed is caught", () => {
  const c = checker();
  c.entryApplied("n1", 1, inc(1, 1, 5, 1), 5n);
  c.proposalAcked(1, 1, 1);
  fails(Check.acknowledged, () => c.proposalAcked(2, 1, 1));
  fails(Check.acknowledged, () => c.proposalAcked(1, 1, 2));
  fails(Check.acknowledged, () => c.proposalAcked(3, 2, 1));
  assert.equal(c.finalSum(1, new Map([[1, 1]])), 5n);
  fails(Check.acknowledged, () => c.finalSum(1, new Map([[1, 1], [9, 2]])));
});
