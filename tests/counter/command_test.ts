/** Tests of the counter's log command encoding (lib/counter/command.ts). */

import assert from "node:assert/strict";
import {
  BATCH_BYTES_MAX,
  BATCH_ITEMS_MAX,
  CLIENT_ID_BYTES_MAX,
  decodeIncrement,
  decodeIncrements,
  encodeIncrement,
  IncrementBatch,
  type IncrementCommand,
  type IncrementItem,
  OP_INCREMENT,
  OP_INCREMENT_BATCH,
  readStampMs,
} from "../../lib/counter/command.ts";
import { INT64_MAX, INT64_MIN } from "../../lib/counter/state_machine.ts";

const HEADER_BYTES = 33;

function command(fields: Partial<IncrementCommand> = {}): IncrementCommand {
  return {
    delta: 1n,
    proposedAtMs: 1_700_000_000_000,
    clientId: "c",
    seq: 1,
    ackedBelow: 1,
    ...fields,
  };
}

Deno.test("an increment survives encode and decode unchanged", () => {
  const cases: IncrementCommand[] = [
    command(),
    command({ delta: 0n, proposedAtMs: 0, clientId: "", seq: 0, ackedBelow: 0 }),
    command({ delta: INT64_MAX }),
    command({ delta: INT64_MIN }),
    command({ delta: -1n }),
    command({ delta: 2n ** 53n + 1n }),
    command({ delta: -(2n ** 53n) - 1n }),
    command({ seq: Number.MAX_SAFE_INTEGER, ackedBelow: Number.MAX_SAFE_INTEGER }),
    command({ proposedAtMs: Number.MAX_SAFE_INTEGER }),
    command({ clientId: "ünïcødé-клиент-🚀" }),
    command({ clientId: "x".repeat(1000) }),
  ];
  for (const cmd of cases) {
    const data = encodeIncrement(cmd);
    assert.equal(data[0], OP_INCREMENT);
    assert.equal(data.length, HEADER_BYTES + new TextEncoder().encode(cmd.clientId).length);
    assert.deepEqual(decodeIncrement(data), cmd);
  }
});

Deno.test("the layout is big-endian at the documented offsets", () => {
  const data = encodeIncrement({
    delta: -2n,
    proposedAtMs: 0x0102,
    clientId: "ab",
    seq: 0x0304,
    ackedBelow: 0x0506,
  });
  assert.deepEqual(
    [...data],
    [
      1,
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
      ...[0, 0, 0, 0, 0, 0, 1, 2],
      ...[0, 0, 0, 0, 0, 0, 3, 4],
      ...[0, 0, 0, 0, 0, 0, 5, 6],
      0x61,
      0x62,
    ],
  );
});

Deno.test("a proposal time is stored as whole non-negative milliseconds", () => {
  assert.equal(decodeIncrement(encodeIncrement(command({ proposedAtMs: 12.9 }))).proposedAtMs, 12);
  assert.equal(decodeIncrement(encodeIncrement(command({ proposedAtMs: -5 }))).proposedAtMs, 0);
});

Deno.test("decoding works on a view into a larger buffer", () => {
  const cmd = command({ delta: INT64_MIN, clientId: "view" });
  const data = encodeIncrement(cmd);
  const big = new Uint8Array(data.length + 10).fill(0xaa);
  big.set(data, 7);
  assert.deepEqual(decodeIncrement(big.subarray(7, 7 + data.length)), cmd);
});

Deno.test("decoding rejects data that is not an increment", () => {
  const good = encodeIncrement(command({ clientId: "client" }));
  const rejected: Array<[string, Uint8Array]> = [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([OP_INCREMENT])],
    ["header minus one byte", good.subarray(0, HEADER_BYTES - 1)],
    ["op 0", Uint8Array.of(0, ...good.subarray(1))],
    ["op 2", Uint8Array.of(2, ...good.subarray(1))],
    ["op 255", Uint8Array.of(255, ...good.subarray(1))],
    // A lone continuation byte and a truncated multi-byte sequence are not UTF-8.
    ["invalid UTF-8 client id", Uint8Array.of(...good.subarray(0, HEADER_BYTES), 0x80)],
    ["truncated UTF-8 client id", Uint8Array.of(...good.subarray(0, HEADER_BYTES), 0xe2, 0x82)],
  ];
  for (const [what, data] of rejected) {
    assert.throws(() => decodeIncrement(data), Error, what);
  }
});

