/**
 * Cluster time: the clock a leader stamps increments with, and the only clock by which the state
 * machine expires idle client sessions.
 *
 * No wall clock is involved. A node that starts leading in a term takes the newest stamp it holds
 * as its base and adds the time elapsed since, as measured by its monotonic clock
 * (`performance.now()`); every stamp is also at least every stamp the node has seen in the log. So
 * stamps never go backwards along one leader's proposals, a new leader continues from the stamps
 * it holds, a wall-clock step or a leader whose wall clock is an hour ahead changes nothing, and
 * cluster time never runs faster than the leaders' monotonic clocks: a session idle for an hour
 * of cluster time was idle for at least about an hour of real time. (It may run slower: the time
 * between the newest stamp a new leader holds and its first proposal is not counted, which only
 * delays expiry.)
 *
 * The state machine stays deterministic: it reads stamps from entries only.
 *
 * @module
 */

/** Source of cluster time for one node; see the module documentation. */
export class ClusterClock {
  readonly #monotonicMs: () => number;
  /** Newest stamp seen in the log (recovered, persisted, applied) or handed out. */
  #newestMs = 0;
  /** Term in which `#baseMs` was taken; -1 before the first stamp. */
  #term = -1;
  #baseMs = 0;
  /** Monotonic reading when `#baseMs` was taken. */
  #baseAtMs = 0;

  /** A clock reading elapsed time from `monotonicMs` (default `performance.now`). */
  constructor(monotonicMs: () => number = () => performance.now()) {
    this.#monotonicMs = monotonicMs;
  }

  /** The newest stamp seen or handed out so far (ms of cluster time). */
  get newestMs(): number {
    return this.#newestMs;
  }

  /** Notes a stamp found in the log: later stamps will not be below it. */
  observe(stampMs: number): void {
    if (stampMs > this.#newestMs) this.#newestMs = stampMs;
  }

  /**
   * The stamp for an entry this node proposes now as the leader of `term`. The first call in a
   * term takes the newest stamp seen as the base of the term.
   */
  stamp(term: number): number {
    const nowMs = this.#monotonicMs();
    if (term !== this.#term) {
      this.#term = term;
      this.#baseMs = this.#newestMs;
      this.#baseAtMs = nowMs;
    }
    // A monotonic clock never goes back; the guard keeps a misbehaving one from doing harm.
    const elapsedMs = Math.max(0, Math.floor(nowMs - this.#baseAtMs));
    const stampMs = Math.max(this.#newestMs, this.#baseMs + elapsedMs);
    this.#newestMs = stampMs;
    return stampMs;
  }
}
