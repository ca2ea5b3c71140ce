/**
 * Tests of a multi-group host (lib/counter/host.ts) in this process: real TCP on 127.0.0.1, real
 * data dirs, and the move of a single-group data dir into `DATA/groups/NAME/`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterNode, type NodeOptions } from "../../lib/counter/node.ts";
import { groupNameProblem, mergeExpositions, NodeHost } from "../../lib/counter/host.ts";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { Logger, silentLogger } from "../../lib/logging/logger.ts";
import { Role } from "../../lib/raft/mod.ts";
import { DataDirLockedError } from "../../lib/storage/mod.ts";
import { migrateSingleGroupLayout } from "../../lib/storage/layout.ts";
import { parseGroupsArgs } from "../../lib/cli/args.ts";
import { runGroups } from "../../lib/cli/commands/groups.ts";

const WAIT_MS = 15_000;

function options(dataDir: string, id: string, conf: string[], logger = silentLogger) {
  return {
    dataDir,
    id,
    conf,
    group: "counter",
    electionTimeoutMs: 500,
    heartbeatIntervalMs: 50,
    snapshotIntervalSecs: 0,
    logger,
  } satisfies NodeOptions;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function waitFor<T>(probe: () => T | undefined, what: string): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  while (true) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

/** Moves a new-layout group dir back to where a single-group node kept it (today's layout). */
async function toSingleGroupLayout(root: string, group: string): Promise<void> {
  for (const name of ["log", "snapshot", "raft_meta"]) {
    await Deno.rename(join(root, "groups", group, name), join(root, name));
  }
  await Deno.remove(join(root, "groups"), { recursive: true });
}

async function withRoot(fn: (root: string) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "counter-host-test-" });
  try {
    await fn(root);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("a single-group data dir is moved into DATA/groups/NAME and keeps its value", async () => {
  await withRoot(async (root) => {
    const [port] = freePorts(1);
    const id = `127.0.0.1:${port}`;
    const data = join(root, "n1");
    let node = await CounterNode.start(options(data, id, [id]));
    const client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      for (let i = 1n; i <= 3n; i++) await client.incrementAndGet(i);
    } finally {
      await client.close();
      await node.stop();
    }
    // What the single-group code wrote: log/, raft_meta/, snapshot/ right under the data dir.
    await toSingleGroupLayout(data, "counter");
    const lines: string[] = [];
    const logger = new Logger({ level: "info", write: (line) => lines.push(line) });
    node = await CounterNode.start(options(data, id, [id], logger));
    const again = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      assert.equal((await again.get()).value, 6n);
      assert.equal((await again.incrementAndGet(4n)).value, 10n);
    } finally {
      await again.close();
      await node.stop();
    }
    assert.ok(lines.some((l) => l.includes("moved the single-group data dir")), lines.join("\n"));
    for (const name of ["log", "raft_meta", "snapshot"]) {
      assert.equal(await exists(join(data, name)), false, `${name} left at the old place`);
      assert.equal(await exists(join(data, "groups", "counter", name)), true, name);
    }
    assert.equal(await exists(join(data, "LOCK")), true, "the data root's lock");
  });
});

Deno.test("a migration cut short by a crash is finished at the next start", async () => {
  await withRoot(async (root) => {
    const [port] = freePorts(1);
    const id = `127.0.0.1:${port}`;
    const data = join(root, "n1");
    let node = await CounterNode.start(options(data, id, [id]));
    const client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      await client.incrementAndGet(7n);
    } finally {
      await client.close();
      await node.stop();
    }
    await toSingleGroupLayout(data, "counter");
    // The first rename happened, then the process died: log/ is at its new place, the rest not.
    await Deno.mkdir(join(data, "groups", "counter"), { recursive: true });
    await Deno.rename(join(data, "log"), join(data, "groups", "counter", "log"));
    node = await CounterNode.start(options(data, id, [id]));
    const again = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      assert.equal((await again.get()).value, 7n);
    } finally {
      await again.close();
      await node.stop();
    }
    assert.equal(await exists(join(data, "raft_meta")), false);
    assert.equal(await exists(join(data, "groups", "counter", "raft_meta")), true);
  });
});

