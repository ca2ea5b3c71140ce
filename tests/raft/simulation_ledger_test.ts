/**
 * The simulator's exactly-once checks (tests/raft/sim/ledger.ts) can fail: each test feeds the
 * ledger a committed log by hand and a node state machine that misbehaves in one way, and expects
 * the right property to be reported, next to the same history done right, which passes.
 */

import assert from "node:assert/strict";
import { type Entry, EntryType } from "../../lib/raft/mod.ts";
import {
  decodeIncrements,
  encodeIncrement,
  IncrementBatch,
  type IncrementCommand,
} from "../../lib/counter/command.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CounterStateMachine,
} from "../../lib/counter/state_machine.ts";
import { Check, CheckFailure, type CheckName } from "./sim/checker.ts";
import { Ledger } from "./sim/ledger.ts";

const T0_MS = 1_700_000_000_000;

function cmd(fields: Partial<IncrementCommand>): IncrementCommand {
  return { delta: 5n, proposedAtMs: T0_MS, clientId: "c1", seq: 1, ackedBelow: 1, ...fields };
}

function entry(index: number, c: IncrementCommand | null, term = 1): Entry {
  return {
    index,
    term,
    type: EntryType.Normal,
    data: c === null ? new Uint8Array(0) : encodeIncrement(c),
  };
}

/** A batch entry holding `cmds`, stamped with the first one's time. */
function batchEntry(index: number, cmds: IncrementCommand[], term = 1): Entry {
  const batch = new IncrementBatch();
  for (const { proposedAtMs: _, ...item } of cmds) batch.add(item);
  return { index, term, type: EntryType.Normal, data: batch.encode(cmds[0].proposedAtMs) };
}

function fails(check: CheckName, fn: () => void): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckFailure, `expected a CheckFailure, got ${e}`);
    assert.equal(e.check, check, e.message);
    return true;
  });
}

/** A node that applies `entries` with its own state machine, as the simulator does. */
class Node {
  sm = new CounterStateMachine();
  constructor(readonly ledger: Ledger, readonly id = "n1") {}

  apply(
    e: Entry,
    tamper: (c: IncrementCommand) => IncrementCommand = (c) => c,
  ): ApplyResult | null {
    return this.applyAll(e, tamper)?.[0] ?? null;
  }

  /** Applies `e` and returns one answer per increment (null for a no-op). */
  applyAll(
    e: Entry,
    tamper: (c: IncrementCommand) => IncrementCommand = (c) => c,
  ): ApplyResult[] | null {
    this.ledger.observe(this.id, e);
    const before = this.sm.value;
    let results: ApplyResult[] | null = null;
    if (e.data.length > 0) {
      results = decodeIncrements(e.data).map((c) => this.sm.apply(tamper(c)));
    }
    this.ledger.nodeApplied(this.id, e, before, results, this.sm);
    return results;
  }
}

/** The log: a no-op, (c1, 1), a retry of it, (c1, 2) acknowledging 1, a stale duplicate of 1. */
function log(): Entry[] {
  return [
    entry(1, null),
    entry(2, cmd({ delta: 5n })),
    entry(3, cmd({ delta: 5n, proposedAtMs: T0_MS + 10 })),
    entry(4, cmd({ delta: 7n, seq: 2, ackedBelow: 2 })),
    entry(5, cmd({ delta: 5n, proposedAtMs: T0_MS + 20 })),
  ];
}

Deno.test("ledger: a retried request counts once; the duplicate gets the first answer", () => {
  const ledger = new Ledger(1);
  const a = new Node(ledger, "n1");
  const b = new Node(ledger, "n2");
  const answers = log().map((e) => a.apply(e));
  assert.deepEqual(answers[1], { ok: true, value: 5n });
  assert.deepEqual(answers[2], { ok: true, value: 5n });
  assert.deepEqual(answers[3], { ok: true, value: 12n });
  assert.equal(answers[4]?.ok === false && answers[4].code, "STALE_REQUEST");
  for (const e of log()) b.apply(e);
  assert.equal(ledger.expected, 12n);
  assert.deepEqual(ledger.repeatsAt(3), [2]);
  assert.deepEqual(ledger.repeatsAt(2), []);
  assert.equal(ledger.stats.duplicates, 2);
  assert.equal(ledger.stats.staleAnswers, 1);
});

