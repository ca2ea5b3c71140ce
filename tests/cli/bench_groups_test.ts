/**
 * `counter bench --groups N` with a fake client of several groups: requests spread round robin,
 * per-group figures in the text and the JSON, and each group's value checked on its own.
 */

import assert from "node:assert/strict";
import {
  benchGroupNames,
  type BenchOptions,
  DEFAULT_PEERS,
  parseBenchArgs,
  type ReadConsistency,
} from "../../lib/cli/args.ts";
import { UsageError } from "../../lib/cli/usage_error.ts";
import { type BenchCluster, type BenchDeps, runBench } from "../../lib/cli/commands/bench.ts";

/** A client of several groups, each with its own value and leader, through one object. */
class FakeGroups {
  readonly values = new Map<string, bigint>();
  readonly calls: { group: string; op: "incr" | "get" }[] = [];
  /** Makes the increment of group `group` apply `delta + extra` (to test the check). */
  extra = new Map<string, bigint>();
  closed = false;

  constructor(readonly defaultGroup: string) {}

  async call(group: string, op: "incr" | "get", delta = 0n) {
    this.calls.push({ group, op });
    await Promise.resolve();
    const value = (this.values.get(group) ?? 0n) + delta + (this.extra.get(group) ?? 0n);
    if (op === "incr") this.values.set(group, value);
    return { value: this.values.get(group) ?? 0n, leader: `leader-of-${group}` };
  }

  view(group: string) {
    return {
      incrementAndGet: (delta: bigint) => this.call(group, "incr", delta),
      get: (_options?: { consistency?: ReadConsistency }) => this.call(group, "get"),
      close: () => {
        this.closed = true;
        return Promise.resolve();
      },
      group: (name: string) => this.view(name),
    };
  }
}

const OPTIONS: BenchOptions = {
  peers: [...DEFAULT_PEERS],
  group: "counter",
  json: false,
  timeoutMs: 5000,
  ops: 300,
  durationSecs: null,
  concurrency: 8,
  mix: { incr: 100, get: 0 },
  consistency: "linearizable",
  warmup: 30,
  local: false,
  tls: false,
  groups: benchGroupNames("counter", "g", 3),
};

function harness(fake: FakeGroups, extra: BenchDeps = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const deps: BenchDeps = {
    cpuTicks: () => ({ ticks: 1 }),
    connect: () => fake.view(fake.defaultGroup),
    out: (line) => out.push(line),
    err: (line) => err.push(line),
    progress: null,
    ...extra,
  };
  return { out, err, deps };
}

Deno.test("--groups names the groups --group first, then PREFIX1..PREFIX(N-1); checks them", () => {
  assert.deepEqual(benchGroupNames("counter", "g", 1), ["counter"]);
  assert.deepEqual(benchGroupNames("counter", "g", 3), ["counter", "g1", "g2"]);
  const parsed = parseBenchArgs(["--concurrency", "4", "--groups", "4", "--group-prefix", "t-"]);
  assert.deepEqual(parsed.groups, ["counter", "t-1", "t-2", "t-3"]);
  assert.deepEqual(parseBenchArgs([]).groups, ["counter"]);
  assert.deepEqual(parseBenchArgs(["--group", "x", "--groups", "2"]).groups, ["x", "g1"]);
  assert.throws(() => parseBenchArgs(["--groups", "0"]), UsageError);
  assert.throws(() => parseBenchArgs(["--groups", "1025"]), UsageError);
  assert.throws(() => parseBenchArgs(["--group-prefix", "x"]), /--group-prefix needs --groups/);
  assert.throws(() => parseBenchArgs(["--groups", "2", "--group-prefix", "a/b"]), UsageError);
  assert.throws(() => parseBenchArgs(["--group", "g1", "--groups", "3"]), /also one of/);
});

