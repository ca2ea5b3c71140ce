/**
 * Golden on-disk fixtures: the bytes of a segment, a meta file (and a version 1 meta file,
 * kept to prove it still reads) and a snapshot for fixed values,
 * committed under snapshots/storage/. A change to the format, deliberate or not, fails here.
 *
 * After a deliberate format change (which also needs a new version number), regenerate with:
 *
 *     UPDATE_GOLDEN=1 deno test -A tests/storage/golden_test.ts
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type Entry, EntryType, type Snapshot } from "../../lib/raft/types.ts";
import { LogStore, segmentFileName } from "../../lib/storage/log_store.ts";
import { decodeMeta, encodeMeta, type Meta } from "../../lib/storage/meta_store.ts";
import { decodeSnapshot, encodeSnapshot } from "../../lib/storage/snapshot_store.ts";
import { plain, tempDir } from "./_helpers.ts";

const GOLDEN_DIR = new URL("../../snapshots/storage/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const encoder = new TextEncoder();

const ENTRIES: Entry[] = [
  { index: 1, term: 1, type: EntryType.Normal, data: new Uint8Array(0) },
  { index: 2, term: 1, type: EntryType.Config, data: encoder.encode("127.0.0.1:7001") },
  { index: 3, term: 2, type: EntryType.Normal, data: new Uint8Array([0x05, 0x00, 0xff]) },
];

const META: Meta = {
  nodeId: "127.0.0.1:7001",
  group: "main",
  hardState: { term: 2, vote: "127.0.0.1:7002" },
  incarnation: "0123456789abcdef",
  clusterId: "fedcba9876543210",
  commitFloor: 3,
  logFloor: 2,
  peerIncarnations: new Map([["127.0.0.1:7002", "00000000000000ff"], [
    "127.0.0.1:7003",
    "a5a5a5a5a5a5a5a5",
  ]]),
  voteFloorPending: false,
};

const SNAPSHOT: Snapshot = {
  index: 3,
  term: 2,
  conf: { voters: ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"], learners: ["h:4"] },
  data: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]),
};

/** Compares `actual` with the fixture `name`, or rewrites the fixture when updating. */
async function checkGolden(name: string, actual: Uint8Array): Promise<Uint8Array> {
  const url = new URL(name, GOLDEN_DIR);
  if (UPDATE) await Deno.writeFile(url, actual);
  const expected = await Deno.readFile(url);
  assert.deepEqual(
    [...actual],
    [...expected],
    `${name} changed: the on-disk format changed (see the module doc of golden_test.ts)`,
  );
  return expected;
}

Deno.test("golden: a log segment of three known entries", async () => {
  await using dir = await tempDir();
  const log = await LogStore.open(dir.path);
  await log.append(ENTRIES);
  await log.close();
  const bytes = await Deno.readFile(join(dir.path, segmentFileName(1)));
  const golden = await checkGolden("segment_v1.log", bytes);

  await using copy = await tempDir();
  await Deno.writeFile(join(copy.path, segmentFileName(1)), golden);
  const decoded = await LogStore.open(copy.path);
  assert.equal(decoded.lastIndex(), 3);
  assert.deepEqual(plain(await decoded.entries(1, 4)), plain(ENTRIES));
  await decoded.close();
});

Deno.test("golden: a meta file", async () => {
  const golden = await checkGolden("meta_v2", encodeMeta(META));
  assert.deepEqual(decodeMeta(golden, "meta_v2"), META);
});

Deno.test("golden: a version 1 meta file still reads, with the new fields at their defaults", async () => {
  // Written by the previous build; never regenerated.
  const golden = await Deno.readFile(new URL("meta_v1", GOLDEN_DIR));
  assert.deepEqual(decodeMeta(golden, "meta_v1"), {
    nodeId: "127.0.0.1:7001",
    group: "main",
    hardState: { term: 2, vote: "127.0.0.1:7002" },
    incarnation: "",
    clusterId: "",
    commitFloor: 0,
    logFloor: 0,
    peerIncarnations: new Map(),
    voteFloorPending: false,
  });
});

Deno.test("golden: a snapshot file", async () => {
  const golden = await checkGolden("snapshot_v1.snap", encodeSnapshot(SNAPSHOT));
  const decoded = decodeSnapshot(golden, "snapshot_v1.snap");
  assert.deepEqual({ ...decoded, data: [...decoded.data] }, {
    ...SNAPSHOT,
    data: [...SNAPSHOT.data],
  });
});
