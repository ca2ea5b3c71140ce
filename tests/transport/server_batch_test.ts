/**
 * The server's side of request batches: each request of a batch is handled on its own (its own
 * answer and error code), answers given in one turn go out as one response batch, a lone request
 * still gets a lone response (clients from before batches), and a malformed or oversized batch
 * closes the connection, logged, before any of its requests reaches the handler.
 */

import assert from "node:assert/strict";
import { setImmediate } from "node:timers";
import {
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  type DecodedBody,
  encodeRequest,
} from "../../lib/transport/codec.ts";
import {
  BINARY_MARKER,
  BinaryTag,
  encodeRequestBatch,
  encodeRequestBinary,
} from "../../lib/transport/binary_codec.ts";
import { encodeFrame, FrameDecoder } from "../../lib/transport/frame.ts";
import {
  type ReplyFn,
  type TransportHandler,
  TransportServer,
  type TransportServerOptions,
} from "../../lib/transport/server.ts";
import { RpcClientConnection } from "../../lib/transport/client_conn.ts";
import { captureLogger, readUntilClosed, waitFor, withDeadline, writeAll } from "./_helpers.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };

/**
 * A server that answers `incr` at once (ok, or BAD_REQUEST without a delta), keeps `get`s until
 * {@linkcode release} answers them together, and counts the requests it saw.
 */
function batchServer(options: TransportServerOptions = {}) {
  let value = 0n;
  const held: ReplyFn[] = [];
  const seen: ClientRequest[] = [];
  const handler: TransportHandler = {
    onRaftMessage() {},
    onRequest(_group, request, reply) {
      seen.push(request);
      if (request.op === "get") return void held.push(reply);
      if (request.delta === undefined) {
        return reply({ ok: false, code: "BAD_REQUEST", error: "incr needs a delta" });
      }
      value += request.delta;
      reply({ ok: true, value });
    },
  };
  const server = new TransportServer(LOCAL, handler, options);
  const release = () => {
    for (const reply of held.splice(0)) reply({ ok: true, value });
  };
  return { server, seen, held, release };
}

/** A raw connection that collects the bodies the server sends. */
async function rawClient(server: TransportServer) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
  const bodies: DecodedBody[] = [];
  const frames = new FrameDecoder();
  const reading = (async () => {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch {
        return;
      }
      if (n === null) return;
      for (const body of frames.push(buffer.slice(0, n))) bodies.push(decodeBody(body));
    }
  })();
  return { conn, bodies, reading };
}

function batchOf(requests: ClientRequest[], firstId = 1, group = "counter"): Uint8Array {
  const bodies = requests.map((r, i) => encodeRequestBinary(group, firstId + i, r)!);
  return encodeFrame(encodeRequestBatch(bodies, bodies.length));
}

/** Every (requestId, response) the bodies carry, in order. */
function answers(bodies: DecodedBody[]): [number, ClientResponse][] {
  return bodies.flatMap((b): [number, ClientResponse][] =>
    b.kind === "response"
      ? [[b.requestId, b.response]]
      : b.kind === "response_batch"
      ? b.requestIds.map((id, i) => [id, b.responses[i]])
      : []
  );
}

Deno.test("a batch's answers of one turn come back as one response batch, each its own", async () => {
  const { server } = batchServer();
  const { conn, bodies, reading } = await rawClient(server);
  // The second has no delta: its own error code, the others still succeed.
  await writeAll(
    conn,
    batchOf([{ op: "incr", delta: 2n }, { op: "incr" }, { op: "incr", delta: 3n }]),
  );
  await waitFor(() => answers(bodies).length === 3, 2000, "three answers");
  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].kind, "response_batch");
  assert.deepEqual(answers(bodies), [
    [1, { ok: true, value: 2n }],
    [2, { ok: false, code: "BAD_REQUEST", error: "incr needs a delta" }],
    [3, { ok: true, value: 5n }],
  ]);
  conn.close();
  await reading;
  await server.close();
});

Deno.test("requests of a batch answered in later turns are answered then, in batches", async () => {
  const { server, held, release } = batchServer();
  const { conn, bodies, reading } = await rawClient(server);
  await writeAll(conn, batchOf([{ op: "get" }, { op: "incr", delta: 1n }, { op: "get" }], 10));
  await waitFor(() => answers(bodies).length === 1 && held.length === 2, 2000, "the incr");
  // The incr was answered alone in its turn: one item, sent as a lone response.
  assert.deepEqual(answers(bodies), [[11, { ok: true, value: 1n }]]);
  release();
  await waitFor(() => answers(bodies).length === 3, 2000, "the gets");
  assert.equal(bodies.at(-1)!.kind, "response_batch");
  assert.deepEqual(answers(bodies).slice(1), [[10, { ok: true, value: 1n }], [12, {
    ok: true,
    value: 1n,
  }]]);
  conn.close();
  await reading;
  await server.close();
});

