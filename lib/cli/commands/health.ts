/**
 * `counter health`: asks every node of `--peers` for its status and prints one line per node,
 * healthy or not and why, as `etcdctl endpoint health` does. A node is healthy when it knows a
 * leader and has applied within a bound of its commit index (the `/health` rule of
 * `serve --metrics-addr`).
 *
 * @module
 */

import { judgeHealth } from "../../counter/metrics.ts";
import type { HealthOptions } from "../args.ts";
import { type AdminCommandDeps, runAdmin } from "./_admin.ts";
import { connectOptions, EXIT_FAILED, EXIT_OK } from "./_client.ts";
import { collectStatuses, type NodeReport } from "./status.ts";

/** One node's verdict. */
export interface EndpointHealth {
  /** The node asked. */
  node: string;
  /** True when healthy. */
  healthy: boolean;
  /** Why, in one line. */
  reason: string;
  /** Milliseconds the status request took. */
  tookMs: number;
}

/** The verdict on one status report. */
export function endpointHealth(report: NodeReport, tookMs: number): EndpointHealth {
  if (!report.ok) {
    const what = report.reachable ? "failed" : "unreachable";
    return { node: report.node, healthy: false, reason: `${what} (${report.error})`, tookMs };
  }
  const verdict = judgeHealth(report.status);
  return { node: report.node, healthy: verdict.healthy, reason: verdict.reason, tookMs };
}

/** The text line of one endpoint, as `etcdctl endpoint health` words it. */
export function formatEndpointHealth(h: EndpointHealth): string {
  return `${h.node} is ${h.healthy ? "healthy" : "unhealthy"}: ${h.reason} (took ${h.tookMs} ms)`;
}

/**
 * Runs `counter health` and returns the exit status: 0 when every node is healthy, 1 otherwise.
 *
 * @example Usage
 * ```ts
 * import { parseHealthArgs } from "../args.ts";
 * import { runHealth } from "./health.ts";
 *
 * const code = await runHealth(parseHealthArgs(["--peers", "127.0.0.1:8081"]));
 * ```
 */
export async function runHealth(
  options: HealthOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  return await runAdmin("health", connectOptions(options), deps, async (client, io) => {
    const results = await Promise.all(options.peers.map(async (node) => {
      const startMs = performance.now();
      const [report] = await collectStatuses(client, [node], options.timeoutMs);
      return endpointHealth(report, Math.round(performance.now() - startMs));
    }));
    if (options.json) io.out(JSON.stringify({ endpoints: results }));
    else for (const result of results) io.out(formatEndpointHealth(result));
    return results.every((r) => r.healthy) ? EXIT_OK : EXIT_FAILED;
  });
}
