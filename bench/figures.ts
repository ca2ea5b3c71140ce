/**
 * The figures of issue 12 from one local 3-node cluster, as one JSON line on stdout:
 *
 * - increments/s and p99 at 64 and at 256 in flight (`--ops` increments each, after a warm-up);
 * - CPU µs per increment of each process at 256 in flight (client, leader, each follower),
 *   from /proc/PID/stat sampled around the run (the client's, less what a one-request run of
 *   the client costs: start-up and module loading);
 * - linearizable gets/s at 256 in flight;
 * - the seed burst (1000 increments all in flight) on the warm cluster, median of 3.
 *
 *     deno run -A bench/figures.ts [--ops 60000] [--get-ops 200000] [--main PATH/main.ts]
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
}

/** Runs `counter bench --peers ... ARGS --json`; with `pids`, also CPU ticks of each process. */
async function bench(
  args: string[],
  pids: number[] = [],
): Promise<{ out: BenchOut; clientTicks: number; nodeTicks: number[] }> {
  const [exe, ...prefix] = selfCommand({ main });
  const child = new Deno.Command(exe, {
    args: [...prefix, "bench", "--peers", cluster.ids.join(","), ...args, "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const n0 = pids.map(procTicks);
  let clientTicks = 0;
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  // The client's own ticks are read just before it exits: poll while it runs.
  while (!done && pids.length > 0) {
    const t = procTicks(child.pid);
    if (!Number.isNaN(t)) clientTicks = t;
    await new Promise((r) => setTimeout(r, 20));
  }
  const nodeTicks = pids.map((pid, i) => procTicks(pid) - n0[i]);
  const output = await child.output();
  await status;
  const text = new TextDecoder().decode(output.stdout);
  return { out: JSON.parse(text), clientTicks, nodeTicks };
}

const result: Record<string, unknown> = {
  main: main ?? "this checkout",
  load: await loadAverage(),
};
try {
  const leader = await cluster.waitForLeader();
  await bench(["--concurrency", "64", "--duration", "3"]);
  const ops = values.ops!;
  const c64 = await bench(["--concurrency", "64", "--ops", ops]);
  result.incr64 = { opsPerSec: c64.out.opsPerSec, p99Ms: c64.out.latencyMs.p99 };
  const pids = cluster.ids.map((id) => cluster.pid(id)!);
  // The client's ticks cover its whole life: take off what a run of one request costs (start-up,
  // module loading, connecting, the value checks), median of 3.
  const fixed: number[] = [];
  for (let i = 0; i < 3; i++) {
    fixed.push((await bench(["--concurrency", "1", "--ops", "1"], pids)).clientTicks);
  }
  const clientFixedTicks = fixed.sort((a, b) => a - b)[1];
  const c256 = await bench(["--concurrency", "256", "--ops", ops], pids);
  const done = c256.out.opsPerSec * c256.out.durationMs / 1000;
  const usPerOp = (ticks: number) => ticks / TICKS_PER_SEC * 1e6 / done;
  const li = cluster.ids.indexOf(leader);
  const followers = c256.nodeTicks.filter((_, i) => i !== li).map(usPerOp);
  const cpu = {
    client: usPerOp(Math.max(0, c256.clientTicks - clientFixedTicks)),
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
  ]);
  result.get256 = { opsPerSec: gets.out.opsPerSec, p99Ms: gets.out.latencyMs.p99 };
  const bursts: number[] = [];
  for (let i = 0; i < 3; i++) bursts.push((await bench([])).out.durationMs);
  bursts.sort((a, b) => a - b);
  result.seedBurstWarmMs = bursts[1];
} finally {
  await cluster.stop();
}
console.log(JSON.stringify(result));
