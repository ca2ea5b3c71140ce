/**
 * Tests of the host journal (lib/storage/journal.ts) with the logs that append through it.
 *
 * Crashes are simulated with `Disk` (./_disk.ts): it records how long each file was when an
 * `fsync`/`fdatasync` of it returned, and a power cut leaves each log segment and journal file
 * with only those bytes (or with the unflushed bytes zeroed, or with one sector of them zeroed),
 * so a test checks what the code made durable, not what it happened to leave in the page cache.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Snapshot } from "../../lib/raft/types.ts";
import {
  HostJournal,
  JOURNAL_FLOOR_FILE_NAME,
  JOURNAL_HEADER_BYTES,
  type JournalClient,
  journalFileName,
} from "../../lib/storage/journal.ts";
import {
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_FIXED_BYTES,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from "../../lib/storage/log_store.ts";
import {
  DataDir,
  JOURNAL_DIR_NAME,
  LOG_DIR_NAME,
  StorageCorruptionError,
} from "../../lib/storage/mod.ts";
import type { Logger } from "../../lib/logging/logger.ts";
import { captureLogger, listNames, makeEntries, plain, tempDir } from "./_helpers.ts";
import { Disk } from "./_disk.ts";
import {
  abandonHost,
  crash,
  groupDir,
  killHost,
  NODE_ID,
  startHost,
  stopHost,
} from "./_journal_host.ts";
import { failCalls } from "./_faults.ts";
import { SyncSpy } from "./_sync_spy.ts";

/** Entry data size used by most tests: a record is then 125 bytes. */
const DATA = 100;
const RECORD = RECORD_HEADER_BYTES + RECORD_PAYLOAD_FIXED_BYTES + DATA;
/** Bytes a journal frame adds around its appends: its length and CRC. */
const FRAME_OVERHEAD = 8;
/** Bytes an append of a group named with `n` bytes adds inside a frame, beyond its entries. */
const itemOverhead = (n: number) => 4 + 2 + n + 16 + 12;
/** Bytes a flush of one append adds to the journal, beyond its entries. */
const journalOverhead = (n: number) => FRAME_OVERHEAD + itemOverhead(n);

function segmentPath(root: string, group: string, firstIndex = 1): string {
  return join(groupDir(root, group), LOG_DIR_NAME, segmentFileName(firstIndex));
}

function journalPath(root: string, sequence: number): string {
  return join(root, JOURNAL_DIR_NAME, journalFileName(sequence));
}

async function allEntries(dir: DataDir) {
  return plain(await dir.entries(dir.firstIndex(), dir.lastIndex() + 1));
}

function makeSnapshot(index: number, term: number): Snapshot {
  return {
    index,
    term,
    conf: { voters: [NODE_ID], learners: [] },
    data: new Uint8Array([index & 0xff, term & 0xff]),
  };
}

Deno.test("appends of several groups in one turn: one journal write and flush, then the segments", async () => {
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const groups = ["g0", "g1", "g2", "g3", "g4", "g5"];
  const host = await startHost(root, groups);
  try {
    const jnl = journalPath(root, 1);
    assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(1)]);
    // A group's first batch creates its segment: that one is flushed by the log, not journaled.
    for (const group of groups) await host.dirs.get(group)!.append(makeEntries(1, 1, 1, DATA));
    assert.equal((await Deno.stat(jnl)).size, JOURNAL_HEADER_BYTES);
    const flushes = disk.flushes(jnl);
    const segmentSizes = await Promise.all(
      groups.map(async (g) => (await Deno.stat(segmentPath(root, g))).size),
    );
    for (const [k, g] of groups.entries()) {
      assert.equal(disk.durable(segmentPath(root, g)), segmentSizes[k], "first batch flushed");
    }

    // Every group appends in the same turn; each append notes the journal's flushes when it
    // resolves.
    const batches = groups.map((_, k) => makeEntries(2, k + 1, 1, DATA));
    const flushesSeen: number[] = [];
    await Promise.all(
      groups.map((g, k) =>
        host.dirs.get(g)!.append(batches[k]).then(() => flushesSeen.push(disk.flushes(jnl)))
      ),
    );
    assert.equal(disk.flushes(jnl), flushes + 1, "one fdatasync of the journal for the turn");
    assert.deepEqual(flushesSeen, groups.map(() => flushes + 1), "resolved after that flush");
    // One frame for the turn, holding every group's append.
    let grown = FRAME_OVERHEAD;
    for (const batch of batches) grown += itemOverhead(2) + batch.length * RECORD;
    const journalBytes = JOURNAL_HEADER_BYTES + grown;
    assert.equal((await Deno.stat(jnl)).size, journalBytes);
    assert.equal(host.journal.fileBytes, journalBytes);
    assert.equal(disk.durable(jnl), journalBytes, "the journal holds the records durably");

    for (const [k, g] of groups.entries()) {
      const path = segmentPath(root, g);
      // Held by the log, not written per append: the journal holds them.
      assert.equal((await Deno.stat(path)).size, segmentSizes[k], "no segment write per append");
      const dir = host.dirs.get(g)!;
      // A read writes them first (not flushed).
      assert.deepEqual(
        await allEntries(dir),
        plain([...makeEntries(1, 1, 1, DATA), ...batches[k]]),
      );
      assert.equal((await Deno.stat(path)).size, segmentSizes[k] + batches[k].length * RECORD);
      assert.equal(disk.durable(path), segmentSizes[k], "the segment is not flushed per append");
    }

    // The journal's records are exactly the bytes appended to each segment: read them back as
    // a start would, from a copy.
    await using copy = await tempDir("journal_copy_");
    await Deno.mkdir(join(copy.path, JOURNAL_DIR_NAME));
    await Deno.copyFile(jnl, journalPath(copy.path, 1));
    const reread = await HostJournal.open(copy.path);
    assert.deepEqual(reread.recoveredGroups().sort(), groups);
    for (const [k, g] of groups.entries()) {
      const incarnation = host.dirs.get(g)!.incarnation();
      const records = reread.recoveredRecords(g, incarnation);
      assert.deepEqual(records.map((r) => [r.group, r.firstIndex, r.count]), [[g, 2, k + 1]]);
      const segment = await Deno.readFile(segmentPath(root, g));
      assert.deepEqual([...records[0].records], [...segment.subarray(segmentSizes[k])]);
      assert.equal(records[0].path, journalPath(copy.path, 1));
    }

    // The next turn is one more flush, whatever the number of groups in it.
    await Promise.all(groups.map((g, k) => host.dirs.get(g)!.append(makeEntries(k + 3, 1, 1))));
    assert.equal(disk.flushes(jnl), flushes + 2);
  } finally {
    await stopHost(host);
  }
});

