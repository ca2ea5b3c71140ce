/**
 * Errors the storage layer throws when the disk does not hold what it must.
 *
 * Each is its own class so the caller can tell "refuse to start, an operator must look" (all
 * of these) from an ordinary I/O error, and so tests can match on the kind.
 *
 * @module
 */

/** A file's bytes fail a checksum or format check at a place where a crash cannot explain it. */
export class StorageCorruptionError extends Error {
  /** The file holding the bad bytes. */
  readonly path: string;
  /** Byte offset of the bad data in `path`. */
  readonly offset: number;

  /** Creates the error; `message` should already name the file and offset. */
  constructor(message: string, path: string, offset: number) {
    super(message);
    this.name = "StorageCorruptionError";
    this.path = path;
    this.offset = offset;
  }
}

/** The data dir is locked by another process (or another open in this one). */
export class DataDirLockedError extends Error {
  /** The data dir. */
  readonly dir: string;
  /** The lock file inside it. */
  readonly lockPath: string;

  /** Creates the error for `dir` locked through `lockPath`. */
  constructor(dir: string, lockPath: string) {
    super(`data dir ${dir} is in use by another process (lock file ${lockPath})`);
    this.name = "DataDirLockedError";
    this.dir = dir;
    this.lockPath = lockPath;
  }
}

/** The data dir belongs to another node or group than the one opening it. */
export class DataDirMismatchError extends Error {
  /** Creates the error; see {@linkcode DataDirMismatchError}. */
  constructor(message: string) {
    super(message);
    this.name = "DataDirMismatchError";
  }
}

/** A file is in a format (magic or version) this build does not read. */
export class UnsupportedFormatError extends Error {
  /** The file. */
  readonly path: string;

  /** Creates the error; `message` should already name the file. */
  constructor(message: string, path: string) {
    super(message);
    this.name = "UnsupportedFormatError";
    this.path = path;
  }
}
