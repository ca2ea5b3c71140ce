import assert from "node:assert/strict";
import {
  parseAddressList,
  parseBoundedInteger,
  parseChoice,
  parseHostPort,
  parseInt64,
} from "../../lib/cli/values.ts";
import { UsageError } from "../../lib/cli/usage_error.ts";

Deno.test("parseInt64 is exact where a double would round", () => {
  assert.equal(parseInt64("9007199254740993", "X"), 9007199254740993n);
  assert.throws(() => parseInt64("9223372036854775808", "X"), UsageError);
});

Deno.test("parseBoundedInteger keeps to its bounds", () => {
  const bounds = { min: 1, max: 10 };
  assert.equal(parseBoundedInteger("1", "--n", bounds), 1);
  assert.equal(parseBoundedInteger("10", "--n", bounds), 10);
  assert.throws(() => parseBoundedInteger("11", "--n", bounds), /invalid --n "11"/);
  assert.throws(() => parseBoundedInteger("0", "--n", bounds), /from 1 to 10/);
  assert.throws(() => parseBoundedInteger("+5", "--n", bounds), UsageError);
  assert.throws(() => parseBoundedInteger("1", "--n", { min: 0, max: 2 ** 60 }), RangeError);
});

Deno.test("parseHostPort accepts ports 1 and 65535 and returns the text unchanged", () => {
  assert.equal(parseHostPort("h:1", "--id"), "h:1");
  assert.equal(parseHostPort("h:65535", "--id"), "h:65535");
  assert.equal(parseHostPort("[::1]:80", "--id"), "[::1]:80");
});

Deno.test("parseAddressList bounds its length", () => {
  const list = Array.from({ length: 65 }, (_, i) => `h:${i + 1}`).join(",");
  assert.throws(() => parseAddressList(list, "--conf"), /too many addresses in --conf/);
  assert.equal(parseAddressList(list.split(",").slice(0, 64).join(","), "--conf").length, 64);
});

Deno.test("parseChoice lists the choices", () => {
  assert.equal(parseChoice("b", "--x", ["a", "b"]), "b");
  assert.throws(() => parseChoice("c", "--x", ["a", "b", "c2"]), /expected a, b or c2$/);
});
