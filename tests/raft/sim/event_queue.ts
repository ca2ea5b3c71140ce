/**
 * The simulator's clock: a priority queue of events ordered by simulated time, ties broken by
 * insertion order so that a run never depends on the heap's internal layout.
 *
 * @module
 */

interface Slot<T> {
  time: number;
  seq: number;
  event: T;
}

/**
 * A binary min-heap of events keyed by (time, insertion sequence). Time is in whatever unit the
 * caller uses (the simulator uses microseconds).
 */
export class EventQueue<T> {
  #heap: Slot<T>[] = [];
  #seq = 0;
  #now = 0;

  /** Simulated time of the event most recently popped. */
  get now(): number {
    return this.#now;
  }

  /** Number of events waiting. */
  get size(): number {
    return this.#heap.length;
  }

  /** Schedules `event` at `time`, which must not lie in the past. */
  push(time: number, event: T): void {
    if (time < this.#now) throw new Error(`event scheduled in the past: ${time}`);
    const heap = this.#heap;
    heap.push({ time, seq: this.#seq++, event });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  /** Removes the earliest event and advances the clock to it; undefined when empty. */
  pop(): T | undefined {
    const heap = this.#heap;
    if (heap.length === 0) return undefined;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    this.#now = top.time;
    return top.event;
  }
}

function less<T>(a: Slot<T>, b: Slot<T>): boolean {
  return a.time < b.time || (a.time === b.time && a.seq < b.seq);
}
