/**
 * Quiescent groups in a real host (lib/counter/host.ts), three hosts in this process over TCP:
 * idle groups go quiet and stop sending, the hosts keep hearing from each other through
 * node-level heartbeats, and the groups a stopped host led elect new leaders and keep serving.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { NodeOptions } from "../../lib/counter/node.ts";
import { NodeHost } from "../../lib/counter/host.ts";
import { CounterClient } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { silentLogger } from "../../lib/logging/logger.ts";
import { Role } from "../../lib/raft/mod.ts";

const WAIT_MS = 20_000;
const GROUPS = ["counter", "g1", "g2", "g3", "g4", "g5"];

function options(dataDir: string, id: string, conf: string[]): NodeOptions {
  return {
    dataDir,
    id,
    conf,
    group: "counter",
    electionTimeoutMs: 500,
    heartbeatIntervalMs: 50,
    snapshotIntervalSecs: 0,
    logger: silentLogger,
  };
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

/** Starts three hosts serving `GROUPS`; runs `fn`; stops them and removes their data. */
async function withHosts(fn: (hosts: NodeHost[], ids: string[]) => Promise<void>): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "counter-host-quiesce-test-" });
  const ids = freePorts(3).map((port) => `127.0.0.1:${port}`);
  const hosts = await Promise.all(
    ids.map((id, k) =>
      NodeHost.start({ ...options(join(root, `n${k}`), id, ids), groups: [...GROUPS] })
    ),
  );
  try {
    await fn(hosts, ids);
  } finally {
    await Promise.all(hosts.map((h) => h.stop()));
    await Deno.remove(root, { recursive: true });
  }
}

/** The one host leading `group` among `hosts`, once there is exactly one. */
function leaderOf(hosts: NodeHost[], group: string): NodeHost | undefined {
  const leaders = hosts.filter((h) => h.node(group)?.role === Role.Leader);
  return leaders.length === 1 ? leaders[0] : undefined;
}

/** True when every group is quiet on every host of `hosts`. */
function allQuiet(hosts: NodeHost[]): boolean {
  return hosts.every((h) => GROUPS.every((g) => h.node(g)?.quiesced === true));
}

/** Bodies of the groups (not node-level heartbeats) `host` sent, and its heartbeats, summed. */
function sentCounts(host: NodeHost): { sent: number; heartbeats: number } {
  let sent = 0;
  let heartbeats = 0;
  for (const peer of host.peerStats()) {
    sent += peer.sent;
    heartbeats += peer.heartbeats;
  }
  return { sent, heartbeats };
}

Deno.test("idle groups go quiet: no group sends anything, the hosts exchange node heartbeats", async () => {
  await withHosts(async (hosts, ids) => {
    for (const group of GROUPS) await waitFor(() => leaderOf(hosts, group), `a leader of ${group}`);
    const client = new CounterClient({ peers: ids, timeoutMs: WAIT_MS });
    try {
      for (const group of GROUPS) await client.incrementAndGet(1n, { group });
    } finally {
      await client.close();
    }
    await waitFor(() => allQuiet(hosts) || undefined, "every group quiet on every host");
    const before = hosts.map(sentCounts);
    // A window of at least 10 node heartbeats from every host (about 10 heartbeat intervals,
    // however slow the machine): leaders would have sent a group heartbeat in each interval.
    await waitFor(
      () =>
        hosts.every((h, k) => sentCounts(h).heartbeats - before[k].heartbeats >= 10) || undefined,
      "10 node heartbeats from each host",
    );
    const after = hosts.map(sentCounts);
    for (let k = 0; k < hosts.length; k++) {
      assert.equal(after[k].sent - before[k].sent, 0, `${ids[k]} sent group bodies while quiet`);
    }
    assert.ok(allQuiet(hosts), "every group is still quiet");
    // Each host's peers see it alive: its heartbeats reached them, so nothing woke.
    for (const host of hosts) {
      for (const group of GROUPS) assert.notEqual(host.node(group)!.leader, "");
    }
  });
});

Deno.test("the groups a stopped host led while quiet elect new leaders and keep serving", async () => {
  await withHosts(async (hosts, ids) => {
    for (const group of GROUPS) await waitFor(() => leaderOf(hosts, group), `a leader of ${group}`);
    // Make host 0 lead some groups: transfer leadership of half of them to it.
    const client = new CounterClient({ peers: ids, timeoutMs: WAIT_MS });
    try {
      for (const group of GROUPS) await client.incrementAndGet(1n, { group });
      await waitFor(() => allQuiet(hosts) || undefined, "every group quiet on every host");
      const led = GROUPS.filter((g) => leaderOf(hosts, g) === hosts[0]);
      const others = GROUPS.filter((g) => !led.includes(g));
      // Some group must be led by the host that stops, or the test shows nothing: move one.
      if (led.length === 0) {
        const group = GROUPS[0];
        const target = ids[0];
        await client.admin("transfer_leader", { node: target }, { group });
        await waitFor(() => leaderOf(hosts, group) === hosts[0] || undefined, "the transfer");
        led.push(group);
        others.splice(others.indexOf(group), 1);
        await waitFor(() => allQuiet(hosts) || undefined, "every group quiet again");
      }
      const survivors = hosts.slice(1);
      const termsBefore = new Map(GROUPS.map((g) => [g, survivors[0].node(g)!.status().term]));
      await hosts[0].stop();
      for (const group of led) {
        await waitFor(
          () => leaderOf(survivors, group),
          `a new leader of ${group} after its quiet leader's host stopped`,
        );
      }
      const rest = new CounterClient({ peers: ids.slice(1), timeoutMs: WAIT_MS });
      try {
        for (const group of GROUPS) {
          assert.equal((await rest.incrementAndGet(10n, { group })).value, 11n, group);
        }
      } finally {
        await rest.close();
      }
      // The groups host 0 did not lead kept their leaders and terms: only its groups woke.
      for (const group of others) {
        assert.equal(survivors[0].node(group)!.status().term, termsBefore.get(group), group);
      }
    } finally {
      await client.close();
    }
  });
});
