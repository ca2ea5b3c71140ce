/**
 * Shared helpers for the storage tests.
 *
 * @module
 */

import { Logger } from "../../lib/logging/logger.ts";
import { type Entry, EntryType } from "../../lib/raft/types.ts";

/** A temp directory that is removed when the test is done with it (`await using`). */
export interface TempDir extends AsyncDisposable {
  /** Its path. */
  path: string;
}

/** Makes a temp directory; use it with `await using`. */
export async function tempDir(prefix = "storage_test_"): Promise<TempDir> {
  const path = await Deno.makeTempDir({ prefix });
  return {
    path,
    [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }),
  };
}

/** A logger that keeps its lines, for asserting on warnings. */
export function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ level: "debug", write: (line) => lines.push(line) }), lines };
}

/** Entries `first..first+count-1`, all in `term`, with data that tells them apart. */
export function makeEntries(first: number, count: number, term = 1, dataBytes = 16): Entry[] {
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) {
    const index = first + i;
    const data = new Uint8Array(dataBytes);
    for (let j = 0; j < dataBytes; j++) data[j] = (index * 31 + j * 7) & 0xff;
    entries.push({
      index,
      term,
      type: index % 5 === 0 ? EntryType.Config : EntryType.Normal,
      data,
    });
  }
  return entries;
}

/** Entries as plain objects with `data` as number arrays, for deep comparisons. */
export function plain(entries: readonly Entry[]): unknown[] {
  return entries.map((e) => ({ index: e.index, term: e.term, type: e.type, data: [...e.data] }));
}

/** Names of the files in `dir`, sorted. */
export async function listNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const item of Deno.readDir(dir)) names.push(item.name);
  return names.sort();
}
