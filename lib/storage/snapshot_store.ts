/**
 * Snapshot files in `DIR/snapshot/`, one file per snapshot, named by its index
 * (`00000000000000000042.snap`, 20 digits so names sort like the numbers).
 *
 * A snapshot is written whole with {@linkcode writeFileAtomic}; only after it is durable are
 * snapshots older than the newest {@linkcode SNAPSHOT_RETAIN_COUNT} removed, so a crash at any
 * point leaves at least one complete snapshot. Keeping the previous one as well means a
 * snapshot that rots on disk costs the time to replay more log, not the node.
 *
 * File layout (all integers little-endian):
 *
 * | offset | bytes | field                                             |
 * | ------ | ----- | ------------------------------------------------- |
 * | 0      | 4     | magic "CSNP"                                      |
 * | 4      | 2     | format version, 1                                 |
 * | 6      | 2     | reserved, 0                                       |
 * | 8      | 8     | index (u64)                                       |
 * | 16     | 8     | term (u64)                                        |
 * | 24     | 4     | voter count (u32)                                 |
 * | 28     | 4     | learner count (u32)                               |
 * | 32     | ...   | voters, then learners: u16 byte length, UTF-8     |
 * | ...    | 8     | data length (u64)                                 |
 * | ...    | n     | data                                              |
 * | end-4  | 4     | CRC-32C of every byte before it                   |
 *
 * @module
 */

import { join } from "node:path";
import type { NodeId, Snapshot } from "../raft/types.ts";
import { type Logger, silentLogger } from "../logging/logger.ts";
import { checkFramed, getU64, isDigits, readString, setU64 } from "./_binary.ts";
import { Mutex } from "./_mutex.ts";
import { isTempFileName, syncDir, writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import { StorageCorruptionError } from "./errors.ts";

/** Magic bytes "CSNP" at the start of a snapshot file. */
export const SNAPSHOT_MAGIC: Uint8Array = new Uint8Array([0x43, 0x53, 0x4e, 0x50]);

/** The snapshot file format version this build writes and reads. */
export const SNAPSHOT_VERSION = 1;

/** Extension of snapshot files. */
export const SNAPSHOT_FILE_EXTENSION = ".snap";

/** Suffix added to a snapshot file found corrupt, which keeps it for inspection but unused. */
export const SNAPSHOT_CORRUPT_SUFFIX = ".corrupt";

/** How many snapshots are kept after a save: the newest and the one before it. */
export const SNAPSHOT_RETAIN_COUNT = 2;

/** Largest state machine image accepted, in bytes; a file is read whole into memory. */
export const SNAPSHOT_DATA_BYTES_MAX = 1024 * 1024 * 1024;

/** Most voters plus learners in a snapshot's configuration. */
export const SNAPSHOT_MEMBERS_MAX = 1024;

/** Longest member id, in UTF-8 bytes. */
export const SNAPSHOT_MEMBER_BYTES_MAX = 1024;

const SNAPSHOT_FIXED_BYTES = 32;
const SNAPSHOT_DATA_LENGTH_BYTES = 8;
const SNAPSHOT_CRC_BYTES = 4;
const SNAPSHOT_BYTES_MIN = SNAPSHOT_FIXED_BYTES + SNAPSHOT_DATA_LENGTH_BYTES + SNAPSHOT_CRC_BYTES;
const SNAPSHOT_NAME_DIGITS = 20;

const encoder = new TextEncoder();

/** Encodes `snapshot` in the snapshot file format (see the module doc). */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { index, term, conf, data } = snapshot;
  for (const [name, value] of [["index", index], ["term", term]] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`snapshot ${name} ${value} is not a non-negative safe integer`);
    }
  }
  const memberCount = conf.voters.length + conf.learners.length;
  if (memberCount > SNAPSHOT_MEMBERS_MAX) {
    throw new RangeError(
      `snapshot configuration has ${memberCount} members, more than ${SNAPSHOT_MEMBERS_MAX}`,
    );
  }
  if (data.length > SNAPSHOT_DATA_BYTES_MAX) {
    throw new RangeError(
      `snapshot data is ${data.length} bytes, more than ${SNAPSHOT_DATA_BYTES_MAX}`,
    );
  }
  const members = [...conf.voters, ...conf.learners].map((id) => {
    const bytes = encoder.encode(id);
    if (bytes.length > SNAPSHOT_MEMBER_BYTES_MAX) {
      throw new RangeError(
        `member id is ${bytes.length} bytes, more than ${SNAPSHOT_MEMBER_BYTES_MAX}`,
      );
    }
    return bytes;
  });
  let size = SNAPSHOT_BYTES_MIN + data.length;
  for (const member of members) size += 2 + member.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(SNAPSHOT_MAGIC, 0);
  view.setUint16(4, SNAPSHOT_VERSION, true);
  view.setUint16(6, 0, true);
  setU64(view, 8, index);
  setU64(view, 16, term);
  view.setUint32(24, conf.voters.length, true);
  view.setUint32(28, conf.learners.length, true);
  let offset = SNAPSHOT_FIXED_BYTES;
  for (const member of members) {
    view.setUint16(offset, member.length, true);
    bytes.set(member, offset + 2);
    offset += 2 + member.length;
  }
  setU64(view, offset, data.length);
  offset += SNAPSHOT_DATA_LENGTH_BYTES;
  bytes.set(data, offset);
  offset += data.length;
  view.setUint32(offset, crc32c(bytes, 0, offset), true);
  return bytes;
}

