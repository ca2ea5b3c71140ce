import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32c } from "../../lib/storage/crc32c.ts";
import {
  DataDirMismatchError,
  StorageCorruptionError,
  UnsupportedFormatError,
} from "../../lib/storage/errors.ts";
import {
  decodeMeta,
  encodeMeta,
  isId64,
  type Meta,
  META_FILE_NAME,
  MetaStore,
  PEER_INCARNATIONS_MAX,
  randomId64,
} from "../../lib/storage/meta_store.ts";
import { listNames, tempDir } from "./_helpers.ts";

const identity = { nodeId: "127.0.0.1:7001", group: "g1" };

function metaOf(fields: Partial<Meta> = {}): Meta {
  return {
    ...identity,
    hardState: { term: 0, vote: "" },
    incarnation: "00000000000000a1",
    clusterId: "",
    commitFloor: 0,
    logFloor: 0,
    peerIncarnations: new Map(),
    voteFloorPending: false,
    ...fields,
  };
}

/** The bytes of a version 1 meta file, as the previous build wrote them. */
function encodeMetaV1(nodeId: string, group: string, term: number, vote: string): Uint8Array {
  const strings = [nodeId, group, vote].map((text) => new TextEncoder().encode(text));
  const size = 16 + strings.reduce((sum, s) => sum + 2 + s.length, 0) + 4;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set([0x43, 0x4d, 0x45, 0x54], 0);
  view.setUint16(4, 1, true);
  view.setUint32(8, term, true);
  let offset = 16;
  for (const s of strings) {
    view.setUint16(offset, s.length, true);
    bytes.set(s, offset + 2);
    offset += 2 + s.length;
  }
  view.setUint32(offset, crc32c(bytes, 0, offset), true);
  return bytes;
}

Deno.test("meta encodes and decodes", () => {
  const meta = metaOf({
    hardState: { term: 2 ** 40 + 7, vote: "127.0.0.1:7002" },
    incarnation: "ffffffffffffffff",
    clusterId: "0123456789abcdef",
    commitFloor: 2 ** 53 - 1,
    logFloor: 12,
    peerIncarnations: new Map([["127.0.0.1:7002", "0000000000000000"], [
      "h:1",
      "9abcdef012345678",
    ]]),
  });
  assert.deepEqual(decodeMeta(encodeMeta(meta), "m"), meta);
  const empty = metaOf();
  assert.deepEqual(decodeMeta(encodeMeta(empty), "m"), empty);
});

Deno.test("meta refuses to encode bad ids and too many peers", () => {
  assert.throws(() => encodeMeta(metaOf({ incarnation: "" })), /incarnation/);
  assert.throws(() => encodeMeta(metaOf({ incarnation: "0123456789ABCDEF" })), /incarnation/);
  assert.throws(() => encodeMeta(metaOf({ clusterId: "123" })), /cluster id/);
  assert.throws(() => encodeMeta(metaOf({ commitFloor: -1 })), /commit floor/);
  const peers = new Map<string, string>();
  for (let i = 0; i <= PEER_INCARNATIONS_MAX; i++) peers.set(`h:${i}`, "0000000000000001");
  assert.throws(() => encodeMeta(metaOf({ peerIncarnations: peers })), /peer incarnations/);
});

Deno.test("random ids are 16 lowercase hex digits and differ", () => {
  const a = randomId64();
  const b = randomId64();
  assert.ok(isId64(a) && isId64(b), `${a} ${b}`);
  assert.notEqual(a, b);
});

Deno.test("a new meta store draws an incarnation that the first save makes permanent", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  assert.ok(isId64(store.incarnation()));
  assert.equal(store.needsWrite(), true);
  assert.equal(store.clusterId(), "");
  assert.equal(store.commitFloor(), 0);
  assert.equal(store.logFloor(), 0);
  assert.equal(store.peerIncarnation("h:1"), undefined);
  await store.save({ term: 0, vote: "" });
  assert.equal(store.needsWrite(), false);
  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.incarnation(), store.incarnation());
  assert.equal(reopened.needsWrite(), false);
});

