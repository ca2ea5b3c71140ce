/**
 * A node's simulated durable storage: hard state, snapshot, and the log after the snapshot.
 *
 * Only what a completed write put here survives a crash. A write follows the `Ready` contract:
 * the hard state, then the snapshot (which replaces the whole log, as the storage layer's
 * `restoreSnapshot` does), then the entries (which replace every stored entry from the first
 * one's index on). A crash in the middle of a write may leave any prefix of those pieces, in that
 * order: the model of a storage layer that writes each piece atomically but not all together.
 *
 * @module
 */

import type { Entry, HardState, RaftInitialState, Snapshot } from "../../../lib/raft/mod.ts";

/** What one Ready asks the shell to make durable. */
export interface DiskWrite {
  /** New hard state, or null when unchanged. */
  hardState: HardState | null;
  /** Snapshot received from the leader, or null. */
  snapshot: Snapshot | null;
  /** Entries replacing the stored suffix from `entries[0].index` on. */
  entries: Entry[];
}

/** Thrown when a write would break the shape of the stored log (a gap, or a write below the snapshot). */
export class DiskError extends Error {
  /** Creates the error with `message`. */
  constructor(message: string) {
    super(message);
    this.name = "DiskError";
  }
}

/** Number of atomic pieces `w` is made of (a torn write keeps a prefix of them). */
export function writePieceCount(w: DiskWrite): number {
  return (w.hardState === null ? 0 : 1) + (w.snapshot === null ? 0 : 1) + w.entries.length;
}

/** True when `w` has nothing to make durable. */
export function isEmptyWrite(w: DiskWrite): boolean {
  return writePieceCount(w) === 0;
}

/** The durable state of one simulated node. */
export class SimDisk {
  /** Persisted term and vote. */
  hardState: HardState;
  /** Latest persisted snapshot. */
  snapshot: Snapshot | null;
  /** Persisted entries after the snapshot, contiguous. */
  entries: Entry[];
  /** Completed writes, for statistics. */
  writes = 0;
  /**
   * The data dir's incarnation: a number no other disk of the run has, as the real meta file's
   * random incarnation id. A wiped disk is a new disk with a new incarnation.
   */
  readonly incarnation: number;
  /**
   * Incarnations of the peers this node has heard from (the real meta's registry), durable as
   * soon as recorded: node.ts saves a new one before it steps any message of that peer.
   */
  readonly peerIncarnations = new Map<string, number>();

  /** Creates a disk holding `initial` (e.g. `bootstrapState(...)`) with `incarnation`. */
  constructor(initial: RaftInitialState, incarnation = 0) {
    this.hardState = { ...initial.hardState };
    this.snapshot = initial.snapshot;
    this.entries = initial.entries.slice();
    this.incarnation = incarnation;
  }

  /**
   * A node has started on this disk: the real data dir then has its meta file (node id,
   * incarnation), so a later start is a restart, not a start on an empty dir.
   */
  bound = false;
  /**
   * The group this data dir belongs to (the real meta's cluster id): 1 for the run's group, a
   * new number for a group forced from a survivor, 0 until a node that joined hears from one.
   */
  clusterId = 0;
  /**
   * The node's vote floor (`RaftOptions.voteFloor`) as saved in its meta: -1 for a node that
   * started empty with `--join` and has not heard from a leader yet.
   */
  voteFloor = 0;

  /** True when no node has started on the disk yet: what a new or wiped data dir looks like. */
  isFresh(): boolean {
    return !this.bound && this.snapshot === null && this.entries.length === 0 &&
      this.hardState.term === 0 && this.hardState.vote === "";
  }

  /** Index covered by the snapshot, 0 without one. */
  snapshotIndex(): number {
    return this.snapshot === null ? 0 : this.snapshot.index;
  }

  /** Index of the last stored entry (or of the snapshot when no entry follows it). */
  lastIndex(): number {
    return this.snapshotIndex() + this.entries.length;
  }

  /** Term of the stored entry at `index`, the snapshot's term at its index, else undefined. */
  term(index: number): number | undefined {
    const s = this.snapshotIndex();
    if (index === s) return this.snapshot === null ? 0 : this.snapshot.term;
    if (index < s || index > this.lastIndex()) return undefined;
    return this.entries[index - s - 1].term;
  }

  /**
   * True when the entry at `index` with `term` is durable here, or a snapshot covers `index`
   * (a snapshot holds only committed entries, so it covers whatever was there).
   */
  holds(index: number, term: number | undefined): boolean {
    if (index <= this.snapshotIndex()) return true;
    const t = this.term(index);
    return t !== undefined && (term === undefined || t === term);
  }

  /**
   * Makes `w` durable. With `piecesMax` below the piece count, only that many leading pieces
   * land: a write torn by a crash.
   */
  write(w: DiskWrite, piecesMax = Number.POSITIVE_INFINITY): void {
    let budget = piecesMax;
    if (w.hardState !== null) {
      if (budget-- <= 0) return;
      if (w.hardState.term < this.hardState.term) {
        throw new DiskError(
          `hard state term goes back from ${this.hardState.term} to ${w.hardState.term}`,
        );
      }
      this.hardState = { ...w.hardState };
    }
    if (w.snapshot !== null) {
      if (budget-- <= 0) return;
      if (w.snapshot.index > this.snapshotIndex()) {
        this.snapshot = w.snapshot;
        this.entries = [];
      }
    }
    if (w.entries.length > 0) {
      const first = w.entries[0].index;
      const s = this.snapshotIndex();
      if (first <= s) throw new DiskError(`entry ${first} written at or below snapshot ${s}`);
      if (first > this.lastIndex() + 1) {
        throw new DiskError(`entry ${first} leaves a gap after stored index ${this.lastIndex()}`);
      }
      for (let i = 0; i < w.entries.length; i++) {
        if (budget-- <= 0) return;
        const e = w.entries[i];
        if (e.index !== first + i) throw new DiskError(`entries to write are not contiguous`);
        // Replacing the suffix: drop every stored entry from this index on.
        this.entries.length = e.index - s - 1;
        this.entries.push(e);
      }
    }
    if (budget >= 0) this.writes++;
  }

  /**
   * Stores a snapshot the node took of its own applied state. Entries it covers are dropped;
   * the rest of the log stays.
   */
  saveLocalSnapshot(snapshot: Snapshot): void {
    const s = this.snapshotIndex();
    if (snapshot.index <= s) return;
    const t = this.term(snapshot.index);
    if (t !== snapshot.term) {
      throw new DiskError(
        `local snapshot at ${snapshot.index} has term ${snapshot.term}, stored term is ${t}`,
      );
    }
    this.entries = this.entries.slice(snapshot.index - s);
    this.snapshot = snapshot;
  }

  /** What a restarting node recovers from this disk. */
  recover(): RaftInitialState {
    return {
      hardState: { ...this.hardState },
      snapshot: this.snapshot,
      entries: this.entries.slice(),
    };
  }
}
