/**
 * The Raft log on disk: an append-only sequence of segment files in `DIR/log/`.
 *
 * Appending is the hot path of the whole system: every client write waits for it. A batch of
 * entries (group commit) becomes one buffer, one `write` and one `fdatasync` per file it
 * touches, whatever the number of entries, so the cost of a batch is one disk flush.
 *
 * Segments bound the cost of compaction (delete whole files, never rewrite) and of recovery
 * (read one file at a time). A segment is named by its first index, zero-padded to 20 digits so
 * names sort like the numbers (`00000000000000000001.log`), and a new one is started when the
 * next record would make the current one larger than `segmentBytesMax` (a segment always takes
 * at least one record, so a single oversized record gets a segment of its own).
 *
 * Segment layout (all integers little-endian):
 *
 * | offset | bytes | field                                   |
 * | ------ | ----- | --------------------------------------- |
 * | 0      | 4     | magic "CLOG"                            |
 * | 4      | 2     | format version, 1                       |
 * | 6      | 2     | reserved, 0                             |
 * | 8      | 8     | index of the segment's first entry (u64) |
 * | 16     | 4     | CRC-32C of bytes 0..16                  |
 * | 20     | ...   | records, back to back                   |
 *
 * Record layout:
 *
 * | offset | bytes | field                                   |
 * | ------ | ----- | --------------------------------------- |
 * | 0      | 4     | payload length n (u32), at least 17     |
 * | 4      | 4     | CRC-32C of the n payload bytes          |
 * | 8      | 1     | payload: entry type                     |
 * | 9      | 8     | payload: term (u64)                     |
 * | 17     | 8     | payload: index (u64)                    |
 * | 25     | n-17  | payload: data                           |
 *
 * Recovery rules are in {@linkcode LogStore.open}; docs/STORAGE.md has the reasoning.
 *
 * @module
 */

import { basename, join } from "node:path";
import { type Entry, EntryType } from "../raft/types.ts";
import { type Logger, silentLogger } from "../logging/logger.ts";
import { getU64, hex32, isDigits, readExact, setU64, writeAll, writeAllSync } from "./_binary.ts";
import { Mutex } from "./_mutex.ts";
import { syncDir, syncFileAt, truncateDurably } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import { StorageCorruptionError, UnsupportedFormatError } from "./errors.ts";
import type { JournalRecord, LogJournal } from "./journal.ts";

/** Magic bytes "CLOG" at the start of every segment file. */
export const SEGMENT_MAGIC: Uint8Array = new Uint8Array([0x43, 0x4c, 0x4f, 0x47]);

/** The segment format version this build writes and reads. */
export const SEGMENT_VERSION = 1;

/** Size of the segment header. */
export const SEGMENT_HEADER_BYTES = 20;

/** Size of a record header (payload length and payload CRC). */
export const RECORD_HEADER_BYTES = 8;

/** Size of a payload without its data: type, term, index. */
export const RECORD_PAYLOAD_FIXED_BYTES = 17;

/** Largest entry data accepted, in bytes; recovery treats a longer length field as damage. */
export const ENTRY_DATA_BYTES_MAX = 64 * 1024 * 1024;

/** Default segment size at which a new segment is started. */
export const SEGMENT_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

/** Largest `segmentBytesMax` accepted; keeps record offsets within 32 bits. */
export const SEGMENT_BYTES_MAX_LIMIT = 1024 * 1024 * 1024;

/** Extension of segment files. */
export const SEGMENT_FILE_EXTENSION = ".log";

const RECORD_BYTES_MIN = RECORD_HEADER_BYTES + RECORD_PAYLOAD_FIXED_BYTES;
const RECORD_PAYLOAD_BYTES_MAX = RECORD_PAYLOAD_FIXED_BYTES + ENTRY_DATA_BYTES_MAX;
const SEGMENT_NAME_DIGITS = 20;

/** The append buffer is kept between batches up to this size; bigger batches get their own. */
const SCRATCH_BYTES_RETAINED_MAX = 1024 * 1024;
/**
 * The append buffer's first size, allocated at the first append and doubled as batches need:
 * an idle group (a host may serve a thousand) keeps a few KiB, a busy one grows to its batches.
 */
const SCRATCH_BYTES_INITIAL = 4 * 1024;
const PENDING_OFFSETS_INITIAL = 16;
const EMPTY_BYTES = new Uint8Array(0);

/**
 * Through the host journal, a segment's bytes are held in memory up to this many and written
 * to the file in one `write` (see `LogStore.writeHeld`): the journal already holds them durably,
 * so one system call per batch per group would buy nothing. Also the most an idle group keeps.
 */
export const HELD_BYTES_MAX = 16 * 1024;

/** Returns the file name of the segment whose first entry is `firstIndex`. */
export function segmentFileName(firstIndex: number): string {
  return String(firstIndex).padStart(SEGMENT_NAME_DIGITS, "0") + SEGMENT_FILE_EXTENSION;
}

/** Parses a segment file name; returns its first index, or -1 for any other name. */
function parseSegmentFileName(name: string): number {
  if (!name.endsWith(SEGMENT_FILE_EXTENSION)) return -1;
  const digits = name.slice(0, -SEGMENT_FILE_EXTENSION.length);
  if (digits.length !== SEGMENT_NAME_DIGITS || !isDigits(digits)) return -1;
  const index = Number(digits);
  return Number.isSafeInteger(index) && index >= 1 ? index : -1;
}

/** Byte offsets of a segment's records: a growable Uint32Array, no boxed numbers per entry. */
class Offsets {
  #items = new Uint32Array(64);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  get(i: number): number {
    if (i < 0 || i >= this.#length) throw new RangeError(`record ${i} of ${this.#length}`);
    return this.#items[i];
  }

