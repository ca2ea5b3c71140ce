/**
 * The client session table across snapshot()/restore() (lib/counter/state_machine.ts).
 *
 * tests/counter/state_machine_test.ts already checks one snapshot round trip of a hand-made
 * table, that a restored session ages from its recorded time, and the bounds on a machine that
 * was never restored. This file covers what a restarted or snapshot-installing node depends on
 * beyond that: answers to duplicates stay the *original* answers after one or more restores, a
 * node that restores a snapshot taken mid-stream and applies the rest of the log agrees with a
 * node that applied it all (retries, out-of-order sequence numbers, ackedBelow, expiry), expiry
 * after a restore forgets the right sessions in the right order, and the bounds (sessions, answers)
 * are enforced the same way after a restore as before it.
 */

import assert from "node:assert/strict";
import type { IncrementCommand } from "../../lib/counter/command.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CLIENT_RESULTS_MAX,
  CLIENT_RESULTS_TOTAL_MAX,
  CLIENT_SESSIONS_MAX,
  CounterStateMachine,
} from "../../lib/counter/state_machine.ts";

/** A fixed leader clock: every test is deterministic. */
const T0_MS = 1_700_000_000_000;
const MINUTE_MS = 60_000;

/** An increment from session `clientId` with sequence number `seq`. */
function from(
  clientId: string,
  seq: number,
  delta: bigint,
  fields: Partial<IncrementCommand> = {},
): IncrementCommand {
  return { delta, proposedAtMs: T0_MS, clientId, seq, ackedBelow: 1, ...fields };
}

/** An increment without a session (never de-duplicated). */
function anonymous(delta: bigint, proposedAtMs = T0_MS): IncrementCommand {
  return { delta, proposedAtMs, clientId: "", seq: 0, ackedBelow: 0 };
}

/** A copy of `sm` made the way a node makes one: snapshot() on one side, restore() on the other. */
function roundTrip(sm: CounterStateMachine): CounterStateMachine {
  const copy = new CounterStateMachine();
  copy.restore(sm.snapshot());
  return copy;
}

/**
 * What a client can observe of an answer: ok and value, or the error code. (The error message of
 * a remembered refusal is not kept in a snapshot, so it may differ after a restore.)
 */
function observable(r: ApplyResult): string {
  return r.ok ? `ok ${r.value}` : `refused ${r.code}`;
}

/**
 * Asserts two snapshots are the same bytes. (assert.deepEqual on megabyte arrays would print a
 * diff of millions of lines on failure.)
 */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, message = "snapshots"): void {
  let at = 0;
  while (at < actual.length && at < expected.length && actual[at] === expected[at]) at++;
  if (at === actual.length && at === expected.length) return;
  assert.fail(
    `${message} differ at byte ${at} (lengths ${actual.length} and ${expected.length})`,
  );
}

/** Deterministic pseudo-random numbers (xorshift32), so a failure replays exactly. */
function prng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

Deno.test("after restore (twice), a duplicate gets its original answer, not the current value", () => {
  const sm = new CounterStateMachine();
  const original = new Map<string, ApplyResult>();
  // Two clients, interleaved and out of order, with other traffic between their requests.
  const requests: [string, number, bigint][] = [
    ["a", 1, 5n],
    ["b", 2, 100n],
    ["a", 3, 7n],
    ["b", 1, 1000n],
    ["a", 2, 11n],
  ];
  for (const [id, seq, delta] of requests) {
    original.set(`${id}/${seq}`, sm.apply(from(id, seq, delta)));
    sm.apply(anonymous(1n));
  }
  const value = sm.value;

  let restored = roundTrip(sm);
  restored = roundTrip(restored);
  assert.equal(restored.value, value);
  assert.equal(restored.sessionCount, 2);
  for (const [id, seq, delta] of requests) {
    // A retry carries the same delta; one carrying another delta is still the same request.
    for (const d of [delta, delta + 1n]) {
      const again = restored.apply(from(id, seq, d));
      assert.deepEqual(again, original.get(`${id}/${seq}`), `${id}/${seq} with delta ${d}`);
    }
  }
  assert.equal(restored.value, value, "a duplicate changed the restored counter");
  // A new request still counts, once.
  assert.deepEqual(restored.apply(from("a", 4, 1n)), { ok: true, value: value + 1n });
  assert.deepEqual(restored.apply(from("a", 4, 1n)), { ok: true, value: value + 1n });
  assert.equal(restored.value, value + 1n);
});

