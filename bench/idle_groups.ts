/**
 * What idle groups cost a real node (issue 13: 1,000 idle groups on 3 nodes within 5% of a core
 * and 200 KiB per group per node).
 *
 *     deno run -A bench/idle_groups.ts [--groups 1000] [--settle 10] [--measure 20]
 *         [--election-timeout-ms 1000] [--command "deno run -A /other/checkout/main.ts"]
 *
 * Starts a local 3-node cluster whose nodes all host `--groups` groups, waits until every group
 * has a leader, lets it settle for `--settle` seconds (quiet groups go quiet), then reads each
 * node's CPU time (utime + stime of /proc/PID/stat) over `--measure` seconds of idleness, and its
 * resident memory (VmRSS) at the end. Prints the start-up times, CPU as % of one core per node,
 * RSS per node and per group, and the load average (the machine may be shared: CPU time is the
 * node's own, but a loaded machine stretches start-up and elections).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CLOCK_TICKS_PER_SEC, parseStatTicks, readCpuTicks } from "../lib/cli/bench/cpu.ts";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import { CounterClient } from "../lib/client/client.ts";
import { codeVersion, loadAverage, residentBytes, sleep, table } from "./_util.ts";

const { values } = parseArgs({
  options: {
    groups: { type: "string", default: "1000" },
    settle: { type: "string", default: "10" },
    measure: { type: "string", default: "20" },
    "election-timeout-ms": { type: "string", default: "1000" },
    "leaders-timeout": { type: "string", default: "300" },
    command: { type: "string" },
  },
});

const groupCount = Number(values.groups);
const groups = ["counter", ...Array.from({ length: groupCount - 1 }, (_, k) => `g${k + 1}`)];

/** utime + stime of `pid` in clock ticks; NaN when it is gone. */
function procTicks(pid: number): number {
  const t = readCpuTicks(pid);
  return "ticks" in t ? t.ticks : NaN;
}

/** CPU ticks of each thread of `pid`, by thread name (threads of one name summed). */
function threadTicks(pid: number): Map<string, number> {
  const out = new Map<string, number>();
  try {
    for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/stat`);
        const name = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
        const t = parseStatTicks(stat);
        if ("ticks" in t) out.set(name, (out.get(name) ?? 0) + t.ticks);
        // System time apart: the share spent in system calls (sockets, timers, epoll).
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        out.set(`${name} (sys)`, (out.get(`${name} (sys)`) ?? 0) + Number(fields[12]));
      } catch {
        // The thread ended.
      }
    }
  } catch {
    // The process is gone.
  }
  return out;
}

/** How many groups node `id` reports quiet (the `groups` op's `quiet`), or "?" without answer. */
async function quietCount(id: string): Promise<string> {
  const client = new CounterClient({ peers: [id], timeoutMs: 5000 });
  try {
    const { data } = await client.admin("groups", {}, { peer: id });
    const list = Array.isArray(data.groups) ? data.groups as Record<string, unknown>[] : [];
    return String(list.filter((g) => g.quiet === true).length);
  } catch {
    return "?";
  } finally {
    await client.close();
  }
}

const t0 = performance.now();
const secs = () => ((performance.now() - t0) / 1000).toFixed(1);
const code = values.command === undefined ? await codeVersion() : values.command;
console.log(`nodes run ${code}, ${groupCount} groups, load ${await loadAverage()}`);
const cluster = await LocalCluster.start({
  groups,
  serveArgs: ["--election-timeout-ms", values["election-timeout-ms"]!],
  logLevel: "warn",
  command: values.command?.split(" "),
  readyTimeoutMs: Number(values["leaders-timeout"]) * 1000,
});
try {
  console.log(`nodes up after ${secs()} s`);
  try {
    await cluster.waitForLeaders(Number(values["leaders-timeout"]) * 1000);
    console.log(`every group has a leader after ${secs()} s`);
  } catch (err) {
    // Measured anyway: an overloaded node may never elect every group (that is the finding).
    console.log(`after ${secs()} s: ${(err as Error).message}; measuring anyway`);
  }
  await sleep(Number(values.settle) * 1000);
  const pids = cluster.ids.map((id) => cluster.pid(id)!);
  const before = pids.map(procTicks);
  const threadsBefore = pids.map(threadTicks);
  const startMs = performance.now();
  const loadBefore = await loadAverage();
  await sleep(Number(values.measure) * 1000);
  const after = pids.map(procTicks);
  const threadsAfter = pids.map(threadTicks);
  const elapsedS = (performance.now() - startMs) / 1000;
  const loadAfter = await loadAverage();
  const rows: string[][] = [];
  for (let k = 0; k < pids.length; k++) {
    const cpuS = (after[k] - before[k]) / CLOCK_TICKS_PER_SEC;
    const rss = await residentBytes(pids[k]);
    rows.push([
      cluster.ids[k],
      `${(100 * cpuS / elapsedS).toFixed(1)}%`,
      rss === null ? "?" : `${(rss / 2 ** 20).toFixed(0)} MiB`,
      rss === null ? "?" : `${(rss / groupCount / 1024).toFixed(0)} KiB`,
    ]);
  }
  console.log(
    `idle for ${elapsedS.toFixed(1)} s (load ${loadBefore} before, ${loadAfter} after):\n` +
      table(["node", "CPU (% of a core)", "RSS", "RSS / group"], rows),
  );
  // Where the CPU went, by thread (the main JavaScript thread "deno", V8's GC helpers, Tokio's),
  // each with the part of it spent in the kernel (system calls: sockets, timers, epoll).
  const pct = (ticks: number) => 100 * ticks / CLOCK_TICKS_PER_SEC / elapsedS;
  for (let k = 0; k < pids.length; k++) {
    const delta = (name: string) =>
      (threadsAfter[k].get(name) ?? 0) - (threadsBefore[k].get(name) ?? 0);
    const parts = [...threadsAfter[k].keys()].filter((name) => !name.endsWith(" (sys)"))
      .map((name) => [name, delta(name), delta(`${name} (sys)`)] as const)
      .filter(([, ticks]) => ticks > 0).sort((a, b) => b[1] - a[1]);
    console.log(
      `${cluster.ids[k]} by thread: ${
        parts.map(([name, all, sys]) =>
          `${name} ${pct(all).toFixed(1)}% (system ${pct(sys).toFixed(1)}%)`
        ).join(", ")
      }`,
    );
  }
  const leaders = await cluster.groupLeaders(5000);
  const quiet = await Promise.all(cluster.ids.map((id) => quietCount(id)));
  console.log(
    `at the end: ${leaders.size} of ${groupCount} groups have a leader; quiet groups per node: ` +
      quiet.join(", "),
  );
} finally {
  await cluster.stop();
}
