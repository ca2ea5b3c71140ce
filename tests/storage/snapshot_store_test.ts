import assert from "node:assert/strict";
import { join } from "node:path";
import type { Snapshot } from "../../lib/raft/types.ts";
import { crc32c } from "../../lib/storage/crc32c.ts";
import { StorageCorruptionError, UnsupportedFormatError } from "../../lib/storage/errors.ts";
import {
  decodeSnapshot,
  encodeSnapshot,
  SNAPSHOT_CORRUPT_SUFFIX,
  snapshotFileName,
  SnapshotStore,
} from "../../lib/storage/snapshot_store.ts";
import { captureLogger, listNames, tempDir } from "./_helpers.ts";

function makeSnapshot(index: number, term = 1, dataBytes = 8): Snapshot {
  return {
    index,
    term,
    conf: { voters: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], learners: ["h:9"] },
    data: Uint8Array.from({ length: dataBytes }, (_, i) => (index + i) & 0xff),
  };
}

function plainSnapshot(snapshot: Snapshot | null) {
  return snapshot === null ? null : { ...snapshot, data: [...snapshot.data] };
}

Deno.test("snapshots encode and decode", () => {
  for (const snapshot of [makeSnapshot(0, 0, 0), makeSnapshot(2 ** 50, 7, 1000)]) {
    assert.deepEqual(
      plainSnapshot(decodeSnapshot(encodeSnapshot(snapshot), "s")),
      plainSnapshot(snapshot),
    );
  }
  const empty: Snapshot = {
    index: 3,
    term: 1,
    conf: { voters: [], learners: [] },
    data: new Uint8Array(),
  };
  assert.deepEqual(plainSnapshot(decodeSnapshot(encodeSnapshot(empty), "s")), plainSnapshot(empty));
});

Deno.test("an empty store has no snapshot", async () => {
  await using dir = await tempDir();
  const store = await SnapshotStore.open(dir.path);
  assert.equal(await store.loadNewest(), null);
  assert.equal(await store.hasAny(), false);
});

Deno.test("save keeps the newest two snapshots and loadNewest returns the newest", async () => {
  await using dir = await tempDir();
  const store = await SnapshotStore.open(dir.path);
  await store.save(makeSnapshot(10));
  await store.save(makeSnapshot(20));
  assert.deepEqual(await listNames(dir.path), [10, 20].map(snapshotFileName));
  await store.save(makeSnapshot(30, 2));
  await store.save(makeSnapshot(40, 2));
  assert.deepEqual(await listNames(dir.path), [30, 40].map(snapshotFileName));
  assert.deepEqual(plainSnapshot(await store.loadNewest()), plainSnapshot(makeSnapshot(40, 2)));

  const reopened = await SnapshotStore.open(dir.path);
  assert.deepEqual(plainSnapshot(await reopened.loadNewest()), plainSnapshot(makeSnapshot(40, 2)));
});

Deno.test("a corrupt or truncated newest snapshot is reported and the previous one used", async () => {
  await using dir = await tempDir();
  const store = await SnapshotStore.open(dir.path);
  await store.save(makeSnapshot(10, 1, 100));
  await store.save(makeSnapshot(20, 2, 100));
  const newest = join(dir.path, snapshotFileName(20));
  const bytes = await Deno.readFile(newest);

  const damaged: Uint8Array[] = [bytes.subarray(0, bytes.length - 1), bytes.subarray(0, 10)];
  for (const i of [0, 4, 8, 40, 60, bytes.length - 1]) {
    const flipped = bytes.slice();
    flipped[i] ^= 0x40;
    damaged.push(flipped);
  }
  for (const bad of damaged) {
    await Deno.writeFile(newest, bad);
    const { logger, lines } = captureLogger();
    const reopened = await SnapshotStore.open(dir.path, { logger });
    assert.deepEqual(
      plainSnapshot(await reopened.loadNewest()),
      plainSnapshot(makeSnapshot(10, 1, 100)),
    );
    assert.equal(lines.length, 1);
    assert.match(lines[0], /ERROR snapshot file is corrupt, trying the previous snapshot/);
    assert.ok(lines[0].includes(newest), lines[0]);
    // The bad file is kept aside for inspection and not read again.
    assert.deepEqual(await listNames(dir.path), [
      snapshotFileName(10),
      snapshotFileName(20) + SNAPSHOT_CORRUPT_SUFFIX,
    ]);
    await Deno.remove(newest + SNAPSHOT_CORRUPT_SUFFIX);
  }
});

Deno.test("when every snapshot is corrupt loadNewest returns null", async () => {
  await using dir = await tempDir();
  const store = await SnapshotStore.open(dir.path);
  await store.save(makeSnapshot(10));
  await Deno.writeFile(join(dir.path, snapshotFileName(10)), new Uint8Array(5));
  assert.equal(await store.loadNewest(), null);
});

Deno.test("a snapshot whose content disagrees with its name is corrupt", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(join(dir.path, snapshotFileName(11)), encodeSnapshot(makeSnapshot(12)));
  const store = await SnapshotStore.open(dir.path);
  assert.equal(await store.loadNewest(), null);
});

Deno.test("decodeSnapshot names the file and offset of damage", () => {
  const bytes = encodeSnapshot(makeSnapshot(5));
  bytes[33] ^= 1;
  assert.throws(() => decodeSnapshot(bytes, "/x/5.snap"), (error: Error) => {
    assert.ok(error instanceof StorageCorruptionError);
    assert.equal(error.offset, bytes.length - 4);
    assert.match(error.message, /^snapshot file \/x\/5\.snap is corrupt: checksum/);
    return true;
  });
});

Deno.test("an intact snapshot of another format version stops loading", async () => {
  await using dir = await tempDir();
  const bytes = encodeSnapshot(makeSnapshot(9));
  const view = new DataView(bytes.buffer);
  view.setUint16(4, 2, true);
  view.setUint32(bytes.length - 4, crc32c(bytes, 0, bytes.length - 4), true);
  await Deno.writeFile(join(dir.path, snapshotFileName(9)), bytes);
  const store = await SnapshotStore.open(dir.path);
  await assert.rejects(store.loadNewest(), UnsupportedFormatError);
});

Deno.test("open removes temp files a crash left", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(join(dir.path, snapshotFileName(7) + ".1-1.tmp"), new Uint8Array(3));
  const store = await SnapshotStore.open(dir.path);
  assert.deepEqual(await listNames(dir.path), []);
  assert.equal(await store.loadNewest(), null);
});