Deno.test("a remembered refusal survives restore: the duplicate is refused again, not applied", () => {
  const sm = new CounterStateMachine();
  sm.apply(anonymous((1n << 63n) - 2n));
  // OVERFLOW, and remembered as the answer to ("c", 1).
  const refused = sm.apply(from("c", 1, 10n));
  assert.equal(refused.ok, false);
  sm.apply(anonymous(-100n)); // Now ("c", 1) would fit; its answer is decided all the same.
  const restored = roundTrip(sm);
  const again = restored.apply(from("c", 1, 10n));
  assert.equal(observable(again), "refused OVERFLOW");
  assert.equal(restored.value, sm.value);
});

/** One client of the generated workload, as a client library would behave. */
interface SimClient {
  id: string;
  nextSeq: number;
  /** Issued, answer not yet received: the client retries these. */
  pending: Map<number, bigint>;
  /** Answered: the client may still (wrongly, late) resend these; below ackedBelow -> STALE. */
  answered: Map<number, bigint>;
}

/**
 * A log of increments as a leader would write it: ten clients with up to eight requests in
 * flight each, retries of pending requests (same seq, same delta), late duplicates of answered
 * ones, anonymous increments, and a clock that sometimes jumps by more than the idle expiry so
 * that sessions are forgotten mid-stream (and clients come back afterwards).
 */
function generateLog(length: number, seed: number): IncrementCommand[] {
  const rand = prng(seed);
  const clients: SimClient[] = Array.from({ length: 10 }, (_, k) => ({
    id: `client-${k}`,
    nextSeq: 1,
    pending: new Map(),
    answered: new Map(),
  }));
  const ackedBelow = (c: SimClient) =>
    c.pending.size === 0 ? c.nextSeq : Math.min(...c.pending.keys());
  let now = T0_MS;
  const log: IncrementCommand[] = [];
  while (log.length < length) {
    now += rand(2000);
    if (rand(400) === 0) now += CLIENT_IDLE_EXPIRY_MS / 2 + rand(CLIENT_IDLE_EXPIRY_MS);
    // Clients 0-2 are busy; the others show up now and then, so their sessions can expire.
    const c = clients[rand(3) === 0 ? rand(clients.length) : rand(3)];
    const dice = rand(20);
    if (dice < 10 && c.pending.size < 8) {
      const seq = c.nextSeq++;
      const delta = BigInt(rand(1000)) - 300n;
      c.pending.set(seq, delta);
      log.push(from(c.id, seq, delta, { ackedBelow: ackedBelow(c), proposedAtMs: now }));
    } else if (dice < 15 && c.pending.size > 0) {
      // A retry of a pending request, with the ackedBelow the client sends now.
      const seqs = [...c.pending.keys()];
      const seq = seqs[rand(seqs.length)];
      log.push(
        from(c.id, seq, c.pending.get(seq)!, { ackedBelow: ackedBelow(c), proposedAtMs: now }),
      );
    } else if (dice < 18 && c.pending.size > 0) {
      // The answer arrives: no entry, but later requests carry a higher ackedBelow.
      const seqs = [...c.pending.keys()];
      const seq = seqs[rand(seqs.length)];
      c.answered.set(seq, c.pending.get(seq)!);
      c.pending.delete(seq);
    } else if (dice < 19 && c.answered.size > 0) {
      // A late duplicate of an answered request (e.g. a retry that was still on the wire).
      const seqs = [...c.answered.keys()];
      const seq = seqs[rand(seqs.length)];
      log.push(
        from(c.id, seq, c.answered.get(seq)!, { ackedBelow: ackedBelow(c), proposedAtMs: now }),
      );
    } else {
      log.push(anonymous(BigInt(rand(50)), now));
    }
  }
  return log;
}

