/**
 * The client's per-request cost, without a network or a node: `CounterClient` talks to an
 * in-memory connection whose other end answers every request at once.
 *
 *     deno bench -A tests/client/client_bench.ts
 *
 * `Deno.connect` is replaced for the whole file by a function that returns {@linkcode FakeConn}:
 * the client, its connection and its framing run unchanged. The fake's own work (decoding each
 * request, encoding its answer) is in the "fake node alone" figure; subtract it to get the
 * client's share.
 *
 * @module
 */

import { CounterClient } from "../../lib/client/client.ts";
import { decodeBody, encodeResponse } from "../../lib/transport/codec.ts";
import { encodeFrame, FrameDecoder } from "../../lib/transport/frame.ts";

const ADDRESS = { transport: "tcp" as const, hostname: "127.0.0.1", port: 7001 };
const PEER = `${ADDRESS.hostname}:${ADDRESS.port}`;

/**
 * The two ends of a TCP connection in one: what is written is a batch of request frames, and
 * what is read back is their answers, one frame each, all in one chunk.
 */
class FakeConn {
  readonly remoteAddr = ADDRESS;
  readonly localAddr = { ...ADDRESS, port: 7002 };
  #frames = new FrameDecoder();
  #outbox: Uint8Array[] = [];
  #wake: (() => void) | null = null;
  #closed = false;

  write(bytes: Uint8Array): Promise<number> {
    for (const body of this.#frames.push(bytes.slice())) {
      const decoded = decodeBody(body);
      if (decoded.kind !== "request") throw new Error(`unexpected ${decoded.kind}`);
      this.#outbox.push(
        encodeFrame(
          encodeResponse(decoded.group, decoded.requestId, { ok: true, value: 1n, leader: PEER }),
        ),
      );
    }
    this.#wake?.();
    return Promise.resolve(bytes.length);
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#outbox.length === 0 && !this.#closed) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
    if (this.#closed) return null;
    let n = 0;
    while (this.#outbox.length > 0 && n + this.#outbox[0].length <= buffer.length) {
      const frame = this.#outbox.shift()!;
      buffer.set(frame, n);
      n += frame.length;
    }
    if (n === 0) {
      // A frame larger than the buffer: hand over its head, keep the rest.
      const frame = this.#outbox[0];
      buffer.set(frame.subarray(0, buffer.length));
      this.#outbox[0] = frame.subarray(buffer.length);
      n = buffer.length;
    }
    return n;
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }
}

(Deno as { connect: unknown }).connect = () => Promise.resolve(new FakeConn());

const client = new CounterClient({ peers: [PEER] });
// Opens the connection, outside the measurements.
await client.incrementAndGet(1n);

const CONCURRENCY = 256;

Deno.bench(`${CONCURRENCY} increments issued at once, all answered`, {
  group: "client",
  baseline: true,
}, async () => {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < CONCURRENCY; i++) calls.push(client.incrementAndGet(1n));
  await Promise.all(calls);
});

Deno.bench(`${CONCURRENCY} linearizable reads issued at once, all answered`, {
  group: "client",
}, async () => {
  const calls: Promise<unknown>[] = [];
  for (let i = 0; i < CONCURRENCY; i++) calls.push(client.get());
  await Promise.all(calls);
});

Deno.bench(`${CONCURRENCY} closed-loop workers, 4 increments each`, {
  group: "client",
}, async () => {
  const worker = async () => {
    for (let i = 0; i < 4; i++) await client.incrementAndGet(1n);
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
});

// What the fake node does for the first bench's requests, without the client.
const requestFrames = await (async () => {
  const writes: Uint8Array[] = [];
  (Deno as { connect: unknown }).connect = () => {
    const conn = new FakeConn();
    const write = conn.write.bind(conn);
    conn.write = (bytes) => {
      writes.push(bytes.slice());
      return write(bytes);
    };
    return Promise.resolve(conn);
  };
  const probe = new CounterClient({ peers: [PEER] });
  await probe.incrementAndGet(1n);
  writes.length = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, () => probe.incrementAndGet(1n)));
  await probe.close();
  (Deno as { connect: unknown }).connect = () => Promise.resolve(new FakeConn());
  const all = new Uint8Array(writes.reduce((n, w) => n + w.length, 0));
  let offset = 0;
  for (const w of writes) {
    all.set(w, offset);
    offset += w.length;
  }
  return all;
})();

Deno.bench(`fake node alone: answering ${CONCURRENCY} increments`, {
  group: "client",
}, () => {
  const conn = new FakeConn();
  conn.write(requestFrames);
  conn.read(new Uint8Array(1024 * 1024));
});

// `deno run -A tests/client/client_bench.ts --cpu [ROUNDS]`: CPU time (user + system, from
// getrusage) per request of the three client workloads above, which a busy machine disturbs
// less than the wall-clock times `deno bench` reports.
if (Deno.args[0] === "--cpu") {
  const { cpuUsage } = await import("node:process");
  const rounds = Number(Deno.args[1] ?? 400);
  const workloads: [string, number, () => Promise<unknown>][] = [
    [
      "increments at once",
      CONCURRENCY,
      () => Promise.all(Array.from({ length: CONCURRENCY }, () => client.incrementAndGet(1n))),
    ],
    [
      "reads at once",
      CONCURRENCY,
      () => Promise.all(Array.from({ length: CONCURRENCY }, () => client.get())),
    ],
    [
      "closed loop",
      4 * CONCURRENCY,
      () =>
        Promise.all(Array.from({ length: CONCURRENCY }, async () => {
          for (let i = 0; i < 4; i++) await client.incrementAndGet(1n);
        })),
    ],
  ];
  for (const [name, requests, run] of workloads) {
    for (let i = 0; i < rounds / 4; i++) await run(); // warm-up
    const before = cpuUsage();
    for (let i = 0; i < rounds; i++) await run();
    const used = cpuUsage(before);
    const usPerRequest = (used.user + used.system) / (rounds * requests);
    console.log(`${name}: ${usPerRequest.toFixed(2)} µs of CPU per request`);
  }
  const conn = new FakeConn();
  const before = cpuUsage();
  for (let i = 0; i < rounds; i++) {
    conn.write(requestFrames);
    await conn.read(new Uint8Array(1024 * 1024));
  }
  const used = cpuUsage(before);
  console.log(
    `fake node alone: ${((used.user + used.system) / (rounds * CONCURRENCY)).toFixed(2)} µs`,
  );
  await client.close();
}
