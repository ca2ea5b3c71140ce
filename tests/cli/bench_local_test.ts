/**
 * `counter bench --local` for real: three node processes, a closed loop, and the JSON report.
 */

import assert from "node:assert/strict";
import { runMain } from "./_run.ts";

Deno.test("'counter bench --local --ops 2000 --concurrency 64 --json' verifies the counter", async () => {
  const result = await runMain([
    "bench",
    "--local",
    "--ops",
    "2000",
    "--concurrency",
    "64",
    "--json",
  ]);
  assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  // stdout is exactly one JSON object on one line; progress, if any, goes to stderr.
  const lines = result.stdout.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stdout);
  const report = JSON.parse(lines[0]);
  assert.equal(report.verified, true);
  assert.equal(report.mode, "closed-loop");
  assert.equal(report.ops, 2000);
  assert.equal(report.ok, 2000);
  assert.equal(report.valueAfter - report.valueBefore, 2000);
  assert.ok(report.opsPerSec > 0);
  assert.ok(report.latencyMs.p50 > 0 && report.latencyMs.p50 <= report.latencyMs.max);
  assert.equal(report.nodes.length, 3);
  // The temporary data dir is named, and gone afterwards.
  const removed = result.stderr.match(/stopped the local cluster and removed (\S+)/);
  assert.ok(removed !== null, result.stderr);
  await assert.rejects(Deno.stat(removed[1]), Deno.errors.NotFound);
  for (const node of report.nodes) {
    assert.match(node.id, /^127\.0\.0\.1:\d+$/);
    if (Deno.build.os === "linux") assert.ok(node.rssBytes > 0);
  }
  // The CPU split: the client, then the three nodes by role, each with some CPU per op.
  console.log(`cpu split: ${JSON.stringify(report.cpu)}`);
  if (Deno.build.os !== "linux") {
    assert.equal(report.cpu.available, false);
    assert.equal(typeof report.cpu.reason, "string");
    return;
  }
  assert.equal(report.cpu.available, true, JSON.stringify(report.cpu));
  assert.equal(report.cpu.ops, 2000);
  assert.deepEqual(
    report.cpu.processes.map((p: { role: string }) => p.role).sort(),
    ["client", "follower", "follower", "leader"],
  );
  assert.equal(report.cpu.processes[0].id, "client");
  for (const p of report.cpu.processes) assert.ok(p.ticks > 0 && p.usPerOp > 0, JSON.stringify(p));
  const sum = report.cpu.processes.reduce((s: number, p: { usPerOp: number }) => s + p.usPerOp, 0);
  assert.ok(Math.abs(report.cpu.totalUsPerOp - sum) < 0.5, JSON.stringify(report.cpu));
});

Deno.test("'counter bench --local --tls' runs against a TLS cluster and verifies the counter", async () => {
  const result = await runMain(["bench", "--local", "--tls", "--ops", "50", "--json"]);
  assert.equal(result.code, 0, `exit ${result.code}; stderr: ${result.stderr}`);
  const report = JSON.parse(result.stdout.trimEnd());
  assert.equal(report.verified, true);
  assert.equal(report.ok, 50);
});
