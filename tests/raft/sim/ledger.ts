/**
 * The simulator's model of the counter application: the real {@linkcode CounterStateMachine}
 * (value plus client sessions) fed once, in order, with the committed log, and the exactly-once
 * bookkeeping every node's state machine is compared against.
 *
 * The reference advances when the first node applies an index (every index is applied as an
 * entry by some node before any node can go past it: a snapshot only covers what its maker
 * applied). For each index it keeps the entry, the value after it, the answer the state machine
 * gave and, for sessions, the index at which that (clientId, seq) first changed the counter.
 * Independently of the state machine, it keeps the expected counter: the sum of the deltas of the
 * distinct (clientId, seq) that were applied (anonymous increments count once per entry).
 *
 * @module
 */

import { type Entry, EntryType, type NodeId, type Snapshot } from "../../../lib/raft/mod.ts";
import { decodeIncrement, type IncrementCommand } from "../../../lib/counter/command.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CounterStateMachine,
} from "../../../lib/counter/state_machine.ts";
import { Check, CheckFailure, describeEntry } from "./checker.ts";

/** What a client can observe of an answer: ok and the value, or the error code. */
export function observable(r: ApplyResult | null): string | null {
  if (r === null) return null;
  return r.ok ? `ok ${r.value}` : r.code;
}

/** True when `e` carries a counter command (not a no-op or configuration entry). */
export function isCommand(e: Entry): boolean {
  return e.type === EntryType.Normal && e.data.length > 0;
}

/** The counter value held by a {@linkcode CounterStateMachine} snapshot (version byte, int64). */
export function smValueOf(snapshot: Snapshot): bigint {
  const d = snapshot.data;
  if (d.length < 13 || d[0] !== 1) throw new Error(`snapshot data is not a counter snapshot`);
  return new DataView(d.buffer, d.byteOffset, d.byteLength).getBigInt64(1);
}

/** Key of a client request. */
export function requestKey(clientId: string, seq: number): string {
  return `${clientId}#${seq}`;
}

/** True when `cmd` belongs to a session (de-duplicated); false for anonymous increments. */
export function hasSession(cmd: IncrementCommand): boolean {
  return cmd.clientId !== "" && cmd.seq !== 0;
}

interface IndexRecord {
  entry: Entry;
  /** Decoded command, null for no-ops and configuration entries. */
  cmd: IncrementCommand | null;
  /** How much the entry changed the counter. */
  delta: bigint;
  /** Counter after the entry. */
  value: bigint;
  /** Observable answer, null for entries that are not commands. */
  answer: string | null;
  /** For a session command seen before: the index where it first changed the state; else 0. */
  firstIndex: number;
}

interface FirstApplication {
  index: number;
  answer: string;
}

/** Counts of what the ledger saw. */
export interface LedgerStats {
  /** Entries carrying a (clientId, seq) already applied earlier in the log. */
  duplicates: number;
  /** Duplicates answered "STALE_REQUEST" (the client had acknowledged the answer). */
  staleAnswers: number;
  /** Sessions that expired in the committed log. */
  sessionsExpired: number;
  /** Increments refused with OVERFLOW. */
  overflows: number;
}

/** The reference state machine and the exactly-once checks against it. */
export class Ledger {
  #sm = new CounterStateMachine();
  #records: (IndexRecord | undefined)[] = [];
  #first = new Map<string, FirstApplication>();
  /** Highest ackedBelow each client sent in the log so far. */
  #ackedBelowMax = new Map<string, number>();
  /**
   * Model of the session table's expiry: client id -> last active wall clock (ms), least
   * recently applied first. Sessions idle for longer than the expiry by the clock of the entry
   * being applied are forgotten, oldest first, stopping at the first one still fresh.
   */
  #sessions = new Map<string, number>();
  /** Reference snapshot bytes at sampled indexes. */
  #bytes = new Map<number, Uint8Array>();
  readonly #sampleEvery: number;
  #applied = 0;
  #expected = 0n;
  /** What the ledger saw. */
  readonly stats: LedgerStats = {
    duplicates: 0,
    staleAnswers: 0,
    sessionsExpired: 0,
    overflows: 0,
  };

  /** Creates a ledger comparing state machine bytes at every `sampleEvery`-th index. */
  constructor(sampleEvery: number) {
    this.#sampleEvery = Math.max(1, sampleEvery);
  }

  /** Highest index the reference applied. */
  get applied(): number {
    return this.#applied;
  }

