import assert from "node:assert/strict";
import { RpcClientConnection, RpcError } from "../../lib/transport/client_conn.ts";
import { encodeRaft, encodeResponse } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import { type ReplyFn, TransportServer } from "../../lib/transport/server.ts";
import { makeMessage, MessageType } from "../../lib/raft/types.ts";
import { freePort, sleep, waitFor, withDeadline, writeAll } from "./_helpers.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };

/** A server that holds every reply for the test to send (or not). */
function holdingServer() {
  const held: { delta: bigint | undefined; reply: ReplyFn }[] = [];
  const server = new TransportServer(LOCAL, {
    onRaftMessage() {},
    onRequest: (_group, request, reply) => held.push({ delta: request.delta, reply }),
  });
  return { server, held };
}

function isRpcError(reason: string, sent: boolean) {
  return (err: unknown) => {
    assert.ok(err instanceof RpcError, `expected RpcError, got ${err}`);
    assert.equal(err.reason, reason);
    assert.equal(err.sent, sent);
    return true;
  };
}

Deno.test("many calls in flight are each matched to their own response", async () => {
  const timers = new Set<ReturnType<typeof setTimeout>>();
  // Answers out of order, after a pseudo-random delay, echoing the delta as the value.
  let seed = 1;
  const server = new TransportServer(LOCAL, {
    onRaftMessage() {},
    onRequest(_group, request, reply) {
      seed = (seed * 48271) % 2147483647;
      const timer = setTimeout(() => {
        timers.delete(timer);
        reply({ ok: true, value: request.delta });
      }, seed % 20);
      timers.add(timer);
    },
  });
  const client = await RpcClientConnection.connect(server.address);
  const deltas = Array.from({ length: 1000 }, (_, i) => BigInt(i) * 2n ** 40n - 7n);
  const responses = await Promise.all(
    deltas.map((delta) => client.call("counter", { op: "incr", delta }, 5000)),
  );
  assert.deepEqual(responses.map((r) => r.value), deltas);
  assert.equal(client.callsInFlight, 0);
  assert.equal(timers.size, 0);
  await client.close();
  await server.close();
});

Deno.test("a call times out with sent=true, and a late answer is ignored", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  const started = Date.now();
  await assert.rejects(
    client.call("counter", { op: "incr", delta: 1n }, 50),
    isRpcError("timeout", true),
  );
  assert.ok(Date.now() - started >= 45);
  assert.equal(client.callsInFlight, 0);
  await waitFor(() => held.length === 1, 2000, "the request at the server");
  held[0].reply({ ok: true, value: 1n });
  // The connection is still good for the next call.
  const next = client.call("counter", { op: "get" }, 2000);
  await waitFor(() => held.length === 2, 2000, "the second request");
  held[1].reply({ ok: true, value: 99n });
  assert.deepEqual(await next, { ok: true, value: 99n });
  await client.close();
  await server.close();
});

Deno.test("calls with different timeouts each fail at their own, never before", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  const startMs = performance.now();
  const failedAt = (timeoutMs: number) =>
    client.call("counter", { op: "get" }, timeoutMs).then(
      () => assert.fail("should not succeed"),
      (err) => {
        isRpcError("timeout", true)(err);
        assert.match(err.message, new RegExp(`\\(${timeoutMs} ms\\)`));
        return performance.now() - startMs;
      },
    );
  // A long timeout first, then shorter ones: the sweep must move earlier for them.
  const long = client.call("counter", { op: "get" }, 10_000);
  const calls = [300, 120, 40, 41, 200].map(failedAt);
  const elapsedMs = await Promise.all(calls);
  for (const [i, timeoutMs] of [300, 120, 40, 41, 200].entries()) {
    assert.ok(elapsedMs[i] >= timeoutMs, `${timeoutMs} ms call failed after ${elapsedMs[i]} ms`);
  }
  // The long call is still waiting, and is answered.
  assert.equal(client.callsInFlight, 1);
  await waitFor(() => held.length === 6, 2000, "six requests");
  held[0].reply({ ok: true, value: 5n });
  assert.deepEqual(await long, { ok: true, value: 5n });
  await client.close();
  await server.close();
});

