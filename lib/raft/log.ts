/**
 * The in-memory view of a node's Raft log: what is persisted, what is not yet, what is committed
 * and what has been handed to the state machine.
 *
 * The log holds every entry after the latest snapshot. Entries enter it either from the leader's
 * own proposals or from AppendEntries; the shell persists them (see `unstableEntries`) and reports
 * back (`stableTo`). Only the persisted prefix counts towards a leader's own match index.
 *
 * @module
 */

import { type ConfState, type Entry, EntryType, type Snapshot } from "./types.ts";
import { decodeConfState } from "./conf.ts";
import { assert } from "./assert.ts";

/** The Raft log of one node: snapshot boundary, entries, and the commit/apply/persist cursors. */
export class RaftLog {
  #snapshotIndex = 0;
  #snapshotTerm = 0;
  #snapshotConf: ConfState | null = null;
  /** `#entries[i]` holds the entry at index `#snapshotIndex + 1 + i`. */
  #entries: Entry[] = [];
  /** Indexes of Config entries in `#entries`, ascending. */
  #configIndexes: number[] = [];
  /** Highest index known to be stored on disk. */
  #stableIndex = 0;
  /** First index not yet handed out for persisting. */
  #persistFrom = 1;
  /** Highest index known to be committed. */
  committed = 0;
  /** Highest index handed to the state machine. */
  applied = 0;

  /**
   * Builds the log from what storage recovered: an optional snapshot and the entries after it.
   * Everything given is already persisted.
   */
  constructor(snapshot: Snapshot | null, entries: Entry[]) {
    if (snapshot !== null) {
      this.#snapshotIndex = snapshot.index;
      this.#snapshotTerm = snapshot.term;
      this.#snapshotConf = snapshot.conf;
      this.committed = snapshot.index;
      this.applied = snapshot.index;
    }
    for (let i = 0; i < entries.length; i++) {
      assert(
        entries[i].index === this.#snapshotIndex + 1 + i,
        "recovered entries must follow the snapshot contiguously",
      );
    }
    this.#entries = entries.slice();
    for (const e of entries) if (e.type === EntryType.Config) this.#configIndexes.push(e.index);
    this.#stableIndex = this.lastIndex();
    this.#persistFrom = this.lastIndex() + 1;
  }

  /** Index of the first entry held (the one after the snapshot). */
  firstIndex(): number {
    return this.#snapshotIndex + 1;
  }

  /** Index of the last entry, or of the snapshot when no entry follows it. */
  lastIndex(): number {
    return this.#snapshotIndex + this.#entries.length;
  }

