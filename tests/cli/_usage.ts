/**
 * A shared assertion for the argument-parsing tests.
 *
 * @module
 */

import assert from "node:assert/strict";
import { UsageError } from "../../lib/cli/usage_error.ts";

/** Asserts that parsing throws a one-line UsageError whose message matches `pattern`. */
export function assertUsage(fn: () => unknown, pattern: RegExp): UsageError {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof UsageError, `expected a UsageError, got ${caught}`);
  assert.match(caught.message, pattern);
  assert.ok(!caught.message.includes("\n"), "a usage error is one line");
  assert.ok(!caught.message.endsWith("."), "no trailing period");
  return caught;
}
