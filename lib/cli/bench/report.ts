/**
 * What `counter bench` measured, and how it is printed: as plain text for a person, or as one
 * JSON object for a program.
 *
 * @module
 */

import { BENCH_OP_KINDS, type BenchMix, type BenchOpKind, type ReadConsistency } from "../args.ts";
import { jsonInteger } from "../output.ts";
import { type CpuSplit, formatCpuSplit } from "./cpu.ts";
import type { LatencyHistogram } from "./histogram.ts";
import type { PhaseTally } from "./workload.ts";

/** Latency percentiles in milliseconds (to the microsecond); null where nothing was measured. */
export interface LatencySummaryMs {
  /** Median. */
  p50: number | null;
  /** 90th percentile. */
  p90: number | null;
  /** 99th percentile. */
  p99: number | null;
  /** 99.9th percentile. */
  p999: number | null;
  /** Largest, exactly. */
  max: number | null;
}

/** What the requests of one operation did. */
export interface OpReport {
  /** Requests answered. */
  ops: number;
  /** Requests acknowledged. */
  ok: number;
  /** Requests that failed and certainly had no effect. */
  failed: number;
  /** Requests whose outcome is unknown. */
  unknown: number;
  /** Acknowledged requests per second of the run. */
  opsPerSec: number;
  /** Latency of the acknowledged requests. */
  latencyMs: LatencySummaryMs;
}

/** The resident memory of one node of a `--local` cluster. */
export interface NodeMemory {
  /** The node's id, `HOST:PORT`. */
  id: string;
  /** Its resident set size (VmRSS) after the run; null where it could not be read. */
  rssBytes: number | null;
}

/** How the counter's value compares with what the acknowledged increments add up to. */
export interface Verification {
  /** Value read (linearizably) before the run. */
  valueBefore: bigint;
  /** Value read (linearizably) after the run; null when that read failed. */
  valueAfter: bigint | null;
  /** The growth the acknowledged increments account for. */
  growthMin: bigint;
  /** `growthMin` plus the deltas of the increments whose outcome is unknown. */
  growthMax: bigint;
  /**
   * True when the value grew by exactly `growthMin` (and no outcome is unknown); false when it
   * grew by anything outside `[growthMin, growthMax]`; null when that cannot be decided.
   */
  verified: boolean | null;
}

/** What the requests of one group of a run spread over several (`--groups`) did. */
export interface GroupReport extends Verification, OpReport {
  /** The group's name. */
  name: string;
  /** The node that answered the group's last read as leader; null when that read failed. */
  leader: string | null;
}

/** Everything one `counter bench` run measured. */
export interface BenchReport extends Verification {
  /** The burst of SOFAJRaft's counter client, or a closed loop of workers. */
  mode: "burst" | "closed-loop";
  /** Most requests in flight at once: the burst's size, or the number of workers. */
  concurrency: number;
  /** Percentage of each operation. */
  mix: BenchMix;
  /** Consistency of the reads. */
  consistency: ReadConsistency;
  /** Measured requests answered, of every kind. */
  ops: number;
  /** Measured requests acknowledged. */
  ok: number;
  /** Measured requests that failed and certainly had no effect. */
  failed: number;
  /** Measured requests whose outcome is unknown. */
  unknown: number;
  /** From the first measured request sent to the last one answered. */
  durationMs: number;
  /** Acknowledged requests per second. */
  opsPerSec: number;
  /** Latency of every acknowledged request. */
  latencyMs: LatencySummaryMs;
  /** Per operation of the mix. */
  byOp: Partial<Record<BenchOpKind, OpReport>>;
  /** Failed requests by error code, and requests with an unknown outcome by error code. */
  errors: { failed: Record<string, number>; unknown: Record<string, number> };
  /** The unmeasured requests sent first. */
  warmup: { ops: number; ok: number; failed: number; unknown: number };
  /** The node that answered the last read as leader; null when that read failed. */
  leader: string | null;
  /** Resident memory of the nodes, with `--local`; null otherwise. */
  nodes: NodeMemory[] | null;
  /**
   * CPU per operation of the measured window: the client's and, with `--local`, each node's;
   * or why it is unavailable.
   */
  cpu: CpuSplit;
  /** True when Ctrl-C cut the run short; absent otherwise. */
  interrupted?: true;
  /**
   * With `--groups N` (N > 1), each group's figures; absent otherwise. The run's values are then
   * the sums over the groups, and it is verified when every group is.
   */
  groups?: GroupReport[];
}

