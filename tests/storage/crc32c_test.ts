import assert from "node:assert/strict";
import { crc32c } from "../../lib/storage/crc32c.ts";

const encoder = new TextEncoder();

/** Bit-at-a-time reference: slow, but obviously the definition. */
function crc32cReference(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

Deno.test("crc32c matches the published check values", () => {
  assert.equal(crc32c(new Uint8Array(0)), 0);
  assert.equal(crc32c(encoder.encode("123456789")), 0xe3069283);
  assert.equal(crc32c(encoder.encode("a")), 0xc1d04330);
  assert.equal(
    crc32c(encoder.encode("The quick brown fox jumps over the lazy dog")),
    0x22620404,
  );
  // RFC 3720 (iSCSI) appendix B.4.
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
});

Deno.test("crc32c agrees with the bitwise definition on every length and alignment", () => {
  const bytes = new Uint8Array(300);
  let seed = 12345;
  for (let i = 0; i < bytes.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    bytes[i] = seed >>> 24;
  }
  for (let start = 0; start < 9; start++) {
    for (let end = start; end <= bytes.length; end += 7) {
      assert.equal(crc32c(bytes, start, end), crc32cReference(bytes.subarray(start, end)));
    }
  }
});

Deno.test("crc32c continues a previous checksum", () => {
  const bytes = encoder.encode("123456789 and then some more bytes");
  for (let split = 0; split <= bytes.length; split++) {
    const head = crc32c(bytes, 0, split);
    assert.equal(crc32c(bytes, split, bytes.length, head), crc32c(bytes));
  }
});

Deno.test("crc32c rejects ranges outside the bytes", () => {
  const bytes = new Uint8Array(4);
  assert.throws(() => crc32c(bytes, 0, 5), RangeError);
  assert.throws(() => crc32c(bytes, 3, 2), RangeError);
  assert.throws(() => crc32c(bytes, -1, 2), RangeError);
});

Deno.test("crc32c is the same for views at any offset and for resizable buffers", () => {
  const source = Uint8Array.from({ length: 257 }, (_, i) => (i * 131 + 7) & 0xff);
  const expected = crc32cReference(source);
  for (let shift = 0; shift < 8; shift++) {
    const holder = new Uint8Array(source.length + 16);
    holder.set(source, shift);
    assert.equal(crc32c(holder.subarray(shift, shift + source.length)), expected);
    // Alternating buffers must not reuse the previous buffer's cached word view.
    assert.equal(crc32c(source), expected);
  }
  const resizable = new ArrayBuffer(source.length, { maxByteLength: 1024 });
  const view = new Uint8Array(resizable);
  view.set(source);
  assert.equal(crc32c(view), expected);
});
