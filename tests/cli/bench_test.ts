/**
 * `counter bench` with a fake client and a fake cluster: the workloads, the report, the check of
 * the final value, the exit codes, and the progress display.
 */

import assert from "node:assert/strict";
import { type BenchOptions, DEFAULT_PEERS, type ReadConsistency } from "../../lib/cli/args.ts";
import {
  formatProgressBar,
  formatProgressLine,
  PROGRESS_BAR_INTERVAL_MS,
  ProgressReporter,
} from "../../lib/cli/bench/progress.ts";
import { toJson, verify } from "../../lib/cli/bench/report.ts";
import { errorCode, opKindAt } from "../../lib/cli/bench/workload.ts";
import {
  type BenchCluster,
  type BenchDeps,
  residentBytes,
  runBench,
} from "../../lib/cli/commands/bench.ts";

const LEADER = "127.0.0.1:8082";

/** An error shaped like the client's `CounterError`. */
class FakeCounterError extends Error {
  constructor(message: string, readonly code: string, readonly outcome: "failed" | "unknown") {
    super(message);
  }
}

interface Call {
  op: "incr" | "get";
  delta?: bigint;
  consistency?: ReadConsistency;
}

/**
 * A client that keeps the value in memory. `failWith` decides, per call, to fail; `apply` can
 * make an increment lie (apply something else than asked) to test the final check.
 */
class FakeClient {
  value = 0n;
  calls: Call[] = [];
  inFlight = 0;
  inFlightMax = 0;
  closed = false;
  delayMs = 0;
  connectOptions: unknown;
  failWith: (call: number, op: Call) => Error | undefined = () => undefined;
  apply: (delta: bigint, error: Error | undefined) => bigint = (delta, error) =>
    error === undefined ? delta : 0n;

  async #call(op: Call): Promise<{ value: bigint; leader: string }> {
    const index = this.calls.length;
    this.calls.push(op);
    this.inFlight++;
    this.inFlightMax = Math.max(this.inFlightMax, this.inFlight);
    try {
      if (this.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.delayMs));
      else await Promise.resolve();
      const error = this.failWith(index, op);
      if (op.op === "incr") this.value += this.apply(op.delta!, error);
      if (error !== undefined) throw error;
      return { value: this.value, leader: LEADER };
    } finally {
      this.inFlight--;
    }
  }

  incrementAndGet(delta: bigint) {
    return this.#call({ op: "incr", delta });
  }

  get(options: { consistency?: ReadConsistency } = {}) {
    return this.#call({ op: "get", consistency: options.consistency });
  }

  close() {
    this.closed = true;
    return Promise.resolve();
  }

  /** The calls of the run, without the two reads that bracket it. */
  get workload(): Call[] {
    return this.calls.slice(1, -1);
  }
}

/**
 * A CPU clock per process that advances by `ticksPerRead[pid]` (default 1) every time it is read:
 * each process's reading at the end of the window is one step past the one at its start.
 */
function fakeCpuTicks(ticksPerRead: Record<string, number> = {}) {
  const ticks = new Map<number | "self", number>();
  return (pid: number | "self") => {
    const next = (ticks.get(pid) ?? 0) + (ticksPerRead[String(pid)] ?? 1);
    ticks.set(pid, next);
    return { ticks: next };
  };
}

function harness(client: FakeClient, extra: BenchDeps = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: BenchDeps = {
    cpuTicks: fakeCpuTicks(),
    connect: (options) => {
      client.connectOptions = options;
      return client;
    },
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    progress: null,
    ...extra,
  };
  return { out, err, deps };
}

const BURST: BenchOptions = {
  peers: [...DEFAULT_PEERS],
  group: "counter",
  json: false,
  timeoutMs: 5000,
  ops: 1000,
  durationSecs: null,
  concurrency: null,
  mix: { incr: 100, get: 0 },
  consistency: "linearizable",
  warmup: 0,
  local: false,
  tls: false,
  groups: ["counter"],
};

function closedLoop(overrides: Partial<BenchOptions>): BenchOptions {
  return { ...BURST, concurrency: 8, ops: 200, ...overrides };
}

