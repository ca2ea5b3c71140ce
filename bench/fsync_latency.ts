/**
 * Disk flush latency: write 4 KiB at the end of a file, then fdatasync, N times.
 *
 *     deno run -A bench/fsync_latency.ts [--count N] [--dir DIR]
 *
 * This bounds how many group-commit rounds a node can do per second; every acknowledged
 * increment waits for at least one such flush on the leader and on one follower.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { loadAverage, percentile } from "./_util.ts";

const { values } = parseArgs({
  options: { count: { type: "string", default: "1000" }, dir: { type: "string" } },
});
const count = Number(values.count);
const dir = values.dir ?? await Deno.makeTempDir({ prefix: "fsync-latency-" });
const path = `${dir}/probe`;
const file = await Deno.open(path, { create: true, write: true, truncate: true });
const block = new Uint8Array(4096).fill(0x5a);
const samples: number[] = [];
try {
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    let off = 0;
    while (off < block.length) off += await file.write(block.subarray(off));
    await file.syncData();
    samples.push(performance.now() - t0);
  }
} finally {
  file.close();
  await Deno.remove(path);
  if (values.dir === undefined) await Deno.remove(dir);
}
samples.sort((a, b) => a - b);
const total = samples.reduce((a, b) => a + b, 0);
console.log(
  `write 4 KiB + fdatasync, ${count} times in ${dir}: ` +
    `mean ${(total / count).toFixed(3)} ms, p50 ${percentile(samples, 0.5).toFixed(3)} ms, ` +
    `p99 ${percentile(samples, 0.99).toFixed(3)} ms, max ${samples[count - 1].toFixed(3)} ms ` +
    `(${(count / (total / 1000)).toFixed(0)} flushes/s); load average ${await loadAverage()}`,
);