for (const mode of ["lose", "zeros", "hole", "none"] as const) {
  Deno.test(`a power cut (${mode}) loses no acknowledged entry of any group`, async () => {
    using disk = new Disk();
    await using tmp = await tempDir("journal_test_");
    const root = tmp.path;
    const groups = ["a", "b"];
    let host = await startHost(root, groups);
    const expected = new Map<string, ReturnType<typeof makeEntries>>();
    for (const g of groups) {
      const first = makeEntries(1, 1, 1, DATA);
      await host.dirs.get(g)!.append(first);
      expected.set(g, first);
    }
    const flushedSizes = groups.map((g) => disk.durable(segmentPath(root, g)));
    // Four turns of journaled batches: about 2.5 KB, five sectors, of unflushed tail per group.
    for (let turn = 0; turn < 4; turn++) {
      await Promise.all(groups.map((g, k) => {
        const batch = makeEntries(2 + turn * 5, 5, 1 + k, DATA);
        expected.get(g)!.push(...batch);
        return host.dirs.get(g)!.append(batch);
      }));
    }
    for (const [k, g] of groups.entries()) {
      assert.equal(disk.durable(segmentPath(root, g)), flushedSizes[k], "tail not flushed");
    }
    const damaged = await crash(disk, root, host, mode);
    // Both segments lose their tail; the journal lost nothing (it was flushed).
    assert.equal(damaged, mode === "none" ? 0 : 2);
    if (mode === "lose") {
      for (const [k, g] of groups.entries()) {
        assert.equal((await Deno.stat(segmentPath(root, g))).size, flushedSizes[k]);
      }
    }

    const { logger, lines } = captureLogger();
    host = await startHost(root, groups, { logger, disk });
    try {
      for (const g of groups) {
        const dir = host.dirs.get(g)!;
        assert.deepEqual(await allEntries(dir), plain(expected.get(g)!), `group ${g}`);
        assert.deepEqual(plain(dir.recovered().entries), plain(expected.get(g)!));
        // The replay flushed the log: the journal file that held its records is gone.
        const path = segmentPath(root, g);
        assert.equal(disk.durable(path), (await Deno.stat(path)).size, `${g} flushed at replay`);
      }
      assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)]);
      const cutTail = lines.filter((l) => l.includes("cutting the log's unflushed tail"));
      assert.equal(cutTail.length, mode === "zeros" || mode === "hole" ? 2 : 0, lines.join("\n"));
      // The groups append again through the new file.
      for (const g of groups) await host.dirs.get(g)!.append(makeEntries(22, 1, 3, DATA));
      assert.equal(host.journal.fileBytes > JOURNAL_HEADER_BYTES, true);
    } finally {
      await stopHost(host);
    }
  });
}