Deno.test("a lone request still gets a lone response (clients from before batches)", async () => {
  const { server, held, release } = batchServer();
  const { conn, bodies, reading } = await rawClient(server);
  // Two lone frames in one write, answered in one turn: still two lone responses.
  await writeAll(
    conn,
    new Uint8Array([
      ...encodeFrame(encodeRequest("counter", 1, { op: "get" })),
      ...encodeFrame(encodeRequest("counter", 2, { op: "get" })),
    ]),
  );
  await waitFor(() => held.length === 2, 2000, "both gets");
  release();
  await waitFor(() => bodies.length === 2, 2000, "two answers");
  assert.deepEqual(bodies.map((b) => b.kind), ["response", "response"]);
  conn.close();
  await reading;
  await server.close();
});

Deno.test("the client connection's batches are answered through a real server", async () => {
  const { server, release, held } = batchServer();
  const client = await RpcClientConnection.connect(server.address);
  const incrs = Array.from(
    { length: 300 },
    () => client.call("counter", { op: "incr", delta: 1n }, 5000),
  );
  const gets = Array.from({ length: 20 }, () => client.call("counter", { op: "get" }, 5000));
  const values = (await withDeadline(Promise.all(incrs), 5000, "incrs")).map((r) => r.value!);
  assert.deepEqual(values, Array.from({ length: 300 }, (_, i) => BigInt(i + 1)));
  await waitFor(() => held.length === 20, 2000, "gets held");
  release();
  for (const r of await Promise.all(gets)) assert.deepEqual(r, { ok: true, value: 300n });
  await client.close();
  await server.close();
});

/** Sends `frame` and expects the connection closed with a logged warning naming `reason`. */
async function assertRefused(
  frame: Uint8Array,
  reason: RegExp,
  options: TransportServerOptions = {},
): Promise<void> {
  const { logger, lines } = captureLogger();
  const { server, seen } = batchServer({ ...options, logger });
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
  await writeAll(conn, frame);
  assert.equal((await readUntilClosed(conn, 2000)).length, 0, "nothing is answered");
  await waitFor(() => lines.some((l) => l.level === "warn"), 2000, "a warning");
  const warn = lines.find((l) => l.msg === "protocol error, closing connection");
  assert.ok(warn, "the protocol error was logged");
  assert.match(String(warn.reason), reason);
  assert.equal(seen.length, 0, "no request of the batch reached the handler");
  await server.close();
}

Deno.test("a malformed batch closes the connection, logged, before any request runs", async () => {
  // Two good items, then a third with an unknown op.
  const good = batchOf([{ op: "incr", delta: 1n }, { op: "incr", delta: 1n }]).subarray(4);
  const body = new Uint8Array([...good, 0, 0, 0, 0, 0, 0, 0, 3, 9, 0]);
  body[12] = 3; // the count's low byte, after marker, tag and the group "counter" (2 + 7)
  assert.equal(body[0], BINARY_MARKER);
  await assertRefused(encodeFrame(body), /Unknown binary request op 9/);
  // A count the body cannot hold.
  const head = new Uint8Array([BINARY_MARKER, BinaryTag.RequestBatch, 0, 1, 0x67, 0x04, 0x00]);
  await assertRefused(encodeFrame(head), /ends inside batch items/);
});

Deno.test("a batch that would pass the requests-in-flight limit closes the connection", async () => {
  const requests = Array.from({ length: 5 }, () => ({ op: "incr", delta: 1n }));
  await assertRefused(batchOf(requests), /More than 4 requests in flight/, {
    requestsInFlightMax: 4,
  });
});

Deno.test("a response batch sent to a server closes the connection", async () => {
  const { encodeResponseBatch, encodeResponseBinary } = await import(
    "../../lib/transport/binary_codec.ts"
  );
  const body = encodeResponseBatch([
    encodeResponseBinary("counter", 1, { ok: true })!,
    encodeResponseBinary("counter", 2, { ok: true })!,
  ], 2);
  await assertRefused(encodeFrame(body), /does not accept responses/);
});

Deno.test("a batch counts as its requests in the per-connection pacing", async () => {
  const order: string[] = [];
  const handler: TransportHandler = {
    onRaftMessage() {},
    onRequest(_group, request, reply) {
      // Runs at the next turn: after the first batch if the loop yields there, else after both.
      if (order.length === 0) setImmediate(() => order.push("next turn"));
      order.push(`incr ${request.delta}`);
      reply({ ok: true, value: request.delta });
    },
  };
  const server = new TransportServer(LOCAL, handler, { clientFramesPerTurn: 4 });
  const { conn, bodies, reading } = await rawClient(server);
  const batch = (from: number) =>
    batchOf(Array.from({ length: 4 }, (_, i) => ({ op: "incr", delta: BigInt(from + i) })), from);
  await writeAll(conn, new Uint8Array([...batch(1), ...batch(5)]));
  await waitFor(() => answers(bodies).length === 8 && order.length === 9, 2000, "all answers");
  assert.deepEqual(order, [
    "incr 1",
    "incr 2",
    "incr 3",
    "incr 4",
    "next turn",
    "incr 5",
    "incr 6",
    "incr 7",
    "incr 8",
  ]);
  conn.close();
  await reading;
  await server.close();
});
