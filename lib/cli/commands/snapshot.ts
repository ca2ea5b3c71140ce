/**
 * `counter snapshot`: makes one node (`--peer`) or every node of `--peers` write a snapshot of its
 * applied state now and compact its log below it.
 *
 * @module
 */

import type { SnapshotOptions } from "../args.ts";
import { errorLine } from "../output.ts";
import { type AdminCommandDeps, answerIndex, formatTable, runAdmin } from "./_admin.ts";
import { connectOptions, EXIT_FAILED, EXIT_OK, EXIT_UNKNOWN, outcomeOf } from "./_client.ts";

/**
 * Runs `counter snapshot` and returns the exit status: 0 success (on every node asked), 1 failed,
 * 3 outcome unknown (a node may still write the snapshot).
 *
 * @example Usage
 * ```ts
 * import { parseSnapshotArgs } from "../args.ts";
 * import { runSnapshot } from "./snapshot.ts";
 *
 * const code = await runSnapshot(parseSnapshotArgs(["--peer", "127.0.0.1:8081"]));
 * ```
 */
export async function runSnapshot(
  options: SnapshotOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  const one = options.peer;
  return await runAdmin(
    "snapshot",
    connectOptions(options),
    deps,
    async (client, io) => {
      if (one !== undefined) {
        // ---- Call into the service: that node alone, no redirects. ----
        const { data } = await client.admin("snapshot", {}, { peer: one });
        // When nothing was applied since the last snapshot, this is that snapshot's index.
        const snapshotIndex = answerIndex(data, "snapshotIndex", one);
        io.out(options.json ? JSON.stringify({ node: one, snapshotIndex }) : String(snapshotIndex));
        return EXIT_OK;
      }
      // Every node of --peers, at once; each answers for itself.
      const reports = await Promise.all(options.peers.map(async (node) => {
        try {
          const { data } = await client.admin("snapshot", {}, { peer: node });
          return { node, snapshotIndex: answerIndex(data, "snapshotIndex", node) };
        } catch (error) {
          let message = errorLine(error);
          if (message.startsWith(`${node}: `)) message = message.slice(node.length + 2);
          return { node, error: message, unknown: outcomeOf(error) === "unknown" };
        }
      }));
      if (options.json) {
        io.out(JSON.stringify({
          nodes: reports.map((r) =>
            "error" in r
              ? { node: r.node, error: r.error }
              : { node: r.node, snapshotIndex: r.snapshotIndex }
          ),
        }));
      } else {
        const rows = reports.map((r) =>
          "error" in r ? [r.node, `failed (${r.error})`] : [r.node, String(r.snapshotIndex)]
        );
        for (const line of formatTable([["NODE", "INDEX"], ...rows])) io.out(line);
      }
      if (reports.some((r) => "error" in r && r.unknown)) return EXIT_UNKNOWN;
      return reports.some((r) => "error" in r) ? EXIT_FAILED : EXIT_OK;
    },
    "outcome unknown: the node may still write the snapshot",
    options.json,
  );
}