Deno.test("a restart after a process crash flushes what the replay finds already in the logs", async () => {
  // The dead process's segment tails are in the page cache: the replay reads them back and has
  // nothing to write, but the journal files that made them durable go at the end of the start.
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const groups = ["a", "b"];
  let host = await startHost(root, groups);
  for (const g of groups) {
    const dir = host.dirs.get(g)!;
    await dir.append(makeEntries(1, 1, 1, DATA));
    await dir.append(makeEntries(2, 5, 1, DATA));
    await dir.append(makeEntries(7, 5, 1, DATA));
  }
  await killHost(disk, root, host);
  const { logger, lines } = captureLogger();
  host = await startHost(root, groups, { logger, disk });
  const replayed = lines.filter((l) => l.includes("replayed the host journal"));
  assert.equal(replayed.length, 2, lines.join("\n"));
  assert.ok(replayed.every((l) => l.includes("entriesWritten=0")), replayed.join("\n"));
  assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)]);
  // Now the power fails.
  await crash(disk, root, host, "lose");
  host = await startHost(root, groups);
  try {
    for (const g of groups) {
      assert.deepEqual(await allEntries(host.dirs.get(g)!), plain(makeEntries(1, 11, 1, DATA)));
    }
  } finally {
    await stopHost(host);
  }
});

Deno.test("damage below the first index the journal holds is an error; at or above it, repaired", async () => {
  for (const damagedIndex of [4, 11]) {
    using disk = new Disk();
    await using tmp = await tempDir("journal_test_");
    const root = tmp.path;
    const host = await startHost(root, ["a"]);
    const dir = host.dirs.get("a")!;
    await dir.append(makeEntries(1, 1, 1, DATA));
    await dir.append(makeEntries(2, 4, 1, DATA));
    await dir.append(makeEntries(6, 4, 1, DATA));
    // A checkpoint flushes entries 1..9 into the segment and drops their journal records.
    await host.journal.checkpoint();
    await dir.append(makeEntries(10, 4, 1, DATA));
    const segment = segmentPath(root, "a");
    assert.equal(disk.durable(segment), SEGMENT_HEADER_BYTES + 9 * RECORD);
    // Nothing lost to the cut: the only damage is a flipped bit in entry `damagedIndex`.
    await crash(disk, root, host, "none");
    const offset = SEGMENT_HEADER_BYTES + (damagedIndex - 1) * RECORD;
    const bytes = await Deno.readFile(segment);
    bytes[offset + RECORD_HEADER_BYTES + RECORD_PAYLOAD_FIXED_BYTES + 10] ^= 0x10;
    await Deno.writeFile(segment, bytes);

    if (damagedIndex < 10) {
      await assert.rejects(startHost(root, ["a"]), (e: unknown) => {
        assert.ok(e instanceof StorageCorruptionError, String(e));
        assert.equal(e.path, segment, e.message);
        assert.equal(e.offset, offset, e.message);
        assert.match(e.message, /record checksum/);
        return true;
      });
      // Nothing was deleted: the journal's file stays for an operator.
      assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)]);
    } else {
      const { logger, lines } = captureLogger();
      const again = await startHost(root, ["a"], { logger });
      try {
        assert.deepEqual(
          await allEntries(again.dirs.get("a")!),
          plain(makeEntries(1, 13, 1, DATA)),
        );
        assert.ok(lines.some((l) => l.includes("cutting the log's unflushed tail")));
      } finally {
        await stopHost(again);
      }
    }
  }
});

/** A log stand-in for journal-only tests: nothing to flush. */
const noClient: JournalClient = {
  unflushedPath: () => null,
  markFlushed: () => {},
  writeHeld: () => {},
};
const INCARNATION = "0123456789abcdef";

/** Bytes standing in for a record's entries: the journal does not decode them. */
function payload(k: number, bytes: number): Uint8Array {
  return Uint8Array.from({ length: bytes }, (_, i) => (k * 7 + i) & 0xff);
}

/**
 * Writes journal file 1 (or `sequence`) under `root` with one append record per element of
 * `sizes` (record k holds entry k + 1); returns each record's offset and the file's bytes.
 */
async function writeJournal(
  root: string,
  sizes: number[],
): Promise<{ path: string; offsets: number[]; bytes: Uint8Array }> {
  const journal = await HostJournal.open(root);
  await journal.finishRecovery();
  const names = await listNames(join(root, JOURNAL_DIR_NAME));
  assert.equal(names.length, 1);
  const path = join(root, JOURNAL_DIR_NAME, names[0]);
  const offsets: number[] = [];
  let offset = JOURNAL_HEADER_BYTES;
  for (const [k, size] of sizes.entries()) {
    offsets.push(offset);
    await journal.append(noClient, "g", INCARNATION, k + 1, 1, payload(k, size), () => {});
    offset += journalOverhead(1) + size;
  }
  await journal.close();
  const bytes = await Deno.readFile(path);
  assert.equal(bytes.length, offset);
  return { path, offsets, bytes };
}

async function readBack(root: string, logger?: Logger) {
  const journal = await HostJournal.open(root, { logger });
  return journal.recoveredRecords("g", INCARNATION).map((r) => ({
    firstIndex: r.firstIndex,
    count: r.count,
    records: [...r.records],
  }));
}

function expectedRecords(sizes: number[]) {
  return sizes.map((size, k) => ({ firstIndex: k + 1, count: 1, records: [...payload(k, size)] }));
}

