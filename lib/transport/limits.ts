/**
 * Resource limits of a node's listening side that must hold against a stranger on the network:
 * how long a connection may sit idle, how long a started frame may take to arrive, and how many
 * bytes all connections together may hold in partial frames and queued replies. See
 * docs/SECURITY.md for the threat model they serve.
 *
 * @module
 */

import { setImmediate } from "node:timers";

/** Default: a connection that sends nothing for 5 minutes (and awaits no reply) is closed. */
export const IDLE_TIMEOUT_MS_DEFAULT = 300_000;

/** Default: a frame must arrive whole within 10 s of its first byte (slowloris). */
export const FRAME_TIMEOUT_MS_DEFAULT = 10_000;

/** Default bound on bytes all connections hold in partial frames and queued replies: 64 MiB. */
export const HELD_BYTES_MAX_DEFAULT: number = 64 * 1024 * 1024;

/**
 * Default: client frames one connection may have handled before it yields to the event loop,
 * so that timers (heartbeats) and other connections get their turn. A request batch counts as
 * its requests.
 */
export const CLIENT_FRAMES_PER_TURN_DEFAULT = 64;

/**
 * Bytes a connection may hold (a partial frame, a reply queue) without being counted as a
 * large holder: over the budget, only connections above this are cut off.
 */
export const HELD_BYTES_SMALL = 64 * 1024;

/**
 * A byte budget shared by every connection of a server. Connections charge what they hold and
 * release it when it is gone; {@linkcode exceeded} tells whether large holders must be cut off.
 */
export class ByteBudget {
  /** The bound, in bytes. */
  readonly limitBytes: number;
  #usedBytes = 0;

  /** Creates a budget of `limitBytes` (a positive integer). */
  constructor(limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) {
      throw new RangeError(`Byte budget must be a positive integer, got ${limitBytes}`);
    }
    this.limitBytes = limitBytes;
  }

  /** Bytes charged now. */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /** True when more than the limit is charged. */
  get exceeded(): boolean {
    return this.#usedBytes > this.limitBytes;
  }

  /** Adds `deltaBytes` (negative to release). */
  charge(deltaBytes: number): void {
    this.#usedBytes += deltaBytes;
  }
}

/**
 * Resolves on a later turn of the event loop, after due timers and ready I/O have had theirs.
 * (`setImmediate` rather than `setTimeout(0)`, which nested timers clamp to about 4 ms.)
 */
export function yieldTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