  push(offset: number): void {
    if (this.#length === this.#items.length) {
      const grown = new Uint32Array(this.#items.length * 2);
      grown.set(this.#items);
      this.#items = grown;
    }
    this.#items[this.#length++] = offset;
  }

  truncate(length: number): void {
    if (length < 0 || length > this.#length) throw new RangeError(`truncate to ${length}`);
    this.#length = length;
  }
}

/** In-memory state of one segment file. */
interface Segment {
  firstIndex: number;
  path: string;
  offsets: Offsets;
  /** Bytes of valid content: the header plus every record; the file is exactly this long. */
  sizeBytes: number;
}

/** A part of an append batch that goes to one segment file. */
interface Chunk {
  segment: Segment;
  created: boolean;
  bytesStart: number;
  bytesEnd: number;
  offsetsStart: number;
  offsetsEnd: number;
}

/** Describes one segment, for inspection and tests. */
export interface SegmentInfo {
  /** File name. */
  name: string;
  /** Index of its first entry (or of the next entry, when empty). */
  firstIndex: number;
  /** Index of its last entry; `firstIndex - 1` when empty. */
  lastIndex: number;
  /** File size. */
  sizeBytes: number;
}

/** Options for {@linkcode LogStore.open}. */
export interface LogStoreOptions {
  /** A new segment starts when the next record would grow the current one past this. 16 MiB. */
  segmentBytesMax?: number;
  /** Where recovery warnings go. Default: dropped. */
  logger?: Logger;
  /**
   * Called, and awaited, once an append has made the first records of a new segment durable,
   * with that segment's first index (the newest one when a batch starts several). Runs inside
   * the log's write queue, before the append resolves. {@linkcode DataDir} records it as the
   * log floor.
   */
  onSegmentDurable?: (firstIndex: number) => Promise<void>;
  /**
   * Called, and awaited, before the log durably drops entries above `keptIndex`: before a
   * suffix is cut (`keptIndex` is the last entry kept) and before a reset (`keptIndex` is the
   * index the caller's snapshot covers, `nextIndex - 1`). Runs inside the log's write queue.
   */
  beforeCut?: (keptIndex: number) => Promise<void>;
  /**
   * True for an index that a host journal record read at this start holds (see `journal.ts`).
   * A bad record at such an index in the last segment is cut off with everything after it,
   * whatever it looks like: that tail may never have been flushed here, and the journal's replay
   * ({@linkcode LogStore.replay}) writes it again. Default: none (every rule of
   * {@linkcode LogStore.open} applies).
   */
  journalHolds?: (index: number) => boolean;
}

/** How a log appends through the host journal; see {@linkcode LogStore.attachJournal}. */
interface JournalBinding {
  journal: LogJournal;
  group: string;
  incarnation: string;
}

/** A segmented, checksummed, append-only Raft log; see the module doc. */
export class LogStore {
  #dir: string;
  #segmentBytesMax: number;
  #logger: Logger;
  #segments: Segment[];
  /** The next index when there is no segment at all. */
  #emptyNextIndex: number;
  /** Term of the last entry, or 0 when unknown (empty log); appends may not go below it. */
  #lastTerm: number;
  /** Write handle (append mode) of the last segment, opened on first use. */
  #activeFile: Deno.FsFile | null = null;
  #mutex = new Mutex();
  /** The append buffer: none until the first append (see SCRATCH_BYTES_INITIAL). */
  #scratch: Uint8Array = EMPTY_BYTES;
  #pendingOffsets = new Uint32Array(PENDING_OFFSETS_INITIAL);
  /** Set by the first I/O error of a write: memory and disk may then disagree. */
  #failure: unknown = null;
  #closed = false;
  #onSegmentDurable: (firstIndex: number) => Promise<void>;
  #beforeCut: (keptIndex: number) => Promise<void>;
  /** Set while appends go through the host journal. */
  #journal: JournalBinding | null = null;
  /** Set while appends write without flushing (a replay); see {@linkcode LogStore.replay}. */
  #deferFlush = false;
  /** The segment holding bytes written but not flushed (journal or replay), or null. */
  #unflushedPath: string | null = null;
  /**
   * Bytes appended through the journal, durable there, not yet written to `#heldFile` (the
   * active segment): the first `#heldBytes` of `#held`. Written before anything reads, cuts,
   * rolls, flushes or closes that file (see {@linkcode LogStore.writeHeld}).
   */
  #held: Uint8Array = EMPTY_BYTES;
  #heldBytes = 0;
  #heldFile: Deno.FsFile | null = null;

  private constructor(
    dir: string,
    segmentBytesMax: number,
    logger: Logger,
    segments: Segment[],
    lastTerm: number,
    options: LogStoreOptions,
  ) {
    this.#dir = dir;
    this.#segmentBytesMax = segmentBytesMax;
    this.#onSegmentDurable = options.onSegmentDurable ?? (() => Promise.resolve());
    this.#beforeCut = options.beforeCut ?? (() => Promise.resolve());
    this.#logger = logger;
    this.#segments = segments;
    this.#emptyNextIndex = 1;
    this.#lastTerm = lastTerm;
  }

  /**
   * Opens the log in the existing directory `dir` and recovers it.
   *
   * Every segment is read in order; every record's CRC is checked and indexes must run on
   * without a gap, within and across segments. Damage that a crash during an append explains
   * is repaired; anything else throws {@linkcode StorageCorruptionError} naming the file and
   * byte offset, so no acknowledged entry is ever dropped silently:
   *
   * - a record at the tail of the last segment that a crash cut short (the file ends inside it,
   *   or a sector of it is all zero) and with no valid record after it is cut off (the file is
   *   truncated before it, and a warning names file and offset);
   * - a last segment whose header is torn and that holds no valid record is removed;
   * - a bad record anywhere else, one followed by a valid record, or a last record that is whole
   *   but fails its checksum (bit rot, not a crash) is an error.
   */
  static async open(dir: string, options: LogStoreOptions = {}): Promise<LogStore> {
    const segmentBytesMax = options.segmentBytesMax ?? SEGMENT_BYTES_MAX_DEFAULT;
    if (
      !Number.isSafeInteger(segmentBytesMax) || segmentBytesMax < SEGMENT_HEADER_BYTES ||
      segmentBytesMax > SEGMENT_BYTES_MAX_LIMIT
    ) {
      const range = `${SEGMENT_HEADER_BYTES}..${SEGMENT_BYTES_MAX_LIMIT}`;
      throw new RangeError(`segmentBytesMax ${segmentBytesMax} is outside ${range}`);
    }
    const logger = options.logger ?? silentLogger;
    const names: { name: string; firstIndex: number }[] = [];
    for await (const item of Deno.readDir(dir)) {
      const firstIndex = item.isFile ? parseSegmentFileName(item.name) : -1;
      if (firstIndex >= 0) names.push({ name: item.name, firstIndex });
      else logger.warn("ignoring an unknown file in the log dir", { file: join(dir, item.name) });
    }
    names.sort((a, b) => a.firstIndex - b.firstIndex);

    const segments: Segment[] = [];
    let lastTerm = 0;
    for (let k = 0; k < names.length; k++) {
      const path = join(dir, names[k].name);
      const isLast = k === names.length - 1;
      const bytes = await Deno.readFile(path);
      const recovered = await recoverSegment(
        bytes,
        path,
        names[k].firstIndex,
        isLast,
        logger,
        options.journalHolds ?? (() => false),
      );
      if (recovered === null) {
        await Deno.remove(path);
        await syncDir(dir);
        continue;
      }
      const previous = segments.at(-1);
      if (previous !== undefined) {
        if (previous.offsets.length === 0) {
          throw new StorageCorruptionError(
            `log segment ${previous.path} is empty but is not the last segment`,
            previous.path,
            SEGMENT_HEADER_BYTES,
          );
        }
        const expected = previous.firstIndex + previous.offsets.length;
        if (recovered.segment.firstIndex !== expected) {
          throw new StorageCorruptionError(
            `log segment ${path} starts at index ${recovered.segment.firstIndex} but the ` +
              `previous segment ${previous.path} ends at index ${expected - 1}`,
            path,
            8,
          );
        }
        if (recovered.segment.offsets.length > 0 && recovered.firstTerm < lastTerm) {
          throw new StorageCorruptionError(
            `log segment ${path} starts with term ${recovered.firstTerm}, lower than the ` +
              `term ${lastTerm} before it`,
            path,
            SEGMENT_HEADER_BYTES,
          );
        }
      }
      segments.push(recovered.segment);
      if (recovered.segment.offsets.length > 0) lastTerm = recovered.lastTerm;
    }
    // What recovery read may be in the page cache only (a process that died between a write and
    // its flush): entries presented as held must be durable, or this node
    // could acknowledge them to a leader and lose them at a power cut. Only the newest segment
    // can hold bytes not flushed, and only its name a creation not flushed.
    const newest = segments.at(-1);
    if (newest !== undefined) {
      await syncFileAt(newest.path);
      await syncDir(dir);
    }
    return new LogStore(dir, segmentBytesMax, logger, segments, lastTerm, options);
  }

  /** The log directory. */
  get dir(): string {
    return this.#dir;
  }

  /** Index of the first entry held; `lastIndex() + 1` when the log is empty. */
  firstIndex(): number {
    const first = this.#segments[0];
    return first === undefined ? this.#emptyNextIndex : first.firstIndex;
  }

  /** Index of the last entry held; `firstIndex() - 1` when the log is empty. */
  lastIndex(): number {
    const last = this.#segments.at(-1);
    return last === undefined
      ? this.#emptyNextIndex - 1
      : last.firstIndex + last.offsets.length - 1;
  }

  /** Term of the last entry, or 0 for an empty log. */
  lastTerm(): number {
    return this.#lastTerm;
  }

  /** The segments on disk, oldest first. */
  segmentInfo(): SegmentInfo[] {
    return this.#segments.map((segment) => ({
      name: basename(segment.path),
      firstIndex: segment.firstIndex,
      lastIndex: segment.firstIndex + segment.offsets.length - 1,
      sizeBytes: segment.sizeBytes,
    }));
  }