Deno.test("a torn journal tail is cut with nothing lost before it", async () => {
  await using tmp = await tempDir("journal_test_");
  const sizes = [40, 300, 700];
  const { path, offsets, bytes } = await writeJournal(tmp.path, sizes);
  const last = offsets[2];
  assert.deepEqual(await readBack(tmp.path), expectedRecords(sizes));

  // The file ends anywhere inside the last record: the write was cut short.
  for (let cut = last; cut < bytes.length; cut += cut - last < 16 ? 1 : 37) {
    await Deno.writeFile(path, bytes.subarray(0, cut));
    const { logger, lines } = captureLogger();
    assert.deepEqual(
      await readBack(tmp.path, logger),
      expectedRecords(sizes.slice(0, 2)),
      `${cut}`,
    );
    assert.equal((await Deno.stat(path)).size, last, `cut ${cut}: the file is cut at the record`);
    assert.equal(lines.some((l) => l.includes("cutting a torn record")), cut > last, `cut ${cut}`);
  }

  // The size update reached the disk but a sector of the data did not: it reads as zeros.
  const zeroed = bytes.slice();
  const sector = Math.ceil((last + 20) / 512) * 512;
  assert.ok(sector + 512 <= zeroed.length);
  zeroed.fill(0, sector, sector + 512);
  await Deno.writeFile(path, zeroed);
  const { logger, lines } = captureLogger();
  assert.deepEqual(await readBack(tmp.path, logger), expectedRecords(sizes.slice(0, 2)));
  assert.equal((await Deno.stat(path)).size, last);
  assert.ok(lines.some((l) => l.includes("cutting a torn record")));
});

Deno.test("a bad journal record that a crash does not explain is an error", async () => {
  await using tmp = await tempDir("journal_test_");
  const sizes = [40, 1200, 60];
  const { path, offsets, bytes } = await writeJournal(tmp.path, sizes);
  const cases: [string, (b: Uint8Array) => void, number, RegExp][] = [
    ["a flipped bit, valid records after", (b) => b[offsets[1] + 100] ^= 1, offsets[1], /damage/],
    [
      "a zeroed sector, valid records after",
      (b) => b.fill(0, 512, 1024),
      offsets[1],
      /valid records follow/,
    ],
    [
      "a flipped bit in the whole last record",
      (b) => b[offsets[2] + 50] ^= 1,
      offsets[2],
      /damage/,
    ],
  ];
  for (const [what, damage, offset, why] of cases) {
    const bad = bytes.slice();
    damage(bad);
    await Deno.writeFile(path, bad);
    await assert.rejects(readBack(tmp.path), (e: unknown) => {
      assert.ok(e instanceof StorageCorruptionError, `${what}: ${e}`);
      assert.equal(e.path, path, what);
      assert.equal(e.offset, offset, what);
      assert.match(e.message, why, what);
      return true;
    });
    // The file is left as it was, for an operator.
    assert.deepEqual(await Deno.readFile(path), bad, what);
  }
});

Deno.test("only the newest journal file may have a torn tail; unknown files are ignored", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const dir = join(root, JOURNAL_DIR_NAME);
  // File 1, then file 2 written after a start that read file 1: both left, as by a crash
  // between a rotation's new file and the old one's removal.
  const first = await writeJournal(root, [50, 50]);
  const second = await writeJournal(root, [70]);
  await Deno.writeFile(first.path, first.bytes);
  assert.deepEqual(await listNames(dir), [journalFileName(1), journalFileName(2)]);
  const journal = await HostJournal.open(root);
  assert.deepEqual(
    journal.recoveredRecords("g", INCARNATION).map((r) => [r.firstIndex, r.path]),
    [[1, first.path], [2, first.path], [1, second.path]],
  );

  // Unknown names are left alone, with a warning.
  await Deno.writeTextFile(join(dir, "notes.txt"), "hello");
  await Deno.writeFile(join(dir, "00001.jnl"), first.bytes);
  await Deno.mkdir(join(dir, journalFileName(7)));
  let { logger, lines } = captureLogger();
  assert.equal((await readBack(root, logger)).length, 3);
  for (const name of ["notes.txt", "00001.jnl", journalFileName(7)]) {
    assert.ok(
      lines.some((l) => l.includes("ignoring an unknown file") && l.includes(name)),
      `${name}: ${lines.join("\n")}`,
    );
  }

  // A torn tail in the older file cannot be a crash: its records were all flushed before the
  // newer file was created.
  await Deno.writeFile(first.path, first.bytes.subarray(0, first.bytes.length - 10));
  await assert.rejects(HostJournal.open(root), (e: unknown) => {
    assert.ok(e instanceof StorageCorruptionError, String(e));
    assert.equal(e.path, first.path);
    assert.equal(e.offset, first.offsets[1]);
    return true;
  });
  assert.equal((await Deno.stat(first.path)).size, first.bytes.length - 10, "not cut");
  await Deno.writeFile(first.path, first.bytes);

  // A newer file with a torn header (a rotation's, which a crash cut right after it was created)
  // holds nothing.
  const third = join(dir, journalFileName(3));
  await Deno.writeFile(third, second.bytes.subarray(0, 11));
  ({ logger, lines } = captureLogger());
  assert.deepEqual(
    (await HostJournal.open(root, { logger })).recoveredRecords("g", INCARNATION).map((r) =>
      r.path
    ),
    [first.path, first.path, second.path],
  );
  assert.ok(lines.some((l) => l.includes("header is torn")));
  // ...and is removed, so that a later file never leaves it torn but no longer newest.
  assert.ok(!(await listNames(dir)).includes(journalFileName(3)), "the torn newest file is gone");
  // The file a start began (journal-floor names it) was flushed whole: its header torn is damage.
  await Deno.writeFile(second.path, second.bytes.subarray(0, 11));
  await assert.rejects(HostJournal.open(root), StorageCorruptionError);
  await Deno.writeFile(second.path, second.bytes);
  // The older one's header torn is damage.
  await Deno.writeFile(first.path, first.bytes.subarray(0, 11));
  await assert.rejects(HostJournal.open(root), StorageCorruptionError);
});