/**
 * Decodes a snapshot file's bytes; `path` names the file in errors. Throws
 * {@linkcode StorageCorruptionError} for bad bytes (including a wrong magic) and
 * {@linkcode UnsupportedFormatError} for another format version. The returned `data` is a
 * view into `bytes`.
 */
export function decodeSnapshot(bytes: Uint8Array, path: string): Snapshot {
  const framed = checkFramed(bytes, path, {
    kind: "snapshot",
    magic: SNAPSHOT_MAGIC,
    version: SNAPSHOT_VERSION,
    bytesMin: SNAPSHOT_BYTES_MIN,
  });
  const { view, crcOffset, corrupt } = framed;
  const index = getU64(view, 8);
  const term = getU64(view, 16);
  if (!Number.isSafeInteger(index)) throw corrupt(`index ${index} is not a safe integer`, 8);
  if (!Number.isSafeInteger(term)) throw corrupt(`term ${term} is not a safe integer`, 16);
  const voterCount = view.getUint32(24, true);
  const learnerCount = view.getUint32(28, true);
  if (voterCount + learnerCount > SNAPSHOT_MEMBERS_MAX) {
    throw corrupt(`${voterCount + learnerCount} members is more than ${SNAPSHOT_MEMBERS_MAX}`, 24);
  }
  let offset = SNAPSHOT_FIXED_BYTES;
  const members: NodeId[] = [];
  for (let i = 0; i < voterCount + learnerCount; i++) {
    const { value, next } = readString(framed, offset, `member ${i}`);
    members.push(value);
    offset = next;
  }
  if (offset + SNAPSHOT_DATA_LENGTH_BYTES > crcOffset) {
    throw corrupt("data length runs past the end", offset);
  }
  const dataLength = getU64(view, offset);
  if (offset + SNAPSHOT_DATA_LENGTH_BYTES + dataLength !== crcOffset) {
    throw corrupt(`data length ${dataLength} does not match the file size`, offset);
  }
  offset += SNAPSHOT_DATA_LENGTH_BYTES;
  return {
    index,
    term,
    conf: { voters: members.slice(0, voterCount), learners: members.slice(voterCount) },
    data: bytes.subarray(offset, crcOffset),
  };
}

/** Returns the file name of the snapshot at `index`. */
export function snapshotFileName(index: number): string {
  return String(index).padStart(SNAPSHOT_NAME_DIGITS, "0") + SNAPSHOT_FILE_EXTENSION;
}

/** Parses a snapshot file name; returns its index, or -1 for any other name. */
function parseSnapshotFileName(name: string): number {
  if (!name.endsWith(SNAPSHOT_FILE_EXTENSION)) return -1;
  const digits = name.slice(0, -SNAPSHOT_FILE_EXTENSION.length);
  if (digits.length !== SNAPSHOT_NAME_DIGITS || !isDigits(digits)) return -1;
  const index = Number(digits);
  return Number.isSafeInteger(index) ? index : -1;
}

/** Options for {@linkcode SnapshotStore.open}. */
export interface SnapshotStoreOptions {
  /** Where warnings and errors about files found on disk go. Default: dropped. */
  logger?: Logger;
}

