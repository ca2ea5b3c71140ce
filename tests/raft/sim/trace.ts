/**
 * Describing a run: one-line descriptions of messages and Ready contents, a bounded ring of the
 * most recent trace lines for failure reports, and a running hash of the run for determinism
 * checks.
 *
 * @module
 */

import { type Message, MessageType, type Ready } from "../../../lib/raft/mod.ts";

/** One-line description of a message. */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${MessageType[m.type]} t${m.term}`;
  switch (m.type) {
    case MessageType.App: {
      const n = m.entries.length;
      const ents = n === 0 ? "none" : `${m.entries[0].index}..${m.entries[n - 1].index}`;
      return `${head} prev ${m.index}/t${m.logTerm} ents ${ents} commit ${m.commit}`;
    }
    case MessageType.AppResp:
      return m.reject
        ? `${head} reject ${m.index} hint ${m.rejectHint}/t${m.logTerm}`
        : `${head} match ${m.index}`;
    case MessageType.Vote:
    case MessageType.PreVote:
      return `${head} last ${m.index}/t${m.logTerm}${m.context !== 0 ? " transfer" : ""}`;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      return `${head} ${m.reject ? "reject" : "grant"}`;
    case MessageType.Heartbeat:
      return `${head} commit ${m.commit} ctx ${m.context}`;
    case MessageType.HeartbeatResp:
      return `${head} ctx ${m.context}`;
    case MessageType.Snap:
      return `${head} snap ${m.snapshot?.index}/t${m.snapshot?.term}`;
    case MessageType.ReadIndex:
      return `${head} read ${m.context}`;
    case MessageType.ReadIndexResp:
      return `${head} read ${m.context} ${m.reject ? "reject" : `index ${m.index}`}`;
    default:
      return head;
  }
}

/** One-line description of what a Ready asks for. */
export function formatReady(rd: Ready): string {
  const parts: string[] = [];
  if (rd.hardState !== null) parts.push(`hs t${rd.hardState.term} vote "${rd.hardState.vote}"`);
  if (rd.snapshot !== null) parts.push(`snap ${rd.snapshot.index}/t${rd.snapshot.term}`);
  const n = rd.entries.length;
  if (n > 0) {
    parts.push(
      `ents ${rd.entries[0].index}..${rd.entries[n - 1].index}/t${rd.entries[n - 1].term}`,
    );
  }
  const c = rd.committedEntries.length;
  if (c > 0) {
    parts.push(`apply ${rd.committedEntries[0].index}..${rd.committedEntries[c - 1].index}`);
  }
  const sent = rd.messages.length + rd.messagesEarly.length;
  if (sent > 0) parts.push(`msgs ${rd.messagesEarly.length} early + ${rd.messages.length}`);
  if (rd.readStates.length > 0) parts.push(`reads ${rd.readStates.length}`);
  if (rd.failedReads.length > 0) parts.push(`failed reads ${rd.failedReads.length}`);
  return parts.length === 0 ? "empty" : parts.join(", ");
}

/** Keeps the last `capacity` lines, formatted only when asked for. */
export class TraceRing {
  readonly #capacity: number;
  readonly #items: (() => string)[] = [];
  #next = 0;

  /** Creates a ring keeping `capacity` lines. */
  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Adds a line, given as a function so that lines nobody reads are never formatted. */
  push(line: () => string): void {
    if (this.#items.length < this.#capacity) this.#items.push(line);
    else this.#items[this.#next] = line;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** The kept lines, oldest first. */
  lines(): string[] {
    const n = this.#items.length;
    const start = n < this.#capacity ? 0 : this.#next;
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(this.#items[(start + i) % n]());
    return out;
  }
}

/** A running 32-bit FNV-1a hash over integers and strings. */
export class TraceHash {
  #h = 0x811c9dc5;

  /** Mixes in a number (its low 32 bits, plus the high bits for large values). */
  num(n: number): void {
    this.#byte(n & 0xff);
    this.#byte((n >>> 8) & 0xff);
    this.#byte((n >>> 16) & 0xff);
    this.#byte((n >>> 24) & 0xff);
    const high = Math.floor(n / 4294967296);
    if (high !== 0) this.num(high);
  }

  /** Mixes in a string. */
  str(s: string): void {
    for (let i = 0; i < s.length; i++) this.num(s.charCodeAt(i));
  }

  #byte(b: number): void {
    this.#h = Math.imul(this.#h ^ b, 0x01000193) >>> 0;
  }

  /** The hash so far, as 8 hex digits. */
  hex(): string {
    return this.#h.toString(16).padStart(8, "0");
  }
}