  /**
   * Durably appends `entries`, which must have consecutive indexes starting anywhere in
   * `firstIndex()..lastIndex() + 1`. Entries already held from `entries[0].index` on are
   * replaced: that suffix is cut off the log first (it is a conflicting, uncommitted suffix
   * from an old leader). Resolves once every entry survives a crash.
   *
   * Cost: one `write` and one `fdatasync` per segment file touched (usually one), plus a
   * directory fsync when a segment is created; replacing a suffix adds its own flush. The
   * write is synchronous (a copy into the page cache, on the calling thread); only the flush
   * waits on a blocking thread.
   */
  append(entries: readonly Entry[]): Promise<void> {
    return this.#mutex.run(() => this.#appendLocked(entries));
  }

  /**
   * `append` once the mutex is held. The usual case, entries right after the last one, takes
   * no async function of its own: it returns the write's promise (through the journal, the
   * journal's), so a batch costs fewer promises and microtask hops. Anything else (a suffix to
   * replace, a term to read from disk) takes {@linkcode LogStore.#appendSlow}.
   */
  #appendLocked(entries: readonly Entry[]): Promise<void> {
    this.#checkUsable();
    if (entries.length === 0) return Promise.resolve();
    this.#checkBatch(entries);
    const first = entries[0].index;
    if (first - 1 !== this.lastIndex()) return this.#appendSlow(entries);
    if (entries[0].term < this.#lastTerm) {
      throw new RangeError(
        `entry ${first} has term ${entries[0].term}, lower than the term ${this.#lastTerm} ` +
          `of the entry before it`,
      );
    }
    return this.#guard(() => this.#writeBatch(entries));
  }

  #appendSlow(entries: readonly Entry[]): Promise<void> {
    return (async () => {
      const first = entries[0].index;
      // Checked before anything changes on disk, so a refused batch leaves the log as it was.
      let previousTerm = 0;
      if (first - 1 === this.lastIndex()) previousTerm = this.#lastTerm;
      else if (first - 1 >= this.firstIndex()) previousTerm = await this.#termAtUnlocked(first - 1);
      if (entries[0].term < previousTerm) {
        throw new RangeError(
          `entry ${first} has term ${entries[0].term}, lower than the term ${previousTerm} ` +
            `of the entry before it`,
        );
      }
      await this.#guard(async () => {
        if (first <= this.lastIndex()) {
          // Replaying an older journal record after a crash must not bring the cut entries back.
          await this.#journal?.journal.checkpoint();
          await this.#truncateFrom(first, previousTerm);
        }
        await this.#writeBatch(entries);
      });
    })();
  }

  /**
   * Deletes whole segments whose entries are all at or below `index` (oldest first). The last
   * segment is always kept, so the log never forgets where it ends. `firstIndex()` may stay at
   * or below `index` when `index` falls inside a segment.
   */
  compactTo(index: number): Promise<void> {
    return this.#mutex.run(async () => {
      this.#checkUsable();
      if (!Number.isSafeInteger(index)) {
        throw new RangeError(`index ${index} is not a safe integer`);
      }
      await this.#guard(async () => {
        while (this.#segments.length > 1) {
          const oldest = this.#segments[0];
          if (oldest.firstIndex + oldest.offsets.length - 1 > index) break;
          await Deno.remove(oldest.path);
          // One directory flush per file: deleting oldest first keeps the log contiguous only if
          // the deletions reach the disk in that order.
          await syncDir(this.#dir);
          this.#segments.shift();
        }
      });
    });
  }

  /**
   * Durably discards the whole log; the next append must start at `nextIndex`. Used when a
   * snapshot from the leader replaces the log. Segments are deleted newest first, each
   * deletion flushed, so a crash midway leaves a prefix of the old log, never one with a hole.
   */
  reset(nextIndex: number): Promise<void> {
    if (!Number.isSafeInteger(nextIndex) || nextIndex < 1) {
      return Promise.reject(
        new RangeError(`next index ${nextIndex} is not a positive safe integer`),
      );
    }
    return this.#mutex.run(async () => {
      this.#checkUsable();
      await this.#guard(async () => {
        // Replaying an older journal record after a crash must not bring the old log back.
        await this.#journal?.journal.checkpoint();
        await this.#beforeCut(nextIndex - 1);
        await this.#deleteSegmentsAfter(-1);
        this.#unflushedPath = null;
        this.#emptyNextIndex = nextIndex;
        this.#lastTerm = 0;
        // An empty segment records the new start on disk, so the log alone knows where it
        // resumes after a restart.
        const segment = newSegment(this.#dir, nextIndex);
        const file = await Deno.open(segment.path, { createNew: true, append: true, read: true });
        this.#activeFile = file;
        const header = new Uint8Array(SEGMENT_HEADER_BYTES);
        encodeSegmentHeader(header, 0, nextIndex);
        await writeAll(file, header);
        await file.syncData();
        await syncDir(this.#dir);
        // The file holds its header: record offsets in it start after that.
        segment.sizeBytes = SEGMENT_HEADER_BYTES;
        this.#segments.push(segment);
      });
    });
  }

  /**
   * Reads entries `lo..hi-1` (half-open, like `Array.slice`), checking every record's CRC again
   * on the way in. Requires `firstIndex() <= lo <= hi <= lastIndex() + 1`. The entries' `data`
   * are views into one buffer read for this call.
   */
  entries(lo: number, hi: number): Promise<Entry[]> {
    return this.#mutex.run(async () => {
      this.#checkUsable();
      if (!(Number.isSafeInteger(lo) && Number.isSafeInteger(hi) && lo <= hi)) {
        throw new RangeError(`entry range [${lo}, ${hi}) is invalid`);
      }
      const first = this.firstIndex();
      const end = this.lastIndex() + 1;
      if (lo < first || hi > end) {
        throw new RangeError(`entry range [${lo}, ${hi}) is outside the log [${first}, ${end})`);
      }
      this.writeHeld();
      const result: Entry[] = [];
      let index = lo;
      while (index < hi) {
        const k = this.#segmentIndexOf(index);
        const segment = this.#segments[k];
        const segmentEnd = segment.firstIndex + segment.offsets.length;
        const end = Math.min(hi, segmentEnd);
        const start = segment.offsets.get(index - segment.firstIndex);
        const stop = end === segmentEnd
          ? segment.sizeBytes
          : segment.offsets.get(end - segment.firstIndex);
        const bytes = await readRange(segment.path, start, stop - start);
        decodeRecords(bytes, segment.path, start, index, end - index, result);
        index = end;
      }
      return result;
    });
  }

  /** Term of the entry at `index`, which must be held (`firstIndex()..lastIndex()`). */
  termAt(index: number): Promise<number> {
    return this.#mutex.run(() => {
      this.#checkUsable();
      return this.#termAtUnlocked(index);
    });
  }

  /**
   * Closes the open segment file. Appends were already durable; a tail written through the host
   * journal is flushed first, since the journal forgets this log and may delete its records.
   */
  close(): Promise<void> {
    return this.#mutex.run(async () => {
      if (this.#closed) return;
      this.#closed = true;
      try {
        if (this.#failure === null) await this.flushUnflushed();
      } catch (error) {
        this.#failure ??= error;
        throw error;
      } finally {
        // A log whose segment may lack what the journal holds for it (a failure before its
        // bytes were written and flushed) stays known to the journal: its next checkpoint then
        // fails rather than delete the only durable copy.
        if (this.#failure === null) this.#journal?.journal.forget(this);
        this.#activeFile?.close();
        this.#activeFile = null;
      }
    });
  }

  /**
   * From now on, appends go through `journal` (see `journal.ts`) as `group`'s log, the data dir
   * being `incarnation`: one flush per turn for all of a host's groups. A batch that starts a
   * new segment still flushes here, fully.
   */
  attachJournal(journal: LogJournal, group: string, incarnation: string): void {
    this.#journal = { journal, group, incarnation };
  }

  /**
   * See `JournalClient.unflushedPath` (journal.ts). Throws for a failed log with bytes not
   * flushed: a flush after a failed write or flush could report success for lost pages.
   */
  unflushedPath(): string | null {
    if (this.#failure !== null && (this.#unflushedPath !== null || this.#heldBytes > 0)) {
      throw this.#owing();
    }
    return this.#unflushedPath;
  }

  /** See `JournalClient.markFlushed` (journal.ts). */
  markFlushed(path: string): void {
    if (this.#unflushedPath === path) this.#unflushedPath = null;
  }

  /**
   * Writes the segment bytes held in memory (appended through the journal, durable there) to
   * the active segment, without flushing; see `JournalClient.writeHeld` (journal.ts). A failed
   * write makes the log unusable, as any write error does.
   */
  writeHeld(): void {
    const length = this.#heldBytes;
    if (length === 0) return;
    // A log that failed keeps what it owes, and says so to every caller (a journal checkpoint
    // then fails, keeping the journal file, the only durable copy), never writes it twice.
    if (this.#failure !== null) throw this.#owing();
    try {
      writeAllSync(this.#heldFile!, this.#held.subarray(0, length));
    } catch (error) {
      this.#failure = error;
      throw error;
    }
    this.#heldBytes = 0;
    this.#heldFile = null;
  }

  /** The error of a failed log that still owes its segment bytes the journal holds. */
  #owing(): Error {
    return new Error(
      `log store ${this.#dir} failed before its segment held and flushed what only the host ` +
        `journal holds for it: the journal must keep it for the next start`,
      { cause: this.#failure },
    );
  }

  /** Keeps `bytes`, bound for `file` (the active segment), for {@linkcode LogStore.writeHeld}. */
  #hold(file: Deno.FsFile, bytes: Uint8Array): void {
    if (this.#heldFile !== null && this.#heldFile !== file) this.writeHeld();
    if (this.#heldBytes + bytes.length > HELD_BYTES_MAX) {
      this.writeHeld();
      if (bytes.length >= HELD_BYTES_MAX) {
        writeAllSync(file, bytes);
        return;
      }
    }
    if (this.#held.length < this.#heldBytes + bytes.length) {
      let length = Math.max(this.#held.length, 1024);
      while (length < this.#heldBytes + bytes.length) length *= 2;
      const grown = new Uint8Array(Math.min(length, HELD_BYTES_MAX));
      grown.set(this.#held.subarray(0, this.#heldBytes));
      this.#held = grown;
    }
    this.#held.set(bytes, this.#heldBytes);
    this.#heldBytes += bytes.length;
    this.#heldFile = file;
  }

  /**
   * Flushes the bytes written through the journal or a replay and not flushed yet, if any. The
   * log counts them as unflushed until the flush returns, so a journal checkpoint running
   * meanwhile flushes them too rather than skip them.
   */
  async flushUnflushed(): Promise<void> {
    this.writeHeld();
    const path = this.#unflushedPath;
    if (path === null) return;
    try {
      await syncFileAt(path);
    } catch (error) {
      // Never retried (a later flush may report pages the kernel dropped as clean).
      this.#failure ??= error;
      throw error;
    }
    this.markFlushed(path);
  }

  /**
   * Runs a checkpoint of the host journal this log appends through, if any: afterwards no
   * journal record written before the call is replayed after a crash (see `journal.ts`).
   */
  async checkpointJournal(): Promise<void> {
    await this.#journal?.journal.checkpoint();
  }

  /**
   * Applies an append record the host journal read at a start (oldest first): writes the
   * entries this log lacks, after cutting a suffix that differs from them (a later record then
   * writes what came after the cut, so the newest state wins). Entries below the log's first
   * index are skipped: a snapshot covers them. The writes are not flushed: call
   * {@linkcode LogStore.flushUnflushed} after the last record. Returns how many entries were
   * written. A record that starts past the end of the log (entries in between are missing)
   * throws {@linkcode StorageCorruptionError}.
   */
  async replay(record: JournalRecord): Promise<number> {
    const entries: Entry[] = [];
    decodeRecords(record.records, record.path, 0, record.firstIndex, record.count, entries);
    const first = this.firstIndex();
    const last = this.lastIndex();
    let from = 0;
    while (from < entries.length && entries[from].index < first) from++;
    if (from === entries.length) return 0;
    // Entries the log holds already may be in the page cache only (written through the journal
    // by a process that stopped before a checkpoint): flushUnflushed must flush them too, since
    // the journal files go once the replay is done. Only the newest segment can hold such bytes.
    this.#unflushedPath ??= this.#segments.at(-1)?.path ?? null;
    const common = Math.min(entries[entries.length - 1].index, last);
    if (common >= entries[from].index) {
      // Logs agree on every entry up to an index where they agree on the term (Raft's Log
      // Matching), so one read usually settles the whole record.
      const k = common - entries[0].index;
      if (await this.termAt(common) === entries[k].term) {
        from = k + 1;
      } else {
        while (
          from < entries.length && entries[from].index <= last &&
          await this.termAt(entries[from].index) === entries[from].term
        ) from++;
      }
    }
    if (from === entries.length) return 0;
    if (entries[from].index > last + 1) {
      throw new StorageCorruptionError(
        `journal file ${record.path} holds entries ${entries[from].index}.. of group ` +
          `${record.group}, but the log in ${this.#dir} ends at index ${last}: the entries ` +
          `between are missing`,
        record.path,
        0,
      );
    }
    this.#deferFlush = true;
    try {
      await this.append(entries.slice(from));
    } finally {
      this.#deferFlush = false;
    }
    return entries.length - from;
  }

  #checkUsable(): void {
    if (this.#closed) throw new Error(`log store ${this.#dir} is closed`);
    if (this.#failure !== null) {
      throw new Error(`log store ${this.#dir} is unusable after an earlier write error`, {
        cause: this.#failure,
      });
    }
  }

  /**
   * Runs the I/O of a write, after its arguments were checked. Any error marks the store
   * unusable: disk and memory may now differ, and a failed fdatasync may have dropped pages
   * the kernel will not write again, so retrying could acknowledge lost entries.
   */
  #guard(fn: () => Promise<void>): Promise<void> {
    const fail = (error: unknown) => {
      this.#failure = error;
      return Promise.reject(error);
    };
    try {
      return fn().catch(fail);
    } catch (error) {
      return fail(error);
    }
  }

  #checkBatch(entries: readonly Entry[]): void {
    const first = entries[0].index;
    if (!Number.isSafeInteger(first) || first < 1) {
      throw new RangeError(`entry index ${first} is not a positive safe integer`);
    }
    if (first < this.firstIndex()) {
      throw new RangeError(
        `cannot append at index ${first}: the log starts at index ${this.firstIndex()}`,
      );
    }
    if (first > this.lastIndex() + 1) {
      throw new RangeError(
        `cannot append at index ${first}: the log ends at index ${this.lastIndex()}, ` +
          `that would leave a gap`,
      );
    }
    let previousTerm = 0;
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      if (entry.index !== first + i) {
        throw new RangeError(
          `entries are not consecutive: entry ${i} has index ${entry.index}, expected ${first + i}`,
        );
      }
      if (!Number.isSafeInteger(entry.term) || entry.term < previousTerm) {
        throw new RangeError(
          `entry ${entry.index} has term ${entry.term}, lower than the term ${previousTerm} ` +
            `before it`,
        );
      }
      previousTerm = entry.term;
      if (entry.type !== EntryType.Normal && entry.type !== EntryType.Config) {
        throw new RangeError(`entry ${entry.index} has unknown type ${entry.type}`);
      }
      if (entry.data.length > ENTRY_DATA_BYTES_MAX) {
        throw new RangeError(
          `entry ${entry.index} data is ${entry.data.length} bytes, more than ` +
            `${ENTRY_DATA_BYTES_MAX}`,
        );
      }
    }
  }

  /** Cuts the log so that it ends at `index - 1` (whose term is `previousTerm`). */
  async #truncateFrom(index: number, previousTerm: number): Promise<void> {
    // Held bytes go first: the cut below is at an offset that counts them.
    this.writeHeld();
    const k = this.#segmentIndexOf(index);
    await this.#beforeCut(index - 1);
    await this.#deleteSegmentsAfter(k);
    const segment = this.#segments[k];
    const offset = segment.offsets.get(index - segment.firstIndex);
    const file = await this.#openActive();
    await file.truncate(offset);
    // Flushed before new records go in: otherwise a crash could leave new records followed by
    // stale ones past them, which recovery would have to report as corruption.
    await file.syncData();
    segment.offsets.truncate(index - segment.firstIndex);
    segment.sizeBytes = offset;
    this.#lastTerm = previousTerm;
  }

  /** Deletes the segments after position `k` in the list, newest first, each durably. */
  async #deleteSegmentsAfter(k: number): Promise<void> {
    // The active file may be closed below; what it was owed goes in first.
    this.writeHeld();
    while (this.#segments.length - 1 > k) {
      const newest = this.#segments[this.#segments.length - 1];
      this.#activeFile?.close();
      this.#activeFile = null;
      await Deno.remove(newest.path);
      // One flush per file: newest first keeps what remains a prefix only if the deletions
      // reach the disk in that order.
      await syncDir(this.#dir);
      this.#segments.pop();
      if (this.#segments.length === 0) this.#emptyNextIndex = newest.firstIndex;
    }
  }

  async #openActive(): Promise<Deno.FsFile> {
    if (this.#activeFile === null) {
      const last = this.#segments.at(-1);
      if (last === undefined) throw new Error("log store has no segment to write to");
      this.#activeFile = await Deno.open(last.path, { append: true, read: true });
    }
    return this.#activeFile;
  }

  /**
   * Encodes the batch into one buffer, then writes and flushes each segment it spans in turn.
   * Not an async function: through the journal it returns the journal's promise itself.
   */
  #writeBatch(entries: readonly Entry[]): Promise<void> {
    let bytesNeeded = 0;
    for (const entry of entries) bytesNeeded += RECORD_BYTES_MIN + entry.data.length;
    // Room for every segment header the batch may start. A segment closes only when its
    // records plus the next record exceed the room after its header, so two neighbours hold
    // more than that room: at most 2 * bytes / room + 1 new segments, and at most one a record.
    const roomBytes = Math.max(1, this.#segmentBytesMax - SEGMENT_HEADER_BYTES);
    const headersMax = Math.min(entries.length, 2 * Math.ceil(bytesNeeded / roomBytes) + 1);
    bytesNeeded += headersMax * SEGMENT_HEADER_BYTES;
    const buffer = this.#scratchFor(bytesNeeded);
    const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
    const pendingOffsets = this.#pendingOffsetsFor(entries.length);

    const chunks: Chunk[] = [];
    let segment = this.#segments.at(-1);
    let created = false;
    let segmentBytes = 0;
    let segmentRecords = 0;
    let position = 0;
    let chunkStart = 0;
    let offsetsStart = 0;
    if (segment !== undefined) {
      segmentBytes = segment.sizeBytes;
      segmentRecords = segment.offsets.length;
    }
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const recordBytes = RECORD_BYTES_MIN + entry.data.length;
      const roll = segment !== undefined && segmentRecords > 0 &&
        segmentBytes + recordBytes > this.#segmentBytesMax;
      if (segment === undefined || roll) {
        if (segment !== undefined && position > chunkStart) {
          chunks.push({
            segment,
            created,
            bytesStart: chunkStart,
            bytesEnd: position,
            offsetsStart,
            offsetsEnd: i,
          });
        }
        segment = newSegment(this.#dir, entry.index);
        created = true;
        chunkStart = position;
        offsetsStart = i;
        encodeSegmentHeader(buffer, position, entry.index);
        position += SEGMENT_HEADER_BYTES;
        segmentBytes = SEGMENT_HEADER_BYTES;
        segmentRecords = 0;
      }
      if (position + recordBytes > buffer.length) {
        throw new Error(`append buffer of ${buffer.length} bytes is too small (bug)`);
      }
      pendingOffsets[i] = segmentBytes;
      encodeRecord(buffer, view, position, entry);
      position += recordBytes;
      segmentBytes += recordBytes;
      segmentRecords++;
    }
    chunks.push({
      segment: segment!,
      created,
      bytesStart: chunkStart,
      bytesEnd: position,
      offsetsStart,
      offsetsEnd: entries.length,
    });

    const only = chunks[0];
    const journal = this.#journal;
    if (journal !== null && !this.#deferFlush && chunks.length === 1 && !only.created) {
      const bytes = buffer.subarray(only.bytesStart, only.bytesEnd);
      const file = this.#activeFile;
      // The segment is opened once, by the first append after a start; the buffer stays ours
      // meanwhile (the log's write queue holds it).
      if (file === null) {
        return this.#openActive().then((opened) =>
          this.#appendThroughJournal(journal, opened, only, bytes, entries, pendingOffsets)
        );
      }
      return this.#appendThroughJournal(journal, file, only, bytes, entries, pendingOffsets);
    }
    return this.#writeChunks(entries, chunks, buffer, pendingOffsets);
  }

  /**
   * Through the host journal: durable with every other group's appends of this turn; the
   * segment gets the same bytes once they are, without a flush of its own.
   */
  #appendThroughJournal(
    binding: JournalBinding,
    file: Deno.FsFile,
    chunk: Chunk,
    bytes: Uint8Array,
    entries: readonly Entry[],
    pendingOffsets: Uint32Array,
  ): Promise<void> {
    const lastTerm = entries[entries.length - 1].term;
    const { journal, group, incarnation } = binding;
    return journal.append(this, group, incarnation, entries[0].index, entries.length, bytes, () => {
      this.#hold(file, bytes);
      this.#noteChunkWritten(chunk, pendingOffsets);
      this.#lastTerm = lastTerm;
      this.#unflushedPath = chunk.segment.path;
    });
  }

  /** Writes the chunks of an encoded batch (see `#writeBatch`), each flushed, in turn. */
  async #writeChunks(
    entries: readonly Entry[],
    chunks: Chunk[],
    buffer: Uint8Array,
    pendingOffsets: Uint32Array,
  ): Promise<void> {
    // Bytes held from earlier appends precede these in the file.
    this.writeHeld();
    // Chunks go to disk one after another: a segment is only created once the one before it
    // is flushed, so a crash can tear only the newest file, whose tail recovery may cut.
    for (const chunk of chunks) {
      let file: Deno.FsFile;
      if (chunk.created) {
        // Bytes written through the journal or a replay must be flushed before a newer segment
        // exists: only the newest segment may be repaired from the journal at a restart.
        await this.flushUnflushed();
        this.#activeFile?.close();
        this.#activeFile = null;
        file = await Deno.open(chunk.segment.path, { createNew: true, append: true, read: true });
        this.#activeFile = file;
        this.#segments.push(chunk.segment);
        chunk.segment.sizeBytes = SEGMENT_HEADER_BYTES;
      } else {
        file = await this.#openActive();
      }
      // The write only copies into the page cache, so it runs on this thread; only the flush,
      // which waits for the disk, goes to a blocking thread. One thread hop per chunk, not two.
      writeAllSync(file, buffer.subarray(chunk.bytesStart, chunk.bytesEnd));
      if (this.#deferFlush && !chunk.created && chunk === chunks[chunks.length - 1]) {
        this.#unflushedPath = chunk.segment.path;
      } else {
        await file.syncData();
        if (!chunk.created) this.#unflushedPath = null;
      }
      // The new file's name must survive a crash too, not only its contents.
      if (chunk.created) await syncDir(this.#dir);
      this.#noteChunkWritten(chunk, pendingOffsets);
    }
    this.#lastTerm = entries[entries.length - 1].term;
    const newest = chunks.at(-1)!;
    if (newest.created) await this.#onSegmentDurable(newest.segment.firstIndex);
  }

  /** Records a chunk's records, now in its segment file, in the segment's bookkeeping. */
  #noteChunkWritten(chunk: Chunk, pendingOffsets: Uint32Array): void {
    for (let i = chunk.offsetsStart; i < chunk.offsetsEnd; i++) {
      chunk.segment.offsets.push(pendingOffsets[i]);
    }
    chunk.segment.sizeBytes += chunk.bytesEnd - chunk.bytesStart -
      (chunk.created ? SEGMENT_HEADER_BYTES : 0);
  }

  #scratchFor(bytes: number): Uint8Array {
    if (bytes > SCRATCH_BYTES_RETAINED_MAX) return new Uint8Array(bytes);
    if (this.#scratch.length < bytes) {
      let length = Math.max(this.#scratch.length, SCRATCH_BYTES_INITIAL);
      while (length < bytes) length *= 2;
      this.#scratch = new Uint8Array(length);
    }
    return this.#scratch;
  }

  #pendingOffsetsFor(count: number): Uint32Array {
    if (this.#pendingOffsets.length < count) {
      let length = this.#pendingOffsets.length;
      while (length < count) length *= 2;
      this.#pendingOffsets = new Uint32Array(length);
    }
    return this.#pendingOffsets;
  }

  /** Position in `#segments` of the segment holding `index`, which must be held. */
  #segmentIndexOf(index: number): number {
    let lo = 0;
    let hi = this.#segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.#segments[mid].firstIndex <= index) lo = mid;
      else hi = mid - 1;
    }
    const segment = this.#segments[lo];
    if (
      segment === undefined || index < segment.firstIndex ||
      index >= segment.firstIndex + segment.offsets.length
    ) {
      throw new RangeError(`index ${index} is not in the log`);
    }
    return lo;
  }

  async #termAtUnlocked(index: number): Promise<number> {
    this.writeHeld();
    const segment = this.#segments[this.#segmentIndexOf(index)];
    const start = segment.offsets.get(index - segment.firstIndex);
    const isLastRecord = index === segment.firstIndex + segment.offsets.length - 1;
    const stop = isLastRecord
      ? segment.sizeBytes
      : segment.offsets.get(index - segment.firstIndex + 1);
    const bytes = await readRange(segment.path, start, stop - start);
    const entries: Entry[] = [];
    decodeRecords(bytes, segment.path, start, index, 1, entries);
    return entries[0].term;
  }
}

