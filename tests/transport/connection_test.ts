import assert from "node:assert/strict";
import {
  type DecodedBody,
  encodeRequest,
  encodeResponse,
  ProtocolError,
} from "../../lib/transport/codec.ts";
import { Connection } from "../../lib/transport/connection.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import {
  captureLogger,
  readUntilClosed,
  tcpPair,
  waitFor,
  withDeadline,
  writeAll,
} from "./_helpers.ts";

/** Counts write calls on a real TCP connection. */
function countWrites(tcp: Deno.TcpConn): { count: number } {
  const counter = { count: 0 };
  const write = tcp.write.bind(tcp);
  tcp.write = (p: Uint8Array) => {
    counter.count++;
    return write(p);
  };
  return counter;
}

Deno.test("frames queued in one tick go out in a single write, in order", async () => {
  const [a, b] = await tcpPair();
  const writes = countWrites(a);
  const received: DecodedBody[] = [];
  const sender = new Connection(a, () => {});
  const receiver = new Connection(b, (body) => received.push(body));
  for (let i = 1; i <= 200; i++) {
    assert.equal(sender.send(encodeRequest("counter", i, { op: "incr", delta: BigInt(i) })), i);
  }
  assert.equal(sender.sentSeq, 0, "nothing is written before the tick ends");
  await waitFor(() => received.length === 200, 5000, "200 bodies");
  assert.equal(writes.count, 1);
  assert.equal(sender.sentSeq, 200);
  assert.deepEqual(
    received.map((body) => body.kind === "request" ? body.requestId : -1),
    Array.from({ length: 200 }, (_, i) => i + 1),
  );
  await sender.close();
  await receiver.close();
});

Deno.test("frames queued while a write is in flight share the next write", async () => {
  const [a, b] = await tcpPair();
  const writes = countWrites(a);
  let received = 0;
  const sender = new Connection(a, () => {});
  const receiver = new Connection(b, () => received++);
  sender.send(encodeRequest("counter", 1, { op: "get" }));
  // Next macrotask: the first write is started (and perhaps done); queue a burst.
  await new Promise((resolve) => setTimeout(resolve, 0));
  for (let i = 2; i <= 100; i++) sender.send(encodeRequest("counter", i, { op: "get" }));
  await waitFor(() => received === 100, 5000, "100 bodies");
  assert.ok(writes.count <= 2, `expected at most 2 writes, got ${writes.count}`);
  await sender.close();
  await receiver.close();
});

Deno.test("the outgoing queue is bounded in bytes and reports drops", async () => {
  const [a, b] = await tcpPair();
  const frameBytesMax = 1024;
  const sender = new Connection(a, () => {}, { frameBytesMax, queueBytesMax: 2 * 1028 });
  const body = new Uint8Array(1024).fill(0x90);
  assert.ok(sender.send(body) > 0);
  assert.ok(sender.send(body) > 0);
  assert.equal(sender.send(body), 0, "a third full frame does not fit");
  assert.equal(sender.queuedBytes, 2 * 1028);
  assert.throws(() => sender.send(new Uint8Array(1025)), RangeError);
  assert.throws(() => sender.send(new Uint8Array(0)), RangeError);
  await sender.close();
  assert.equal(sender.send(body), 0, "nothing is queued after close");
  b.close();
});

Deno.test("close is idempotent and resolves once the read loop has ended", async () => {
  const [a, b] = await tcpPair();
  const conn = new Connection(a, () => {});
  const first = conn.close();
  const second = conn.close();
  await Promise.all([first, second]);
  assert.equal(conn.isClosed, true);
  await conn.closed;
  // The other side sees the close.
  assert.equal((await readUntilClosed(b, 2000)).length, 0);
});

Deno.test("the remote side closing resolves closed", async () => {
  const [a, b] = await tcpPair();
  const conn = new Connection(a, () => {});
  b.close();
  await withDeadline(conn.closed, 2000, "closed after the peer left");
  assert.equal(conn.isClosed, true);
});

Deno.test("a bad frame closes the connection with a warning naming the remote", async () => {
  const { logger, lines } = captureLogger();
  const [a, b] = await tcpPair();
  const conn = new Connection(a, () => {}, { logger });
  await writeAll(b, encodeFrame(new Uint8Array([0xc1])));
  await withDeadline(conn.closed, 2000, "closed after garbage");
  const warn = lines.find((line) => line.level === "warn");
  assert.ok(warn, "a warning was logged");
  assert.equal(warn.msg, "protocol error, closing connection");
  assert.equal(warn.remote, `127.0.0.1:${(b.localAddr as Deno.NetAddr).port}`);
  assert.match(String(warn.reason), /0xc1/);
  assert.equal((await readUntilClosed(b, 2000)).length, 0);
});

Deno.test("a handler's ProtocolError closes with a warning, other errors with an error", async () => {
  for (
    const [thrown, level] of [[new ProtocolError("Not here"), "warn"], [
      new Error("Bug"),
      "error",
    ]] as const
  ) {
    const { logger, lines } = captureLogger();
    const [a, b] = await tcpPair();
    const conn = new Connection(a, () => {
      throw thrown;
    }, { logger });
    await writeAll(b, encodeFrame(encodeResponse("g", 1, { ok: true })));
    await withDeadline(conn.closed, 2000, "closed after handler error");
    assert.ok(lines.some((line) => line.level === level), `${level} logged`);
    b.close();
  }
});

Deno.test("frames split into single bytes on the socket are reassembled", async () => {
  const [a, b] = await tcpPair();
  const received: DecodedBody[] = [];
  const conn = new Connection(a, (body) => received.push(body));
  b.setNoDelay(true);
  const frames = [
    encodeFrame(encodeRequest("counter", 1, { op: "incr", delta: 2n ** 62n })),
    encodeFrame(encodeRequest("counter", 2, { op: "get" })),
  ];
  for (const frame of frames) {
    for (let i = 0; i < frame.length; i++) await writeAll(b, frame.subarray(i, i + 1));
  }
  await waitFor(() => received.length === 2, 5000, "two bodies");
  assert.deepEqual(received[0], {
    kind: "request",
    group: "counter",
    requestId: 1,
    request: { op: "incr", delta: 2n ** 62n },
  });
  await conn.close();
  b.close();
});

Deno.test("frames of any size arrive whole while the read buffer grows from 4 KiB to 64 KiB", async () => {
  const [a, b] = await tcpPair();
  const received: DecodedBody[] = [];
  const conn = new Connection(a, (body) => received.push(body));
  const sizes = [10, 3000, 10_000, 300_000, 10, 70_000, 5];
  // Strings are at most 64 KiB each: a big body is several of them.
  const pad = (bytes: number) =>
    Object.fromEntries(
      Array.from({ length: Math.ceil(bytes / 50_000) }, (_, k) => [
        `p${k}`,
        "x".repeat(Math.min(50_000, bytes - k * 50_000)),
      ]),
    );
  const requests = sizes.map((size, i) => ({ op: "status", args: pad(size + i) }));
  const frames = requests.map((req, i) => encodeFrame(encodeRequest("counter", i + 1, req)));
  // Sent as one stream: reads come back full, and the buffer must grow through its sizes.
  const stream = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    stream.set(frame, at);
    at += frame.length;
  }
  await writeAll(b, stream);
  await waitFor(() => received.length === sizes.length, 5000, "every body");
  received.forEach((body, i) => {
    assert.deepEqual(body, {
      kind: "request",
      group: "counter",
      requestId: i + 1,
      request: requests[i],
    });
  });
  await conn.close();
  b.close();
});
