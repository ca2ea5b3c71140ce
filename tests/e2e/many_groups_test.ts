/**
 * Many groups in one process, for real: three `counter serve --groups` processes hosting 64 groups
 * each, driven through one multi-group `CounterClient` and the CLI (`incr --group`, an unknown
 * group, `leader balance`, `status`). One node is killed with SIGKILL: every group keeps serving
 * (new leaders where the dead node led), each with its own value and nothing acknowledged lost;
 * the node is restarted and catches up in every group. The node killed leads its groups while they
 * are quiet (idle, no group heartbeats), so their followers find out from node liveness; after the
 * restart every group goes quiet again.
 */

import assert from "node:assert/strict";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { cli, dumpClusterLogs, ELECTION_TIMEOUT_MS, WAIT_MS, waitFor } from "./_cluster_helpers.ts";

/** Groups every node hosts: "counter" and g1..g63. */
const GROUP_COUNT = 64;
const GROUPS = ["counter", ...Array.from({ length: GROUP_COUNT - 1 }, (_, k) => `g${k + 1}`)];

/** What a group's acknowledged increments add up to, and those whose outcome is unknown. */
interface Expected {
  acked: bigint;
  unknown: bigint;
}

/** Sends `delta` to `group`; records it as acknowledged, or as unknown when it may have applied. */
async function increment(
  client: CounterClient,
  expected: Map<string, Expected>,
  group: string,
  delta: bigint,
): Promise<boolean> {
  const e = expected.get(group)!;
  try {
    await client.incrementAndGet(delta, { group });
    e.acked += delta;
    return true;
  } catch (err) {
    if (!(err instanceof CounterError)) throw err;
    if (err.outcome === "unknown") e.unknown += delta;
    return false;
  }
}

/** The groups node `id` reports quiet (quiescent) now; empty when it does not answer. */
async function quietGroups(client: CounterClient, id: string): Promise<Set<string>> {
  try {
    const { data } = await client.admin("groups", {}, { peer: id });
    const list = Array.isArray(data.groups) ? data.groups as Record<string, unknown>[] : [];
    return new Set(list.filter((g) => g.quiet === true).map((g) => String(g.name)));
  } catch {
    return new Set();
  }
}

/** Waits until every group is quiet on every node of `ids`: no group heartbeats any more. */
async function waitAllQuiet(client: CounterClient, ids: readonly string[]): Promise<void> {
  await waitFor(async () => {
    const quiet = await Promise.all(ids.map((id) => quietGroups(client, id)));
    return quiet.every((q) => q.size === GROUP_COUNT) ? true : undefined;
  }, `every group quiet on ${ids.join(", ")}`);
}

/** Asserts that `group`'s value is what its acknowledged increments say (within the unknowns). */
function assertValue(group: string, value: bigint, e: Expected): void {
  assert.ok(
    value >= e.acked && value <= e.acked + e.unknown,
    `group ${group}: value ${value}, acknowledged ${e.acked} (+ up to ${e.unknown} unknown)`,
  );
}

