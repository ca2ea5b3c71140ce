/**
 * The replicated state machine: one signed 64-bit counter plus the client session table that
 * makes retried increments apply exactly once (Raft thesis §6.3).
 *
 * Everything here is deterministic: every node applying the same entries reaches the same state,
 * including which client sessions expire (expiry uses the cluster-time stamp written in the entry
 * by the proposing leader, see cluster_clock.ts, never a local clock). Stamps are monotonic along
 * the log in practice; one that is lower than an earlier one only delays expiry.
 *
 * @module
 */

import { decodeIncrements, type IncrementCommand } from "./command.ts";

/** Largest value of a signed 64-bit integer. */
export const INT64_MAX = (1n << 63n) - 1n;
/** Smallest value of a signed 64-bit integer. */
export const INT64_MIN = -(1n << 63n);

/** A client session idle this long is forgotten (1 hour of cluster time, see cluster_clock.ts). */
export const CLIENT_IDLE_EXPIRY_MS = 60 * 60 * 1000;
/** At most this many client sessions are kept; the least recently active goes first. */
export const CLIENT_SESSIONS_MAX = 100_000;
/** At most this many remembered answers per client session (its in-flight window). */
export const CLIENT_RESULTS_MAX = 4096;
/**
 * At most this many remembered answers over all sessions (about 17 bytes each in a snapshot);
 * past it the least recently active sessions are forgotten.
 */
export const CLIENT_RESULTS_TOTAL_MAX = 250_000;

/** The outcome of applying one increment. */
export type ApplyResult =
  | { ok: true; value: bigint }
  | { ok: false; code: "OVERFLOW" | "STALE_REQUEST" | "BUSY"; error: string };

interface Session {
  lastActiveMs: number;
  ackedBelow: number;
  results: Map<number, ApplyResult>;
}

/** The counter and its client sessions. */
export class CounterStateMachine {
  #value = 0n;
  #sessions = new Map<string, Session>();
  /**
   * The key inserted last into `#sessions` (so its last key), or null when unknown. Applying a
   * command of that client needs no re-insert: a delete and set per increment made V8 shrink and
   * regrow the map's table (a runtime call and an allocation) for a map of one busy client.
   */
  #newestId: string | null = null;
  #resultCount = 0;

  /** Current value. */
  get value(): bigint {
    return this.#value;
  }

  /** Number of client sessions remembered. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /**
   * The newest activity stamp among the sessions (ms of cluster time), 0 if none: a node that
   * loads a snapshot continues cluster time from at least there.
   */
  newestActivityMs(): number {
    let newest = 0;
    for (const s of this.#sessions.values()) if (s.lastActiveMs > newest) newest = s.lastActiveMs;
    return newest;
  }

  /**
   * Applies a command entry's data (one increment or a batch, see command.ts) and returns one
   * outcome per increment, in order. A batch is applied item by item exactly as the same
   * increments in consecutive entries with the batch's stamp would be: a (clientId, seq) twice
   * in a batch is a duplicate the second time, an increment refused (OVERFLOW, BUSY) changes
   * nothing and the next item goes on. Throws, changing nothing, on data that is not a command.
   */
  applyEntry(data: Uint8Array): ApplyResult[] {
    const cmds = decodeIncrements(data);
    const results: ApplyResult[] = new Array(cmds.length);
    for (let i = 0; i < cmds.length; i++) results[i] = this.apply(cmds[i]);
    return results;
  }

  /** Applies a decoded increment. A duplicate returns the first outcome and changes nothing. */
  apply(cmd: IncrementCommand): ApplyResult {
    this.#expire(cmd.proposedAtMs);
    if (cmd.clientId === "" || cmd.seq === 0) return this.#add(cmd.delta);
    let session = this.#sessions.get(cmd.clientId);
    if (session === undefined) {
      session = { lastActiveMs: cmd.proposedAtMs, ackedBelow: 0, results: new Map() };
      this.#sessions.set(cmd.clientId, session);
      this.#newestId = cmd.clientId;
    } else {
      session.lastActiveMs = Math.max(session.lastActiveMs, cmd.proposedAtMs);
      if (this.#newestId !== cmd.clientId) {
        // Re-insert so that the map stays ordered from least to most recently active (the
        // newest session is last already).
        this.#sessions.delete(cmd.clientId);
        this.#sessions.set(cmd.clientId, session);
        this.#newestId = cmd.clientId;
      }
    }
    if (cmd.ackedBelow > session.ackedBelow) {
      session.ackedBelow = cmd.ackedBelow;
      for (const seq of session.results.keys()) {
        if (seq < session.ackedBelow) {
          session.results.delete(seq);
          this.#resultCount--;
        }
      }
    }
    const seen = session.results.get(cmd.seq);
    if (seen !== undefined) return seen;
    if (cmd.seq < session.ackedBelow) {
      return {
        ok: false,
        code: "STALE_REQUEST",
        error: `request ${cmd.seq} of client ${cmd.clientId} was already answered`,
      };
    }
    if (session.results.size >= CLIENT_RESULTS_MAX) {
      // Forgetting an answer the client has not acknowledged could apply a retry twice, so a
      // client that runs this far ahead is refused instead; nothing changes, and a retry of the
      // same sequence number later is applied normally.
      return {
        ok: false,
        code: "BUSY",
        error: `client ${cmd.clientId} has ${CLIENT_RESULTS_MAX} unacknowledged increments; ` +
          "retry once earlier ones are answered",
      };
    }
    const result = this.#add(cmd.delta);
    session.results.set(cmd.seq, result);
    this.#resultCount++;
    while (
      this.#sessions.size > CLIENT_SESSIONS_MAX ||
      (this.#resultCount > CLIENT_RESULTS_TOTAL_MAX && this.#sessions.size > 1)
    ) {
      this.#dropOldestSession();
    }
    return result;
  }

  #add(delta: bigint): ApplyResult {
    const next = this.#value + delta;
    if (next > INT64_MAX || next < INT64_MIN) {
      return {
        ok: false,
        code: "OVERFLOW",
        error: `adding ${delta} to ${this.#value} would overflow a signed 64-bit integer`,
      };
    }
    this.#value = next;
    return { ok: true, value: next };
  }

  #expire(nowMs: number): void {
    for (const session of this.#sessions.values()) {
      if (session.lastActiveMs + CLIENT_IDLE_EXPIRY_MS >= nowMs) break;
      this.#dropOldestSession();
    }
  }

