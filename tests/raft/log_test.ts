import assert from "node:assert/strict";
import { RaftLog } from "../../lib/raft/log.ts";
import { encodeConfState } from "../../lib/raft/conf.ts";
import {
  type ConfState,
  type Entry,
  EntryType,
  InvariantError,
  type Snapshot,
} from "../../lib/raft/mod.ts";
import { entry } from "./_network.ts";

/** Entries at index 1, 2, ... with the given terms. */
function entries(...terms: number[]): Entry[] {
  return terms.map((t, i) => entry(i + 1, t));
}

/** A Config entry naming `voters`. */
function confEntry(index: number, term: number, voters: string[]): Entry {
  return {
    index,
    term,
    type: EntryType.Config,
    data: encodeConfState({ voters, learners: [] }),
  };
}

function snapshot(index: number, term: number, voters: string[] = ["a"]): Snapshot {
  return { index, term, conf: { voters, learners: [] }, data: new Uint8Array([1, 2, 3]) };
}

/** The (index, term) pairs of the log from firstIndex to lastIndex. */
function shape(log: RaftLog): [number, number][] {
  const out: [number, number][] = [];
  for (let i = log.firstIndex(); i <= log.lastIndex(); i++) out.push([i, log.term(i)!]);
  return out;
}

/** Hands out everything unstable and reports it persisted, as a shell would. */
function persistAll(log: RaftLog): void {
  const es = log.takeUnstable();
  if (es.length > 0) log.stableTo(es[es.length - 1].index, es[es.length - 1].term);
}

function voters(c: ConfState | null): string[] | null {
  return c === null ? null : c.voters;
}

Deno.test("an empty log: index 0 has term 0, nothing else exists", () => {
  const log = new RaftLog(null, []);
  assert.equal(log.firstIndex(), 1);
  assert.equal(log.lastIndex(), 0);
  assert.equal(log.lastTerm(), 0);
  assert.equal(log.term(0), 0);
  assert.equal(log.term(1), undefined);
  assert.equal(log.entry(0), undefined);
  assert.equal(log.committed, 0);
  assert.equal(log.hasUnstable(), false);
});

Deno.test("recovered entries count as persisted; commit and apply restart from the snapshot", () => {
  const log = new RaftLog(snapshot(5, 2), [entry(6, 2), entry(7, 3)]);
  assert.equal(log.firstIndex(), 6);
  assert.equal(log.lastIndex(), 7);
  assert.equal(log.lastTerm(), 3);
  assert.equal(log.term(5), 2, "the snapshot's term is known");
  assert.equal(log.term(4), undefined, "compacted");
  assert.equal(log.entry(5), undefined);
  assert.equal(log.stableIndex(), 7);
  assert.equal(log.hasUnstable(), false);
  assert.equal(log.committed, 5);
  assert.equal(log.applied, 5);
});

Deno.test("recovered entries must follow the snapshot without a gap", () => {
  assert.throws(() => new RaftLog(snapshot(5, 2), [entry(7, 2)]), InvariantError);
  assert.throws(() => new RaftLog(null, [entry(1, 1), entry(3, 1)]), InvariantError);
});

Deno.test("append adds entries after the last one", () => {
  const log = new RaftLog(null, entries(1));
  log.append([entry(2, 1), entry(3, 2)]);
  assert.deepEqual(shape(log), [[1, 1], [2, 1], [3, 2]]);
  log.append([]);
  assert.equal(log.lastIndex(), 3);
});

Deno.test("append cuts off a conflicting suffix before adding", () => {
  const log = new RaftLog(null, entries(1, 1, 1, 1));
  log.append([entry(3, 2)]);
  assert.deepEqual(shape(log), [[1, 1], [2, 1], [3, 2]]);
});

Deno.test("append never overwrites a committed entry", () => {
  const log = new RaftLog(null, entries(1, 1, 1));
  log.commitTo(2);
  assert.throws(() => log.append([entry(2, 2)]), InvariantError);
  assert.deepEqual(shape(log), [[1, 1], [2, 1], [3, 1]]);
});

