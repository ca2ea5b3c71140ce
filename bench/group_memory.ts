/**
 * What an idle hosted group costs in memory (issue 13: at most 200 KiB per idle group).
 *
 *     deno run -A bench/group_memory.ts [--groups 1,250,1000] [--settle-secs 10]
 *     deno run -A --v8-flags=--expose-gc bench/group_memory.ts --in-process \
 *       [--groups 1,250] [--heap-snapshots DIR]
 *
 * Default: for each group count N, a {@linkcode LocalCluster} of 3 `counter serve` processes
 * hosting N groups each (every group on every node) starts; once every group has a leader it
 * stays idle for `--settle-secs`, then each node's resident memory (`/proc/PID/status`), V8 heap
 * in use (its `status`) and open file descriptors (`/proc/PID/fd`) are read. The cost of a group
 * is the slope between successive counts: (RSS at N₂ − RSS at N₁) / (N₂ − N₁), per node.
 *
 * `--in-process`: the three nodes are {@linkcode NodeHost}s in this process (all three nodes'
 * replicas of every group, so a group's cost is the slope divided by 3); with `--expose-gc`
 * the heap is collected before it is read, and `--heap-snapshots DIR` writes one heap snapshot
 * per count there, for `bench/heap_diff.ts` to say which objects the groups added.
 *
 * Memory figures do not depend on the machine's load, but the load average is printed with them.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { freePorts, LocalCluster } from "../lib/cli/local_cluster.ts";
import { NodeHost } from "../lib/counter/host.ts";
import { Role } from "../lib/raft/mod.ts";
import { silentLogger } from "../lib/logging/logger.ts";
import { codeVersion, loadAverage, residentBytes, sleep, table } from "./_util.ts";

/** Memory of one node (process, or host in this process) at one group count. */
interface Sample {
  groups: number;
  rssBytes: number;
  heapUsedBytes: number;
  /** Memory of ArrayBuffers and other objects outside the V8 heap (in-process only). */
  externalBytes: number;
  fds: number;
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    groups: { type: "string", default: "1,250,1000" },
    "settle-secs": { type: "string", default: "10" },
    "election-timeout-ms": { type: "string", default: "3000" },
    "in-process": { type: "boolean", default: false },
    "heap-snapshots": { type: "string" },
  },
});
const COUNTS = values.groups.split(",").map(Number);
const SETTLE_MS = Number(values["settle-secs"]) * 1000;
const ELECTION_TIMEOUT_MS = Number(values["election-timeout-ms"]);
const NODES = 3;

function groupNames(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `g${String(i).padStart(4, "0")}`);
}

