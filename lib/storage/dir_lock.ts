/**
 * One process per data dir.
 *
 * Two nodes writing one Raft log would corrupt it and could vote twice in a term, so the dir is
 * locked with an exclusive advisory lock (`flock` on Unix, `LockFileEx` on Windows) on the file
 * `DIR/LOCK`. The kernel drops the lock when the process dies, however it dies, so there is no
 * stale lock to clean up, unlike a PID file. The attempt uses the non-blocking `tryLockSync`,
 * so opening a dir in use fails at once instead of hanging, and leaves no pending op behind.
 *
 * @module
 */

import { join } from "node:path";
import { DataDirLockedError } from "./errors.ts";

/** Name of the lock file inside a data dir. */
export const LOCK_FILE_NAME = "LOCK";

const encoder = new TextEncoder();

/** An exclusive lock on a data dir, held until {@linkcode DirLock.release} or process exit. */
export class DirLock {
  #file: Deno.FsFile | null;
  #dir: string;
  #path: string;

  private constructor(file: Deno.FsFile, dir: string, path: string) {
    this.#file = file;
    this.#dir = dir;
    this.#path = path;
  }

  /**
   * Locks the existing directory `dir`, or throws {@linkcode DataDirLockedError} at once when
   * another process (or another lock in this process) holds it.
   *
   * @example
   * ```ts
   * import { DirLock } from "./dir_lock.ts";
   * const lock = DirLock.acquire("/var/lib/counter");
   * // ... use the dir ...
   * lock.release();
   * ```
   */
  static acquire(dir: string): DirLock {
    const path = join(dir, LOCK_FILE_NAME);
    const file = Deno.openSync(path, { read: true, write: true, create: true });
    let locked = false;
    try {
      locked = file.tryLockSync(true);
    } finally {
      if (!locked) file.close();
    }
    if (!locked) throw new DataDirLockedError(dir, path);
    try {
      // The PID is only for an operator wondering who holds the dir; the lock is the flock.
      file.truncateSync(0);
      const bytes = encoder.encode(`${Deno.pid}\n`);
      let written = 0;
      while (written < bytes.length) written += file.writeSync(bytes.subarray(written));
    } catch (error) {
      file.close();
      throw error;
    }
    return new DirLock(file, dir, path);
  }

  /** The locked directory. */
  get dir(): string {
    return this.#dir;
  }

  /** The lock file. */
  get path(): string {
    return this.#path;
  }

  /** True until {@linkcode DirLock.release}. */
  get held(): boolean {
    return this.#file !== null;
  }

  /** Releases the lock; calling it again does nothing. The lock file stays (it is harmless). */
  release(): void {
    const file = this.#file;
    if (file === null) return;
    this.#file = null;
    // Closing the descriptor drops the flock; no explicit unlock needed (nor a pending op).
    file.close();
  }
}
