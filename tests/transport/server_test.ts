import assert from "node:assert/strict";
import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import { RpcClientConnection } from "../../lib/transport/client_conn.ts";
import {
  type ClientRequest,
  decodeBody,
  encodeHello,
  encodeRaft,
  encodeRequest,
  encodeResponse,
} from "../../lib/transport/codec.ts";
import { encodeFrame, FrameDecoder } from "../../lib/transport/frame.ts";
import {
  ListenError,
  type ReplyFn,
  type TransportHandler,
  TransportServer,
  type TransportServerOptions,
} from "../../lib/transport/server.ts";
import { captureLogger, readUntilClosed, waitFor, withDeadline, writeAll } from "./_helpers.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };

/** A server whose counter answers incr and get, and records Raft messages. */
function counterServer(options: TransportServerOptions = {}) {
  let value = 0n;
  const raft: { group: string; message: Message }[] = [];
  const handler: TransportHandler = {
    onHello: () => true,
    onRaftMessage: (group, message) => raft.push({ group, message }),
    onRequest(_group, request, reply) {
      if (request.op === "incr") value += request.delta ?? 0n;
      if (request.op === "incr" || request.op === "get") reply({ ok: true, value });
      else reply({ ok: false, code: "UNKNOWN_OP", error: `Unknown operation ${request.op}` });
    },
  };
  const server = new TransportServer(LOCAL, handler, options);
  return { server, raft };
}

async function rawConnect(server: TransportServer): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
}

Deno.test("the server reports the port it bound when asked for port 0", async () => {
  const { server } = counterServer();
  assert.notEqual(server.hostPort.port, 0);
  assert.equal(server.address, `127.0.0.1:${server.hostPort.port}`);
  await server.close();
  await server.close();
});

Deno.test("invalid limits are refused before the server binds its port", () => {
  const handler: TransportHandler = { onRaftMessage() {}, onRequest() {} };
  assert.throws(() => new TransportServer(LOCAL, handler, { frameBytesMax: 0 }), RangeError);
  assert.throws(
    () => new TransportServer(LOCAL, handler, { frameBytesMax: 1024, queueBytesMax: 1024 }),
    RangeError,
  );
  assert.throws(() => new TransportServer(LOCAL, handler, { connectionsMax: 0 }), RangeError);
});

