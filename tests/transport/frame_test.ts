import assert from "node:assert/strict";
import {
  encodeFrame,
  FRAME_BYTES_LIMIT,
  FRAME_BYTES_MAX_DEFAULT,
  FrameDecoder,
  FrameError,
  writeFrame,
} from "../../lib/transport/frame.ts";

function bodyOf(length: number, seed: number): Uint8Array {
  const body = new Uint8Array(length);
  for (let i = 0; i < length; i++) body[i] = (seed * 31 + i * 7) & 0xff;
  return body;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

function collect(decoder: FrameDecoder, chunk: Uint8Array): Uint8Array[] {
  // Copies, because the decoder may hand out views of the chunk.
  return [...decoder.push(chunk)].map((body) => body.slice());
}

Deno.test("encodeFrame writes a big-endian length prefix then the body", () => {
  assert.deepEqual(
    encodeFrame(new Uint8Array([0xaa, 0xbb])),
    new Uint8Array([0, 0, 0, 2, 0xaa, 0xbb]),
  );
  const body = bodyOf(0x010203, 1);
  const frame = encodeFrame(body);
  assert.deepEqual(frame.subarray(0, 4), new Uint8Array([0x00, 0x01, 0x02, 0x03]));
  assert.deepEqual(frame.subarray(4), body);
});

Deno.test("encodeFrame refuses an empty body", () => {
  assert.throws(() => encodeFrame(new Uint8Array(0)), RangeError);
});

Deno.test("writeFrame appends frames into one buffer", () => {
  const target = new Uint8Array(4 + 1 + 4 + 3);
  let offset = writeFrame(target, 0, new Uint8Array([9]));
  offset = writeFrame(target, offset, new Uint8Array([1, 2, 3]));
  assert.equal(offset, target.length);
  assert.deepEqual(target, new Uint8Array([0, 0, 0, 1, 9, 0, 0, 0, 3, 1, 2, 3]));
});

Deno.test("FrameDecoder returns a frame that fills a chunk as a view, without copying", () => {
  const frame = encodeFrame(bodyOf(100, 2));
  const decoder = new FrameDecoder();
  const bodies = [...decoder.push(frame)];
  assert.equal(bodies.length, 1);
  assert.equal(bodies[0].buffer, frame.buffer);
  assert.equal(bodies[0].byteOffset, 4);
  assert.equal(decoder.bufferedBytes, 0);
});

Deno.test("FrameDecoder yields every frame when one stream is split at every byte position", () => {
  const bodies = [bodyOf(1, 1), bodyOf(5, 2), bodyOf(300, 3), bodyOf(2, 4)];
  const stream = concat(bodies.map(encodeFrame));
  for (let cut = 0; cut <= stream.length; cut++) {
    const decoder = new FrameDecoder();
    const got = [
      ...collect(decoder, stream.subarray(0, cut)),
      ...collect(decoder, stream.subarray(cut)),
    ];
    assert.deepEqual(got, bodies, `cut at ${cut}`);
    assert.equal(decoder.bufferedBytes, 0);
  }
});

Deno.test("FrameDecoder handles a stream split at every pair of positions", () => {
  const bodies = [bodyOf(3, 1), bodyOf(6, 2), bodyOf(1, 3)];
  const stream = concat(bodies.map(encodeFrame));
  for (let a = 0; a <= stream.length; a++) {
    for (let b = a; b <= stream.length; b++) {
      const decoder = new FrameDecoder();
      const got = [
        ...collect(decoder, stream.subarray(0, a)),
        ...collect(decoder, stream.subarray(a, b)),
        ...collect(decoder, stream.subarray(b)),
      ];
      assert.deepEqual(got, bodies, `cuts at ${a} and ${b}`);
    }
  }
});

Deno.test("FrameDecoder accepts one byte at a time", () => {
  const bodies = [bodyOf(70_000, 5), bodyOf(4, 6)];
  const stream = concat(bodies.map(encodeFrame));
  const decoder = new FrameDecoder();
  const got: Uint8Array[] = [];
  for (let i = 0; i < stream.length; i++) got.push(...collect(decoder, stream.subarray(i, i + 1)));
  assert.deepEqual(got, bodies);
});

Deno.test("FrameDecoder yields several frames from one chunk, in order", () => {
  const bodies = Array.from({ length: 50 }, (_, i) => bodyOf(1 + i, i));
  const decoder = new FrameDecoder();
  assert.deepEqual(collect(decoder, concat(bodies.map(encodeFrame))), bodies);
});

Deno.test("FrameDecoder keeps frames a caller did not iterate for the next push", () => {
  const decoder = new FrameDecoder();
  decoder.push(concat([encodeFrame(bodyOf(3, 1)), encodeFrame(bodyOf(4, 2))]));
  const got = collect(decoder, encodeFrame(bodyOf(5, 3)));
  assert.deepEqual(got, [bodyOf(3, 1), bodyOf(4, 2), bodyOf(5, 3)]);
});

Deno.test("FrameDecoder rejects a zero length prefix", () => {
  const decoder = new FrameDecoder();
  assert.throws(
    () => collect(decoder, new Uint8Array([0, 0, 0, 0, 1, 2])),
    (err: unknown) => err instanceof FrameError && err.reason === "empty",
  );
});

Deno.test("FrameDecoder rejects an oversized prefix on its four bytes alone, before allocating", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 1024 });
  // Only the prefix arrives: the decoder must not wait for (or reserve) the announced body.
  assert.throws(
    () => collect(decoder, new Uint8Array([0, 0, 4, 1])),
    (err: unknown) =>
      err instanceof FrameError && err.reason === "oversize" && err.frameBytes === 1025,
  );
  assert.equal(decoder.bufferedBytes, 0);
  // The maximum uint32 prefix, split across chunks, against the default limit.
  const big = new FrameDecoder();
  assert.deepEqual(collect(big, new Uint8Array([0xff, 0xff])), []);
  assert.throws(
    () => collect(big, new Uint8Array([0xff, 0xff])),
    (err: unknown) => err instanceof FrameError && err.frameBytes === 0xffff_ffff,
  );
  assert.equal(big.bufferedBytes, 0);
});