Deno.test("calls in flight share one timer, not one each", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  const realSetTimeout = globalThis.setTimeout;
  let timersSet = 0;
  globalThis.setTimeout = ((...args: Parameters<typeof setTimeout>) => {
    timersSet++;
    return realSetTimeout(...args);
  }) as typeof setTimeout;
  let calls: Promise<unknown>[];
  try {
    calls = Array.from({ length: 100 }, () => client.call("counter", { op: "get" }, 5000));
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  assert.equal(timersSet, 1);
  await waitFor(() => held.length === 100, 2000, "100 requests");
  for (const h of held) h.reply({ ok: true, value: 1n });
  await Promise.all(calls);
  // The sweep's timer is still armed for the first deadline; close() clears it (the test's
  // sanitizer would report it otherwise).
  await client.close();
  await server.close();
});

Deno.test("the timeout error message says whether the outcome is unknown", () => {
  assert.match(new RpcError("timeout", true).message, /outcome is unknown/);
  assert.match(new RpcError("busy", false).message, /not sent/);
  assert.doesNotMatch(new RpcError("busy", false).message, /\.$/);
});

Deno.test("losing the connection rejects every pending call with sent=true", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  const calls = [1n, 2n, 3n].map((delta) =>
    client.call("counter", { op: "incr", delta }, 5000).then(
      () => assert.fail("should not succeed"),
      (err) => err,
    )
  );
  await waitFor(() => held.length === 3, 2000, "three requests");
  await server.close();
  for (const err of await Promise.all(calls)) isRpcError("disconnected", true)(err);
  await assert.rejects(
    client.call("counter", { op: "get" }, 100),
    isRpcError("disconnected", false),
  );
  await client.close();
});

Deno.test("close() rejects pending calls as closed, and later calls fail unsent", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  const pending = client.call("counter", { op: "get" }, 5000);
  await waitFor(() => held.length === 1, 2000, "the request");
  await client.close();
  await assert.rejects(pending, isRpcError("closed", true));
  await assert.rejects(client.call("counter", { op: "get" }, 100), isRpcError("closed", false));
  await server.close();
});

Deno.test("calls beyond callsInFlightMax fail at once as busy and unsent", async () => {
  const { server, held } = holdingServer();
  const client = await RpcClientConnection.connect(server.address, { callsInFlightMax: 2 });
  const first = client.call("counter", { op: "get" }, 5000);
  const second = client.call("counter", { op: "get" }, 5000);
  await assert.rejects(client.call("counter", { op: "get" }, 5000), isRpcError("busy", false));
  await waitFor(() => held.length === 2, 2000, "two requests");
  for (const h of held) h.reply({ ok: true, value: 0n });
  await Promise.all([first, second]);
  await client.close();
  await server.close();
});

Deno.test("connecting to a port nobody listens on fails as unreachable", async () => {
  await assert.rejects(
    RpcClientConnection.connect(`127.0.0.1:${freePort()}`),
    isRpcError("unreachable", false),
  );
});

Deno.test("invalid requests and timeouts are refused before anything is sent", async () => {
  const { server } = holdingServer();
  const client = await RpcClientConnection.connect(server.address);
  await assert.rejects(client.call("counter", { op: "" }, 100), TypeError);
  await assert.rejects(client.call("counter", { op: "get" }, 0), RangeError);
  await assert.rejects(client.call("", { op: "get" }, 100), TypeError);
  assert.equal(client.callsInFlight, 0);
  await client.close();
  await server.close();
});

/** A fake node on a raw socket, to send what a real server never would. */
function rawNode(
  respond: (conn: Deno.TcpConn) => Promise<void>,
): { address: string; done: Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const done = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      await respond(conn);
    } finally {
      conn.close();
    }
  })();
  return { address: `127.0.0.1:${listener.addr.port}`, done };
}

Deno.test("a response to a request never sent is a protocol error that drops the connection", async () => {
  const node = rawNode(async (conn) => {
    await sleep(20);
    await writeAll(conn, encodeFrame(encodeResponse("counter", 42, { ok: true })));
    await conn.read(new Uint8Array(1024)).catch(() => null);
  });
  const client = await RpcClientConnection.connect(node.address);
  const pending = client.call("counter", { op: "get" }, 5000);
  await assert.rejects(pending, isRpcError("disconnected", true));
  await withDeadline(client.closed, 2000, "client closed");
  await client.close();
  await node.done;
});

Deno.test("a Raft message sent to a client is a protocol error", async () => {
  const node = rawNode(async (conn) => {
    const message = makeMessage(MessageType.Heartbeat, { from: "a:1", to: "b:1", term: 1 });
    await writeAll(conn, encodeFrame(encodeRaft("counter", message)));
    await conn.read(new Uint8Array(1024)).catch(() => null);
  });
  const client = await RpcClientConnection.connect(node.address);
  await withDeadline(client.closed, 2000, "client closed");
  await client.close();
  await node.done;
});
