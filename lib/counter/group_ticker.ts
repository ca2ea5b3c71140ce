/**
 * One timer for every group a host runs, instead of a timer (or three) per group.
 *
 * Every `tickMs` the ticker reads the clock once and calls each group's `tick(nowMs)`; each
 * group's `slowTick(nowMs)` (commit floor flush, periodic snapshot) runs once per `slowTicks`
 * ticks, the groups spread over those ticks so that no tick does them all. A timer callback that
 * runs late (a paused process, a busy event loop) is one tick: each group catches up the Raft
 * ticks that real time says are due (see `CounterNode.tick`), so nothing here counts them.
 *
 * The ticker itself is plain: `runTick()` does one tick and is what tests call, with a clock of
 * their own; `start()` puts it on a `setInterval`.
 *
 * @module
 */

/** What the ticker drives: a hosted group. */
export interface TickedGroup {
  /** One tick; `nowMs` is the monotonic clock read once for all groups. */
  tick(nowMs: number): void;
  /** Once per `slowTicks` ticks. */
  slowTick(nowMs: number): void;
}

/** Settings of a {@linkcode GroupTicker}. */
export interface GroupTickerOptions {
  /** Period of a tick. */
  tickMs: number;
  /** Every group's `slowTick` runs once per this many ticks. */
  slowTicks: number;
  /** Called once per tick before the groups (the host's own duties). */
  onTick?: (nowMs: number, tickNumber: number) => void;
  /** Monotonic clock. Default `performance.now`. */
  now?: () => number;
}

/** Drives every group of a host from one timer; see the module doc. */
export class GroupTicker<G extends TickedGroup = TickedGroup> {
  readonly #groups = new Set<G>();
  readonly #tickMs: number;
  readonly #slowTicks: number;
  readonly #onTick: ((nowMs: number, tickNumber: number) => void) | undefined;
  readonly #now: () => number;
  #ticks = 0;
  #timer: ReturnType<typeof setInterval> | undefined;

  /** Creates a stopped ticker; see {@linkcode GroupTickerOptions}. */
  constructor(options: GroupTickerOptions) {
    if (!(options.tickMs > 0)) throw new RangeError("tickMs must be positive");
    if (!Number.isSafeInteger(options.slowTicks) || options.slowTicks < 1) {
      throw new RangeError("slowTicks must be a positive integer");
    }
    this.#tickMs = options.tickMs;
    this.#slowTicks = options.slowTicks;
    this.#onTick = options.onTick;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Drives `group` from the next tick on. */
  add(group: G): void {
    this.#groups.add(group);
  }

  /** Stops driving `group`. */
  delete(group: G): void {
    this.#groups.delete(group);
  }

  /** The groups driven now. */
  get size(): number {
    return this.#groups.size;
  }

  /** Ticks done so far. */
  get ticks(): number {
    return this.#ticks;
  }

  /**
   * One tick: the host's duties, every group's `tick`, and the `slowTick` of the groups whose
   * turn it is (group k of the set, in insertion order, when k ≡ tick number mod `slowTicks`;
   * a group added or removed meanwhile shifts the turns of those after it once).
   */
  runTick(): void {
    const nowMs = this.#now();
    const tick = this.#ticks++;
    this.#onTick?.(nowMs, tick);
    const slot = tick % this.#slowTicks;
    let k = 0;
    for (const group of this.#groups) {
      group.tick(nowMs);
      if (k++ % this.#slowTicks === slot) group.slowTick(nowMs);
    }
  }

  /** Starts the timer (idempotent). */
  start(): void {
    this.#timer ??= setInterval(() => this.runTick(), this.#tickMs);
  }

  /** Stops the timer (idempotent); the groups stay registered. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