Deno.test("restoring a mid-stream snapshot and applying the rest of the log matches applying it all", () => {
  const log = generateLog(4000, 0x5e551015);
  const CUT_EVERY = 250;
  // The reference: one machine applies the whole log; snapshots are taken at every cut.
  const reference = new CounterStateMachine();
  const results: string[] = [];
  const snapshots = new Map<number, Uint8Array>();
  let duplicatesAnswered = 0;
  let stale = 0;
  let sessionsForgotten = 0;
  const firstAnswers = new Map<string, string>();
  for (const [i, cmd] of log.entries()) {
    if (i % CUT_EVERY === 0) snapshots.set(i, reference.snapshot());
    const before = reference.sessionCount;
    const r = observable(reference.apply(cmd));
    if (reference.sessionCount < before) sessionsForgotten += before - reference.sessionCount;
    results.push(r);
    if (r === "refused STALE_REQUEST") stale++;
    const key = `${cmd.clientId}/${cmd.seq}`;
    if (cmd.clientId !== "" && firstAnswers.has(key) && firstAnswers.get(key) === r) {
      duplicatesAnswered++;
    }
    if (cmd.clientId !== "" && !firstAnswers.has(key)) firstAnswers.set(key, r);
  }
  // The workload does what it is meant to, or the comparison below proves little.
  assert.ok(duplicatesAnswered > 200, `only ${duplicatesAnswered} duplicates`);
  assert.ok(stale > 20, `only ${stale} stale requests`);
  assert.ok(sessionsForgotten > 5, `only ${sessionsForgotten} sessions expired`);
  const finalSnapshot = reference.snapshot();

  for (const [cut, data] of snapshots) {
    const node = new CounterStateMachine();
    node.restore(data);
    for (let i = cut; i < log.length; i++) {
      const r = observable(node.apply(log[i]));
      assert.equal(r, results[i], `restored at ${cut}: entry ${i} answered differently`);
    }
    assert.equal(node.value, reference.value, `restored at ${cut}`);
    assert.equal(node.sessionCount, reference.sessionCount, `restored at ${cut}`);
    assertSameBytes(node.snapshot(), finalSnapshot, `restored at ${cut}: states`);
  }
});

Deno.test("expiry after restore forgets exactly the sessions idle too long, least recent first", () => {
  const sm = new CounterStateMachine();
  // s0..s5 start a minute apart; then s0 and s3 are active again, so the activity order is
  // s1 s2 s4 s5 s0 s3.
  for (let k = 0; k < 6; k++) {
    sm.apply(from(`s${k}`, 1, 1n, { proposedAtMs: T0_MS + k * MINUTE_MS }));
  }
  sm.apply(from("s0", 2, 1n, { proposedAtMs: T0_MS + 10 * MINUTE_MS }));
  sm.apply(from("s3", 2, 1n, { proposedAtMs: T0_MS + 11 * MINUTE_MS }));
  const restored = roundTrip(sm);
  assert.equal(restored.sessionCount, 6);

  // At T0 + 1h + 4.5 min, s1 (1 min), s2 (2 min) and s4 (4 min) are idle too long; s5 (5 min)
  // is not, nor are s0 (10 min) and s3 (11 min).
  const now = T0_MS + CLIENT_IDLE_EXPIRY_MS + 4.5 * MINUTE_MS;
  for (const machine of [sm, restored]) {
    machine.apply(anonymous(0n, now));
    assert.equal(machine.sessionCount, 3);
  }
  assertSameBytes(restored.snapshot(), sm.snapshot());
  const value = restored.value;
  // Remembered sessions answer duplicates with their first answers...
  assert.deepEqual(restored.apply(from("s5", 1, 1n, { proposedAtMs: now })), {
    ok: true,
    value: 6n,
  });
  assert.deepEqual(restored.apply(from("s0", 2, 1n, { proposedAtMs: now })), {
    ok: true,
    value: 7n,
  });
  assert.equal(restored.value, value);
  // ...a forgotten one's retry is a new request (the documented price of expiry).
  assert.deepEqual(restored.apply(from("s4", 1, 1n, { proposedAtMs: now })), {
    ok: true,
    value: value + 1n,
  });
});

Deno.test("expiry keeps the table bounded under a stream of one-shot clients, across restores", () => {
  // A new client every minute for 10 hours, each sending one increment and never coming back.
  // With a 1-hour expiry, at most the last 61 minutes' clients are remembered at any time.
  const bound = CLIENT_IDLE_EXPIRY_MS / MINUTE_MS + 1;
  let sm = new CounterStateMachine();
  let most = 0;
  for (let minute = 0; minute < 600; minute++) {
    sm.apply(from(`once-${minute}`, 1, 1n, { proposedAtMs: T0_MS + minute * MINUTE_MS }));
    most = Math.max(most, sm.sessionCount);
    assert.ok(sm.sessionCount <= bound, `${sm.sessionCount} sessions at minute ${minute}`);
    // A node restarts from a snapshot every 97 minutes.
    if (minute % 97 === 96) sm = roundTrip(sm);
  }
  assert.equal(most, bound);
  assert.equal(sm.value, 600n);
  // The snapshot stays small accordingly: 13 bytes of header, then per session
  // 2 + id + 8 + 8 + 4 bytes and 17 per remembered answer.
  const perSession = (id: string) => 2 + id.length + 20 + 17;
  const expected = 13 +
    Array.from({ length: bound }, (_, k) => perSession(`once-${599 - k}`)).reduce((a, b) => a + b);
  assert.equal(sm.snapshot().length, expected);
});

