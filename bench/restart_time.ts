/**
 * Restart time of a follower after 1,000,000 increments, with log compaction on (the defaults),
 * with compaction off, and with an empty history; plus each node's data-dir size and resident
 * memory after the load.
 *
 *     deno run -A bench/restart_time.ts [--increments 1000000] [--concurrency 256]
 *         [--runs 1] [--restarts 3] [--scenarios compaction,no-compaction,empty] [--json]
 *
 * For each scenario and run: start a fresh local 3-node cluster (LocalCluster, temporary data),
 * send the increments with `counter bench --concurrency C --ops N`, wait until every node has
 * applied the same index and no snapshot is being written, read `du -sb` and VmRSS of each node,
 * then `--restarts` times: stop one follower with SIGTERM, start it again, and poll its `status`
 * every 5 ms. Reported, from the moment the process is spawned:
 *
 * - answer: its first `status` answer (the process is up, the data dir recovered, the port open);
 * - serving: it answers as a follower that knows the leader, with applied >= its snapshot index;
 * - caught up: its applied index equals the other nodes' (the entries after its snapshot are
 *   replayed once the leader tells it the commit index).
 *
 * The "empty" scenario sends no increments: the same restart of a node whose history is the
 * bootstrap entry and a leader no-op. It is the floor (Deno start-up, module loading, connection
 * backoff).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { CounterClient } from "../lib/client/client.ts";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import {
  DEFAULTS,
  type DiskUse,
  diskUse,
  loadIncrements,
  type LoadReport,
  mib,
  NO_COMPACTION,
  nodeRss,
  settle,
  type Status,
  toStatus,
} from "./_cluster.ts";
import { codeVersion, fmtSummary, loadAverage, sleep, table } from "./_util.ts";

const SCENARIOS: Record<string, { serveArgs: string[]; load: boolean; label: string }> = {
  "compaction": { serveArgs: DEFAULTS, load: true, label: "compaction on (defaults)" },
  "no-compaction": { serveArgs: NO_COMPACTION, load: true, label: "compaction off" },
  "empty": { serveArgs: DEFAULTS, load: false, label: "empty history" },
};

const { values } = parseArgs({
  options: {
    increments: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "256" },
    runs: { type: "string", default: "1" },
    restarts: { type: "string", default: "3" },
    scenarios: { type: "string", default: "compaction,no-compaction,empty" },
    json: { type: "boolean", default: false },
  },
});
const increments = Number(values.increments);
const concurrency = Number(values.concurrency);
const runs = Number(values.runs);
const restarts = Number(values.restarts);
const scenarioNames = values.scenarios!.split(",");
for (const name of scenarioNames) {
  if (!(name in SCENARIOS)) throw new Error(`unknown scenario ${name}`);
}

/** One restart of one follower. */
interface Restart {
  answerMs: number;
  servingMs: number;
  caughtUpMs: number;
  /** Applied index it had to reach, and its snapshot index when it first answered. */
  target: number;
  snapshotIndex: number;
  rssAfter: number | null;
  load: string;
}

/** One cluster of one scenario. */
interface Run {
  scenario: string;
  load: LoadReport | null;
  loadAvgAfterLoad: string;
  nodes: { id: string; status: Status; disk: DiskUse; rss: number | null }[];
  restarts: Restart[];
}

function log(line: string): void {
  console.error(`[restart_time] ${line}`);
}

async function restartOnce(cluster: LocalCluster, id: string, target: number): Promise<Restart> {
  await cluster.signal(id, "SIGTERM");
  const client = new CounterClient({ peers: [id], timeoutMs: 500, attemptTimeoutMs: 200 });
  const t0 = performance.now();
  await cluster.startNode(id);
  let answerMs = NaN;
  let servingMs = NaN;
  let snapshotIndex = NaN;
  try {
    const deadline = t0 + 300_000;
    while (performance.now() < deadline) {
      let s: Status | null = null;
      try {
        const resp = await client.status(id);
        if (resp.ok && resp.data) s = toStatus(resp.data as Record<string, unknown>);
      } catch {
        // Not listening yet.
      }
      const t = performance.now() - t0;
      if (s !== null) {
        if (Number.isNaN(answerMs)) {
          answerMs = t;
          snapshotIndex = s.snapshotIndex;
        }
        if (
          Number.isNaN(servingMs) && s.role === "follower" && s.leader !== "" &&
          s.applied >= s.snapshotIndex
        ) servingMs = t;
        if (!Number.isNaN(servingMs) && s.applied >= target) {
          return {
            answerMs,
            servingMs,
            caughtUpMs: t,
            target,
            snapshotIndex,
            rssAfter: await nodeRss(cluster, id),
            load: await loadAverage(),
          };
        }
      }
      await sleep(5);
    }
    throw new Error(`node ${id} did not catch up within 300 s`);
  } finally {
    await client.close();
  }
}

