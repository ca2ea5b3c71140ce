import assert from "node:assert/strict";
import { errorLine, formatValueLine, jsonInteger } from "../../lib/cli/output.ts";
import { INT64_MAX, INT64_MIN } from "../../lib/cli/values.ts";

const leader = "127.0.0.1:8081";

Deno.test("plain output is the value alone", () => {
  assert.equal(formatValueLine({ value: 42n, leader }, false), "42");
  assert.equal(formatValueLine({ value: INT64_MIN, leader }, false), "-9223372036854775808");
});

Deno.test("JSON output is one line with the value and the leader", () => {
  assert.equal(
    formatValueLine({ value: -7n, leader }, true),
    '{"value":-7,"leader":"127.0.0.1:8081"}',
  );
  const parsed = JSON.parse(formatValueLine({ value: 5n, leader }, true));
  assert.deepEqual(parsed, { value: 5, leader });
});

Deno.test("JSON values are numbers up to 2^53-1 in magnitude and strings beyond", () => {
  assert.equal(jsonInteger(9007199254740991n), "9007199254740991");
  assert.equal(jsonInteger(-9007199254740991n), "-9007199254740991");
  assert.equal(jsonInteger(9007199254740992n), '"9007199254740992"');
  assert.equal(jsonInteger(-9007199254740992n), '"-9007199254740992"');
  assert.equal(jsonInteger(INT64_MAX), '"9223372036854775807"');
  assert.equal(jsonInteger(INT64_MIN), '"-9223372036854775808"');
  const parsed = JSON.parse(formatValueLine({ value: INT64_MAX, leader }, true));
  assert.equal(BigInt(parsed.value), INT64_MAX);
});

Deno.test("errors are reported by their first line", () => {
  assert.equal(errorLine(new Error("first\nsecond")), "first");
  assert.equal(errorLine("text"), "text");
  assert.equal(
    errorLine(
      new Error(
        "failed within 300 ms: 127.0.0.1:1: Node could not be reached (127.0.0.1:1: " +
          "Connection refused (os error 111)); the request was not sent",
      ),
    ),
    "failed within 300 ms: 127.0.0.1:1: Node could not be reached (Connection refused " +
      "(os error 111)); the request was not sent",
    "an address is named once",
  );
  assert.equal(errorLine("a:1: x; b:2: y"), "a:1: x; b:2: y", "different addresses stay");
  assert.equal(errorLine(new TypeError("")), "TypeError");
});
