/**
 * The client's requests share writes and frames: every request issued in one event-loop turn goes
 * out in one write, as one request batch, and so do the next requests of workers whose answers
 * arrived together. The node is in memory (`Deno.connect` is replaced for each test), so every
 * write and frame can be counted; it answers a batch with one response batch.
 */

import assert from "node:assert/strict";
import { CounterClient } from "../../lib/client/client.ts";
import { RpcClientConnection } from "../../lib/transport/client_conn.ts";
import { type ClientResponse, decodeBody, encodeResponse } from "../../lib/transport/codec.ts";
import { encodeResponseBatch, encodeResponseBinary } from "../../lib/transport/binary_codec.ts";
import { encodeFrame, FrameDecoder } from "../../lib/transport/frame.ts";

const ADDRESS = { transport: "tcp" as const, hostname: "127.0.0.1", port: 7001 };
const PEER = "127.0.0.1:7001";

/**
 * A connection to an in-memory node that answers every request of a write, all answers in one
 * chunk that the next read (in a later macrotask, as from a socket) returns.
 */
class MemoryConn {
  readonly remoteAddr = ADDRESS;
  readonly localAddr = { ...ADDRESS, port: 7002 };
  /** Requests in each write, in order. */
  readonly writes: number[] = [];
  /** Requests in each frame, in order (a lone request counts 1, a batch its size). */
  readonly frames: number[] = [];
  /** Each request's op and id, in the order they arrived. */
  readonly arrived: string[] = [];
  #frames = new FrameDecoder();
  #outbox: Uint8Array[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #value = 0n;

  write(bytes: Uint8Array): Promise<number> {
    let requests = 0;
    for (const body of this.#frames.push(bytes.slice())) {
      const decoded = decodeBody(body);
      if (decoded.kind === "request") {
        requests++;
        this.frames.push(1);
        this.arrived.push(`${decoded.request.op} ${decoded.requestId}`);
        const response = this.#answer(decoded.request.delta);
        this.#outbox.push(encodeFrame(encodeResponse(decoded.group, decoded.requestId, response)));
        continue;
      }
      if (decoded.kind !== "request_batch") throw new Error(`unexpected ${decoded.kind}`);
      const { group, requestIds, requests: batch } = decoded;
      requests += batch.length;
      this.frames.push(batch.length);
      const answers = batch.map((request, i) => {
        this.arrived.push(`${request.op} ${requestIds[i]}`);
        return encodeResponseBinary(group, requestIds[i], this.#answer(request.delta))!;
      });
      this.#outbox.push(encodeFrame(encodeResponseBatch(answers, answers.length)));
    }
    this.writes.push(requests);
    this.#wake?.();
    return Promise.resolve(bytes.length);
  }

  #answer(delta: bigint | undefined): ClientResponse {
    this.#value += delta ?? 0n;
    return { ok: true, value: this.#value, leader: PEER };
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#outbox.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
    // A socket's read completes in a task of its own.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (this.#closed) return null;
    // As a socket does: as many bytes as the buffer takes, splitting a frame if need be.
    let n = 0;
    while (this.#outbox.length > 0 && n < buffer.length) {
      const frame = this.#outbox[0];
      const take = Math.min(frame.length, buffer.length - n);
      buffer.set(frame.subarray(0, take), n);
      n += take;
      if (take === frame.length) this.#outbox.shift();
      else this.#outbox[0] = frame.subarray(take);
    }
    return n;
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }
}

/** Runs `body` with a client whose connections are {@linkcode MemoryConn}s. */
async function withMemoryNode(
  body: (client: CounterClient, conns: MemoryConn[]) => Promise<void>,
): Promise<void> {
  const connect = Deno.connect;
  const conns: MemoryConn[] = [];
  (Deno as { connect: unknown }).connect = () => {
    const conn = new MemoryConn();
    conns.push(conn);
    return Promise.resolve(conn);
  };
  const client = new CounterClient({ peers: [PEER] });
  try {
    await body(client, conns);
  } finally {
    await client.close();
    Deno.connect = connect;
  }
}

Deno.test("increments issued in one turn go out in one write", async () => {
  await withMemoryNode(async (client, conns) => {
    await client.incrementAndGet(1n); // opens the connection
    const calls = Array.from({ length: 200 }, () => client.incrementAndGet(1n));
    const values = (await Promise.all(calls)).map((r) => r.value);
    assert.equal(conns.length, 1);
    assert.deepEqual(conns[0].writes, [1, 200]);
    assert.deepEqual(conns[0].frames, [1, 200]);
    assert.deepEqual(values, Array.from({ length: 200 }, (_, i) => BigInt(i + 2)));
  });
});

Deno.test("the next requests of workers answered together share one write", async () => {
  await withMemoryNode(async (client, conns) => {
    await client.get(); // opens the connection
    const workers = 64;
    const rounds = 5;
    await Promise.all(Array.from({ length: workers }, async (_, w) => {
      for (let i = 0; i < rounds; i++) {
        // Increments and reads mixed: both take the same path, so they keep in step.
        if ((w + i) % 3 === 0) await client.get();
        else await client.incrementAndGet(1n);
      }
    }));
    assert.deepEqual(conns[0].writes, [1, ...Array(rounds).fill(workers)]);
    assert.deepEqual(conns[0].frames, [1, ...Array(rounds).fill(workers)]);
  });
});

Deno.test("a request without a binary form goes alone, after the batch before it", async () => {
  await withMemoryNode(async (_client, conns) => {
    const conn = await RpcClientConnection.connect(PEER);
    try {
      const incr = () => conn.call("counter", { op: "incr", delta: 1n }, 5000);
      // All in one turn: status has no binary form (MessagePack), so it cuts the batch.
      const calls = [incr(), incr(), conn.call("counter", { op: "status" }, 5000), incr(), incr()];
      await Promise.all(calls);
      // One write, three frames: the two increments before the status, the status, the two after.
      assert.deepEqual(conns[0].writes, [5]);
      assert.deepEqual(conns[0].frames, [2, 1, 2]);
      assert.deepEqual(conns[0].arrived, [
        "incr 1",
        "incr 2",
        "status 3",
        "incr 4",
        "incr 5",
      ]);
    } finally {
      await conn.close();
    }
  });
});

Deno.test("a turn's requests are cut into batches of at most 1024 requests and 64 KiB", async () => {
  await withMemoryNode(async (_client, conns) => {
    const conn = await RpcClientConnection.connect(PEER, { callsInFlightMax: 4096 });
    try {
      const small = Array.from(
        { length: 1500 },
        () => conn.call("counter", { op: "incr", delta: 1n }, 5000),
      );
      await Promise.all(small);
      assert.deepEqual(conns[0].frames, [1024, 476]);
      // Requests of about 1 KiB each: 64 KiB holds 62 of them.
      const clientId = "c".repeat(1000);
      const big = Array.from(
        { length: 100 },
        (_, i) => conn.call("counter", { op: "incr", delta: 1n, clientId, seq: i + 1 }, 5000),
      );
      await Promise.all(big);
      const bigFrames = conns[0].frames.slice(2);
      assert.equal(bigFrames.reduce((a, b) => a + b, 0), 100);
      assert.ok(bigFrames.length >= 2, `split into ${bigFrames}`);
      const itemBytes = 8 + 1 + 1 + 8 + 2 + 1000 + 8;
      for (const n of bigFrames) assert.ok(n * itemBytes <= 64 * 1024, `${n} items fit 64 KiB`);
    } finally {
      await conn.close();
    }
  });
});
