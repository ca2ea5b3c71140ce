/** Tests of the counter state machine (lib/counter/state_machine.ts). */

import assert from "node:assert/strict";
import {
  encodeIncrement,
  IncrementBatch,
  type IncrementCommand,
} from "../../lib/counter/command.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CLIENT_RESULTS_MAX,
  CLIENT_RESULTS_TOTAL_MAX,
  CLIENT_SESSIONS_MAX,
  CounterStateMachine,
  INT64_MAX,
  INT64_MIN,
} from "../../lib/counter/state_machine.ts";

/** A fixed leader clock: every test is deterministic. */
const T0_MS = 1_700_000_000_000;

function incr(
  delta: bigint,
  fields: Partial<Omit<IncrementCommand, "delta">> = {},
): IncrementCommand {
  return { delta, proposedAtMs: T0_MS, clientId: "", seq: 0, ackedBelow: 0, ...fields };
}

/** An increment from session `clientId` with sequence number `seq`. */
function from(
  clientId: string,
  seq: number,
  delta: bigint,
  fields: Partial<IncrementCommand> = {},
): IncrementCommand {
  return incr(delta, { clientId, seq, ackedBelow: 1, ...fields });
}

function ok(value: bigint): ApplyResult {
  return { ok: true, value };
}

function assertFailed(result: ApplyResult, code: "OVERFLOW" | "STALE_REQUEST"): void {
  assert.equal(result.ok, false, `expected ${code}, got ${JSON.stringify(result, replacer)}`);
  if (!result.ok) {
    assert.equal(result.code, code);
    assert.ok(result.error.length > 0);
  }
}

function replacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? `${value}n` : value;
}

function machineAt(value: bigint): CounterStateMachine {
  const sm = new CounterStateMachine();
  if (value !== 0n) assert.deepEqual(sm.apply(incr(value)), ok(value));
  return sm;
}

// ---- 64-bit arithmetic ----

Deno.test("a new state machine holds 0 and no sessions", () => {
  const sm = new CounterStateMachine();
  assert.equal(sm.value, 0n);
  assert.equal(sm.sessionCount, 0);
});

Deno.test("arithmetic is exact above 2^53, where a double would round", () => {
  const sm = machineAt(2n ** 53n);
  assert.deepEqual(sm.apply(incr(1n)), ok(2n ** 53n + 1n));
  assert.deepEqual(sm.apply(incr(1n)), ok(2n ** 53n + 2n));
  assert.deepEqual(sm.apply(incr(INT64_MAX - sm.value)), ok(INT64_MAX));
  assert.deepEqual(sm.apply(incr(-1n)), ok(INT64_MAX - 1n));
  assert.deepEqual(sm.apply(incr(-INT64_MAX)), ok(-1n));
  assert.deepEqual(sm.apply(incr(INT64_MIN + 1n)), ok(INT64_MIN));
  assert.equal(sm.value, INT64_MIN);
});

Deno.test("applyEntry decodes the entry data and applies it", () => {
  const sm = new CounterStateMachine();
  const data = encodeIncrement(incr(2n ** 60n + 3n, { clientId: "c", seq: 1, ackedBelow: 1 }));
  assert.deepEqual(sm.applyEntry(data), [ok(2n ** 60n + 3n)]);
  // The same entry again is a duplicate.
  assert.deepEqual(sm.applyEntry(data), [ok(2n ** 60n + 3n)]);
  assert.equal(sm.value, 2n ** 60n + 3n);
  assert.throws(() => sm.applyEntry(new Uint8Array([9, 9, 9])));
  assert.equal(sm.value, 2n ** 60n + 3n);
});

Deno.test("an increment past INT64_MAX is refused with OVERFLOW and changes nothing", () => {
  const sm = machineAt(INT64_MAX - 1n);
  assertFailed(sm.apply(incr(2n)), "OVERFLOW");
  assert.equal(sm.value, INT64_MAX - 1n);
  assertFailed(sm.apply(incr(INT64_MAX)), "OVERFLOW");
  assert.equal(sm.value, INT64_MAX - 1n);
  // Exactly reaching the limit is fine; one more is not.
  assert.deepEqual(sm.apply(incr(1n)), ok(INT64_MAX));
  assertFailed(sm.apply(incr(1n)), "OVERFLOW");
  assert.equal(sm.value, INT64_MAX);
});