Deno.test("the session bound holds after restore: the least recently active session goes first", () => {
  const sm = new CounterStateMachine();
  for (let i = 0; i < CLIENT_SESSIONS_MAX; i++) {
    sm.apply(from(`c${i}`, 1, 1n, { proposedAtMs: T0_MS + i }));
  }
  // Touch c0, so c1 is the least recently active.
  sm.apply(from("c0", 1, 1n, { proposedAtMs: T0_MS + CLIENT_SESSIONS_MAX }));
  const restored = roundTrip(sm);
  assert.equal(restored.sessionCount, CLIENT_SESSIONS_MAX);
  const later = T0_MS + CLIENT_SESSIONS_MAX + 1;
  for (const machine of [sm, restored]) {
    machine.apply(from("newcomer", 1, 1n, { proposedAtMs: later }));
    assert.equal(machine.sessionCount, CLIENT_SESSIONS_MAX);
  }
  assertSameBytes(restored.snapshot(), sm.snapshot());
  const value = restored.value;
  // c0 and c2 are still known; c1 was evicted, so its retry counts again.
  assert.deepEqual(restored.apply(from("c0", 1, 1n, { proposedAtMs: later })), {
    ok: true,
    value: 1n,
  });
  assert.deepEqual(restored.apply(from("c2", 1, 1n, { proposedAtMs: later })), {
    ok: true,
    value: 3n,
  });
  assert.equal(restored.value, value);
  assert.deepEqual(restored.apply(from("c1", 1, 1n, { proposedAtMs: later })), {
    ok: true,
    value: value + 1n,
  });
});

Deno.test("the bound on remembered answers holds after restore: the count is restored too", () => {
  // Exactly CLIENT_RESULTS_TOTAL_MAX answers: full sessions, then one partial session.
  const sm = new CounterStateMachine();
  const full = Math.floor(CLIENT_RESULTS_TOTAL_MAX / CLIENT_RESULTS_MAX);
  const rest = CLIENT_RESULTS_TOTAL_MAX - full * CLIENT_RESULTS_MAX;
  assert.ok(rest > 0);
  for (let c = 0; c <= full; c++) {
    const answers = c < full ? CLIENT_RESULTS_MAX : rest;
    for (let seq = 1; seq <= answers; seq++) sm.apply(from(`c${c}`, seq, 1n));
  }
  assert.equal(sm.sessionCount, full + 1, "nothing is evicted at exactly the bound");
  const restored = roundTrip(sm);
  assertSameBytes(restored.snapshot(), sm.snapshot());

  // One answer more: both evict the least recently active session (c0), and only it.
  for (const machine of [sm, restored]) {
    machine.apply(from("one-more", 1, 1n));
    assert.equal(machine.sessionCount, full + 1);
  }
  assertSameBytes(restored.snapshot(), sm.snapshot());
  const value = restored.value;
  assert.deepEqual(restored.apply(from("c1", 1, 1n)), {
    ok: true,
    value: BigInt(CLIENT_RESULTS_MAX + 1),
  });
  assert.equal(restored.value, value);
  assert.deepEqual(restored.apply(from("c0", 1, 1n)), { ok: true, value: value + 1n });
});

Deno.test("a client applying again and again stays the most recent, as does one that returns", () => {
  const sm = new CounterStateMachine();
  // s0 three times in a row (no re-insert needed after the first), then s1, then s0 again (a
  // re-insert), then s2 twice, then s1 once more: activity order s0 s2 s1.
  let seq = 0;
  const at = (k: number, minute: number) =>
    sm.apply(from(`s${k}`, ++seq, 1n, { proposedAtMs: T0_MS + minute * MINUTE_MS }));
  at(0, 0);
  at(0, 1);
  at(0, 2);
  at(1, 3);
  at(0, 4);
  at(2, 5);
  at(2, 6);
  at(1, 7);
  assert.equal(sm.sessionCount, 3);
  // At T0 + 1h + 6.5 min, s0 (last at 4 min) and s2 (6 min) are idle too long, s1 (7) is not.
  sm.apply(anonymous(0n, T0_MS + CLIENT_IDLE_EXPIRY_MS + 6.5 * MINUTE_MS));
  assert.equal(sm.sessionCount, 1);
  // The snapshot after a restore holds the same order, and the restored machine goes on alike.
  const restored = roundTrip(sm);
  at(1, 70);
  restored.apply(from("s1", seq, 1n, { proposedAtMs: T0_MS + 70 * MINUTE_MS }));
  assertSameBytes(restored.snapshot(), sm.snapshot());
});