Deno.test("append refuses a gap after the last entry", () => {
  const log = new RaftLog(null, entries(1));
  assert.throws(() => log.append([entry(3, 1)]), InvariantError);
});

Deno.test("findConflict: first entry missing or of another term, 0 when all are held", () => {
  const log = new RaftLog(null, entries(1, 2, 3));
  const table: { given: Entry[]; want: number }[] = [
    { given: [], want: 0 },
    { given: [entry(1, 1), entry(2, 2), entry(3, 3)], want: 0 },
    { given: [entry(2, 2), entry(3, 3)], want: 0 },
    { given: [entry(3, 3)], want: 0 },
    // New entries past the end.
    { given: [entry(2, 2), entry(3, 3), entry(4, 4), entry(5, 4)], want: 4 },
    { given: [entry(4, 4)], want: 4 },
    // Conflicting terms.
    { given: [entry(1, 4), entry(2, 4)], want: 1 },
    { given: [entry(2, 1), entry(3, 4), entry(4, 4)], want: 2 },
    { given: [entry(3, 1), entry(4, 2)], want: 3 },
  ];
  for (const { given, want } of table) {
    assert.equal(log.findConflict(given), want, JSON.stringify(given.map((e) => e.index)));
  }
});

Deno.test("findConflictByTerm: largest index at or below the given one whose term is not above", () => {
  // Terms by index:        1  2  3  4  5  6  7
  const log = new RaftLog(null, entries(1, 1, 2, 2, 4, 4, 5));
  const table: { index: number; term: number; want: number }[] = [
    { index: 7, term: 5, want: 7 },
    { index: 7, term: 4, want: 6 },
    { index: 7, term: 3, want: 4 }, // skips the whole of term 4 in one step
    { index: 7, term: 2, want: 4 },
    { index: 7, term: 1, want: 2 },
    { index: 7, term: 0, want: 0 },
    { index: 4, term: 1, want: 2 },
    { index: 100, term: 9, want: 7 }, // past the end: start from the last entry
    { index: 0, term: 0, want: 0 },
  ];
  for (const c of table) {
    assert.equal(log.findConflictByTerm(c.index, c.term), c.want, JSON.stringify(c));
  }
});

Deno.test("findConflictByTerm stops at the snapshot boundary", () => {
  const log = new RaftLog(snapshot(3, 2), [entry(4, 3), entry(5, 3)]);
  assert.equal(log.findConflictByTerm(5, 2), 3);
  assert.equal(log.findConflictByTerm(5, 1), 3, "nothing older is known; try the snapshot");
});

Deno.test("maybeAppend: rejects when the entry before the new ones does not match", () => {
  const log = new RaftLog(null, entries(1, 2, 3));
  assert.equal(log.maybeAppend(3, 2, 3, [entry(4, 3)]), -1, "wrong term at prevIndex");
  assert.equal(log.maybeAppend(4, 3, 3, [entry(5, 3)]), -1, "prevIndex beyond the log");
  assert.deepEqual(shape(log), [[1, 1], [2, 2], [3, 3]]);
  assert.equal(log.committed, 0, "a rejected append commits nothing");
});

