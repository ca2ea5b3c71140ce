import assert from "node:assert/strict";
import { join } from "node:path";
import {
  isTempFileName,
  syncDir,
  syncDirSync,
  writeFileAtomic,
} from "../../lib/storage/atomic_file.ts";
import { listNames, tempDir } from "./_helpers.ts";

Deno.test("writeFileAtomic creates and then replaces a file, leaving no temp file", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "meta");
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...await Deno.readFile(path)], [1, 2, 3]);
  await writeFileAtomic(path, new Uint8Array([4, 5]));
  assert.deepEqual([...await Deno.readFile(path)], [4, 5]);
  assert.deepEqual(await listNames(dir.path), ["meta"]);
});

Deno.test("writeFileAtomic keeps the old file when the write fails", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "meta");
  await writeFileAtomic(path, new Uint8Array([1]));
  // A directory in the way of the rename makes the last step fail.
  const blocked = join(dir.path, "sub");
  await Deno.mkdir(blocked);
  await Deno.writeFile(join(blocked, "x"), new Uint8Array([0]));
  await assert.rejects(writeFileAtomic(blocked, new Uint8Array([9])));
  assert.deepEqual([...await Deno.readFile(path)], [1]);
  assert.deepEqual(await listNames(dir.path), ["meta", "sub"]);
});

Deno.test("concurrent writeFileAtomic calls use distinct temp files", async () => {
  await using dir = await tempDir();
  const path = join(dir.path, "f");
  await Promise.all(
    Array.from({ length: 8 }, (_, i) => writeFileAtomic(path, new Uint8Array([i]))),
  );
  assert.equal((await Deno.readFile(path)).length, 1);
  assert.deepEqual(await listNames(dir.path), ["f"]);
});

Deno.test("syncDir flushes a directory and fails on a missing one", async () => {
  await using dir = await tempDir();
  await syncDir(dir.path);
  syncDirSync(dir.path);
  await assert.rejects(syncDir(join(dir.path, "missing")), Deno.errors.NotFound);
});

Deno.test("isTempFileName recognises only temp names", () => {
  assert.equal(isTempFileName("meta.123-4.tmp"), true);
  assert.equal(isTempFileName("meta"), false);
  assert.equal(isTempFileName("00000000000000000001.snap"), false);
});
