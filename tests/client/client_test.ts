/**
 * Tests of `CounterClient` (lib/client/client.ts) against fake nodes: real `TransportServer`s on
 * 127.0.0.1 whose answers each test scripts, and which record every request they receive.
 */

import assert from "node:assert/strict";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import type { ClientRequest, ClientResponse } from "../../lib/transport/codec.ts";
import { type ReplyFn, TransportServer } from "../../lib/transport/server.ts";

const GROUP = "counter";

/** What a fake node does with one request: answer it (now), or do nothing (never answer). */
type Script = (request: ClientRequest, n: number, node: FakeNode) => ClientResponse | "silent";

/** A scripted node. `requests` holds every request it received, in order. */
class FakeNode {
  readonly requests: ClientRequest[] = [];
  readonly groups: string[] = [];
  readonly server: TransportServer;
  #replies: ReplyFn[] = [];

  constructor(script: Script) {
    this.server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
      onRaftMessage: () => {},
      onRequest: (group, request, reply) => {
        this.requests.push(request);
        this.groups.push(group);
        const answer = script(request, this.requests.length, this);
        if (answer === "silent") this.#replies.push(reply);
        else reply(answer);
      },
    });
  }

  get address(): string {
    return this.server.address;
  }

  /** Closes the port and every connection; requests left unanswered stay so. */
  close(): Promise<void> {
    return this.server.close();
  }
}

/** Runs `body` with fake nodes and a client, closing all of them whatever happens. */
async function withNodes(
  scripts: Script[],
  clientOptions: Partial<ConstructorParameters<typeof CounterClient>[0]>,
  body: (client: CounterClient, nodes: FakeNode[]) => Promise<void>,
): Promise<void> {
  const nodes = scripts.map((s) => new FakeNode(s));
  const client = new CounterClient({
    peers: nodes.map((n) => n.address),
    timeoutMs: 2000,
    attemptTimeoutMs: 500,
    ...clientOptions,
  });
  try {
    await body(client, nodes);
  } finally {
    await client.close();
    await Promise.all(nodes.map((n) => n.close()));
  }
}

function value(v: bigint, leader?: string): ClientResponse {
  return { ok: true, value: v, leader };
}

/** What the client returns for a value `v` answered by `node`, which named itself leader. */
function answer(v: bigint, node: string): { value: bigint; leader: string; node: string } {
  return { value: v, leader: node, node };
}

function fail(code: ClientResponse["code"], leader?: string): ClientResponse {
  return { ok: false, code, error: `scripted ${code}`, leader };
}

/** Asserts that `promise` rejects with a CounterError of `code` and `outcome`; returns it. */
async function assertCounterError(
  promise: Promise<unknown>,
  code: string,
  outcome: "failed" | "unknown",
): Promise<CounterError> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CounterError, `expected a CounterError, got ${caught}`);
  assert.equal(caught.code, code, caught.message);
  assert.equal(caught.outcome, outcome, caught.message);
  assert.equal(caught.name, "CounterError");
  return caught;
}

/** Every request an increment's attempts carried: one clientId and one seq for all of them. */
function assertSameIdentity(requests: ClientRequest[]): { clientId: string; seq: number } {
  assert.ok(requests.length > 0);
  const { clientId, seq } = requests[0];
  assert.equal(typeof clientId, "string");
  assert.ok(clientId!.length > 0);
  assert.ok(Number.isSafeInteger(seq) && seq! >= 1);
  for (const r of requests) {
    assert.equal(r.op, "incr");
    assert.equal(r.clientId, clientId);
    assert.equal(r.seq, seq);
    assert.ok(r.ackedBelow! <= seq!);
  }
  return { clientId: clientId!, seq: seq! };
}

Deno.test("the constructor refuses an empty peer list", () => {
  assert.throws(() => new CounterClient({ peers: [] }), /at least one peer/);
});