/** The snapshot files of one data dir; see the module doc. */
export class SnapshotStore {
  #dir: string;
  #logger: Logger;
  #mutex = new Mutex();

  private constructor(dir: string, logger: Logger) {
    this.#dir = dir;
    this.#logger = logger;
  }

  /** Opens the existing directory `dir`, removing the temp files a crash left behind. */
  static async open(dir: string, options: SnapshotStoreOptions = {}): Promise<SnapshotStore> {
    const logger = options.logger ?? silentLogger;
    let snapshots = 0;
    for await (const item of Deno.readDir(dir)) {
      if (item.isFile && item.name.endsWith(SNAPSHOT_FILE_EXTENSION)) snapshots++;
      if (item.isFile && isTempFileName(item.name)) {
        // A temp file is a save that never completed, so nothing refers to it.
        logger.info("removing a snapshot temp file left by a crash", {
          file: join(dir, item.name),
        });
        await Deno.remove(join(dir, item.name));
      }
    }
    // A save's rename may be in the page cache only (a process that died before the directory's
    // flush): a snapshot this node reads and acts on must be one a power cut keeps.
    if (snapshots > 0) await syncDir(dir);
    return new SnapshotStore(dir, logger);
  }

  /** The directory. */
  get dir(): string {
    return this.#dir;
  }

  /**
   * Durably writes `snapshot` (resolving once it survives a crash), then removes all but the
   * newest {@linkcode SNAPSHOT_RETAIN_COUNT} snapshots. Saving an index that already has a file
   * replaces it atomically.
   */
  save(snapshot: Snapshot): Promise<void> {
    return this.#mutex.run(async () => {
      const path = join(this.#dir, snapshotFileName(snapshot.index));
      const bytes = encodeSnapshot(snapshot);
      // Check the encoding reads back before older snapshots are deleted because of it.
      const check = decodeSnapshot(bytes, path);
      if (check.index !== snapshot.index || check.term !== snapshot.term) {
        throw new Error("snapshot encoding does not round-trip");
      }
      await writeFileAtomic(path, bytes);
      const indexes = await this.#listIndexes();
      // Removal need not be durable: a removed snapshot that reappears after a crash is only
      // an older snapshot, and the next save removes it again.
      for (const index of indexes.slice(SNAPSHOT_RETAIN_COUNT)) {
        await Deno.remove(join(this.#dir, snapshotFileName(index)));
      }
    });
  }

  /**
   * Returns the newest snapshot that reads back intact, or null when there is none.
   *
   * A file that fails its checks is logged as an error naming it and renamed to
   * `NAME.snap.corrupt` (kept for inspection, never read again), and the next older one is
   * tried. The caller must still check that the log continues the snapshot it gets: an older
   * snapshot may not reach the log's first entry, and that gap is an error there.
   */
  loadNewest(): Promise<Snapshot | null> {
    return this.#mutex.run(async () => {
      for (const index of await this.#listIndexes()) {
        const path = join(this.#dir, snapshotFileName(index));
        let snapshot: Snapshot;
        try {
          snapshot = decodeSnapshot(await Deno.readFile(path), path);
          if (snapshot.index !== index) {
            throw new StorageCorruptionError(
              `snapshot file ${path} holds index ${snapshot.index}, not the ${index} its name says`,
              path,
              8,
            );
          }
        } catch (error) {
          if (!(error instanceof StorageCorruptionError)) throw error;
          this.#logger.error("snapshot file is corrupt, trying the previous snapshot", {
            file: path,
            offset: error.offset,
            error: error.message,
          });
          await Deno.rename(path, path + SNAPSHOT_CORRUPT_SUFFIX);
          continue;
        }
        return snapshot;
      }
      return null;
    });
  }

  /** True when the directory holds at least one snapshot file (intact or not). */
  async hasAny(): Promise<boolean> {
    return (await this.#listIndexes()).length > 0;
  }

  /** Indexes of the snapshot files on disk, newest first. */
  async #listIndexes(): Promise<number[]> {
    const indexes: number[] = [];
    for await (const item of Deno.readDir(this.#dir)) {
      if (!item.isFile) continue;
      const index = parseSnapshotFileName(item.name);
      if (index >= 0) indexes.push(index);
    }
    return indexes.sort((a, b) => b - a);
  }
}