Deno.test("a header with an empty client id decodes as anonymous", () => {
  const data = encodeIncrement(command({ clientId: "" }));
  assert.equal(data.length, HEADER_BYTES);
  assert.equal(decodeIncrement(data).clientId, "");
});

// ---- batches (op 2) ----

function item(fields: Partial<IncrementItem> = {}): IncrementItem {
  return { delta: 1n, clientId: "c", seq: 1, ackedBelow: 1, ...fields };
}

function batchOf(items: IncrementItem[], proposedAtMs = 1_700_000_000_000): Uint8Array {
  const batch = new IncrementBatch();
  for (const it of items) assert.equal(batch.add(it), true);
  return batch.encode(proposedAtMs);
}

Deno.test("a batch survives encode and decode: every item in order, with the entry's stamp", () => {
  const items = [
    item(),
    item({ delta: INT64_MAX, clientId: "", seq: 0, ackedBelow: 0 }),
    item({ delta: INT64_MIN, clientId: "ünïcødé-клиент-🚀", seq: 7, ackedBelow: 3 }),
    item({ delta: -1n, seq: Number.MAX_SAFE_INTEGER, ackedBelow: Number.MAX_SAFE_INTEGER }),
    item({ delta: 2n ** 53n + 1n, clientId: "x".repeat(CLIENT_ID_BYTES_MAX) }),
    item({ seq: 2 ** 32, ackedBelow: 2 ** 32 - 1 }),
    item({ clientId: "c", seq: 1 }),
  ];
  const data = batchOf(items, 12_345.7);
  assert.equal(data[0], OP_INCREMENT_BATCH);
  assert.deepEqual(decodeIncrements(data), items.map((it) => ({ ...it, proposedAtMs: 12_345 })));
  assert.equal(readStampMs(data), 12_345);
});

Deno.test("a batch of one is an op 1 entry; decodeIncrements reads both ops", () => {
  const data = batchOf([item({ delta: -9n })], 77);
  assert.equal(data[0], OP_INCREMENT);
  assert.deepEqual(data, encodeIncrement({ ...item({ delta: -9n }), proposedAtMs: 77 }));
  assert.deepEqual(decodeIncrements(data), [{ ...item({ delta: -9n }), proposedAtMs: 77 }]);
  assert.equal(readStampMs(data), 77);
  assert.throws(() => new IncrementBatch().encode(1), RangeError);
});

Deno.test("the batch layout is big-endian at the documented offsets", () => {
  const data = batchOf([
    item({ delta: -2n, clientId: "ab", seq: 0x0304, ackedBelow: 0x0506 }),
    item({ delta: 1n, clientId: "", seq: 0, ackedBelow: 0 }),
  ], 0x0102);
  assert.deepEqual(
    [...data],
    [
      2,
      ...[0, 0, 0, 0, 0, 0, 1, 2],
      ...[0, 2],
      ...[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe],
      ...[0, 0, 0, 0, 0, 0, 3, 4],
      ...[0, 0, 0, 0, 0, 0, 5, 6],
      ...[0, 2, 0x61, 0x62],
      ...[0, 0, 0, 0, 0, 0, 0, 1],
      ...[0, 0, 0, 0, 0, 0, 0, 0],
      ...[0, 0, 0, 0, 0, 0, 0, 0],
      ...[0, 0],
    ],
  );
});

