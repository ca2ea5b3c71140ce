/**
 * Request and response batches (binary tags 0x04 and 0x05): round trips, what the encoders refuse,
 * and hostile bodies, which must fail as ProtocolError (and only so) before anything is allocated
 * for what they announce. Bodies are built by hand here, independently of the codec's writer.
 */

import assert from "node:assert/strict";
import {
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  ProtocolError,
} from "../../lib/transport/codec.ts";
import {
  BATCH_ITEMS_MAX,
  BINARY_MARKER,
  BinaryTag,
  encodeRequestBatch,
  encodeRequestBinary,
  encodeResponseBatch,
  encodeResponseBinary,
  isBinaryRequest,
  isBinaryResponse,
} from "../../lib/transport/binary_codec.ts";

const utf8 = new TextEncoder();

/** mulberry32, so a failure replays from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function outcome(body: Uint8Array, label: string): "ok" | ProtocolError {
  try {
    decodeBody(body);
    return "ok";
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    assert.fail(`${label}: expected ProtocolError, got ${err}`);
  }
}

function assertRejected(body: Uint8Array, pattern: RegExp, label = String(pattern)): void {
  const result = outcome(body, label);
  assert.ok(result instanceof ProtocolError, `${label}: should be rejected`);
  assert.match(result.message, pattern, label);
}

/** A writer for hand-built bodies. */
class Builder {
  #bytes: number[] = [];
  u8(n: number): this {
    this.#bytes.push(n & 0xff);
    return this;
  }
  u16(n: number): this {
    return this.u8(n >>> 8).u8(n);
  }
  u64(n: number | bigint): this {
    const v = BigInt.asUintN(64, BigInt(n));
    for (let shift = 56n; shift >= 0n; shift -= 8n) this.u8(Number((v >> shift) & 0xffn));
    return this;
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.u8(bytes[i]);
    return this;
  }
  str(s: string | Uint8Array): this {
    const bytes = typeof s === "string" ? utf8.encode(s) : s;
    return this.u16(bytes.length).raw(bytes);
  }
  build(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

/** A request batch head: marker, tag, group, count. */
function requestBatchHead(count: number, group = "counter"): Builder {
  return new Builder().u8(BINARY_MARKER).u8(BinaryTag.RequestBatch).str(group).u16(count);
}

/** One `incr` item with a delta: requestId, op 1, flags bit 0, i64 delta. */
function incrItem(b: Builder, requestId: number | bigint, delta = 1n): Builder {
  return b.u64(requestId).u8(1).u8(1).u64(delta);
}

function randomRequest(next: () => number): ClientRequest {
  const r: ClientRequest = { op: next() < 0.7 ? "incr" : "get" };
  if (next() < 0.8) r.delta = BigInt(Math.floor(next() * 2 ** 31)) - (2n ** 30n);
  if (next() < 0.5) r.clientId = `client-${Math.floor(next() * 1000)}`;
  if (next() < 0.5) r.seq = Math.floor(next() * 2 ** 53);
  if (next() < 0.3) r.ackedBelow = Math.floor(next() * 1000);
  if (next() < 0.3) r.consistency = next() < 0.5 ? "lease" : "stale";
  if (next() < 0.5) r.clusterId = "00ff00ff00ff00ff";
  if (next() < 0.05) r.clientId = "ünïcödé ✓";
  return r;
}

function randomResponse(next: () => number): ClientResponse {
  if (next() < 0.6) {
    const r: ClientResponse = { ok: true, value: BigInt(Math.floor(next() * 2 ** 40)) };
    if (next() < 0.3) r.data = { node: "10.0.0.1:4000" };
    if (next() < 0.3) r.clusterId = "00ff00ff00ff00ff";
    return r;
  }
  const codes = ["NOT_LEADER", "NO_LEADER", "BUSY", "TIMEOUT", "BAD_REQUEST"] as const;
  const r: ClientResponse = {
    ok: false,
    code: codes[Math.floor(next() * codes.length)],
    error: "something went wrong",
  };
  if (next() < 0.5) r.leader = "10.0.0.2:4000";
  return r;
}

Deno.test("request batches round-trip, each request with its own id and fields", () => {
  const next = prng(12);
  for (let round = 0; round < 200; round++) {
    const count = 1 + Math.floor(next() * (round < 190 ? 40 : BATCH_ITEMS_MAX));
    const ids = Array.from({ length: count }, (_, i) => 1 + i * 7 + Math.floor(next() * 5));
    const requests = Array.from({ length: count }, () => randomRequest(next));
    const bodies = requests.map((r, i) => encodeRequestBinary("counter", ids[i], r)!);
    const batch = encodeRequestBatch(bodies, count);
    assert.equal(batch[0], BINARY_MARKER);
    assert.equal(batch[1], BinaryTag.RequestBatch);
    assert.deepEqual(decodeBody(batch), {
      kind: "request_batch",
      group: "counter",
      requestIds: ids,
      requests,
    }, `round ${round}`);
  }
});

Deno.test("response batches round-trip, each response with its own code", () => {
  const next = prng(34);
  for (let round = 0; round < 200; round++) {
    const count = 1 + Math.floor(next() * 40);
    const ids = Array.from({ length: count }, (_, i) => 2 ** 40 + i);
    const responses = Array.from({ length: count }, () => randomResponse(next));
    const bodies = responses.map((r, i) => encodeResponseBinary("g-ü", ids[i], r)!);
    const batch = encodeResponseBatch(bodies, count);
    assert.deepEqual(decodeBody(batch), {
      kind: "response_batch",
      group: "g-ü",
      requestIds: ids,
      responses,
    }, `round ${round}`);
  }
});

Deno.test("a batch is the sum of its items' bodies less their group, plus a 2-byte count", () => {
  const bodies = [1, 2, 3].map((id) => encodeRequestBinary("counter", id, { op: "get" })!);
  const batch = encodeRequestBatch(bodies, 3);
  const prefix = 4 + "counter".length;
  assert.equal(batch.length, prefix + 2 + bodies.reduce((n, b) => n + b.length - prefix, 0));
  // Only the first `count` bodies are joined.
  assert.deepEqual(
    (decodeBody(encodeRequestBatch(bodies, 2)) as { requestIds: number[] }).requestIds,
    [1, 2],
  );
});

Deno.test("the batch encoders refuse what a batch cannot carry", () => {
  const get = (group: string, id: number) => encodeRequestBinary(group, id, { op: "get" })!;
  const resp = encodeResponseBinary("counter", 1, { ok: true })!;
  assert.throws(() => encodeRequestBatch([get("counter", 1)], 0), RangeError);
  assert.throws(
    () => encodeRequestBatch(Array(BATCH_ITEMS_MAX + 1).fill(get("counter", 1)), 1025),
    RangeError,
  );
  assert.throws(() => encodeRequestBatch([get("counter", 1)], 2), RangeError);
  assert.throws(() => encodeRequestBatch([get("counter", 1), get("other", 2)], 2), /group/);
  assert.throws(() => encodeRequestBatch([get("counter", 1), get("counteR", 2)], 2), /group/);
  assert.throws(() => encodeRequestBatch([get("counter", 1), resp], 2), TypeError);
  assert.throws(() => encodeResponseBatch([resp, get("counter", 2)], 2), TypeError);
  assert.ok(isBinaryRequest(get("counter", 1)) && !isBinaryRequest(resp));
  assert.ok(isBinaryResponse(resp) && !isBinaryResponse(get("counter", 1)));
  // A failed batch leaves the encoder usable.
  const ok = encodeRequestBatch([get("counter", 1), get("counter", 2)], 2);
  assert.equal(outcome(ok, "after failures"), "ok");
});

Deno.test("a batch count of 0 or above the limit is refused", () => {
  assertRejected(requestBatchHead(0).build(), /Batch count 0 is outside/);
  let b = requestBatchHead(BATCH_ITEMS_MAX + 1);
  for (let i = 0; i < BATCH_ITEMS_MAX + 1; i++) incrItem(b, i + 1);
  assertRejected(b.build(), /Batch count 1025 is outside/);
  assertRejected(
    new Builder().u8(BINARY_MARKER).u8(BinaryTag.ResponseBatch).str("counter").u16(0).build(),
    /Batch count 0/,
  );
  // The largest count is accepted.
  b = requestBatchHead(BATCH_ITEMS_MAX);
  for (let i = 0; i < BATCH_ITEMS_MAX; i++) incrItem(b, i + 1);
  assert.equal(outcome(b.build(), "max"), "ok");
});

Deno.test("a count the body cannot hold is refused before anything is built", () => {
  // 1024 items announced, 1 present: refused on the count (the items' minimum size), not on
  // the second item.
  assertRejected(incrItem(requestBatchHead(1024), 1).build(), /ends inside batch items/);
  assertRejected(requestBatchHead(2).build(), /ends inside batch items/);
  assertRejected(
    new Builder().u8(BINARY_MARKER).u8(BinaryTag.RequestBatch).str("counter").u8(0).build(),
    /ends inside batch count/,
  );
});

Deno.test("every cut of a valid batch is refused, and so are trailing bytes", () => {
  const bodies = [
    encodeRequestBinary("counter", 5, { op: "incr", delta: 2n, clientId: "c", seq: 3 })!,
    encodeRequestBinary("counter", 6, { op: "get", consistency: "lease" })!,
  ];
  const valid = encodeRequestBatch(bodies, 2);
  assert.equal(outcome(valid, "valid"), "ok");
  for (let n = 0; n < valid.length; n++) {
    const result = outcome(valid.subarray(0, n), `cut at ${n}`);
    assert.ok(result instanceof ProtocolError, `cut at ${n} should be rejected`);
  }
  assertRejected(new Uint8Array([...valid, 0]), /trailing bytes/);
  const responses = encodeResponseBatch([
    encodeResponseBinary("counter", 5, { ok: true, value: 1n })!,
    encodeResponseBinary("counter", 6, { ok: false, code: "BUSY", error: "busy" })!,
  ], 2);
  for (let n = 0; n < responses.length; n++) {
    assert.ok(outcome(responses.subarray(0, n), `cut ${n}`) instanceof ProtocolError);
  }
});

Deno.test("a bad item anywhere in a batch refuses the whole batch", () => {
  const head = () => incrItem(requestBatchHead(3), 1);
  // The last item is the bad one: nothing of the batch is returned.
  assertRejected(incrItem(incrItem(head(), 2), 0).build(), /request id is not a positive/);
  assertRejected(incrItem(incrItem(head(), 2), 2n ** 53n).build(), /requestId is not/);
  assertRejected(incrItem(head(), 2).u64(3).u8(3).u8(0).build(), /Unknown binary request op 3/);
  assertRejected(incrItem(head(), 2).u64(3).u8(1).u8(0x40).build(), /unknown bits/);
  assertRejected(
    incrItem(head(), 2).u64(3).u8(1).u8(2).str(new Uint8Array([0xff, 0xfe])).build(),
    /not valid UTF-8/,
  );
  // An empty group.
  assertRejected(incrItem(requestBatchHead(1, ""), 1).build(), /group is not a non-empty/);
  // A response item that breaks the ok/code rule, or names an unknown code.
  const respHead = () =>
    new Builder().u8(BINARY_MARKER).u8(BinaryTag.ResponseBatch).str("counter").u16(2)
      .u64(1).u8(1);
  assertRejected(respHead().u64(2).u8(0).build(), /carries a code when ok is true or none/);
  assertRejected(respHead().u64(2).u8(1 << 3).u8(99).build(), /not a known error code/);
});

Deno.test("random damage to batches fails only as ProtocolError", () => {
  const next = prng(56);
  for (let round = 0; round < 300; round++) {
    const count = 1 + Math.floor(next() * 8);
    const requests = Array.from({ length: count }, () => randomRequest(next));
    const batch = round % 2 === 0
      ? encodeRequestBatch(requests.map((r, i) => encodeRequestBinary("g", i + 1, r)!), count)
      : encodeResponseBatch(
        requests.map((_, i) => encodeResponseBinary("g", i + 1, randomResponse(next))!),
        count,
      );
    const damaged = batch.slice();
    const flips = 1 + Math.floor(next() * 4);
    for (let f = 0; f < flips; f++) {
      damaged[2 + Math.floor(next() * (damaged.length - 2))] = Math.floor(next() * 256);
    }
    // Decodes or is refused; nothing else may escape.
    outcome(damaged, `round ${round}`);
  }
});

Deno.test("single requests and responses keep decoding as before", () => {
  const body = encodeRequestBinary("counter", 9, { op: "incr", delta: 1n })!;
  assert.deepEqual(decodeBody(body), {
    kind: "request",
    group: "counter",
    requestId: 9,
    request: { op: "incr", delta: 1n },
  });
  const resp = encodeResponseBinary("counter", 9, { ok: true, value: 1n })!;
  assert.equal((decodeBody(resp) as { kind: string }).kind, "response");
});
