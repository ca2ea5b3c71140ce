/**
 * Runs async operations one at a time, in call order.
 *
 * @module
 */

/** A FIFO async lock: each `run` starts after every earlier one settles. */
export class Mutex {
  #tail: Promise<void> = Promise.resolve();

  /** Runs `fn` after all earlier calls have settled; resolves or rejects with its result. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.#tail.then(fn);
    // A failed operation must not block the ones after it; its caller sees the rejection.
    this.#tail = result.then(() => {}, () => {});
    return result;
  }
}
