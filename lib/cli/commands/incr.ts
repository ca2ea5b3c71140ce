/**
 * `counter incr DELTA`: adds DELTA to the counter and prints the new value.
 *
 * @module
 */

import type { IncrOptions } from "../args.ts";
import { formatValueLine } from "../output.ts";
import { type ClientCommandDeps, runRequest } from "./_client.ts";

/**
 * Runs `counter incr` and returns the exit status: 0 success, 1 failed and certainly not
 * applied, 3 outcome unknown.
 *
 * @example Usage
 * ```ts
 * import { parseIncrArgs } from "../args.ts";
 * import { runIncr } from "./incr.ts";
 *
 * const code = await runIncr(parseIncrArgs(["5"]));
 * ```
 */
export async function runIncr(options: IncrOptions, deps: ClientCommandDeps = {}): Promise<number> {
  return await runRequest(
    "incr",
    options,
    deps,
    // ---- Call into the service. ----
    (client) => client.incrementAndGet(options.delta),
    (result) => formatValueLine(result, options.json),
  );
}
