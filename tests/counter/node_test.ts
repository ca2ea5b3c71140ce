/**
 * Tests of a counter node running in this process (lib/counter/node.ts): real TCP on 127.0.0.1,
 * real data dirs in temp folders, real timers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterNode, type NodeOptions } from "../../lib/counter/node.ts";
import { CounterClient } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { Logger, silentLogger } from "../../lib/logging/logger.ts";
import { bootstrapState, Role } from "../../lib/raft/mod.ts";
import { DataDir } from "../../lib/storage/mod.ts";
import { encodeHello } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import { type ClientResponse, ListenError, RpcClientConnection } from "../../lib/transport/mod.ts";
import { DataDirLockedError } from "../../lib/storage/mod.ts";

const GROUP = "counter";
// Long enough that a busy test machine does not cause spurious elections mid-test.
const ELECTION_TIMEOUT_MS = 500;
const HEARTBEAT_INTERVAL_MS = 50;
/** Generous: these bound waiting, they are not asserted latencies. */
const WAIT_MS = 10_000;
const CALL_TIMEOUT_MS = 2_000;

function nodeOptions(dataDir: string, id: string, conf: string[], logger = silentLogger) {
  return {
    dataDir,
    id,
    conf,
    group: GROUP,
    electionTimeoutMs: ELECTION_TIMEOUT_MS,
    heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
    snapshotIntervalSecs: 0,
    logger,
  } satisfies NodeOptions;
}

/** A logger that keeps its lines, for failure messages and assertions. */
function arrayLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ level: "debug", write: (line) => lines.push(line) }), lines };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined; throws after `ms`. */
async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms = WAIT_MS,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Waits until exactly one of `nodes` is leader and returns it. */
function waitForLeader(nodes: CounterNode[]): Promise<CounterNode> {
  return waitFor(() => {
    const leaders = nodes.filter((n) => n.role === Role.Leader);
    return leaders.length === 1 ? leaders[0] : undefined;
  }, "a leader");
}

/** A temp root for data dirs, removed by the returned cleanup. */
async function tempRoot(): Promise<{ root: string; remove: () => Promise<void> }> {
  const root = await Deno.makeTempDir({ prefix: "counter-node-test-" });
  return { root, remove: () => Deno.remove(root, { recursive: true }) };
}

/** Calls one node directly (no redirects, no retries). */
async function callNode(
  address: string,
  group: string,
  request: Parameters<RpcClientConnection["call"]>[1],
): Promise<ClientResponse> {
  const conn = await RpcClientConnection.connect(address);
  try {
    return await conn.call(group, request, CALL_TIMEOUT_MS);
  } finally {
    await conn.close();
  }
}

/** Starts a group of `n` nodes; `stop` stops every node still running and removes the dirs. */
async function startGroup(n: number) {
  const { root, remove } = await tempRoot();
  const ids = freePorts(n).map((port) => `127.0.0.1:${port}`);
  const nodes: CounterNode[] = [];
  const stop = async () => {
    await Promise.allSettled(nodes.map((node) => node.stop()));
    await remove();
  };
  try {
    // Together: an empty node waits for the other initial members before it bootstraps.
    const started = await Promise.allSettled(
      ids.map((id, k) => CounterNode.start(nodeOptions(join(root, `n${k}`), id, ids))),
    );
    for (const result of started) if (result.status === "fulfilled") nodes.push(result.value);
    for (const result of started) if (result.status === "rejected") throw result.reason;
  } catch (err) {
    await stop();
    throw err;
  }
  return { root, ids, nodes, stop };
}

Deno.test("a single-node group elects itself and serves incr and get", async () => {
  const group = await startGroup(1);
  const client = new CounterClient({ peers: group.ids, timeoutMs: WAIT_MS });
  try {
    const [node] = group.nodes;
    assert.equal(node.id, group.ids[0]);
    await waitForLeader(group.nodes);
    assert.deepEqual(await client.incrementAndGet(5n), {
      value: 5n,
      leader: node.id,
      node: node.id,
    });
    assert.deepEqual(await client.incrementAndGet(-7n), {
      value: -2n,
      leader: node.id,
      node: node.id,
    });
    assert.deepEqual(await client.incrementAndGet(2n ** 62n), {
      value: 2n ** 62n - 2n,
      leader: node.id,
      node: node.id,
    });
    assert.deepEqual(await client.get(), { value: 2n ** 62n - 2n, leader: node.id, node: node.id });
    const status = await client.status(node.id);
    assert.equal(status.ok, true);
    assert.equal(status.data?.role, "leader");
    assert.equal(status.data?.value, (2n ** 62n - 2n).toString());
    assert.deepEqual(status.data?.voters, group.ids);
  } finally {
    await client.close();
    await group.stop();
  }
});