  /**
   * Forgets every index above `index`, as if the reference had applied only up to there: the
   * group was forced into a new one from a survivor holding the log to `index`, and entries the
   * lost majority committed above it are gone by design (see `Checker.forcedReset`).
   */
  truncate(index: number): void {
    if (index >= this.#applied) return;
    const kept: Entry[] = [];
    for (let i = 1; i <= index; i++) kept.push(this.#records[i]!.entry);
    const stats = { ...this.stats };
    this.#sm = new CounterStateMachine();
    this.#records = [];
    this.#first = new Map();
    this.#ackedBelowMax = new Map();
    this.#sessions = new Map();
    this.#bytes = new Map();
    this.#applied = 0;
    this.#expected = 0n;
    for (const e of kept) this.#apply(e);
    Object.assign(this.stats, stats);
  }

  /** The expected counter after the highest applied index. */
  get expected(): bigint {
    return this.#expected;
  }

  /** How much the entry at `index` changed the counter (0 before the reference reached it). */
  deltaAt(index: number): bigint {
    return this.#records[index]?.delta ?? 0n;
  }

  /** For an entry repeating an applied request: the index of its first application; else 0. */
  firstIndexAt(index: number): number {
    const rec = this.#records[index];
    return rec === undefined || rec.firstIndex === index ? 0 : rec.firstIndex;
  }

  /** The first application of (`clientId`, `seq`), if any. */
  firstApplication(clientId: string, seq: number): FirstApplication | undefined {
    return this.#first.get(requestKey(clientId, seq));
  }

  /** True when bytes of the state machine are compared at `index`. */
  sampled(index: number): boolean {
    return index % this.#sampleEvery === 0;
  }

  /**
   * A node is about to apply `entry`. The reference applies it first when it is the next index
   * (and checks the exactly-once accounting); an index beyond the next one means some node got
   * ahead of every state machine, which cannot happen.
   */
  observe(node: NodeId, entry: Entry): void {
    if (entry.index <= this.#applied) return;
    if (entry.index !== this.#applied + 1) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} applies index ${entry.index}, but no node has applied index ${this.#applied + 1}`,
      );
    }
    this.#apply(entry);
  }

  #apply(entry: Entry): void {
    const before = this.#sm.value;
    let cmd: IncrementCommand | null = null;
    let answer: string | null = null;
    let delta = 0n;
    let firstIndex = 0;
    if (isCommand(entry)) {
      cmd = decodeIncrement(entry.data);
      this.#modelSessions(cmd);
      const result = this.#sm.apply(cmd);
      if (this.#sm.sessionCount !== this.#sessions.size) {
        throw this.#fail(
          entry,
          `holds ${this.#sm.sessionCount} client sessions, ${this.#sessions.size} expected ` +
            `(expiry by the entries' clock)`,
        );
      }
      answer = observable(result)!;
      if (result.ok) delta = this.#sm.value - before;
      if (!result.ok && result.code === "OVERFLOW") this.stats.overflows++;
      if (!hasSession(cmd)) {
        if (result.ok && (delta !== cmd.delta || result.value !== this.#sm.value)) {
          throw this.#fail(entry, `applied an anonymous increment of ${cmd.delta} as ${answer}`);
        }
        this.#expected += delta;
      } else {
        firstIndex = this.#session(entry, cmd, result, answer, delta);
      }
      const key = cmd.clientId;
      if (key !== "" && cmd.ackedBelow > (this.#ackedBelowMax.get(key) ?? 0)) {
        this.#ackedBelowMax.set(key, cmd.ackedBelow);
      }
    }
    if (this.#sm.value !== this.#expected) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `the counter is ${this.#sm.value} after index ${entry.index}, but the distinct applied ` +
          `requests sum to ${this.#expected}`,
      );
    }
    this.#applied = entry.index;
    this.#records[entry.index] = { entry, cmd, delta, value: this.#sm.value, answer, firstIndex };
    if (this.sampled(entry.index)) this.#bytes.set(entry.index, this.#sm.snapshot());
  }

  #modelSessions(cmd: IncrementCommand): void {
    for (const [id, lastActiveMs] of this.#sessions) {
      if (lastActiveMs + CLIENT_IDLE_EXPIRY_MS >= cmd.proposedAtMs) break;
      this.#sessions.delete(id);
      this.stats.sessionsExpired++;
    }
    if (!hasSession(cmd)) return;
    const last = this.#sessions.get(cmd.clientId);
    this.#sessions.delete(cmd.clientId);
    this.#sessions.set(cmd.clientId, Math.max(last ?? 0, cmd.proposedAtMs));
  }