Deno.test("maybeAppend: appends and returns the index of the last new entry", () => {
  const table: {
    name: string;
    prev: [number, number];
    commit: number;
    given: Entry[];
    wantLast: number;
    wantCommit: number;
    wantShape: [number, number][];
  }[] = [
    {
      name: "heartbeat-like: nothing new",
      prev: [3, 3],
      commit: 3,
      given: [],
      wantLast: 3,
      wantCommit: 3,
      wantShape: [[1, 1], [2, 2], [3, 3]],
    },
    {
      name: "new entries at the end",
      prev: [3, 3],
      commit: 4,
      given: [entry(4, 4), entry(5, 4)],
      wantLast: 5,
      wantCommit: 4,
      wantShape: [[1, 1], [2, 2], [3, 3], [4, 4], [5, 4]],
    },
    {
      name: "commit is capped by the last entry the leader vouched for",
      prev: [1, 1],
      commit: 10,
      given: [entry(2, 2)],
      wantLast: 2,
      wantCommit: 2,
      wantShape: [[1, 1], [2, 2], [3, 3]],
    },
    {
      name: "entries already held: nothing is truncated (the message may be stale)",
      prev: [1, 1],
      commit: 0,
      given: [entry(2, 2)],
      wantLast: 2,
      wantCommit: 0,
      wantShape: [[1, 1], [2, 2], [3, 3]],
    },
    {
      name: "a conflicting entry replaces the suffix from its index",
      prev: [1, 1],
      commit: 1,
      given: [entry(2, 4), entry(3, 4), entry(4, 4)],
      wantLast: 4,
      wantCommit: 1,
      wantShape: [[1, 1], [2, 4], [3, 4], [4, 4]],
    },
    {
      name: "conflict after a matching prefix of the new entries",
      prev: [1, 1],
      commit: 0,
      given: [entry(2, 2), entry(3, 4)],
      wantLast: 3,
      wantCommit: 0,
      wantShape: [[1, 1], [2, 2], [3, 4]],
    },
  ];
  for (const c of table) {
    const log = new RaftLog(null, entries(1, 2, 3));
    assert.equal(log.maybeAppend(c.prev[0], c.prev[1], c.commit, c.given), c.wantLast, c.name);
    assert.equal(log.committed, c.wantCommit, c.name);
    assert.deepEqual(shape(log), c.wantShape, c.name);
  }
});

Deno.test("maybeAppend: a conflict with a committed entry is an invariant violation", () => {
  const log = new RaftLog(null, entries(1, 2, 3));
  log.commitTo(2);
  assert.throws(() => log.maybeAppend(1, 1, 2, [entry(2, 5)]), InvariantError);
});

Deno.test("the commit index never goes backwards nor past the last entry", () => {
  const log = new RaftLog(null, entries(1, 1, 1));
  log.commitTo(2);
  log.commitTo(1);
  assert.equal(log.committed, 2);
  assert.throws(() => log.commitTo(4), InvariantError);
});

Deno.test("unstable entries are handed out once, then reported stable", () => {
  const log = new RaftLog(null, entries(1));
  log.append([entry(2, 1), entry(3, 1)]);
  assert.equal(log.hasUnstable(), true);
  assert.deepEqual(log.takeUnstable().map((e) => e.index), [2, 3]);
  assert.equal(log.hasUnstable(), false);
  assert.deepEqual(log.takeUnstable(), []);
  assert.equal(log.stableIndex(), 1, "handed out is not yet on disk");
  log.stableTo(3, 1);
  assert.equal(log.stableIndex(), 3);
  log.stableTo(2, 1);
  assert.equal(log.stableIndex(), 3, "never goes backwards");
});

Deno.test("stableTo ignores a write whose entry has since been replaced by another term", () => {
  const log = new RaftLog(null, entries(1));
  log.append([entry(2, 1), entry(3, 1)]);
  const written = log.takeUnstable(); // the shell starts writing [2, 3] of term 1 ...
  log.append([entry(2, 2)]); // ... while a new leader replaces them
  log.stableTo(written[1].index, written[1].term);
  assert.equal(log.stableIndex(), 1, "the replacing entry 2 (term 2) is not on disk yet");
  assert.deepEqual(log.takeUnstable(), [entry(2, 2)], "the replacement is handed out again");
  log.stableTo(2, 2);
  assert.equal(log.stableIndex(), 2);
});

Deno.test("stableTo ignores a write for an index the log no longer holds", () => {
  const log = new RaftLog(null, entries(1));
  log.append([entry(2, 1), entry(3, 1)]);
  log.takeUnstable();
  log.append([entry(2, 2)]);
  log.stableTo(3, 1);
  assert.equal(log.stableIndex(), 1);
});

Deno.test("stableTo never claims entries that were not handed out", () => {
  const log = new RaftLog(null, entries(1));
  log.append([entry(2, 1)]);
  log.takeUnstable();
  log.append([entry(3, 1)]); // same term: matchTerm(3, 1) would hold
  log.stableTo(3, 1);
  assert.equal(log.stableIndex(), 2);
  assert.deepEqual(log.takeUnstable(), [entry(3, 1)]);
});

