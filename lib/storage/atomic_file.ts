/**
 * Crash-safe file replacement: after a crash a reader sees either the old file or the new one,
 * never a mix, never a partial file.
 *
 * The sequence is the classic one: write a temp file in the same directory (rename is only
 * atomic within one file system), fsync it (so the rename cannot reach the disk before the
 * data), rename it over the target, fsync the directory (so the rename itself survives).
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { writeAll } from "./_binary.ts";

/**
 * Suffix of the temp files {@linkcode writeFileAtomic} creates; after a crash, files ending in
 * it are garbage.
 */
export const TEMP_FILE_SUFFIX = ".tmp";

let tempSequence = 0;

/** True when `name` (a base name) is a temp file left by {@linkcode writeFileAtomic}. */
export function isTempFileName(name: string): boolean {
  return name.endsWith(TEMP_FILE_SUFFIX);
}

/**
 * Replaces the file at `path` with `bytes` atomically and durably: once the promise resolves
 * the new content survives a crash, and a crash before that leaves the old content.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic_file.ts";
 * await writeFileAtomic("/var/lib/counter/raft_meta/meta", new Uint8Array([1, 2, 3]));
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  // Unique per process and call so two writers never share a temp file; the data dir lock
  // keeps other processes out.
  tempSequence++;
  const tempPath = join(
    dir,
    `${basename(path)}.${Deno.pid}-${tempSequence}${TEMP_FILE_SUFFIX}`,
  );
  let renamed = false;
  try {
    const file = await Deno.open(tempPath, { write: true, createNew: true });
    try {
      await writeAll(file, bytes);
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tempPath, path);
    renamed = true;
    await syncDir(dir);
  } finally {
    // Best effort: the original error matters more than a failed clean-up, and a leftover temp
    // file is removed by the next open of its store.
    if (!renamed) await Deno.remove(tempPath).catch(() => {});
  }
}

/** True when something (a file, a directory, a link) is at `path`; other errors are thrown. */
export async function pathExists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Fsyncs the directory at `path`, making file creations, renames and deletions in it durable.
 *
 * Some platforms cannot fsync a directory: Windows refuses to open one as a file, and a few
 * file systems answer fsync on a directory with EINVAL or ENOTSUP. Only those specific errors
 * are ignored (there is nothing more to do there); every other error is thrown.
 */
export async function syncDir(path: string): Promise<void> {
  let dir: Deno.FsFile;
  try {
    dir = await Deno.open(path, { read: true });
  } catch (error) {
    if (Deno.build.os === "windows" && error instanceof Deno.errors.PermissionDenied) return;
    throw error;
  }
  try {
    await dir.sync();
  } catch (error) {
    if (!isDirSyncUnsupported(error)) throw error;
  } finally {
    dir.close();
  }
}

/**
 * Flushes the file at `path` (its data, `fdatasync`) through a handle of its own: a flush covers
 * the file whichever handle wrote it. A file that is gone was deleted, so there is nothing to
 * flush: that is not an error.
 */
export async function syncFileAt(path: string): Promise<void> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  try {
    await file.syncData();
  } finally {
    file.close();
  }
}

/** Cuts the file at `path` to `length` bytes and flushes it, so the cut survives a crash. */
export async function truncateDurably(path: string, length: number): Promise<void> {
  const file = await Deno.open(path, { write: true });
  try {
    await file.truncate(length);
    await file.syncData();
  } finally {
    file.close();
  }
}

/** Synchronous {@linkcode syncDir}, for code paths that must not yield (such as lock setup). */
export function syncDirSync(path: string): void {
  let dir: Deno.FsFile;
  try {
    dir = Deno.openSync(path, { read: true });
  } catch (error) {
    if (Deno.build.os === "windows" && error instanceof Deno.errors.PermissionDenied) return;
    throw error;
  }
  try {
    dir.syncSync();
  } catch (error) {
    if (!isDirSyncUnsupported(error)) throw error;
  } finally {
    dir.close();
  }
}

function isDirSyncUnsupported(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === "EINVAL" || code === "ENOTSUP" || code === "EOPNOTSUPP";
}