function newSegment(dir: string, firstIndex: number): Segment {
  return {
    firstIndex,
    path: join(dir, segmentFileName(firstIndex)),
    offsets: new Offsets(),
    sizeBytes: 0,
  };
}

function encodeSegmentHeader(buffer: Uint8Array, position: number, firstIndex: number): void {
  const view = new DataView(buffer.buffer, buffer.byteOffset + position, SEGMENT_HEADER_BYTES);
  buffer.set(SEGMENT_MAGIC, position);
  view.setUint16(4, SEGMENT_VERSION, true);
  view.setUint16(6, 0, true);
  setU64(view, 8, firstIndex);
  view.setUint32(16, crc32c(buffer, position, position + 16), true);
}

function encodeRecord(buffer: Uint8Array, view: DataView, position: number, entry: Entry): void {
  const payload = position + RECORD_HEADER_BYTES;
  const payloadBytes = RECORD_PAYLOAD_FIXED_BYTES + entry.data.length;
  view.setUint32(position, payloadBytes, true);
  buffer[payload] = entry.type;
  setU64(view, payload + 1, entry.term);
  setU64(view, payload + 9, entry.index);
  buffer.set(entry.data, payload + RECORD_PAYLOAD_FIXED_BYTES);
  view.setUint32(position + 4, crc32c(buffer, payload, payload + payloadBytes), true);
}

