/**
 * The two workloads of `counter bench`, and the tally of what their requests did.
 *
 * - The burst: SOFAJRaft's counter client. `incrementAndGet(i)` for i in 0..n-1, every request
 *   sent before the first answer arrives.
 * - The closed loop: C workers, each sending its next request when the previous one is
 *   answered, until a number of requests or a deadline. A closed loop measures the latency of a
 *   group under a fixed load; a burst measures how fast it drains a queue.
 *
 * Every request lands in a {@linkcode PhaseTally}: its latency when acknowledged, its error
 * code and outcome when not, and the sum of the deltas that were (or may have been) applied, so
 * the caller can check the counter afterwards.
 *
 * @module
 */

import { BENCH_OP_KINDS, type BenchMix, type BenchOpKind, type ReadConsistency } from "../args.ts";
import { outcomeOf } from "../commands/_client.ts";
import type { ValueResult } from "../output.ts";
import { LatencyHistogram } from "./histogram.ts";

/** The part of `CounterClient` a benchmark uses; tests pass a fake. */
export interface BenchClient {
  /** Adds `delta`; resolves with the new value. */
  incrementAndGet(delta: bigint): Promise<ValueResult>;
  /** Resolves with the current value; linearizable unless `consistency` says otherwise. */
  get(options?: { consistency?: ReadConsistency }): Promise<ValueResult>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** What the requests of one kind did. */
export class OpTally {
  /** Latencies of the acknowledged requests. */
  readonly latency: LatencyHistogram = new LatencyHistogram();
  /** Requests that failed and certainly had no effect. */
  failed = 0;
  /** Requests whose outcome is unknown. */
  unknown = 0;

  /** Requests acknowledged. */
  get ok(): number {
    return this.latency.count;
  }

  /** Requests answered one way or another. */
  get done(): number {
    return this.latency.count + this.failed + this.unknown;
  }
}

/** The machine-readable code of a failed request: `CounterError.code`, else the error's name. */
export function errorCode(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && code !== "") return code;
  return error instanceof Error ? error.name : "UNKNOWN";
}

/** What the requests of one phase (the warm-up, or the measured run) did. */
export class PhaseTally {
  /** Per operation. */
  readonly byOp: Record<BenchOpKind, OpTally> = { incr: new OpTally(), get: new OpTally() };
  /** Failed requests by error code. */
  readonly failedByCode: Map<string, number> = new Map();
  /** Requests with an unknown outcome by error code. */
  readonly unknownByCode: Map<string, number> = new Map();
  /** Sum of the deltas of acknowledged increments. */
  deltaAcked = 0n;
  /** Sum of the deltas of increments whose outcome is unknown: applied, or not. */
  deltaUnknown = 0n;
  /** The first error of each outcome, for the one-line summary. */
  readonly firstError: { failed?: unknown; unknown?: unknown } = {};
  /** Time from the first request sent to the last one answered. */
  elapsedMs = 0;

  /** Records an acknowledged request. */
  recordOk(kind: BenchOpKind, latencyMs: number, delta: bigint): void {
    this.byOp[kind].latency.record(latencyMs * 1000);
    this.deltaAcked += delta;
  }

  /** Records a request that threw `error`. */
  recordError(kind: BenchOpKind, error: unknown, delta: bigint): void {
    const outcome = outcomeOf(error);
    const byCode = outcome === "unknown" ? this.unknownByCode : this.failedByCode;
    const code = errorCode(error);
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    this.firstError[outcome] ??= error;
    if (outcome === "unknown") {
      this.byOp[kind].unknown++;
      this.deltaUnknown += delta;
    } else {
      this.byOp[kind].failed++;
    }
  }

  /** Requests answered, of every kind. */
  get done(): number {
    return this.#sum((t) => t.done);
  }

  /** Requests acknowledged, of every kind. */
  get ok(): number {
    return this.#sum((t) => t.ok);
  }

  /** Requests failed, of every kind. */
  get failed(): number {
    return this.#sum((t) => t.failed);
  }

  /** Requests with an unknown outcome, of every kind. */
  get unknown(): number {
    return this.#sum((t) => t.unknown);
  }

  /** Latencies of every acknowledged request. */
  latency(): LatencyHistogram {
    const all = new LatencyHistogram();
    for (const kind of BENCH_OP_KINDS) all.add(this.byOp[kind].latency);
    return all;
  }

