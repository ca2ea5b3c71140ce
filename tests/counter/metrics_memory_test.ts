/**
 * What a group's metrics cost between scrapes: a host may serve a thousand groups, each with its
 * own `NodeMetrics`, so it keeps only its values (the families are built at each scrape).
 */

import assert from "node:assert/strict";
import { join } from "node:path";

const metricsUrl = new URL("../../lib/counter/metrics.ts", import.meta.url).href;

/** A script for a process with `--expose-gc`: the heap 1,000 NodeMetrics add, per instance. */
const childScript = `
import { NodeMetrics } from ${JSON.stringify(metricsUrl)};
const COUNT = 1000;
const heap = () => { for (let i = 0; i < 3; i++) globalThis.gc(); return Deno.memoryUsage().heapUsed; };
const sample = () => ({
  role: "follower", term: 1, leader: "", commit: 0, applied: 0, lastIndex: 0, snapshotIndex: 0,
  proposalsPending: 0, readsPending: 0, followers: [], peers: [], connections: 0,
  connectionsAccepted: 0,
});
// One scrape first, so that the code it runs is loaded before the measurement.
new NodeMetrics({ id: "127.0.0.1:1", group: "warm" }, sample).expose();
const before = heap();
const kept = [];
for (let i = 0; i < COUNT; i++) {
  const metrics = new NodeMetrics({ id: "127.0.0.1:1", group: "g" + i }, sample);
  metrics.fsyncSeconds.observe(0.001);
  metrics.leaderChanges.inc();
  kept.push(metrics);
}
console.log(JSON.stringify({ perGroup: (heap() - before) / kept.length }));
`;

Deno.test("an idle group's metrics take a few KiB of heap between scrapes", async () => {
  const dir = await Deno.makeTempDir({ prefix: "counter-metrics-memory-" });
  try {
    const script = join(dir, "child.ts");
    await Deno.writeTextFile(script, childScript);
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", "--v8-flags=--expose-gc", script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
    const { perGroup } = JSON.parse(new TextDecoder().decode(output.stdout));
    // About 1 KiB now (two histograms' counts, a few counters); a registry per group was 16 KiB.
    assert.ok(perGroup < 4096, `${perGroup} bytes of heap per group's metrics`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