/**
 * Checks the record at `offset` of a segment's bytes. Returns the offset just past it when its
 * length and CRC are good, or why not (a torn write or damage; the caller decides which).
 */
export function checkRecord(bytes: Uint8Array, view: DataView, offset: number): number | string {
  if (bytes.length - offset < RECORD_HEADER_BYTES) {
    return `incomplete record header (${bytes.length - offset} of ${RECORD_HEADER_BYTES} bytes)`;
  }
  const payloadBytes = view.getUint32(offset, true);
  if (payloadBytes < RECORD_PAYLOAD_FIXED_BYTES || payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
    return `invalid payload length ${payloadBytes}`;
  }
  const payload = offset + RECORD_HEADER_BYTES;
  if (payload + payloadBytes > bytes.length) {
    return `incomplete record (${bytes.length - payload} of ${payloadBytes} payload bytes)`;
  }
  const crcStored = view.getUint32(offset + 4, true);
  const crcComputed = crc32c(bytes, payload, payload + payloadBytes);
  if (crcStored !== crcComputed) {
    return `record checksum 0x${hex32(crcStored)} does not match computed 0x${hex32(crcComputed)}`;
  }
  return payload + payloadBytes;
}

/** True when a record with a good CRC and an index of at least `indexMin` starts after `from`. */
function hasValidRecordFrom(
  bytes: Uint8Array,
  view: DataView,
  from: number,
  indexMin: number,
): boolean {
  for (let offset = from; offset + RECORD_BYTES_MIN <= bytes.length; offset++) {
    // Cheap field checks first, so the scan costs a CRC only where a record is plausible.
    const payloadBytes = view.getUint32(offset, true);
    if (payloadBytes < RECORD_PAYLOAD_FIXED_BYTES || payloadBytes > RECORD_PAYLOAD_BYTES_MAX) {
      continue;
    }
    if (offset + RECORD_HEADER_BYTES + payloadBytes > bytes.length) continue;
    const type = bytes[offset + RECORD_HEADER_BYTES];
    if (type !== EntryType.Normal && type !== EntryType.Config) continue;
    const index = getU64(view, offset + RECORD_HEADER_BYTES + 9);
    if (index < indexMin || !Number.isSafeInteger(index)) continue;
    if (typeof checkRecord(bytes, view, offset) === "number") return true;
  }
  return false;
}