Deno.test("an overflowing increment is refused with OVERFLOW by the node", async () => {
  const group = await startGroup(1);
  try {
    await waitForLeader(group.nodes);
    const id = group.ids[0];
    const max = (1n << 63n) - 1n;
    assert.equal((await callNode(id, GROUP, { op: "incr", delta: max })).value, max);
    const refused = await callNode(id, GROUP, { op: "incr", delta: 1n });
    assert.equal(refused.ok, false);
    assert.equal(refused.code, "OVERFLOW");
    assert.equal((await callNode(id, GROUP, { op: "get" })).value, max);
  } finally {
    await group.stop();
  }
});

Deno.test("concurrent increments share log entries; each gets its own answer", async () => {
  // The leader proposes the increments of one event-loop turn as one batch entry (command.ts):
  // fewer entries than increments, every increment applied once, each answered with the value
  // right after it, a duplicate in the same turn answered as the first, followers in step.
  const group = await startGroup(3);
  const conns: RpcClientConnection[] = [];
  try {
    const leader = await waitForLeader(group.nodes);
    const status = async (id: string) => (await callNode(id, GROUP, { op: "status" })).data!;
    const before = await status(leader.id);
    const count = 300;
    for (let c = 0; c < 3; c++) conns.push(await RpcClientConnection.connect(leader.id));
    const calls: Promise<ClientResponse>[] = [];
    for (let i = 0; i < count; i++) {
      const seq = i + 1;
      // Positive deltas: every increment leads to a new value, and the steps between the values
      // sorted tell the order of application.
      const delta = 1n << BigInt(i % 40);
      const request = { op: "incr", delta, clientId: `batch-${i % 3}`, seq, ackedBelow: 1 };
      calls.push(conns[i % 3].call(GROUP, request, WAIT_MS));
      // The same request again, in the same turn: a duplicate, answered with the first answer.
      if (i % 50 === 7) calls.push(conns[i % 3].call(GROUP, request, WAIT_MS));
    }
    const answers = await Promise.all(calls);
    for (const a of answers) assert.equal(a.ok, true, a.error);
    const values = answers.map((a) => a.value!);
    let total = 0n;
    for (let i = 0; i < count; i++) total += 1n << BigInt(i % 40);
    const distinct = new Set(values);
    assert.equal(distinct.size, count, "one value per increment; duplicates repeat theirs");
    const max = values.reduce((m, v) => (v > m ? v : m), 0n);
    assert.equal(max, total, "the last increment applied sees them all");
    assert.equal((await callNode(leader.id, GROUP, { op: "get" })).value, total);
    // Each answer is the value right after that increment: sorted by value, the answers step up
    // by exactly the deltas (order of application), duplicates aside.
    const byValue = [...distinct].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const deltaOf = new Map<bigint, bigint>();
    for (let i = 0, k = 0; i < count; i++, k++) {
      deltaOf.set(answers[k].value!, 1n << BigInt(i % 40));
      if (i % 50 === 7) {
        k++;
        assert.equal(answers[k].value, answers[k - 1].value, "duplicate answered as the first");
      }
    }
    let previous = 0n;
    for (const v of byValue) {
      assert.equal(v - previous, deltaOf.get(v), `the step to ${v} is its own increment's delta`);
      previous = v;
    }
    const after = await status(leader.id);
    const entries = (after.lastIndex as number) - (before.lastIndex as number);
    assert.ok(entries > 0 && entries < count, `${count} increments took ${entries} entries`);
    for (const node of group.nodes) {
      await waitFor(async () => {
        const r = await callNode(node.id, GROUP, { op: "get", consistency: "stale" });
        return r.value === total ? true : undefined;
      }, `${node.id} to apply every batch`);
    }
  } finally {
    await Promise.allSettled(conns.map((c) => c.close()));
    await group.stop();
  }
});