Deno.test("deleted journal files are an error, not a silent loss", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const dir = join(root, JOURNAL_DIR_NAME);
  const first = await writeJournal(root, [50]);
  const second = await writeJournal(root, [70]);
  assert.equal((await Deno.readTextFile(join(root, JOURNAL_FLOOR_FILE_NAME))).trim(), "2");
  // The journal's folder emptied (or replaced by an older copy): the start refuses, naming it.
  for (const name of await listNames(dir)) await Deno.remove(join(dir, name));
  await assert.rejects(HostJournal.open(root), (e: unknown) => {
    assert.ok(e instanceof StorageCorruptionError, String(e));
    assert.match(e.message, /journal lost files/);
    assert.match(e.message, new RegExp(journalFileName(2)));
    return true;
  });
  await Deno.writeFile(join(dir, journalFileName(1)), first.bytes);
  await assert.rejects(HostJournal.open(root), /its newest is 0+1\.jnl/);
  // With the file back, the start proceeds (the older file's record too).
  await Deno.writeFile(second.path, second.bytes);
  assert.equal((await readBack(root)).length, 2);
});

Deno.test("a cut suffix never comes back from the journal", async () => {
  // Both with the replacing batch in the same segment (journaled) and starting a new segment
  // (flushed by the log, not journaled), and with the power cut losing what was not flushed or
  // nothing.
  const segmentBytesMax = SEGMENT_HEADER_BYTES + 7 * RECORD;
  for (const rolls of [false, true]) {
    for (const mode of ["lose", "none"] as const) {
      const what = `${rolls ? "new segment" : "same segment"}, ${mode}`;
      using disk = new Disk();
      await using tmp = await tempDir("journal_test_");
      const root = tmp.path;
      const options = { segmentBytesMax: rolls ? segmentBytesMax : undefined };
      let host = await startHost(root, ["a"], options);
      const dir = host.dirs.get("a")!;
      await dir.append(makeEntries(1, 1, 1, DATA));
      await dir.append(makeEntries(2, 5, 1, DATA));
      await dir.append(makeEntries(7, 4, 1, DATA));
      if (rolls) {
        assert.deepEqual(dir.lastIndex(), 10);
        assert.equal(await Deno.stat(segmentPath(root, "a", 8)).then(() => true), true);
      }
      // A new leader's entries 6..8 in term 2 replace 6..10 of term 1.
      await dir.append(makeEntries(6, 3, 2, DATA));
      const expected = plain([...makeEntries(1, 5, 1, DATA), ...makeEntries(6, 3, 2, DATA)]);
      assert.deepEqual(await allEntries(dir), expected, what);
      // The cut started a new journal file: records of entries 2..10 of term 1 are gone.
      assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)], what);
      await crash(disk, root, host, mode);

      host = await startHost(root, ["a"], options);
      try {
        assert.deepEqual(await allEntries(host.dirs.get("a")!), expected, what);
      } finally {
        await stopHost(host);
      }
    }
  }
});

Deno.test("a batch that starts a segment flushes the journaled tail of the one before", async () => {
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const segmentBytesMax = SEGMENT_HEADER_BYTES + 4 * RECORD;
  let host = await startHost(root, ["a"], { segmentBytesMax });
  const dir = host.dirs.get("a")!;
  await dir.append(makeEntries(1, 1, 1, DATA));
  await dir.append(makeEntries(2, 3, 1, DATA));
  const first = segmentPath(root, "a", 1);
  assert.equal(disk.durable(first), SEGMENT_HEADER_BYTES + RECORD, "journaled, not flushed");
  // Segment 1 is full: this batch starts segment 5, flushed by the log.
  await dir.append(makeEntries(5, 2, 1, DATA));
  assert.equal(disk.durable(first), segmentBytesMax, "the tail was flushed before segment 5");
  assert.equal(disk.durable(segmentPath(root, "a", 5)), SEGMENT_HEADER_BYTES + 2 * RECORD);
  await dir.append(makeEntries(7, 2, 1, DATA));
  await crash(disk, root, host, "lose");
  host = await startHost(root, ["a"], { segmentBytesMax });
  try {
    assert.deepEqual(await allEntries(host.dirs.get("a")!), plain(makeEntries(1, 8, 1, DATA)));
  } finally {
    await stopHost(host);
  }
});