Deno.test("a client sending garbage is cut off while a good client keeps being answered", async () => {
  const { logger, lines } = captureLogger();
  const { server } = counterServer({ logger });
  const good = await RpcClientConnection.connect(server.address);
  assert.deepEqual(await good.call("counter", { op: "incr", delta: 2n }, 2000), {
    ok: true,
    value: 2n,
  });

  const bad = await rawConnect(server);
  const badPort = (bad.localAddr as Deno.NetAddr).port;
  // A well-framed body that is not MessagePack at all.
  await writeAll(bad, encodeFrame(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")));
  assert.equal((await readUntilClosed(bad, 2000)).length, 0, "the bad client gets no bytes");

  for (let i = 0; i < 10; i++) {
    const response = await good.call("counter", { op: "incr", delta: 1n }, 2000);
    assert.equal(response.value, BigInt(3 + i));
  }
  const warn = lines.find((line) => line.msg === "protocol error, closing connection");
  assert.ok(warn, "the protocol error was logged");
  assert.equal(warn.level, "warn");
  assert.equal(warn.remote, `127.0.0.1:${badPort}`);
  assert.equal(typeof warn.reason, "string");
  await good.close();
  await server.close();
});

Deno.test("an oversized length prefix closes the connection before the body arrives", async () => {
  const { logger, lines } = captureLogger();
  const { server } = counterServer({ logger, frameBytesMax: 1024 });
  const conn = await rawConnect(server);
  // Announces 1025 bytes and sends none of them: the server must not wait for them.
  await writeAll(conn, new Uint8Array([0, 0, 0x04, 0x01]));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  await waitFor(() => lines.some((line) => line.level === "warn"), 2000, "a warning");
  assert.match(String(lines.find((line) => line.level === "warn")!.reason), /exceeds/);
  await server.close();
});

Deno.test("a zero length prefix closes the connection", async () => {
  const { server } = counterServer();
  const conn = await rawConnect(server);
  await writeAll(conn, new Uint8Array([0, 0, 0, 0]));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  await server.close();
});

Deno.test("a response sent to a server closes the connection", async () => {
  const { server } = counterServer();
  const conn = await rawConnect(server);
  await writeAll(conn, encodeFrame(encodeResponse("counter", 1, { ok: true })));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  await server.close();
});

Deno.test("Raft messages reach onRaftMessage, whatever their chunking", async () => {
  const { server, raft } = counterServer();
  const conn = await rawConnect(server);
  const messages = [
    makeMessage(MessageType.Vote, { from: "a:1", to: "b:1", term: 4, index: 9, logTerm: 3 }),
    makeMessage(MessageType.App, {
      from: "a:1",
      to: "b:1",
      term: 4,
      entries: [{ term: 4, index: 10, type: 0, data: new Uint8Array([7]) }],
    }),
  ];
  const hello = encodeHello("counter", {
    from: "a:1",
    incarnation: "00112233445566ff",
    clusterId: "",
  });
  await writeAll(conn, encodeFrame(hello));
  const stream = [...messages.map((m) => encodeFrame(encodeRaft("counter", m)))];
  // The first frame in pieces, the second in one go.
  const first = stream[0];
  await writeAll(conn, first.subarray(0, 3));
  await writeAll(conn, first.subarray(3, 10));
  await writeAll(conn, first.subarray(10));
  await writeAll(conn, stream[1]);
  await waitFor(() => raft.length === 2, 2000, "two Raft messages");
  assert.deepEqual(raft, messages.map((message) => ({ group: "counter", message })));
  conn.close();
  await server.close();
});

Deno.test("requests are answered on their connection with their request id", async () => {
  const { server } = counterServer();
  const conn = await rawConnect(server);
  const requests: [number, ClientRequest][] = [[5, { op: "incr", delta: 10n }], [9, {
    op: "nope",
  }], [7, { op: "get" }]];
  await writeAll(
    conn,
    new Uint8Array(
      requests.flatMap(([id, request]) => [...encodeFrame(encodeRequest("g", id, request))]),
    ),
  );
  const frames = new FrameDecoder();
  const answers = [];
  const buffer = new Uint8Array(4096);
  while (answers.length < 3) {
    const n = await conn.read(buffer);
    assert.ok(n !== null);
    for (const body of frames.push(buffer.slice(0, n))) answers.push(decodeBody(body));
  }
  assert.deepEqual(answers, [
    { kind: "response", group: "g", requestId: 5, response: { ok: true, value: 10n } },
    {
      kind: "response",
      group: "g",
      requestId: 9,
      response: { ok: false, code: "UNKNOWN_OP", error: "Unknown operation nope" },
    },
    { kind: "response", group: "g", requestId: 7, response: { ok: true, value: 10n } },
  ]);
  conn.close();
  await server.close();
});

Deno.test("a late reply to a client that left is dropped; a second reply throws", async () => {
  const replies: ReplyFn[] = [];
  const server = new TransportServer(LOCAL, {
    onRaftMessage() {},
    onRequest: (_group, _request, reply) => replies.push(reply),
  });
  const client = await RpcClientConnection.connect(server.address);
  const call = client.call("counter", { op: "get" }, 5000);
  await waitFor(() => replies.length === 1, 2000, "the request");
  await client.close();
  await assert.rejects(call);
  await waitFor(() => server.connectionCount === 0, 2000, "the server to notice");
  replies[0]({ ok: true, value: 1n });
  assert.throws(() => replies[0]({ ok: true, value: 1n }), /already answered/);
  await server.close();
});

Deno.test("connections beyond connectionsMax are closed on arrival", async () => {
  const { logger, lines } = captureLogger();
  const { server } = counterServer({ connectionsMax: 1, logger });
  const first = await RpcClientConnection.connect(server.address);
  await waitFor(() => server.connectionCount === 1, 2000, "the first connection");
  const second = await rawConnect(server);
  assert.equal((await readUntilClosed(second, 2000)).length, 0);
  assert.ok(lines.some((line) => line.msg === "connection limit reached, closing new connection"));
  assert.equal((await first.call("counter", { op: "get" }, 2000)).ok, true);
  await first.close();
  await server.close();
});

Deno.test("a client exceeding requestsInFlightMax is cut off", async () => {
  const server = new TransportServer(LOCAL, {
    onRaftMessage() {},
    onRequest() {}, // never replies
  }, { requestsInFlightMax: 2 });
  const conn = await rawConnect(server);
  const frames = [1, 2, 3].map((id) => [...encodeFrame(encodeRequest("g", id, { op: "get" }))]);
  await writeAll(conn, new Uint8Array(frames.flat()));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  await server.close();
});

Deno.test("close() closes every open connection and awaits them", async () => {
  const { server } = counterServer();
  const clients = await Promise.all(
    [1, 2, 3].map(() => RpcClientConnection.connect(server.address)),
  );
  await waitFor(() => server.connectionCount === 3, 2000, "three connections");
  await server.close();
  assert.equal(server.connectionCount, 0);
  for (const client of clients) {
    await withDeadline(client.closed, 2000, "client sees the close");
    await client.close();
  }
});

Deno.test("a busy address fails with the address and the reason", () => {
  const busy = Deno.listen(LOCAL);
  const address = `127.0.0.1:${(busy.addr as Deno.NetAddr).port}`;
  try {
    assert.throws(
      () => new TransportServer({ ...LOCAL, port: (busy.addr as Deno.NetAddr).port }, null),
      (err: unknown) => {
        assert.ok(err instanceof ListenError);
        assert.equal(err.address, address);
        assert.match(err.message, new RegExp(`^cannot listen on ${address}: \\S`));
        return true;
      },
    );
  } finally {
    busy.close();
  }
});

Deno.test("without a handler the server answers 'starting' until one is set", async () => {
  const server = new TransportServer(LOCAL, null);
  const conn = await RpcClientConnection.connect(server.address);
  try {
    const early = await conn.call("counter", { op: "get" }, 2000);
    assert.deepEqual(
      { ok: early.ok, code: early.code, error: early.error },
      { ok: false, code: "SHUTTING_DOWN", error: "node is starting" },
    );
    server.setHandler({
      onRaftMessage() {},
      onRequest: (_group, _request, reply) => reply({ ok: true, value: 7n }),
    });
    assert.equal((await conn.call("counter", { op: "get" }, 2000)).value, 7n);
    assert.throws(() => server.setHandler({ onRaftMessage() {}, onRequest() {} }));
  } finally {
    await conn.close();
    await server.close();
  }
});