async function openFds(pid: number): Promise<number> {
  let n = 0;
  for await (const _ of Deno.readDir(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Each running node's memory now. */
async function sampleProcesses(cluster: LocalCluster, n: number): Promise<Sample[]> {
  const statuses = await cluster.statuses(10_000);
  return await Promise.all(cluster.ids.map(async (id) => {
    const pid = cluster.pid(id)!;
    return {
      groups: n,
      rssBytes: await residentBytes(pid) ?? NaN,
      heapUsedBytes: Number(statuses.get(id)?.heapUsedBytes ?? NaN),
      externalBytes: NaN,
      fds: await openFds(pid),
    };
  }));
}

/**
 * Three `counter serve` processes with `n` groups: each node's memory once idle after the
 * groups' first start (bootstrap included), then again after every node was restarted.
 */
async function measureProcesses(n: number): Promise<Sample[][]> {
  const cluster = await LocalCluster.start({
    groups: groupNames(n),
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
    logLevel: "warn",
    readyTimeoutMs: 600_000,
  });
  try {
    await cluster.waitForLeaders(300_000);
    await sleep(SETTLE_MS);
    const fresh = await sampleProcesses(cluster, n);
    for (const id of cluster.ids) await cluster.signal(id, "SIGTERM");
    await Promise.all(cluster.ids.map((id) => cluster.startNode(id)));
    await cluster.waitForLeaders(300_000);
    await sleep(SETTLE_MS);
    return [fresh, await sampleProcesses(cluster, n)];
  } finally {
    await cluster.stop();
  }
}

/** Three hosts in this process with `n` groups: the process's memory once idle (one sample). */
async function measureInProcess(n: number): Promise<Sample[][]> {
  const root = await Deno.makeTempDir({ prefix: "counter-group-memory-" });
  const ids = freePorts(NODES).map((port) => `127.0.0.1:${port}`);
  const groups = groupNames(n);
  const hosts = await Promise.all(ids.map((id, k) =>
    NodeHost.start({
      dataDir: join(root, `n${k}`),
      id,
      conf: ids,
      groups,
      electionTimeoutMs: ELECTION_TIMEOUT_MS,
      heartbeatIntervalMs: 100,
      snapshotIntervalSecs: 0,
      logger: silentLogger,
    })
  ));
  try {
    const deadline = Date.now() + 300_000;
    while (!groups.every((g) => hosts.some((h) => h.node(g)?.role === Role.Leader))) {
      if (Date.now() > deadline) throw new Error(`not every one of ${n} groups elected a leader`);
      await sleep(200);
    }
    await sleep(SETTLE_MS);
    const gc = (globalThis as { gc?: () => void }).gc;
    for (let i = 0; i < 3; i++) gc?.();
    const memory = Deno.memoryUsage();
    if (values["heap-snapshots"] !== undefined) {
      const v8 = await import("node:v8");
      await Deno.mkdir(values["heap-snapshots"], { recursive: true });
      const path = join(values["heap-snapshots"], `groups-${n}.heapsnapshot`);
      v8.writeHeapSnapshot(path);
      console.error(`heap snapshot: ${path}`);
    }
    return [[{
      groups: n,
      rssBytes: memory.rss,
      heapUsedBytes: memory.heapUsed,
      externalBytes: memory.external,
      fds: await openFds(Deno.pid),
    }]];
  } finally {
    await Promise.all(hosts.map((h) => h.stop().catch(() => {})));
    await Deno.remove(root, { recursive: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const kib = (bytes: number) => (bytes / 1024).toFixed(0);
const mibText = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);

const inProcess = values["in-process"];
console.log(
  `group memory, ${
    inProcess ? "3 hosts in one process" : "3 processes"
  }; code ${await codeVersion()}; ` +
    `load average before ${await loadAverage()}`,
);
if (inProcess && (globalThis as { gc?: unknown }).gc === undefined) {
  console.log("(no --v8-flags=--expose-gc: heap read without a collection first)");
}
const rows: string[][] = [];
/** The samples of the previous count, by phase (fresh start, restarted). */
let previous: Sample[][] | null = null;
const PHASES = ["fresh", "restarted"];
for (const n of COUNTS) {
  const phases = inProcess ? await measureInProcess(n) : await measureProcesses(n);
  phases.forEach((samples, phase) => {
    const before = previous?.[phase];
    rows.push(row(n, PHASES[phase], samples, before));
    console.log(rows.at(-1)!.join("  "));
  });
  rows.at(-1)!.push(await loadAverage());
  previous = phases;
}

/** One line of the table: memory at `n` groups, and the slope from the count before. */
function row(n: number, phase: string, samples: Sample[], before?: Sample[]): string[] {
  const at = (pick: (s: Sample) => number) => median(samples.map(pick));
  // In one process every group has all three replicas: a group per node is a third of that.
  const perNode = inProcess ? NODES : 1;
  let slope = ["", "", "", ""];
  if (before !== undefined) {
    const was = (pick: (s: Sample) => number) => median(before.map(pick));
    const dn = (n - before[0].groups) * perNode;
    const per = (pick: (s: Sample) => number) => (at(pick) - was(pick)) / dn;
    slope = [
      kib(per((s) => s.rssBytes)),
      kib(per((s) => s.heapUsedBytes)),
      inProcess ? kib(per((s) => s.externalBytes)) : "",
      per((s) => s.fds).toFixed(2),
    ];
  }
  return [
    String(n),
    phase,
    samples.map((s) => mibText(s.rssBytes)).join(" "),
    samples.map((s) => mibText(s.heapUsedBytes)).join(" "),
    inProcess ? mibText(at((s) => s.externalBytes)) : "",
    samples.map((s) => String(s.fds)).join(" "),
    ...slope,
  ];
}

console.log();
console.log(table([
  "groups",
  "start",
  inProcess ? "RSS MiB" : "RSS MiB per node",
  inProcess ? "heap MiB" : "heap MiB per node",
  "external MiB",
  "fds",
  "RSS KiB/group",
  "heap KiB/group",
  "external KiB/group",
  "fds/group",
  "load avg",
], rows));
