/**
 * A monotonic clock read at most once per run of synchronous code.
 *
 * The server handles requests in bursts: one network read carries dozens of requests, one
 * committed entry answers dozens of clients, and each would otherwise read the clock for its
 * arrival time, its deadline and its latency. {@linkcode turnNowMs} reads `performance.now()`
 * on its first call and hands back that reading until the next microtask checkpoint (it
 * queues a microtask that forgets it), so a burst costs one clock read.
 *
 * The reading can be behind real time by the synchronous work done since it was taken (plus
 * the microtasks queued before it), never by time spent waiting: no I/O or timer can run
 * in between. That is fine for latency histograms at millisecond resolution and request
 * deadlines of seconds. It is not for a decision that must see a process pause at once (a
 * leader lease): read `performance.now()` there.
 *
 * @module
 */

let cachedMs = 0;
let cached = false;
const forget = () => {
  cached = false;
};

/** `performance.now()` as read first in the current run of synchronous code; see the module doc. */
export function turnNowMs(): number {
  if (!cached) {
    cachedMs = performance.now();
    cached = true;
    queueMicrotask(forget);
  }
  return cachedMs;
}