Deno.test("meta store saves and reloads every version 2 field", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await store.save({ term: 3, vote: "h:2" });
  await store.saveClusterId("00112233445566ff");
  await store.saveCommitFloor(40);
  await store.saveLogFloor(33);
  await store.savePeerIncarnation("h:2", "0000000000000002");
  await store.savePeerIncarnation("h:3", "0000000000000003");
  await store.savePeerIncarnation("h:2", "0000000000000022");
  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.incarnation(), store.incarnation());
  assert.deepEqual(reopened.hardState(), { term: 3, vote: "h:2" });
  assert.equal(reopened.clusterId(), "00112233445566ff");
  assert.equal(reopened.commitFloor(), 40);
  assert.equal(reopened.logFloor(), 33);
  assert.equal(reopened.peerIncarnation("h:2"), "0000000000000022");
  assert.equal(reopened.peerIncarnation("h:3"), "0000000000000003");

  await reopened.forgetPeerIncarnations(new Set(["h:3", "h:9"]));
  assert.equal(reopened.peerIncarnation("h:2"), undefined);
  const again = await MetaStore.open(dir.path, identity);
  assert.equal(again.peerIncarnation("h:2"), undefined);
  assert.equal(again.peerIncarnation("h:3"), "0000000000000003");
  // The hard state checks still hold next to the new fields.
  await assert.rejects(again.save({ term: 2, vote: "" }), /refusing to save term 2/);
  await assert.rejects(again.save({ term: 3, vote: "h:3" }), /refusing to change the vote/);
});

Deno.test("the commit floor never goes down; the log floor may", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await store.saveCommitFloor(10);
  await store.saveCommitFloor(7);
  assert.equal(store.commitFloor(), 10);
  await store.saveLogFloor(10);
  await store.saveLogFloor(7);
  assert.equal(store.logFloor(), 7);
  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.commitFloor(), 10);
  assert.equal(reopened.logFloor(), 7);
  await assert.rejects(store.saveCommitFloor(-1), RangeError);
  await assert.rejects(store.saveCommitFloor(1.5), RangeError);
  await assert.rejects(store.saveLogFloor(2 ** 53), RangeError);
});

Deno.test("saves that change nothing do not write", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await store.save({ term: 1, vote: "" });
  await store.saveClusterId("0000000000000abc");
  await store.saveCommitFloor(5);
  await store.savePeerIncarnation("h:2", "0000000000000002");
  const path = join(dir.path, META_FILE_NAME);
  await Deno.remove(path);
  await store.saveClusterId("0000000000000abc");
  await store.saveCommitFloor(5);
  await store.saveCommitFloor(4);
  await store.saveLogFloor(0);
  await store.savePeerIncarnation("h:2", "0000000000000002");
  await store.forgetPeerIncarnations(new Set(["h:2"]));
  assert.deepEqual(await listNames(dir.path), []);
});

Deno.test("meta store refuses bad ids and more peers than the bound", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await assert.rejects(store.saveClusterId(""), /cluster id/);
  await assert.rejects(store.saveClusterId("0123456789abcdeg"), /cluster id/);
  await assert.rejects(store.savePeerIncarnation("h:1", "01"), /incarnation/);
  await assert.rejects(store.savePeerIncarnation("", "0000000000000001"), /peer id/);
  for (let i = 0; i < PEER_INCARNATIONS_MAX; i++) {
    await store.savePeerIncarnation(`h:${i}`, "0000000000000001");
  }
  await assert.rejects(
    store.savePeerIncarnation("h:new", "0000000000000001"),
    /1024 peers are already recorded/,
  );
  // A known peer may still change; the file at the bound reads back.
  await store.savePeerIncarnation("h:0", "0000000000000002");
  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.peerIncarnation("h:0"), "0000000000000002");
  assert.equal(reopened.peerIncarnation(`h:${PEER_INCARNATIONS_MAX - 1}`), "0000000000000001");
});

