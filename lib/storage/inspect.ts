/**
 * A read-only look at a data dir, for `counter inspect`: the meta file, the snapshot files and
 * the log segments, decoded and checked without changing a byte. Unlike {@linkcode DataDir.open}
 * it takes no lock, removes no temp file, renames no corrupt snapshot and truncates no torn log
 * tail: it reports them.
 *
 * @module
 */

import { join } from "node:path";
import type { Snapshot } from "../raft/types.ts";
import { getU64 } from "./_binary.ts";
import { LOCK_FILE_NAME } from "./dir_lock.ts";
import {
  checkRecord,
  checkSegmentHeader,
  RECORD_HEADER_BYTES,
  SEGMENT_FILE_EXTENSION,
  SEGMENT_HEADER_BYTES,
  SEGMENT_VERSION,
} from "./log_store.ts";
import { decodeMeta, type Meta, META_FILE_NAME } from "./meta_store.ts";
import { decodeSnapshot, SNAPSHOT_FILE_EXTENSION } from "./snapshot_store.ts";
import { JOURNAL_DIR_NAME, JOURNAL_HEADER_BYTES, parseJournalFileName } from "./journal.ts";

/** One snapshot file. */
export interface SnapshotFileReport {
  /** The file's path. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** The decoded snapshot, or null when the file is damaged. */
  snapshot: Snapshot | null;
  /** The file's bytes, when intact. */
  fileBytes: Uint8Array | null;
  /** Why the file cannot be used, when it cannot. */
  problem?: string;
}

/** One log segment file. */
export interface SegmentReport {
  /** The file's path. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** Index of its first entry, from the header (0 when the header is damaged). */
  firstIndex: number;
  /** Intact records from the start of the file. */
  entries: number;
  /** Index of the last intact record (firstIndex - 1 when none). */
  lastIndex: number;
  /** Term of the last intact record (0 when none). */
  lastTerm: number;
  /** What follows the last intact record, when something does (a torn write or damage). */
  problem?: string;
}

/** Everything {@linkcode inspectDataDir} found. */
export interface DataDirReport {
  /** The data dir. */
  dir: string;
  /** True when a process holds the dir's lock now (a running node: figures may move). */
  locked: boolean;
  /** The PID the lock file names, when locked and readable. */
  lockPid?: number;
  /** The meta file, or null when missing or damaged. */
  meta: Meta | null;
  /** Why the meta file cannot be read, when it cannot. */
  metaProblem?: string;
  /** Snapshot files, newest first. */
  snapshots: SnapshotFileReport[];
  /** Log segments, oldest first. */
  segments: SegmentReport[];
}

async function listNames(dir: string, extension: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const item of Deno.readDir(dir)) {
      if (item.isFile && item.name.endsWith(extension)) names.push(item.name);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  // Names are zero-padded indexes: sorting the text sorts the numbers.
  return names.sort();
}

/**
 * True when another process holds the lock of `dir`. Checked with a shared-mode attempt on a
 * read-only descriptor, released at once; a missing lock file means nobody holds it.
 */
function isLocked(dir: string): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(join(dir, LOCK_FILE_NAME), { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
  try {
    const got = file.tryLockSync(false);
    if (got) file.unlockSync();
    return !got;
  } finally {
    file.close();
  }
}

function problemOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function inspectSegment(path: string, bytes: Uint8Array): SegmentReport {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const report: SegmentReport = {
    path,
    bytes: bytes.length,
    firstIndex: 0,
    entries: 0,
    lastIndex: -1,
    lastTerm: 0,
  };
  const headerProblem = checkSegmentHeader(bytes, view);
  if (headerProblem !== null) {
    report.problem = headerProblem;
    return report;
  }
  const version = view.getUint16(4, true);
  if (version !== SEGMENT_VERSION) {
    report.problem = `format version ${version}, this build reads version ${SEGMENT_VERSION}`;
    return report;
  }
  report.firstIndex = getU64(view, 8);
  report.lastIndex = report.firstIndex - 1;
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < bytes.length) {
    const end = checkRecord(bytes, view, offset);
    if (typeof end === "string") {
      report.problem = `${bytes.length - offset} bytes at byte ${offset} are not a good record ` +
        `(${end}); a torn write if at the end of the newest segment, else damage`;
      break;
    }
    const payload = offset + RECORD_HEADER_BYTES;
    const index = getU64(view, payload + 9);
    if (index !== report.lastIndex + 1) {
      report.problem = `record at byte ${offset} has index ${index}, expected ${
        report.lastIndex + 1
      }`;
      break;
    }
    report.entries++;
    report.lastIndex = index;
    report.lastTerm = getU64(view, payload + 1);
    offset = end;
  }
  return report;
}

/**
 * Reads the data dir `dir` without writing or locking anything. Throws only when `dir` itself
 * cannot be read; damaged files are reported, not thrown.
 */
export async function inspectDataDir(dir: string): Promise<DataDirReport> {
  const info = await Deno.stat(dir);
  if (!info.isDirectory) throw new Error(`${dir} is not a directory`);
  const report: DataDirReport = {
    dir,
    locked: isLocked(dir),
    meta: null,
    snapshots: [],
    segments: [],
  };
  if (report.locked) {
    // The holder writes its PID there; it is only a hint for the operator.
    const text = await Deno.readTextFile(join(dir, LOCK_FILE_NAME)).catch(() => "");
    const pid = Number(text.trim());
    if (Number.isSafeInteger(pid) && pid > 0) report.lockPid = pid;
  }
  const metaPath = join(dir, "raft_meta", META_FILE_NAME);
  try {
    report.meta = decodeMeta(await Deno.readFile(metaPath), metaPath);
  } catch (error) {
    report.metaProblem = error instanceof Deno.errors.NotFound
      ? `no meta file ${metaPath}`
      : problemOf(error);
  }
  const snapshotDir = join(dir, "snapshot");
  for (const name of (await listNames(snapshotDir, SNAPSHOT_FILE_EXTENSION)).reverse()) {
    const path = join(snapshotDir, name);
    const bytes = await Deno.readFile(path);
    try {
      const snapshot = decodeSnapshot(bytes, path);
      report.snapshots.push({ path, bytes: bytes.length, snapshot, fileBytes: bytes });
    } catch (error) {
      report.snapshots.push({
        path,
        bytes: bytes.length,
        snapshot: null,
        fileBytes: null,
        problem: problemOf(error),
      });
    }
  }
  const logDir = join(dir, "log");
  for (const name of await listNames(logDir, SEGMENT_FILE_EXTENSION)) {
    const path = join(logDir, name);
    report.segments.push(inspectSegment(path, await Deno.readFile(path)));
  }
  return report;
}

/**
 * Bytes of records in the host journal of the data root `root` (`root/journal/*.jnl`, headers
 * not counted): appends a running or stopped node made durable there that its groups' logs may
 * not hold yet (the next start replays them). 0 when there is no journal.
 */
export async function journalRecordBytes(root: string): Promise<number> {
  const dir = join(root, JOURNAL_DIR_NAME);
  let bytes = 0;
  try {
    for await (const item of Deno.readDir(dir)) {
      if (!item.isFile || parseJournalFileName(item.name) < 0) continue;
      const size = (await Deno.stat(join(dir, item.name))).size;
      bytes += Math.max(0, size - JOURNAL_HEADER_BYTES);
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return 0;
    throw error;
  }
  return bytes;
}