/** Decides {@linkcode Verification.verified}. */
export function verify(
  valueBefore: bigint,
  valueAfter: bigint | null,
  growthMin: bigint,
  growthMax: bigint,
): Verification {
  if (growthMax < growthMin) throw new RangeError("growthMax must not be below growthMin");
  let verified: boolean | null = null;
  if (valueAfter !== null) {
    const growth = valueAfter - valueBefore;
    if (growth < growthMin || growth > growthMax) verified = false;
    else if (growthMin === growthMax) verified = true;
  }
  return { valueBefore, valueAfter, growthMin, growthMax, verified };
}

/**
 * The verification of a run spread over groups: the sums of their values and growths, verified
 * when every group is, failed when any group failed (sums could hide a loss in one group behind
 * a gain in another), undecided otherwise.
 */
export function verifyAll(groups: readonly Verification[]): Verification {
  const sum = (pick: (v: Verification) => bigint) => groups.reduce((s, v) => s + pick(v), 0n);
  const afterKnown = groups.every((v) => v.valueAfter !== null);
  return {
    valueBefore: sum((v) => v.valueBefore),
    valueAfter: afterKnown ? sum((v) => v.valueAfter!) : null,
    growthMin: sum((v) => v.growthMin),
    growthMax: sum((v) => v.growthMax),
    verified: groups.some((v) => v.verified === false)
      ? false
      : groups.every((v) => v.verified === true)
      ? true
      : null,
  };
}

/** The report of one group: its measured tally, its verification, its leader. */
export function buildGroupReport(
  name: string,
  measured: PhaseTally,
  verification: Verification,
  leader: string | null,
): GroupReport {
  return {
    name,
    ops: measured.done,
    ok: measured.ok,
    failed: measured.failed,
    unknown: measured.unknown,
    opsPerSec: perSecond(measured.ok, measured.elapsedMs),
    latencyMs: summarize(measured.latency()),
    ...verification,
    leader,
  };
}

function toMs(us: number | null): number | null {
  // Microseconds are the histogram's resolution; a finer figure would be noise.
  return us === null ? null : Math.round(us) / 1000;
}

/** The percentiles of `histogram`, in milliseconds. */
export function summarize(histogram: LatencyHistogram): LatencySummaryMs {
  return {
    p50: toMs(histogram.percentile(50)),
    p90: toMs(histogram.percentile(90)),
    p99: toMs(histogram.percentile(99)),
    p999: toMs(histogram.percentile(99.9)),
    max: toMs(histogram.max),
  };
}

function perSecond(count: number, elapsedMs: number): number {
  return elapsedMs > 0 ? Math.round((count * 1000 * 10) / elapsedMs) / 10 : 0;
}

/** What {@linkcode buildReport} needs besides the tallies. */
export interface ReportContext {
  /** The burst, or the closed loop. */
  mode: BenchReport["mode"];
  /** Most requests in flight at once. */
  concurrency: number;
  /** Percentage of each operation. */
  mix: BenchMix;
  /** Consistency of the reads. */
  consistency: ReadConsistency;
  /** The counter's value before and after, against the increments. */
  verification: Verification;
  /** The leader that answered the last read. */
  leader: string | null;
  /** Resident memory of local nodes. */
  nodes: NodeMemory[] | null;
  /** CPU per operation of the measured window. */
  cpu: CpuSplit;
}