Deno.test("the default run is SOFAJRaft's: deltas 0..999, all in flight, +499500", async () => {
  const client = new FakeClient();
  client.value = 7n;
  client.delayMs = 1;
  const { out, err, deps } = harness(client);
  assert.equal(await runBench(BURST, deps), 0);
  assert.deepEqual(err, []);
  assert.equal(client.value, 7n + 499_500n);
  assert.deepEqual(
    client.workload.map((c) => c.delta),
    Array.from({ length: 1000 }, (_, i) => BigInt(i)),
  );
  assert.equal(client.inFlightMax, 1000, "every increment is in flight at once");
  assert.deepEqual(client.calls[0], { op: "get", consistency: "linearizable" });
  assert.deepEqual(client.calls.at(-1), { op: "get", consistency: "linearizable" });
  assert.match(out[0], /^1000 ops, cost: \d+ ms$/);
  assert.match(out[1], /^throughput: \d+ ops\/s acknowledged \(all 1000 in flight at once\)$/);
  assert.match(out[2], /^latency ms\s+p50\s+p90\s+p99\s+p99\.9\s+max$/);
  assert.match(out[3], /^ {2}incr\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+\s+[0-9.]+$/);
  assert.equal(out[4], "errors: none");
  assert.equal(out[5], "value: 7 -> 499507, grew by 499500, as expected: verified");
  // One tick (10 ms) of the client's CPU over the 1000 measured requests.
  assert.equal(
    out[6],
    "cpu per op: client 10.0 µs; total 10.0 µs (1000 ops, /proc ticks of 10 ms)",
  );
  assert.equal(out.length, 7);
  assert.ok(client.closed);
  assert.deepEqual(client.connectOptions, {
    peers: [...DEFAULT_PEERS],
    group: "counter",
    timeoutMs: 5000,
  });
});

Deno.test("bench --json prints one JSON object with the documented fields", async () => {
  const client = new FakeClient();
  client.value = 2n ** 60n;
  const { out, err, deps } = harness(client);
  const options = closedLoop({ json: true, ops: 1000, mix: { incr: 90, get: 10 } });
  assert.equal(await runBench(options, deps), 0);
  assert.deepEqual(err, []);
  assert.equal(out.length, 1);
  assert.ok(!out[0].includes("\n"));
  const report = JSON.parse(out[0]);
  assert.deepEqual(
    Object.keys(report).sort(),
    [
      "concurrency",
      "consistency",
      "byOp",
      "cpu",
      "durationMs",
      "errors",
      "failed",
      "growthMax",
      "growthMin",
      "latencyMs",
      "leader",
      "mix",
      "mode",
      "nodes",
      "ok",
      "ops",
      "opsPerSec",
      "unknown",
      "valueAfter",
      "valueBefore",
      "verified",
      "warmup",
    ].sort(),
  );
  assert.equal(report.mode, "closed-loop");
  assert.equal(report.concurrency, 8);
  assert.deepEqual(report.mix, { incr: 90, get: 10 });
  assert.equal(report.ops, 1000);
  assert.equal(report.ok, 1000);
  assert.equal(typeof report.durationMs, "number");
  assert.equal(typeof report.opsPerSec, "number");
  for (const summary of [report.latencyMs, report.byOp.incr.latencyMs, report.byOp.get.latencyMs]) {
    assert.deepEqual(Object.keys(summary), ["p50", "p90", "p99", "p999", "max"]);
    for (const value of Object.values(summary)) assert.equal(typeof value, "number");
    assert.ok(summary.p50 <= summary.p90 && summary.p90 <= summary.p99);
    assert.ok(summary.p99 <= summary.p999 && summary.p999 <= summary.max);
  }
  assert.equal(report.byOp.incr.ops, 900);
  assert.equal(report.byOp.get.ops, 100);
  assert.deepEqual(report.errors, { failed: {}, unknown: {} });
  assert.deepEqual(report.warmup, { ops: 0, ok: 0, failed: 0, unknown: 0 });
  // Beyond 2^53 - 1 the values are strings, so that no parser rounds them.
  assert.equal(report.valueBefore, "1152921504606846976");
  assert.equal(report.valueAfter, "1152921504606847876");
  assert.equal(report.growthMin, 900);
  assert.equal(report.verified, true);
  assert.equal(report.leader, LEADER);
  assert.equal(report.nodes, null);
  // Without --local only the client's own CPU is measured.
  assert.deepEqual(report.cpu, {
    available: true,
    ops: 1000,
    ticksPerSec: 100,
    processes: [{ id: "client", role: "client", ticks: 1, usPerOp: 10 }],
    totalUsPerOp: 10,
  });
});

