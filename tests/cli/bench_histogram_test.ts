/**
 * The latency histogram of `counter bench`, against exact percentiles of sorted arrays.
 */

import assert from "node:assert/strict";
import {
  EXACT_BELOW_US,
  HISTOGRAM_VALUE_US_MAX,
  LatencyHistogram,
  SUB_BUCKETS,
} from "../../lib/cli/bench/histogram.ts";

/** A small seeded generator (mulberry32), so that a failure replays exactly. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** The nearest-rank percentile of ascending `sorted`. */
function exactPercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

const PERCENTILES = [0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100];

/** Checks every percentile of `histogram` against the exact one of `values`. */
function assertMatchesReference(histogram: LatencyHistogram, values: number[]): void {
  const sorted = values.map(Math.round).sort((a, b) => a - b);
  assert.equal(histogram.count, sorted.length);
  assert.equal(histogram.min, sorted[0]);
  assert.equal(histogram.max, sorted[sorted.length - 1]);
  for (const p of PERCENTILES) {
    const exact = exactPercentile(sorted, p);
    const estimate = histogram.percentile(p)!;
    // Never below the exact value, and above it by less than one bucket: 1/128 of it.
    assert.ok(estimate >= exact, `p${p}: ${estimate} < exact ${exact}`);
    assert.ok(
      estimate - exact <= exact / SUB_BUCKETS,
      `p${p}: ${estimate} is more than 1/${SUB_BUCKETS} above exact ${exact}`,
    );
    assert.ok(estimate - exact <= exact * 0.01, `p${p}: off by more than 1%`);
  }
}

Deno.test("histogram percentiles are within 1% of the exact ones on random data", () => {
  const distributions: [string, (next: () => number) => number][] = [
    ["uniform below 300 us", (next) => next() * 300],
    ["uniform up to 50 ms", (next) => next() * 50_000],
    // Spans 1 us to 100 s, every bucket size the histogram has.
    ["log-uniform", (next) => Math.exp(next() * Math.log(1e8))],
    // A latency-like shape: a body near 2 ms and a long tail.
    ["body and tail", (next) => next() < 0.98 ? 1500 + next() * 1000 : 10_000 + next() * 1e6],
  ];
  for (const [seed, [name, draw]] of distributions.entries()) {
    for (const count of [1, 7, 1000, 100_000]) {
      const next = random(seed * 1000 + count);
      const values = Array.from({ length: count }, () => draw(next));
      const histogram = new LatencyHistogram();
      for (const value of values) histogram.record(value);
      try {
        assertMatchesReference(histogram, values);
      } catch (error) {
        throw new Error(`${name}, ${count} values: ${(error as Error).message}`);
      }
    }
  }
});

Deno.test("histogram counts small values exactly", () => {
  const histogram = new LatencyHistogram();
  for (let us = 0; us < EXACT_BELOW_US; us++) histogram.record(us);
  for (let us = 0; us < EXACT_BELOW_US; us++) {
    const p = ((us + 1) / EXACT_BELOW_US) * 100;
    assert.equal(histogram.percentile(p), us);
  }
});

Deno.test("histogram buckets are right at powers of two", () => {
  for (let exponent = 8; exponent < 32; exponent++) {
    for (const value of [2 ** exponent - 1, 2 ** exponent, 2 ** exponent + 1]) {
      const histogram = new LatencyHistogram();
      histogram.record(value);
      // A larger value, so that the cap at the max cannot hide a wrong bucket.
      histogram.record(HISTOGRAM_VALUE_US_MAX);
      const estimate = histogram.percentile(50)!;
      assert.ok(estimate >= value && estimate - value <= value / SUB_BUCKETS, `${value}`);
      // The bucket of 2^k starts at 2^k: it is reported exactly when alone in its bucket.
      if (value === 2 ** exponent - 1) assert.equal(estimate, value);
    }
  }
});

Deno.test("histogram rounds fractions, and keeps the max exact beyond its range", () => {
  const histogram = new LatencyHistogram();
  histogram.record(1.4);
  histogram.record(1.6);
  assert.equal(histogram.percentile(50), 1);
  assert.equal(histogram.percentile(100), 2);
  histogram.record(HISTOGRAM_VALUE_US_MAX * 2);
  assert.equal(histogram.clamped, 1);
  assert.equal(histogram.max, HISTOGRAM_VALUE_US_MAX * 2);
  assert.equal(histogram.percentile(100), HISTOGRAM_VALUE_US_MAX);
  assert.equal(histogram.count, 3);
});

Deno.test("histogram rejects negative and non-finite values, and bad percentiles", () => {
  const histogram = new LatencyHistogram();
  assert.throws(() => histogram.record(-1), RangeError);
  assert.throws(() => histogram.record(NaN), RangeError);
  assert.throws(() => histogram.record(Infinity), RangeError);
  assert.equal(histogram.count, 0);
  assert.equal(histogram.percentile(50), null);
  assert.equal(histogram.max, null);
  assert.equal(histogram.mean, null);
  assert.throws(() => histogram.percentile(0), RangeError);
  assert.throws(() => histogram.percentile(100.5), RangeError);
});

Deno.test("adding histograms is the same as recording every value in one", () => {
  const next = random(42);
  const values = Array.from({ length: 5000 }, () => Math.exp(next() * Math.log(1e7)));
  const left = new LatencyHistogram();
  const right = new LatencyHistogram();
  const whole = new LatencyHistogram();
  values.forEach((value, i) => {
    (i % 3 === 0 ? left : right).record(value);
    whole.record(value);
  });
  left.add(right);
  left.add(new LatencyHistogram());
  assert.equal(left.count, whole.count);
  assert.equal(left.min, whole.min);
  assert.equal(left.max, whole.max);
  assert.equal(left.mean, whole.mean);
  for (const p of PERCENTILES) assert.equal(left.percentile(p), whole.percentile(p));
  assertMatchesReference(left, values);
});