Deno.test("a batch stops at BATCH_ITEMS_MAX items and BATCH_BYTES_MAX bytes", () => {
  const many = new IncrementBatch();
  for (let i = 0; i < BATCH_ITEMS_MAX; i++) assert.equal(many.add(item({ seq: i + 1 })), true);
  assert.equal(many.add(item()), false, "one item too many");
  assert.equal(many.count, BATCH_ITEMS_MAX);
  assert.equal(decodeIncrements(many.encode(1)).length, BATCH_ITEMS_MAX);

  const big = new IncrementBatch();
  const longId = "y".repeat(CLIENT_ID_BYTES_MAX);
  let added = 0;
  while (big.add(item({ clientId: `${added}`.padEnd(CLIENT_ID_BYTES_MAX, "y") }))) added++;
  assert.ok(big.bytes <= BATCH_BYTES_MAX && big.bytes + 26 + longId.length > BATCH_BYTES_MAX);
  assert.equal(big.count, added);
  const data = big.encode(1);
  assert.equal(data.length, big.bytes);
  assert.equal(decodeIncrements(data).length, added);
});

Deno.test("a batch refuses items no entry can hold", () => {
  const batch = new IncrementBatch();
  assert.throws(() => batch.add(item({ delta: INT64_MAX + 1n })), RangeError);
  assert.throws(() => batch.add(item({ seq: -1 })), RangeError);
  assert.throws(() => batch.add(item({ ackedBelow: 2 ** 53 })), RangeError);
  assert.throws(() => batch.add(item({ clientId: "é".repeat(CLIENT_ID_BYTES_MAX) })), RangeError);
  assert.equal(batch.count, 0, "nothing was added");
});

Deno.test("hostile batch data is an error, never a crash or a huge allocation", () => {
  const good = batchOf([item({ clientId: "client" }), item({ clientId: "other", seq: 2 })]);
  const view = (d: Uint8Array) => new DataView(d.buffer, d.byteOffset, d.byteLength);
  const patched = (write: (v: DataView) => void) => {
    const d = good.slice();
    write(view(d));
    return d;
  };
  const oversized = new Uint8Array(BATCH_BYTES_MAX + 1);
  oversized.set(good);
  const rejected: Array<[string, Uint8Array, RegExp]> = [
    ["only the op", Uint8Array.of(OP_INCREMENT_BATCH), /shorter than its header/],
    ["header minus one byte", good.subarray(0, 10), /shorter than its header/],
    ["zero items", patched((v) => v.setUint16(9, 0)), /0 items/],
    ["too many items", patched((v) => v.setUint16(9, BATCH_ITEMS_MAX + 1)), /1025 items/],
    ["count above the items", patched((v) => v.setUint16(9, 3)), /truncated in item 2/],
    ["count below the items", patched((v) => v.setUint16(9, 1)), /after its last item/],
    ["cut in an item header", good.subarray(0, 11 + 20), /truncated in item 0/],
    ["cut in a client id", good.subarray(0, good.length - 2), /client id of item 1/],
    ["trailing byte", Uint8Array.of(...good, 0), /1 bytes after its last item/],
    ["over the byte bound", oversized, /is over/],
    ["seq beyond 2^53", patched((v) => v.setUint32(19, 0x20_0000)), /beyond 2\^53/],
    ["ackedBelow beyond 2^53", patched((v) => v.setUint32(27, 0xffff_ffff)), /beyond 2\^53/],
    ["client id over the bound", patched((v) => v.setUint16(35, 1025)), /1025 bytes/],
    ["client id past the end", patched((v) => v.setUint16(35, 1000)), /truncated/],
    ["invalid UTF-8 client id", patched((v) => v.setUint8(37, 0x80)), /not UTF-8/],
  ];
  for (const [what, data, message] of rejected) {
    assert.throws(() => decodeIncrements(data), message, what);
  }
  // Random damage: an error or a well-formed decode, never anything else.
  let state = 12345;
  const next = () => (state = (state * 1103515245 + 12345) & 0x7fffffff);
  for (let i = 0; i < 2000; i++) {
    const d = good.slice(0, next() % (good.length + 1));
    for (let k = 0; k < 3; k++) if (d.length > 1) d[1 + (next() % (d.length - 1))] = next() & 0xff;
    try {
      for (const cmd of decodeIncrements(d)) {
        assert.ok(Number.isSafeInteger(cmd.seq) && Number.isSafeInteger(cmd.ackedBelow));
      }
    } catch (err) {
      assert.ok(err instanceof Error && !(err instanceof RangeError), String(err));
    }
  }
});
