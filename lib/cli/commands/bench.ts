/**
 * `counter bench`: sends increments to a running group and reports throughput and latency.
 *
 * @module
 */

import type { BenchOptions } from "../args.ts";
import { errorLine, jsonInteger } from "../output.ts";
import {
  type ClientCommandDeps,
  connectOptions,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_UNKNOWN,
  outcomeOf,
  resolveDeps,
} from "./_client.ts";

/** What one benchmark run measured. */
export interface BenchReport {
  /** Increments sent. */
  ops: number;
  /** Increments in flight at once. */
  concurrency: number;
  /** Increments acknowledged. */
  ok: number;
  /** Increments that failed and certainly were not applied. */
  failed: number;
  /** Increments whose outcome is unknown. */
  unknown: number;
  /** Wall-clock time from the first send to the last answer. */
  elapsedMs: number;
  /** Acknowledged increments per second of `elapsedMs`. */
  opsPerSec: number;
  /** Median latency of acknowledged increments, or null when none was. */
  latencyMsP50: number | null;
  /** 99th percentile latency of acknowledged increments, or null when none was. */
  latencyMsP99: number | null;
  /** Largest latency of acknowledged increments, or null when none was. */
  latencyMsMax: number | null;
  /** Largest value any acknowledgement carried (the final value, as deltas are positive). */
  value: bigint | null;
  /** Leader that sent that acknowledgement. */
  leader: string | null;
}

/** Nearest-rank percentile `p` (0 < p <= 100) of ascending `sorted`, or null when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

function round(value: number | null, digits = 1): number | null {
  if (value === null) return null;
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

function ms(value: number | null): string {
  return value === null ? "n/a" : value.toFixed(1);
}

/** Renders `report` as the lines `counter bench` prints without `--json`. */
export function formatBenchText(report: BenchReport): string[] {
  const lines = [
    `${report.ops} ops, ${report.concurrency} in flight, cost ${report.elapsedMs.toFixed(0)} ms:` +
    ` ${report.opsPerSec.toFixed(0)} ops/s`,
    `latency ms: p50 ${ms(report.latencyMsP50)}, p99 ${ms(report.latencyMsP99)},` +
    ` max ${ms(report.latencyMsMax)}`,
    `acknowledged ${report.ok}, failed ${report.failed}, outcome unknown ${report.unknown}`,
  ];
  if (report.value !== null) {
    lines.push(`final value ${report.value} (leader ${report.leader})`);
  }
  return lines;
}

/** Renders `report` as the one JSON line `counter bench --json` prints. */
export function formatBenchJson(report: BenchReport): string {
  const { value, ...rest } = report;
  const fields = JSON.stringify({
    ...rest,
    elapsedMs: round(rest.elapsedMs),
    opsPerSec: round(rest.opsPerSec),
  });
  // The value is spliced in by hand: JSON.stringify cannot write a bigint.
  return `${fields.slice(0, -1)},"value":${value === null ? "null" : jsonInteger(value)}}`;
}

/**
 * Runs `counter bench` and returns the exit status: 0 when every increment was acknowledged,
 * 3 when some outcome is unknown, else 1 when some increment failed.
 *
 * @example Usage
 * ```ts
 * import { parseBenchArgs } from "../args.ts";
 * import { runBench } from "./bench.ts";
 *
 * const code = await runBench(parseBenchArgs(["--ops", "100"]));
 * ```
 */
export async function runBench(
  options: BenchOptions,
  deps: ClientCommandDeps = {},
): Promise<number> {
  const { connect, out, err } = resolveDeps(deps);
  const client = connect(connectOptions(options));
  const latenciesMs: number[] = [];
  const firstError: { failed?: unknown; unknown?: unknown } = {};
  let failed = 0;
  let unknown = 0;
  let value: bigint | null = null;
  let leader: string | null = null;
  let next = 0;
  let elapsedMs: number;

  async function worker(): Promise<void> {
    while (next < options.ops) {
      next++;
      const startMs = performance.now();
      try {
        // ---- Call into the service. ----
        const result = await client.incrementAndGet(1n);
        latenciesMs.push(performance.now() - startMs);
        if (value === null || result.value > value) {
          value = result.value;
          leader = result.leader;
        }
      } catch (error) {
        const outcome = outcomeOf(error);
        if (outcome === "unknown") unknown++;
        else failed++;
        firstError[outcome] ??= error;
      }
    }
  }

  try {
    const startMs = performance.now();
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    elapsedMs = performance.now() - startMs;
  } finally {
    await client.close();
  }

  latenciesMs.sort((a, b) => a - b);
  const report: BenchReport = {
    ops: options.ops,
    concurrency: options.concurrency,
    ok: latenciesMs.length,
    failed,
    unknown,
    elapsedMs,
    opsPerSec: elapsedMs > 0 ? latenciesMs.length / (elapsedMs / 1000) : 0,
    latencyMsP50: round(percentile(latenciesMs, 50), 3),
    latencyMsP99: round(percentile(latenciesMs, 99), 3),
    latencyMsMax: round(percentile(latenciesMs, 100), 3),
    value,
    leader,
  };
  if (options.json) out(formatBenchJson(report));
  else for (const line of formatBenchText(report)) out(line);

  const problems: string[] = [];
  if (failed > 0) problems.push(`${failed} failed`);
  if (unknown > 0) problems.push(`${unknown} with outcome unknown`);
  if (problems.length > 0) {
    const first = firstError.unknown ?? firstError.failed;
    err(
      `counter bench: of ${options.ops} increments, ${problems.join(" and ")};` +
        ` first error: ${errorLine(first)}`,
    );
  }
  if (unknown > 0) return EXIT_UNKNOWN;
  return failed > 0 ? EXIT_FAILED : EXIT_OK;
}
