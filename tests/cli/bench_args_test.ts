/**
 * Parsing of `counter bench`'s command line.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_PEERS,
  parseBenchArgs,
  parseBenchMix,
  parseCommandLine,
} from "../../lib/cli/args.ts";
import { assertUsage } from "./_usage.ts";

const noEnv = { env: () => undefined };

function bench(...argv: string[]) {
  return parseBenchArgs(argv, noEnv);
}

Deno.test("bench defaults to SOFAJRaft's burst: 1000 increments, all in flight", () => {
  assert.deepEqual(bench(), {
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
  });
  assert.equal(bench("--ops", "5000").ops, 5000);
  assert.equal(bench("--ops", "100000").ops, 100000);
  assertUsage(() => bench("--ops", "100001"), /^invalid --ops "100001": .* 1 to 100000$/);
});

Deno.test("bench reads every closed-loop option", () => {
  assert.deepEqual(
    bench(
      "--peers",
      "h:1,h:2",
      "--group",
      "g",
      "--concurrency",
      "64",
      "--duration",
      "5",
      "--mix",
      "incr=90,get=10",
      "--consistency",
      "stale",
      "--warmup",
      "100",
      "--json",
      "--timeout-ms",
      "2000",
    ),
    {
      peers: ["h:1", "h:2"],
      group: "g",
      json: true,
      timeoutMs: 2000,
      ops: null,
      durationSecs: 5,
      concurrency: 64,
      mix: { incr: 90, get: 10 },
      consistency: "stale",
      warmup: 100,
      local: false,
      tls: false,
      groups: ["g"],
    },
  );
  const counted = bench("--concurrency", "16", "--ops", "20000", "--local");
  assert.equal(counted.ops, 20000);
  assert.equal(counted.durationSecs, null);
  assert.equal(counted.local, true);
  assert.deepEqual(counted.mix, { incr: 100, get: 0 });
  assert.equal(bench("--concurrency", "1").ops, 1000, "--ops defaults to 1000 in a closed loop");
  assert.equal(bench("--concurrency", "16", "--mix", "get=100").mix.get, 100);
  assertUsage(
    () => bench("--concurrency", "16", "--mix", "get=10", "--mix=incr=90"),
    /--mix is given more than once/,
  );
});

Deno.test("bench rejects --ops together with --duration", () => {
  assertUsage(
    () => bench("--concurrency", "4", "--ops", "10", "--duration", "5"),
    /^--ops and --duration cannot be used together/,
  );
  assertUsage(() => bench("--ops", "10", "--duration", "5"), /cannot be used together/);
});

Deno.test("bench's closed-loop options need --concurrency", () => {
  for (
    const argv of [
      ["--duration", "5"],
      ["--mix", "incr=50,get=50"],
      ["--consistency", "stale"],
    ]
  ) {
    assertUsage(() => bench(...argv), new RegExp(`^${argv[0]} needs --concurrency`));
  }
});

Deno.test("bench checks the bounds of its numbers", () => {
  assertUsage(() => bench("--concurrency", "0"), /^invalid --concurrency "0"/);
  assertUsage(() => bench("--concurrency", "10001", "--ops", "20000"), /invalid --concurrency/);
  assertUsage(() => bench("--concurrency", "x"), /invalid --concurrency "x"/);
  assertUsage(
    () => bench("--ops", "10", "--concurrency", "11"),
    /^--concurrency \(11\) must not exceed --ops \(10\)$/,
  );
  // With --duration there is no --ops to exceed.
  assert.equal(bench("--concurrency", "5000", "--duration", "1").concurrency, 5000);
  assertUsage(() => bench("--concurrency", "1", "--duration", "0"), /invalid --duration "0"/);
  assertUsage(() => bench("--concurrency", "1", "--duration", "3601"), /invalid --duration/);
  assertUsage(() => bench("--concurrency", "1", "--duration", "1.5"), /invalid --duration/);
  assertUsage(() => bench("--concurrency", "1", "--warmup", "-1"), /--warmup/);
  assert.equal(bench("--concurrency", "1", "--warmup", "0").warmup, 0);
  // A burst warms up with bursts: --warmup needs no --concurrency.
  assert.equal(bench("--warmup", "3000").warmup, 3000);
  assertUsage(() => bench("--warmup", "-1"), /--warmup/);
  assertUsage(() => bench("--timeout-ms", "0"), /invalid --timeout-ms "0"/);
});

Deno.test("bench parses --mix strictly", () => {
  assert.deepEqual(parseBenchMix("incr=90,get=10"), { incr: 90, get: 10 });
  assert.deepEqual(parseBenchMix("get=10,incr=90"), { incr: 90, get: 10 });
  assert.deepEqual(parseBenchMix("get=100"), { incr: 0, get: 100 });
  assert.deepEqual(parseBenchMix("incr=100,get=0"), { incr: 100, get: 0 });
  const cases: [string, RegExp][] = [
    ["incr=90,get=20", /add up to 110, not 100$/],
    ["incr=50", /add up to 50, not 100$/],
    ["incr=90,put=10", /unknown operation "put" \(expected incr or get\)$/],
    ["incr=50,incr=50", /incr is given twice$/],
    ["incr=90,,get=10", /expected OP=PERCENT/],
    ["incr:90,get:10", /expected OP=PERCENT/],
    ["incr=90%,get=10%", /expected OP=PERCENT/],
    ["incr=-10,get=110", /expected OP=PERCENT/],
    ["incr=1000", /expected OP=PERCENT/],
    [" incr=100", /expected OP=PERCENT/],
  ];
  for (const [text, pattern] of cases) {
    assertUsage(() => parseBenchMix(text), pattern);
    assertUsage(() => bench("--concurrency", "4", "--mix", text), /^invalid --mix /);
  }
  assertUsage(() => bench("--concurrency", "4", "--mix", ""), /--mix needs a value/);
  assertUsage(() => bench("--concurrency", "4", "--mix"), /--mix needs a value/);
});

Deno.test("bench checks --consistency", () => {
  const mix = ["--concurrency", "4", "--mix", "incr=50,get=50"];
  assert.equal(bench(...mix).consistency, "linearizable");
  assert.equal(bench(...mix, "--consistency", "linearizable").consistency, "linearizable");
  assertUsage(
    () => bench(...mix, "--consistency", "eventual"),
    /^invalid --consistency "eventual": expected linearizable, lease, follower or stale$/,
  );
  // Without reads, a read consistency means nothing: most likely --mix was forgotten.
  assertUsage(
    () => bench("--concurrency", "4", "--consistency", "stale"),
    /^--consistency needs reads in --mix/,
  );
});

Deno.test("bench --local replaces --peers, and ignores COUNTER_PEERS", () => {
  assertUsage(
    () => bench("--local", "--peers", "h:1"),
    /^--peers and --local cannot be used together$/,
  );
  const fromEnv = parseBenchArgs(["--local"], { env: () => "e:1" });
  assert.equal(fromEnv.local, true);
  assertUsage(() => bench("--local=yes"), /--local takes no value/);
});

Deno.test("bench rejects repeated flags, unknown flags and arguments", () => {
  assertUsage(() => bench("--ops", "1", "--ops", "2"), /--ops is given more than once/);
  assertUsage(() => bench("--rate", "5"), /^unknown option --rate$/);
  assertUsage(() => bench("100"), /^unexpected argument "100"$/);
});

Deno.test("parseCommandLine hands bench its options", () => {
  const invocation = parseCommandLine(
    ["bench", "--local", "--concurrency", "64", "--ops", "2000", "--json"],
    noEnv,
  );
  assert.ok(invocation.command === "bench");
  assert.equal(invocation.options.concurrency, 64);
  assert.equal(invocation.options.ops, 2000);
  assert.equal(invocation.options.json, true);
  assert.equal(invocation.options.local, true);
  assert.deepEqual(parseCommandLine(["bench", "--mix", "x", "-h"], noEnv), {
    command: "help",
    topic: "bench",
  });
});

Deno.test("bench --tls needs --local", () => {
  assert.equal(parseBenchArgs(["--local", "--tls"], { env: () => undefined }).tls, true);
  assertUsage(() => bench("--tls"), /^--tls needs --local/);
});
