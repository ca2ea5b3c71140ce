/** Tests of the counter's log command encoding (lib/counter/command.ts). */

import assert from "node:assert/strict";
import {
  decodeIncrement,
  encodeIncrement,
  type IncrementCommand,
  OP_INCREMENT,
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
