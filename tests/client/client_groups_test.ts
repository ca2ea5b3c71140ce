/**
 * Tests of one `CounterClient` serving several groups (lib/client/client.ts): shared connections,
 * a leader and a cluster id per group, one sequence space. Against fake nodes: real
 * `TransportServer`s on 127.0.0.1 that lead some groups and redirect the others.
 */

import assert from "node:assert/strict";
import { CounterClient, CounterError, CounterGroupClient } from "../../lib/client/client.ts";
import type { ClientRequest, ClientResponse } from "../../lib/transport/codec.ts";
import { TransportServer } from "../../lib/transport/server.ts";

/** A request a fake node received, with the group its body named. */
interface Received {
  group: string;
  request: ClientRequest;
}

/**
 * A node that leads the groups of `leads` (answering increments and reads with that group's
 * value, and `clusterIds[group]` when given), redirects requests for the other known groups to
 * `leaders[group]`, and answers UNKNOWN_GROUP for any other group.
 */
class FakeHost {
  readonly received: Received[] = [];
  readonly server: TransportServer;
  readonly values = new Map<string, bigint>();
  leaders = new Map<string, string>();
  clusterIds = new Map<string, string>();

  constructor(readonly groups: readonly string[]) {
    this.server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
      onRaftMessage: () => {},
      onRequest: (group, request, reply) => {
        this.received.push({ group, request });
        reply(this.#answer(group, request));
      },
    });
  }

  get address(): string {
    return this.server.address;
  }

  #answer(group: string, request: ClientRequest): ClientResponse {
    if (!this.groups.includes(group)) {
      return { ok: false, code: "UNKNOWN_GROUP", error: `unknown group "${group}"` };
    }
    const leader = this.leaders.get(group) ?? "";
    if (leader !== this.address) {
      return { ok: false, code: "NOT_LEADER", error: "not the leader", leader };
    }
    const clusterId = this.clusterIds.get(group);
    let value = this.values.get(group) ?? 0n;
    if (request.op === "incr") value += request.delta ?? 0n;
    this.values.set(group, value);
    return { ok: true, value, leader, ...(clusterId === undefined ? {} : { clusterId }) };
  }

  /** Requests of `group` received here. */
  of(group: string): ClientRequest[] {
    return this.received.filter((r) => r.group === group).map((r) => r.request);
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

const GROUPS = ["counter", "g1", "g2"];

/** Two hosts serving GROUPS: the first leads "counter" and "g2", the second "g1". */
async function withHosts(
  body: (client: CounterClient, hosts: [FakeHost, FakeHost]) => Promise<void>,
): Promise<void> {
  const hosts: [FakeHost, FakeHost] = [new FakeHost(GROUPS), new FakeHost(GROUPS)];
  const leaders = new Map([
    ["counter", hosts[0].address],
    ["g1", hosts[1].address],
    ["g2", hosts[0].address],
  ]);
  for (const host of hosts) host.leaders = leaders;
  const client = new CounterClient({
    peers: hosts.map((h) => h.address),
    timeoutMs: 2000,
    attemptTimeoutMs: 500,
  });
  try {
    await body(client, hosts);
  } finally {
    await client.close();
    await Promise.all(hosts.map((h) => h.close()));
  }
}

Deno.test("one client keeps a leader per group and goes straight to it after the first call", async () => {
  await withHosts(async (client, [a, b]) => {
    const g1 = client.group("g1");
    assert.ok(g1 instanceof CounterGroupClient);
    assert.equal(g1.name, "g1");
    assert.equal((await client.incrementAndGet(5n)).value, 5n);
    assert.equal((await g1.incrementAndGet(7n)).value, 7n);
    assert.equal((await client.get({ group: "g2" })).value, 0n);
    assert.equal(client.leader, a.address);
    assert.equal(g1.leader, b.address);
    assert.equal(client.leaderOf("g2"), a.address);
    assert.equal(client.leaderOf("never-used"), null);
    const before = { a: a.received.length, b: b.received.length };
    // Interleaved calls in every group: each goes to its group's leader, no redirect.
    for (let i = 0; i < 5; i++) {
      await client.incrementAndGet(1n);
      await g1.incrementAndGet(1n);
      await client.incrementAndGet(1n, { group: "g2" });
    }
    assert.equal(a.received.length - before.a, 10);
    assert.equal(b.received.length - before.b, 5);
    assert.deepEqual(a.values, new Map([["counter", 10n], ["g2", 5n]]));
    assert.deepEqual(b.values, new Map([["g1", 12n]]));
    // Every group's requests used the one connection to each node.
    assert.equal(a.server.connectionsAccepted, 1);
    assert.equal(b.server.connectionsAccepted, 1);
  });
});

Deno.test("a leader change in one group does not move another group's route", async () => {
  await withHosts(async (client, [a, b]) => {
    await client.incrementAndGet(1n);
    await client.incrementAndGet(1n, { group: "g1" });
    // g1's leadership moves to a; the default group's stays with a.
    a.leaders = b.leaders = new Map([...a.leaders, ["g1", a.address]]);
    assert.equal((await client.incrementAndGet(1n, { group: "g1" })).leader, a.address);
    assert.equal(client.leaderOf("g1"), a.address);
    const counterAtB = b.of("counter").length;
    await client.incrementAndGet(1n);
    assert.equal(b.of("counter").length, counterAtB, "the default group went straight to a");
  });
});

Deno.test("increments of every group share one session: distinct seqs, one clientId", async () => {
  await withHosts(async (client, [a, b]) => {
    const groups = ["counter", "g1", "g2"];
    await Promise.all(
      Array.from({ length: 30 }, (_, i) => client.incrementAndGet(1n, { group: groups[i % 3] })),
    );
    const incrs = [...a.received, ...b.received].map((r) => r.request).filter((r) =>
      r.op === "incr"
    );
    const answered = new Map<number, ClientRequest>();
    for (const r of incrs) answered.set(r.seq!, r);
    assert.equal(answered.size, 30, "every increment has its own seq");
    assert.equal(new Set(incrs.map((r) => r.clientId)).size, 1);
    for (const r of incrs) assert.ok(r.ackedBelow! <= r.seq!);
  });
});

Deno.test("the cluster id is pinned per group: each group's own, no WRONG_CLUSTER between them", async () => {
  await withHosts(async (client, [a, b]) => {
    for (const host of [a, b]) {
      host.clusterIds = new Map([["counter", "00000000000000aa"], ["g1", "00000000000000bb"]]);
    }
    await client.incrementAndGet(1n);
    await client.incrementAndGet(1n, { group: "g1" });
    assert.equal(client.clusterId, "00000000000000aa");
    assert.equal(client.clusterIdOf("g1"), "00000000000000bb");
    assert.equal(client.group("g1").clusterId, "00000000000000bb");
    await client.get({ group: "g1" });
    const g1Requests = b.of("g1");
    assert.equal(g1Requests.at(-1)!.clusterId, "00000000000000bb");
    // Another cluster id in a group already pinned is still refused.
    b.clusterIds = new Map([["g1", "00000000000000cc"]]);
    await assert.rejects(
      client.get({ group: "g1" }),
      (err) => err instanceof CounterError && err.code === "WRONG_CLUSTER",
    );
    // The default group is not affected.
    assert.equal((await client.get()).value, 1n);
  });
});

Deno.test("a group no node serves is UNKNOWN_GROUP at once, failed; other groups keep working", async () => {
  await withHosts(async (client, [a, b]) => {
    await assert.rejects(
      client.group("nope").incrementAndGet(1n),
      (err) =>
        err instanceof CounterError && err.code === "UNKNOWN_GROUP" && err.outcome === "failed",
    );
    // Each node asked once (another might have served it), then no retries.
    assert.equal(a.of("nope").length, 1);
    assert.equal(b.of("nope").length, 1);
    assert.equal((await client.incrementAndGet(2n)).value, 2n);
  });
});

Deno.test("a group on some of the nodes only: the client finds them and stops asking the others", async () => {
  const hosts = [new FakeHost(GROUPS), new FakeHost(GROUPS), new FakeHost([...GROUPS, "part"])];
  const [a, b, c] = hosts;
  const leaders = new Map([
    ["counter", a.address],
    ["g1", a.address],
    ["g2", a.address],
    ["part", c.address],
  ]);
  for (const host of hosts) host.leaders = leaders;
  // A client starts at a random peer: eight fresh clients all but surely meet a node without the
  // group first (all eight starting at c has odds of 1 in 6,561).
  for (let k = 0; k < 8; k++) {
    const client = new CounterClient({
      peers: hosts.map((h) => h.address),
      timeoutMs: 2000,
      attemptTimeoutMs: 500,
    });
    try {
      const part = client.group("part");
      const before = [a.of("part").length, b.of("part").length];
      for (let i = 1; i <= 3; i++) {
        assert.equal((await part.incrementAndGet(1n)).value, BigInt(3 * k + i));
      }
      // Each node without the group was asked once at most, whatever the client's start.
      assert.ok(a.of("part").length - before[0] <= 1 && b.of("part").length - before[1] <= 1);
      // The other groups are unaffected.
      assert.equal((await client.incrementAndGet(1n)).value, BigInt(k + 1));
    } finally {
      await client.close();
    }
  }
  assert.equal(c.of("part").length, 24);
  await Promise.all(hosts.map((h) => h.close()));
});

Deno.test("admin and status calls name their group", async () => {
  await withHosts(async (client, [a, b]) => {
    await client.status(b.address, { group: "g2" });
    assert.equal(b.received.at(-1)!.group, "g2");
    await client.group("g1").status(a.address);
    assert.equal(a.received.at(-1)!.group, "g1");
    // An admin call sent to one node is not redirected; without a node it follows the redirect.
    await assert.rejects(
      client.admin("peers", {}, { group: "g1", peer: a.address }),
      (err) => err instanceof CounterError && err.code === "NOT_LEADER",
    );
    assert.equal(a.received.at(-1)!.group, "g1");
    assert.equal((await client.group("g1").admin("peers")).leader, b.address);
    assert.equal(b.received.at(-1)!.group, "g1");
  });
});