Deno.test("a log reset (snapshot install) never gets old entries back from the journal", async () => {
  for (const appendAfter of [false, true]) {
    using disk = new Disk();
    await using tmp = await tempDir("journal_test_");
    const root = tmp.path;
    let host = await startHost(root, ["a"]);
    const dir = host.dirs.get("a")!;
    await dir.append(makeEntries(1, 1, 1, DATA));
    await dir.append(makeEntries(2, 9, 1, DATA));
    await dir.append(makeEntries(11, 20, 1, DATA));
    // The leader's snapshot at 20 replaces the log; 21..30 of term 1 are discarded.
    await dir.restoreSnapshot(makeSnapshot(20, 2));
    assert.equal(dir.lastIndex(), 20);
    const after = appendAfter ? makeEntries(21, 3, 2, DATA) : [];
    if (appendAfter) await dir.append(after);
    await crash(disk, root, host, "lose");

    host = await startHost(root, ["a"]);
    try {
      const again = host.dirs.get("a")!;
      assert.equal(again.recovered().snapshot?.index, 20);
      assert.equal(again.lastIndex(), 20 + after.length, `append after: ${appendAfter}`);
      assert.deepEqual(plain(again.recovered().entries), plain(after));
    } finally {
      await stopHost(host);
    }
  }
});

Deno.test("records of a removed group dir are not replayed onto a new dir of the same name", async () => {
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  let host = await startHost(root, ["a"]);
  const old = host.dirs.get("a")!;
  const oldIncarnation = old.incarnation();
  await old.append(makeEntries(1, 1, 1, DATA));
  await old.append(makeEntries(2, 5, 1, DATA));
  await old.close();
  host.dirs.delete("a");
  // The group is removed (its dir moved aside) and created again: a new dir, a new incarnation.
  await Deno.mkdir(join(root, "removed"));
  await Deno.rename(groupDir(root, "a"), join(root, "removed", "a"));
  const recreated = await DataDir.open(groupDir(root, "a"), {
    nodeId: NODE_ID,
    group: "a",
    journal: host.journal,
  });
  host.dirs.set("a", recreated);
  assert.notEqual(recreated.incarnation(), oldIncarnation);
  await recreated.append(makeEntries(1, 2, 3, DATA));
  await crash(disk, root, host, "none");

  const journal = await HostJournal.open(root);
  assert.equal(journal.recoveredRecords("a", oldIncarnation).length, 1);
  host = await startHost(root, ["a"]);
  try {
    assert.deepEqual(await allEntries(host.dirs.get("a")!), plain(makeEntries(1, 2, 3, DATA)));
  } finally {
    await stopHost(host);
  }
});

/** Waits until `dir` holds exactly `names` (a rotation removes the old file last). */
async function waitForNames(dir: string, names: string[]): Promise<void> {
  const deadline = Date.now() + 5000;
  while (JSON.stringify(await listNames(dir)) !== JSON.stringify(names)) {
    if (Date.now() > deadline) {
      assert.deepEqual(await listNames(dir), names, "timed out waiting for the journal dir");
    }
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("the journal rotates past rotateBytes, flushing the segments first", async () => {
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const groups = ["a", "b"];
  const rotateBytes = 3000;
  let host = await startHost(root, groups, { rotateBytes });
  const expected = new Map(groups.map((g) => [g, makeEntries(1, 1, 1, DATA)]));
  for (const g of groups) await host.dirs.get(g)!.append(expected.get(g)!);
  const journalDir = join(root, JOURNAL_DIR_NAME);
  let sequence = 1;
  let rotations = 0;
  for (let turn = 0; turn < 14; turn++) {
    const before = host.journal.fileBytes;
    const sizes = await Promise.all(
      groups.map(async (g) => (await Deno.stat(segmentPath(root, g))).size),
    );
    await Promise.all(groups.map((g) => {
      const batch = makeEntries(2 + turn * 3, 3, 1, DATA);
      expected.get(g)!.push(...batch);
      return host.dirs.get(g)!.append(batch);
    }));
    // Both groups' batches went into one flush.
    const grown = before + FRAME_OVERHEAD + 2 * (itemOverhead(1) + 3 * RECORD);
    if (grown >= rotateBytes) {
      rotations++;
      sequence++;
      await waitForNames(journalDir, [journalFileName(sequence)]);
      assert.equal(host.journal.fileBytes, JOURNAL_HEADER_BYTES, `turn ${turn}`);
      // Everything the segments got before the rotation is flushed: the old file is gone.
      for (const g of groups) {
        const path = segmentPath(root, g);
        assert.equal(disk.durable(path), (await Deno.stat(path)).size, `turn ${turn}: ${g}`);
      }
    } else {
      assert.deepEqual(await listNames(journalDir), [journalFileName(sequence)], `turn ${turn}`);
      assert.equal(host.journal.fileBytes, grown, `turn ${turn}`);
      for (const [k, g] of groups.entries()) {
        assert.ok(disk.durable(segmentPath(root, g)) <= sizes[k], `turn ${turn}: not flushed`);
      }
    }
  }
  assert.equal(rotations, 3);
  assert.ok(host.journal.fileBytes > JOURNAL_HEADER_BYTES, "the last turns are in the journal");
  await crash(disk, root, host, "lose");

  host = await startHost(root, groups, { rotateBytes });
  try {
    for (const g of groups) {
      assert.deepEqual(await allEntries(host.dirs.get(g)!), plain(expected.get(g)!), g);
    }
    assert.deepEqual(await listNames(journalDir), [journalFileName(sequence + 1)]);
  } finally {
    await stopHost(host);
  }
});

Deno.test("a journal record past the end of the log (entries lost between) is an error", async () => {
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const host = await startHost(root, ["a"]);
  const dir = host.dirs.get("a")!;
  await dir.append(makeEntries(1, 1, 1, DATA));
  await dir.append(makeEntries(2, 4, 1, DATA));
  await host.journal.checkpoint();
  await dir.append(makeEntries(6, 3, 1, DATA));
  await crash(disk, root, host, "lose");
  // Flushed entries 4 and 5 are lost too (a file truncated behind the node's back): the log
  // ends at a record boundary, so only the journal can tell.
  await Deno.truncate(segmentPath(root, "a"), SEGMENT_HEADER_BYTES + 3 * RECORD);
  const jnl = journalPath(root, 2);
  await assert.rejects(startHost(root, ["a"]), (e: unknown) => {
    assert.ok(e instanceof StorageCorruptionError, String(e));
    assert.equal(e.path, jnl);
    assert.match(
      e.message,
      /journal file .*00000000000000000002\.jnl holds entries 6\.\. of group a, but the log in .* ends at index 3: the entries between are missing/,
    );
    return true;
  });
  assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)]);
});

