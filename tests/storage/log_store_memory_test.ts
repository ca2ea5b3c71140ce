/**
 * What an idle log costs: a host may open a thousand of them (one per group), so the append
 * buffer is allocated at the first append, small, and grows only with the batches.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { tempDir } from "./_helpers.ts";

const logStoreUrl = new URL("../../lib/storage/log_store.ts", import.meta.url).href;

/**
 * A script for a process with `--expose-gc`: opens 200 logs under argv[0], then appends one small
 * entry to each; prints the memory outside the V8 heap (ArrayBuffers) each step added, per log.
 */
const childScript = `
import { LogStore } from ${JSON.stringify(logStoreUrl)};
const [root] = Deno.args;
const COUNT = 200;
const external = () => { for (let i = 0; i < 3; i++) globalThis.gc(); return Deno.memoryUsage().external; };
const dirs = [];
for (let i = 0; i < COUNT; i++) {
  dirs.push(root + "/" + i);
  await Deno.mkdir(dirs[i]);
}
const start = external();
const logs = [];
for (const dir of dirs) logs.push(await LogStore.open(dir));
const opened = external();
for (const log of logs) {
  await log.append([{ index: 1, term: 1, type: 0, data: new Uint8Array(8) }]);
}
const appended = external();
console.log(JSON.stringify({ open: (opened - start) / COUNT, append: (appended - opened) / COUNT }));
for (const log of logs) await log.close();
`;

Deno.test("an open log holds no append buffer until it appends, then a small one", async () => {
  await using dir = await tempDir();
  const script = join(dir.path, "child.ts");
  await Deno.writeTextFile(script, childScript);
  const root = join(dir.path, "logs");
  await Deno.mkdir(root);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-config", "--v8-flags=--expose-gc", script, root],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  const perLog = JSON.parse(new TextDecoder().decode(output.stdout));
  // Bytes outside the heap per log: its offsets and a few small arrays when open (the append
  // buffer used to be 64 KiB from the start); the 4 KiB first buffer after one small append.
  assert.ok(perLog.open < 2048, `open: ${perLog.open} bytes per log`);
  assert.ok(perLog.append < 8192, `one append: ${perLog.append} bytes per log`);
});