Deno.test("a leader's wall clock jumping 2 h ahead does not expire a live session", async () => {
  // Before cluster time, the leader stamped entries with Date.now(): the retry below carried a
  // stamp 2 h after the first attempt, the session expired, and the retry was applied twice.
  const group = await startGroup(1);
  const realNow = Date.now;
  try {
    await waitForLeader(group.nodes);
    const id = group.ids[0];
    const incr = { op: "incr", delta: 5n, clientId: "clock-test", seq: 1, ackedBelow: 1 } as const;
    assert.equal((await callNode(id, GROUP, incr)).value, 5n);
    const stepMs = 2 * 60 * 60 * 1000;
    Date.now = () => realNow() + stepMs;
    const retry = await callNode(id, GROUP, incr);
    assert.equal(retry.ok, true, retry.error);
    assert.equal(retry.value, 5n, "the retry gets the first answer");
    assert.equal((await callNode(id, GROUP, { op: "get" })).value, 5n, "applied once");
  } finally {
    Date.now = realNow;
    await group.stop();
  }
});

Deno.test("promoting a learner that has not caught up is refused, naming its lag", async () => {
  // Before, the promotion went ahead: a one-voter group promoting a dead learner needed the dead
  // node to commit anything ever again.
  const group = await startGroup(1);
  try {
    await waitForLeader(group.nodes);
    const id = group.ids[0];
    const [port] = freePorts(1);
    const learner = `127.0.0.1:${port}`; // nothing listens there: it never catches up
    // The leader takes membership changes once it has committed an entry of its term.
    await waitFor(
      async () => (await callNode(id, GROUP, { op: "incr", delta: 0n })).ok || undefined,
      "a first commit",
    );
    const added = await callNode(id, GROUP, {
      op: "add_peer",
      args: { node: learner, learner: true },
    });
    assert.equal(added.ok, true, added.error);
    const promoted = await callNode(id, GROUP, { op: "promote_peer", args: { node: learner } });
    assert.equal(promoted.ok, false);
    assert.equal(promoted.code, "REFUSED");
    assert.match(
      promoted.error ?? "",
      new RegExp(`^learner ${learner} is \\d+ entries behind; try again when it has caught up`),
    );
    // The group still commits on its own.
    assert.equal((await callNode(id, GROUP, { op: "incr", delta: 1n })).value, 1n);
  } finally {
    await group.stop();
  }
});