/**
 * The disk sector size assumed when telling a torn write from damage: a crash can leave each
 * sector of an unflushed write either written or not (zero), but not half of one.
 */
export const SECTOR_BYTES = 512;

/**
 * True when the bad record at `offset` (the last one of the last segment) looks like an append
 * that a crash cut short, rather than damage to a record once written whole:
 *
 * - the file ends inside its header, or its length is plausible but runs past the end of the
 *   file (the rest of the write never reached the disk);
 * - or a part of it within one sector is all zero: that sector of the write never reached the
 *   disk (a file size update lands before the data). For a length out of range, the parts of
 *   the record header are checked, since the record's end is unknown.
 *
 * Anything else (a whole record with a checksum mismatch and no zeroed sector, or a length out
 * of range over non-zero bytes) is damage. This is the rule etcd's WAL uses for its last record.
 */
function looksUnfinished(bytes: Uint8Array, view: DataView, offset: number): boolean {
  if (bytes.length - offset < RECORD_HEADER_BYTES) return true;
  const payloadBytes = view.getUint32(offset, true);
  const lengthOk = payloadBytes >= RECORD_PAYLOAD_FIXED_BYTES &&
    payloadBytes <= RECORD_PAYLOAD_BYTES_MAX;
  const recordEnd = offset + RECORD_HEADER_BYTES + payloadBytes;
  if (lengthOk && recordEnd > bytes.length) return true;
  return hasZeroedSectorPart(bytes, offset, lengthOk ? recordEnd : offset + RECORD_HEADER_BYTES);
}

