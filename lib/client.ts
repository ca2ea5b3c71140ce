/**
 * The public client library of `counter`: talk to a counter group from your own Deno program.
 *
 * {@linkcode CounterClient} finds the leader itself, follows redirects, retries with backoff until
 * the call's deadline, and makes retried increments exactly-once (each increment carries the
 * client's id and a sequence number). A call that does not succeed throws
 * {@linkcode CounterError}, whose `outcome` says whether it certainly had no effect (`"failed"`)
 * or may have been applied (`"unknown"`). Reads take a {@linkcode Consistency} level. One
 * client serves every group its nodes host (`counter serve --groups`): `client.group(name)` is a
 * {@linkcode CounterGroupClient} over the same connections, with that group's own leader.
 *
 * This module only re-exports `lib/client/client.ts`; import it rather than the internal path.
 *
 * @example Increment, read, handle errors, close
 * ```ts
 * import { CounterClient, CounterError } from "./client.ts";
 *
 * const client = new CounterClient({
 *   peers: ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"],
 *   timeoutMs: 5000,
 * });
 * try {
 *   const { value, leader } = await client.incrementAndGet(5n);
 *   console.log(`now ${value} (leader ${leader})`);
 *   const read = await client.get({ consistency: "lease" });
 *   console.log(`read ${read.value}`);
 * } catch (err) {
 *   if (err instanceof CounterError && err.outcome === "unknown") {
 *     console.error(`may or may not have been applied: ${err.message}`);
 *   } else {
 *     throw err;
 *   }
 * } finally {
 *   await client.close();
 * }
 * ```
 *
 * @module
 */

export {
  type AdminOptions,
  CONSISTENCIES,
  type Consistency,
  CounterClient,
  type CounterClientOptions,
  CounterError,
  CounterGroupClient,
  type CounterValue,
  type GetOptions,
  type GroupOption,
  type Outcome,
} from "./client/client.ts";