Deno.test("an increment succeeds against the leader and names it", async () => {
  let counter = 0n;
  await withNodes([(r) => value(counter += r.delta!, undefined)], {}, async (client, [node]) => {
    assert.deepEqual(await client.incrementAndGet(5n), answer(5n, node.address));
    assert.deepEqual(await client.incrementAndGet(-2n), answer(3n, node.address));
    assert.equal(client.leader, node.address);
    assert.deepEqual(node.groups, [GROUP, GROUP]);
    const [a, b] = node.requests;
    assert.equal(a.delta, 5n);
    assert.equal(b.delta, -2n);
    assert.equal(a.clientId, b.clientId);
    assert.equal(b.seq, a.seq! + 1);
  });
});

Deno.test("a NOT_LEADER answer is followed to the leader it names", async () => {
  const leader = new FakeNode((r) => value(100n + (r.delta ?? 0n)));
  try {
    await withNodes(
      [() => fail("NOT_LEADER", leader.address)],
      { clientId: "redirected" },
      async (client, [follower]) => {
        const result = await client.incrementAndGet(1n);
        assert.deepEqual(result, answer(101n, leader.address));
        assert.equal(follower.requests.length, 1);
        assert.equal(leader.requests.length, 1);
        // The retry at the leader is the same request.
        assertSameIdentity([...follower.requests, ...leader.requests]);
        assert.equal(leader.requests[0].clientId, "redirected");
        // Later calls go straight to the leader.
        assert.equal(client.leader, leader.address);
        await client.get();
        assert.equal(follower.requests.length, 1);
        assert.equal(leader.requests.length, 2);
      },
    );
  } finally {
    await leader.close();
  }
});

Deno.test("NO_LEADER answers are retried with growing backoff until a leader answers", async () => {
  const NO_LEADER_ANSWERS = 4;
  const arrivalsMs: number[] = [];
  await withNodes(
    [(_r, n) => {
      arrivalsMs.push(performance.now());
      return n <= NO_LEADER_ANSWERS ? fail("NO_LEADER") : value(7n);
    }],
    {},
    async (client, [node]) => {
      const startMs = performance.now();
      assert.deepEqual(await client.incrementAndGet(7n), answer(7n, node.address));
      const elapsedMs = performance.now() - startMs;
      assert.equal(node.requests.length, NO_LEADER_ANSWERS + 1);
      assertSameIdentity(node.requests);
      // Lower bounds only (sleeps never end early): the backoff starts at 10 ms and doubles.
      assert.ok(elapsedMs >= 10 + 20 + 40 + 80 - 5, `${elapsedMs} ms`);
      const gaps = arrivalsMs.slice(1).map((t, i) => t - arrivalsMs[i]);
      assert.ok(gaps[3] >= 80 - 5, `gaps ${gaps.map((g) => g.toFixed(1)).join(", ")}`);
    },
  );
});

Deno.test("a request sent before its connection died, then unanswered, is outcome unknown", async () => {
  // The node receives the increment and then goes away without answering: it may have applied
  // it. The retries that follow cannot even connect, but the first attempt stays ambiguous.
  await withNodes(
    [(_r, _n, node) => {
      node.close();
      return "silent";
    }],
    { timeoutMs: 600, attemptTimeoutMs: 200 },
    async (client, [node]) => {
      const err = await assertCounterError(client.incrementAndGet(1n), "TIMEOUT", "unknown");
      assert.match(err.message, /may or may not have been applied/);
      assert.equal(node.requests.length, 1);
    },
  );
});

Deno.test("a request sent and never answered on a live connection is outcome unknown", async () => {
  await withNodes(
    [() => "silent"],
    { timeoutMs: 500, attemptTimeoutMs: 150 },
    async (client, [node]) => {
      await assertCounterError(client.incrementAndGet(1n), "TIMEOUT", "unknown");
      // Every retry carried the same identity, so at most one of them can be applied.
      assert.ok(node.requests.length >= 2, `${node.requests.length} attempts`);
      assertSameIdentity(node.requests);
    },
  );
});

Deno.test("a node's TIMEOUT answer makes an increment's outcome unknown", async () => {
  await withNodes([() => fail("TIMEOUT")], { timeoutMs: 300 }, async (client, [node]) => {
    await assertCounterError(client.incrementAndGet(1n), "TIMEOUT", "unknown");
    assertSameIdentity(node.requests);
  });
});