Deno.test("a version 1 meta file reads with defaults and a new incarnation; a save upgrades it", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, META_FILE_NAME);
  await Deno.writeFile(path, encodeMetaV1(identity.nodeId, identity.group, 7, "h:2"));
  const store = await MetaStore.open(dir.path, identity);
  assert.deepEqual(store.hardState(), { term: 7, vote: "h:2" });
  assert.equal(store.exists(), true);
  assert.equal(store.needsWrite(), true);
  assert.ok(isId64(store.incarnation()));
  assert.equal(store.clusterId(), "");
  assert.equal(store.commitFloor(), 0);
  // A save that changes nothing else still writes, so the incarnation becomes permanent.
  await store.saveCommitFloor(0);
  assert.equal(store.needsWrite(), false);
  const bytes = await Deno.readFile(path);
  assert.equal(new DataView(bytes.buffer).getUint16(4, true), 2);
  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.incarnation(), store.incarnation());
  assert.deepEqual(reopened.hardState(), { term: 7, vote: "h:2" });
  // A version 1 file of another node is still refused.
  await Deno.writeFile(path, encodeMetaV1("h:9", identity.group, 7, ""));
  await assert.rejects(MetaStore.open(dir.path, identity), DataDirMismatchError);
});

Deno.test("meta store starts empty, saves and reloads the hard state", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  assert.equal(store.exists(), false);
  assert.deepEqual(store.hardState(), { term: 0, vote: "" });
  assert.deepEqual(await listNames(dir.path), []);

  await store.save({ term: 3, vote: "127.0.0.1:7002" });
  await store.save({ term: 4, vote: "" });
  await store.save({ term: 4, vote: "127.0.0.1:7003" });
  assert.equal(store.exists(), true);
  assert.deepEqual(await listNames(dir.path), [META_FILE_NAME]);

  const reopened = await MetaStore.open(dir.path, identity);
  assert.equal(reopened.exists(), true);
  assert.deepEqual(reopened.hardState(), { term: 4, vote: "127.0.0.1:7003" });
});

Deno.test("meta store refuses a term going back or a second vote in a term", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await store.save({ term: 5, vote: "a:1" });
  await assert.rejects(store.save({ term: 4, vote: "" }), /refusing to save term 4/);
  await assert.rejects(store.save({ term: 5, vote: "b:1" }), /refusing to change the vote/);
  await assert.rejects(store.save({ term: 5, vote: "" }), /refusing to change the vote/);
  await store.save({ term: 5, vote: "a:1" });
  assert.deepEqual(store.hardState(), { term: 5, vote: "a:1" });
});

Deno.test("concurrent saves land in call order", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await Promise.all([1, 2, 3, 4, 5, 6].map((term) => store.save({ term, vote: "" })));
  const reopened = await MetaStore.open(dir.path, identity);
  assert.deepEqual(reopened.hardState(), { term: 6, vote: "" });
});

Deno.test("a dir of another node or group is refused with a clear error", async () => {
  await using scratch = await tempDir();
  const metaDir = join(scratch.path, "raft_meta");
  await Deno.mkdir(metaDir);
  const store = await MetaStore.open(metaDir, identity);
  await store.save({ term: 1, vote: "" });
  await assert.rejects(
    MetaStore.open(metaDir, { nodeId: "127.0.0.1:7009", group: "g1" }),
    (error: Error) => {
      assert.ok(error instanceof DataDirMismatchError);
      assert.equal(
        error.message,
        `data dir ${scratch.path} belongs to node 127.0.0.1:7001 in group g1, not node ` +
          `127.0.0.1:7009 in group g1 (meta file ${join(metaDir, META_FILE_NAME)})`,
      );
      return true;
    },
  );
  await assert.rejects(
    MetaStore.open(metaDir, { nodeId: identity.nodeId, group: "g2" }),
    DataDirMismatchError,
  );
});