Deno.test("an increment below INT64_MIN is refused with OVERFLOW and changes nothing", () => {
  const sm = machineAt(INT64_MIN + 1n);
  assertFailed(sm.apply(incr(-2n)), "OVERFLOW");
  assert.equal(sm.value, INT64_MIN + 1n);
  assertFailed(sm.apply(incr(INT64_MIN)), "OVERFLOW");
  assert.equal(sm.value, INT64_MIN + 1n);
  assert.deepEqual(sm.apply(incr(-1n)), ok(INT64_MIN));
  assertFailed(sm.apply(incr(-1n)), "OVERFLOW");
  assert.equal(sm.value, INT64_MIN);
});

Deno.test("a refused overflow records the refusal: its retry is refused too, even if it would fit now", () => {
  const sm = machineAt(INT64_MAX);
  assertFailed(sm.apply(from("c", 1, 1n)), "OVERFLOW");
  assert.deepEqual(sm.apply(incr(-10n)), ok(INT64_MAX - 10n));
  // The retry of seq 1 would fit now, but its answer is already decided.
  assertFailed(sm.apply(from("c", 1, 1n)), "OVERFLOW");
  assert.equal(sm.value, INT64_MAX - 10n);
});

// ---- Sessions: exactly-once ----

Deno.test("a duplicate (same clientId and seq) returns the first result and changes nothing", () => {
  const sm = new CounterStateMachine();
  assert.deepEqual(sm.apply(from("a", 1, 5n)), ok(5n));
  assert.deepEqual(sm.apply(from("a", 2, 7n)), ok(12n));
  assert.deepEqual(sm.apply(from("a", 1, 5n)), ok(5n));
  assert.deepEqual(sm.apply(from("a", 2, 7n)), ok(12n));
  // Even a duplicate carrying another delta is the same request: its first answer stands.
  assert.deepEqual(sm.apply(from("a", 2, 1000n)), ok(12n));
  assert.equal(sm.value, 12n);
  // The same seq from another client is another request.
  assert.deepEqual(sm.apply(from("b", 1, 5n)), ok(17n));
  assert.equal(sm.sessionCount, 2);
});

Deno.test("anonymous increments (no clientId or seq 0) are never de-duplicated", () => {
  const sm = new CounterStateMachine();
  assert.deepEqual(sm.apply(incr(1n)), ok(1n));
  assert.deepEqual(sm.apply(incr(1n)), ok(2n));
  assert.deepEqual(sm.apply(incr(1n, { clientId: "a", seq: 0 })), ok(3n));
  assert.deepEqual(sm.apply(incr(1n, { clientId: "a", seq: 0 })), ok(4n));
  assert.deepEqual(sm.apply(incr(1n, { clientId: "", seq: 9 })), ok(5n));
  assert.deepEqual(sm.apply(incr(1n, { clientId: "", seq: 9 })), ok(6n));
  assert.equal(sm.sessionCount, 0);
});

Deno.test("seqs of one client may arrive out of order; each applies once", () => {
  const sm = new CounterStateMachine();
  // Powers of two: the value says exactly which increments were applied.
  assert.deepEqual(sm.apply(from("c", 3, 4n)), ok(4n));
  assert.deepEqual(sm.apply(from("c", 1, 1n)), ok(5n));
  assert.deepEqual(sm.apply(from("c", 5, 16n)), ok(21n));
  assert.deepEqual(sm.apply(from("c", 2, 2n)), ok(23n));
  assert.deepEqual(sm.apply(from("c", 4, 8n)), ok(31n));
  for (const [seq, value] of [[1, 5n], [2, 23n], [3, 4n], [4, 31n], [5, 21n]] as const) {
    assert.deepEqual(sm.apply(from("c", seq, 2n ** BigInt(seq - 1))), ok(value));
  }
  assert.equal(sm.value, 31n);
});

