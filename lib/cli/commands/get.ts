/**
 * `counter get`: prints the counter's current value.
 *
 * @module
 */

import type { GetOptions } from "../args.ts";
import { formatValueLine } from "../output.ts";
import { type ClientCommandDeps, runRequest } from "./_client.ts";

/**
 * Runs `counter get` and returns the exit status: 0 success, 1 failed, 3 outcome unknown.
 *
 * @example Usage
 * ```ts
 * import { parseGetArgs } from "../args.ts";
 * import { runGet } from "./get.ts";
 *
 * const code = await runGet(parseGetArgs(["--json"]));
 * ```
 */
export async function runGet(options: GetOptions, deps: ClientCommandDeps = {}): Promise<number> {
  return await runRequest(
    "get",
    options,
    deps,
    // ---- Call into the service. ----
    (client) => client.get(),
    (result) => formatValueLine(result, options.json),
  );
}
