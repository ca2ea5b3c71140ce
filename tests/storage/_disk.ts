/**
 * A crash model for storage tests: which bytes of each file an `fsync`/`fdatasync` made durable,
 * and what a power cut leaves of the rest.
 *
 * @module
 */

import { join, resolve } from "node:path";

/** How a power cut treats the bytes written since a file's last flush. */
export type CutMode =
  /** They never reached the disk: the file ends where it was flushed. */
  | "lose"
  /** The size update did, the data did not: they read as zeros. */
  | "zeros"
  /** All did but the first sector of them: it reads as zeros, valid records follow it. */
  | "hole"
  /** All did (the page cache was written back before the cut). */
  | "none";

/**
 * Records, for every file opened through `Deno.open`, how long it was when a flush of it
 * returned: with {@linkcode Disk.cut} and {@linkcode Disk.apply}, a test cuts the power at any
 * moment. Patches `Deno.open` and `Deno.FsFile.prototype.sync{,Data}` until disposed.
 */
export class Disk implements Disposable {
  readonly #durable = new Map<string, number>();
  readonly #flushes = new Map<string, number>();
  /** Per file, the start number of the flush whose size `#durable` holds. */
  readonly #durableStart = new Map<string, number>();
  #flushStarts = 0;
  readonly #paths = new WeakMap<Deno.FsFile, string>();
  readonly #open = Deno.open;
  readonly #syncData = Deno.FsFile.prototype.syncData;
  readonly #sync = Deno.FsFile.prototype.sync;

  constructor() {
    const open = this.#open;
    const paths = this.#paths;
    (Deno as { open: typeof Deno.open }).open = async (path, options) => {
      const file = await open(path, options);
      paths.set(file, resolve(String(path)));
      return file;
    };
    const noteFlush = (path: string, size: number, start: number) => {
      this.#flushes.set(path, (this.#flushes.get(path) ?? 0) + 1);
      // Two flushes of one file may overlap (a journal checkpoint's and the log's own): what a
      // flush guarantees is what the file held when it started, so the one started last wins,
      // whichever returns last (a truncation in between makes that one the smaller).
      if (start < (this.#durableStart.get(path) ?? 0)) return;
      this.#durableStart.set(path, start);
      this.#durable.set(path, size);
    };
    const nextStart = () => ++this.#flushStarts;
    const wrap = (original: () => Promise<void>) =>
      function (this: Deno.FsFile): Promise<void> {
        const path = paths.get(this);
        // The size when the flush starts: bytes written while it runs may not be covered.
        const size = path === undefined ? 0 : this.statSync().size;
        const start = nextStart();
        return original.call(this).then(() => {
          if (path !== undefined) noteFlush(path, size, start);
        });
      };
    Deno.FsFile.prototype.syncData = wrap(this.#syncData);
    Deno.FsFile.prototype.sync = wrap(this.#sync);
  }

  [Symbol.dispose](): void {
    (Deno as { open: typeof Deno.open }).open = this.#open;
    Deno.FsFile.prototype.syncData = this.#syncData;
    Deno.FsFile.prototype.sync = this.#sync;
  }

  /** Flushes of `path` that returned so far. */
  flushes(path: string): number {
    return this.#flushes.get(resolve(path)) ?? 0;
  }

  /** Bytes of `path` a flush made durable (0 when it was never flushed). */
  durable(path: string): number {
    return this.#durable.get(resolve(path)) ?? 0;
  }

  /** Cuts the power now: what every segment and journal file under `root` keeps. */
  async cut(root: string): Promise<Map<string, number>> {
    const kept = new Map<string, number>();
    for (const path of await walk(root)) {
      if (path.endsWith(".log") || path.endsWith(".jnl")) kept.set(path, this.durable(path));
    }
    return kept;
  }

  /**
   * The process died when `kept` was taken, the machine did not: the files keep every byte
   * written (the page cache is written back some time), but the flushes that ran after that
   * moment (while the test closed the dead process's handles) never happened.
   */
  processDied(kept: Map<string, number>): void {
    for (const [path, size] of kept) this.#durable.set(path, size);
  }

  /**
   * Makes the files what the power cut `kept` left (call it once the processes' handles are
   * closed). Returns how many files lost bytes.
   */
  async apply(root: string, kept: Map<string, number>, mode: CutMode): Promise<number> {
    let damaged = 0;
    for (const path of await walk(root)) {
      if (!path.endsWith(".log") && !path.endsWith(".jnl")) continue;
      const durable = kept.get(path);
      if (durable === undefined) throw new Error(`${path} was created after the power cut`);
      const bytes = await Deno.readFile(path);
      // From here on the file holds what the cut left on the disk, durably; the flushes that
      // ran after the cut (the test closing the dead process's handles) never happened.
      if (durable >= bytes.length || mode === "none") {
        this.#durable.set(path, bytes.length);
        continue;
      }
      this.#durable.set(path, durable);
      damaged++;
      if (mode === "lose") {
        await Deno.truncate(path, durable);
        continue;
      }
      const end = mode === "zeros"
        ? bytes.length
        : Math.min(bytes.length, (Math.floor(durable / 512) + 1) * 512);
      bytes.fill(0, durable, end);
      await Deno.writeFile(path, bytes);
    }
    return damaged;
  }
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const item of Deno.readDir(dir)) {
    const path = join(dir, item.name);
    if (item.isDirectory) out.push(...await walk(path));
    else if (item.isFile) out.push(path);
  }
  return out;
}