Deno.test("ackedBelow forgets answers below it; a retry below it gets STALE_REQUEST", () => {
  const sm = new CounterStateMachine();
  assert.deepEqual(sm.apply(from("c", 1, 1n, { ackedBelow: 1 })), ok(1n));
  assert.deepEqual(sm.apply(from("c", 2, 2n, { ackedBelow: 1 })), ok(3n));
  assert.deepEqual(sm.apply(from("c", 3, 4n, { ackedBelow: 1 })), ok(7n));
  // The client has the answers to 1 and 2.
  assert.deepEqual(sm.apply(from("c", 4, 8n, { ackedBelow: 3 })), ok(15n));
  assertFailed(sm.apply(from("c", 1, 1n, { ackedBelow: 1 })), "STALE_REQUEST");
  assertFailed(sm.apply(from("c", 2, 2n, { ackedBelow: 3 })), "STALE_REQUEST");
  assert.equal(sm.value, 15n);
  // 3 is still remembered, and a lower ackedBelow later does not bring anything back.
  assert.deepEqual(sm.apply(from("c", 3, 4n, { ackedBelow: 1 })), ok(7n));
  assert.equal(sm.value, 15n);
  // The forgotten answers are gone from the snapshot too.
  const restored = new CounterStateMachine();
  restored.restore(sm.snapshot());
  assertFailed(restored.apply(from("c", 2, 2n, { ackedBelow: 1 })), "STALE_REQUEST");
  assert.deepEqual(restored.apply(from("c", 3, 4n)), ok(7n));
});

Deno.test("a request whose own seq is below its ackedBelow is STALE_REQUEST, not applied", () => {
  const sm = new CounterStateMachine();
  assertFailed(sm.apply(from("c", 3, 1n, { ackedBelow: 5 })), "STALE_REQUEST");
  assert.equal(sm.value, 0n);
  assert.deepEqual(sm.apply(from("c", 5, 1n, { ackedBelow: 5 })), ok(1n));
});

Deno.test("a session idle longer than CLIENT_IDLE_EXPIRY_MS is forgotten (by the entries' clock)", () => {
  const sm = new CounterStateMachine();
  assert.deepEqual(sm.apply(from("old", 1, 1n, { proposedAtMs: T0_MS })), ok(1n));
  assert.deepEqual(sm.apply(from("young", 1, 10n, { proposedAtMs: T0_MS + 1000 })), ok(11n));
  assert.equal(sm.sessionCount, 2);

  // Exactly at the expiry time the session is still remembered.
  const atLimit = T0_MS + CLIENT_IDLE_EXPIRY_MS;
  assert.deepEqual(sm.apply(incr(100n, { proposedAtMs: atLimit })), ok(111n));
  assert.equal(sm.sessionCount, 2);
  assert.deepEqual(sm.apply(from("old", 1, 1n, { proposedAtMs: atLimit })), ok(1n));
  assert.equal(sm.value, 111n);

  // "old" was active again at atLimit; "young" last at T0 + 1000, so it expires first.
  const later = T0_MS + 1000 + CLIENT_IDLE_EXPIRY_MS + 1;
  assert.deepEqual(sm.apply(incr(0n, { proposedAtMs: later })), ok(111n));
  assert.equal(sm.sessionCount, 1);
  // Forgotten: the retry is a new request now (the documented price of expiry).
  assert.deepEqual(sm.apply(from("young", 1, 10n, { proposedAtMs: later })), ok(121n));
  // "old" is still known.
  assert.deepEqual(sm.apply(from("old", 1, 1n, { proposedAtMs: later })), ok(1n));
  assert.equal(sm.value, 121n);
});

Deno.test("expiry depends only on the entries, so two replicas agree whatever their clocks", () => {
  const entries: IncrementCommand[] = [];
  for (let i = 0; i < 50; i++) {
    entries.push(
      from(`c${i % 7}`, 1 + Math.floor(i / 7), BigInt(i), {
        proposedAtMs: T0_MS + i * (CLIENT_IDLE_EXPIRY_MS / 10),
      }),
    );
  }
  const a = new CounterStateMachine();
  const b = new CounterStateMachine();
  const resultsA = entries.map((e) => a.apply(e));
  const resultsB = entries.map((e) => b.apply(e));
  assert.deepEqual(resultsA, resultsB);
  assert.deepEqual(a.snapshot(), b.snapshot());
});

