/**
 * Data-dir size and resident memory of each node after 1,000,000 increments.
 *
 *     deno run -A bench/disk_usage.ts [--increments 1000000] [--concurrency 256] [--runs 3]
 *         [--no-compaction] [--json]
 *
 * Each run starts a fresh local 3-node cluster (LocalCluster, temporary data, the default
 * `counter serve` options unless --no-compaction), sends the increments with
 * `counter bench --concurrency C --ops N`, waits until every node has applied the same index and
 * no snapshot is being written, then reads `du -sb` of each node's data dir (and of its log/ and
 * snapshot/ folders) and VmRSS from /proc/PID/status. Targets: < 64 MiB of data dir, <= 100 MB
 * resident per node.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LocalCluster } from "../lib/cli/local_cluster.ts";
import {
  DEFAULTS,
  diskUse,
  loadIncrements,
  mib,
  NO_COMPACTION,
  nodeRss,
  settle,
} from "./_cluster.ts";
import { codeVersion, fmtSummary, loadAverage, table } from "./_util.ts";

const { values } = parseArgs({
  options: {
    increments: { type: "string", default: "1000000" },
    concurrency: { type: "string", default: "256" },
    runs: { type: "string", default: "3" },
    "no-compaction": { type: "boolean", default: false },
    json: { type: "boolean", default: false },
  },
});
const increments = Number(values.increments);
const concurrency = Number(values.concurrency);
const runs = Number(values.runs);
const serveArgs = values["no-compaction"] ? NO_COMPACTION : DEFAULTS;

interface Row {
  run: number;
  id: string;
  role: string;
  lastIndex: number;
  snapshotIndex: number;
  dir: number;
  log: number;
  snapshot: number;
  rss: number | null;
  load: string;
}

const codeAtStart = await codeVersion();
const rows: Row[] = [];
const loads: string[] = [];
for (let run = 1; run <= runs; run++) {
  console.error(`[disk_usage] run ${run}/${runs}: starting a 3-node cluster`);
  const cluster = await LocalCluster.start({ serveArgs });
  try {
    await cluster.waitForLeader();
    const load = await loadIncrements(cluster.ids, increments, concurrency);
    loads.push(
      `run ${run}: ${load.ops} incr, ${load.opsPerSec.toFixed(0)}/s, p99 ${load.p99} ms, ` +
        `${load.errors} errors, ` +
        `${load.wallSec.toFixed(0)} s`,
    );
    const settled = await settle(cluster);
    const avg = await loadAverage();
    for (const id of cluster.ids) {
      const s = settled.get(id)!;
      const d = await diskUse(cluster, id);
      rows.push({
        run,
        id,
        role: s.role,
        lastIndex: s.lastIndex,
        snapshotIndex: s.snapshotIndex,
        dir: d.total,
        log: d.log,
        snapshot: d.snapshot,
        rss: await nodeRss(cluster, id),
        load: avg,
      });
    }
  } finally {
    await cluster.stop();
  }
}

const code = `code ${codeAtStart} at start, ${await codeVersion()} at end`;
if (values.json) {
  console.log(JSON.stringify({ code, rows }));
} else {
  console.log(
    `after ${increments} increments (${
      values["no-compaction"] ? "compaction off" : "defaults"
    }), MiB; ${code}`,
  );
  console.log(table(
    ["run", "node", "role", "last", "snapshot", "dir", "log/", "snapshot/", "rss", "load avg"],
    rows.map((r) => [
      String(r.run),
      r.id,
      r.role,
      String(r.lastIndex),
      String(r.snapshotIndex),
      mib(r.dir),
      mib(r.log),
      mib(r.snapshot),
      mib(r.rss),
      r.load,
    ]),
  ));
  console.log(
    `data dir: median (range) ${fmtSummary(rows.map((r) => r.dir / 1048576), 1)} MiB; ` +
      `rss: ${fmtSummary(rows.map((r) => (r.rss ?? NaN) / 1048576), 1)} MiB ` +
      `(leaders ${
        fmtSummary(rows.filter((r) => r.role === "leader").map((r) => (r.rss ?? NaN) / 1048576), 1)
      }, ` +
      `followers ${
        fmtSummary(rows.filter((r) => r.role !== "leader").map((r) => (r.rss ?? NaN) / 1048576), 1)
      })`,
  );
  for (const l of loads) console.log(l);
}