Deno.test("the closed loop keeps C requests in flight and follows the mix", async () => {
  const client = new FakeClient();
  client.delayMs = 1;
  const { deps } = harness(client);
  const options = closedLoop({
    concurrency: 4,
    ops: 200,
    mix: { incr: 75, get: 25 },
    consistency: "stale",
  });
  assert.equal(await runBench(options, deps), 0);
  assert.equal(client.inFlightMax, 4);
  const workload = client.workload;
  assert.equal(workload.length, 200);
  assert.equal(workload.filter((c) => c.op === "get").length, 50);
  for (const call of workload) {
    if (call.op === "get") assert.equal(call.consistency, "stale");
    else assert.equal(call.delta, 1n);
  }
  assert.equal(client.value, 150n);
});

Deno.test("reads are spread evenly through the closed loop", () => {
  const mix = { incr: 90, get: 10 };
  const kinds = Array.from({ length: 1000 }, (_, i) => opKindAt(i, mix));
  assert.equal(kinds.filter((k) => k === "get").length, 100);
  // Every window of 10 requests has exactly one read.
  for (let i = 0; i < 1000; i += 10) {
    assert.equal(kinds.slice(i, i + 10).filter((k) => k === "get").length, 1);
  }
  assert.ok(
    Array.from({ length: 100 }, (_, i) => opKindAt(i, { incr: 100, get: 0 }))
      .every((k) => k === "incr"),
  );
  assert.ok(
    Array.from({ length: 100 }, (_, i) => opKindAt(i, { incr: 0, get: 100 }))
      .every((k) => k === "get"),
  );
});

Deno.test("the warm-up is not measured, but its increments are checked", async () => {
  const client = new FakeClient();
  const { out, deps } = harness(client);
  assert.equal(await runBench(closedLoop({ ops: 100, warmup: 30, json: true }), deps), 0);
  assert.equal(client.workload.length, 130);
  const report = JSON.parse(out[0]);
  assert.equal(report.ops, 100);
  assert.deepEqual(report.warmup, { ops: 30, ok: 30, failed: 0, unknown: 0 });
  assert.equal(report.valueAfter, 130);
  assert.equal(report.verified, true);
});

Deno.test("a burst warms up with bursts of its size, then measures one", async () => {
  const client = new FakeClient();
  const { out, deps } = harness(client);
  assert.equal(await runBench({ ...BURST, ops: 10, warmup: 25, json: true }, deps), 0);
  // Warm-up bursts of 10, 10 and 5 (deltas from 0 each), then the measured 10.
  const deltas = client.workload.map((c) => Number(c.delta));
  assert.deepEqual(deltas, [
    ...Array.from({ length: 10 }, (_, i) => i),
    ...Array.from({ length: 10 }, (_, i) => i),
    ...Array.from({ length: 5 }, (_, i) => i),
    ...Array.from({ length: 10 }, (_, i) => i),
  ]);
  const report = JSON.parse(out[0]);
  assert.equal(report.mode, "burst");
  assert.equal(report.ops, 10);
  assert.deepEqual(report.warmup, { ops: 25, ok: 25, failed: 0, unknown: 0 });
  assert.equal(report.valueAfter, 45 + 45 + 10 + 45);
  assert.equal(report.verified, true);
});