Deno.test("a request that could never be sent (nobody listening) is outcome failed", async () => {
  const [port] = freePorts(1);
  const client = new CounterClient({
    peers: [`127.0.0.1:${port}`],
    timeoutMs: 300,
    attemptTimeoutMs: 100,
  });
  try {
    const err = await assertCounterError(client.incrementAndGet(1n), "UNAVAILABLE", "failed");
    assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
    await assertCounterError(client.get(), "UNAVAILABLE", "failed");
  } finally {
    await client.close();
  }
});

Deno.test("retries of an increment carry the same clientId and seq, across nodes and failures", async () => {
  // Node A: times out once (silent), then says NOT_LEADER -> B. Node B: NO_LEADER, TIMEOUT,
  // NOT_APPLIED, then applies it.
  let a: FakeNode;
  let b: FakeNode;
  const nodes = [
    (_r: ClientRequest, n: number) => (n === 1 ? "silent" as const : fail("NOT_LEADER", b.address)),
    (_r: ClientRequest, n: number) =>
      n === 1
        ? fail("NO_LEADER")
        : n === 2
        ? fail("TIMEOUT")
        : n === 3
        ? fail("NOT_APPLIED")
        : value(9n),
  ];
  await withNodes(nodes, { timeoutMs: 5000, attemptTimeoutMs: 150 }, async (_unused, fakes) => {
    [a, b] = fakes;
    // A client that knows only A, so the first attempt surely goes there.
    const client = new CounterClient({
      peers: [a.address],
      timeoutMs: 5000,
      attemptTimeoutMs: 150,
      clientId: "retrier",
    });
    try {
      assert.deepEqual(await client.incrementAndGet(9n), answer(9n, b.address));
      assert.equal(b.requests.length, 4);
      // Every failure but a redirect sends the client back to its peer list (only A): A timed
      // out once, then redirected each of the 4 attempts that reached B.
      assert.equal(a.requests.length, 1 + b.requests.length);
      const { clientId, seq } = assertSameIdentity([...a.requests, ...b.requests]);
      assert.equal(clientId, "retrier");
      for (const r of [...a.requests, ...b.requests]) assert.equal(r.delta, 9n);
      // The next increment is a new request of the same session.
      await client.incrementAndGet(1n);
      const next = b.requests[b.requests.length - 1];
      assert.equal(next.clientId, clientId);
      assert.equal(next.seq, seq + 1);
      assert.equal(next.ackedBelow, seq + 1);
    } finally {
      await client.close();
    }
  });
});

Deno.test("concurrent increments get distinct seqs; ackedBelow is the lowest still in flight", async () => {
  let counter = 0n;
  await withNodes(
    [(r) => {
      counter += r.delta!;
      const answer = value(counter);
      // Hold seq 1 back until the others are answered.
      if (r.seq === 1) return "silent";
      return answer;
    }],
    { timeoutMs: 5000, attemptTimeoutMs: 2000 },
    async (client, [node]) => {
      const first = client.incrementAndGet(1n).catch((e) => e);
      const rest = await Promise.all([2n, 3n, 4n].map((d) => client.incrementAndGet(d)));
      assert.equal(rest.length, 3);
      const seqs = node.requests.map((r) => r.seq);
      assert.deepEqual(seqs, [1, 2, 3, 4]);
      assert.ok(node.requests.every((r) => r.ackedBelow === 1));
      // While seq 1 is in flight, a new increment still says ackedBelow 1.
      await client.incrementAndGet(5n);
      assert.equal(node.requests.at(-1)!.seq, 5);
      assert.equal(node.requests.at(-1)!.ackedBelow, 1);
      await client.close();
      const err = await first;
      assert.ok(err instanceof CounterError);
      assert.equal(err.outcome, "unknown"); // it was sent
    },
  );
});

for (
  const code of ["OVERFLOW", "BAD_REQUEST", "UNKNOWN_GROUP", "UNKNOWN_OP", "STALE_REQUEST"] as const
) {
  Deno.test(`${code} is final: no retry, outcome failed`, async () => {
    await withNodes([() => fail(code)], { timeoutMs: 2000 }, async (client, [node]) => {
      const err = await assertCounterError(client.incrementAndGet(1n), code, "failed");
      assert.equal(err.message, `scripted ${code}`);
      assert.equal(node.requests.length, 1);
    });
  });
}

