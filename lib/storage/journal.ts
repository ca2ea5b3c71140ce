/**
 * The host journal: one write-ahead file per data root that makes every group's appends of an
 * event-loop turn durable with one `write` and one `fdatasync`, whatever the number of groups.
 *
 * Without it, each group flushed its own log segment: 16 busy groups cost 16 `fdatasync` calls
 * (and 16 hops to a blocking thread) per turn where one group cost one. With it, an append
 * goes first into the journal; once the journal's flush returns, the same record bytes are
 * copied into the group's segment file (page cache only) and the append resolves. Segments are
 * flushed later, all at once, at a checkpoint: when the journal file has grown past its limit,
 * or before a group cuts or discards log entries. Only then is the journal file deleted.
 *
 * So at any time a segment's unflushed tail holds only entries whose journal record is durable,
 * and recovery can rebuild it. At a start, {@linkcode HostJournal.open} reads every journal file;
 * each group with records opens its log tolerating damage from the first index the journal holds
 * for it (see `LogStoreOptions.repairFromIndex`), replays the records onto it (see
 * `LogStore.replay`) and flushes it; only then does {@linkcode HostJournal.finishRecovery} delete
 * the files read and start a new one, before any group appends. Entries below that index were
 * flushed by a checkpoint, so damage there is still an error.
 *
 * Layout: `DATA/journal/NNNNNNNNNNNNNNNNNNNN.jnl`, named by a sequence number (20 digits), each
 * file a header then records, all integers little-endian:
 *
 * | offset | bytes | field                                |
 * | ------ | ----- | ------------------------------------ |
 * | 0      | 4     | magic "CJNL"                         |
 * | 4      | 2     | format version, 1                    |
 * | 6      | 2     | reserved, 0                          |
 * | 8      | 8     | sequence number (u64), as in the name |
 * | 16     | 4     | CRC-32C of bytes 0..16               |
 *
 * Frame (one per flush): payload length n (u32), CRC-32C of the payload (u32), then the payload:
 * items back to back, each its length (u32) and an append: kind (u8, 1 = append), group name
 * length (u8), the name (UTF-8), the group dir's incarnation (16 ASCII hex digits: records of an
 * earlier dir of the same name are ignored), first index (u64), entry count (u32), and the
 * entries as log segment records (each with its own CRC). One CRC covers a whole flush: its
 * pages may reach the disk in any order, so a crash tears the frame or leaves it whole.
 *
 * @module
 */