Deno.test("--duration runs until the time is up", async () => {
  const client = new FakeClient();
  // A fake clock that advances 1 ms per reading: the run ends after a known number of requests.
  let nowMs = 0;
  const { out, deps } = harness(client, { now: () => nowMs++ });
  const options = closedLoop({ ops: null, durationSecs: 1, concurrency: 1, json: true });
  assert.equal(await runBench(options, deps), 0);
  const report = JSON.parse(out[0]);
  // Each request reads the clock three times: the deadline check, its start and its end.
  assert.ok(report.ops >= 300 && report.ops <= 340, `${report.ops} ops`);
  assert.ok(report.durationMs >= 1000 && report.durationMs < 1010, `${report.durationMs} ms`);
  assert.equal(report.verified, true);
});

Deno.test("bench counts errors by code and exits 1 when some requests failed", async () => {
  const client = new FakeClient();
  client.failWith = (call) =>
    call % 10 === 5
      ? new FakeCounterError("no leader", "UNAVAILABLE", "failed")
      : call % 10 === 7
      ? new FakeCounterError("overflow", "OVERFLOW", "failed")
      : undefined;
  const { out, err, deps } = harness(client);
  assert.equal(await runBench(closedLoop({ ops: 100, json: true }), deps), 1);
  const report = JSON.parse(out[0]);
  assert.equal(report.failed, 20);
  assert.equal(report.ok, 80);
  assert.deepEqual(report.errors, { failed: { UNAVAILABLE: 10, OVERFLOW: 10 }, unknown: {} });
  // Failed increments certainly had no effect, so the check still holds.
  assert.equal(report.verified, true);
  assert.deepEqual(err, [
    "counter bench: of 100 requests, 20 failed; first error: no leader",
  ]);
});

Deno.test("bench exits 3 when some outcomes are unknown, and checks the value's range", async () => {
  const client = new FakeClient();
  client.failWith = (call) =>
    call === 4
      ? new FakeCounterError("timed out", "TIMEOUT", "unknown")
      : call === 6
      ? new FakeCounterError("refused", "UNAVAILABLE", "failed")
      : undefined;
  // The increment whose outcome is unknown was in fact applied.
  client.apply = (delta, error) =>
    error === undefined || (error as FakeCounterError).outcome === "unknown" ? delta : 0n;
  const { out, err, deps } = harness(client);
  assert.equal(await runBench(closedLoop({ ops: 10, concurrency: 1 }), deps), 3);
  assert.deepEqual(err, [
    "counter bench: of 10 requests, 1 failed and 1 with outcome unknown; first error: timed out",
  ]);
  assert.ok(out.includes("errors: 1 failed (UNAVAILABLE 1), 1 outcome unknown (TIMEOUT 1)"));
  assert.ok(out.includes(
    "value: 0 -> 9, grew by 9, expected 8 to 9, as some outcomes are unknown:" +
      " consistent, but not verifiable exactly",
  ));
});

Deno.test("bench exits 1 when the counter did not grow by the acknowledged increments", async () => {
  const client = new FakeClient();
  // An acknowledged increment that was applied twice: exactly the bug the check is for.
  client.apply = (delta) => delta === 500n ? 1000n : delta;
  const { out, err, deps } = harness(client);
  assert.equal(await runBench({ ...BURST, json: true }, deps), 1);
  const report = JSON.parse(out[0]);
  assert.equal(report.verified, false);
  assert.equal(report.valueAfter, 500_000);
  assert.deepEqual(err, [
    "counter bench: verification failed: the counter grew by 500000," +
    " but the acknowledged increments add up to 499500",
  ]);
});

Deno.test("bench fails clearly when it cannot read the counter", async () => {
  const before = new FakeClient();
  before.failWith = (call) =>
    call === 0 ? new FakeCounterError("no leader", "UNAVAILABLE", "failed") : undefined;
  const first = harness(before);
  assert.equal(await runBench(BURST, first.deps), 1);
  assert.deepEqual(first.out, []);
  assert.deepEqual(first.err, ["counter bench: cannot read the counter before the run: no leader"]);
  assert.equal(before.calls.length, 1, "no workload without a starting value");
  assert.ok(before.closed);

  const after = new FakeClient();
  after.failWith = (call, op) =>
    call > 0 && op.op === "get" ? new FakeCounterError("gone", "UNAVAILABLE", "failed") : undefined;
  const second = harness(after);
  assert.equal(await runBench({ ...closedLoop({ ops: 10 }), json: true }, second.deps), 1);
  assert.equal(JSON.parse(second.out[0]).verified, null);
  assert.deepEqual(second.err, ["counter bench: cannot read the counter after the run: gone"]);
});