Deno.test("a migration refuses to merge two dirs that both hold data", async () => {
  await withRoot(async (root) => {
    await Deno.mkdir(join(root, "log"));
    await Deno.writeTextFile(join(root, "log", "a"), "x");
    await Deno.mkdir(join(root, "groups", "counter", "log"), { recursive: true });
    await Deno.writeTextFile(join(root, "groups", "counter", "log", "b"), "y");
    await assert.rejects(
      migrateSingleGroupLayout(root, "counter"),
      /cannot migrate .*log to .*groups\/counter\/log: .*both hold data/,
    );
    assert.equal(await exists(join(root, "log", "a")), true, "nothing moved");
  });
});

Deno.test("group names that would escape DATA/groups/ are refused", () => {
  assert.equal(groupNameProblem("orders"), null);
  assert.match(groupNameProblem("..")!, /reserved/);
  assert.match(groupNameProblem("a/b")!, /letters, digits/);
  assert.match(groupNameProblem("")!, /letters, digits/);
});

Deno.test("three hosts serve two groups: each its own leader and value, one connection per peer", async () => {
  await withRoot(async (root) => {
    const ids = freePorts(3).map((port) => `127.0.0.1:${port}`);
    const groups = ["counter", "orders"];
    const hosts = await Promise.all(
      ids.map((id, k) =>
        NodeHost.start({ ...options(join(root, `n${k}`), id, ids), groups: [...groups] })
      ),
    );
    const clients = groups.map((group) =>
      new CounterClient({ peers: ids, group, timeoutMs: WAIT_MS })
    );
    try {
      for (const group of groups) {
        await waitFor(() => {
          const leaders = hosts.filter((h) => h.node(group)?.role === Role.Leader);
          return leaders.length === 1 ? true : undefined;
        }, `a leader of ${group}`);
      }
      await Promise.all([
        ...Array.from({ length: 5 }, () => clients[0].incrementAndGet(1n)),
        ...Array.from({ length: 3 }, () => clients[1].incrementAndGet(10n)),
      ]);
      assert.equal((await clients[0].get()).value, 5n);
      assert.equal((await clients[1].get()).value, 30n);
      for (const host of hosts) assert.deepEqual(host.groups(), groups);
      // Each host has its own data dir per group.
      assert.equal(await exists(join(root, "n0", "groups", "orders", "raft_meta")), true);
      // A group nobody serves gets the clear error, naming the groups served.
      const wrong = new CounterClient({ peers: ids, group: "views", timeoutMs: 2000 });
      try {
        await assert.rejects(wrong.get(), (err: unknown) => {
          assert.ok(err instanceof CounterError);
          assert.equal(err.code, "UNKNOWN_GROUP");
          assert.match(
            err.message,
            /unknown group "views": this node serves groups "counter", "orders"/,
          );
          return true;
        });
      } finally {
        await wrong.close();
      }
      // At most one inbound peer connection from each other host, for both groups (a connection
      // per group would make up to four; two followers of the same leader need none).
      for (const host of hosts) {
        assert.ok(host.peerConnectionCount >= 1 && host.peerConnectionCount <= 2);
      }
      const metrics = hosts[0].metricsText();
      assert.match(metrics, /group="orders"/);
      assert.equal(
        metrics.split("\n").filter((l) => l.startsWith("# TYPE counter_raft_term ")).length,
        1,
        "each family once",
      );
      assert.equal(hosts[0].health().healthy, true, hosts[0].health().reason);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
      await Promise.all(hosts.map((h) => h.stop()));
    }
  });
});