  /** Forgets the least recently active session (the map's first). */
  #dropOldestSession(): void {
    const first = this.#sessions.entries().next();
    if (first.done) return;
    if (first.value[0] === this.#newestId) this.#newestId = null;
    this.#sessions.delete(first.value[0]);
    this.#resultCount -= first.value[1].results.size;
  }

  /** Encodes the whole state (value and sessions) for a snapshot. */
  snapshot(): Uint8Array {
    const encoder = new TextEncoder();
    let size = 1 + 8 + 4;
    const ids: Uint8Array[] = [];
    for (const [id, s] of this.#sessions) {
      const idBytes = encoder.encode(id);
      if (idBytes.length > 0xffff) throw new RangeError(`client id of ${idBytes.length} bytes`);
      ids.push(idBytes);
      size += 2 + idBytes.length + 8 + 8 + 4 + s.results.size * (8 + 1 + 8);
    }
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    let at = 0;
    out[at++] = 1;
    view.setBigInt64(at, this.#value);
    at += 8;
    view.setUint32(at, this.#sessions.size);
    at += 4;
    let i = 0;
    for (const s of this.#sessions.values()) {
      const idBytes = ids[i++];
      view.setUint16(at, idBytes.length);
      at += 2;
      out.set(idBytes, at);
      at += idBytes.length;
      view.setBigUint64(at, BigInt(s.lastActiveMs));
      at += 8;
      view.setBigUint64(at, BigInt(s.ackedBelow));
      at += 8;
      view.setUint32(at, s.results.size);
      at += 4;
      for (const [seq, r] of s.results) {
        view.setBigUint64(at, BigInt(seq));
        at += 8;
        out[at++] = r.ok ? 1 : r.code === "OVERFLOW" ? 2 : 3;
        view.setBigInt64(at, r.ok ? r.value : 0n);
        at += 8;
      }
    }
    return out;
  }

  /** Replaces the whole state with a snapshot's; throws if the data is malformed. */
  restore(data: Uint8Array): void {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const decoder = new TextDecoder("utf-8", { fatal: true });
    let at = 0;
    const need = (n: number) => {
      if (at + n > data.length) throw new Error("counter snapshot data is truncated");
    };
    need(13);
    if (data[at++] !== 1) throw new Error(`unknown counter snapshot version ${data[0]}`);
    const value = view.getBigInt64(at);
    at += 8;
    const count = view.getUint32(at);
    at += 4;
    const sessions = new Map<string, Session>();
    for (let i = 0; i < count; i++) {
      need(2);
      const idLen = view.getUint16(at);
      at += 2;
      need(idLen + 20);
      const id = decoder.decode(data.subarray(at, at + idLen));
      at += idLen;
      const lastActiveMs = Number(view.getBigUint64(at));
      at += 8;
      const ackedBelow = Number(view.getBigUint64(at));
      at += 8;
      const n = view.getUint32(at);
      at += 4;
      const results = new Map<number, ApplyResult>();
      for (let j = 0; j < n; j++) {
        need(17);
        const seq = Number(view.getBigUint64(at));
        at += 8;
        const kind = data[at++];
        const v = view.getBigInt64(at);
        at += 8;
        results.set(seq, restoreResult(kind, v));
      }
      sessions.set(id, { lastActiveMs, ackedBelow, results });
    }
    if (at !== data.length) throw new Error("counter snapshot data has trailing bytes");
    this.#value = value;
    this.#sessions = sessions;
    this.#newestId = null;
    this.#resultCount = 0;
    for (const session of sessions.values()) this.#resultCount += session.results.size;
  }
}

function restoreResult(kind: number, value: bigint): ApplyResult {
  if (kind === 1) return { ok: true, value };
  if (kind === 2) return { ok: false, code: "OVERFLOW", error: "the increment would overflow" };
  if (kind === 3) return { ok: false, code: "STALE_REQUEST", error: "request already answered" };
  throw new Error(`unknown result kind ${kind} in counter snapshot`);
}
