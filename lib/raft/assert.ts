/**
 * Invariant checks for the Raft core. A broken invariant means a bug that could corrupt the
 * replicated state, so it throws at once instead of carrying on.
 *
 * @module
 */

/** Thrown when one of the core's invariants does not hold. */
export class InvariantError extends Error {
  /** Creates the error with a message naming the broken invariant. */
  constructor(message: string) {
    super(`Raft invariant violated: ${message}`);
    this.name = "InvariantError";
  }
}

/** Throws {@linkcode InvariantError} with `message` unless `condition` holds. */
export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