Deno.test("a three-node group: redirects, error codes and stale reads", async (t) => {
  const group = await startGroup(3);
  const client = new CounterClient({ peers: group.ids, timeoutMs: WAIT_MS });
  try {
    let leader = await waitForLeader(group.nodes);
    let followers = group.nodes.filter((n) => n !== leader);
    // Each step looks the leader up again, in case a slow machine caused an election.
    const refresh = async () => {
      leader = await waitForLeader(group.nodes);
      followers = group.nodes.filter((n) => n !== leader);
    };

    await t.step("increments through the client reach the leader", async () => {
      await refresh();
      let expected = 0n;
      for (const delta of [1n, 2n, 3n, -10n, 2n ** 55n]) {
        expected += delta;
        assert.deepEqual(await client.incrementAndGet(delta), {
          value: expected,
          leader: leader.id,
          node: leader.id,
        });
      }
      const all = await Promise.all(Array.from({ length: 50 }, () => client.incrementAndGet(1n)));
      expected += 50n;
      // Fifty concurrent increments saw fifty different values, the last one the total.
      assert.equal(new Set(all.map((r) => r.value)).size, 50);
      assert.equal(all.reduce((m, r) => (r.value > m ? r.value : m), 0n), expected);
      assert.deepEqual(await client.get(), { value: expected, leader: leader.id, node: leader.id });
    });

    await t.step("a follower answers NOT_LEADER with the leader's address", async () => {
      await refresh();
      for (const follower of followers) {
        for (const request of [{ op: "incr", delta: 1n }, { op: "get" }]) {
          const resp = await waitFor(async () => {
            const r = await callNode(follower.id, GROUP, request);
            // Right after an election a follower may not know the leader yet.
            return r.code === "NO_LEADER" ? undefined : r;
          }, "the follower to learn the leader");
          assert.equal(resp.ok, false);
          assert.equal(resp.code, "NOT_LEADER");
          assert.equal(resp.leader, leader.id);
        }
      }
    });

    await t.step("a wrong group is UNKNOWN_GROUP", async () => {
      await refresh();
      for (const node of group.nodes) {
        const resp = await callNode(node.id, "other-group", { op: "incr", delta: 1n });
        assert.equal(resp.ok, false);
        assert.equal(resp.code, "UNKNOWN_GROUP");
        assert.match(resp.error ?? "", /other-group/);
      }
    });

    await t.step("an unknown op is UNKNOWN_OP", async () => {
      await refresh();
      for (const node of group.nodes) {
        const resp = await callNode(node.id, GROUP, { op: "frobnicate" });
        assert.equal(resp.code, "UNKNOWN_OP");
        assert.match(resp.error ?? "", /frobnicate/);
      }
    });

    await t.step("an incr without a delta, or an unknown consistency, is BAD_REQUEST", async () => {
      await refresh();
      for (const node of group.nodes) {
        const resp = await callNode(node.id, GROUP, { op: "incr", clientId: "c", seq: 1 });
        assert.equal(resp.code, "BAD_REQUEST");
      }
      const resp = await callNode(leader.id, GROUP, { op: "get", consistency: "eventual" });
      assert.equal(resp.code, "BAD_REQUEST");
      assert.match(resp.error ?? "", /eventual/);
    });

    await t.step("a stale get works on a follower and catches up with the leader", async () => {
      await refresh();
      const { value } = await client.incrementAndGet(1000n);
      for (const follower of followers) {
        const resp = await waitFor(async () => {
          const r = await callNode(follower.id, GROUP, { op: "get", consistency: "stale" });
          assert.equal(r.ok, true, JSON.stringify(r, (_k, v) => String(v)));
          return r.value === value ? r : undefined;
        }, `follower ${follower.id} to apply ${value}`);
        assert.equal(resp.leader, leader.id);
      }
      // Through the client too: any node may answer.
      const stale = new CounterClient({ peers: [followers[0].id], timeoutMs: WAIT_MS });
      try {
        assert.deepEqual(await stale.get({ consistency: "stale" }), {
          value,
          leader: leader.id,
          node: followers[0].id,
        });
      } finally {
        await stale.close();
      }
    });

    await t.step(
      "a follower-consistency get on a follower sees every acknowledged increment",
      async () => {
        await refresh();
        for (let i = 0; i < 5; i++) {
          const { value } = await client.incrementAndGet(1n);
          for (const follower of followers) {
            // No polling: a linearizable read must already include the acknowledged increment.
            const r = await callNode(follower.id, GROUP, { op: "get", consistency: "follower" });
            assert.equal(r.ok, true, r.error);
            // Nothing else writes meanwhile, so the read sees exactly the acknowledged value.
            assert.equal(r.value, value, `follower ${follower.id} read a stale value`);
          }
          const lease = await callNode(leader.id, GROUP, { op: "get", consistency: "lease" });
          assert.equal(lease.value, value);
        }
      },
    );

    await t.step("every node reports the same applied index and value", async () => {
      await refresh();
      await waitFor(async () => {
        const statuses = await Promise.all(
          group.ids.map((id) => callNode(id, GROUP, { op: "status" })),
        );
        const seen = new Set(statuses.map((s) => `${s.data?.applied}/${s.data?.value}`));
        return seen.size === 1 ? true : undefined;
      }, "the nodes to converge");
    });
  } finally {
    await client.close();
    await group.stop();
  }
});