/** Builds the report of a run from the tallies of its warm-up and measured phases. */
export function buildReport(
  measured: PhaseTally,
  warmup: PhaseTally,
  context: ReportContext,
): BenchReport {
  const byOp: Partial<Record<BenchOpKind, OpReport>> = {};
  for (const kind of BENCH_OP_KINDS) {
    const tally = measured.byOp[kind];
    if (context.mix[kind] === 0 && tally.done === 0) continue;
    byOp[kind] = {
      ops: tally.done,
      ok: tally.ok,
      failed: tally.failed,
      unknown: tally.unknown,
      opsPerSec: perSecond(tally.ok, measured.elapsedMs),
      latencyMs: summarize(tally.latency),
    };
  }
  return {
    mode: context.mode,
    concurrency: context.concurrency,
    mix: { ...context.mix },
    consistency: context.consistency,
    ops: measured.done,
    ok: measured.ok,
    failed: measured.failed,
    unknown: measured.unknown,
    durationMs: Math.round(measured.elapsedMs * 1000) / 1000,
    opsPerSec: perSecond(measured.ok, measured.elapsedMs),
    latencyMs: summarize(measured.latency()),
    byOp,
    errors: {
      failed: Object.fromEntries(measured.failedByCode),
      unknown: Object.fromEntries(measured.unknownByCode),
    },
    warmup: { ops: warmup.done, ok: warmup.ok, failed: warmup.failed, unknown: warmup.unknown },
    ...context.verification,
    leader: context.leader,
    nodes: context.nodes,
    cpu: context.cpu,
  };
}

/** A value {@linkcode toJson} can write: JSON's, plus bigint. */
export type JsonValue =
  | null
  | boolean
  | number
  | string
  | bigint
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue | undefined };

/**
 * Writes `value` as compact JSON. A bigint is a number when every parser reads it back exactly,
 * else a string (see `jsonInteger`); `JSON.stringify` cannot write a bigint at all.
 */