Deno.test("OVERFLOW after an attempt with unknown outcome is still final and failed", async () => {
  await withNodes(
    [(_r, n) => (n === 1 ? "silent" : fail("OVERFLOW"))],
    { timeoutMs: 3000, attemptTimeoutMs: 150 },
    async (client, [node]) => {
      await assertCounterError(client.incrementAndGet(1n), "OVERFLOW", "failed");
      assert.equal(node.requests.length, 2);
      assertSameIdentity(node.requests);
    },
  );
});

Deno.test("a get never reports outcome unknown", async (t) => {
  await t.step("never answered", async () => {
    await withNodes([() => "silent"], { timeoutMs: 400, attemptTimeoutMs: 150 }, async (client) => {
      await assertCounterError(client.get(), "TIMEOUT", "failed");
    });
  });
  await t.step("connection lost after sending", async () => {
    await withNodes(
      [(_r, _n, node) => {
        node.close();
        return "silent";
      }],
      { timeoutMs: 400, attemptTimeoutMs: 150 },
      async (client) => {
        const err = await assertCounterError(client.get(), "UNAVAILABLE", "failed");
        assert.match(err.message, /failed within/);
      },
    );
  });
  await t.step("the node answers TIMEOUT", async () => {
    await withNodes([() => fail("TIMEOUT")], { timeoutMs: 300 }, async (client) => {
      await assertCounterError(client.get(), "TIMEOUT", "failed");
    });
  });
  await t.step("linearizable by default, stale on request", async () => {
    await withNodes([() => value(3n)], {}, async (client, [node]) => {
      await client.get();
      await client.get({ consistency: "stale" });
      assert.deepEqual(node.requests, [
        { op: "get", consistency: "linearizable" },
        { op: "get", consistency: "stale" },
      ]);
    });
  });
});

Deno.test("a request that fails at one peer is retried at another", async () => {
  const [deadPort] = freePorts(1);
  const live = new FakeNode(() => value(1n));
  // The client picks its first peer at random; either way it must end at the live node.
  const client = new CounterClient({
    peers: [`127.0.0.1:${deadPort}`, live.address],
    timeoutMs: 3000,
    attemptTimeoutMs: 200,
  });
  try {
    assert.deepEqual(await client.incrementAndGet(1n), answer(1n, live.address));
  } finally {
    await client.close();
    await live.close();
  }
});

