/**
 * End-to-end tests of `counter recover --force-new-cluster` on real `counter serve` processes
 * (issue 9 point 3, issue 10 point 2): the network reset op is gone, recover refuses a running
 * node's dir, a lone survivor recovered with the CLI serves every acknowledged increment and the
 * wiped members rejoin through `serve --join` + `peers add`; and recovering every node at once
 * gives separate one-node groups whose histories no client mixes.
 *
 * Durations are printed, never asserted.
 */

import assert from "node:assert/strict";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import type { NodeStatus } from "../../lib/cli/commands/status.ts";
import {
  answers,
  cli,
  dumpClusterLogs,
  ELECTION_TIMEOUT_MS,
  ServeProcess,
  sleep,
  statusOf,
  WAIT_MS,
  waitFor,
  waitForConvergence,
} from "./_cluster_helpers.ts";

function startCluster(): Promise<LocalCluster> {
  return LocalCluster.start({ serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)] });
}

/** Runs `counter recover --data DIR --force-new-cluster --yes --json` as a child process. */
async function recoverDir(dir: string): Promise<{ clusterId: string; index: number }> {
  const result = await cli(["recover", "--data", dir, "--force-new-cluster", "--yes", "--json"]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** Waits until `id` leads a one-node group of cluster `clusterId`; returns its status. */
function waitForSoleLeader(id: string, clusterId: string): Promise<NodeStatus> {
  let last = "";
  return waitFor(
    async () => {
      const s = await statusOf(id);
      last = JSON.stringify(s, (_k, v) => typeof v === "bigint" ? String(v) : v);
      if (s === null || s.role !== "leader" || s.commit < s.lastIndex) return undefined;
      assert.deepEqual(s.voters, [id]);
      assert.equal(s.clusterId, clusterId);
      return s;
    },
    `${id} to lead its own one-node group`,
    WAIT_MS,
    () => last,
  );
}

Deno.test("a lone survivor recovered with the CLI serves its value; wiped members rejoin", async () => {
  const startedMs = performance.now();
  const cluster = await startCluster();
  const [survivor, lostA, lostB] = cluster.ids;
  const joiners: ServeProcess[] = [];
  const client = new CounterClient({ peers: cluster.ids, timeoutMs: WAIT_MS });
  let ok = false;
  try {
    await cluster.waitForLeader(WAIT_MS);
    let acked = 0n;
    for (let delta = 1n; delta <= 20n; delta++) {
      await client.incrementAndGet(delta);
      acked += delta;
    }
    await waitForConvergence(cluster.ids, acked);

    // (d) The network reset op is gone: any node answers UNKNOWN_OP and nothing changes.
    const refused = await client.admin("reset_peers", { voters: [survivor], force: true }, {
      peer: survivor,
    }).then(() => null, (e) => e);
    assert.ok(refused instanceof CounterError, String(refused));
    assert.equal(refused.code, "UNKNOWN_OP");
    assert.deepEqual((await statusOf(survivor))!.voters, [...cluster.ids].sort());
    // (e) recover refuses the dir of a running node, and names what to do.
    const busy = await cli(["recover", "--data", cluster.dataDir(survivor), "--force-new-cluster"]);
    assert.equal(busy.code, 1);
    assert.match(busy.stderr, /is in use by a running process \(PID \d+\): stop node /);

    // Two of three are lost for good; the survivor is stopped and recovered.
    await cluster.kill(lostA);
    await cluster.kill(lostB);
    await cluster.signal(survivor, "SIGTERM");
    const done = await recoverDir(cluster.dataDir(survivor));
    await cluster.startNode(survivor);
    const status = await waitForSoleLeader(survivor, done.clusterId);
    assert.equal(status.value, acked, "every acknowledged increment survived");
    assert.ok(status.commit >= done.index);

    // The survivor serves writes alone, and a client pins its new cluster id.
    const pinned = new CounterClient({ peers: [survivor], timeoutMs: WAIT_MS });
    try {
      assert.equal((await pinned.incrementAndGet(100n)).value, acked + 100n);
      assert.equal(pinned.clusterId, done.clusterId);
    } finally {
      await pinned.close();
    }
    acked += 100n;

    // The lost machines come back empty: wipe, serve --join, peers add.
    for (const id of [lostA, lostB]) {
      await Deno.remove(cluster.dataDir(id), { recursive: true });
      const proc = await ServeProcess.spawn({
        id,
        dataDir: cluster.dataDir(id),
        logPath: cluster.logPath(id),
        join: [survivor],
      });
      joiners.push(proc);
      await waitFor(async () => (await answers(id)) ? true : undefined, `${id} to listen`);
      const added = await cli(["peers", "add", id, "--peers", survivor, "--timeout-ms", "20000"]);
      assert.equal(added.code, 0, added.stderr);
    }
    await waitForConvergence(cluster.ids, acked);
    const after = await statusOf(lostA);
    assert.deepEqual(after!.voters, [...cluster.ids].sort());
    ok = true;
  } finally {
    if (!ok) await dumpClusterLogs(cluster);
    await client.close();
    for (const proc of joiners) await proc.stop();
    await cluster.stop();
  }
  console.log(`recover lone survivor: ${Math.round(performance.now() - startedMs)} ms`);
});

Deno.test("every node recovered at once: separate one-node groups, never mixed by a client", async () => {
  const startedMs = performance.now();
  const cluster = await startCluster();
  let ok = false;
  try {
    await cluster.waitForLeader(WAIT_MS);
    const setup = new CounterClient({ peers: cluster.ids, timeoutMs: WAIT_MS });
    const base = (await setup.incrementAndGet(7n)).value;
    await setup.close();
    await waitForConvergence(cluster.ids, base);
    for (const id of cluster.ids) await cluster.signal(id, "SIGTERM");
    const clusterIds = new Map<string, string>();
    for (const id of cluster.ids) {
      clusterIds.set(id, (await recoverDir(cluster.dataDir(id))).clusterId);
    }
    assert.equal(new Set(clusterIds.values()).size, 3, "three different cluster ids");
    for (const id of cluster.ids) await cluster.startNode(id);
    const terms = new Map<string, number>();
    for (const id of cluster.ids) {
      terms.set(id, (await waitForSoleLeader(id, clusterIds.get(id)!)).term);
    }

    // Each group takes its own increment; no value ever shows another group's.
    const deltas = new Map(cluster.ids.map((id, k) => [id, BigInt(1000 * (k + 1))]));
    for (const id of cluster.ids) {
      const own = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
      try {
        assert.equal((await own.incrementAndGet(deltas.get(id)!)).value, base + deltas.get(id)!);
      } finally {
        await own.close();
      }
    }

    // A client given all three pins the first it hears and refuses the other two.
    const mixed = new CounterClient({ peers: cluster.ids, timeoutMs: 2000 });
    try {
      const first = await mixed.incrementAndGet(1n);
      const home = [...clusterIds].find(([, c]) => c === mixed.clusterId)![0];
      assert.equal(first.value, base + deltas.get(home)! + 1n);
      for (const id of cluster.ids.filter((other) => other !== home)) {
        const err = await mixed.admin("status", {}, { peer: id }).then(() => null, (e) => e);
        assert.ok(err instanceof CounterError, String(err));
        assert.equal(err.code, "WRONG_CLUSTER");
        assert.match(err.message, new RegExp(`node ${id} belongs to another cluster`));
      }
      for (let i = 0; i < 6; i++) {
        const read = await mixed.get({ consistency: "stale" }).then((r) => r.value, (e) => e);
        if (read instanceof CounterError) assert.equal(read.code, "WRONG_CLUSTER");
        else assert.equal(read, base + deltas.get(home)! + 1n);
      }
      deltas.set(home, deltas.get(home)! + 1n);
    } finally {
      await mixed.close();
    }

    // Two election timeouts later, still three groups: no node voted for or took entries from
    // another (a vote request would have moved a term; an entry, a value).
    await sleep(2 * ELECTION_TIMEOUT_MS);
    for (const id of cluster.ids) {
      const s = await statusOf(id);
      assert.ok(s !== null);
      assert.equal(s.role, "leader");
      assert.deepEqual(s.voters, [id]);
      assert.equal(s.term, terms.get(id));
      assert.equal(s.value, base + deltas.get(id)!);
    }
    ok = true;
  } finally {
    if (!ok) await dumpClusterLogs(cluster);
    await cluster.stop();
  }
  console.log(`recover every node: ${Math.round(performance.now() - startedMs)} ms`);
});