/** A cluster that records what was done to it. */
function fakeCluster(leaderError?: Error) {
  const events: string[] = [];
  const cluster: BenchCluster = {
    ids: ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"],
    dataRoot: "/tmp/counter-cluster-fake",
    waitForLeader: () => {
      events.push("waitForLeader");
      return leaderError === undefined
        ? Promise.resolve("127.0.0.1:9002")
        : Promise.reject(leaderError);
    },
    pid: (id) => id.endsWith("3") ? null : Number(id.slice(-1)) * 100,
    stop: () => {
      events.push("stop");
      return Promise.resolve();
    },
  };
  return { cluster, events };
}

Deno.test("bench --local runs against a cluster it starts, reports memory, and stops it", async () => {
  const client = new FakeClient();
  const { cluster, events } = fakeCluster();
  const groups: string[] = [];
  const { out, err, deps } = harness(client, {
    startCluster: (names) => {
      groups.push(...names);
      return Promise.resolve(cluster);
    },
    residentBytes: (pid) => Promise.resolve(pid * 1024 * 1024),
  });
  assert.equal(await runBench({ ...BURST, ops: 10, local: true, json: true }, deps), 0);
  assert.deepEqual(groups, ["counter"]);
  assert.deepEqual(events, ["waitForLeader", "stop"]);
  assert.equal(out.length, 1, "--json: stdout is the one JSON object");
  assert.deepEqual(err, [
    "local cluster data and node logs in /tmp/counter-cluster-fake (removed at the end)",
    "stopped the local cluster and removed /tmp/counter-cluster-fake",
  ]);
  assert.deepEqual((client.connectOptions as { peers: string[] }).peers, cluster.ids);
  assert.deepEqual(JSON.parse(out[0]).nodes, [
    { id: "127.0.0.1:9001", rssBytes: 100 * 1024 * 1024 },
    { id: "127.0.0.1:9002", rssBytes: 200 * 1024 * 1024 },
    { id: "127.0.0.1:9003", rssBytes: null },
  ]);

  const text = harness(new FakeClient(), {
    startCluster: () => Promise.resolve(fakeCluster().cluster),
    residentBytes: (pid) => Promise.resolve(pid * 1024 * 1024),
  });
  assert.equal(await runBench({ ...BURST, ops: 10, local: true }, text.deps), 0);
  assert.match(text.out[0], /^local cluster data and node logs in \/tmp\/counter-cluster-fake /);
  assert.match(text.out[1], /^local cluster of 3 nodes: .*; leader 127\.0\.0\.1:9002$/);
  assert.equal(text.out.at(-1), "stopped the local cluster and removed /tmp/counter-cluster-fake");
  assert.equal(
    text.out.at(-3),
    "resident memory: 127.0.0.1:9001 100.0 MiB, 127.0.0.1:9002 200.0 MiB, 127.0.0.1:9003 n/a",
  );
  // A node that is not running has no CPU time: the split says so rather than guess.
  assert.equal(
    text.out.at(-2),
    "cpu per op: unavailable (node 127.0.0.1:9003 is not running)",
  );
});

