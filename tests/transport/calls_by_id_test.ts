import assert from "node:assert/strict";
import { CallsById } from "../../lib/transport/calls_by_id.ts";

Deno.test("calls by id behave as a Map of ids taken in order, whatever the removal order", () => {
  let a = 11;
  const random = () => (a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const calls = new CallsById<string>();
  const reference = new Map<number, string>();
  let next = 1;
  for (let step = 0; step < 100_000; step++) {
    if (reference.size < 200 && random() < 0.55) {
      calls.add(next, `call ${next}`);
      reference.set(next, `call ${next}`);
      next++;
    } else if (reference.size > 0) {
      const ids = [...reference.keys()];
      // For long stretches the oldest call stays, so the window grows past the ring.
      const pick = step % 40_000 < 30_000 && ids.length > 1
        ? ids[1 + Math.floor(random() * (ids.length - 1))]
        : ids[Math.floor(random() * ids.length)];
      assert.equal(calls.delete(pick), reference.get(pick));
      reference.delete(pick);
      assert.equal(calls.delete(pick), undefined, "a second delete finds nothing");
    }
    const probe = Math.floor(random() * (next + 2));
    assert.equal(calls.get(probe), reference.get(probe), `step ${step}: get ${probe}`);
    assert.equal(calls.size, reference.size);
  }
  const seen: [number, string][] = [];
  calls.forEach((value, id) => seen.push([id, value]));
  assert.deepEqual(seen, [...reference.entries()], "oldest first, as a Map's insertion order");
  assert.deepEqual(calls.takeAll(), [...reference.values()]);
  assert.equal(calls.size, 0);
  assert.equal(calls.get(next - 1), undefined);
  calls.add(next, "after takeAll");
  assert.equal(calls.get(next), "after takeAll");
});

Deno.test("ids must be added in order", () => {
  const calls = new CallsById<number>();
  assert.throws(() => calls.add(2, 2), RangeError);
  calls.add(1, 1);
  assert.throws(() => calls.add(1, 1), RangeError);
  assert.equal(calls.get(0), undefined);
});
