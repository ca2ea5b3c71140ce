/**
 * Checks docs/DESIGN.md "How far this scales, on paper" against real processes: M = 9 nodes
 * (three LocalClusters of three, each with a group of its own, `t1` to `t3`), then G groups made
 * with `counter groups create gK --voters` on R = 3 nodes each, rotating over the nine
 * (group k on nodes k, k+1, k+2 mod 9), so each node hosts H = G·R/M of them. Prints one JSON
 * line with, per phase:
 *
 * - idle: CPU % of a core and RSS of each node over `--idle-secs`, and the machine's TCP
 *   segments sent per second (`/proc/net/snmp` OutSegs: every process on the machine, so run it
 *   on a quiet machine);
 * - load: `counter bench --groups G` at `--concurrency` in flight over all groups (throughput,
 *   p99, CPU µs per increment of each node and of the client).
 *
 *     deno run -A bench/scaling_run.ts [--groups 27] [--idle-secs 10] [--ops 60000]
 *         [--warmup 30000] [--concurrency 256]
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CLOCK_TICKS_PER_SEC, readCpuTicks } from "../lib/cli/bench/cpu.ts";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { selfCommand } from "../lib/cli/self_command.ts";
import { loadAverage, residentBytes, sleep } from "./_util.ts";

const { values } = parseArgs({
  options: {
    groups: { type: "string", default: "27" },
    "idle-secs": { type: "string", default: "10" },
    ops: { type: "string", default: "60000" },
    warmup: { type: "string", default: "30000" },
    concurrency: { type: "string", default: "256" },
  },
});
const G = Number(values.groups);
const R = 3;
const IDLE_SECS = Number(values["idle-secs"]);

/** utime + stime of `pid` in clock ticks; NaN when it is gone. */
function procTicks(pid: number): number {
  const t = readCpuTicks(pid);
  return "ticks" in t ? t.ticks : NaN;
}

/** TCP segments this machine has sent (all processes), from /proc/net/snmp. */
async function tcpOutSegs(): Promise<number> {
  const lines = (await Deno.readTextFile("/proc/net/snmp")).split("\n").filter((l) =>
    l.startsWith("Tcp:")
  );
  const names = lines[0].split(/\s+/);
  const nums = lines[1].split(/\s+/);
  return Number(nums[names.indexOf("OutSegs")]);
}

/** Runs `counter ARGS`; throws with its output when it fails. Returns stdout. */
async function counter(args: string[]): Promise<string> {
  const [exe, ...prefix] = selfCommand({});
  const out = await new Deno.Command(exe, { args: [...prefix, ...args], stdin: "null" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `counter ${args.join(" ")} failed: ${text}${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return text;
}

const clusters: LocalCluster[] = [];
const result: Record<string, unknown> = { load: await loadAverage(), M: 9, R, G, H: G * R / 9 };
try {
  for (const name of ["t1", "t2", "t3"]) {
    clusters.push(await LocalCluster.start({ group: name, logLevel: "warn" }));
  }
  for (const c of clusters) await c.waitForLeader();
  const ids = clusters.flatMap((c) => c.ids);
  const pids = clusters.flatMap((c) => c.ids.map((id) => c.pid(id)!));
  const peers = ids.join(",");
  const createStart = performance.now();
  for (let k = 0; k < G; k++) {
    const voters = [0, 1, 2].map((d) => ids[(k + d) % ids.length]).join(",");
    await counter(["groups", "create", `g${k}`, "--voters", voters, "--peers", voters]);
  }
  result.createMs = Math.round(performance.now() - createStart);
  // Every group elects its leader; then leaders are spread over the voters.
  await sleep(3000);
  await counter(["leader", "balance", "--peers", peers, "--group", "g0", "--timeout-ms", "30000"])
    .catch((err) => result.balanceError = String(err).slice(0, 300));
  await sleep(2000);

  // Idle: what G idle groups cost.
  const t0 = pids.map(procTicks);
  const s0 = await tcpOutSegs();
  await sleep(IDLE_SECS * 1000);
  const idleTicks = pids.map((pid, i) => procTicks(pid) - t0[i]);
  const segs = await tcpOutSegs() - s0;
  const rss = await Promise.all(pids.map((pid) => residentBytes(pid)));
  result.idle = {
    cpuPercentOfCore: idleTicks.map((t) =>
      Math.round(t / CLOCK_TICKS_PER_SEC / IDLE_SECS * 1000) / 10
    ),
    rssMiB: rss.map((b) => b === null ? null : Math.round(b / 1048576 * 10) / 10),
    tcpSegmentsPerSec: Math.round(segs / IDLE_SECS),
  };

  // Load: increments spread over every group, round robin.
  const l0 = pids.map(procTicks);
  const benchOut = await counter([
    "bench",
    "--peers",
    peers,
    "--group",
    "g0",
    "--groups",
    String(G),
    "--group-prefix",
    "g",
    "--concurrency",
    values.concurrency!,
    "--ops",
    values.ops!,
    "--warmup",
    values.warmup!,
    "--json",
  ]);
  const loadTicks = pids.map((pid, i) => procTicks(pid) - l0[i]);
  const b = JSON.parse(benchOut);
  const served = b.opsPerSec * b.durationMs / 1000 + Number(values.warmup);
  result.loaded = {
    opsPerSec: b.opsPerSec,
    p99Ms: b.latencyMs?.p99,
    verifiedGroups: (b.groups ?? []).filter((g: { verified?: boolean }) => g.verified).length,
    nodeUsPerOp: loadTicks.map((t) => Math.round(t / CLOCK_TICKS_PER_SEC * 1e6 / served * 10) / 10),
    clientUsPerOp: b.cpu?.processes?.find((p: { role: string }) => p.role === "client")?.usPerOp,
  };
} finally {
  await Promise.allSettled(clusters.map((c) => c.stop()));
}
console.log(JSON.stringify(result));
