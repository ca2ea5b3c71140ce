/**
 * `counter get`: prints the counter's current value.
 *
 * @module
 */

import type { GetOptions } from "../args.ts";
import { formatValueLine, jsonInteger } from "../output.ts";
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
    (client) => client.get({ consistency: options.consistency }),
    (result) => formatGetLine(result, options.consistency === "stale", options.json),
  );
}

/** Formats a read; a stale read says so, and which node it came from. */
function formatGetLine(
  result: { value: bigint; leader: string; node?: string },
  stale: boolean,
  json: boolean,
): string {
  if (!stale) return formatValueLine(result, json);
  const node = result.node ?? result.leader;
  if (!json) return `${result.value} (stale, from ${node})`;
  return `{"value":${jsonInteger(result.value)},"leader":${JSON.stringify(result.leader)},` +
    `"stale":true,"node":${JSON.stringify(node)}}`;
}