Deno.test("truncating a persisted suffix lowers the stable index", () => {
  const log = new RaftLog(null, entries(1, 1, 1));
  assert.equal(log.stableIndex(), 3);
  log.append([entry(2, 2)]);
  assert.equal(log.stableIndex(), 1);
  assert.deepEqual(log.takeUnstable(), [entry(2, 2)]);
});

Deno.test("takeCommitted hands out committed entries in order, at most countMax at a time", () => {
  const log = new RaftLog(null, entries(1, 1, 1, 1, 1));
  assert.deepEqual(log.takeCommitted(10), []);
  log.commitTo(4);
  assert.equal(log.hasCommittedToApply(), true);
  assert.deepEqual(log.takeCommitted(3).map((e) => e.index), [1, 2, 3]);
  assert.equal(log.applied, 3);
  assert.deepEqual(log.takeCommitted(3).map((e) => e.index), [4]);
  assert.equal(log.hasCommittedToApply(), false);
  assert.deepEqual(log.takeCommitted(3), []);
});

Deno.test("takeCommitted after a snapshot starts just past it", () => {
  const log = new RaftLog(snapshot(5, 1), [entry(6, 1), entry(7, 1)]);
  log.commitTo(7);
  assert.deepEqual(log.takeCommitted(10).map((e) => e.index), [6, 7]);
});

Deno.test("slice honours the byte limit but always returns at least one entry", () => {
  const big = (i: number): Entry => ({ ...entry(i, 1), data: new Uint8Array(100) });
  const log = new RaftLog(null, [big(1), big(2), big(3)]);
  assert.deepEqual(log.slice(1, 3, 1 << 20).map((e) => e.index), [1, 2, 3]);
  assert.deepEqual(log.slice(1, 3, 1).map((e) => e.index), [1]);
  assert.deepEqual(log.slice(2, 3, 250).map((e) => e.index), [2, 3]);
  assert.deepEqual(log.slice(1, 3, 200).map((e) => e.index), [1]);
});

Deno.test("compact drops applied and persisted entries, keeping the boundary's term", () => {
  const log = new RaftLog(null, entries(1, 1, 2, 2, 3));
  log.commitTo(4);
  log.takeCommitted(10);
  log.compact(3);
  assert.equal(log.snapshotIndex(), 3);
  assert.equal(log.firstIndex(), 4);
  assert.equal(log.term(3), 2);
  assert.equal(log.term(2), undefined);
  assert.deepEqual(shape(log), [[4, 2], [5, 3]]);
  log.compact(2);
  assert.equal(log.snapshotIndex(), 3, "compacting to an older index does nothing");
});

Deno.test("compact refuses entries that are not applied or not persisted", () => {
  const log = new RaftLog(null, entries(1, 1));
  log.append([entry(3, 1)]);
  log.commitTo(3);
  log.takeCommitted(2);
  assert.throws(() => log.compact(3), InvariantError, "not applied");
  log.takeCommitted(1);
  assert.throws(() => log.compact(3), InvariantError, "not persisted");
  persistAll(log);
  log.compact(3);
  assert.equal(log.lastIndex(), 3);
  assert.equal(log.lastTerm(), 1);
});

Deno.test("confAt: the latest configuration at or below the index", () => {
  const log = new RaftLog(null, [
    confEntry(1, 1, ["a"]),
    entry(2, 1),
    confEntry(3, 1, ["a", "b"]),
    entry(4, 1),
    confEntry(5, 2, ["a", "b", "c"]),
  ]);
  assert.equal(log.confAt(0), null);
  assert.deepEqual(voters(log.confAt(1)), ["a"]);
  assert.deepEqual(voters(log.confAt(2)), ["a"]);
  assert.deepEqual(voters(log.confAt(4)), ["a", "b"]);
  assert.deepEqual(voters(log.confAt(5)), ["a", "b", "c"]);
  assert.deepEqual(voters(log.latestConf()), ["a", "b", "c"]);
  assert.equal(log.latestConfIndex(), 5);
});

