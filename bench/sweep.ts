/**
 * Throughput and latency of increments, linearizable gets, lease gets and a 90/10 mix at
 * 1, 16, 64 and 256 requests in flight, against one local 3-node cluster started for all runs.
 *
 *     deno run -A bench/sweep.ts [--repeats 3] [--duration 5] [--concurrency 1,16,64,256]
 *         [--workloads incr,get,lease,mix] [--json]
 *
 * Each run is `counter bench --peers ... --concurrency C --duration S [--mix ...]
 * [--consistency ...] --json` in a new process. The repeats are interleaved (every workload at
 * every concurrency once, then again), so that a burst of load from elsewhere on the machine
 * does not land on one configuration only. Before the first measured run the cluster gets one
 * unmeasured 3-second run of increments at 64 in flight, so the nodes' code is warm.
 *
 * Prints, per workload and concurrency, the median and range of ops/s, p50 and p99 over the
 * repeats, with the 1-minute load average of each run, and the nodes' resident memory at the end.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { selfCommand } from "../lib/cli/self_command.ts";
import { mib, nodeRss, statuses } from "./_cluster.ts";
import { codeVersion, fmtSummary, loadAverage, table } from "./_util.ts";

const WORKLOADS: Record<string, { label: string; args: string[] }> = {
  incr: { label: "incr", args: [] },
  get: { label: "get (linearizable)", args: ["--mix", "get=100", "--consistency", "linearizable"] },
  lease: { label: "get (lease)", args: ["--mix", "get=100", "--consistency", "lease"] },
  mix: { label: "90% incr / 10% get (lin.)", args: ["--mix", "incr=90,get=10"] },
};

const { values } = parseArgs({
  options: {
    repeats: { type: "string", default: "3" },
    duration: { type: "string", default: "5" },
    concurrency: { type: "string", default: "1,16,64,256" },
    workloads: { type: "string", default: "incr,get,lease,mix" },
    json: { type: "boolean", default: false },
  },
});
const repeats = Number(values.repeats);
const concurrencies = values.concurrency!.split(",").map(Number);
const workloads = values.workloads!.split(",");
for (const w of workloads) if (!(w in WORKLOADS)) throw new Error(`unknown workload ${w}`);

interface Result {
  workload: string;
  concurrency: number;
  repeat: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  errors: number;
  load: string;
  byOp: Record<string, { opsPerSec: number; latencyMs: { p50: number; p99: number } }>;
}

async function run(peers: string[], extra: string[]): Promise<Record<string, unknown>> {
  const [command, ...prefix] = selfCommand();
  const out = await new Deno.Command(command, {
    args: [...prefix, "bench", "--peers", peers.join(","), ...extra, "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (text.trim() === "") throw new Error(`counter bench printed nothing (exit ${out.code})`);
  return JSON.parse(text);
}

const codeAtStart = await codeVersion();
const results: Result[] = [];
const cluster = await LocalCluster.start();
let rssEnd: string[] = [];
let lastIndex = 0;
try {
  await cluster.waitForLeader();
  console.error("[sweep] warm-up: 3 s of increments at 64 in flight");
  await run(cluster.ids, ["--concurrency", "64", "--duration", "3"]);
  for (let rep = 1; rep <= repeats; rep++) {
    for (const w of workloads) {
      for (const c of concurrencies) {
        const load = await loadAverage();
        const r = await run(cluster.ids, [
          "--concurrency",
          String(c),
          "--duration",
          values.duration!,
          ...WORKLOADS[w].args,
        ]);
        const lat = r.latencyMs as { p50: number; p99: number };
        const res: Result = {
          workload: w,
          concurrency: c,
          repeat: rep,
          opsPerSec: r.opsPerSec as number,
          p50: lat.p50,
          p99: lat.p99,
          errors: (r.failed as number) + (r.unknown as number),
          load,
          byOp: r.byOp as Result["byOp"],
        };
        results.push(res);
        console.error(
          `[sweep] #${rep} ${WORKLOADS[w].label} c=${c}: ${res.opsPerSec.toFixed(0)} ops/s, ` +
            `p50 ${res.p50} ms, p99 ${res.p99} ms, errors ${res.errors}; load ${load}`,
        );
      }
    }
  }
  rssEnd = await Promise.all(cluster.ids.map(async (id) => mib(await nodeRss(cluster, id))));
  const st = await statuses(cluster);
  lastIndex = Math.max(...[...st.values()].map((s) => s?.lastIndex ?? 0));
} finally {
  await cluster.stop();
}

const code = `code ${codeAtStart} at start, ${await codeVersion()} at end`;
if (values.json) {
  console.log(JSON.stringify({ code, results, rssEndMiB: rssEnd, lastIndex }));
} else {
  console.log(
    `one local 3-node cluster; ${values.duration} s per run; median (range) of ${repeats} runs; ${code}`,
  );
  const rows: string[][] = [];
  for (const w of workloads) {
    for (const c of concurrencies) {
      const rs = results.filter((r) => r.workload === w && r.concurrency === c);
      rows.push([
        WORKLOADS[w].label,
        String(c),
        fmtSummary(rs.map((r) => r.opsPerSec)),
        fmtSummary(rs.map((r) => r.p50), 2),
        fmtSummary(rs.map((r) => r.p99), 2),
        String(rs.reduce((n, r) => n + r.errors, 0)),
        rs.map((r) => r.load.split(",")[0].trim()).join(" "),
      ]);
    }
  }
  console.log(table(["workload", "C", "ops/s", "p50 ms", "p99 ms", "errors", "load 1m"], rows));
  if (workloads.includes("mix")) {
    console.log("\n90/10 mix by operation: median (range)");
    const mixRows: string[][] = [];
    for (const c of concurrencies) {
      const rs = results.filter((r) => r.workload === "mix" && r.concurrency === c);
      for (const op of ["incr", "get"]) {
        mixRows.push([
          String(c),
          op,
          fmtSummary(rs.map((r) => r.byOp[op].opsPerSec)),
          fmtSummary(rs.map((r) => r.byOp[op].latencyMs.p50), 2),
          fmtSummary(rs.map((r) => r.byOp[op].latencyMs.p99), 2),
        ]);
      }
    }
    console.log(table(["C", "op", "ops/s", "p50 ms", "p99 ms"], mixRows));
  }
  console.log(
    `\nnodes' resident memory at the end (MiB): ${rssEnd.join(", ")}; log index ${lastIndex}`,
  );
}