import { dirname, join } from "node:path";
import { setImmediate } from "node:timers";
import { type Logger, silentLogger } from "../logging/logger.ts";
import { getU64, isDigits, setU64, writeAllSync } from "./_binary.ts";
import { syncDir, syncFileAt, truncateDurably, writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import { StorageCorruptionError, UnsupportedFormatError } from "./errors.ts";
import { hasZeroedSectorPart } from "./log_store.ts";

/** Name of the journal's folder under the data root. */
export const JOURNAL_DIR_NAME = "journal";
/**
 * Name of the file beside the journal's folder (`DATA/journal-floor`) holding the sequence number
 * of the journal file each start begins with: a start that finds no journal file at or above it
 * knows files were deleted, and with them acknowledged entries.
 */
export const JOURNAL_FLOOR_FILE_NAME = "journal-floor";
/** Extension of journal files. */
export const JOURNAL_FILE_EXTENSION = ".jnl";
/** Magic bytes "CJNL" at the start of every journal file. */
export const JOURNAL_MAGIC: Uint8Array = new Uint8Array([0x43, 0x4a, 0x4e, 0x4c]);
/** Journal file format version written and read. */
export const JOURNAL_VERSION = 1;
/** Bytes of a journal file's header. */
export const JOURNAL_HEADER_BYTES = 20;
/** Bytes before a frame's payload: its length and CRC. */
const RECORD_HEADER_BYTES = 8;
/** Bytes before an item in a frame: its length. */
const ITEM_HEADER_BYTES = 4;
/** Payload kind of an append record. */
const KIND_APPEND = 1;
/** Bytes of an incarnation in a record. */
const INCARNATION_BYTES = 16;
/** Largest record payload accepted when reading: a batch is bounded well below this. */
const RECORD_PAYLOAD_BYTES_MAX = 512 * 1024 * 1024;
/** Default size past which the journal starts a new file (after a checkpoint). */
export const JOURNAL_ROTATE_BYTES_DEFAULT = 32 * 1024 * 1024;
/** The flush buffer is kept between flushes up to this size; larger ones are dropped after use. */
const FLUSH_BUFFER_RETAINED_MAX = 1024 * 1024;

/** One append read back from the journal at open. */
export interface JournalRecord {
  /** The group whose log the entries belong to. */
  group: string;
  /** Incarnation of the group's data dir when the entries were appended. */
  incarnation: string;
  /** Index of the first entry. */
  firstIndex: number;
  /** Number of entries. */
  count: number;
  /** The entries, as log segment records. */
  records: Uint8Array;
  /** The journal file, for error messages. */
  path: string;
}

/** What the journal asks of a log that appends through it (a `LogStore`). */
/** How often, at most, the logs write the segment bytes they hold (see `writeHeld`). */
const HELD_WRITE_INTERVAL_MS = 1000;

export interface JournalClient {
  /** The path of the segment holding bytes written and not flushed yet, or null. */
  unflushedPath(): string | null;
  /** `path` was flushed: unless written to since, the log has nothing unflushed. */
  markFlushed(path: string): void;
  /**
   * Writes to the segment, without flushing, the bytes of durable appends the log still holds
   * in memory (`onDurable` may keep them rather than write at once). Called before a checkpoint
   * flushes the segments, and about once a second while appends flow, which bounds how long
   * they wait. A write error makes that log unusable and is thrown.
   */
  writeHeld(): void;
}

/** The part of {@linkcode HostJournal} a log uses; tests may give their own. */
export interface LogJournal {
  /**
   * Makes an append durable: resolves once the record is flushed and `onDurable` (which copies
   * the records into the group's segment, or keeps them for `JournalClient.writeHeld`, without
   * flushing) has run without throwing.
   */
  append(
    client: JournalClient,
    group: string,
    incarnation: string,
    firstIndex: number,
    count: number,
    records: Uint8Array,
    onDurable: () => void,
  ): Promise<void>;
  /**
   * Flushes every segment written through the journal and starts a new journal file, so no
   * record written before the call is replayed after a crash. A log calls it before it cuts or
   * discards entries: replaying an older record could otherwise bring discarded entries back.
   */
  checkpoint(): Promise<void>;
  /** The log is closed: forget it. */
  forget(client: JournalClient): void;
}

/** Options for {@linkcode HostJournal.open}. */
export interface HostJournalOptions {
  /** Where recovery warnings go. Default: dropped. */
  logger?: Logger;
  /** Size past which a new journal file is started. Default 32 MiB. */
  rotateBytes?: number;
  /** Monotonic clock in ms, for when logs write what they hold. Default `performance.now`. */
  now?: () => number;
}

interface PendingAppend {
  client: JournalClient;
  header: Uint8Array;
  records: Uint8Array;
  onDurable: () => void;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The host's journal; see the module doc. */
export class HostJournal implements LogJournal {
  readonly #dir: string;
  readonly #logger: Logger;
  readonly #rotateBytes: number;
  /** Records read at open, by group; kept until {@linkcode HostJournal.finishRecovery}. */
  #recovered: Map<string, JournalRecord[]>;
  /** Files read at open; deleted by {@linkcode HostJournal.finishRecovery}. */
  #recoveredPaths: string[];
  /** The file appends go to; none until {@linkcode HostJournal.finishRecovery}. */
  #file: Deno.FsFile | null = null;
  /** Sequence number of `#file` (before it exists, of the newest file read at open). */
  #sequence: number;
  #fileBytes = 0;
  #pending: PendingAppend[] = [];
  #checkpointWaiters: Waiter[] = [];
  /** Logs that wrote segment bytes since the last checkpoint. */
  #written = new Set<JournalClient>();
  /** The monotonic clock of `#writeHeldWhenDue`, in ms. */
  readonly #now: () => number;
  /** When `#writeHeldWhenDue` last had the logs write what they held. */
  #heldWrittenAtMs: number;
  #running = false;
  #scheduled = false;
  #buffer = new Uint8Array(0);
  #failure: unknown = null;
  #closed = false;

  private constructor(
    dir: string,
    logger: Logger,
    rotateBytes: number,
    recovered: Map<string, JournalRecord[]>,
    recoveredPaths: string[],
    sequence: number,
    now: () => number,
  ) {
    this.#dir = dir;
    this.#logger = logger;
    this.#now = now;
    this.#heldWrittenAtMs = now();
    this.#rotateBytes = rotateBytes;
    this.#recovered = recovered;
    this.#recoveredPaths = recoveredPaths;
    this.#sequence = sequence;
  }

  /**
   * Opens the journal of the data root `root`: reads and checks every file in
   * `root/journal/` (a torn record at the end of the newest file is cut off; any other damage
   * throws {@linkcode StorageCorruptionError}). Nothing can be appended until
   * {@linkcode HostJournal.finishRecovery}; the files read stay until then.
   */
  static async open(root: string, options: HostJournalOptions = {}): Promise<HostJournal> {
    const logger = options.logger ?? silentLogger;
    const rotateBytes = options.rotateBytes ?? JOURNAL_ROTATE_BYTES_DEFAULT;
    if (!Number.isSafeInteger(rotateBytes) || rotateBytes < JOURNAL_HEADER_BYTES) {
      throw new RangeError(`journal rotateBytes ${rotateBytes} is too small`);
    }
    const dir = join(root, JOURNAL_DIR_NAME);
    try {
      await Deno.mkdir(dir);
      await syncDir(root);
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
    }
    const files: { sequence: number; path: string }[] = [];
    for await (const item of Deno.readDir(dir)) {
      const sequence = item.isFile ? parseJournalFileName(item.name) : -1;
      if (sequence >= 0) files.push({ sequence, path: join(dir, item.name) });
      else {logger.warn("ignoring an unknown file in the journal dir", {
          file: join(dir, item.name),
        });}
    }
    files.sort((a, b) => a.sequence - b.sequence);
    const floor = await readJournalFloor(root);
    const newest = files.at(-1)?.sequence ?? 0;
    if (newest < floor) {
      const floorPath = join(root, JOURNAL_FLOOR_FILE_NAME);
      throw new StorageCorruptionError(
        `the host journal lost files: ${dir} should hold ${journalFileName(floor)} or a newer ` +
          `file (${floorPath} records that a start began it) but ` +
          (files.length === 0
            ? "holds no journal file"
            : `its newest is ${journalFileName(newest)}`) +
          `; acknowledged entries of its groups may be gone; this node must be replaced (see ` +
          `docs/STORAGE.md, "A node that refuses to start")`,
        dir,
        0,
      );
    }
    const recovered = new Map<string, JournalRecord[]>();
    let count = 0;
    for (let k = 0; k < files.length; k++) {
      const { sequence, path } = files[k];
      const bytes = await Deno.readFile(path);
      const isLast = k === files.length - 1;
      // The file a start began was flushed, header and name, before the floor recorded it: only
      // a newer one (a rotation's) can have a header a crash tore.
      const records = await readJournalFile(
        bytes,
        path,
        sequence,
        isLast,
        sequence > floor,
        logger,
      );
      for (const record of records) {
        let list = recovered.get(record.group);
        if (list === undefined) recovered.set(record.group, list = []);
        list.push(record);
      }
      count += records.length;
    }
    if (files.length > 0) {
      logger.info("read the host journal", {
        dir,
        files: files.length,
        records: count,
        groups: recovered.size,
      });
    }
    const sequence = files.at(-1)?.sequence ?? 0;
    return new HostJournal(
      dir,
      logger,
      rotateBytes,
      recovered,
      files.map((f) => f.path),
      sequence,
      options.now ?? (() => performance.now()),
    );
  }

  /** The journal's folder. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * The records read at open for `group` written by the data dir of `incarnation`, oldest
   * first. Records of other incarnations (a dir of that name removed and created again) are
   * left out.
   */
  recoveredRecords(group: string, incarnation: string): JournalRecord[] {
    const all = this.#recovered.get(group) ?? [];
    const mine = all.filter((r) => r.incarnation === incarnation);
    if (mine.length < all.length) {
      this.#logger.warn("ignoring journal records of an earlier data dir of the group", {
        group,
        incarnation,
        ignored: all.length - mine.length,
      });
    }
    return mine;
  }

  /** The groups with records read at open. */
  recoveredGroups(): string[] {
    return [...this.#recovered.keys()];
  }

  /**
   * Starts a new journal file for appends, then deletes the files read at open. Call it once
   * every group with records has replayed and flushed them (opening its data dir with
   * `journalRecords` does both); a group that failed to open must leave them.
   */
  async finishRecovery(): Promise<void> {
    if (this.#file !== null) throw new Error(`host journal ${this.#dir} is already started`);
    await this.#startNextFile();
    // Recorded before any record goes into the new file: a later start then knows it must exist.
    await writeFileAtomic(
      join(dirname(this.#dir), JOURNAL_FLOOR_FILE_NAME),
      encoder.encode(`${this.#sequence}\n`),
    );
    this.#recovered = new Map();
    const paths = this.#recoveredPaths;
    this.#recoveredPaths = [];
    if (paths.length === 0) return;
    for (const old of paths) await removeIfPresent(old);
    await syncDir(this.#dir);
  }

  /** See {@linkcode LogJournal.append}. */
  append(
    client: JournalClient,
    group: string,
    incarnation: string,
    firstIndex: number,
    count: number,
    records: Uint8Array,
    onDurable: () => void,
  ): Promise<void> {
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    const header = encodeAppendHeader(group, incarnation, firstIndex, count, records.length);
    return new Promise((resolve, reject) => {
      this.#pending.push({ client, header, records, onDurable, resolve, reject });
      this.#schedule();
    });
  }

  /** See {@linkcode LogJournal.checkpoint}. */
  checkpoint(): Promise<void> {
    const refused = this.#refusal();
    if (refused !== null) return Promise.reject(refused);
    return new Promise((resolve, reject) => {
      this.#checkpointWaiters.push({ resolve, reject });
      this.#schedule();
    });
  }

  /** See {@linkcode LogJournal.forget}. */
  forget(client: JournalClient): void {
    this.#written.delete(client);
  }

  /** Size of the current journal file in bytes. */
  get fileBytes(): number {
    return this.#fileBytes;
  }

  /**
   * Waits for pending appends, then closes the file. Segments are not flushed: the journal
   * still holds what they lack, and the next open replays it.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.idle();
    this.#closed = true;
    this.#file?.close();
  }

  /** Resolves once no flush or checkpoint is running or scheduled (appends may follow). */
  async idle(): Promise<void> {
    while (this.#running || this.#scheduled) await new Promise((r) => setImmediate(r));
  }

  /** Why an append or checkpoint cannot be taken now, or null. */
  #refusal(): Error | null {
    if (this.#closed) return new Error(`host journal ${this.#dir} is closed`);
    if (this.#failure !== null) return this.#unusable();
    if (this.#file === null) return new Error(`host journal ${this.#dir} is not started`);
    return null;
  }

  /**
   * Starts the flush loop on the next macrotask unless it runs: every group that appends in
   * this turn (each a few promise hops behind the network read) joins the same flush.
   */
  #schedule(): void {
    if (this.#running || this.#scheduled) return;
    this.#scheduled = true;
    // setImmediate, not setTimeout(0): nested timers are clamped to about 4 ms.
    setImmediate(() => {
      this.#scheduled = false;
      this.#running = true;
      this.#run();
    });
  }

  async #run(): Promise<void> {
    try {
      await this.#runLoop();
    } catch (error) {
      // A bug, not a disk error (those are caught where they happen): fail rather than hang.
      this.#running = false;
      this.#fail(error, []);
    }
  }

  /**
   * Flushes and checkpoints until nothing is queued. `#running` is cleared in the same
   * synchronous run as the check that found the queues empty: an append made by a caller that
   * resumed meanwhile was queued before that check, and one made after it starts a new run.
   */
  async #runLoop(): Promise<void> {
    while (this.#pending.length > 0 || this.#checkpointWaiters.length > 0) {
      if (this.#pending.length > 0) {
        const batch = this.#pending;
        this.#pending = [];
        try {
          await this.#flush(batch);
        } catch (error) {
          this.#running = false;
          this.#fail(error, batch);
          return;
        }
        for (const item of batch) {
          try {
            item.onDurable();
            this.#written.add(item.client);
            item.resolve();
          } catch (error) {
            item.reject(error);
          }
        }
        try {
          this.#writeHeldWhenDue();
        } catch (error) {
          // A log could not write what it holds: only this journal has those appends now.
          this.#running = false;
          this.#fail(error, []);
          return;
        }
      }
      if (this.#checkpointWaiters.length > 0 || this.#fileBytes >= this.#rotateBytes) {
        const waiters = this.#checkpointWaiters;
        this.#checkpointWaiters = [];
        try {
          await this.#rotate();
        } catch (error) {
          this.#running = false;
          this.#fail(error, [], waiters);
          return;
        }
        for (const w of waiters) w.resolve();
      }
    }
    this.#running = false;
  }

  /**
   * Writes the batch as one frame (one CRC over every group's append in it: pages of one write
   * may reach the disk in any order, so a crash tears the whole frame or nothing of it) with one
   * write, and flushes the file once.
   */
  async #flush(batch: PendingAppend[]): Promise<void> {
    let bytes = RECORD_HEADER_BYTES;
    for (const item of batch) bytes += ITEM_HEADER_BYTES + item.header.length + item.records.length;
    if (this.#buffer.length < bytes) {
      let length = Math.max(4096, this.#buffer.length);
      while (length < bytes) length *= 2;
      this.#buffer = new Uint8Array(length);
    }
    const buffer = this.#buffer;
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    let position = RECORD_HEADER_BYTES;
    for (const item of batch) {
      view.setUint32(position, item.header.length + item.records.length, true);
      buffer.set(item.header, position + ITEM_HEADER_BYTES);
      buffer.set(item.records, position + ITEM_HEADER_BYTES + item.header.length);
      position += ITEM_HEADER_BYTES + item.header.length + item.records.length;
    }
    view.setUint32(0, position - RECORD_HEADER_BYTES, true);
    view.setUint32(4, crc32c(buffer, RECORD_HEADER_BYTES, position), true);
    const file = this.#file!;
    writeAllSync(file, buffer.subarray(0, position));
    this.#fileBytes += position;
    if (this.#buffer.length > FLUSH_BUFFER_RETAINED_MAX) this.#buffer = new Uint8Array(0);
    await file.syncData();
  }

  /**
   * Flushes every segment written since the last checkpoint, then replaces the journal file
   * with a new, empty one. The old file goes only once the segments hold what it held.
   */
  async #rotate(): Promise<void> {
    const flushed: [JournalClient, string][] = [];
    for (const client of this.#written) {
      client.writeHeld();
      const path = client.unflushedPath();
      if (path !== null) flushed.push([client, path]);
    }
    this.#written.clear();
    for (const [, path] of flushed) await syncFileAt(path);
    // A log whose own flush of that segment failed while ours ran (another handle can report
    // success for pages the kernel dropped) must stop the checkpoint: asked again, it throws.
    for (const [client] of flushed) client.unflushedPath();
    // Only now: a log that rolls meanwhile must still see its tail as unflushed and flush it.
    for (const [client, path] of flushed) client.markFlushed(path);
    const old = join(this.#dir, journalFileName(this.#sequence));
    await this.#startNextFile();
    await removeIfPresent(old);
    await syncDir(this.#dir);
  }

  /** Creates the next journal file (durably) and makes it the one appends go to. */
  async #startNextFile(): Promise<void> {
    const file = await createJournalFile(this.#dir, this.#sequence + 1);
    this.#file?.close();
    this.#file = file;
    this.#sequence++;
    this.#fileBytes = JOURNAL_HEADER_BYTES;
  }

  /**
   * About once a second, has every log written since the last checkpoint write the bytes it
   * holds: a busy group's segment is never more than that behind the journal. Throws the first
   * log's write error.
   */
  #writeHeldWhenDue(): void {
    const now = this.#now();
    if (now - this.#heldWrittenAtMs < HELD_WRITE_INTERVAL_MS) return;
    this.#heldWrittenAtMs = now;
    for (const client of this.#written) client.writeHeld();
  }

  #fail(error: unknown, batch: PendingAppend[], waiters: Waiter[] = []): void {
    this.#failure = error;
    this.#logger.error("the host journal failed: no group can append until a restart", {
      dir: this.#dir,
      error: error instanceof Error ? error.message : String(error),
    });
    const all = [...batch, ...this.#pending, ...waiters, ...this.#checkpointWaiters];
    this.#pending = [];
    this.#checkpointWaiters = [];
    for (const item of all) item.reject(this.#unusable());
  }

  #unusable(): Error {
    return new Error(`host journal ${this.#dir} is unusable after a write error`, {
      cause: this.#failure,
    });
  }
}

/** The sequence number recorded in `root/journal-floor`, or 0 when there is none. */
async function readJournalFloor(root: string): Promise<number> {
  const path = join(root, JOURNAL_FLOOR_FILE_NAME);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  const floor = Number(text.trim());
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(floor)) {
    throw new StorageCorruptionError(`${path} is damaged: ${JSON.stringify(text)}`, path, 0);
  }
  return floor;
}

/** The journal file name of `sequence`: 20 digits, so names sort like the numbers. */
export function journalFileName(sequence: number): string {
  return String(sequence).padStart(20, "0") + JOURNAL_FILE_EXTENSION;
}

/** The sequence number a journal file name stands for, or -1 when it is not one. */
export function parseJournalFileName(name: string): number {
  if (name.length !== 20 + JOURNAL_FILE_EXTENSION.length) return -1;
  if (!name.endsWith(JOURNAL_FILE_EXTENSION)) return -1;
  const digits = name.slice(0, 20);
  if (!isDigits(digits)) return -1;
  const sequence = Number(digits);
  return Number.isSafeInteger(sequence) ? sequence : -1;
}

/** Encodes an append record's payload up to its entries. */
function encodeAppendHeader(
  group: string,
  incarnation: string,
  firstIndex: number,
  count: number,
  recordBytes: number,
): Uint8Array {
  const name = encoder.encode(group);
  if (name.length === 0 || name.length > 255) {
    throw new RangeError(`group name ${group} is invalid`);
  }
  if (incarnation.length !== INCARNATION_BYTES) {
    throw new RangeError(`incarnation ${incarnation} is not ${INCARNATION_BYTES} hex digits`);
  }
  if (recordBytes + 64 + name.length > RECORD_PAYLOAD_BYTES_MAX) {
    throw new RangeError(`an append of ${recordBytes} bytes is too large for the journal`);
  }
  const header = new Uint8Array(2 + name.length + INCARNATION_BYTES + 12);
  const view = new DataView(header.buffer);
  header[0] = KIND_APPEND;
  header[1] = name.length;
  header.set(name, 2);
  let position = 2 + name.length;
  header.set(encoder.encode(incarnation), position);
  position += INCARNATION_BYTES;
  setU64(view, position, firstIndex);
  view.setUint32(position + 8, count, true);
  return header;
}

/** Creates journal file `sequence` with its header, durably (contents and name). */
async function createJournalFile(dir: string, sequence: number): Promise<Deno.FsFile> {
  const path = join(dir, journalFileName(sequence));
  const file = await Deno.open(path, { createNew: true, append: true });
  try {
    const header = new Uint8Array(JOURNAL_HEADER_BYTES);
    const view = new DataView(header.buffer);
    header.set(JOURNAL_MAGIC, 0);
    view.setUint16(4, JOURNAL_VERSION, true);
    setU64(view, 8, sequence);
    view.setUint32(16, crc32c(header, 0, 16), true);
    writeAllSync(file, header);
    await file.syncData();
    await syncDir(dir);
  } catch (error) {
    file.close();
    throw error;
  }
  return file;
}

async function removeIfPresent(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * Checks one journal file read whole and returns its records. Damage that a crash during the
 * newest file's last write explains (the file ends inside a record, or a sector of it is all
 * zero, with no valid record after it) is cut off; anything else throws.
 */
async function readJournalFile(
  bytes: Uint8Array,
  path: string,
  sequence: number,
  isLast: boolean,
  headerMayTear: boolean,
  logger: Logger,
): Promise<JournalRecord[]> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string, offset: number) =>
    new StorageCorruptionError(
      `journal file ${path} is corrupt at byte ${offset}: ${why}`,
      path,
      offset,
    );
  const headerProblem = checkJournalHeader(bytes, view, sequence);
  if (headerProblem !== null) {
    if (headerProblem.startsWith("format version")) {
      throw new UnsupportedFormatError(`journal file ${path} has ${headerProblem}`, path);
    }
    // A crash right after the file was created: nothing in it was ever flushed.
    if (isLast && headerMayTear && !hasValidRecordFrom(bytes, view, 0)) {
      logger.warn("removing the newest journal file: its header is torn", { file: path });
      await Deno.remove(path);
      await syncDir(dirname(path));
      return [];
    }
    throw corrupt(headerProblem, 0);
  }
  const records: JournalRecord[] = [];
  let offset = JOURNAL_HEADER_BYTES;
  while (offset < bytes.length) {
    const end = checkJournalRecord(bytes, view, offset);
    if (typeof end === "string") {
      if (!isLast) throw corrupt(end, offset);
      if (!looksTorn(bytes, view, offset)) {
        throw corrupt(
          `${end}; the record is whole and has no zeroed sector, so this is damage`,
          offset,
        );
      }
      if (hasValidRecordFrom(bytes, view, offset + 1)) {
        throw corrupt(`${end}, and valid records follow it`, offset);
      }
      logger.warn("cutting a torn record off the end of the journal", {
        file: path,
        offsetBytes: offset,
        droppedBytes: bytes.length - offset,
        reason: end,
      });
      await truncateDurably(path, offset);
      break;
    }
    let item = offset + RECORD_HEADER_BYTES;
    while (item < end) {
      const itemBytes = end - item >= ITEM_HEADER_BYTES ? view.getUint32(item, true) : -1;
      const start = item + ITEM_HEADER_BYTES;
      if (itemBytes <= 0 || start + itemBytes > end) {
        throw corrupt(
          `frame item at byte ${item} has a length that does not fit the frame`,
          offset,
        );
      }
      const record = decodeAppend(bytes, view, start, start + itemBytes, path);
      if (typeof record === "string") throw corrupt(record, offset);
      records.push(record);
      item = start + itemBytes;
    }
    offset = end;
  }
  return records;
}

function checkJournalHeader(bytes: Uint8Array, view: DataView, sequence: number): string | null {
  if (bytes.length < JOURNAL_HEADER_BYTES) {
    return `incomplete header (${bytes.length} of ${JOURNAL_HEADER_BYTES} bytes)`;
  }
  for (let i = 0; i < JOURNAL_MAGIC.length; i++) {
    if (bytes[i] !== JOURNAL_MAGIC[i]) return "bad magic";
  }
  if (view.getUint32(16, true) !== crc32c(bytes, 0, 16)) return "header checksum mismatch";
  const version = view.getUint16(4, true);
  if (version !== JOURNAL_VERSION) {
    return `format version ${version}; this build reads version ${JOURNAL_VERSION}`;
  }
  const inHeader = getU64(view, 8);
  if (inHeader !== sequence) return `the header says sequence ${inHeader}, the name ${sequence}`;
  return null;
}

/** The offset past the record at `offset` when its length and CRC are good, else why not. */
function checkJournalRecord(bytes: Uint8Array, view: DataView, offset: number): number | string {
  if (bytes.length - offset < RECORD_HEADER_BYTES) {
    return `incomplete record header (${bytes.length - offset} of ${RECORD_HEADER_BYTES} bytes)`;
  }
  const payloadBytes = view.getUint32(offset, true);
  if (payloadBytes === 0 || payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
    return `record length ${payloadBytes} is out of range`;
  }
  const payload = offset + RECORD_HEADER_BYTES;
  if (payload + payloadBytes > bytes.length) {
    return `record of ${payloadBytes} bytes runs past the end of the file`;
  }
  if (view.getUint32(offset + 4, true) !== crc32c(bytes, payload, payload + payloadBytes)) {
    return "record checksum mismatch";
  }
  return payload + payloadBytes;
}

/** True when the bad record at `offset` looks like a write a crash cut short. */
function looksTorn(bytes: Uint8Array, view: DataView, offset: number): boolean {
  if (bytes.length - offset < RECORD_HEADER_BYTES) return true;
  const payloadBytes = view.getUint32(offset, true);
  const end = offset + RECORD_HEADER_BYTES + payloadBytes;
  const lengthOk = payloadBytes > 0 && payloadBytes <= RECORD_PAYLOAD_BYTES_MAX;
  if (lengthOk && end > bytes.length) return true;
  return hasZeroedSectorPart(bytes, offset, lengthOk ? end : offset + RECORD_HEADER_BYTES);
}

/** True when a record with a good length and CRC starts at or after `from`. */
function hasValidRecordFrom(bytes: Uint8Array, view: DataView, from: number): boolean {
  for (
    let offset = from;
    offset + RECORD_HEADER_BYTES + ITEM_HEADER_BYTES < bytes.length;
    offset++
  ) {
    // A frame starts with its first item: a length that fits the frame, then an append.
    const frameBytes = view.getUint32(offset, true);
    const itemBytes = view.getUint32(offset + RECORD_HEADER_BYTES, true);
    if (itemBytes === 0 || itemBytes + ITEM_HEADER_BYTES > frameBytes) continue;
    if (bytes[offset + RECORD_HEADER_BYTES + ITEM_HEADER_BYTES] !== KIND_APPEND) continue;
    if (typeof checkJournalRecord(bytes, view, offset) === "number") return true;
  }
  return false;
}

/** Decodes an append payload at `[start, end)` whose CRC was checked, or says what is wrong. */
function decodeAppend(
  bytes: Uint8Array,
  view: DataView,
  start: number,
  end: number,
  path: string,
): JournalRecord | string {
  if (bytes[start] !== KIND_APPEND) return `record has unknown kind ${bytes[start]}`;
  const nameBytes = bytes[start + 1];
  const fixed = 2 + nameBytes + INCARNATION_BYTES + 12;
  if (nameBytes === 0 || end - start < fixed) return "record is too short for its fields";
  let group: string;
  let incarnation: string;
  try {
    group = decoder.decode(bytes.subarray(start + 2, start + 2 + nameBytes));
    const at = start + 2 + nameBytes;
    incarnation = decoder.decode(bytes.subarray(at, at + INCARNATION_BYTES));
  } catch {
    return "record has a group name or incarnation that is not UTF-8";
  }
  const at = start + 2 + nameBytes + INCARNATION_BYTES;
  const firstIndex = getU64(view, at);
  const count = view.getUint32(at + 8, true);
  if (!Number.isSafeInteger(firstIndex) || firstIndex < 1 || count < 1) {
    return `record has first index ${firstIndex} and count ${count}`;
  }
  return {
    group,
    incarnation,
    firstIndex,
    count,
    records: bytes.subarray(start + fixed, end),
    path,
  };
}
