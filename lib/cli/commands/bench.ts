/**
 * `counter bench`: measures a group's throughput and latency, and checks that the counter ends
 * up exactly where the acknowledged increments say it must.
 *
 * The default run is SOFAJRaft's counter client: 1000 increments with deltas 0..999, all in
 * flight at once, after which the value must have grown by 499,500. `--concurrency` selects a
 * closed loop instead (see `lib/cli/bench/workload.ts`). `--local` runs against a 3-node cluster
 * of child processes started for the run.
 *
 * @module
 */

import { CounterClient } from "../../client/client.ts";
import { silentLogger } from "../../logging/logger.ts";
import type { BenchOptions } from "../args.ts";
import {
  type ProgressGoal,
  ProgressReporter,
  type ProgressSink,
  stderrSink,
} from "../bench/progress.ts";
import {
  type BenchReport,
  buildGroupReport,
  buildReport,
  formatBenchJson,
  formatBenchText,
  type GroupReport,
  type NodeMemory,
  type Verification,
  verify,
  verifyAll,
} from "../bench/report.ts";
import {
  benchProcesses,
  type CpuSample,
  cpuSplit,
  type CpuTicks,
  readCpuTicks,
  sampleCpu,
} from "../bench/cpu.ts";
import {
  type BenchClient,
  type Clock,
  type GroupTarget,
  PhaseTally,
  runBurst,
  runClosedLoop,
} from "../bench/workload.ts";
import { LocalCluster } from "../local_cluster.ts";
import { join } from "node:path";
import { createCertificates } from "../../security/certs.ts";
import type { ClientTls } from "../../transport/tls.ts";
import { errorLine, printErrorLine, printLine } from "../output.ts";
import {
  type ConnectOptions,
  connectOptions,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_UNKNOWN,
} from "./_client.ts";

export { formatBenchJson, formatBenchText } from "../bench/report.ts";
export type { BenchReport } from "../bench/report.ts";

/** Nodes in the cluster `--local` starts: the smallest group that survives a failure. */
export const LOCAL_NODE_COUNT = 3;

/** How long `--local` waits for its cluster to elect a leader. */
export const LOCAL_LEADER_TIMEOUT_MS = 30_000;

/** The part of `LocalCluster` that `--local` uses; tests pass a fake. */
export interface BenchCluster {
  /** The nodes' ids (HOST:PORT). */
  readonly ids: readonly string[];
  /** The temporary directory of the nodes' data and logs; `stop` removes it. */
  readonly dataRoot: string;
  /** Resolves with the leader's id once there is one. */
  waitForLeader(timeoutMs: number): Promise<string>;
  /** Resolves once every group the cluster serves has a leader (`--groups`). */
  waitForLeaders?(timeoutMs: number): Promise<Map<string, string>>;
  /** The process id of node `id`, or null when it is not running. */
  pid(id: string): number | null;
  /** Stops every node and removes their data. */
  stop(): Promise<void>;
}

/** Replaceable effects of `counter bench`; every field defaults to the real thing. */
export interface BenchDeps {
  /** Creates the client. */
  connect?: (options: ConnectOptions) => BenchClient;
  /** Prints one line of output. */
  out?: (line: string) => void;
  /** Prints one line of error. */
  err?: (line: string) => void;
  /** Where progress goes; null shows none. Default: stderr. */
  progress?: ProgressSink | null;
  /**
   * Starts the cluster of `--local` serving `groups` (the first is `--group`), with TLS when
   * `tls` is given.
   */
  startCluster?: (groups: readonly string[], tls?: LocalTls) => Promise<BenchCluster>;
  /** Reads a process's resident memory in bytes; null when it cannot. */
  residentBytes?: (pid: number) => Promise<number | null>;
  /** The clock latencies are measured with. Default `performance.now`. */
  now?: Clock;
  /** Registers `handler` for Ctrl-C (SIGINT); returns what unregisters it. */
  interrupts?: (handler: () => void) => () => void;
  /** Reads a process's user + system CPU time in clock ticks ("self": this process). */
  cpuTicks?: (pid: number | "self") => CpuTicks;
}

