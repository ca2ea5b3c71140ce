/**
 * The increments a client has in flight, by sequence number, for `ackedBelow`: the oldest one
 * still waiting. Sequence numbers are taken in order (1, 2, 3, ...) and settle in any order.
 *
 * Cost model: a busy client adds and settles one per request, and a `Set` (insertion order gives
 * the oldest) pays a hash insert, a delete and an iterator per request. Here a ring of flags
 * covers the window from the oldest waiting number to the newest: adding and settling are an
 * array store, and the oldest moves forward past settled numbers. The ring doubles when the
 * window outgrows it (one call stuck while many newer ones settle) and is never shrunk.
 *
 * @module
 */

const CAPACITY_INITIAL = 1024;

/** Sequence numbers in flight; see the module documentation. */
export class InflightSeqs {
  // settled[seq & mask] is 1 for a number in the window that has settled.
  #settled = new Uint8Array(CAPACITY_INITIAL);
  #mask = CAPACITY_INITIAL - 1;
  // The window: the oldest number not settled (or #next when none waits), and one past the newest.
  #oldest = 1;
  #next = 1;

  /** How many numbers are in the window (waiting, or settled behind one that waits). */
  get windowSize(): number {
    return this.#next - this.#oldest;
  }

  /**
   * The oldest number still waiting; the next number to be added when none is. Every number
   * below it has settled.
   */
  get oldest(): number {
    return this.#oldest;
  }

  /** Adds `seq`, which must be the next number: one more than the last added (1 at first). */
  add(seq: number): void {
    if (seq !== this.#next) throw new RangeError(`Expected sequence ${this.#next}, got ${seq}`);
    if (this.#next - this.#oldest > this.#mask) this.#grow();
    this.#settled[seq & this.#mask] = 0;
    this.#next = seq + 1;
  }

  /** Settles `seq`; a number outside the window (never added, or settled) is ignored. */
  delete(seq: number): void {
    if (seq < this.#oldest || seq >= this.#next) return;
    const settled = this.#settled;
    const mask = this.#mask;
    settled[seq & mask] = 1;
    let oldest = this.#oldest;
    while (oldest < this.#next && settled[oldest & mask] === 1) oldest++;
    this.#oldest = oldest;
  }

  #grow(): void {
    const grown = new Uint8Array(this.#settled.length * 2);
    const mask = grown.length - 1;
    for (let seq = this.#oldest; seq < this.#next; seq++) {
      grown[seq & mask] = this.#settled[seq & this.#mask];
    }
    this.#settled = grown;
    this.#mask = mask;
  }
}