  /** Term of the last entry (or of the snapshot). */
  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0;
  }

  /** Index covered by the latest snapshot (0 when none). */
  snapshotIndex(): number {
    return this.#snapshotIndex;
  }

  /** Highest index known to be on disk. */
  stableIndex(): number {
    return this.#stableIndex;
  }

  /**
   * Term of the entry at `index`; undefined when it was compacted away (below the snapshot) or
   * lies beyond the end of the log. Index 0 has term 0.
   */
  term(index: number): number | undefined {
    if (index === this.#snapshotIndex) return this.#snapshotTerm;
    if (index < this.#snapshotIndex || index > this.lastIndex()) return undefined;
    return this.#entries[index - this.#snapshotIndex - 1].term;
  }

  /** The entry at `index`, if held. */
  entry(index: number): Entry | undefined {
    if (index <= this.#snapshotIndex || index > this.lastIndex()) return undefined;
    return this.#entries[index - this.#snapshotIndex - 1];
  }

  /** True when the entry at `index` exists with term `term`. */
  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Raft §5.4.1: is a log ending at (`lastIndex`, `lastTerm`) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /**
   * Appends entries that directly follow some held index, cutting off any conflicting suffix
   * first. Committed entries are never cut: that would break Raft's safety.
   */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0].index;
    assert(first > this.committed, `cannot overwrite committed index ${first}`);
    assert(first <= this.lastIndex() + 1, `gap before appended index ${first}`);
    if (first <= this.lastIndex()) this.#truncateFrom(first);
    for (const e of entries) {
      this.#entries.push(e);
      if (e.type === EntryType.Config) this.#configIndexes.push(e.index);
    }
  }

  #truncateFrom(index: number): void {
    assert(index > this.#snapshotIndex, "cannot truncate into the snapshot");
    this.#entries.length = index - this.#snapshotIndex - 1;
    while (
      this.#configIndexes.length > 0 &&
      this.#configIndexes[this.#configIndexes.length - 1] >= index
    ) this.#configIndexes.pop();
    if (this.#persistFrom > index) this.#persistFrom = index;
    if (this.#stableIndex >= index) this.#stableIndex = index - 1;
  }

  /**
   * The index of the first entry in `entries` that is missing from our log or differs in term;
   * 0 when every entry is already held.
   */
  findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Fast log back-off: the largest index at or below `index` whose term is at or below `term`.
   * Entries above it cannot match a log whose entry at `index` has term `term`.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.#snapshotIndex) {
      const t = this.term(i);
      if (t !== undefined && t <= term) return i;
      i--;
    }
    return i;
  }

  /**
   * AppendEntries consistency check and append. Returns the index of the last entry the leader
   * sent (now matching ours), or -1 when the entry before them does not match.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number {
    if (!this.matchTerm(prevIndex, prevTerm)) return -1;
    const lastNew = prevIndex + entries.length;
    const conflict = this.findConflict(entries);
    if (conflict !== 0) {
      assert(conflict > this.committed, `entry ${conflict} conflicts with a committed entry`);
      this.append(entries.slice(conflict - prevIndex - 1));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /** Raises the commit index to `index` (never lowers it). */
  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit index ${index} beyond last index`);
    this.committed = index;
  }

  /** Entries in [lo, hi] (inclusive), stopping early once `bytesMax` of data is reached. */
  slice(lo: number, hi: number, bytesMax: number): Entry[] {
    assert(lo > this.#snapshotIndex, "slice reaches into the snapshot");
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i <= hi; i++) {
      const e = this.#entries[i - this.#snapshotIndex - 1];
      bytes += e.data.length + 24;
      if (out.length > 0 && bytes > bytesMax) break;
      out.push(e);
    }
    return out;
  }

  /** True when entries are waiting to be handed out for persisting. */
  hasUnstable(): boolean {
    return this.#persistFrom <= this.lastIndex();
  }

  /** Entries not yet handed out for persisting; marks them handed out. */
  takeUnstable(): Entry[] {
    if (!this.hasUnstable()) return [];
    const out = this.#entries.slice(this.#persistFrom - this.#snapshotIndex - 1);
    this.#persistFrom = this.lastIndex() + 1;
    return out;
  }

  /**
   * Records that entries up to `index` (whose term was `term`) are on disk. Ignored when the
   * entry has since been replaced by one of another term: the newer one is not yet stable.
   */
  stableTo(index: number, term: number): void {
    if (index <= this.#stableIndex) return;
    if (!this.matchTerm(index, term)) return;
    this.#stableIndex = Math.min(index, this.#persistFrom - 1);
  }

  /** True when committed entries are waiting to be applied. */
  hasCommittedToApply(): boolean {
    return this.committed > this.applied;
  }

  /** Committed, not yet applied entries (at most `countMax`); marks them applied. */
  takeCommitted(countMax: number): Entry[] {
    if (this.committed <= this.applied) return [];
    const hi = Math.min(this.committed, this.applied + countMax);
    const out = this.#entries.slice(
      this.applied - this.#snapshotIndex,
      hi - this.#snapshotIndex,
    );
    this.applied = hi;
    return out;
  }

  /** Replaces the whole log with `snapshot` (a follower installing the leader's snapshot). */
  restore(snapshot: Snapshot): void {
    this.#snapshotIndex = snapshot.index;
    this.#snapshotTerm = snapshot.term;
    this.#snapshotConf = snapshot.conf;
    this.#entries = [];
    this.#configIndexes = [];
    this.committed = snapshot.index;
    this.applied = snapshot.index;
    this.#stableIndex = snapshot.index;
    this.#persistFrom = snapshot.index + 1;
  }

  /**
   * The lowest index `lo` (at least the first retained one) such that the entries `lo..hi` hold
   * at most `bytesMax` bytes of data; `hi + 1` when the entry at `hi` alone holds more.
   */
  tailStart(hi: number, bytesMax: number): number {
    let lo = Math.min(hi, this.lastIndex()) + 1;
    let bytes = 0;
    while (lo > this.#snapshotIndex + 1) {
      bytes += this.#entries[lo - 1 - this.#snapshotIndex - 1].data.length;
      if (bytes > bytesMax) break;
      lo--;
    }
    return lo;
  }

  /**
   * Drops entries up to `index`, which a durable snapshot covers. Only applied entries may go.
   */
  compact(index: number): void {
    if (index <= this.#snapshotIndex) return;
    assert(index <= this.applied, "cannot compact entries that are not applied");
    assert(index <= this.#stableIndex, "cannot compact entries that are not persisted");
    const conf = this.confAt(index);
    const term = this.term(index)!;
    this.#entries = this.#entries.slice(index - this.#snapshotIndex);
    this.#snapshotIndex = index;
    this.#snapshotTerm = term;
    this.#snapshotConf = conf;
    while (this.#configIndexes.length > 0 && this.#configIndexes[0] <= index) {
      this.#configIndexes.shift();
    }
  }

  /** The latest configuration in the log at or below `index` (null: none known). */
  confAt(index: number): ConfState | null {
    for (let i = this.#configIndexes.length - 1; i >= 0; i--) {
      const at = this.#configIndexes[i];
      if (at <= index) return decodeConfState(this.entry(at)!.data);
    }
    return this.#snapshotConf;
  }

  /** The latest configuration anywhere in the log, committed or not (Raft thesis §4.1). */
  latestConf(): ConfState | null {
    return this.confAt(this.lastIndex());
  }

  /** Index of the latest Config entry in the log, or the snapshot index when there is none. */
  latestConfIndex(): number {
    const n = this.#configIndexes.length;
    return n > 0 ? this.#configIndexes[n - 1] : this.#snapshotIndex;
  }
}
