/**
 * Where the CPU goes during a closed-loop run: the bench client, each node, and everything else
 * on the machine (other sessions), as percent of one core; the same split etcd's side-by-side
 * tool (bench.mjs) prints.
 *
 *     deno run -A bench/cpu_split.ts [--concurrency 64,256] [--duration 5] [--repeats 3]
 *         [--mix incr=100] [--consistency linearizable]
 *
 * One local 3-node cluster for all runs, warmed up with 3 s of increments at 64 in flight.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CLOCK_TICKS_PER_SEC, readCpuTicks } from "../lib/cli/bench/cpu.ts";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { selfCommand } from "../lib/cli/self_command.ts";
import { codeVersion, fmtSummary, loadAverage, table } from "./_util.ts";

const { values } = parseArgs({
  options: {
    concurrency: { type: "string", default: "64,256" },
    duration: { type: "string", default: "5" },
    repeats: { type: "string", default: "3" },
    mix: { type: "string", default: "incr=100" },
    consistency: { type: "string", default: "linearizable" },
  },
});

const TICKS_PER_SEC = CLOCK_TICKS_PER_SEC;

/** utime + stime of `pid` in clock ticks; NaN when it is gone. */
function procTicks(pid: number): number {
  const t = readCpuTicks(pid);
  return "ticks" in t ? t.ticks : NaN;
}

/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const l = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = l.reduce((a, b) => a + b, 0);
  return { busy: total - l[3] - (l[4] ?? 0), total };
}

const codeAtStart = await codeVersion();
const cores = navigator.hardwareConcurrency;
const cluster = await LocalCluster.start();
const rows: string[][] = [];
try {
  const leader = await cluster.waitForLeader();
  const [command, ...prefix] = selfCommand();
  const bench = (extra: string[]) =>
    new Deno.Command(command, {
      args: [...prefix, "bench", "--peers", cluster.ids.join(","), ...extra, "--json"],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
  await bench(["--concurrency", "64", "--duration", "3"]).output();
  const mixArgs = values.mix === "incr=100"
    ? []
    : ["--mix", values.mix!, "--consistency", values.consistency!];
  const results = new Map<
    number,
    { ops: number; client: number; leader: number; followers: number; others: number }[]
  >();
  for (let rep = 0; rep < Number(values.repeats); rep++) {
    for (const c of values.concurrency!.split(",").map(Number)) {
      const load = await loadAverage();
      const child = bench(["--concurrency", String(c), "--duration", values.duration!, ...mixArgs]);
      const pids = cluster.ids.map((id) => cluster.pid(id)!);
      const n0 = pids.map(procTicks);
      const m0 = machine();
      // The client's own ticks are sampled just before it exits: poll until it is a zombie.
      let client = 0;
      const t0 = performance.now();
      const statusPromise = child.status;
      let done = false;
      statusPromise.then(() => done = true);
      while (!done) {
        const t = procTicks(child.pid);
        if (!Number.isNaN(t)) client = t;
        await new Promise((r) => setTimeout(r, 50));
      }
      const wall = (performance.now() - t0) / 1000;
      const n1 = pids.map(procTicks);
      const m1 = machine();
      const out = JSON.parse(new TextDecoder().decode((await child.output()).stdout));
      const pct = (ticks: number) => ticks / TICKS_PER_SEC / wall * 100;
      const nodePct = pids.map((_, i) => pct(n1[i] - n0[i]));
      const li = cluster.ids.indexOf(leader);
      const machinePct = (m1.busy - m0.busy) / (m1.total - m0.total) * 100 * cores;
      const r = {
        ops: out.opsPerSec as number,
        client: pct(client),
        leader: nodePct[li],
        followers: nodePct.filter((_, i) => i !== li).reduce((a, b) => a + b, 0),
        others: 0,
      };
      r.others = machinePct - r.client - r.leader - r.followers;
      if (!results.has(c)) results.set(c, []);
      results.get(c)!.push(r);
      console.error(
        `[cpu_split] C=${c}: ${r.ops.toFixed(0)} ops/s; cpu % of one core: client ${
          r.client.toFixed(0)
        }, ` +
          `leader ${r.leader.toFixed(0)}, followers ${r.followers.toFixed(0)}, others ${
            r.others.toFixed(0)
          }; load ${load}`,
      );
    }
  }
  for (const [c, rs] of results) {
    rows.push([
      String(c),
      fmtSummary(rs.map((r) => r.ops)),
      fmtSummary(rs.map((r) => r.client)),
      fmtSummary(rs.map((r) => r.leader)),
      fmtSummary(rs.map((r) => r.followers)),
      fmtSummary(rs.map((r) => r.others)),
    ]);
  }
} finally {
  await cluster.stop();
}
console.log(
  `${values.mix}; % of one core (machine has ${cores}); median (range); code ${codeAtStart} at start, ${await codeVersion()} at end`,
);
console.log(table(["C", "ops/s", "client", "leader", "2 followers", "others"], rows));
