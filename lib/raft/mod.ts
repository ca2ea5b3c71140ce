/**
 * The pure Raft core: no I/O, no clock, no randomness of its own.
 *
 * @module
 */

export * from "./types.ts";
export { bootstrapState, Raft } from "./raft.ts";
export type {
  PeerStatus,
  ProposeResult,
  RaftInitialState,
  RaftOptions,
  RaftStatus,
  Ready,
} from "./raft.ts";
export { applyConfChange, decodeConfState, encodeConfState, sameConf } from "./conf.ts";
export type { ConfChange } from "./conf.ts";
export { type ForcedNewCluster, forceNewClusterState } from "./force_new_cluster.ts";
export { InvariantError } from "./assert.ts";
export { ProgressState } from "./progress.ts";