  /** Exactly-once accounting of a session command; returns the index of its first application. */
  #session(
    entry: Entry,
    cmd: IncrementCommand,
    result: ApplyResult,
    answer: string,
    delta: bigint,
  ): number {
    const key = requestKey(cmd.clientId, cmd.seq);
    const first = this.#first.get(key);
    // The state machine only says STALE_REQUEST once the client said it has the answer.
    const staleAllowed = Math.max(this.#ackedBelowMax.get(cmd.clientId) ?? 0, cmd.ackedBelow) >
      cmd.seq;
    if (!result.ok && result.code === "BUSY") {
      throw this.#fail(entry, `refused BUSY, with far fewer than the window unacknowledged`);
    }
    if (first !== undefined) {
      this.stats.duplicates++;
      if (delta !== 0n) {
        throw this.#fail(
          entry,
          `changed the counter by ${delta}, but (${cmd.clientId}, ${cmd.seq}) was already ` +
            `applied at index ${first.index}`,
        );
      }
      if (answer === "STALE_REQUEST" && staleAllowed) {
        this.stats.staleAnswers++;
      } else if (answer !== first.answer) {
        throw this.#fail(
          entry,
          `answered the duplicate of (${cmd.clientId}, ${cmd.seq}) with ${answer}, the first ` +
            `answer (index ${first.index}) was ${first.answer}`,
        );
      }
      return first.index;
    }
    if (answer === "STALE_REQUEST") {
      if (!staleAllowed) {
        throw this.#fail(
          entry,
          `answered STALE_REQUEST to (${cmd.clientId}, ${cmd.seq}), which the client never ` +
            `acknowledged`,
        );
      }
      this.stats.staleAnswers++;
      return 0;
    }
    if (result.ok && (delta !== cmd.delta || result.value !== this.#sm.value)) {
      throw this.#fail(entry, `applied an increment of ${cmd.delta} as ${answer} (${delta})`);
    }
    this.#first.set(key, { index: entry.index, answer });
    this.#expected += delta;
    return entry.index;
  }

  #fail(entry: Entry, what: string): CheckFailure {
    return new CheckFailure(Check.exactlyOnce, `index ${entry.index}: the state machine ${what}`);
  }

  /**
   * `node` applied `entry` with its own state machine `sm`, which went from `before` to its
   * current value and answered `result`. It must be the reference's entry, never apply a
   * duplicate again, reach the same value and give the same answer; at sampled indexes its whole
   * state (sessions included) must be the reference's, byte for byte.
   */
  nodeApplied(
    node: NodeId,
    entry: Entry,
    before: bigint,
    result: ApplyResult | null,
    sm: CounterStateMachine,
  ): void {
    const rec = this.#records[entry.index]!;
    if (!sameEntry(rec.entry, entry)) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} applied ${describeEntry(entry)}, where ${describeEntry(rec.entry)} was applied`,
      );
    }
    const after = sm.value;
    if (rec.firstIndex > 0 && rec.firstIndex < entry.index && after !== before) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node} changed the counter from ${before} to ${after} applying (${rec.cmd!.clientId}, ` +
          `${rec.cmd!.seq}) at index ${entry.index}, first applied at index ${rec.firstIndex}`,
      );
    }
    if (after !== rec.value) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} has counter value ${after} at index ${entry.index}, expected ${rec.value}`,
      );
    }
    const answer = observable(result);
    if (answer !== rec.answer) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node} answered ${answer} at index ${entry.index}, the reference answered ${rec.answer}`,
      );
    }
    this.compareBytes(node, entry.index, sm);
  }

  /** At a sampled `index`, `sm`'s snapshot must be the reference's bytes. */
  compareBytes(node: NodeId, index: number, sm: CounterStateMachine): void {
    const expected = this.#bytes.get(index);
    if (expected === undefined) return;
    this.compareData(node, index, sm.snapshot(), "state machine");
  }

  /** At a sampled `index`, snapshot `data` must be the reference's bytes. */
  compareData(node: NodeId, index: number, data: Uint8Array, what: string): void {
    const expected = this.#bytes.get(index);
    if (expected === undefined) return;
    if (!sameBytes(expected, data)) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node}'s ${what} at index ${index} differs from the reference (client sessions: ` +
          `${data.length} bytes, reference ${expected.length})`,
      );
    }
  }

  /**
   * The expected counter after `index` (the sum of every distinct applied request's delta), if
   * the reference reached it.
   */
  expectedAt(index: number): bigint | undefined {
    return index === 0 ? 0n : this.#records[index]?.value;
  }
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameEntry(a: Entry, b: Entry): boolean {
  return a === b ||
    (a.index === b.index && a.term === b.term && a.type === b.type && sameBytes(a.data, b.data));
}
