/**
 * Progress of a long `counter bench` run, on stderr: a bar redrawn in place on a terminal, one
 * plain line a second otherwise (a CI log cannot take carriage returns). A run shorter than a
 * second shows nothing, so quick runs and their captured output stay clean.
 *
 * @module
 */

/** Where progress goes; by default stderr. */
export interface ProgressSink {
  /** Whether the sink is a terminal, which can redraw a line in place. */
  isTerminal: boolean;
  /** Writes `text` as is, without adding a newline. */
  write(text: string): void;
}

/** How far a run has to go: a number of requests, or a length of time. */
export type ProgressGoal = { ops: number } | { durationMs: number };

/** What the run has done so far. */
export interface ProgressCounts {
  /** Requests answered. */
  done: number;
  /** Requests that failed or whose outcome is unknown. */
  errors: number;
}

/** Nothing is shown before a run has lasted this long. */
export const PROGRESS_DELAY_MS = 1000;

/** Interval between redraws of the bar on a terminal. */
export const PROGRESS_BAR_INTERVAL_MS = 200;

/** Interval between plain progress lines. */
export const PROGRESS_LINE_INTERVAL_MS = 1000;

const BAR_WIDTH = 24;
// Carriage return, then erase to the end of the line: redraws the bar in place.
const REDRAW = "\r";
const ERASE_LINE = "\x1b[K";

/** The fraction of `goal` done, from 0 to 1. */
export function progressFraction(goal: ProgressGoal, done: number, elapsedMs: number): number {
  const fraction = "ops" in goal ? done / goal.ops : elapsedMs / goal.durationMs;
  return Math.min(1, Math.max(0, fraction));
}

function position(goal: ProgressGoal, done: number, elapsedMs: number): string {
  const seconds = (elapsedMs / 1000).toFixed(1);
  return "ops" in goal
    ? `${done}/${goal.ops} ops, ${seconds} s`
    : `${seconds}/${(goal.durationMs / 1000).toFixed(0)} s, ${done} ops`;
}

/**
 * Renders the one-line bar shown on a terminal.
 *
 * @example Usage
 * ```ts
 * import { formatProgressBar } from "./progress.ts";
 *
 * formatProgressBar({ ops: 100 }, { done: 50, errors: 0 }, 1500, 33.3);
 * // "[############............]  50% 50/100 ops, 1.5 s, 33 ops/s, 0 errors"
 * ```
 */
export function formatProgressBar(
  goal: ProgressGoal,
  counts: ProgressCounts,
  elapsedMs: number,
  opsPerSec: number,
): string {
  const fraction = progressFraction(goal, counts.done, elapsedMs);
  const filled = Math.floor(fraction * BAR_WIDTH);
  const bar = "#".repeat(filled) + ".".repeat(BAR_WIDTH - filled);
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  return `[${bar}] ${percent} ${position(goal, counts.done, elapsedMs)},` +
    ` ${opsPerSec.toFixed(0)} ops/s, ${counts.errors} errors`;
}

/**
 * Renders one plain progress line, for a log.
 *
 * @example Usage
 * ```ts
 * import { formatProgressLine } from "./progress.ts";
 *
 * formatProgressLine({ durationMs: 5000 }, { done: 900, errors: 1 }, 2000, 450);
 * // "counter bench: 2.0/5 s, 900 ops, 450 ops/s, 1 errors"
 * ```
 */
export function formatProgressLine(
  goal: ProgressGoal,
  counts: ProgressCounts,
  elapsedMs: number,
  opsPerSec: number,
): string {
  return `counter bench: ${position(goal, counts.done, elapsedMs)},` +
    ` ${opsPerSec.toFixed(0)} ops/s, ${counts.errors} errors`;
}

/** Options of {@linkcode ProgressReporter}. */
export interface ProgressReporterOptions {
  /** Where to write. */
  sink: ProgressSink;
  /** How far the run has to go. */
  goal: ProgressGoal;
  /** Reads the run's counts; called at every tick. */
  read: () => ProgressCounts;
  /** The clock. Default `performance.now`. */
  now?: () => number;
}

/**
 * Shows a run's progress while it lasts. `start()` begins a timer that calls `tick()`; `stop()`
 * ends it and erases the bar, so that the report that follows starts on a clean line.
 *
 * The rate shown is that of the last interval, not the average since the start: a stall shows
 * at once instead of being smoothed away.
 */
export class ProgressReporter {
  readonly #sink: ProgressSink;
  readonly #goal: ProgressGoal;
  readonly #read: () => ProgressCounts;
  readonly #now: () => number;
  #startMs = 0;
  #lastMs = 0;
  #lastDone = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  #drawn = false;

  /** Creates a reporter; nothing is shown until `start()`. */
  constructor(options: ProgressReporterOptions) {
    this.#sink = options.sink;
    this.#goal = options.goal;
    this.#read = options.read;
    this.#now = options.now ?? performance.now.bind(performance);
  }

  /** Marks the run's start and begins the timer. */
  start(): void {
    if (this.#timer !== undefined) throw new Error("progress already started");
    this.#startMs = this.#lastMs = this.#now();
    this.#lastDone = 0;
    const intervalMs = this.#sink.isTerminal ? PROGRESS_BAR_INTERVAL_MS : PROGRESS_LINE_INTERVAL_MS;
    this.#timer = setInterval(() => this.tick(), intervalMs);
  }

  /** Shows the progress now, if the run has lasted long enough to show any. */
  tick(): void {
    const nowMs = this.#now();
    const elapsedMs = nowMs - this.#startMs;
    if (elapsedMs < PROGRESS_DELAY_MS) return;
    const counts = this.#read();
    const intervalMs = nowMs - this.#lastMs;
    const opsPerSec = intervalMs > 0 ? ((counts.done - this.#lastDone) * 1000) / intervalMs : 0;
    this.#lastMs = nowMs;
    this.#lastDone = counts.done;
    if (this.#sink.isTerminal) {
      this.#sink.write(
        REDRAW + formatProgressBar(this.#goal, counts, elapsedMs, opsPerSec) + ERASE_LINE,
      );
      this.#drawn = true;
    } else {
      this.#sink.write(formatProgressLine(this.#goal, counts, elapsedMs, opsPerSec) + "\n");
    }
  }

  /** Ends the timer and erases the bar, if one was drawn. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    if (this.#drawn) this.#sink.write(REDRAW + ERASE_LINE);
    this.#drawn = false;
  }
}

const encoder = new TextEncoder();

/** A sink that writes to stderr, completely, and knows whether stderr is a terminal. */
export function stderrSink(): ProgressSink {
  return {
    isTerminal: Deno.stderr.isTerminal(),
    write(text: string): void {
      const bytes = encoder.encode(text);
      let offset = 0;
      while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
    },
  };
}
