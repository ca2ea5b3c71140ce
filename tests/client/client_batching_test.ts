/**
 * The client's requests share writes: every request issued in one event-loop turn goes out in
 * one write, and so do the next requests of workers whose answers arrived together. The node is
 * in memory (`Deno.connect` is replaced for each test), so every write can be counted.
 */

import assert from "node:assert/strict";
import { CounterClient } from "../../lib/client/client.ts";
import { decodeBody, encodeResponse } from "../../lib/transport/codec.ts";
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
  #frames = new FrameDecoder();
  #outbox: Uint8Array[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  #value = 0n;

  write(bytes: Uint8Array): Promise<number> {
    let requests = 0;
    for (const body of this.#frames.push(bytes.slice())) {
      const decoded = decodeBody(body);
      if (decoded.kind !== "request") throw new Error(`unexpected ${decoded.kind}`);
      requests++;
      this.#value += decoded.request.delta ?? 0n;
      const response = { ok: true, value: this.#value, leader: PEER };
      this.#outbox.push(encodeFrame(encodeResponse(decoded.group, decoded.requestId, response)));
    }
    this.writes.push(requests);
    this.#wake?.();
    return Promise.resolve(bytes.length);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#outbox.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
    // A socket's read completes in a task of its own.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (this.#closed) return null;
    let n = 0;
    while (this.#outbox.length > 0 && n + this.#outbox[0].length <= buffer.length) {
      const frame = this.#outbox.shift()!;
      buffer.set(frame, n);
      n += frame.length;
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
  });
});
