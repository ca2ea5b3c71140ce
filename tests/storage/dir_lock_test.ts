import assert from "node:assert/strict";
import { join } from "node:path";
import { DirLock, LOCK_FILE_NAME } from "../../lib/storage/dir_lock.ts";
import { DataDirLockedError } from "../../lib/storage/errors.ts";
import { tempDir } from "./_helpers.ts";

const dirLockUrl = new URL("../../lib/storage/dir_lock.ts", import.meta.url).href;

/**
 * A script for a second process: tries to lock the dir in argv[0]; prints "locked" or the
 * error message. With argv[1] === "hold" it keeps the lock, writes argv[2] as a marker and
 * waits to be killed.
 */
const childScript = `
import { DirLock } from ${JSON.stringify(dirLockUrl)};
const [dir, mode, marker] = Deno.args;
let lock;
try {
  lock = DirLock.acquire(dir);
} catch (error) {
  console.log(error.message);
  Deno.exit(3);
}
console.log("locked");
if (mode === "hold") {
  await Deno.writeTextFile(marker, "held");
  await new Promise(() => setTimeout(() => {}, 600_000));
}
lock.release();
`;

async function writeChildScript(dir: string): Promise<string> {
  const path = join(dir, "child.ts");
  await Deno.writeTextFile(path, childScript);
  return path;
}

async function runChild(script: string, dataDir: string): Promise<{ code: number; out: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", script, dataDir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, out: new TextDecoder().decode(output.stdout).trim() };
}

Deno.test("a second process cannot lock a locked data dir, and can once it is released", async () => {
  await using scratch = await tempDir();
  const dataDir = join(scratch.path, "data");
  await Deno.mkdir(dataDir);
  const script = await writeChildScript(scratch.path);

  const lock = DirLock.acquire(dataDir);
  assert.equal(lock.held, true);
  const refused = await runChild(script, dataDir);
  assert.equal(refused.code, 3);
  assert.equal(
    refused.out,
    `data dir ${dataDir} is in use by another process (lock file ${join(dataDir, LOCK_FILE_NAME)})`,
  );

  lock.release();
  assert.equal(lock.held, false);
  lock.release();
  const accepted = await runChild(script, dataDir);
  assert.equal(accepted.code, 0);
  assert.equal(accepted.out, "locked");
});

Deno.test("a lock held by a process that is killed is free again", async () => {
  await using scratch = await tempDir();
  const dataDir = join(scratch.path, "data");
  await Deno.mkdir(dataDir);
  const script = await writeChildScript(scratch.path);
  const marker = join(scratch.path, "held");

  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", script, dataDir, "hold", marker],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const deadline = Date.now() + 30_000;
    while (!(await exists(marker))) {
      assert.ok(Date.now() < deadline, "child did not take the lock within 30 s");
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.throws(() => DirLock.acquire(dataDir), DataDirLockedError);
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
  // The kernel dropped the flock with the process: no stale lock, no clean-up needed.
  const lock = DirLock.acquire(dataDir);
  assert.equal(await Deno.readTextFile(join(dataDir, LOCK_FILE_NAME)), `${Deno.pid}\n`);
  lock.release();
});

Deno.test("a second lock in the same process is refused at once", async () => {
  await using scratch = await tempDir();
  const lock = DirLock.acquire(scratch.path);
  try {
    assert.throws(() => DirLock.acquire(scratch.path), DataDirLockedError);
  } finally {
    lock.release();
  }
  DirLock.acquire(scratch.path).release();
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