Deno.test("bench --local splits the CPU per op between the client, the leader and the followers", async () => {
  const { cluster } = fakeCluster();
  const running: BenchCluster = { ...cluster, pid: (id) => Number(id.slice(-1)) * 100 };
  // Per read of each process: the client 2 ticks, node 9002 (the leader) 3, the others 1.
  const cpuTicks = fakeCpuTicks({ self: 2, "200": 3 });
  const json = harness(new FakeClient(), {
    startCluster: () => Promise.resolve(running),
    residentBytes: () => Promise.resolve(null),
    cpuTicks,
  });
  assert.equal(await runBench({ ...BURST, ops: 100, local: true, json: true }, json.deps), 0);
  assert.deepEqual(JSON.parse(json.out[0]).cpu, {
    available: true,
    ops: 100,
    ticksPerSec: 100,
    processes: [
      { id: "client", role: "client", ticks: 2, usPerOp: 200 },
      { id: "127.0.0.1:9001", role: "follower", ticks: 1, usPerOp: 100 },
      { id: "127.0.0.1:9002", role: "leader", ticks: 3, usPerOp: 300 },
      { id: "127.0.0.1:9003", role: "follower", ticks: 1, usPerOp: 100 },
    ],
    totalUsPerOp: 700,
  });

  const text = harness(new FakeClient(), {
    startCluster: () => Promise.resolve(running),
    residentBytes: () => Promise.resolve(null),
    cpuTicks: fakeCpuTicks({ self: 2, "200": 3 }),
  });
  assert.equal(await runBench({ ...BURST, ops: 100, local: true }, text.deps), 0);
  assert.equal(
    text.out.at(-2),
    "cpu per op: client 200.0 µs, follower 127.0.0.1:9001 100.0 µs, leader 127.0.0.1:9002 300.0 µs," +
      " follower 127.0.0.1:9003 100.0 µs; total 700.0 µs (100 ops, /proc ticks of 10 ms)",
  );
});

Deno.test("the CPU split is unavailable, with the reason, where /proc cannot be read", async () => {
  const { out, deps } = harness(new FakeClient(), {
    cpuTicks: (pid) => ({ unavailable: `cannot read /proc/${pid}/stat: not found` }),
  });
  assert.equal(await runBench({ ...BURST, ops: 10, json: true }, deps), 0);
  assert.deepEqual(JSON.parse(out[0]).cpu, {
    available: false,
    reason: "cannot read /proc/self/stat: not found",
  });
});

Deno.test("bench --local stops its cluster even when no leader is elected", async () => {
  const { cluster, events } = fakeCluster(new Error("no leader within 30000 ms"));
  const { deps } = harness(new FakeClient(), { startCluster: () => Promise.resolve(cluster) });
  await assert.rejects(
    runBench({ ...BURST, local: true }, deps),
    /no leader within 30000 ms/,
  );
  assert.deepEqual(events, ["waitForLeader", "stop"]);
});

Deno.test("residentBytes reads VmRSS, and gives null for a missing process", async () => {
  if (Deno.build.os === "linux") {
    const bytes = await residentBytes(Deno.pid);
    assert.ok(bytes !== null && bytes > 1024 * 1024, `${bytes}`);
  }
  assert.equal(await residentBytes(2 ** 31 - 1), null);
});

Deno.test("verify decides from the range the increments allow", () => {
  assert.equal(verify(10n, 15n, 5n, 5n).verified, true);
  assert.equal(verify(10n, 16n, 5n, 5n).verified, false);
  assert.equal(verify(10n, 14n, 5n, 5n).verified, false);
  assert.equal(verify(10n, 16n, 5n, 7n).verified, null);
  assert.equal(verify(10n, 18n, 5n, 7n).verified, false);
  assert.equal(verify(10n, null, 5n, 5n).verified, null);
  assert.throws(() => verify(0n, 0n, 5n, 4n), RangeError);
});

Deno.test("toJson writes bigints exactly and skips undefined fields", () => {
  assert.equal(
    toJson({ a: 1n, b: 2n ** 63n - 1n, c: [null, true, "x"], d: undefined, e: { f: -2.5 } }),
    '{"a":1,"b":"9223372036854775807","c":[null,true,"x"],"e":{"f":-2.5}}',
  );
  assert.throws(() => toJson(NaN), RangeError);
});

Deno.test("errorCode uses CounterError's code, else the error's name", () => {
  assert.equal(errorCode(new FakeCounterError("x", "TIMEOUT", "unknown")), "TIMEOUT");
  assert.equal(errorCode(new TypeError("x")), "TypeError");
  assert.equal(errorCode("a string"), "UNKNOWN");
});

