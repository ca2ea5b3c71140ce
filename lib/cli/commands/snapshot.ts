/**
 * `counter snapshot --peer HOST:PORT`: makes one node write a snapshot of its applied state now
 * and compact its log below it.
 *
 * @module
 */

import type { SnapshotOptions } from "../args.ts";
import { type AdminCommandDeps, answerIndex, runAdmin } from "./_admin.ts";
import { connectOptions, EXIT_OK } from "./_client.ts";

/**
 * Runs `counter snapshot` and returns the exit status: 0 success, 1 failed, 3 outcome unknown
 * (the node may still write the snapshot).
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
  return await runAdmin(
    "snapshot",
    connectOptions(options),
    deps,
    async (client, io) => {
      // ---- Call into the service: that node alone, no redirects. ----
      const { data } = await client.admin("snapshot", {}, { peer: options.peer });
      // When nothing was applied since the last snapshot, this is that snapshot's index.
      const snapshotIndex = answerIndex(data, "snapshotIndex", options.peer);
      io.out(
        options.json
          ? JSON.stringify({ node: options.peer, snapshotIndex })
          : String(snapshotIndex),
      );
      return EXIT_OK;
    },
    "outcome unknown: the node may still write the snapshot",
    options.json,
  );
}
