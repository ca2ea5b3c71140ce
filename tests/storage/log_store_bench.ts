/**
 * Micro-benchmarks of the append hot path: one batch, one write, one fdatasync; and of the
 * write step alone, async against sync.
 *
 *     deno bench -A tests/storage/log_store_bench.ts
 *
 * The numbers are dominated by the disk's flush latency; the difference between the two
 * benches is the per-entry CPU cost (encoding and CRC) that group commit amortizes.
 *
 * @module
 */

import { type Entry, EntryType } from "../../lib/raft/types.ts";
import { crc32c } from "../../lib/storage/crc32c.ts";
import { LogStore } from "../../lib/storage/log_store.ts";
import type { LogJournal } from "../../lib/storage/journal.ts";
import { writeAll, writeAllSync } from "../../lib/storage/_binary.ts";
import { join } from "node:path";

const dir = await Deno.makeTempDir({ prefix: "log_store_bench_" });
const log = await LogStore.open(dir);
globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));

const DATA = new Uint8Array(16).fill(0xab);

function batch(count: number): Entry[] {
  const first = log.lastIndex() + 1;
  const entries: Entry[] = new Array(count);
  for (let i = 0; i < count; i++) {
    entries[i] = { index: first + i, term: 1, type: EntryType.Normal, data: DATA };
  }
  return entries;
}

Deno.bench("append 64 entries of 16 bytes + fdatasync", { group: "append" }, async (b) => {
  const entries = batch(64);
  b.start();
  await log.append(entries);
  b.end();
});

Deno.bench(
  "append 1 entry of 16 bytes + fdatasync",
  { group: "append", baseline: true },
  async (b) => {
    const entries = batch(1);
    b.start();
    await log.append(entries);
    b.end();
  },
);

const MIB = new Uint8Array(1024 * 1024).map((_, i) => i * 7);

Deno.bench("crc32c of 1 MiB", () => {
  crc32c(MIB);
});

// The write step of an append alone, without the flush: the async write hops to a blocking
// thread (and dups the fd) per call, the synchronous one copies into the page cache in place.
// Both rewrite the same bytes at the start of a scratch file.
const writeDir = await Deno.makeTempDir({ prefix: "log_store_bench_write_" });
globalThis.addEventListener("unload", () => Deno.removeSync(writeDir, { recursive: true }));
const writeFile = await Deno.open(join(writeDir, "scratch"), { create: true, write: true });
const RECORDS_64 = new Uint8Array(64 * (25 + 16)).fill(0xcd);

Deno.bench("write 64 records (2.6 KiB), async", { group: "write" }, async () => {
  writeFile.seekSync(0, Deno.SeekMode.Start);
  await writeAll(writeFile, RECORDS_64);
});

Deno.bench("write 64 records (2.6 KiB), sync", { group: "write", baseline: true }, () => {
  writeFile.seekSync(0, Deno.SeekMode.Start);
  writeAllSync(writeFile, RECORDS_64);
});

// The CPU of an append through the host journal, without the journal's write and flush: a
// stub journal copies the records into the segment (as the real one does once its flush
// returns) and resolves at once. What is left is the per-batch cost of the path itself: the
// promises and hops between the caller and the journal, the encoding, the segment `write`.
// A busy host pays it once per group batch.
const journalDir = await Deno.makeTempDir({ prefix: "log_store_bench_journal_" });
globalThis.addEventListener("unload", () => Deno.removeSync(journalDir, { recursive: true }));
const journaled = await LogStore.open(journalDir);
await journaled.append([{ index: 1, term: 1, type: EntryType.Normal, data: DATA }]);
const stubJournal: LogJournal = {
  append(_client, _group, _incarnation, _firstIndex, _count, _records, onDurable) {
    onDurable();
    return Promise.resolve();
  },
  checkpoint: () => Promise.resolve(),
  forget: () => {},
};
journaled.attachJournal(stubJournal, "bench", "0000000000000000");

Deno.bench(
  "append 4 entries of 16 bytes through a stub journal",
  { group: "journal" },
  async () => {
    const first = journaled.lastIndex() + 1;
    const entries: Entry[] = new Array(4);
    for (let i = 0; i < 4; i++) {
      entries[i] = { index: first + i, term: 1, type: EntryType.Normal, data: DATA };
    }
    await journaled.append(entries);
  },
);