async function runScenario(name: string): Promise<Run> {
  const sc = SCENARIOS[name];
  log(`${sc.label}: starting a 3-node cluster`);
  // The data and node logs are removed after a successful run and kept after a failed one.
  const dataRoot = await Deno.makeTempDir({ prefix: "counter-restart-" });
  const cluster = await LocalCluster.start({ serveArgs: sc.serveArgs, dataRoot });
  let ok = false;
  try {
    const leader = await cluster.waitForLeader();
    let load: LoadReport | null = null;
    if (sc.load) {
      log(`${sc.label}: ${increments} increments at concurrency ${concurrency} (leader ${leader})`);
      load = await loadIncrements(cluster.ids, increments, concurrency);
      log(
        `${sc.label}: ${load.opsPerSec.toFixed(0)} incr/s, p99 ${load.p99} ms, ` +
          `${load.errors} errors, exit ${load.exitCode}`,
      );
    }
    let settled = await settle(cluster);
    const loadAvgAfterLoad = await loadAverage();
    const nodes = [];
    for (const id of cluster.ids) {
      nodes.push({
        id,
        status: settled.get(id)!,
        disk: await diskUse(cluster, id),
        rss: await nodeRss(cluster, id),
      });
    }
    const leaderNow = [...settled].find(([, s]) => s.role === "leader")?.[0] ?? leader;
    const follower = cluster.ids.find((id) => id !== leaderNow)!;
    const out: Restart[] = [];
    for (let r = 0; r < restarts; r++) {
      const target = Math.max(
        ...[...settled].filter(([id]) => id !== follower).map(([, s]) => s.applied),
      );
      const res = await restartOnce(cluster, follower, target);
      log(
        `${sc.label}: restart ${r + 1}/${restarts} of ${follower}: answer ${
          res.answerMs.toFixed(0)
        } ms, serving ${res.servingMs.toFixed(0)} ms, caught up ${
          res.caughtUpMs.toFixed(0)
        } ms (applied ${target}, snapshot ${res.snapshotIndex}); load ${res.load}`,
      );
      out.push(res);
      settled = await settle(cluster, 1000);
    }
    const result = { scenario: name, load, loadAvgAfterLoad, nodes, restarts: out };
    log(`result ${JSON.stringify(result)}`);
    ok = true;
    return result;
  } finally {
    await cluster.stop();
    if (ok) await Deno.remove(dataRoot, { recursive: true });
    else log(`${sc.label}: failed; data and node logs kept in ${dataRoot}`);
  }
}

const codeAtStart = await codeVersion();
const results: Run[] = [];
// Runs are interleaved (every scenario once, then again) so that load from elsewhere on the
// machine does not land on one scenario only.
for (let i = 0; i < runs; i++) {
  for (const name of scenarioNames) results.push(await runScenario(name));
}

const code = `code ${codeAtStart} at start, ${await codeVersion()} at end`;
if (values.json) {
  console.log(JSON.stringify({ code, results }));
} else {
  console.log(
    `restart of a follower, ms from spawn; median (range) of ${runs} run(s) x ${restarts} restart(s); ${code}`,
  );
  const rows = scenarioNames.map((name) => {
    const rs = results.filter((r) => r.scenario === name).flatMap((r) => r.restarts);
    return [
      SCENARIOS[name].label,
      String(rs.length),
      fmtSummary(rs.map((r) => r.answerMs)),
      fmtSummary(rs.map((r) => r.servingMs)),
      fmtSummary(rs.map((r) => r.caughtUpMs)),
      fmtSummary(rs.map((r) => r.target - r.snapshotIndex)),
      rs.map((r) => r.load.split(",")[0]).join(" "),
    ];
  });
  console.log(
    table(
      ["scenario", "n", "answer ms", "serving ms", "caught up ms", "entries replayed", "load 1m"],
      rows,
    ),
  );
  const empty = results.filter((r) => r.scenario === "empty").flatMap((r) => r.restarts);
  if (empty.length > 0) {
    const base = empty.map((r) => r.caughtUpMs).sort((a, b) => a - b)[Math.floor(empty.length / 2)];
    for (const name of scenarioNames.filter((n) => n !== "empty")) {
      const rs = results.filter((r) => r.scenario === name).flatMap((r) => r.restarts);
      const med = rs.map((r) => r.caughtUpMs).sort((a, b) => a - b)[Math.floor(rs.length / 2)];
      console.log(
        `${SCENARIOS[name].label}: caught up in ${(med / base).toFixed(2)}x the empty history`,
      );
    }
  }
  console.log("\nafter the load: each node's data dir (du -sb) and resident memory (VmRSS), MiB");
  const nodeRows = results.flatMap((r) =>
    r.nodes.map((n) => [
      `${SCENARIOS[r.scenario].label} #${
        results.filter((x) => x.scenario === r.scenario).indexOf(r) + 1
      }`,
      n.id,
      n.status.role,
      String(n.status.lastIndex),
      String(n.status.snapshotIndex),
      mib(n.disk.total),
      mib(n.disk.log),
      mib(n.disk.snapshot),
      mib(n.rss),
    ])
  );
  console.log(
    table(["run", "node", "role", "last", "snapshot", "dir", "log/", "snapshot/", "rss"], nodeRows),
  );
  for (const r of results.filter((r) => r.load !== null)) {
    console.log(
      `${SCENARIOS[r.scenario].label}: load ${r.load!.ops} incr at ${concurrency} in flight, ` +
        `${r.load!.opsPerSec.toFixed(0)}/s, p50 ${r.load!.p50} ms, p99 ${r.load!.p99} ms, ` +
        `${r.load!.errors} errors, ` +
        `${r.load!.wallSec.toFixed(0)} s; load average after ${r.loadAvgAfterLoad}`,
    );
  }
}
