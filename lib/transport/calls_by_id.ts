/**
 * Values keyed by request id, for ids taken in order (1, 2, 3, ...) and removed in any order: the
 * calls a client connection has awaiting an answer.
 *
 * Cost model: a busy connection adds and removes one call per request, and a `Map` pays a hash
 * insert and delete (and rehashes as deleted entries pile up) each time. Here a ring covers the
 * window from the oldest id still held to the newest: adding, finding and removing are array
 * accesses, and the window's start moves forward past removed ids. The ring doubles when the
 * window outgrows it (one call waiting while many newer ones are answered) and is never shrunk.
 *
 * @module
 */

const CAPACITY_INITIAL = 1024;

/** Values by request id; see the module documentation. */
export class CallsById<T> {
  #ring: (T | undefined)[] = new Array(CAPACITY_INITIAL).fill(undefined);
  #mask = CAPACITY_INITIAL - 1;
  // The window: the oldest id held (or #next when none is), and one past the newest added.
  #oldest = 1;
  #next = 1;
  #size = 0;

  /** How many values are held. */
  get size(): number {
    return this.#size;
  }

  /** Adds `value` for `id`, which must be one more than the last id added (1 at first). */
  add(id: number, value: T): void {
    if (id !== this.#next) throw new RangeError(`Expected request id ${this.#next}, got ${id}`);
    if (this.#next - this.#oldest > this.#mask) this.#grow();
    this.#ring[id & this.#mask] = value;
    this.#next = id + 1;
    this.#size++;
  }

  /** The value of `id`, or undefined when there is none (never added, or removed). */
  get(id: number): T | undefined {
    if (id < this.#oldest || id >= this.#next) return undefined;
    return this.#ring[id & this.#mask];
  }

  /** Removes and returns the value of `id`; undefined when there is none. */
  delete(id: number): T | undefined {
    const value = this.get(id);
    if (value === undefined) return undefined;
    const ring = this.#ring;
    const mask = this.#mask;
    ring[id & mask] = undefined;
    this.#size--;
    let oldest = this.#oldest;
    while (oldest < this.#next && ring[oldest & mask] === undefined) oldest++;
    this.#oldest = oldest;
    return value;
  }

  /** Calls `visit` with every value held and its id, oldest first. */
  forEach(visit: (value: T, id: number) => void): void {
    for (let id = this.#oldest; id < this.#next; id++) {
      const value = this.#ring[id & this.#mask];
      if (value !== undefined) visit(value, id);
    }
  }

  /** Removes every value and returns them, oldest first. */
  takeAll(): T[] {
    const values: T[] = [];
    this.forEach((value) => values.push(value));
    this.#ring.fill(undefined);
    this.#oldest = this.#next;
    this.#size = 0;
    return values;
  }

  #grow(): void {
    const grown: (T | undefined)[] = new Array(this.#ring.length * 2).fill(undefined);
    const mask = grown.length - 1;
    for (let id = this.#oldest; id < this.#next; id++) {
      grown[id & mask] = this.#ring[id & this.#mask];
    }
    this.#ring = grown;
    this.#mask = mask;
  }
}