Deno.test("the session table is bounded; the least recently active session goes first", () => {
  const sm = new CounterStateMachine();
  for (let i = 0; i < CLIENT_SESSIONS_MAX; i++) {
    sm.apply(from(`c${i}`, 1, 1n, { proposedAtMs: T0_MS + i }));
  }
  assert.equal(sm.sessionCount, CLIENT_SESSIONS_MAX);
  // Touch c0 so that c1 becomes the least recently active.
  assert.deepEqual(
    sm.apply(from("c0", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX })),
    ok(1n),
  );
  assert.deepEqual(
    sm.apply(from("new", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX + 1 })),
    ok(BigInt(CLIENT_SESSIONS_MAX) + 1n),
  );
  assert.equal(sm.sessionCount, CLIENT_SESSIONS_MAX);
  const value = sm.value;
  // c0 and c2 are remembered; c1 was evicted, so its retry counts again.
  assert.deepEqual(
    sm.apply(from("c0", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX + 2 })),
    ok(1n),
  );
  assert.deepEqual(
    sm.apply(from("c2", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX + 2 })),
    ok(3n),
  );
  assert.equal(sm.value, value);
  assert.deepEqual(
    sm.apply(from("c1", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX + 3 })),
    ok(value + 1n),
  );
  assert.equal(sm.sessionCount, CLIENT_SESSIONS_MAX);
});

Deno.test("a session remembers at most CLIENT_RESULTS_MAX answers", () => {
  // 1 version + 8 value + 4 count, then per session 2 + id + 8 + 8 + 4, and 17 per answer.
  const resultsBytes = (sm: CounterStateMachine) => sm.snapshot().length - 13 - (2 + 1 + 20);
  // Acknowledging as it goes, a client keeps one answer remembered.
  const acking = new CounterStateMachine();
  for (let seq = 1; seq <= 100; seq++) acking.apply(from("a", seq, 1n, { ackedBelow: seq }));
  assert.equal(resultsBytes(acking), 17);

  // Never acknowledging, the session stops growing at the bound: further increments are refused
  // (BUSY, nothing applied) rather than forgetting an answer a retry may still need.
  const greedy = new CounterStateMachine();
  for (let seq = 1; seq <= CLIENT_RESULTS_MAX; seq++) greedy.apply(from("g", seq, 1n));
  const refused = greedy.apply(from("g", CLIENT_RESULTS_MAX + 1, 1n));
  assert.equal(refused.ok, false);
  assert.equal(!refused.ok && refused.code, "BUSY");
  assert.equal(resultsBytes(greedy), CLIENT_RESULTS_MAX * 17);
  assert.equal(greedy.value, BigInt(CLIENT_RESULTS_MAX));
  // The oldest answer is still there: a retry of it changes nothing.
  assert.deepEqual(greedy.apply(from("g", 1, 1n)), ok(1n));
  assert.equal(greedy.value, BigInt(CLIENT_RESULTS_MAX));
  // Once the client acknowledges, room is made and the refused increment applies on retry.
  const retried = greedy.apply(from("g", CLIENT_RESULTS_MAX + 1, 1n, { ackedBelow: 2 }));
  assert.deepEqual(retried, ok(BigInt(CLIENT_RESULTS_MAX + 1)));
});

Deno.test("answers over all sessions are bounded; the least recently active session goes first", () => {
  const sm = new CounterStateMachine();
  const sessions = Math.ceil(CLIENT_RESULTS_TOTAL_MAX / CLIENT_RESULTS_MAX) + 1;
  for (let c = 0; c < sessions; c++) {
    for (let seq = 1; seq <= CLIENT_RESULTS_MAX; seq++) sm.apply(from(`c${c}`, seq, 1n));
  }
  const applied = BigInt(sessions * CLIENT_RESULTS_MAX);
  assert.equal(sm.value, applied);
  assert.ok(sm.sessionCount < sessions);
  assert.ok(sm.sessionCount * CLIENT_RESULTS_MAX <= CLIENT_RESULTS_TOTAL_MAX);
  // The newest session is intact; the oldest was forgotten, so its retry counts again.
  assert.deepEqual(
    sm.apply(from(`c${sessions - 1}`, 1, 1n)),
    ok(applied - BigInt(CLIENT_RESULTS_MAX) + 1n),
  );
  assert.equal(sm.value, applied);
  assert.deepEqual(sm.apply(from("c0", 1, 1n)), ok(applied + 1n));
});

