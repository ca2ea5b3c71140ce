/**
 * One timer for every group a host runs, instead of a timer (or three) per group.
 *
 * Each tick the ticker reads the clock once and calls each group's `tick(nowMs)`, which says
 * whether the group is awake. Every group's `slowTick(nowMs)` (commit floor flush, periodic
 * snapshot) runs about once per `slowMs`, the groups taken round-robin a slice per tick so that
 * no tick does them all. While some group is awake the ticks come every `tickMs`; once a tick
 * finds every group quiet they come every `idleTickMs` (a quiet group has nothing to do on a
 * tick; a process of quiet groups then wakes 10 times a second, not 100), until
 * {@linkcode GroupTicker.hurry} (a group got work) brings the next tick forward. A tick that
 * runs late (a paused process, a busy event loop) is one tick: each group catches up the Raft
 * ticks real time says are due (see `CounterNode.tick`), so nothing here counts them.
 *
 * The ticker itself is plain: `runTick()` does one tick and is what tests call, with a clock of
 * their own; `start()` runs it on timers.
 *
 * @module
 */

/** What the ticker drives: a hosted group. */
export interface TickedGroup {
  /** One tick; `nowMs` is the monotonic clock read once for all groups. True: awake. */
  tick(nowMs: number): boolean;
  /** About once per `slowMs`. */
  slowTick(nowMs: number): void;
}

/** Settings of a {@linkcode GroupTicker}. */
export interface GroupTickerOptions {
  /** Period of a tick while some group is awake. */
  tickMs: number;
  /** Period of a tick while every group is quiet (at least `tickMs`). Default `tickMs`. */
  idleTickMs?: number;
  /** Every group's `slowTick` runs about once per this long. */
  slowMs: number;
  /** Called once per tick before the groups (the host's own duties). */
  onTick?: (nowMs: number) => void;
  /** Monotonic clock. Default `performance.now`. */
  now?: () => number;
}

/** Drives every group of a host from one timer; see the module doc. */
export class GroupTicker<G extends TickedGroup = TickedGroup> {
  /** The groups, in the order their slow ticks come round. */
  #groups: G[] = [];
  readonly #tickMs: number;
  readonly #idleTickMs: number;
  readonly #slowMs: number;
  readonly #onTick: ((nowMs: number) => void) | undefined;
  readonly #now: () => number;
  #ticks = 0;
  /** Next group whose slow tick comes, and the fraction of a slow tick owed. */
  #slowCursor = 0;
  #slowOwed = 0;
  #lastTickMs: number | null = null;
  #allQuiet = false;
  #running = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When the scheduled tick is due (monotonic ms). */
  #dueMs = 0;

  /** Creates a stopped ticker; see {@linkcode GroupTickerOptions}. */
  constructor(options: GroupTickerOptions) {
    if (!(options.tickMs > 0)) throw new RangeError("tickMs must be positive");
    const idleTickMs = options.idleTickMs ?? options.tickMs;
    if (!(idleTickMs >= options.tickMs)) throw new RangeError("idleTickMs must be >= tickMs");
    if (!(options.slowMs > 0)) throw new RangeError("slowMs must be positive");
    this.#tickMs = options.tickMs;
    this.#idleTickMs = idleTickMs;
    this.#slowMs = options.slowMs;
    this.#onTick = options.onTick;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Drives `group` from the next tick on. */
  add(group: G): void {
    if (!this.#groups.includes(group)) this.#groups.push(group);
    this.hurry();
  }

  /** Stops driving `group`. */
  delete(group: G): void {
    const k = this.#groups.indexOf(group);
    if (k < 0) return;
    this.#groups.splice(k, 1);
    if (this.#slowCursor > k) this.#slowCursor--;
  }

  /** The groups driven now. */
  get size(): number {
    return this.#groups.length;
  }

  /** Ticks done so far. */
  get ticks(): number {
    return this.#ticks;
  }

  /** True when the last tick found every group quiet (the next comes after `idleTickMs`). */
  get idle(): boolean {
    return this.#allQuiet;
  }

  /**
   * One tick: the host's duties, every group's `tick`, and the slow ticks owed (the groups'
   * count times the time since the last tick over `slowMs`, at most one round of them).
   */
  runTick(): void {
    const nowMs = this.#now();
    this.#ticks++;
    this.#onTick?.(nowMs);
    const groups = this.#groups;
    let awake = false;
    for (let k = 0; k < groups.length; k++) {
      if (groups[k].tick(nowMs)) awake = true;
    }
    this.#allQuiet = !awake;
    const elapsedMs = this.#lastTickMs === null ? 0 : nowMs - this.#lastTickMs;
    this.#lastTickMs = nowMs;
    this.#slowOwed = Math.min(
      groups.length,
      this.#slowOwed + groups.length * Math.max(0, elapsedMs) / this.#slowMs,
    );
    while (this.#slowOwed >= 1 && groups.length > 0) {
      this.#slowOwed--;
      if (this.#slowCursor >= groups.length) this.#slowCursor = 0;
      groups[this.#slowCursor++].slowTick(nowMs);
    }
  }

  /**
   * A group has work (a message, a request, a wake-up): the next tick comes within `tickMs`
   * rather than `idleTickMs`. Cheap when it already does.
   */
  hurry(): void {
    if (!this.#allQuiet) return;
    this.#allQuiet = false;
    if (!this.#running) return;
    if (this.#dueMs - this.#now() > this.#tickMs) this.#schedule(this.#tickMs);
  }

  /** Starts the timers (idempotent). */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule(this.#tickMs);
  }

  /** Stops the timers (idempotent); the groups stay registered. */
  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#dueMs = this.#now() + delayMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#running) return;
      try {
        this.runTick();
      } finally {
        if (this.#running) this.#schedule(this.#allQuiet ? this.#idleTickMs : this.#tickMs);
      }
    }, delayMs);
  }
}