Deno.test("confAt forgets a configuration whose entry was truncated", () => {
  const log = new RaftLog(null, [confEntry(1, 1, ["a"]), confEntry(2, 1, ["a", "b"])]);
  log.append([entry(2, 2)]);
  assert.deepEqual(voters(log.latestConf()), ["a"]);
  assert.equal(log.latestConfIndex(), 1);
  log.append([confEntry(3, 2, ["a", "c"])]);
  assert.deepEqual(voters(log.latestConf()), ["a", "c"]);
});

Deno.test("compaction keeps the configuration in force at the boundary", () => {
  const log = new RaftLog(null, [
    confEntry(1, 1, ["a"]),
    confEntry(2, 1, ["a", "b"]),
    entry(3, 1),
    confEntry(4, 1, ["a", "b", "c"]),
  ]);
  log.commitTo(4);
  log.takeCommitted(10);
  log.compact(3);
  assert.deepEqual(voters(log.confAt(3)), ["a", "b"]);
  assert.deepEqual(voters(log.latestConf()), ["a", "b", "c"]);
  log.compact(4);
  assert.deepEqual(voters(log.latestConf()), ["a", "b", "c"]);
  assert.equal(log.latestConfIndex(), 4, "the snapshot index once no Config entry is left");
});

Deno.test("a snapshot's configuration applies when no Config entry follows it", () => {
  const log = new RaftLog(snapshot(4, 2, ["x", "y"]), [entry(5, 2)]);
  assert.deepEqual(voters(log.confAt(5)), ["x", "y"]);
  assert.equal(log.latestConfIndex(), 4);
});

Deno.test("restore replaces the whole log with a snapshot", () => {
  const log = new RaftLog(null, [confEntry(1, 1, ["a"]), entry(2, 1), entry(3, 1)]);
  log.append([entry(4, 1)]);
  log.restore(snapshot(10, 3, ["a", "b"]));
  assert.equal(log.firstIndex(), 11);
  assert.equal(log.lastIndex(), 10);
  assert.equal(log.lastTerm(), 3);
  assert.equal(log.committed, 10);
  assert.equal(log.applied, 10);
  assert.equal(log.stableIndex(), 10);
  assert.equal(log.hasUnstable(), false);
  assert.deepEqual(voters(log.latestConf()), ["a", "b"]);
  log.append([entry(11, 3)]);
  assert.deepEqual(log.takeUnstable(), [entry(11, 3)]);
});

Deno.test("§5.4.1 isUpToDate: a later last term wins; with equal terms the longer log wins", () => {
  const log = new RaftLog(null, entries(1, 2, 2)); // last (3, 2)
  const table: { index: number; term: number; want: boolean }[] = [
    { index: 1, term: 3, want: true }, // higher term, shorter log: still more up to date
    { index: 3, term: 2, want: true },
    { index: 4, term: 2, want: true },
    { index: 2, term: 2, want: false },
    { index: 9, term: 1, want: false }, // lower term, longer log: not up to date
  ];
  for (const c of table) {
    assert.equal(log.isUpToDate(c.index, c.term), c.want, JSON.stringify(c));
  }
});

Deno.test("tailStart: the lowest index whose entries up to hi fit in a byte budget", () => {
  const sized = (index: number, bytes: number): Entry => ({
    index,
    term: 1,
    type: EntryType.Normal,
    data: new Uint8Array(bytes),
  });
  // Entries 4..8 after a snapshot at 3, holding 10, 20, 30, 40 and 50 bytes.
  const log = new RaftLog(snapshot(3, 1), [10, 20, 30, 40, 50].map((b, i) => sized(i + 4, b)));
  assert.equal(log.tailStart(8, 50), 8, "entry 8 alone fits exactly");
  assert.equal(log.tailStart(8, 89), 8, "7 and 8 hold 90");
  assert.equal(log.tailStart(8, 90), 7);
  assert.equal(log.tailStart(7, 70), 6, "counted from hi, not from the last index");
  assert.equal(log.tailStart(8, 49), 9, "the entry at hi alone is over the budget");
  assert.equal(log.tailStart(8, 1_000), 4, "never below the first retained entry");
  assert.equal(log.tailStart(20, 50), 8, "hi past the last index counts from the last");
  assert.equal(new RaftLog(snapshot(3, 1), []).tailStart(3, 100), 4, "nothing held");
});