Deno.test("a log closed while the journal runs on keeps its entries past the next checkpoint", async () => {
  // A group stops (removed, or its node failed) while the others keep appending: a checkpoint
  // after that deletes the journal file that held the stopped group's unflushed entries.
  using disk = new Disk();
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  let host = await startHost(root, ["a", "b"]);
  const a = host.dirs.get("a")!;
  const b = host.dirs.get("b")!;
  await a.append(makeEntries(1, 1, 1, DATA));
  await b.append(makeEntries(1, 1, 1, DATA));
  await Promise.all([a.append(makeEntries(2, 4, 1, DATA)), b.append(makeEntries(2, 4, 1, DATA))]);
  await a.close();
  // Group b cuts a suffix (or the journal passes rotateBytes): a checkpoint.
  await b.append(makeEntries(4, 1, 2, DATA));
  assert.deepEqual(await listNames(join(root, JOURNAL_DIR_NAME)), [journalFileName(2)]);
  await crash(disk, root, host, "lose");

  host = await startHost(root, ["a", "b"]);
  try {
    assert.deepEqual(await allEntries(host.dirs.get("a")!), plain(makeEntries(1, 5, 1, DATA)));
    assert.deepEqual(
      await allEntries(host.dirs.get("b")!),
      plain([...makeEntries(1, 3, 1, DATA), ...makeEntries(4, 1, 2, DATA)]),
    );
  } finally {
    await stopHost(host);
  }
});

Deno.test("held segment bytes are written within about a second while appends flow", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  let nowMs = 0;
  const host = await startHost(root, ["g0", "g1"], { now: () => nowMs });
  try {
    const g0 = host.dirs.get("g0")!;
    const g1 = host.dirs.get("g1")!;
    await g0.append(makeEntries(1, 1, 1, DATA)); // starts the segment
    await g1.append(makeEntries(1, 1, 1, DATA));
    const started = (await Deno.stat(segmentPath(root, "g0"))).size;
    await g0.append(makeEntries(2, 2, 1, DATA));
    nowMs = 999;
    await g1.append(makeEntries(2, 1, 1, DATA));
    assert.equal((await Deno.stat(segmentPath(root, "g0"))).size, started, "held by g0's log");
    // A flush a second after the last such write has every log write what it holds.
    nowMs = 1000;
    await g1.append(makeEntries(3, 1, 1, DATA));
    assert.equal((await Deno.stat(segmentPath(root, "g0"))).size, started + 2 * RECORD);
  } finally {
    await stopHost(host);
  }
});

