/**
 * Records which paths are flushed (`sync` and `syncData` of handles opened by `Deno.open`)
 * while it is in use, and which path each handle is: for tests of what an open flushes before
 * it acts on what it read, and of faults aimed at one file.
 *
 * @module
 */

import { resolve } from "node:path";

/** The paths flushed since the spy was created, in order; restores `Deno.open` when disposed. */
export class SyncSpy implements Disposable {
  readonly flushed: string[] = [];
  readonly #open = Deno.open;
  readonly #sync = Deno.FsFile.prototype.sync;
  readonly #syncData = Deno.FsFile.prototype.syncData;
  readonly #paths = new WeakMap<Deno.FsFile, string>();

  constructor() {
    const paths = this.#paths;
    const open = this.#open;
    const flushed = this.flushed;
    const patchedOpen = async (path: string | URL, options?: Deno.OpenOptions) => {
      const file = await open(path, options);
      paths.set(file, resolve(String(path)));
      return file;
    };
    Object.assign(Deno, { open: patchedOpen });
    const sync = this.#sync;
    const syncData = this.#syncData;
    Deno.FsFile.prototype.sync = function (this: Deno.FsFile) {
      flushed.push(paths.get(this) ?? "?");
      return sync.call(this);
    };
    Deno.FsFile.prototype.syncData = function (this: Deno.FsFile) {
      flushed.push(paths.get(this) ?? "?");
      return syncData.call(this);
    };
  }

  /** The path `file` was opened with (absolute), or "?" for a handle opened before the spy. */
  pathOf(file: Deno.FsFile): string {
    return this.#paths.get(file) ?? "?";
  }

  [Symbol.dispose](): void {
    Object.assign(Deno, { open: this.#open });
    Deno.FsFile.prototype.sync = this.#sync;
    Deno.FsFile.prototype.syncData = this.#syncData;
  }
}
