/**
 * Micro-benchmarks of request and response batches against the same requests as lone frames:
 * 256 increments (a busy client's turn) and their answers, encoded, framed, split and decoded.
 * Run with `deno bench tests/transport/batch_codec_bench.ts`; figures are per 256 requests.
 */

import {
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  encodeRequest,
  encodeResponse,
} from "../../lib/transport/codec.ts";
import {
  encodeRequestBatch,
  encodeRequestBinary,
  encodeResponseBatch,
  encodeResponseBinary,
} from "../../lib/transport/binary_codec.ts";
import { FRAME_HEADER_BYTES, FrameDecoder, writeFrame } from "../../lib/transport/frame.ts";

const COUNT = 256;
const GROUP = "counter";
const requests: ClientRequest[] = Array.from({ length: COUNT }, (_, i) => ({
  op: "incr",
  delta: 1n,
  clientId: "bench-7f3a9c21",
  seq: 1_000_000 + i,
  ackedBelow: 1_000_000,
  clusterId: "00ff00ff00ff00ff",
}));
const responses: ClientResponse[] = Array.from({ length: COUNT }, (_, i) => ({
  ok: true,
  value: 5_000_000n + BigInt(i),
}));
const bodies: Uint8Array[] = new Array(COUNT);
const out = new Uint8Array(1024 * 1024);

/** Frames `parts` into one chunk, as a connection's write would. */
function chunkOf(parts: Uint8Array[], count: number): Uint8Array {
  let at = 0;
  for (let i = 0; i < count; i++) at = writeFrame(out, at, parts[i]);
  return out.subarray(0, at);
}

function decodeAll(chunk: Uint8Array): number {
  let n = 0;
  for (const body of new FrameDecoder().push(chunk)) {
    const decoded = decodeBody(body);
    n += decoded.kind === "request_batch" || decoded.kind === "response_batch"
      ? decoded.requestIds.length
      : 1;
  }
  return n;
}

function check(n: number): void {
  if (n !== COUNT) throw new Error(`decoded ${n} of ${COUNT}`);
}

Deno.bench(
  "256 lone incr frames: encode, frame, decode",
  { group: "requests", baseline: true },
  () => {
    for (let i = 0; i < COUNT; i++) bodies[i] = encodeRequest(GROUP, i + 1, requests[i]);
    check(decodeAll(chunkOf(bodies, COUNT)));
  },
);

Deno.bench("one batch of 256 incr: encode, frame, decode", { group: "requests" }, () => {
  for (let i = 0; i < COUNT; i++) bodies[i] = encodeRequestBinary(GROUP, i + 1, requests[i])!;
  const batch = encodeRequestBatch(bodies, COUNT);
  check(decodeAll(chunkOf([batch], 1)));
});

Deno.bench(
  "256 lone responses: encode, frame, decode",
  { group: "responses", baseline: true },
  () => {
    for (let i = 0; i < COUNT; i++) bodies[i] = encodeResponse(GROUP, i + 1, responses[i]);
    check(decodeAll(chunkOf(bodies, COUNT)));
  },
);

Deno.bench("one batch of 256 responses: encode, frame, decode", { group: "responses" }, () => {
  for (let i = 0; i < COUNT; i++) bodies[i] = encodeResponseBinary(GROUP, i + 1, responses[i])!;
  const batch = encodeResponseBatch(bodies, COUNT);
  check(decodeAll(chunkOf([batch], 1)));
});

Deno.bench("batch of 256 incr: join only (items already encoded)", { group: "join" }, (b) => {
  for (let i = 0; i < COUNT; i++) bodies[i] = encodeRequestBinary(GROUP, i + 1, requests[i])!;
  b.start();
  encodeRequestBatch(bodies, COUNT);
  b.end();
});

// The frame header is what a batch saves per request on the wire, besides the group.
if (FRAME_HEADER_BYTES !== 4) throw new Error("frame header changed");
