import assert from "node:assert/strict";
import { join } from "node:path";
import { crc32c } from "../../lib/storage/crc32c.ts";
import {
  DataDirMismatchError,
  StorageCorruptionError,
  UnsupportedFormatError,
} from "../../lib/storage/errors.ts";
import { decodeMeta, encodeMeta, META_FILE_NAME, MetaStore } from "../../lib/storage/meta_store.ts";
import { listNames, tempDir } from "./_helpers.ts";

const identity = { nodeId: "127.0.0.1:7001", group: "g1" };

Deno.test("meta encodes and decodes", () => {
  const meta = { ...identity, hardState: { term: 2 ** 40 + 7, vote: "127.0.0.1:7002" } };
  assert.deepEqual(decodeMeta(encodeMeta(meta), "m"), meta);
  const empty = { ...identity, hardState: { term: 0, vote: "" } };
  assert.deepEqual(decodeMeta(encodeMeta(empty), "m"), empty);
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
  const bytes = encodeMeta({ ...identity, hardState: { term: 1, vote: "" } });
  const view = new DataView(bytes.buffer);
  view.setUint16(4, 2, true);
  view.setUint32(bytes.length - 4, crc32c(bytes, 0, bytes.length - 4), true);
  await Deno.writeFile(join(dir.path, META_FILE_NAME), bytes);
  await assert.rejects(MetaStore.open(dir.path, identity), UnsupportedFormatError);
});

Deno.test("meta store removes temp files a crash left", async () => {
  await using dir = await tempDir();
  await Deno.writeFile(join(dir.path, "meta.123-1.tmp"), new Uint8Array([1, 2]));
  const store = await MetaStore.open(dir.path, identity);
  assert.equal(store.exists(), false);
  assert.deepEqual(await listNames(dir.path), []);
});
