/**
 * The figures of issue 12 from one local 3-node cluster, as one JSON line on stdout:
 *
 * - increments/s and p99 at 64 and at 256 in flight (`--ops` increments each, after a warm-up
 *   of `--warmup` requests in the same client process, so that its JIT is warm: a fresh process
 *   runs its first tens of thousands of requests at up to twice the CPU each);
 * - CPU µs per increment of each process at 256 in flight: the client's from `bench --json`
 *   (measured phase only), each node's from /proc/PID/stat sampled around the whole client run,
 *   divided by warm-up plus measured requests;
 * - linearizable gets/s at 256 in flight;
 * - the seed burst (1000 increments all in flight) on the warm cluster, median of 3: from a fresh
 *   client process, and after 5 warm-up bursts in the client process (`bench --warmup 5000`).
 *
 *     deno run -A bench/figures.ts [--ops 60000] [--warmup 60000] [--get-ops 200000]
 *         [--main PATH/main.ts]
 *
 * `--main` runs the cluster and the bench client from another checkout's main.ts (for a baseline
 * measured in the same session; see bench/compare.ts). The script uses only `counter serve` and
 * `counter bench --json`, which both versions have.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CLOCK_TICKS_PER_SEC, readCpuTicks } from "../lib/cli/bench/cpu.ts";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { NODE_V8_FLAGS, selfCommand } from "../lib/cli/self_command.ts";
import { loadAverage } from "./_util.ts";

const { values } = parseArgs({
  options: {
    ops: { type: "string", default: "60000" },
    "get-ops": { type: "string", default: "200000" },
    warmup: { type: "string", default: "60000" },
    main: { type: "string" },
  },
});

const TICKS_PER_SEC = CLOCK_TICKS_PER_SEC;

/** utime + stime of `pid` in clock ticks; NaN when it is gone. */
function procTicks(pid: number): number {
  const t = readCpuTicks(pid);
  return "ticks" in t ? t.ticks : NaN;
}

const main = values.main;
const command = selfCommand({ main, v8Flags: NODE_V8_FLAGS });
const cluster = await LocalCluster.start({ command });

interface BenchOut {
  opsPerSec: number;
  durationMs: number;
  latencyMs: { p50: number; p99: number };
  errors?: unknown;
  cpu?: { processes?: { role: string | null; usPerOp: number }[] };
}

/** Runs `counter bench --peers ... ARGS --json`; with `pids`, also their CPU ticks meanwhile. */
async function bench(
  args: string[],
  pids: number[] = [],
): Promise<{ out: BenchOut; nodeTicks: number[] }> {
  const [exe, ...prefix] = selfCommand({ main });
  const child = new Deno.Command(exe, {
    args: [...prefix, "bench", "--peers", cluster.ids.join(","), ...args, "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const n0 = pids.map(procTicks);
  const output = await child.output();
  const nodeTicks = pids.map((pid, i) => procTicks(pid) - n0[i]);
  const text = new TextDecoder().decode(output.stdout);
  return { out: JSON.parse(text), nodeTicks };
}

const result: Record<string, unknown> = {
  main: main ?? "this checkout",
  load: await loadAverage(),
};
try {
  const leader = await cluster.waitForLeader();
  await bench(["--concurrency", "64", "--duration", "3"]);
  const ops = values.ops!;
  const warmup = ["--warmup", values.warmup!];
  const c64 = await bench(["--concurrency", "64", "--ops", ops, ...warmup]);
  result.incr64 = { opsPerSec: c64.out.opsPerSec, p99Ms: c64.out.latencyMs.p99 };
  const pids = cluster.ids.map((id) => cluster.pid(id)!);
  const c256 = await bench(["--concurrency", "256", "--ops", ops, ...warmup], pids);
  // Nodes: ticks over the whole client run, which served the warm-up and the measured requests.
  const served = c256.out.opsPerSec * c256.out.durationMs / 1000 + Number(values.warmup);
  const usPerOp = (ticks: number) => ticks / TICKS_PER_SEC * 1e6 / served;
  const li = cluster.ids.indexOf(leader);
  const followers = c256.nodeTicks.filter((_, i) => i !== li).map(usPerOp);
  const clientCpu = c256.out.cpu?.processes?.find((p) => p.role === "client")?.usPerOp;
  const cpu = {
    // An older client (a baseline checkout) may not report its CPU: NaN then, not a guess.
    client: clientCpu ?? NaN,
    leader: usPerOp(c256.nodeTicks[li]),
    followers,
    total: 0,
  };
  cpu.total = cpu.client + cpu.leader + followers.reduce((a, b) => a + b, 0);
  result.incr256 = {
    opsPerSec: c256.out.opsPerSec,
    p99Ms: c256.out.latencyMs.p99,
    cpuUsPerOp: cpu,
  };
  const gets = await bench([
    "--concurrency",
    "256",
    "--ops",
    values["get-ops"]!,
    "--mix",
    "get=100",
    "--consistency",
    "linearizable",
    ...warmup,
  ]);
  result.get256 = { opsPerSec: gets.out.opsPerSec, p99Ms: gets.out.latencyMs.p99 };
  // The burst of a fresh client process (its code cold), and after 5 bursts in that process.
  const bursts: number[] = [];
  const warmClientBursts: number[] = [];
  for (let i = 0; i < 3; i++) {
    bursts.push((await bench([])).out.durationMs);
    // An older checkout (a baseline) has no burst warm-up: NaN then, not a guess.
    warmClientBursts.push(
      await bench(["--warmup", "5000"]).then((b) => b.out.durationMs, () => NaN),
    );
  }
  bursts.sort((a, b) => a - b);
  warmClientBursts.sort((a, b) => a - b);
  result.seedBurstWarmMs = bursts[1];
  result.seedBurstWarmClientMs = warmClientBursts[1];
} finally {
  await cluster.stop();
}
console.log(JSON.stringify(result));