/** True when `bytes[start..end)`, split at multiples of {@linkcode SECTOR_BYTES}, has an all-zero part. */
export function hasZeroedSectorPart(bytes: Uint8Array, start: number, end: number): boolean {
  let partStart = start;
  while (partStart < end) {
    const partEnd = Math.min(end, (Math.floor(partStart / SECTOR_BYTES) + 1) * SECTOR_BYTES);
    let zero = true;
    for (let i = partStart; i < partEnd && zero; i++) zero = bytes[i] === 0;
    if (zero) return true;
    partStart = partEnd;
  }
  return false;
}

interface RecoveredSegment {
  segment: Segment;
  firstTerm: number;
  lastTerm: number;
}

/** Validates one segment read whole; returns null when it must be removed (torn header). */
async function recoverSegment(
  bytes: Uint8Array,
  path: string,
  nameIndex: number,
  isLast: boolean,
  logger: Logger,
  journalHolds: (index: number) => boolean,
): Promise<RecoveredSegment | null> {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const corrupt = (why: string, offset: number) =>
    new StorageCorruptionError(
      `log segment ${path} is corrupt at byte ${offset}: ${why}`,
      path,
      offset,
    );

  const headerProblem = checkSegmentHeader(bytes, view);
  if (headerProblem !== null) {
    // A crash right after the file was created can leave its header torn; then no record
    // after it can have been acknowledged, which the scan confirms.
    if (isLast && !hasValidRecordFrom(bytes, view, 0, nameIndex)) {
      logger.warn("removing the last log segment: its header is torn", {
        file: path,
        sizeBytes: bytes.length,
        reason: headerProblem,
      });
      return null;
    }
    throw corrupt(headerProblem, 0);
  }
  const version = view.getUint16(4, true);
  if (version !== SEGMENT_VERSION) {
    throw new UnsupportedFormatError(
      `log segment ${path} has format version ${version}, this build reads version ` +
        `${SEGMENT_VERSION}`,
      path,
    );
  }
  const firstIndex = getU64(view, 8);
  if (firstIndex !== nameIndex) {
    throw corrupt(`the header says first index ${firstIndex}, the file name ${nameIndex}`, 8);
  }

  const segment: Segment = { firstIndex, path, offsets: new Offsets(), sizeBytes: 0 };
  let firstTerm = 0;
  let lastTerm = 0;
  let offset = SEGMENT_HEADER_BYTES;
  let expectedIndex = firstIndex;
  while (offset < bytes.length) {
    const end = checkRecord(bytes, view, offset);
    if (typeof end === "string") {
      if (!isLast) throw corrupt(end, offset);
      const journaled = journalHolds(expectedIndex);
      if (journaled) {
        logger.warn("cutting the log's unflushed tail at a bad record; the host journal holds it", {
          file: path,
          offsetBytes: offset,
          index: expectedIndex,
          droppedBytes: bytes.length - offset,
          reason: end,
        });
      } else if (!looksUnfinished(bytes, view, offset)) {
        throw corrupt(
          `${end}; the record is whole and has no zeroed sector, so this is damage, not a ` +
            `write cut short by a crash`,
          offset,
        );
      } else if (hasValidRecordFrom(bytes, view, offset + 1, expectedIndex)) {
        throw corrupt(`${end}, and valid records follow it`, offset);
      } else {
        // An unfinished write with nothing valid after it: the tail of an append that a crash
        // interrupted before its fdatasync returned, so no entry in it was acknowledged.
        logger.warn("cutting a torn record off the end of the log", {
          file: path,
          offsetBytes: offset,
          droppedBytes: bytes.length - offset,
          reason: end,
        });
      }
      await truncateDurably(path, offset);
      break;
    }
    const payload = offset + RECORD_HEADER_BYTES;
    const type = bytes[payload];
    const term = getU64(view, payload + 1);
    const index = getU64(view, payload + 9);
    // The CRC matched, so these are what was written; a wrong value is a bug, never a tear.
    if (type !== EntryType.Normal && type !== EntryType.Config) {
      throw corrupt(`record has unknown entry type ${type}`, offset);
    }
    if (index !== expectedIndex) {
      throw corrupt(`record has index ${index}, expected ${expectedIndex}`, offset);
    }
    if (!Number.isSafeInteger(term) || term < lastTerm) {
      throw corrupt(`record ${index} has term ${term}, after term ${lastTerm}`, offset);
    }
    if (segment.offsets.length === 0) firstTerm = term;
    lastTerm = term;
    segment.offsets.push(offset);
    offset = end;
    expectedIndex++;
  }
  segment.sizeBytes = Math.min(offset, bytes.length);
  return { segment, firstTerm, lastTerm };
}