/** A sink and clock for the progress reporter, advanced by hand. */
function progressHarness(isTerminal: boolean, goal = { ops: 1000 }) {
  const written: string[] = [];
  let nowMs = 0;
  let done = 0;
  const reporter = new ProgressReporter({
    sink: { isTerminal, write: (text) => written.push(text) },
    goal,
    now: () => nowMs,
    read: () => ({ done, errors: 2 }),
  });
  return {
    written,
    reporter,
    advance(ms: number, ops: number) {
      nowMs += ms;
      done += ops;
      reporter.tick();
    },
  };
}

Deno.test("progress shows nothing for the first second", () => {
  for (const isTerminal of [true, false]) {
    const h = progressHarness(isTerminal);
    h.reporter.start();
    h.advance(500, 100);
    h.advance(499, 100);
    h.reporter.stop();
    assert.deepEqual(h.written, []);
  }
});

Deno.test("progress prints plain lines when stderr is not a terminal", () => {
  const h = progressHarness(false);
  h.reporter.start();
  h.advance(1000, 400);
  h.advance(1000, 200);
  h.reporter.stop();
  assert.deepEqual(h.written, [
    "counter bench: 400/1000 ops, 1.0 s, 400 ops/s, 2 errors\n",
    "counter bench: 600/1000 ops, 2.0 s, 200 ops/s, 2 errors\n",
  ]);
});

Deno.test("progress redraws a bar on a terminal, and erases it at the end", () => {
  const h = progressHarness(true);
  h.reporter.start();
  h.advance(1000, 500);
  h.advance(PROGRESS_BAR_INTERVAL_MS, 100);
  h.reporter.stop();
  assert.deepEqual(h.written, [
    "\r[############............]  50% 500/1000 ops, 1.0 s, 500 ops/s, 2 errors\x1b[K",
    "\r[##############..........]  60% 600/1000 ops, 1.2 s, 500 ops/s, 2 errors\x1b[K",
    "\r\x1b[K",
  ]);
});

Deno.test("progress renders a duration goal", () => {
  assert.equal(
    formatProgressBar({ durationMs: 5000 }, { done: 900, errors: 0 }, 2500, 360),
    "[############............]  50% 2.5/5 s, 900 ops, 360 ops/s, 0 errors",
  );
  assert.equal(
    formatProgressLine({ durationMs: 5000 }, { done: 900, errors: 1 }, 6000, 450),
    "counter bench: 6.0/5 s, 900 ops, 450 ops/s, 1 errors",
  );
  assert.equal(
    formatProgressBar({ ops: 10 }, { done: 20, errors: 0 }, 1000, 1),
    "[########################] 100% 20/10 ops, 1.0 s, 1 ops/s, 0 errors",
  );
});

Deno.test("Ctrl-C during a closed loop stops sending and prints the partial summary", async () => {
  const client = new FakeClient();
  client.delayMs = 1;
  let ctrlC: (() => void) | null = null;
  let unregistered = false;
  // The 50th request presses Ctrl-C.
  client.failWith = (call) => {
    if (call === 50) ctrlC?.();
    return undefined;
  };
  const { out, err, deps } = harness(client, {
    interrupts: (handler) => {
      ctrlC = handler;
      return () => unregistered = true;
    },
  });
  const options = closedLoop({ ops: null, durationSecs: 3600, concurrency: 4 });
  assert.equal(await runBench(options, deps), 0);
  assert.ok(unregistered, "the Ctrl-C handler is removed");
  assert.match(err[0], /^counter bench: interrupted; waiting for the requests in flight/);
  assert.equal(out[0], "interrupted by Ctrl-C: a partial run, summed up below");
  const sent = client.workload.length;
  assert.ok(sent >= 50 && sent < 60, `${sent} requests: sending stopped at Ctrl-C`);
  assert.match(out[1], new RegExp(`^${sent} ops, cost: \\d+ ms$`));
  assert.ok(out.some((line) => /verified/.test(line)), out.join("\n"));

  const j = harness(new FakeClient(), {
    interrupts: (handler) => {
      handler();
      return () => {};
    },
  });
  assert.equal(await runBench({ ...options, json: true }, j.deps), 0);
  const report = JSON.parse(j.out[0]);
  assert.equal(report.interrupted, true);
  assert.equal(report.ops, 0);
});
