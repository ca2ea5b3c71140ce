/** Tests of the host's per-peer node liveness (lib/counter/node_liveness.ts), on a fake clock. */

import assert from "node:assert/strict";
import { NodeLiveness } from "../../lib/counter/node_liveness.ts";

Deno.test("a peer is dead once not heard from for the timeout, back when heard again", () => {
  const live = new NodeLiveness(500);
  assert.equal(live.heard("b", 0), false, "first contact is no comeback");
  assert.equal(live.heard("c", 0), false);
  assert.deepEqual(live.sweep(499), []);
  live.heard("c", 400);
  assert.deepEqual(live.sweep(500), ["b"], "b silent for 500 ms, c for 100");
  assert.deepEqual([...live.dead], ["b"]);
  assert.deepEqual(live.sweep(800), [], "already dead: reported once");
  assert.deepEqual(live.sweep(900), ["c"]);
  assert.equal(live.heard("b", 1000), true, "heard after it was thought dead: it came back");
  assert.equal(live.heard("b", 1001), false, "only once");
  assert.deepEqual([...live.dead], ["c"]);
  assert.equal(live.lastHeardMs("b"), 1001);
});

Deno.test("a peer never heard from is never thought dead; a forgotten one is not tracked", () => {
  const live = new NodeLiveness(100);
  assert.deepEqual(live.sweep(1_000_000), []);
  live.heard("b", 0);
  live.forget("b");
  assert.deepEqual(live.sweep(1_000_000), []);
  assert.equal(live.lastHeardMs("b"), undefined);
  live.heard("c", 0);
  live.sweep(100);
  live.forget("c");
  assert.equal(live.dead.size, 0);
});

Deno.test("a clock reading older than the last one does not move a peer's time back", () => {
  const live = new NodeLiveness(100);
  live.heard("b", 50);
  live.heard("b", 20);
  assert.equal(live.lastHeardMs("b"), 50);
  assert.deepEqual(live.sweep(149), []);
  assert.deepEqual(live.sweep(150), ["b"]);
});

Deno.test("the timeout must be positive", () => {
  assert.throws(() => new NodeLiveness(0), RangeError);
});