/** Returns why a segment header is bad, or null when it is good. */
export function checkSegmentHeader(bytes: Uint8Array, view: DataView): string | null {
  if (bytes.length < SEGMENT_HEADER_BYTES) {
    return `incomplete segment header (${bytes.length} of ${SEGMENT_HEADER_BYTES} bytes)`;
  }
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return `the file does not start with magic "CLOG"`;
  }
  const crcStored = view.getUint32(16, true);
  const crcComputed = crc32c(bytes, 0, 16);
  if (crcStored !== crcComputed) {
    return `header checksum 0x${hex32(crcStored)} does not match computed 0x${hex32(crcComputed)}`;
  }
  return null;
}

async function readRange(path: string, position: number, length: number): Promise<Uint8Array> {
  const file = await Deno.open(path, { read: true });
  try {
    return await readExact(file, position, length);
  } finally {
    file.close();
  }
}

/**
 * Decodes `count` records from `bytes` (read from `path` at `fileOffset`), which must be
 * exactly those records, starting at `firstIndex`. Checks the CRCs again: the bytes were
 * validated at open, but the disk may have changed them since.
 */
function decodeRecords(
  bytes: Uint8Array,
  path: string,
  fileOffset: number,
  firstIndex: number,
  count: number,
  out: Entry[],
): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const end = checkRecord(bytes, view, offset);
    const payload = offset + RECORD_HEADER_BYTES;
    const index = typeof end === "number" ? getU64(view, payload + 9) : -1;
    if (typeof end === "string" || index !== firstIndex + i) {
      const why = typeof end === "string"
        ? end
        : `record has index ${index}, expected ${firstIndex + i}`;
      throw new StorageCorruptionError(
        `log segment ${path} is corrupt at byte ${fileOffset + offset}: ${why}`,
        path,
        fileOffset + offset,
      );
    }
    out.push({
      type: bytes[payload] as EntryType,
      term: getU64(view, payload + 1),
      index,
      data: bytes.subarray(payload + RECORD_PAYLOAD_FIXED_BYTES, end),
    });
    offset = end;
  }
  if (offset !== bytes.length) {
    throw new Error(
      `log segment ${path}: ${bytes.length - offset} bytes left after ${count} records`,
    );
  }
}
