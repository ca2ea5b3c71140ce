/**
 * The storage layer of a node: its Raft log, hard state and snapshots in one data dir.
 *
 * Layout of a data dir `DIR`:
 *
 * - `DIR/LOCK`: held with an exclusive `flock` while a process uses the dir.
 * - `DIR/raft_meta/meta`: node id, group, term, vote, incarnation, cluster id, commit and log
 *   floors, peer incarnations ({@linkcode MetaStore}).
 * - `DIR/log/*.log`: the log segments ({@linkcode LogStore}).
 * - `DIR/snapshot/*.snap`: the newest two snapshots ({@linkcode SnapshotStore}).
 *
 * Every method that changes state resolves only once the change survives a crash, so the
 * caller may act on it (answer a vote, acknowledge entries) as soon as it resolves.
 *
 * @example
 * ```ts
 * import { DataDir } from "./mod.ts";
 * const dir = await DataDir.open("/var/lib/counter", { nodeId: "10.0.0.1:7000", group: "main" });
 * const { hardState, snapshot, entries } = dir.recovered();
 * // ... run the node ...
 * await dir.close();
 * ```
 *
 * @module
 */

import { dirname, join, resolve } from "node:path";
import type { Entry, HardState, NodeId, Snapshot } from "../raft/types.ts";
import { type Logger, silentLogger } from "../logging/logger.ts";
import { syncDir } from "./atomic_file.ts";
import { DirLock } from "./dir_lock.ts";
import { StorageCorruptionError } from "./errors.ts";
import type { JournalRecord, LogJournal } from "./journal.ts";
import { LogStore, segmentFileName } from "./log_store.ts";
import { MetaStore } from "./meta_store.ts";
import { SnapshotStore } from "./snapshot_store.ts";

export { crc32c } from "./crc32c.ts";
export { syncDir, writeFileAtomic } from "./atomic_file.ts";
export { DirLock, LOCK_FILE_NAME } from "./dir_lock.ts";
export {
  DataDirLockedError,
  DataDirMismatchError,
  StorageCorruptionError,
  UnsupportedFormatError,
} from "./errors.ts";
export { LogStore, type LogStoreOptions, SEGMENT_BYTES_MAX_DEFAULT } from "./log_store.ts";
export { HostJournal, JOURNAL_DIR_NAME, type JournalRecord, type LogJournal } from "./journal.ts";
export { isId64, type Meta, MetaStore, PEER_INCARNATIONS_MAX, randomId64 } from "./meta_store.ts";
export { SnapshotStore } from "./snapshot_store.ts";

/** Name of the log subdirectory. */
export const LOG_DIR_NAME = "log";
/** Name of the hard state subdirectory. */
export const META_DIR_NAME = "raft_meta";
/** Name of the snapshot subdirectory. */
export const SNAPSHOT_DIR_NAME = "snapshot";

/** Options for {@linkcode DataDir.open}. */
export interface DataDirOptions {
  /** The node opening the dir; must match the one that created it. */
  nodeId: NodeId;
  /** The group the node serves; must match the one that created the dir. */
  group: string;
  /** Log segment size at which a new segment starts. Default 16 MiB. */
  segmentBytesMax?: number;
  /** Where recovery warnings and errors go. Default: dropped. */
  logger?: Logger;
  /**
   * The host journal's records for this group (given the dir's incarnation), read at the
   * host's start: replayed onto the log at open, then flushed (see `journal.ts`). Default: none.
   */
  journalRecords?: (incarnation: string) => JournalRecord[];
  /** Once open, appends go through this host journal. Default: each append flushes the log. */
  journal?: LogJournal;
}

/** What a node restarts from: see {@linkcode DataDir.recovered}. */
export interface RecoveredState {
  /** The saved term and vote; term 0 and no vote for a fresh dir. */
  hardState: HardState;
  /** The newest intact snapshot, or null. */
  snapshot: Snapshot | null;
  /** The log entries after the snapshot (from index 1 without one), consecutive. */
  entries: Entry[];
}

