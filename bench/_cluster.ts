/**
 * Helpers for the cluster-level scripts in bench/: load a LocalCluster with increments through
 * `counter bench`, wait until it has settled, and read each node's status, memory and disk use.
 *
 * @module
 */

import { join } from "node:path";
import type { LocalCluster } from "../lib/cli/local_cluster.ts";
import { selfCommand } from "../lib/cli/self_command.ts";
import { duBytes, residentBytes, sleep } from "./_util.ts";

/** `counter serve` options of the default configuration (compaction on, the defaults). */
export const DEFAULTS: string[] = [];
/** `counter serve` options that turn compaction off. */
export const NO_COMPACTION = ["--snapshot-log-entries", "0", "--snapshot-interval-secs", "0"];

/** The fields of a node's `status` answer these scripts use. */
export interface Status {
  role: string;
  leader: string;
  term: number;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
}

/** Converts a raw `status` answer (numbers may arrive as bigint) into a {@linkcode Status}. */
export function toStatus(data: Record<string, unknown>): Status {
  return {
    role: String(data.role),
    leader: String(data.leader ?? ""),
    term: Number(data.term),
    commit: Number(data.commit),
    applied: Number(data.applied),
    lastIndex: Number(data.lastIndex),
    snapshotIndex: Number(data.snapshotIndex),
  };
}

/** Every running node's status (null where it does not answer). */
export async function statuses(cluster: LocalCluster): Promise<Map<string, Status | null>> {
  const raw = await cluster.statuses(2000);
  return new Map([...raw].map(([id, s]) => [id, s === null ? null : toStatus(s)]));
}

/** What `counter bench --json` reported about a load run, plus its wall time. */
export interface LoadReport {
  /** Acknowledged increments. */
  ops: number;
  /** Requests that failed or whose outcome is unknown (e.g. timed out under load). */
  errors: number;
  /** The exit status of `counter bench` (0: every request acknowledged and the value checked). */
  exitCode: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  wallSec: number;
}

/**
 * Sends `ops` increments of 1 to `peers` with `concurrency` in flight, by running
 * `counter bench --peers ... --concurrency C --ops N --json` (progress goes to stderr).
 */
export async function loadIncrements(
  peers: string[],
  ops: number,
  concurrency: number,
): Promise<LoadReport> {
  const [command, ...prefix] = selfCommand();
  const t0 = performance.now();
  const out = await new Deno.Command(command, {
    args: [
      ...prefix,
      "bench",
      "--peers",
      peers.join(","),
      "--concurrency",
      String(concurrency),
      "--ops",
      String(ops),
      "--json",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const wallSec = (performance.now() - t0) / 1000;
  const text = new TextDecoder().decode(out.stdout);
  // With failed or timed-out requests `counter bench` exits 1 or 3 but still prints its report.
  if (text.trim() === "") throw new Error(`counter bench failed (exit ${out.code})`);
  const report = JSON.parse(text);
  return {
    ops: report.ok,
    errors: report.failed + report.unknown,
    exitCode: out.code,
    opsPerSec: report.opsPerSec,
    p50: report.latencyMs.p50,
    p99: report.latencyMs.p99,
    wallSec,
  };
}

/**
 * Waits until every running node answers, all have applied the same index, and no node's
 * snapshot index or last index has changed for `quietMs` (a snapshot written in the background
 * and the compaction after it are done). Returns the final statuses.
 */
export async function settle(
  cluster: LocalCluster,
  quietMs = 3000,
  timeoutMs = 120_000,
): Promise<Map<string, Status>> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let since = Date.now();
  let lastSeen = "";
  while (Date.now() < deadline) {
    const all = await statuses(cluster);
    lastSeen = JSON.stringify(Object.fromEntries(all));
    const running = [...all].filter(([id]) => cluster.isRunning(id));
    const ok = running.every(([, s]) => s !== null);
    if (ok) {
      const ss = running.map(([, s]) => s!);
      const applied = new Set(ss.map((s) => s.applied));
      const key = JSON.stringify(ss.map((s) => [s.applied, s.snapshotIndex, s.lastIndex]));
      if (key !== last) {
        last = key;
        since = Date.now();
      } else if (applied.size === 1 && Date.now() - since >= quietMs) {
        return new Map(running.map(([id, s]) => [id, s!]));
      }
    }
    await sleep(250);
  }
  throw new Error(`cluster did not settle within ${timeoutMs} ms; last statuses: ${lastSeen}`);
}

/** Disk use of one node's data dir, in bytes (`du -sb`), in total and by part. */
export interface DiskUse {
  total: number;
  log: number;
  snapshot: number;
}

/** `du -sb` of node `id`'s data dir and of its log/ and snapshot/ folders. */
export async function diskUse(cluster: LocalCluster, id: string): Promise<DiskUse> {
  const dir = cluster.dataDir(id);
  return {
    total: await duBytes(dir),
    log: await duBytes(join(dir, "groups", "counter", "log")),
    snapshot: await duBytes(join(dir, "groups", "counter", "snapshot")),
  };
}

/** VmRSS of node `id`'s process in bytes, or null when it is not running. */
export async function nodeRss(cluster: LocalCluster, id: string): Promise<number | null> {
  const pid = cluster.pid(id);
  return pid === null ? null : await residentBytes(pid);
}

/** Bytes as MiB with one decimal. */
export function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : (bytes / 1024 / 1024).toFixed(1);
}