Deno.test("the closed loop is spread round robin over the groups; each group is verified", async () => {
  const fake = new FakeGroups("counter");
  fake.values.set("g1", 1000n);
  const { out, err, deps } = harness(fake);
  assert.equal(await runBench({ ...OPTIONS, json: true }, deps), 0, err.join("\n"));
  assert.deepEqual(err, []);
  const report = JSON.parse(out[0]);
  assert.equal(report.verified, true);
  assert.ok(report.cpu !== undefined, "the cpu split is still there");
  // Sums over the groups: 30 + 300 increments of 1.
  assert.equal(report.valueBefore, 1000);
  assert.equal(report.valueAfter, 1330);
  assert.deepEqual(report.groups.map((g: { name: string }) => g.name), ["counter", "g1", "g2"]);
  for (const g of report.groups) {
    assert.equal(g.ops, 100, JSON.stringify(g));
    assert.equal(g.ok, 100);
    assert.equal(g.verified, true);
    assert.equal(g.growthMin, 110, "10 of the warm-up and 100 measured");
    assert.equal(g.valueAfter - g.valueBefore, 110);
    assert.equal(g.leader, `leader-of-${g.name}`);
    assert.deepEqual(Object.keys(g.latencyMs), ["p50", "p90", "p99", "p999", "max"]);
  }
  const incrs = fake.calls.filter((c) => c.op === "incr");
  for (const group of OPTIONS.groups) {
    assert.equal(incrs.filter((c) => c.group === group).length, 110);
  }
});

Deno.test("the text report has a row per group", async () => {
  const fake = new FakeGroups("counter");
  const { out, deps } = harness(fake);
  assert.equal(await runBench(OPTIONS, deps), 0);
  assert.match(out[1], /closed loop, incr=100, over 3 groups\)$/);
  const header = out.findIndex((line) => line.startsWith("per group"));
  assert.ok(header > 0, out.join("\n"));
  assert.match(out[header], /ops\/s +p50 ms +p99 ms +growth +check +leader$/);
  assert.match(out[header + 1], /^ {2}counter +\d+ .* 110 +verified {2}leader-of-counter$/);
  assert.match(out[header + 3], /^ {2}g2 /);
  assert.match(out.join("\n"), /value: 0 -> 330, grew by 330, as expected: verified/);
});

Deno.test("a group that grew by more than its acknowledged increments fails the run, named", async () => {
  const fake = new FakeGroups("counter");
  // g2 applies one more than asked, once per increment; the sum over groups alone would not
  // show a loss in one group hidden by a gain in another, so each group is checked.
  fake.extra.set("g2", 1n);
  const { out, err, deps } = harness(fake);
  assert.equal(await runBench({ ...OPTIONS, json: true }, deps), 1);
  const report = JSON.parse(out[0]);
  assert.equal(report.verified, false);
  assert.deepEqual(
    report.groups.map((g: { verified: boolean }) => g.verified),
    [true, true, false],
  );
  assert.equal(err.length, 1, err.join("\n"));
  assert.match(
    err[0],
    /^counter bench: verification failed in 1 group: g2 grew by 220, expected 110$/,
  );
});

Deno.test("the burst is spread too: deltas 0..n-1 round robin over the groups", async () => {
  const fake = new FakeGroups("counter");
  const { out, deps } = harness(fake);
  const burst = { ...OPTIONS, concurrency: null, warmup: 0, ops: 9, json: true };
  assert.equal(await runBench(burst, deps), 0);
  const report = JSON.parse(out[0]);
  // counter gets 0+3+6, g1 1+4+7, g2 2+5+8.
  assert.deepEqual(report.groups.map((g: { growthMin: number }) => g.growthMin), [9, 12, 15]);
  assert.equal(report.growthMin, 36);
  assert.equal(report.verified, true);
});

Deno.test("bench --local --groups starts the cluster with every group and waits for their leaders", async () => {
  const fake = new FakeGroups("counter");
  const started: string[][] = [];
  const events: string[] = [];
  const ids = ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9003"];
  const cluster: BenchCluster = {
    ids,
    dataRoot: "/tmp/counter-cluster-fake",
    waitForLeader: () => Promise.resolve(ids[0]),
    waitForLeaders: () => {
      events.push("waitForLeaders");
      return Promise.resolve(new Map([["counter", ids[0]], ["g1", ids[1]], ["g2", ids[1]]]));
    },
    pid: () => null,
    stop: () => {
      events.push("stop");
      return Promise.resolve();
    },
  };
  const { out, deps } = harness(fake, {
    startCluster: (groups) => {
      started.push([...groups]);
      return Promise.resolve(cluster);
    },
    residentBytes: () => Promise.resolve(null),
  });
  assert.equal(await runBench({ ...OPTIONS, local: true }, deps), 0);
  assert.deepEqual(started, [["counter", "g1", "g2"]]);
  assert.deepEqual(events, ["waitForLeaders", "stop"]);
  assert.match(out[1], /^local cluster of 3 nodes: .*; 3 groups, leaders per node 1\/2\/0$/);
});