/** A node's data dir, locked and recovered; see the module doc. */
export class DataDir {
  #dir: string;
  #lock: DirLock;
  #meta: MetaStore;
  #log: LogStore;
  #snapshots: SnapshotStore;
  #logger: Logger;
  #recovered: RecoveredState;
  /** Index of the newest snapshot saved or recovered; 0 without one. */
  #snapshotIndex: number;
  #closed = false;
  #closing: Promise<void> | null = null;
  /** The highest commit index the node reported with {@linkcode DataDir.noteCommitIndex}. */
  #commitNoted = 0;

  private constructor(
    dir: string,
    lock: DirLock,
    meta: MetaStore,
    log: LogStore,
    snapshots: SnapshotStore,
    logger: Logger,
    recovered: RecoveredState,
  ) {
    this.#dir = dir;
    this.#lock = lock;
    this.#meta = meta;
    this.#log = log;
    this.#snapshots = snapshots;
    this.#logger = logger;
    this.#recovered = recovered;
    this.#snapshotIndex = recovered.snapshot?.index ?? 0;
  }

  /**
   * Opens the data dir `dir` for `options.nodeId` in `options.group`: creates it and its
   * subdirectories when missing, takes the lock (throwing {@linkcode DataDirLockedError} at
   * once when another process holds it), checks the dir belongs to this node and group
   * (else {@linkcode DataDirMismatchError}) and recovers the log, hard state and snapshot.
   *
   * Recovery reconciles the log with the newest snapshot. A log that does not continue the
   * snapshot (an entry at the snapshot's index with another term, or a log that ends before
   * the snapshot's index) is stale, left by a crash during {@linkcode DataDir.restoreSnapshot},
   * and is discarded. A log that starts after the entry following the snapshot is missing
   * entries: {@linkcode StorageCorruptionError}. So is a log and snapshot that end below the
   * meta file's log floor or commit floor: files the node wrote are gone (docs/STORAGE.md).
   */
  static async open(dir: string, options: DataDirOptions): Promise<DataDir> {
    const logger = options.logger ?? silentLogger;
    const root = resolve(dir);
    const subdirs = [LOG_DIR_NAME, META_DIR_NAME, SNAPSHOT_DIR_NAME].map((name) =>
      join(root, name)
    );
    await ensureDir(root, { recursive: true });
    for (const path of subdirs) await ensureDir(path);
    // Directories must be durable before files in them can be: flushed whether this open
    // created them or found them (a process that died before their flush leaves them in the
    // page cache only, and a group dir a power cut then takes would reopen as a new one).
    await syncDir(dirname(root));
    await syncDir(root);
    const lock = DirLock.acquire(root);
    let log: LogStore | null = null;
    try {
      const meta = await MetaStore.open(join(root, META_DIR_NAME), {
        nodeId: options.nodeId,
        group: options.group,
      });
      const journalRecords = options.journalRecords?.(meta.incarnation()) ?? [];
      const journalHolds = (index: number) =>
        journalRecords.some((r) => r.firstIndex <= index && index < r.firstIndex + r.count);
      const snapshots = await SnapshotStore.open(join(root, SNAPSHOT_DIR_NAME), { logger });
      const snapshot = await snapshots.loadNewest();
      const hadSnapshotFiles = snapshot !== null || await snapshots.hasAny();
      // Set once the DataDir exists; the log only calls back on writes, which come later.
      let opened: DataDir | null = null;
      log = await LogStore.open(join(root, LOG_DIR_NAME), {
        segmentBytesMax: options.segmentBytesMax,
        logger,
        journalHolds,
        onSegmentDurable: (firstIndex) =>
          meta.saveLogFloor(firstIndex, opened === null ? 0 : opened.#commitFloorCandidate()),
        beforeCut: async (keptIndex) => {
          if (meta.logFloor() > keptIndex) await meta.saveLogFloor(keptIndex);
        },
      });
      const hasLog = log.segmentInfo().length > 0;
      if (!meta.exists() && (hasLog || hadSnapshotFiles)) {
        // Without the meta file the node's term and vote are lost: it could vote twice.
        throw new StorageCorruptionError(
          `data dir ${root} has log or snapshot files but no meta file ${meta.path}`,
          meta.path,
          0,
        );
      }
      if (meta.needsWrite()) {
        // Bind the dir to this node and group before anything else is written into it, and make
        // the incarnation permanent (a new dir, or one upgraded from meta format version 1).
        await meta.save(meta.hardState());
      }
      if (journalRecords.length > 0) {
        let replayed = 0;
        try {
          for (const record of journalRecords) replayed += await log.replay(record);
        } catch (error) {
          // Entries missing before a record: a lost segment is the likely cause, which the floor
          // check names more precisely.
          if (error instanceof StorageCorruptionError) checkFloors(root, meta, log, snapshot);
          throw error;
        }
        await log.flushUnflushed();
        logger.info("replayed the host journal", {
          dir: root,
          records: journalRecords.length,
          entriesWritten: replayed,
          lastIndex: log.lastIndex(),
        });
      }
      checkFloors(root, meta, log, snapshot);
      const entries = await reconcile(root, log, snapshot, logger);
      if (options.journal !== undefined) {
        log.attachJournal(options.journal, options.group, meta.incarnation());
      }
      const recovered = { hardState: meta.hardState(), snapshot, entries };
      logger.info("data dir recovered", {
        dir: root,
        term: recovered.hardState.term,
        snapshotIndex: snapshot?.index ?? 0,
        firstIndex: log.firstIndex(),
        lastIndex: log.lastIndex(),
      });
      opened = new DataDir(root, lock, meta, log, snapshots, logger, recovered);
      return opened;
    } catch (error) {
      try {
        await log?.close();
      } catch (closeError) {
        // The open's own error is the one to report; the lock goes all the same.
        logger.error("closing the log after a failed open failed too", {
          dir: root,
          error: closeError instanceof Error ? closeError.message : String(closeError),
        });
      } finally {
        lock.release();
      }
      throw error;
    }
  }

  /** The data dir's absolute path. */
  get path(): string {
    return this.#dir;
  }

  /**
   * The state recovered at open: hard state, newest snapshot and the log entries after it.
   * It is not updated by later calls; a node reads it once, at start.
   */
  recovered(): RecoveredState {
    return this.#recovered;
  }

  /**
   * True when the dir holds no state yet: no log entries, no snapshot, term 0 and no vote.
   * The caller bootstraps such a dir. (The meta file is written at the first open, to bind
   * the dir to its node; it counts as no state while the term is 0 without a vote.)
   */
  isFresh(): boolean {
    const hardState = this.#meta.hardState();
    return this.#snapshotIndex === 0 && this.#log.firstIndex() === 1 &&
      this.#log.lastIndex() === 0 && hardState.term === 0 && hardState.vote === "";
  }

  /**
   * Durably appends `entries`; see {@linkcode LogStore.append}. Not an async function: it
   * returns the log's promise itself, saving a promise and a hop per append (errors still come
   * back as a rejection, never thrown).
   */
  append(entries: readonly Entry[]): Promise<void> {
    try {
      this.#checkOpen();
      const first = entries[0]?.index ?? Infinity;
      if (first <= this.#snapshotIndex) {
        // Entries the snapshot covers are committed: replacing them is a bug in the caller.
        const covered = this.#snapshotIndex;
        throw new RangeError(
          `cannot append at index ${first}: the snapshot covers up to ${covered}`,
        );
      }
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#log.append(entries);
  }

  /**
   * Durably saves the term and vote; see {@linkcode MetaStore.save}. The same write raises the
   * commit floor to what {@linkcode DataDir.noteCommitIndex} allows.
   */
  async saveHardState(hardState: HardState): Promise<void> {
    this.#checkOpen();
    await this.#meta.save(hardState, this.#commitFloorCandidate());
  }

  /**
   * Tells the dir the node's commit index. Memory only, so it costs nothing on the write path:
   * the commit floor is raised to min(`index`, the last index held here) with the next meta
   * write (a hard state save, a new log segment) or {@linkcode DataDir.flushCommitFloor}.
   */
  noteCommitIndex(index: number): void {
    if (index > this.#commitNoted) this.#commitNoted = index;
  }

  /** True when {@linkcode DataDir.flushCommitFloor} would write (the floor may move). */
  commitFloorBehind(): boolean {
    return !this.#closed && this.#commitFloorCandidate() > this.#meta.commitFloor();
  }

  /**
   * Durably raises the commit floor to what {@linkcode DataDir.noteCommitIndex} allows, when
   * that moved; a node calls it from a timer (about once a second) and writes nothing when idle.
   */
  async flushCommitFloor(): Promise<void> {
    this.#checkOpen();
    const candidate = this.#commitFloorCandidate();
    if (candidate > this.#meta.commitFloor()) await this.#meta.saveCommitFloor(candidate);
  }

  /** This data dir's incarnation (16 lowercase hex digits), fixed when the dir was created. */
  incarnation(): string {
    return this.#meta.incarnation();
  }

  /** The saved cluster id (16 lowercase hex digits), or "" until one is saved. */
  clusterId(): string {
    return this.#meta.clusterId();
  }

  /** True while a node that joined empty must not vote yet (see `Meta.voteFloorPending`). */
  voteFloorPending(): boolean {
    return this.#meta.voteFloorPending();
  }

  /** Durably sets or clears the pending vote floor (see `Meta.voteFloorPending`). */
  async saveVoteFloorPending(pending: boolean): Promise<void> {
    this.#checkOpen();
    await this.#meta.saveVoteFloorPending(pending);
  }

  /** Durably saves the cluster id; see {@linkcode MetaStore.saveClusterId}. */
  async saveClusterId(id: string): Promise<void> {
    this.#checkOpen();
    await this.#meta.saveClusterId(id);
  }

  /** An index known committed and durably held by this dir's log or snapshot; 0 if none. */
  commitFloor(): number {
    return this.#meta.commitFloor();
  }

  /**
   * Durably raises the commit floor (never lowers it); see {@linkcode MetaStore.saveCommitFloor}.
   * The caller passes an index that is both committed and durably in this dir's log or snapshot:
   * the next open refuses a dir whose log and snapshot end below it.
   */
  async saveCommitFloor(index: number): Promise<void> {
    this.#checkOpen();
    const held = Math.max(this.#log.lastIndex(), this.#snapshotIndex);
    if (index > held) {
      throw new RangeError(`commit floor ${index} is past the last index held here, ${held}`);
    }
    await this.#meta.saveCommitFloor(index);
  }

  /** The saved incarnation of peer `id`, or undefined. */
  peerIncarnation(id: NodeId): string | undefined {
    return this.#meta.peerIncarnation(id);
  }

  /** Durably records a peer's incarnation; see {@linkcode MetaStore.savePeerIncarnation}. */
  async savePeerIncarnation(id: NodeId, incarnation: string): Promise<void> {
    this.#checkOpen();
    await this.#meta.savePeerIncarnation(id, incarnation);
  }

  /** Durably drops the incarnations of peers not in `keep`; no write when none is dropped. */
  async forgetPeerIncarnations(keep: ReadonlySet<NodeId>): Promise<void> {
    this.#checkOpen();
    await this.#meta.forgetPeerIncarnations(keep);
  }

  /**
   * Durably saves a snapshot of this node's own applied state. The log is untouched; call
   * {@linkcode DataDir.compactTo} afterwards to drop the entries it covers.
   */
  async saveSnapshot(snapshot: Snapshot): Promise<void> {
    this.#checkOpen();
    this.#checkSnapshotIndex(snapshot);
    // Our own state can only cover entries we have; a snapshot past the log is a bug.
    if (snapshot.index > this.#log.lastIndex()) {
      throw new RangeError(
        `snapshot index ${snapshot.index} is past the last log index ${this.#log.lastIndex()}`,
      );
    }
    if (snapshot.index >= this.#log.firstIndex()) {
      const term = await this.#log.termAt(snapshot.index);
      if (term !== snapshot.term) {
        throw new RangeError(
          `snapshot at index ${snapshot.index} has term ${snapshot.term}, the log has term ${term}`,
        );
      }
    }
    await this.#snapshots.save(snapshot);
    // A restoreSnapshot that ran meanwhile may have moved past this one.
    this.#snapshotIndex = Math.max(this.#snapshotIndex, snapshot.index);
  }

  /**
   * Installs a snapshot received from the leader: saves it durably, then discards the whole
   * log; the next append must start at `snapshot.index + 1`. A crash between the two steps
   * leaves a stale log that the next open discards.
   */
  async restoreSnapshot(snapshot: Snapshot): Promise<void> {
    this.#checkOpen();
    this.#checkSnapshotIndex(snapshot);
    if (snapshot.index < this.#meta.commitFloor()) {
      // Raft installs a snapshot only above its commit index, which is at least the floor; one
      // below it would discard committed entries this dir acknowledged.
      throw new RangeError(
        `cannot install a snapshot at index ${snapshot.index}: index ${this.#meta.commitFloor()} ` +
          `is committed and held here`,
      );
    }
    // Before the snapshot lands: a crash after it must not leave journal records of the log it
    // replaces, which a replay would put back after the snapshot.
    await this.#log.checkpointJournal();
    await this.#snapshots.save(snapshot);
    this.#snapshotIndex = snapshot.index;
    await this.#log.reset(snapshot.index + 1);
  }

  /**
   * Deletes log segments whose entries are all at or below `index`, which a saved snapshot
   * must cover: compacting past the snapshot would lose committed entries.
   */
  async compactTo(index: number): Promise<void> {
    this.#checkOpen();
    if (index > this.#snapshotIndex) {
      throw new RangeError(
        `cannot compact to index ${index}: the newest snapshot covers up to ${this.#snapshotIndex}`,
      );
    }
    await this.#log.compactTo(index);
  }

  /** Index of the first entry still held in the log (may be at or below the snapshot's). */
  firstIndex(): number {
    return this.#log.firstIndex();
  }

  /** Index of the last log entry; `firstIndex() - 1` when the log is empty. */
  lastIndex(): number {
    return this.#log.lastIndex();
  }

  /** Reads log entries `lo..hi-1`; see {@linkcode LogStore.entries}. */
  async entries(lo: number, hi: number): Promise<Entry[]> {
    this.#checkOpen();
    return await this.#log.entries(lo, hi);
  }

  /**
   * Closes the log and releases the lock. Every write was durable when it resolved, so there
   * is nothing left to flush; pending writes finish first. Calling it again does nothing.
   */
  close(): Promise<void> {
    this.#closing ??= this.#closeOnce();
    return this.#closing;
  }

  async #closeOnce(): Promise<void> {
    try {
      // A clean stop leaves the commit floor current; failing to must not keep the dir locked.
      await this.flushCommitFloor().catch((error) => {
        this.#logger.warn("could not save the commit floor at close", { error });
      });
    } finally {
      this.#closed = true;
    }
    try {
      await this.#log.close();
    } finally {
      this.#lock.release();
      this.#logger.debug("data dir closed", { dir: this.#dir });
    }
  }

  /** The commit index noted, capped by what this dir durably holds. */
  #commitFloorCandidate(): number {
    return Math.min(this.#commitNoted, Math.max(this.#log.lastIndex(), this.#snapshotIndex));
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error(`data dir ${this.#dir} is closed`);
  }

  #checkSnapshotIndex(snapshot: Snapshot): void {
    if (snapshot.index < this.#snapshotIndex) {
      throw new RangeError(
        `snapshot index ${snapshot.index} is older than the saved snapshot at ` +
          `${this.#snapshotIndex}`,
      );
    }
  }
}

/** Creates `path` when missing; returns true when it did. */
async function ensureDir(path: string, options: Deno.MkdirOptions = {}): Promise<boolean> {
  try {
    await Deno.stat(path);
    return false;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  try {
    await Deno.mkdir(path, options);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    throw error;
  }
}

/**
 * Refuses a log and snapshot that end below what the node once durably held: the commit floor
 * (committed and acknowledged) or the log floor (the newest segment's first index). Either means
 * files were lost after the node wrote them: a deleted or truncated newest segment, a deleted
 * log, a restored old backup.
 */
function checkFloors(
  root: string,
  meta: MetaStore,
  log: LogStore,
  snapshot: Snapshot | null,
): void {
  const logDir = join(root, LOG_DIR_NAME);
  const snapshotIndex = snapshot?.index ?? 0;
  const held = Math.max(log.lastIndex(), snapshotIndex);
  const newest = log.segmentInfo().at(-1);
  const holds = `the log in ${logDir} ends at index ${log.lastIndex()}` +
    (newest === undefined ? " (no segment)" : ` (newest segment ${newest.name})`) +
    ` and the snapshot at ${snapshotIndex}`;
  const replace = "log files were deleted or truncated; this node must be replaced (see " +
    `docs/STORAGE.md, "A node that refuses to start")`;
  const logFloor = meta.logFloor();
  if (held < logFloor) {
    const missing = join(logDir, segmentFileName(logFloor));
    throw new StorageCorruptionError(
      `data dir ${root} lost log entries: log segment ${missing} is missing, but the node ` +
        `wrote entry ${logFloor} into it (log floor in ${meta.path}); ${holds}; ${replace}`,
      missing,
      0,
    );
  }
  const commitFloor = meta.commitFloor();
  if (held < commitFloor) {
    const missing = join(logDir, segmentFileName(held + 1));
    throw new StorageCorruptionError(
      `data dir ${root} lost committed log entries: entries ${held + 1}..${commitFloor} are ` +
        `committed and were durable here (commit floor in ${meta.path}), but ${holds}; no ` +
        `segment such as ${missing} holds them; ${replace}`,
      logDir,
      0,
    );
  }
}

/** Makes the log continue the snapshot (see {@linkcode DataDir.open}); returns what follows it. */
async function reconcile(
  root: string,
  log: LogStore,
  snapshot: Snapshot | null,
  logger: Logger,
): Promise<Entry[]> {
  const base = snapshot?.index ?? 0;
  const first = log.firstIndex();
  const last = log.lastIndex();
  if (first > base + 1) {
    const before = snapshot === null ? "there is no snapshot" : `the snapshot ends at ${base}`;
    throw new StorageCorruptionError(
      `data dir ${root} is missing log entries ${base + 1}..${first - 1}: the log starts at ` +
        `index ${first} but ${before}`,
      join(root, LOG_DIR_NAME),
      0,
    );
  }
  if (snapshot !== null) {
    let stale = "";
    if (last < base) {
      stale = `the log ends at index ${last}, before the snapshot at ${base}`;
    } else if (first <= base) {
      const term = await log.termAt(base);
      if (term !== snapshot.term) {
        stale =
          `the log has term ${term} at the snapshot's index ${base}, the snapshot ${snapshot.term}`;
      }
    }
    if (stale !== "") {
      // A crash during restoreSnapshot: the snapshot is durable, the old log not yet gone.
      logger.warn("discarding a log that does not continue the snapshot", {
        dir: root,
        reason: stale || "the empty log does not resume after the snapshot",
        snapshotIndex: base,
        logFirstIndex: first,
        logLastIndex: last,
      });
      await log.reset(base + 1);
      return [];
    }
  }
  return await log.entries(base + 1, log.lastIndex() + 1);
}