Deno.test("close() ends a call in flight with CLOSED", async () => {
  await withNodes(
    [() => "silent"],
    { timeoutMs: 5000, attemptTimeoutMs: 5000 },
    async (client, [node]) => {
      const pending = client.incrementAndGet(1n);
      while (node.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      await client.close();
      await assertCounterError(pending, "CLOSED", "unknown");
      await assertCounterError(client.get(), "CLOSED", "failed");
    },
  );
});

Deno.test("a status call goes to the node asked, without redirects", async () => {
  await withNodes(
    [() => ({ ok: true, data: { role: "follower" } })],
    {},
    async (client, [node]) => {
      const resp = await client.status(node.address);
      assert.deepEqual(resp, { ok: true, data: { role: "follower" } });
      assert.deepEqual(node.requests, [{ op: "status" }]);
    },
  );
});

/**
 * A fake node of cluster `id`, as `CounterNode` answers: its id goes with every answer to a
 * request that carries none, and a request pinned to another id is refused with WRONG_CLUSTER.
 */
function ofCluster(id: string, script: Script): Script {
  return (r, n, node) => {
    if (r.clusterId !== undefined && r.clusterId !== id) {
      return { ok: false, code: "WRONG_CLUSTER", error: "scripted", clusterId: id };
    }
    const answer = script(r, n, node);
    if (answer === "silent" || r.clusterId !== undefined) return answer;
    return { ...answer, clusterId: id };
  };
}

const CLUSTER_X = "00000000000000aa";
const CLUSTER_Y = "00000000000000bb";

Deno.test("the client pins the first cluster id it hears and sends it with every request", async () => {
  let counter = 0n;
  await withNodes(
    [ofCluster(CLUSTER_X, (r) => value(counter += r.delta ?? 0n))],
    {},
    async (client, [node]) => {
      assert.equal(client.clusterId, "");
      await client.incrementAndGet(1n);
      assert.equal(client.clusterId, CLUSTER_X);
      await client.get();
      await client.admin("peers");
      assert.deepEqual(node.requests.map((r) => r.clusterId), [undefined, CLUSTER_X, CLUSTER_X]);
    },
  );
});

Deno.test("a node of another cluster is an error, not a redirect to follow", async (t) => {
  await t.step("its refusal of the pinned id is final", async () => {
    await withNodes(
      [ofCluster(CLUSTER_X, () => value(1n)), ofCluster(CLUSTER_Y, () => value(100n))],
      {},
      async (client, [x, y]) => {
        await client.admin("status", {}, { peer: x.address });
        assert.equal(client.clusterId, CLUSTER_X);
        const err = await assertCounterError(
          client.admin("add_peer", { node: "n" }, { peer: y.address }),
          "WRONG_CLUSTER",
          "failed",
        );
        assert.match(
          err.message,
          new RegExp(`node ${y.address} belongs to another cluster \\(id ${CLUSTER_Y}`),
        );
        assert.match(err.message, /force-recovered separately/);
      },
    );
  });
  await t.step("a redirect named by a node of another cluster is not followed", async () => {
    // Z (of cluster Y, ignoring the pin as an older node would) redirects to Y.
    await withNodes(
      [ofCluster(CLUSTER_X, () => value(1n)), ofCluster(CLUSTER_Y, () => value(7n))],
      {},
      async (_client, [x, y]) => {
        const z = new FakeNode(() => ({
          ok: false,
          code: "NOT_LEADER",
          error: "scripted",
          leader: y.address,
          clusterId: CLUSTER_Y,
        }));
        const client = new CounterClient({ peers: [z.address], timeoutMs: 1000 });
        try {
          await client.admin("status", {}, { peer: x.address });
          await assertCounterError(client.incrementAndGet(1n), "WRONG_CLUSTER", "failed");
          assert.equal(z.requests.length, 1);
          assert.equal(y.requests.length, 0, "the redirect to Y was not followed");
        } finally {
          await client.close();
          await z.close();
        }
      },
    );
  });
});

Deno.test("a value answered by a node of another cluster is never returned", async () => {
  await withNodes(
    [ofCluster(CLUSTER_X, () => value(1n)), (_r) => ({ ...value(99n), clusterId: CLUSTER_Y })],
    {},
    async (client, [x, y]) => {
      await client.admin("status", {}, { peer: x.address });
      // Y ignores the pin (an older node would): its answer still shows its own cluster id.
      for (let i = 0; i < 4; i++) {
        const read = client.get({ consistency: "stale" }).then((r) => r.value, (e) => e);
        const got = await read;
        if (got instanceof CounterError) assert.equal(got.code, "WRONG_CLUSTER");
        else assert.equal(got, 1n);
      }
      assert.ok(y.requests.length > 0);
    },
  );
});

Deno.test("unpinned concurrent increments all go to one node, so two groups never both apply", async () => {
  // Three nodes force-recovered separately, each the leader of its own one-node group.
  const counters = [0n, 0n, 0n];
  const scripts = [CLUSTER_X, CLUSTER_Y, "00000000000000cc"].map((id, i) =>
    ofCluster(id, (r) => value(counters[i] += r.delta!))
  );
  await withNodes(scripts, {}, async (client, nodes) => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => client.incrementAndGet(1n)),
    );
    const served = nodes.filter((n) => n.requests.length > 0);
    assert.equal(served.length, 1, "one node got every increment");
    assert.equal(counters.filter((c) => c > 0n).length, 1);
    assert.ok(results.every((r) => r.status === "fulfilled"));
    assert.notEqual(client.clusterId, "");
  });
});