export function toJson(value: JsonValue): string {
  if (typeof value === "bigint") return jsonInteger(value);
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new RangeError(`${value} has no JSON form`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(toJson).join(",")}]`;
  const fields = Object.entries(value as { [key: string]: JsonValue | undefined })
    .filter((entry): entry is [string, JsonValue] => entry[1] !== undefined)
    .map(([key, field]) => `${JSON.stringify(key)}:${toJson(field)}`);
  return `{${fields.join(",")}}`;
}

/** Renders `report` as the one JSON object `counter bench --json` prints, on one line. */
export function formatBenchJson(report: BenchReport): string {
  return toJson(report as unknown as JsonValue);
}

function mixText(mix: BenchMix): string {
  return BENCH_OP_KINDS.filter((kind) => mix[kind] > 0).map((kind) => `${kind}=${mix[kind]}`)
    .join(",");
}

function msText(value: number | null): string {
  if (value === null) return "n/a";
  return value < 10 ? value.toFixed(3) : value < 1000 ? value.toFixed(2) : value.toFixed(0);
}

const LATENCY_COLUMNS: readonly (keyof LatencySummaryMs)[] = ["p50", "p90", "p99", "p999", "max"];
const LATENCY_HEADERS = ["p50", "p90", "p99", "p99.9", "max"];
const COLUMN_WIDTH = 9;
const ROW_NAME_WIDTH = 12;

function latencyRows(report: BenchReport): string[] {
  const rows: [string, LatencySummaryMs][] = [];
  const kinds = BENCH_OP_KINDS.filter((kind) => report.byOp[kind] !== undefined);
  if (kinds.length !== 1) rows.push(["all", report.latencyMs]);
  for (const kind of kinds) rows.push([kind, report.byOp[kind]!.latencyMs]);
  const header = "latency ms".padEnd(ROW_NAME_WIDTH) +
    LATENCY_HEADERS.map((h) => h.padStart(COLUMN_WIDTH)).join("");
  return [
    header,
    ...rows.map(([name, summary]) =>
      `  ${name}`.padEnd(ROW_NAME_WIDTH) +
      LATENCY_COLUMNS.map((column) => msText(summary[column]).padStart(COLUMN_WIDTH)).join("")
    ),
  ];
}

function codesText(byCode: Record<string, number>): string {
  return Object.entries(byCode).map(([code, count]) => `${code} ${count}`).join(", ");
}

function errorsText(failed: number, unknown: number, report: BenchReport): string {
  if (failed === 0 && unknown === 0) return "none";
  const parts: string[] = [];
  if (failed > 0) parts.push(`${failed} failed (${codesText(report.errors.failed)})`);
  if (unknown > 0) parts.push(`${unknown} outcome unknown (${codesText(report.errors.unknown)})`);
  return parts.join(", ");
}

function valueText(report: BenchReport): string {
  const { valueBefore, valueAfter, growthMin, growthMax, verified } = report;
  if (valueAfter === null) return `value: ${valueBefore} before; could not be read after the run`;
  const growth = valueAfter - valueBefore;
  const head = `value: ${valueBefore} -> ${valueAfter}, grew by ${growth}`;
  const expected = growthMin === growthMax
    ? `expected ${growthMin}`
    : `expected ${growthMin} to ${growthMax}, as some outcomes are unknown`;
  if (verified === true) return `${head}, as expected: verified`;
  if (verified === false) return `${head}, ${expected}: VERIFICATION FAILED`;
  return `${head}, ${expected}: consistent, but not verifiable exactly`;
}

function mib(bytes: number | null): string {
  return bytes === null ? "n/a" : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/**
 * Renders `report` as the lines `counter bench` prints without `--json`. The first is the line
 * SOFAJRaft's counter client prints, `N ops, cost: X ms`.
 */
export function formatBenchText(report: BenchReport): string[] {
  const shape = report.mode === "burst"
    ? `all ${report.concurrency} in flight at once`
    : `${report.concurrency} workers, closed loop, ${mixText(report.mix)}` +
      (report.mix.get > 0 ? `, ${report.consistency} reads` : "");
  const spread = report.groups === undefined ? "" : `, over ${report.groups.length} groups`;
  const lines = [
    `${report.ops} ops, cost: ${report.durationMs.toFixed(0)} ms`,
    `throughput: ${report.opsPerSec.toFixed(0)} ops/s acknowledged (${shape}${spread})`,
    ...latencyRows(report),
    `errors: ${errorsText(report.failed, report.unknown, report)}`,
  ];
  const { warmup } = report;
  if (warmup.ops > 0) {
    lines.push(
      `warm-up: ${warmup.ops} requests before measuring, ${warmup.ok} acknowledged` +
        (warmup.failed + warmup.unknown > 0
          ? `, ${warmup.failed} failed, ${warmup.unknown} outcome unknown`
          : ""),
    );
  }
  lines.push(valueText(report));
  if (report.nodes !== null) {
    lines.push(
      `resident memory: ${report.nodes.map((n) => `${n.id} ${mib(n.rssBytes)}`).join(", ")}`,
    );
  }
  lines.push(formatCpuSplit(report.cpu));
  if (report.groups !== undefined) lines.push(...groupRows(report.groups));
  return lines;
}

function checkText(group: GroupReport): string {
  if (group.valueAfter === null) return "unread";
  return group.verified === true ? "verified" : group.verified === false ? "FAILED" : "consistent";
}

/** One row per group: throughput, latency, value growth, and whether it is verified. */
function groupRows(groups: readonly GroupReport[]): string[] {
  const width = Math.max(ROW_NAME_WIDTH, ...groups.map((g) => g.name.length + 3));
  const header = "per group".padEnd(width) +
    ["ops/s", "p50 ms", "p99 ms", "growth", "check"].map((h) => h.padStart(COLUMN_WIDTH)).join("") +
    "  leader";
  return [
    header,
    ...groups.map((g) =>
      `  ${g.name}`.padEnd(width) +
      [
        g.opsPerSec.toFixed(0),
        msText(g.latencyMs.p50),
        msText(g.latencyMs.p99),
        g.valueAfter === null ? "n/a" : String(g.valueAfter - g.valueBefore),
        checkText(g),
      ].map((cell) => cell.padStart(COLUMN_WIDTH)).join("") + `  ${g.leader ?? "-"}`
    ),
  ];
}