Deno.test("ledger: a node that applies a duplicate again breaks exactly once", () => {
  const ledger = new Ledger(1000);
  const entries = log();
  const good = new Node(ledger, "n1");
  for (const e of entries.slice(0, 3)) good.apply(e);
  // n2 forgot its sessions (say, a restore that kept only the value): the retry applies again.
  const bad = new Node(ledger, "n2");
  bad.apply(entries[0]);
  bad.apply(entries[1]);
  bad.sm = new CounterStateMachine();
  bad.sm.apply({ delta: 5n, proposedAtMs: T0_MS, clientId: "", seq: 0, ackedBelow: 0 });
  fails(Check.exactlyOnce, () => bad.apply(entries[2]));
});

Deno.test("ledger: a wrong value breaks state machine safety, a wrong answer exactly once", () => {
  const ledger = new Ledger(1000);
  const entries = log();
  const a = new Node(ledger, "n1");
  for (const e of entries) a.apply(e);
  const b = new Node(ledger, "n2");
  b.apply(entries[0]);
  fails(
    Check.stateMachineSafety,
    () => b.apply(entries[1], (c) => ({ ...c, delta: c.delta + 1n })),
  );
  // Same value, other answer: the state machine said STALE_REQUEST to a request it never answered.
  const c = new Node(ledger, "n3");
  c.apply(entries[0]);
  c.apply(entries[1]);
  c.apply(entries[2]);
  c.apply(entries[3]);
  const e5 = entries[4];
  ledger.observe("n3", e5);
  fails(
    Check.exactlyOnce,
    () => ledger.nodeApplied("n3", e5, 12n, [{ ok: true, value: 5n }], c.sm),
  );
});

Deno.test("ledger: sessions that differ at a sampled index break exactly once", () => {
  const ledger = new Ledger(2);
  const entries = log();
  const a = new Node(ledger, "n1");
  for (const e of entries) a.apply(e);
  const b = new Node(ledger, "n2");
  b.apply(entries[0]);
  // n2 goes by its own clock, 1 ms ahead: same value and answer, another session table.
  const late = (c: IncrementCommand) => ({ ...c, proposedAtMs: c.proposedAtMs + 1 });
  assert.equal(ledger.sampled(2), true);
  fails(Check.exactlyOnce, () => b.apply(entries[1], late));
  assert.equal(ledger.sampled(3), false);
});

Deno.test("ledger: sessions expire by the entries' clock, and the count is checked", () => {
  const ledger = new Ledger(1);
  const a = new Node(ledger, "n1");
  a.apply(entry(1, cmd({ clientId: "old", seq: 1, ackedBelow: 1 })));
  a.apply(entry(2, cmd({ clientId: "new", seq: 1, ackedBelow: 1, proposedAtMs: T0_MS + 5 })));
  assert.equal(a.sm.sessionCount, 2);
  // An hour and a bit later "old" is gone, "new" (5 ms younger) is not yet.
  const later = T0_MS + CLIENT_IDLE_EXPIRY_MS + 1;
  a.apply(entry(3, cmd({ clientId: "", seq: 0, ackedBelow: 0, proposedAtMs: later })));
  assert.equal(a.sm.sessionCount, 1);
  assert.equal(ledger.stats.sessionsExpired, 1);
  // "old" comes back and starts a new session.
  a.apply(entry(4, cmd({ clientId: "old", seq: 2, ackedBelow: 2, proposedAtMs: later })));
  assert.equal(ledger.expected, 20n);
});

