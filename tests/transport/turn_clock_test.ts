import assert from "node:assert/strict";
import { turnNowMs } from "../../lib/transport/turn_clock.ts";

function spinUntilAfter(ms: number): void {
  while (performance.now() <= ms) {
    // Spin: the clock must move on while no microtask can run.
  }
}

Deno.test("turnNowMs holds one reading through synchronous code", () => {
  const first = turnNowMs();
  spinUntilAfter(first + 2);
  assert.equal(turnNowMs(), first);
  assert.ok(performance.now() > first);
});

Deno.test("turnNowMs reads the clock again after a microtask checkpoint", async () => {
  const first = turnNowMs();
  spinUntilAfter(first + 2);
  await Promise.resolve();
  const second = turnNowMs();
  assert.ok(second > first, `${second} should be after ${first}`);
  assert.equal(turnNowMs(), second);
});

Deno.test("turnNowMs reads the clock again in a later timer turn", async () => {
  const first = turnNowMs();
  await new Promise((resolve) => setTimeout(resolve, 5));
  assert.ok(turnNowMs() > first);
});
