/**
 * etcd's `--force-new-cluster`, as a pure function: the state one surviving node restarts from
 * after its group lost a majority for good.
 *
 * The survivor keeps every entry it holds and appends one Config entry naming itself as the
 * only voter, in a term above every term it has seen. Run on ONE survivor only: the others are
 * wiped and added back empty (`counter peers add`), so no second forced entry ever exists. A
 * second survivor forced too would append its own entry, possibly at the same index and term as
 * this one with other contents; the two would then pass Raft's consistency check forever and
 * apply different values. That is what the node shell's fresh cluster id fences off (a node
 * of the old cluster is refused), and why this function forces one node, not a list.
 *
 * Pure: no I/O, clocks or randomness, so the simulator can call it as the shell does.
 *
 * @module
 */

import { encodeConfState } from "./conf.ts";
import type { RaftInitialState } from "./raft.ts";
import { type Entry, EntryType, type NodeId } from "./types.ts";

/** What {@linkcode forceNewClusterState} builds. */
export interface ForcedNewCluster {
  /** The whole state the node restarts from: `recovered` plus `entry`, in the new term. */
  state: RaftInitialState;
  /** The one entry to append durably: the single-voter configuration. */
  entry: Entry;
  /** Index of the last entry before `entry` (log or snapshot). */
  lastIndex: number;
  /** Term of that entry. */
  lastTerm: number;
}

/**
 * Builds the state of `nodeId` forced into a new one-voter group from what it `recovered`:
 * the new term is `max(hard state term, last log term) + 1`, saved with no vote, and the entry
 * at `lastIndex + 1` in that term names `nodeId` as the only voter and no learners. Throws on a
 * node that holds nothing (an empty data dir has nothing to recover).
 *
 * @example
 * ```ts
 * import { bootstrapState } from "./raft.ts";
 * import { forceNewClusterState } from "./force_new_cluster.ts";
 * const recovered = bootstrapState({ voters: ["a:1", "b:1", "c:1"], learners: [] });
 * const forced = forceNewClusterState(recovered, "a:1");
 * console.log(forced.entry.index, forced.entry.term); // 2 2
 * ```
 */
export function forceNewClusterState(
  recovered: RaftInitialState,
  nodeId: NodeId,
): ForcedNewCluster {
  if (nodeId === "") throw new RangeError("a forced cluster needs a node id");
  const { hardState, snapshot, entries } = recovered;
  const last = entries.at(-1);
  const lastIndex = last?.index ?? snapshot?.index ?? 0;
  const lastTerm = last?.term ?? snapshot?.term ?? 0;
  if (lastIndex === 0) {
    throw new RangeError(`node ${nodeId} holds no log entry and no snapshot: nothing to recover`);
  }
  const term = Math.max(hardState.term, lastTerm) + 1;
  const entry: Entry = {
    term,
    index: lastIndex + 1,
    type: EntryType.Config,
    data: encodeConfState({ voters: [nodeId], learners: [] }),
  };
  return {
    state: { hardState: { term, vote: "" }, snapshot, entries: [...entries, entry] },
    entry,
    lastIndex,
    lastTerm,
  };
}
