import assert from "node:assert/strict";
import { InflightSeqs } from "../../lib/client/inflight_seqs.ts";

/** The reference: a Set in insertion order, as the client used before. */
function oldestOf(set: Set<number>, next: number): number {
  return set.size === 0 ? next : set.values().next().value!;
}

Deno.test("the oldest waiting number matches a Set's first, whatever the settling order", () => {
  let a = 7;
  const random = () => (a = (a * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const seqs = new InflightSeqs();
  const reference = new Set<number>();
  let next = 1;
  for (let step = 0; step < 200_000; step++) {
    // Mostly adds while few wait; one number kept waiting for long stretches makes the window grow.
    if (reference.size < 300 && random() < 0.55) {
      seqs.add(next);
      reference.add(next);
      next++;
    } else if (reference.size > 0) {
      const waiting = [...reference];
      const pick = step % 50_000 < 40_000 && waiting.length > 1
        ? waiting[1 + Math.floor(random() * (waiting.length - 1))]
        : waiting[Math.floor(random() * waiting.length)];
      seqs.delete(pick);
      reference.delete(pick);
    }
    assert.equal(seqs.oldest, oldestOf(reference, next), `step ${step}`);
  }
  assert.ok(seqs.windowSize >= reference.size);
});

Deno.test("numbers must be added in order; unknown or repeated settles are ignored", () => {
  const seqs = new InflightSeqs();
  assert.throws(() => seqs.add(2), RangeError);
  seqs.add(1);
  seqs.add(2);
  seqs.delete(5);
  seqs.delete(0);
  assert.equal(seqs.oldest, 1);
  seqs.delete(1);
  seqs.delete(1);
  assert.equal(seqs.oldest, 2);
  seqs.delete(2);
  assert.equal(seqs.oldest, 3);
  assert.equal(seqs.windowSize, 0);
});