// ---- Snapshots ----

function populated(): CounterStateMachine {
  const sm = new CounterStateMachine();
  sm.apply(incr(INT64_MAX - 100n));
  sm.apply(from("alpha", 1, 1n, { proposedAtMs: T0_MS + 1 }));
  sm.apply(from("alpha", 3, 2n, { proposedAtMs: T0_MS + 2 }));
  sm.apply(from("beta-ü", 1, 1000n, { proposedAtMs: T0_MS + 3 })); // OVERFLOW, remembered
  sm.apply(from("gamma", 7, -5n, { ackedBelow: 6, proposedAtMs: T0_MS + 4 }));
  sm.apply(from("gamma", 2, 1n, { ackedBelow: 6, proposedAtMs: T0_MS + 5 })); // STALE, not kept
  sm.apply(from("delta", 4, 1n, { ackedBelow: 4, proposedAtMs: T0_MS + 6 }));
  return sm;
}

Deno.test("snapshot and restore round-trip the value and the sessions", () => {
  const sm = populated();
  const data = sm.snapshot();
  const copy = new CounterStateMachine();
  copy.apply(from("stranger", 1, 42n)); // replaced wholesale by restore
  copy.restore(data);
  assert.equal(copy.value, sm.value);
  assert.equal(copy.sessionCount, sm.sessionCount);
  assert.equal(copy.sessionCount, 4);
  assert.deepEqual(copy.snapshot(), data);

  // Both answer every later request the same way (codes and values; messages may differ).
  const probes: IncrementCommand[] = [
    from("alpha", 1, 1n),
    from("alpha", 3, 2n),
    from("alpha", 2, 1n),
    from("beta-ü", 1, 1000n),
    from("gamma", 2, 1n, { ackedBelow: 6 }),
    from("gamma", 7, -5n, { ackedBelow: 6 }),
    from("delta", 4, 1n, { ackedBelow: 4 }),
    from("stranger", 1, 42n),
    from("new", 1, 200n),
  ];
  for (const probe of probes) {
    const a = sm.apply(probe);
    const b = copy.apply(probe);
    assert.equal(a.ok, b.ok);
    if (a.ok && b.ok) assert.equal(a.value, b.value);
    if (!a.ok && !b.ok) assert.equal(a.code, b.code);
  }
  assert.equal(copy.value, sm.value);
  assert.deepEqual(copy.snapshot(), sm.snapshot());
});

Deno.test("the restored session ages from its recorded activity time", () => {
  const sm = new CounterStateMachine();
  sm.apply(from("c", 1, 1n, { proposedAtMs: T0_MS }));
  const copy = new CounterStateMachine();
  copy.restore(sm.snapshot());
  copy.apply(incr(0n, { proposedAtMs: T0_MS + CLIENT_IDLE_EXPIRY_MS }));
  assert.equal(copy.sessionCount, 1);
  copy.apply(incr(0n, { proposedAtMs: T0_MS + CLIENT_IDLE_EXPIRY_MS + 1 }));
  assert.equal(copy.sessionCount, 0);
});

