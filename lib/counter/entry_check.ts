/**
 * What the counter accepts into its log: the check every entry and every snapshot from another
 * node passes before the node steps it into Raft, so that nothing the state machine cannot apply
 * is ever stored.
 *
 * An entry is well formed when
 *
 * - a Normal entry's data is empty (a new leader's no-op), an increment command or a batch of
 *   them ({@linkcode decodeIncrements}: a batch within its item and byte bounds, nothing after
 *   its last item) where every client id fits the snapshot format and every sequence number is a
 *   safe integer;
 * - a Config entry's data is a configuration: at least one voter, every member a `HOST:PORT`
 *   named once, no node both voter and learner.
 *
 * A snapshot is well formed when its data restores into a fresh state machine and its
 * configuration passes the same check.
 *
 * @module
 */

import { type ConfState, decodeConfState, type Entry, EntryType } from "../raft/mod.ts";
import { parseAddress } from "../transport/address.ts";
import { CLIENT_ID_BYTES_MAX, decodeIncrements } from "./command.ts";
import { CounterStateMachine } from "./state_machine.ts";

export { CLIENT_ID_BYTES_MAX };

const utf8 = new TextEncoder();

/** Returns why `entry` is not a well-formed counter entry, or null when it is. */
export function entryProblem(entry: Entry): string | null {
  try {
    if (entry.type === EntryType.Normal) {
      if (entry.data.length === 0) return null;
      // A batch's decoding checks its items' bounds; a single increment's are checked here.
      for (const cmd of decodeIncrements(entry.data)) {
        if (cmd.clientId.length * 3 > CLIENT_ID_BYTES_MAX) {
          if (utf8.encode(cmd.clientId).length > CLIENT_ID_BYTES_MAX) {
            return `client id longer than ${CLIENT_ID_BYTES_MAX} bytes`;
          }
        }
        if (!Number.isSafeInteger(cmd.seq) || !Number.isSafeInteger(cmd.ackedBelow)) {
          return "sequence number beyond 2^53";
        }
      }
      return null;
    }
    if (entry.type === EntryType.Config) return confProblem(decodeConfState(entry.data));
    return `unknown entry type ${entry.type}`;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Returns why `conf` is not a usable configuration, or null when it is. */
export function confProblem(conf: ConfState): string | null {
  if (conf.voters.length === 0) return "configuration without voters";
  const seen = new Set<string>();
  for (const id of [...conf.voters, ...conf.learners]) {
    if (seen.has(id)) return `member ${JSON.stringify(id.slice(0, 64))} named twice`;
    seen.add(id);
    try {
      parseAddress(id);
    } catch {
      return `member ${JSON.stringify(id.slice(0, 64))} is not HOST:PORT`;
    }
  }
  return null;
}

/** Returns why a snapshot's data and configuration cannot be installed, or null. */
export function snapshotProblem(data: Uint8Array, conf: ConfState): string | null {
  try {
    new CounterStateMachine().restore(data);
  } catch (err) {
    return `snapshot data: ${err instanceof Error ? err.message : String(err)}`;
  }
  return confProblem(conf);
}