Deno.test("ledger: an index applied before the one before it anywhere is reported", () => {
  const ledger = new Ledger(1);
  fails(Check.stateMachineSafety, () => ledger.observe("n1", entry(2, null)));
});

Deno.test("ledger: a batch is accounted item by item, a repeat inside it as a duplicate", () => {
  const ledger = new Ledger(1);
  const a = new Node(ledger, "n1");
  const b = new Node(ledger, "n2");
  const entries = [
    entry(1, null),
    batchEntry(2, [
      cmd({ delta: 5n }),
      cmd({ delta: 5n }),
      cmd({ delta: 7n, seq: 2 }),
      cmd({ delta: 1n, clientId: "", seq: 0, ackedBelow: 0 }),
    ]),
    batchEntry(3, [cmd({ delta: 5n }), cmd({ delta: 7n, seq: 2 })]),
  ];
  const answers = entries.map((e) => a.applyAll(e));
  assert.deepEqual(answers[1], [
    { ok: true, value: 5n },
    { ok: true, value: 5n },
    { ok: true, value: 12n },
    { ok: true, value: 13n },
  ]);
  assert.deepEqual(answers[2], [{ ok: true, value: 5n }, { ok: true, value: 12n }]);
  for (const e of entries) b.applyAll(e);
  assert.equal(ledger.expected, 13n);
  assert.deepEqual(ledger.repeatsAt(2), [2], "the second (c1, 1) repeats the first");
  assert.deepEqual(ledger.repeatsAt(3), [2, 2]);
  assert.equal(ledger.stats.duplicates, 3);
});

Deno.test("ledger: a node that applies a repeat inside a batch again breaks exactly once", () => {
  const ledger = new Ledger(1000);
  const e = batchEntry(1, [cmd({ delta: 5n }), cmd({ delta: 5n })]);
  new Node(ledger, "n1").applyAll(e);
  // n2 treats every item as new (it forgot the session between items).
  const bad = new Node(ledger, "n2");
  ledger.observe("n2", e);
  bad.sm.apply(cmd({ delta: 5n, clientId: "", seq: 0 }));
  bad.sm.apply(cmd({ delta: 5n, clientId: "", seq: 0 }));
  fails(
    Check.stateMachineSafety,
    () =>
      ledger.nodeApplied("n2", e, 0n, [{ ok: true, value: 5n }, { ok: true, value: 10n }], bad.sm),
  );
  // Same value, but answers out of item order: exactly once (each client gets its own answer).
  const swapped = new Node(ledger, "n3");
  const e2 = batchEntry(2, [cmd({ delta: 7n, seq: 2 }), cmd({ delta: 1n, seq: 3 })]);
  new Node(ledger, "n4").applyAll(e); // n4 keeps up so that index 2 is observed
  ledger.observe("n1", e2);
  swapped.applyAll(e);
  const sm = swapped.sm;
  sm.applyEntry(e2.data);
  fails(
    Check.exactlyOnce,
    () =>
      ledger.nodeApplied("n3", e2, 5n, [{ ok: true, value: 13n }, { ok: true, value: 12n }], sm),
  );
});

Deno.test("ledger: a batch whose every item was applied before must not change the counter", () => {
  const ledger = new Ledger(1000);
  const first = batchEntry(1, [cmd({ delta: 5n }), cmd({ delta: 7n, seq: 2 })]);
  const again = batchEntry(2, [cmd({ delta: 5n }), cmd({ delta: 7n, seq: 2 })]);
  const a = new Node(ledger, "n1");
  a.applyAll(first);
  a.applyAll(again);
  assert.equal(a.sm.value, 12n);
  const b = new Node(ledger, "n2");
  b.applyAll(first);
  ledger.observe("n2", again);
  b.sm.apply(cmd({ delta: 1n, clientId: "", seq: 0 }));
  fails(
    Check.exactlyOnce,
    () =>
      ledger.nodeApplied(
        "n2",
        again,
        12n,
        [{ ok: true, value: 5n }, { ok: true, value: 12n }],
        b.sm,
      ),
  );
});