type ResolvedBenchDeps = Required<BenchDeps>;

/** The TLS of a `--local --tls` run: the nodes' serve flags and what the client trusts. */
export interface LocalTls {
  /** `--tls-cert`, `--tls-key` and `--tls-ca` for every node. */
  serveArgs: string[];
  /** What the client (and the cluster's own status calls) trust. */
  client: ClientTls;
}

/**
 * Makes a CA and a node certificate for 127.0.0.1 in a new temp dir (removed by the returned
 * cleanup) for a `--local --tls` run.
 */
export async function makeLocalTls(): Promise<{ tls: LocalTls; cleanup: () => Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "counter-bench-tls-" });
  const set = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
  const files = {
    cert: join(dir, "node.crt"),
    key: join(dir, "node.key"),
    ca: join(dir, "ca.crt"),
  };
  await Deno.writeTextFile(files.cert, set.node.certPem);
  await Deno.writeTextFile(files.key, set.node.keyPem, { mode: 0o600 });
  await Deno.writeTextFile(files.ca, set.ca.certPem);
  return {
    tls: {
      serveArgs: ["--tls-cert", files.cert, "--tls-key", files.key, "--tls-ca", files.ca],
      client: { caPems: [set.ca.certPem] },
    },
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

function resolveBenchDeps(deps: BenchDeps): ResolvedBenchDeps {
  return {
    // ---- Call into the service: the client library (lib/client/client.ts). ----
    // Client logs would break the one-line error contract, so the client stays silent.
    connect: deps.connect ??
      ((options) => new CounterClient({ ...options, logger: silentLogger })),
    out: deps.out ?? printLine,
    err: deps.err ?? printErrorLine,
    progress: deps.progress === undefined ? stderrSink() : deps.progress,
    startCluster: deps.startCluster ??
      ((groups, tls) =>
        LocalCluster.start({
          nodes: LOCAL_NODE_COUNT,
          group: groups[0],
          groups: [...groups],
          ...(tls === undefined ? {} : { serveArgs: tls.serveArgs, clientTls: tls.client }),
        })),
    residentBytes: deps.residentBytes ?? residentBytes,
    now: deps.now ?? performance.now.bind(performance),
    interrupts: deps.interrupts ?? ((handler) => {
      Deno.addSignalListener("SIGINT", handler);
      return () => Deno.removeSignalListener("SIGINT", handler);
    }),
    cpuTicks: deps.cpuTicks ?? readCpuTicks,
  };
}

const VM_RSS_PATTERN = /^VmRSS:\s+([0-9]+)\s+kB$/m;

/**
 * The resident set size of process `pid` in bytes, from `/proc/PID/status` (Linux only); null
 * where that file cannot be read or has no `VmRSS` line.
 */
export async function residentBytes(pid: number): Promise<number | null> {
  let status: string;
  try {
    status = await Deno.readTextFile(`/proc/${pid}/status`);
  } catch {
    return null;
  }
  const match = VM_RSS_PATTERN.exec(status);
  return match === null ? null : Number(match[1]) * 1024;
}

/** A read needed for the verification failed; the run cannot be judged. */
class ReadFailure extends Error {}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The exit status of a finished run; the stderr lines that explain it go to `err`. */
function judge(
  report: BenchReport,
  warmup: PhaseTally,
  measured: PhaseTally,
  err: (line: string) => void,
): number {
  const failed = report.failed + warmup.failed;
  const unknown = report.unknown + warmup.unknown;
  const problems: string[] = [];
  if (failed > 0) problems.push(`${failed} failed`);
  if (unknown > 0) problems.push(`${unknown} with outcome unknown`);
  if (problems.length > 0) {
    const requests = report.ops + warmup.done;
    // An unknown outcome is the more serious news: it is what the exit status reports.
    const first = warmup.firstError.unknown ?? measured.firstError.unknown ??
      warmup.firstError.failed ?? measured.firstError.failed;
    err(
      `counter bench: of ${plural(requests, "request")}, ${problems.join(" and ")};` +
        ` first error: ${errorLine(first)}`,
    );
  }
  if (report.verified === false && report.groups !== undefined) {
    const bad = report.groups.filter((g) => g.verified === false);
    const shown = bad.slice(0, 5).map((g) =>
      `${g.name} grew by ${g.valueAfter! - g.valueBefore}, expected ${
        g.growthMin === g.growthMax ? `${g.growthMin}` : `${g.growthMin} to ${g.growthMax}`
      }`
    );
    err(
      `counter bench: verification failed in ${plural(bad.length, "group")}: ` +
        shown.join("; ") + (bad.length > shown.length ? "; ..." : ""),
    );
    return EXIT_FAILED;
  }
  if (report.verified === false) {
    const growth = report.valueAfter! - report.valueBefore;
    const expected = report.growthMin === report.growthMax
      ? `${report.growthMin}`
      : `${report.growthMin} to ${report.growthMax}`;
    err(
      `counter bench: verification failed: the counter grew by ${growth},` +
        ` but the acknowledged increments add up to ${expected}`,
    );
    return EXIT_FAILED;
  }
  if (unknown > 0) return EXIT_UNKNOWN;
  if (report.valueAfter === null) return EXIT_FAILED;
  return failed > 0 ? EXIT_FAILED : EXIT_OK;
}

async function readValue(client: BenchClient, when: string, group?: string): Promise<bigint> {
  try {
    return (await client.get({ consistency: "linearizable" })).value;
  } catch (error) {
    const which = group === undefined ? "the counter" : `the counter of group ${group}`;
    throw new ReadFailure(`cannot read ${which} ${when}: ${errorLine(error)}`);
  }
}

/** One group's client and tallies, in a run spread over groups. */
interface GroupRun {
  name: string;
  client: BenchClient;
  warmup: GroupTarget;
  measured: GroupTarget;
}

/** The clients and tallies of each of `names`, all through `client`'s connections. */
function groupRuns(client: BenchClient, names: readonly string[]): GroupRun[] {
  if (client.group === undefined) throw new Error("this client cannot address several groups");
  return names.map((name, k) => {
    const groupClient = k === 0 ? client : client.group!(name);
    return {
      name,
      client: groupClient,
      warmup: { name, client: groupClient, tally: new PhaseTally() },
      measured: { name, client: groupClient, tally: new PhaseTally() },
    };
  });
}

async function nodeMemory(
  cluster: BenchCluster,
  read: (pid: number) => Promise<number | null>,
): Promise<NodeMemory[]> {
  return await Promise.all(cluster.ids.map(async (id) => {
    const pid = cluster.pid(id);
    return { id, rssBytes: pid === null ? null : await read(pid) };
  }));
}

/** Runs one phase with progress shown while it lasts. */
async function withProgress(
  sink: ProgressSink | null,
  goal: ProgressGoal,
  tally: PhaseTally,
  now: Clock,
  run: () => Promise<void>,
): Promise<void> {
  if (sink === null) return await run();
  const progress = new ProgressReporter({
    sink,
    goal,
    now,
    read: () => ({ done: tally.done, errors: tally.failed + tally.unknown }),
  });
  progress.start();
  try {
    await run();
  } finally {
    progress.stop();
  }
}

async function benchAgainst(
  peers: readonly string[],
  options: BenchOptions,
  deps: ResolvedBenchDeps,
  cluster: BenchCluster | null,
  leaderAtStart: string | null,
  tls?: ClientTls,
): Promise<number> {
  const { out, err, now } = deps;
  const client = deps.connect({
    ...connectOptions(options),
    peers: [...peers],
    ...(tls === undefined ? {} : { tls }),
  });
  const warmup = new PhaseTally();
  const measured = new PhaseTally();
  // Ctrl-C stops sending; the requests in flight finish, and the partial run is summed up and
  // checked like a whole one. A second Ctrl-C quits at once.
  const interrupt = new AbortController();
  const unregister = deps.interrupts(() => {
    if (interrupt.signal.aborted) Deno.exit(130);
    interrupt.abort();
    err("counter bench: interrupted; waiting for the requests in flight (Ctrl-C again to quit)");
  });
  // With --groups, each request goes to one of the groups, round robin, through the one client.
  const runs = options.groups.length > 1 ? groupRuns(client, options.groups) : null;
  try {
    const valueBefore = await readValue(client, "before the run");
    const groupsBefore = runs === null ? null : await Promise.all(
      runs.map((run, k) =>
        k === 0 ? valueBefore : readValue(run.client, "before the run", run.name)
      ),
    );
    const { concurrency, mix, consistency } = options;
    // The processes whose CPU the measured window is charged to: this one and the local nodes.
    const pids = cluster === null ? [] : cluster.ids.map((id) => ({ id, pid: cluster.pid(id) }));
    const sampleAll = () => sampleCpu(benchProcesses(pids, null), deps.cpuTicks);
    let cpuAtStart: CpuSample;
    if (concurrency === null) {
      // The burst: SOFAJRaft's counter client. BenchOptions guarantees ops in this mode.
      const ops = options.ops!;
      // The warm-up: bursts of the measured burst's size (the last one smaller if need be).
      for (let left = options.warmup; left > 0 && !interrupt.signal.aborted; left -= ops) {
        await runBurst(client, Math.min(ops, left), warmup, now, runs?.map((r) => r.warmup));
      }
      cpuAtStart = sampleAll();
      await withProgress(
        deps.progress,
        { ops },
        measured,
        now,
        () => runBurst(client, ops, measured, now, runs?.map((r) => r.measured)),
      );
    } else {
      if (options.warmup > 0) {
        await runClosedLoop(client, {
          concurrency: Math.min(concurrency, options.warmup),
          ops: options.warmup,
          durationMs: null,
          mix,
          consistency,
          now,
          signal: interrupt.signal,
          groups: runs?.map((r) => r.warmup),
        }, warmup);
      }
      const durationMs = options.durationSecs === null ? null : options.durationSecs * 1000;
      const goal: ProgressGoal = durationMs === null ? { ops: options.ops! } : { durationMs };
      cpuAtStart = sampleAll();
      await withProgress(deps.progress, goal, measured, now, () =>
        runClosedLoop(client, {
          concurrency,
          ops: options.ops,
          durationMs,
          mix,
          consistency,
          now,
          signal: interrupt.signal,
          groups: runs?.map((r) => r.measured),
        }, measured));
    }

    const cpuAtEnd = sampleAll();

    let after: { value: bigint; leader: string } | null = null;
    try {
      after = await client.get({ consistency: "linearizable" });
    } catch (error) {
      err(`counter bench: cannot read the counter after the run: ${errorLine(error)}`);
    }
    // Roles by the leader that answered last, or else the one elected before the run. Over
    // several groups every node leads some: no roles then.
    const leaderNow = runs !== null
      ? null
      : pids.some((p) => p.id === after?.leader)
      ? after!.leader
      : leaderAtStart;
    const processes = benchProcesses(pids, leaderNow);
    const growthOf = (w: PhaseTally, m: PhaseTally) => {
      const min = w.deltaAcked + m.deltaAcked;
      return { min, max: min + w.deltaUnknown + m.deltaUnknown };
    };
    const growth = growthOf(warmup, measured);
    let verification: Verification = verify(
      valueBefore,
      after?.value ?? null,
      growth.min,
      growth.max,
    );
    let groupReports: GroupReport[] | undefined;
    if (runs !== null) {
      groupReports = await Promise.all(runs.map(async (run, k) => {
        let afterGroup: { value: bigint; leader: string } | null = k === 0 ? after : null;
        if (k > 0) {
          try {
            afterGroup = await run.client.get({ consistency: "linearizable" });
          } catch (error) {
            err(
              `counter bench: cannot read the counter of group ${run.name} after the run: ` +
                errorLine(error),
            );
          }
        }
        const g = growthOf(run.warmup.tally, run.measured.tally);
        return buildGroupReport(
          run.name,
          run.measured.tally,
          verify(groupsBefore![k], afterGroup?.value ?? null, g.min, g.max),
          afterGroup?.leader ?? null,
        );
      }));
      verification = verifyAll(groupReports);
    }
    const report = buildReport(measured, warmup, {
      mode: concurrency === null ? "burst" : "closed-loop",
      concurrency: concurrency ?? options.ops!,
      mix,
      consistency,
      verification,
      leader: after?.leader ?? null,
      nodes: cluster === null ? null : await nodeMemory(cluster, deps.residentBytes),
      cpu: cpuSplit(processes, cpuAtStart, cpuAtEnd, measured.done),
    });
    if (interrupt.signal.aborted) report.interrupted = true;
    if (groupReports !== undefined) report.groups = groupReports;
    if (options.json) out(formatBenchJson(report));
    else {
      if (report.interrupted) out("interrupted by Ctrl-C: a partial run, summed up below");
      for (const line of formatBenchText(report)) out(line);
    }
    return judge(report, warmup, measured, err);
  } catch (error) {
    if (!(error instanceof ReadFailure)) throw error;
    err(`counter bench: ${error.message}`);
    return EXIT_FAILED;
  } finally {
    unregister();
    await client.close();
  }
}

/**
 * Runs `counter bench` and returns the exit status: 0 when every request was acknowledged and
 * the counter grew by exactly what they add up to; 1 when some request failed or the check
 * failed; 3 when some outcome is unknown (and the check did not fail).
 *
 * @example Usage
 * ```ts
 * import { parseBenchArgs } from "../args.ts";
 * import { runBench } from "./bench.ts";
 *
 * const code = await runBench(parseBenchArgs(["--local", "--concurrency", "16"]));
 * ```
 */
export async function runBench(options: BenchOptions, deps: BenchDeps = {}): Promise<number> {
  const resolved = resolveBenchDeps(deps);
  if (!options.local) return await benchAgainst(options.peers, options, resolved, null, null);

  // ---- Call into the service: the nodes, as child processes (lib/cli/local_cluster.ts). ----
  const localTls = options.tls ? await makeLocalTls() : null;
  let cluster: BenchCluster;
  try {
    cluster = await resolved.startCluster(options.groups, localTls?.tls);
  } catch (error) {
    await localTls?.cleanup();
    throw error;
  }
  // Under --json stdout holds the one JSON object, so where the data went is said on stderr.
  const say = options.json ? resolved.err : resolved.out;
  try {
    say(`local cluster data and node logs in ${cluster.dataRoot} (removed at the end)`);
    const leader = await cluster.waitForLeader(LOCAL_LEADER_TIMEOUT_MS);
    const spread = options.groups.length > 1;
    const leaders = spread && cluster.waitForLeaders !== undefined
      ? await cluster.waitForLeaders(LOCAL_LEADER_TIMEOUT_MS)
      : null;
    if (!options.json) {
      resolved.out(
        `local cluster of ${LOCAL_NODE_COUNT} nodes: ${cluster.ids.join(", ")}; ` +
          (leaders === null
            ? `leader ${leader}`
            : `${options.groups.length} groups, leaders per node ${
              cluster.ids.map((id) => [...leaders.values()].filter((l) => l === id).length)
                .join("/")
            }`),
      );
    }
    return await benchAgainst(
      cluster.ids,
      options,
      resolved,
      cluster,
      leader,
      localTls?.tls.client,
    );
  } finally {
    await cluster.stop();
    await localTls?.cleanup();
    say(`stopped the local cluster and removed ${cluster.dataRoot}`);
  }
}