Deno.test("stop() releases the data dir: a restart on it recovers the value", async () => {
  const { root, remove } = await tempRoot();
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  const dir = join(root, "n");
  let node: CounterNode | null = null;
  try {
    node = await CounterNode.start(nodeOptions(dir, id, [id]));
    await waitForLeader([node]);
    let client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      await client.incrementAndGet(40n);
      assert.equal((await client.incrementAndGet(2n)).value, 42n);
    } finally {
      await client.close();
    }
    await node.stop();
    await node.closed; // resolved, not rejected
    node = null;

    const { logger, lines } = arrayLogger();
    node = await CounterNode.start(nodeOptions(dir, id, [id], logger));
    await waitForLeader([node]);
    assert.ok(lines.some((l) => l.includes("recovered")), lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes("bootstrapped")), lines.join("\n"));
    client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
    try {
      assert.equal((await client.get()).value, 42n);
      assert.equal((await client.incrementAndGet(1n)).value, 43n);
    } finally {
      await client.close();
    }
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("stop() is idempotent and closes the port", async () => {
  const { root, remove } = await tempRoot();
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  try {
    const node = await CounterNode.start(nodeOptions(join(root, "n"), id, [id]));
    await waitForLeader([node]);
    await Promise.all([node.stop(), node.stop()]);
    await node.stop();
    await assert.rejects(RpcClientConnection.connect(id, { connectTimeoutMs: 500 }));
  } finally {
    await remove();
  }
});

Deno.test("a second node on the same data dir refuses to start", async () => {
  const { root, remove } = await tempRoot();
  const [portA, portB] = freePorts(2);
  const idA = `127.0.0.1:${portA}`;
  const idB = `127.0.0.1:${portB}`;
  const dir = join(root, "shared");
  let node: CounterNode | null = null;
  try {
    node = await CounterNode.start(nodeOptions(dir, idA, [idA]));
    // The same id: its port is taken, and that is found first.
    await assert.rejects(CounterNode.start(nodeOptions(dir, idA, [idA])), ListenError);
    await assert.rejects(
      CounterNode.start({ ...nodeOptions(dir, idA, [idA]), listen: idB }),
      (err: unknown) => {
        assert.ok(err instanceof DataDirLockedError, String(err));
        assert.match(err.message, /in use/);
        assert.ok(err.message.includes(dir), err.message);
        return true;
      },
    );
    // Even under another id: the lock is taken before the dir's identity is read.
    await assert.rejects(CounterNode.start(nodeOptions(dir, idB, [idB])), DataDirLockedError);
    // The refused start left nothing listening on its port.
    await assert.rejects(RpcClientConnection.connect(idB, { connectTimeoutMs: 500 }));
    // The first node still serves.
    await waitForLeader([node]);
    assert.equal((await callNode(idA, GROUP, { op: "incr", delta: 3n })).value, 3n);
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("a fresh node whose --conf lacks its --id refuses to start and unlocks the dir", async () => {
  const { root, remove } = await tempRoot();
  const [port, other] = freePorts(2);
  const id = `127.0.0.1:${port}`;
  const dir = join(root, "n");
  let node: CounterNode | null = null;
  try {
    await assert.rejects(
      CounterNode.start(nodeOptions(dir, id, [`127.0.0.1:${other}`])),
      /must include/,
    );
    node = await CounterNode.start(nodeOptions(dir, id, [id]));
    await waitForLeader([node]);
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("a busy port fails the start before the data dir is touched; the retry works", async () => {
  const { root, remove } = await tempRoot();
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const busyId = `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`;
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  const dir = join(root, "n");
  let node: CounterNode | null = null;
  try {
    await assert.rejects(
      CounterNode.start(nodeOptions(dir, busyId, [busyId])),
      (err: unknown) => {
        assert.ok(err instanceof ListenError, String(err));
        assert.match(err.message, new RegExp(`^cannot listen on ${busyId}: .*in use`, "i"));
        return true;
      },
    );
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound, "nothing written");
    // The corrected retry, on the same dir under another id, is not refused.
    node = await CounterNode.start(nodeOptions(dir, id, [id]));
    await waitForLeader([node]);
  } finally {
    busy.close();
    await node?.stop();
    await remove();
  }
});

Deno.test("--listen: the node binds there and keeps --id as its identity", async () => {
  const { root, remove } = await tempRoot();
  // As behind a port mapping: peers and clients would use `id`; the process binds `listen`.
  const [idPort, listenPort] = freePorts(2);
  const id = `127.0.0.1:${idPort}`;
  const listen = `127.0.0.1:${listenPort}`;
  let node: CounterNode | null = null;
  try {
    node = await CounterNode.start({ ...nodeOptions(join(root, "n"), id, [id]), listen });
    await waitForLeader([node]);
    assert.equal((await callNode(listen, GROUP, { op: "incr", delta: 2n })).value, 2n);
    const status = await callNode(listen, GROUP, { op: "status" });
    assert.equal((status.data as Record<string, unknown>).id, id);
    await assert.rejects(RpcClientConnection.connect(id, { connectTimeoutMs: 500 }));
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("a restart with another --conf warns that it is ignored", async () => {
  const { root, remove } = await tempRoot();
  const [port, other] = freePorts(2);
  const id = `127.0.0.1:${port}`;
  const dir = join(root, "n");
  let node: CounterNode | null = null;
  try {
    node = await CounterNode.start(nodeOptions(dir, id, [id]));
    await node.stop();
    const same = arrayLogger();
    node = await CounterNode.start(nodeOptions(dir, id, [id], same.logger));
    await node.stop();
    assert.ok(!same.lines.some((l) => l.includes("--conf is ignored")), same.lines.join("\n"));
    const changed = arrayLogger();
    node = await CounterNode.start(
      nodeOptions(dir, id, [id, `127.0.0.1:${other}`], changed.logger),
    );
    const warned = changed.lines.filter((l) => l.includes("--conf is ignored"));
    assert.equal(warned.length, 1, changed.lines.join("\n"));
    assert.match(warned[0], /WARN/);
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("a node without a quorum warns, again while it lasts, and says when a leader is back", async () => {
  const { root, remove } = await tempRoot();
  const [port, absent] = freePorts(2);
  const id = `127.0.0.1:${port}`;
  const { logger, lines } = arrayLogger();
  let node: CounterNode | null = null;
  try {
    // Two voters, one of them never started: no election can succeed. The dir is bootstrapped
    // beforehand, as by an earlier run: an empty one would wait for the absent member's answer.
    const dir = await DataDir.open(join(root, "n"), { nodeId: id, group: GROUP });
    const initial = bootstrapState({ voters: [id, `127.0.0.1:${absent}`].sort(), learners: [] });
    await dir.append(initial.entries);
    await dir.saveHardState(initial.hardState);
    await dir.close();
    node = await CounterNode.start({
      ...nodeOptions(join(root, "n"), id, [id, `127.0.0.1:${absent}`], logger),
      leaderlessWarnIntervalMs: 300,
    });
    const warnings = () => lines.filter((l) => /WARN +no leader for \d+ s/.test(l));
    await waitFor(() => warnings().length >= 2 ? true : undefined, "two no-leader warnings");
    assert.match(warnings()[0], /needs 2 of 2 voters/);
    // Far fewer warnings than ticks: the warning is rate-limited.
    assert.ok(warnings().length < 20, `${warnings().length} warnings`);
  } finally {
    await node?.stop();
    await remove();
  }
});

Deno.test("raft messages for another group are warned about once per peer", async () => {
  const { root, remove } = await tempRoot();
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  const { logger, lines } = arrayLogger();
  let node: CounterNode | null = null;
  node = await CounterNode.start(nodeOptions(join(root, "n"), id, [id], logger));
  const hello = encodeHello("other", {
    from: "127.0.0.1:1",
    incarnation: "00000000000000a1",
    clusterId: "",
  });
  try {
    // A peer of another group retries its connection: the node warns once, not per attempt.
    for (let i = 0; i < 5; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(encodeFrame(hello));
      await conn.read(new Uint8Array(16)).catch(() => null); // closed by the node
      conn.close();
    }
    await waitFor(
      () => lines.some((l) => l.includes("another group")) ? true : undefined,
      "the warning",
    );
    await sleep(100);
    const warned = lines.filter((l) => l.includes("another group"));
    assert.equal(warned.length, 1, lines.join("\n"));
    assert.match(warned[0], /WARN .*peer=127\.0\.0\.1:1 .*group=other/);
  } finally {
    await node!.stop();
    await remove();
  }
});

Deno.test("--snapshot-log-bytes triggers snapshots; --snapshot-retain-bytes bounds the tail kept", async () => {
  const { root, remove } = await tempRoot();
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  const node = await CounterNode.start({
    ...nodeOptions(join(root, "n0"), id, [id]),
    snapshotLogEntries: 0, // only the byte trigger
    snapshotLogBytes: 2_000,
    snapshotRetainEntries: 1_000, // a count that alone would keep every entry
    snapshotRetainBytes: 300,
  });
  const client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
  try {
    await waitForLeader([node]);
    // One at a time, so each increment is its own entry (tens of bytes each).
    for (let i = 0; i < 200; i++) await client.incrementAndGet(1n);
    const status = node.status();
    const snapshotIndex = Number(status.snapshotIndex);
    const compactedIndex = Number(status.compactedIndex);
    assert.ok(snapshotIndex > 100, `a snapshot was taken by size: ${JSON.stringify(status)}`);
    // The tail below the newest snapshot holds at most 300 bytes: far fewer than 1,000 entries.
    assert.ok(compactedIndex > 0, `the log was compacted: ${JSON.stringify(status)}`);
    assert.ok(
      snapshotIndex - compactedIndex < 30,
      `tail of ${snapshotIndex - compactedIndex} entries kept for 300 bytes`,
    );
    assert.equal(status.value, "200");
  } finally {
    await client.close();
    await node.stop();
    await remove();
  }
});
