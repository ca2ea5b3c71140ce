/**
 * The simulator's model of the counter application: the real {@linkcode CounterStateMachine}
 * (value plus client sessions) fed once, in order, with the committed log, and the exactly-once
 * bookkeeping every node's state machine is compared against.
 *
 * The reference advances when the first node applies an index (every index is applied as an
 * entry by some node before any node can go past it: a snapshot only covers what its maker
 * applied). For each index it keeps the entry, the value after it, the answers the state machine
 * gave (one per increment: an entry may be a batch, see lib/counter/command.ts) and, for repeated
 * requests, the index at which that (clientId, seq) first changed the counter. A batch is
 * accounted item by item, in order, exactly as the same increments in consecutive entries.
 * Independently of the state machine, it keeps the expected counter: the sum of the deltas of the
 * distinct (clientId, seq) that were applied (anonymous increments count once per item).
 *
 * @module
 */

import { type Entry, EntryType, type NodeId, type Snapshot } from "../../../lib/raft/mod.ts";
import { decodeIncrements, type IncrementCommand } from "../../../lib/counter/command.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CounterStateMachine,
} from "../../../lib/counter/state_machine.ts";
import { Check, CheckFailure, describeEntry } from "./checker.ts";

/** What a client can observe of an answer: ok and the value, or the error code. */
export function observable(r: ApplyResult): string {
  return r.ok ? `ok ${r.value}` : r.code;
}

/** The answers of an entry's increments, as clients observe them; null for other entries. */
export function observables(results: ApplyResult[] | null): string[] | null {
  return results === null ? null : results.map(observable);
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
  /** Decoded increments (one, or a batch's items), null for no-ops and configuration entries. */
  cmds: IncrementCommand[] | null;
  /** How much the entry changed the counter. */
  delta: bigint;
  /** Counter after the entry. */
  value: bigint;
  /** Observable answers, one per increment; null for entries that are not commands. */
  answers: string[] | null;
  /**
   * For each increment repeating a request applied before (in an earlier entry, or earlier in
   * this batch): the index where it first changed the state.
   */
  repeats: number[];
}

interface FirstApplication {
  index: number;
  answer: string;
}

/** Counts of what the ledger saw. */
export interface LedgerStats {
  /** Increments carrying a (clientId, seq) already applied earlier in the log. */
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

  /**
   * For each increment of the entry at `index` that repeats an applied request: the index of its
   * first application (`index` itself for a request applied earlier in the same batch).
   */
  repeatsAt(index: number): readonly number[] {
    return this.#records[index]?.repeats ?? [];
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
    const entryBefore = this.#sm.value;
    let cmds: IncrementCommand[] | null = null;
    let answers: string[] | null = null;
    const repeats: number[] = [];
    if (isCommand(entry)) {
      // Item by item, through the real state machine's single-increment path: the nodes apply
      // the whole entry at once (`applyEntry`), and must agree with this.
      cmds = decodeIncrements(entry.data);
      answers = [];
      for (const cmd of cmds) {
        const before = this.#sm.value;
        this.#modelSessions(cmd);
        const result = this.#sm.apply(cmd);
        if (this.#sm.sessionCount !== this.#sessions.size) {
          throw this.#fail(
            entry,
            `holds ${this.#sm.sessionCount} client sessions, ${this.#sessions.size} expected ` +
              `(expiry by the entries' clock)`,
          );
        }
        const answer = observable(result);
        answers.push(answer);
        const delta = result.ok ? this.#sm.value - before : 0n;
        if (!result.ok && result.code === "OVERFLOW") this.stats.overflows++;
        if (!hasSession(cmd)) {
          if (result.ok && (delta !== cmd.delta || result.value !== this.#sm.value)) {
            throw this.#fail(entry, `applied an anonymous increment of ${cmd.delta} as ${answer}`);
          }
          this.#expected += delta;
        } else {
          const first = this.#session(entry, cmd, result, answer, delta);
          if (first > 0) repeats.push(first);
        }
        const key = cmd.clientId;
        if (key !== "" && cmd.ackedBelow > (this.#ackedBelowMax.get(key) ?? 0)) {
          this.#ackedBelowMax.set(key, cmd.ackedBelow);
        }
        if (this.#sm.value !== this.#expected) {
          throw new CheckFailure(
            Check.exactlyOnce,
            `the counter is ${this.#sm.value} after ${describeItem(entry, cmds, cmd)}, but the ` +
              `distinct applied requests sum to ${this.#expected}`,
          );
        }
      }
    }
    const delta = this.#sm.value - entryBefore;
    if (this.#sm.value !== this.#expected) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `the counter is ${this.#sm.value} after index ${entry.index}, but the distinct applied ` +
          `requests sum to ${this.#expected}`,
      );
    }
    this.#applied = entry.index;
    this.#records[entry.index] = { entry, cmds, delta, value: this.#sm.value, answers, repeats };
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

  /**
   * Exactly-once accounting of a session command. Returns the index of its first application
   * when it repeats an applied request, else 0.
   */
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
    return 0;
  }

  #fail(entry: Entry, what: string): CheckFailure {
    return new CheckFailure(Check.exactlyOnce, `index ${entry.index}: the state machine ${what}`);
  }

  /**
   * `node` applied `entry` with its own state machine `sm`, which went from `before` to its
   * current value and answered `results` (one per increment). It must be the reference's entry,
   * never apply a duplicate again, reach the same value and give the same answers; at sampled
   * indexes its whole state (sessions included) must be the reference's, byte for byte.
   */
  nodeApplied(
    node: NodeId,
    entry: Entry,
    before: bigint,
    results: ApplyResult[] | null,
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
    // An entry whose every increment repeats a request applied in an earlier entry.
    const allRepeats = rec.cmds !== null && rec.repeats.length === rec.cmds.length &&
      rec.repeats.every((first) => first < entry.index);
    if (allRepeats && after !== before) {
      const what = rec.cmds!.map((c) => `(${c.clientId}, ${c.seq})`).join(" ");
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node} changed the counter from ${before} to ${after} applying ${what} at index ` +
          `${entry.index}, first applied at index ${rec.repeats.join(", ")}`,
      );
    }
    if (after !== rec.value) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} has counter value ${after} at index ${entry.index}, expected ${rec.value}`,
      );
    }
    const answers = observables(results);
    if (answers?.join(" | ") !== rec.answers?.join(" | ")) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node} answered ${answers?.join(" | ")} at index ${entry.index}, the reference ` +
          `answered ${rec.answers?.join(" | ")}`,
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

/** Names increment `cmd` of `entry` for a failure message: its index, and its item in a batch. */
function describeItem(entry: Entry, cmds: IncrementCommand[], cmd: IncrementCommand): string {
  const item = cmds.length === 1 ? "" : ` item ${cmds.indexOf(cmd) + 1} of ${cmds.length}`;
  return `index ${entry.index}${item} (${cmd.clientId}, ${cmd.seq})`;
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