Deno.test("a corrupt meta file is a loud error naming the file, for every flipped byte", async () => {
  await using dir = await tempDir();
  const store = await MetaStore.open(dir.path, identity);
  await store.save({ term: 9, vote: "127.0.0.1:7002" });
  await store.saveClusterId("0123456789abcdef");
  await store.saveCommitFloor(5);
  await store.savePeerIncarnation("h:2", "0000000000000002");
  const path = join(dir.path, META_FILE_NAME);
  const good = await Deno.readFile(path);
  for (let i = 0; i < good.length; i++) {
    const bad = good.slice();
    bad[i] ^= 0x01;
    await Deno.writeFile(path, bad);
    await assert.rejects(MetaStore.open(dir.path, identity), (error: Error) => {
      assert.ok(error instanceof StorageCorruptionError, `byte ${i}: ${error}`);
      assert.ok(error.message.includes(path), error.message);
      return true;
    });
  }
  for (let length = 0; length < good.length; length++) {
    await Deno.writeFile(path, good.subarray(0, length));
    await assert.rejects(MetaStore.open(dir.path, identity), StorageCorruptionError);
  }
});

Deno.test("an intact meta file of another format version is refused", async () => {
  await using dir = await tempDir();
  for (const version of [0, 3]) {
    const bytes = encodeMeta(metaOf({ hardState: { term: 1, vote: "" } }));
    const view = new DataView(bytes.buffer);
    view.setUint16(4, version, true);
    view.setUint32(bytes.length - 4, crc32c(bytes, 0, bytes.length - 4), true);
    await Deno.writeFile(join(dir.path, META_FILE_NAME), bytes);
    await assert.rejects(MetaStore.open(dir.path, identity), /reads versions 1\.\.2/);
    await assert.rejects(MetaStore.open(dir.path, identity), UnsupportedFormatError);
  }
});

Deno.test("a meta file whose checksum matches but whose fields do not parse is corruption", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, META_FILE_NAME);
  const reframe = async (edit: (bytes: Uint8Array, view: DataView) => Uint8Array) => {
    const good = encodeMeta(metaOf({ peerIncarnations: new Map([["h:2", "0000000000000002"]]) }));
    const bytes = edit(good, new DataView(good.buffer));
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    view.setUint32(bytes.length - 4, crc32c(bytes, 0, bytes.length - 4), true);
    await Deno.writeFile(path, bytes);
  };
  // Commit floor above 2^53.
  await reframe((bytes, view) => (view.setUint32(20, 0xffffffff, true), bytes));
  await assert.rejects(MetaStore.open(dir.path, identity), /commit floor .* not a safe integer/);
  // Peer count larger than the entries present.
  const peerCountAt = (bytes: Uint8Array) => bytes.length - 4 - (2 + 3 + 8) - 2;
  await reframe((bytes, view) => (view.setUint16(peerCountAt(bytes), 2, true), bytes));
  await assert.rejects(MetaStore.open(dir.path, identity), StorageCorruptionError);
  // Trailing bytes.
  await reframe((bytes) => {
    const longer = new Uint8Array(bytes.length + 3);
    longer.set(bytes.subarray(0, bytes.length - 4));
    return longer;
  });
  await assert.rejects(MetaStore.open(dir.path, identity), /unexpected bytes/);
});

Deno.test("meta store removes temp files a crash left", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(join(dir.path, "meta.123-1.tmp"), new Uint8Array([1, 2]));
  const store = await MetaStore.open(dir.path, identity);
  assert.equal(store.exists(), false);
  assert.deepEqual(await listNames(dir.path), []);
});

Deno.test("meta: the vote floor flag round-trips and unknown flags are corruption", () => {
  for (const pending of [false, true]) {
    const bytes = encodeMeta(metaOf({ voteFloorPending: pending }));
    assert.equal(decodeMeta(bytes, "meta").voteFloorPending, pending);
  }
  const bytes = encodeMeta(metaOf({ voteFloorPending: true }));
  bytes[6] |= 2; // an unknown flag, with a matching checksum
  const view = new DataView(bytes.buffer);
  view.setUint32(bytes.length - 4, crc32c(bytes, 0, bytes.length - 4), true);
  assert.throws(() => decodeMeta(bytes, "meta"), /unknown flags/);
});
