/**
 * The seed workload (SOFAJRaft's counter client: 1000 increments, deltas 0..999, all in flight at
 * once) on a cold cluster and on a warm one.
 *
 *     deno run -A bench/seed_burst.ts [--cold 3] [--warm 5]
 *
 * - cold: `counter bench --local`, `--cold` times; each run starts a fresh 3-node cluster, so the
 *   nodes' code is not yet optimized by V8 and their connections are new.
 * - warm: one local 3-node cluster (LocalCluster), then `counter bench --peers ...` `--warm`
 *   times against it; the first of these is the cluster's first load, the later ones are warm.
 *
 * Prints each run's "cost" (wall time of the 1000 increments, as `counter bench` reports it)
 * with the load average, and the median and range.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { selfCommand } from "../lib/cli/self_command.ts";
import { mib, nodeRss } from "./_cluster.ts";
import { codeVersion, fmtSummary, loadAverage, table } from "./_util.ts";

const { values } = parseArgs({
  options: {
    cold: { type: "string", default: "3" },
    warm: { type: "string", default: "5" },
  },
});

interface Burst {
  costMs: number;
  p99: number;
  rss: string;
  load: string;
}

async function bench(args: string[]): Promise<Burst> {
  const [command, ...prefix] = selfCommand();
  const out = await new Deno.Command(command, {
    args: [...prefix, "bench", ...args, "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) throw new Error(`counter bench failed (exit ${out.code}): ${text}`);
  const r = JSON.parse(text);
  const rss = (r.nodes ?? []).map((n: { rssBytes: number | null }) => mib(n.rssBytes)).join("/");
  return { costMs: r.durationMs, p99: r.latencyMs.p99, rss, load: await loadAverage() };
}

const codeAtStart = await codeVersion();
const rows: string[][] = [];
const cold: Burst[] = [];
for (let i = 0; i < Number(values.cold); i++) {
  const b = await bench(["--local"]);
  cold.push(b);
  rows.push([
    `cold #${i + 1} (bench --local)`,
    b.costMs.toFixed(0),
    b.p99.toFixed(1),
    b.rss,
    b.load,
  ]);
}

const warm: Burst[] = [];
const cluster = await LocalCluster.start();
try {
  await cluster.waitForLeader();
  for (let i = 0; i < Number(values.warm); i++) {
    const b = await bench(["--peers", cluster.ids.join(",")]);
    const rss = await Promise.all(cluster.ids.map((id) => nodeRss(cluster, id)));
    b.rss = rss.map(mib).join("/");
    warm.push(b);
    rows.push([
      `warm #${i + 1} (bench --peers)`,
      b.costMs.toFixed(0),
      b.p99.toFixed(1),
      b.rss,
      b.load,
    ]);
  }
} finally {
  await cluster.stop();
}

console.log(
  `seed workload: 1000 increments, all in flight at once; code ${codeAtStart} at start, ${await codeVersion()} at end`,
);
console.log(table(["run", "cost ms", "p99 ms", "node RSS MiB", "load average"], rows));
if (cold.length > 0) {
  console.log(`cold: median (range) ${fmtSummary(cold.map((b) => b.costMs))} ms`);
}
if (warm.length > 1) {
  console.log(
    `warm, runs 2-${warm.length}: median (range) ${
      fmtSummary(warm.slice(1).map((b) => b.costMs))
    } ms; all ${warm.length}: ${fmtSummary(warm.map((b) => b.costMs))} ms`,
  );
}