Deno.test("an empty state machine's snapshot round-trips", () => {
  const data = new CounterStateMachine().snapshot();
  assert.deepEqual([...data], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  const sm = machineAt(5n);
  sm.restore(data);
  assert.equal(sm.value, 0n);
  assert.equal(sm.sessionCount, 0);
});

Deno.test("restore rejects truncated data and leaves the state unchanged", () => {
  const data = populated().snapshot();
  const sm = machineAt(77n);
  sm.apply(from("keep", 1, 1n));
  const before = sm.snapshot();
  for (let length = 0; length < data.length; length++) {
    assert.throws(() => sm.restore(data.subarray(0, length)), Error, `length ${length}`);
  }
  assert.deepEqual(sm.snapshot(), before);
});

Deno.test("restore rejects trailing bytes", () => {
  for (const data of [new CounterStateMachine().snapshot(), populated().snapshot()]) {
    const sm = new CounterStateMachine();
    assert.throws(() => sm.restore(Uint8Array.of(...data, 0)), /trailing/);
    assert.throws(() => sm.restore(Uint8Array.of(...data, 1, 2, 3)), /trailing/);
    assert.equal(sm.value, 0n);
  }
});

Deno.test("restore rejects an unknown version, result kind, invalid UTF-8 and garbage", () => {
  const sm = machineAt(3n);
  const data = populated().snapshot();
  assert.throws(() => sm.restore(Uint8Array.of(2, ...data.subarray(1))), /version/);
  assert.throws(() => sm.restore(Uint8Array.of(0, ...data.subarray(1))), /version/);

  // One session "a" with one result of kind 9.
  const bad = new Uint8Array(13 + 2 + 1 + 20 + 17);
  const view = new DataView(bad.buffer);
  bad[0] = 1;
  view.setUint32(9, 1);
  view.setUint16(13, 1);
  bad[15] = 0x61;
  view.setUint32(32, 1);
  bad[36 + 8] = 9;
  assert.throws(() => sm.restore(bad), /result kind/);
  bad[36 + 8] = 1;
  const good = new CounterStateMachine();
  good.restore(bad); // The same bytes with kind 1 are fine.
  assert.equal(good.sessionCount, 1);
  bad[15] = 0xff;
  assert.throws(() => sm.restore(bad));

  // A session count far beyond the data.
  const huge = new CounterStateMachine().snapshot();
  new DataView(huge.buffer).setUint32(9, 0xffffffff);
  assert.throws(() => sm.restore(huge), /truncated/);

  // Deterministic pseudo-random garbage: it must throw or produce a state that re-encodes to
  // exactly the same bytes, never something half-read.
  let seed = 12345;
  const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (let i = 0; i < 500; i++) {
    const junk = Uint8Array.from({ length: 1 + (i % 64) }, next);
    if (i % 2 === 0) junk[0] = 1;
    const target = new CounterStateMachine();
    try {
      target.restore(junk);
    } catch {
      assert.equal(target.value, 0n);
      continue;
    }
    assert.deepEqual(target.snapshot(), junk);
  }
  assert.equal(sm.value, 3n);
});

// ---- Batch entries: the same as their items in consecutive entries ----

/** One batch entry holding `cmds` (which share the first one's stamp). */
function batchEntry(cmds: IncrementCommand[]): Uint8Array {
  const batch = new IncrementBatch();
  for (const { proposedAtMs: _, ...item } of cmds) assert.equal(batch.add(item), true);
  return batch.encode(cmds[0].proposedAtMs);
}

/**
 * Applies `cmds` to one machine as a batch and to another one entry each: the answers, the value
 * and the whole state (the snapshot bytes, sessions included) must be the same.
 */
function assertBatchIsSequence(
  start: CounterStateMachine,
  cmds: IncrementCommand[],
): ApplyResult[] {
  const batched = new CounterStateMachine();
  const single = new CounterStateMachine();
  batched.restore(start.snapshot());
  single.restore(start.snapshot());
  const answers = batched.applyEntry(batchEntry(cmds));
  const expected = cmds.map((cmd) => single.applyEntry(encodeIncrement(cmd))[0]);
  assert.deepEqual(answers, expected);
  assert.equal(batched.value, single.value);
  assert.deepEqual(batched.snapshot(), single.snapshot());
  start.restore(batched.snapshot());
  return answers;
}

Deno.test("a batch applies like its increments in consecutive entries, one answer each", () => {
  const sm = new CounterStateMachine();
  const answers = assertBatchIsSequence(sm, [
    from("a", 1, 5n),
    incr(10n),
    from("b", 1, -3n),
    from("a", 2, 1n),
    incr(1n, { clientId: "a", seq: 0 }),
  ]);
  assert.deepEqual(answers, [ok(5n), ok(15n), ok(12n), ok(13n), ok(14n)]);
  assert.equal(sm.sessionCount, 2);
  // A retry of a whole batch, as its own batch, is all duplicates but the anonymous ones.
  assert.deepEqual(
    assertBatchIsSequence(sm, [from("a", 1, 5n), incr(10n), from("b", 1, -3n), from("a", 2, 1n)]),
    [ok(5n), ok(24n), ok(12n), ok(13n)],
  );
  assert.equal(sm.value, 24n);
});

Deno.test("the same request twice in one batch: the second is a duplicate with the first answer", () => {
  const sm = new CounterStateMachine();
  const answers = assertBatchIsSequence(sm, [
    from("c", 1, 7n),
    from("c", 1, 7n),
    from("c", 2, 1n),
    from("c", 1, 1000n),
  ]);
  assert.deepEqual(answers, [ok(7n), ok(7n), ok(8n), ok(7n)]);
  assert.equal(sm.value, 8n);
});

Deno.test("an overflow in the middle of a batch refuses only that item", () => {
  const sm = machineAt(INT64_MAX - 5n);
  const answers = assertBatchIsSequence(sm, [
    from("c", 1, 2n),
    from("c", 2, 10n),
    incr(3n),
    from("c", 2, -100n),
    from("c", 3, -1n),
  ]);
  assert.deepEqual(answers[0], ok(INT64_MAX - 3n));
  assertFailed(answers[1], "OVERFLOW");
  assert.deepEqual(answers[2], ok(INT64_MAX));
  assertFailed(answers[3], "OVERFLOW"); // the retry of 2 keeps its first answer
  assert.deepEqual(answers[4], ok(INT64_MAX - 1n));
  assert.equal(sm.value, INT64_MAX - 1n);
});

Deno.test("ackedBelow inside a batch forgets answers for the items after it", () => {
  const sm = new CounterStateMachine();
  const answers = assertBatchIsSequence(sm, [
    from("c", 1, 1n, { ackedBelow: 1 }),
    from("c", 2, 2n, { ackedBelow: 1 }),
    from("c", 1, 1n, { ackedBelow: 1 }), // still remembered
    from("c", 3, 4n, { ackedBelow: 3 }), // the client has 1 and 2
    from("c", 1, 1n, { ackedBelow: 1 }), // forgotten now
    from("c", 2, 2n, { ackedBelow: 3 }),
  ]);
  assert.deepEqual(answers.slice(0, 4), [ok(1n), ok(3n), ok(1n), ok(7n)]);
  assertFailed(answers[4], "STALE_REQUEST");
  assertFailed(answers[5], "STALE_REQUEST");
  assert.equal(sm.value, 7n);
});

Deno.test("a batch's stamp expires idle sessions before its first item, as an entry's would", () => {
  const sm = new CounterStateMachine();
  assert.deepEqual(sm.apply(from("old", 1, 1n, { proposedAtMs: T0_MS })), ok(1n));
  const later = T0_MS + CLIENT_IDLE_EXPIRY_MS + 1;
  const answers = assertBatchIsSequence(sm, [
    from("new", 1, 2n, { proposedAtMs: later }),
    from("old", 1, 1n, { proposedAtMs: later }),
  ]);
  // "old" was forgotten: its retry is a new request (the documented cost of expiry).
  assert.deepEqual(answers, [ok(3n), ok(4n)]);
  assert.equal(sm.sessionCount, 2);
});

Deno.test("a client past CLIENT_RESULTS_MAX is refused BUSY per item inside a batch", () => {
  const sm = new CounterStateMachine();
  for (let seq = 1; seq <= CLIENT_RESULTS_MAX; seq++) sm.apply(from("c", seq, 1n));
  const answers = assertBatchIsSequence(sm, [
    from("c", CLIENT_RESULTS_MAX + 1, 1n),
    from("c", CLIENT_RESULTS_MAX + 2, 1n, { ackedBelow: 2 }),
  ]);
  assert.equal(answers[0].ok, false);
  assert.equal(!answers[0].ok && answers[0].code, "BUSY");
  assert.deepEqual(answers[1], ok(BigInt(CLIENT_RESULTS_MAX) + 1n));
});

Deno.test("a malformed batch changes nothing", () => {
  const sm = machineAt(5n);
  const data = batchEntry([from("c", 1, 1n), from("c", 2, 1n)]);
  assert.throws(() => sm.applyEntry(data.subarray(0, data.length - 1)));
  assert.equal(sm.value, 5n);
  assert.equal(sm.sessionCount, 0);
});