Deno.test("a second host on the same data root is refused at once", async () => {
  await withRoot(async (root) => {
    const [a, b] = freePorts(2).map((port) => `127.0.0.1:${port}`);
    const host = await NodeHost.start({ ...options(root, a, [a]), groups: ["counter"] });
    try {
      await assert.rejects(
        NodeHost.start({ ...options(root, b, [b]), groups: ["counter"] }),
        DataDirLockedError,
      );
    } finally {
      await host.stop();
    }
  });
});

Deno.test("merged expositions keep each family once, samples of every text", () => {
  const a = '# HELP x X.\n# TYPE x gauge\nx{group="a"} 1\n# HELP y Y.\n# TYPE y counter\ny 3\n';
  const b = '# HELP x X.\n# TYPE x gauge\nx{group="b"} 2\n# HELP y Y.\n# TYPE y counter\ny 3\n';
  assert.equal(
    mergeExpositions([a, b]),
    '# HELP x X.\n# TYPE x gauge\nx{group="a"} 1\nx{group="b"} 2\n# HELP y Y.\n# TYPE y counter\ny 3\n',
  );
});

Deno.test("groups create, list and remove change every node's set durably", async () => {
  await withRoot(async (root) => {
    const ids = freePorts(3).map((port) => `127.0.0.1:${port}`);
    const start = (k: number) =>
      NodeHost.start({ ...options(join(root, `n${k}`), ids[k], ids), groups: ["counter"] });
    const hosts = await Promise.all(ids.map((_, k) => start(k)));
    const out: string[] = [];
    const deps = { out: (line: string) => out.push(line), err: (line: string) => out.push(line) };
    const run = (...argv: string[]) =>
      runGroups(
        parseGroupsArgs([...argv, "--peers", ids.join(","), "--timeout-ms", "15000"]),
        deps,
      );
    try {
      assert.equal(await run("create", "orders"), 0, out.join("\n"));
      assert.equal(out.filter((l) => l.endsWith("created")).length, 3, out.join("\n"));
      const orders = new CounterClient({ peers: ids, group: "orders", timeoutMs: WAIT_MS });
      try {
        assert.equal((await orders.incrementAndGet(5n)).value, 5n);
      } finally {
        await orders.close();
      }
      // Created again: nothing changes.
      out.length = 0;
      assert.equal(await run("create", "orders"), 0);
      assert.equal(out.filter((l) => l.endsWith("already served")).length, 3, out.join("\n"));
      out.length = 0;
      assert.equal(await run("list", "--json"), 0);
      const listed = JSON.parse(out[0]) as { nodes: { groups: { name: string }[] }[] };
      for (const node of listed.nodes) {
        assert.deepEqual(node.groups.map((g) => g.name), ["counter", "orders"]);
      }
      // A restart serves the same groups, with the value kept.
      await hosts[0].stop();
      hosts[0] = await start(0);
      assert.deepEqual(hosts[0].groups(), ["counter", "orders"]);
      const again = new CounterClient({ peers: [ids[0]], group: "orders", timeoutMs: WAIT_MS });
      try {
        assert.equal((await again.get({ consistency: "follower" })).value, 5n);
      } finally {
        await again.close();
      }
      out.length = 0;
      assert.equal(await run("remove", "orders"), 0, out.join("\n"));
      for (const host of hosts) assert.deepEqual(host.groups(), ["counter"]);
      const moved = [...Deno.readDirSync(join(root, "n1", "removed"))].map((e) => e.name);
      assert.equal(moved.length, 1);
      assert.match(moved[0], /^orders\.\d+$/);
      // Removed durably: a restart with --groups naming it does not bring it back.
      await hosts[1].stop();
      hosts[1] = await NodeHost.start({
        ...options(join(root, "n1"), ids[1], ids),
        groups: ["counter", "orders"],
      });
      assert.deepEqual(hosts[1].groups(), ["counter"]);
      // The last group cannot be removed.
      out.length = 0;
      assert.equal(await run("remove", "counter"), 1);
      assert.match(out.join("\n"), /last group/);
    } finally {
      await Promise.all(hosts.map((h) => h.stop()));
    }
  });
});