Deno.test("a log that cannot write what it holds fails the journal, which keeps its file", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  let nowMs = 0;
  const { logger } = captureLogger();
  let host = await startHost(root, ["a", "b"], { now: () => nowMs, logger });
  const a = host.dirs.get("a")!;
  const b = host.dirs.get("b")!;
  await a.append(makeEntries(1, 1, 1, DATA));
  await b.append(makeEntries(1, 1, 1, DATA));
  await a.append(makeEntries(2, 2, 1, DATA)); // acknowledged: held by a's log, in the journal
  const fault = failCalls(
    "writeSync",
    (_n, [bytes]) => (bytes as Uint8Array).length === 2 * RECORD,
  );
  try {
    nowMs = 1000;
    // b's append is durable; the write of a's held bytes after that flush fails.
    await b.append(makeEntries(2, 1, 1, DATA));
  } finally {
    fault.restore();
  }
  assert.ok(fault.fired(), "a's held write was tried and failed");
  // The journal is unusable now: nothing more is acknowledged, and nothing is deleted.
  await assert.rejects(b.append(makeEntries(3, 1, 1, DATA)), /host journal .* unusable|failed/);
  await assert.rejects(host.journal.checkpoint());
  await abandonHost(host);
  host = await startHost(root, ["a", "b"]);
  try {
    assert.equal(host.dirs.get("a")!.lastIndex(), 3, "a's acknowledged entries came back");
    assert.deepEqual(
      await allEntries(host.dirs.get("a")!),
      plain(makeEntries(1, 3, 1, DATA)),
    );
    assert.equal(host.dirs.get("b")!.lastIndex(), 2);
  } finally {
    await stopHost(host);
  }
});

Deno.test("a log closed after a failure, owing its segment, keeps the journal's records", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const { logger } = captureLogger();
  let host = await startHost(root, ["a", "b"], { logger });
  const a = host.dirs.get("a")!;
  const b = host.dirs.get("b")!;
  await a.append(makeEntries(1, 1, 1, DATA));
  await b.append(makeEntries(1, 1, 1, DATA));
  await a.append(makeEntries(2, 1, 1, DATA)); // acknowledged: held by a's log, in the journal
  // a fails for another reason (here: its read of the held bytes' write), then closes.
  const fault = failCalls("writeSync", (_n, [bytes]) => (bytes as Uint8Array).length === RECORD);
  try {
    await assert.rejects(a.entries(1, 3), /simulated EIO/);
  } finally {
    fault.restore();
  }
  await a.close().catch(() => {});
  // The next checkpoint must not delete the journal file that alone holds entry 2.
  await assert.rejects(host.journal.checkpoint(), (e: unknown) => {
    assert.match(String(e), /host journal .* is unusable after a write error/);
    assert.match(String((e as Error).cause), /failed before its segment held and flushed/);
    return true;
  });
  await abandonHost(host);
  host = await startHost(root, ["a", "b"]);
  try {
    assert.equal(host.dirs.get("a")!.lastIndex(), 2, "a's acknowledged entry came back");
  } finally {
    await stopHost(host);
  }
});

Deno.test("a log's failed flush during a checkpoint's flush of the same segment keeps the journal", async () => {
  await using tmp = await tempDir("journal_test_");
  const root = tmp.path;
  const { logger } = captureLogger();
  let host = await startHost(root, ["x", "a"], { logger });
  const x = host.dirs.get("x")!;
  const a = host.dirs.get("a")!;
  await x.append(makeEntries(1, 1, 1, DATA));
  await a.append(makeEntries(1, 1, 1, DATA));
  await host.journal.checkpoint();
  // Acknowledged; durable only in the journal.
  await x.append(makeEntries(2, 1, 1, DATA));
  await a.append(makeEntries(2, 1, 1, DATA));
  const journalDir = join(root, JOURNAL_DIR_NAME);
  const before = await listNames(journalDir);
  // Which file each handle is, for the fault below.
  const spy = new SyncSpy();
  const syncData = Deno.FsFile.prototype.syncData;
  let failed = false;
  Deno.FsFile.prototype.syncData = async function (this: Deno.FsFile) {
    const path = spy.pathOf(this);
    // x's segment flush is slow, so a's close runs while the checkpoint waits on it.
    if (path.includes(join("groups", "x", "log"))) await new Promise((r) => setTimeout(r, 50));
    if (path.includes(join("groups", "a", "log")) && !failed) {
      failed = true;
      throw new Error("simulated EIO");
    }
    return await syncData.call(this);
  };
  try {
    const checkpoint = host.journal.checkpoint();
    await new Promise((resolve) => setImmediate(resolve)); // the checkpoint has a's path
    const [done, closed] = await Promise.allSettled([checkpoint, a.close()]);
    assert.ok(failed, "a's own flush failed");
    assert.equal(closed.status, "rejected");
    // Another handle's flush of a's segment returned: that says nothing of the failed pages.
    assert.equal(done.status, "rejected", "the checkpoint must not go on");
  } finally {
    Deno.FsFile.prototype.syncData = syncData;
    spy[Symbol.dispose]();
  }
  assert.deepEqual(await listNames(journalDir), before, "the journal file is kept");
  await x.close().catch(() => {});
  await host.journal.close().catch(() => {});
  host = await startHost(root, ["x", "a"]);
  try {
    assert.equal(host.dirs.get("a")!.lastIndex(), 2);
    assert.equal(host.dirs.get("x")!.lastIndex(), 2);
  } finally {
    await stopHost(host);
  }
});