Deno.test("FrameDecoder accepts a body of exactly frameBytesMax", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 16 });
  assert.deepEqual(collect(decoder, encodeFrame(bodyOf(16, 1))), [bodyOf(16, 1)]);
});

Deno.test("FrameDecoder yields the frames before a bad prefix, then fails for good", () => {
  const decoder = new FrameDecoder({ frameBytesMax: 8 });
  const stream = concat([encodeFrame(bodyOf(2, 1)), new Uint8Array([0, 0, 0, 9, 1])]);
  const got: Uint8Array[] = [];
  assert.throws(() => {
    for (const body of decoder.push(stream)) got.push(body.slice());
  }, FrameError);
  assert.deepEqual(got, [bodyOf(2, 1)]);
  assert.throws(() => decoder.push(encodeFrame(bodyOf(1, 1))), FrameError);
});

Deno.test("FrameDecoder grows a split body with the bytes received, not the announced size", () => {
  const decoder = new FrameDecoder();
  const frame = encodeFrame(bodyOf(FRAME_BYTES_MAX_DEFAULT, 9));
  // The prefix and a few bytes announce 4 MiB; only what arrived is held.
  assert.deepEqual(collect(decoder, frame.subarray(0, 10)), []);
  assert.equal(decoder.bufferedBytes, 6);
  assert.deepEqual(collect(decoder, frame.subarray(10, 200_000)), []);
  const got = collect(decoder, frame.subarray(200_000));
  assert.equal(got.length, 1);
  assert.deepEqual(got[0], bodyOf(FRAME_BYTES_MAX_DEFAULT, 9));
});

Deno.test("FrameDecoder refuses a limit outside 1..FRAME_BYTES_LIMIT", () => {
  assert.throws(() => new FrameDecoder({ frameBytesMax: 0 }), RangeError);
  assert.throws(() => new FrameDecoder({ frameBytesMax: FRAME_BYTES_LIMIT + 1 }), RangeError);
  assert.throws(() => new FrameDecoder({ frameBytesMax: 1.5 }), RangeError);
});