  #sum(field: (tally: OpTally) => number): number {
    return BENCH_OP_KINDS.reduce((sum, kind) => sum + field(this.byOp[kind]), 0);
  }
}

/**
 * The operation of the `index`th request of a closed loop with `mix`.
 *
 * Reads are spread evenly rather than drawn at random, so that every run, of any length, has the
 * mix's exact proportions (to within one request) and the same sequence.
 */
export function opKindAt(index: number, mix: BenchMix): BenchOpKind {
  const readsBefore = Math.floor((index * mix.get) / 100);
  const readsThrough = Math.floor(((index + 1) * mix.get) / 100);
  return readsThrough > readsBefore ? "get" : "incr";
}

/** A monotonic clock in milliseconds; `performance.now` unless a test says otherwise. */
export type Clock = () => number;

async function timed(
  tally: PhaseTally,
  kind: BenchOpKind,
  delta: bigint,
  now: Clock,
  request: () => Promise<unknown>,
): Promise<void> {
  const startMs = now();
  try {
    // ---- Call into the service. ----
    await request();
  } catch (error) {
    tally.recordError(kind, error, delta);
    return;
  }
  // Outside the try: a bug in the tally must surface, not pass for a failed request.
  tally.recordOk(kind, now() - startMs, delta);
}

/**
 * Runs SOFAJRaft's counter workload: `incrementAndGet(i)` for i in 0..`ops`-1, all sent at
 * once. Resolves when every request is answered; the deltas add up to `ops * (ops - 1) / 2`.
 */
export async function runBurst(
  client: BenchClient,
  ops: number,
  tally: PhaseTally,
  now: Clock = performance.now.bind(performance),
): Promise<void> {
  const startMs = now();
  await Promise.all(
    Array.from({ length: ops }, (_, i) => {
      const delta = BigInt(i);
      return timed(tally, "incr", delta, now, () => client.incrementAndGet(delta));
    }),
  );
  tally.elapsedMs = now() - startMs;
}

/** Options of {@linkcode runClosedLoop}; exactly one of `ops` and `durationMs` is non-null. */
export interface ClosedLoopOptions {
  /** Workers, each with one request in flight at a time. */
  concurrency: number;
  /** Requests to send in all; null to run for `durationMs`. */
  ops: number | null;
  /** How long to keep sending; null to send `ops` requests. */
  durationMs: number | null;
  /** Percentage of increments and reads. */
  mix: BenchMix;
  /** Consistency of the reads. */
  consistency: ReadConsistency;
  /** The clock latencies and the deadline are measured with. Default `performance.now`. */
  now?: Clock;
  /** Once aborted (Ctrl-C), workers send nothing more; requests in flight are waited for. */
  signal?: AbortSignal;
}

/**
 * Runs `concurrency` workers that each send a request, wait for its answer, and send the next,
 * until `ops` requests have been sent or `durationMs` has passed. Requests in flight at the
 * deadline are waited for. Increments add 1.
 */
export async function runClosedLoop(
  client: BenchClient,
  options: ClosedLoopOptions,
  tally: PhaseTally,
): Promise<void> {
  const { concurrency, ops, durationMs, mix, consistency } = options;
  if ((ops === null) === (durationMs === null)) {
    throw new TypeError("give exactly one of ops and durationMs");
  }
  const now = options.now ?? performance.now.bind(performance);
  const startMs = now();
  const endMs = durationMs === null ? Infinity : startMs + durationMs;
  const opsMax = ops ?? Infinity;
  let sent = 0;

  const readOptions = { consistency };
  // The loop is inlined (no closure or helper promise per request): its CPU is counted as the
  // client's in the report's CPU split.
  async function worker(): Promise<void> {
    while (sent < opsMax && now() < endMs && options.signal?.aborted !== true) {
      const kind = opKindAt(sent++, mix);
      const delta = kind === "incr" ? 1n : 0n;
      const startMs = now();
      try {
        // ---- Call into the service. ----
        await (kind === "incr" ? client.incrementAndGet(1n) : client.get(readOptions));
      } catch (error) {
        tally.recordError(kind, error, delta);
        continue;
      }
      // Outside the try: a bug in the tally must surface, not pass for a failed request.
      tally.recordOk(kind, now() - startMs, delta);
    }
  }

  await Promise.all(Array.from({ length: concurrency }, worker));
  tally.elapsedMs = now() - startMs;
}
