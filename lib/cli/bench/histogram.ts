/**
 * A latency histogram in the style of HdrHistogram: log-linear buckets, fixed memory, and a
 * relative error under 1% at every magnitude.
 *
 * Values are whole microseconds. Values below {@linkcode EXACT_BELOW_US} each have their own
 * bucket; above that, every power-of-two range `[2^k, 2^(k+1))` is split into
 * {@linkcode SUB_BUCKETS} equal buckets of width `2^k / SUB_BUCKETS`, so a bucket's width is at
 * most 1/128 (0.78%) of any value in it. Up to {@linkcode HISTOGRAM_VALUE_US_MAX} (about 71
 * minutes, beyond the longest request deadline the CLI accepts) that is 3,328 counters, 26 KiB,
 * however many values are recorded: a benchmark's memory must not grow with its length.
 *
 * @example Usage
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 *
 * const histogram = new LatencyHistogram();
 * for (const us of [120, 130, 5_000]) histogram.record(us);
 * histogram.percentile(50); // 130
 * histogram.max; // 5000
 * ```
 *
 * @module
 */

/** Linear buckets per power of two; sets the precision (1/128 = 0.78%). */
export const SUB_BUCKETS = 128;

/** Values below this many microseconds are counted exactly, one bucket each. */
export const EXACT_BELOW_US: number = 2 * SUB_BUCKETS;

/** The largest value kept apart; larger values are counted in the last bucket (2^32 - 1 us). */
export const HISTOGRAM_VALUE_US_MAX: number = 2 ** 32 - 1;

const SUB_BUCKET_BITS = Math.log2(SUB_BUCKETS);
// log2(EXACT_BELOW_US): the first power of two split into linear buckets.
const FIRST_SPLIT_EXPONENT = SUB_BUCKET_BITS + 1;
const LAST_EXPONENT = 31;
const BUCKET_COUNT = EXACT_BELOW_US + (LAST_EXPONENT - FIRST_SPLIT_EXPONENT + 1) * SUB_BUCKETS;

/** The bucket holding `valueUs`, a whole number in `[0, HISTOGRAM_VALUE_US_MAX]`. */
function bucketOf(valueUs: number): number {
  if (valueUs < EXACT_BELOW_US) return valueUs;
  // 31 - clz32 is floor(log2) for values below 2^32.
  const exponent = 31 - Math.clz32(valueUs);
  const sub = Math.floor(valueUs / 2 ** (exponent - SUB_BUCKET_BITS)) - SUB_BUCKETS;
  return EXACT_BELOW_US + (exponent - FIRST_SPLIT_EXPONENT) * SUB_BUCKETS + sub;
}

/** The smallest value that falls in `bucket`. */
function bucketLowUs(bucket: number): number {
  if (bucket < EXACT_BELOW_US) return bucket;
  const offset = bucket - EXACT_BELOW_US;
  const exponent = FIRST_SPLIT_EXPONENT + Math.floor(offset / SUB_BUCKETS);
  const sub = offset % SUB_BUCKETS;
  return (SUB_BUCKETS + sub) * 2 ** (exponent - SUB_BUCKET_BITS);
}

/** The largest value that falls in `bucket`. */
function bucketHighUs(bucket: number): number {
  return bucket === BUCKET_COUNT - 1 ? HISTOGRAM_VALUE_US_MAX : bucketLowUs(bucket + 1) - 1;
}

/** A bounded-memory histogram of latencies in whole microseconds. */
export class LatencyHistogram {
  // Float64 rather than Uint32: counts stay exact up to 2^53, far past any run's length.
  readonly #counts = new Float64Array(BUCKET_COUNT);
  #count = 0;
  #sumUs = 0;
  #minUs = Infinity;
  #maxUs = 0;
  #clamped = 0;

  /** Number of values recorded. */
  get count(): number {
    return this.#count;
  }

  /** Smallest value recorded, exactly; null when empty. */
  get min(): number | null {
    return this.#count === 0 ? null : this.#minUs;
  }

  /** Largest value recorded, exactly (even beyond the last bucket); null when empty. */
  get max(): number | null {
    return this.#count === 0 ? null : this.#maxUs;
  }

  /** Mean of the values recorded; null when empty. */
  get mean(): number | null {
    return this.#count === 0 ? null : this.#sumUs / this.#count;
  }

  /** Values above {@linkcode HISTOGRAM_VALUE_US_MAX}, counted in the last bucket. */
  get clamped(): number {
    return this.#clamped;
  }

  /**
   * Records one value. Fractions are rounded to the nearest microsecond.
   *
   * @throws {RangeError} when `valueUs` is negative or not finite: a clock that runs backwards
   * is a bug to surface, not a latency to average in.
   */
  record(valueUs: number): void {
    if (!Number.isFinite(valueUs) || valueUs < 0) {
      throw new RangeError(`a latency must be a finite, non-negative number, got ${valueUs}`);
    }
    const rounded = Math.round(valueUs);
    const kept = Math.min(rounded, HISTOGRAM_VALUE_US_MAX);
    if (kept !== rounded) this.#clamped++;
    this.#counts[bucketOf(kept)]++;
    this.#count++;
    this.#sumUs += rounded;
    if (rounded < this.#minUs) this.#minUs = rounded;
    if (rounded > this.#maxUs) this.#maxUs = rounded;
  }

  /** Adds every value recorded in `other` to this histogram. */
  add(other: LatencyHistogram): void {
    if (other.#count === 0) return;
    for (let i = 0; i < BUCKET_COUNT; i++) this.#counts[i] += other.#counts[i];
    this.#count += other.#count;
    this.#sumUs += other.#sumUs;
    this.#clamped += other.#clamped;
    this.#minUs = Math.min(this.#minUs, other.#minUs);
    this.#maxUs = Math.max(this.#maxUs, other.#maxUs);
  }

  /**
   * The nearest-rank `p`th percentile (0 < p <= 100), or null when empty.
   *
   * The answer is the largest value of the bucket holding the exact percentile, capped at the
   * largest value recorded: it is never below the exact answer, and above it by less than 1%.
   */
  percentile(p: number): number | null {
    if (!(p > 0 && p <= 100)) throw new RangeError(`a percentile must be in (0, 100], got ${p}`);
    if (this.#count === 0) return null;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKET_COUNT; bucket++) {
      seen += this.#counts[bucket];
      if (seen >= rank) return Math.min(bucketHighUs(bucket), this.#maxUs);
    }
    // The counts add up to #count, so the loop returns before it ends.
    throw new Error("histogram counts do not add up to its count");
  }
}