Deno.test("64 groups on 3 nodes: each keeps serving its own value through a SIGKILL and a restart", async () => {
  const startedMs = performance.now();
  const lap = (what: string) =>
    console.log(`${what}: ${((performance.now() - startedMs) / 1000).toFixed(1)} s`);
  const cluster = await LocalCluster.start({
    groups: GROUPS,
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  const client = new CounterClient({ peers: cluster.ids, timeoutMs: 15_000 });
  try {
    lap("cluster started");
    await cluster.waitForLeaders(WAIT_MS);
    lap("every group has a leader");
    const peers = ["--peers", cluster.ids.join(",")];

    // The CLI: a group by name, and a group nobody serves.
    const incr = await cli(["incr", "--group", "g7", "5", ...peers]);
    assert.equal(incr.code, 0, incr.stderr);
    assert.equal(incr.stdout, "5\n");
    const unknown = await cli(["get", "--group", "nope", ...peers]);
    assert.equal(unknown.code, 1, unknown.stderr);
    assert.equal(unknown.stdout, "");
    assert.match(
      unknown.stderr,
      /^counter get: unknown group "nope": this node serves groups "counter", "g1", /,
    );
    const unknownJson = await cli(["incr", "--group", "nope", "1", "--json", ...peers]);
    assert.equal(unknownJson.code, 1);
    assert.equal(JSON.parse(unknownJson.stderr).code, "UNKNOWN_GROUP");

    // Balance the leaders: each node leads 21 or 22 of the 64.
    const balance = await cli(["leader", "balance", "--json", ...peers]);
    assert.equal(balance.code, 0, balance.stderr + balance.stdout);
    const balanced = JSON.parse(balance.stdout);
    assert.equal(balanced.groups, GROUP_COUNT);
    assert.equal(balanced.balanced, true, balance.stdout);
    for (const count of Object.values(balanced.after) as number[]) {
      assert.ok(count === 21 || count === 22, balance.stdout);
    }
    const status = await cli(["status", "--json", ...peers]);
    assert.equal(status.code, 0, status.stderr);
    const statusJson = JSON.parse(status.stdout);
    assert.equal(statusJson.groups.length, GROUP_COUNT);
    assert.equal(statusJson.balanced, true);
    lap("CLI checks and leader balance done");

    // Increments in every group, all at once through the one client: group k gets k+1, five times.
    const expected = new Map(GROUPS.map((g) => [g, { acked: 0n, unknown: 0n }]));
    expected.get("g7")!.acked = 5n;
    for (let round = 0; round < 5; round++) {
      const done = await Promise.all(
        GROUPS.map((g, k) => increment(client, expected, g, BigInt(k + 1))),
      );
      assert.ok(done.every((ok) => ok), "every increment acknowledged while all nodes are up");
    }
    lap("5 increments in each of the 64 groups");

    // Idle groups go quiet (no heartbeats; the nodes exchange node-level ones instead), then the
    // node that leads the most groups is killed: its quiet followers must notice by node liveness.
    await waitAllQuiet(client, cluster.ids);
    lap("every group quiet on every node");
    const leaders = await cluster.groupLeaders();
    const victim = cluster.ids.reduce((best, id) =>
      [...leaders.values()].filter((l) => l === id).length >
          [...leaders.values()].filter((l) => l === best).length
        ? id
        : best
    );
    const led = [...leaders].filter(([, l]) => l === victim).map(([g]) => g);
    await cluster.kill(victim);
    lap(`killed ${victim}, which led ${led.length} groups`);

    // Every group keeps serving: more increments everywhere, then each value read linearizably.
    for (let round = 0; round < 3; round++) {
      const done = await Promise.all(
        GROUPS.map((g, k) => increment(client, expected, g, BigInt(1000 * (k + 1)))),
      );
      const failed = GROUPS.filter((_, k) => !done[k]);
      assert.deepEqual(failed, [], "every group took increments after the kill");
    }
    const newLeaders = await cluster.waitForLeaders(WAIT_MS);
    for (const g of led) assert.notEqual(newLeaders.get(g), victim);
    await Promise.all(GROUPS.map(async (g) => {
      const { value } = await client.get({ group: g });
      assertValue(g, value, expected.get(g)!);
    }));
    lap("every group served after the kill, values checked");

    // Restart: the node catches up in every group (its own applied value, read from it).
    await cluster.startNode(victim);
    lap("restarted");
    await waitFor(async () => {
      const behind: string[] = [];
      await Promise.all(GROUPS.map(async (g) => {
        const resp = await client.status(victim, { group: g }).catch(() => null);
        const value = resp?.ok ? BigInt(String(resp.data?.value ?? "-1")) : -1n;
        const e = expected.get(g)!;
        if (value < e.acked || value > e.acked + e.unknown) behind.push(g);
      }));
      return behind.length === 0 ? true : undefined;
    }, `${victim} to catch up in all ${GROUP_COUNT} groups`);
    lap("the restarted node caught up in every group");
    await waitAllQuiet(client, cluster.ids);
    lap("every group quiet again on every node");
    const final = await Promise.all(GROUPS.map((g) => client.get({ group: g })));
    GROUPS.forEach((g, k) => assertValue(g, final[k].value, expected.get(g)!));
    // Groups' values differ: no request landed in another group.
    assert.equal(new Set(final.map((r) => r.value)).size, GROUP_COUNT);
  } catch (err) {
    await dumpClusterLogs(cluster);
    throw err;
  } finally {
    await client.close();
    await cluster.stop();
    lap("stopped");
  }
});
