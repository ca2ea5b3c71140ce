/**
 * A compact counter encoding for the checker's hand-written histories
 * (tests/raft/simulation_checker_test.ts). The simulator itself runs the real counter commands
 * and state machine (lib/counter) and reads their snapshots with `smValueOf` (./ledger.ts).
 *
 * An increment is 16 bytes: the signed delta (int64, big-endian) and the id of the proposal that
 * carried it (uint64, big-endian). The id makes every proposal's entry unique, so the checks can
 * tell two entries with equal deltas apart and find a proposal that was applied twice. Empty data
 * is a leader's no-op. A snapshot holds the counter value (int64, big-endian).
 *
 * @module
 */

import { type Entry, EntryType, type Snapshot } from "../../../lib/raft/mod.ts";

const INCREMENT_BYTES = 16;

/** Encodes an increment of `delta` proposed as proposal `id`. */
export function encodeIncrement(delta: bigint, id: number): Uint8Array {
  const out = new Uint8Array(INCREMENT_BYTES);
  const view = new DataView(out.buffer);
  view.setBigInt64(0, delta);
  view.setBigUint64(8, BigInt(id));
  return out;
}

/** The counter delta of `entry`: 0 for no-ops and configuration entries. */
export function deltaOf(entry: Entry): bigint {
  if (entry.type !== EntryType.Normal || entry.data.length === 0) return 0n;
  if (entry.data.length !== INCREMENT_BYTES) {
    throw new Error(`entry ${entry.index} holds ${entry.data.length} bytes, not an increment`);
  }
  return new DataView(entry.data.buffer, entry.data.byteOffset, INCREMENT_BYTES).getBigInt64(0);
}

/** The proposal id carried by `entry`, 0 for no-ops and configuration entries. */
export function proposalIdOf(entry: Entry): number {
  if (entry.type !== EntryType.Normal || entry.data.length !== INCREMENT_BYTES) return 0;
  const view = new DataView(entry.data.buffer, entry.data.byteOffset, INCREMENT_BYTES);
  return Number(view.getBigUint64(8));
}

/** Encodes a counter value as snapshot data. */
export function encodeValue(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigInt64(0, value);
  return out;
}

/** The counter value held by `snapshot`. */
export function valueOf(snapshot: Snapshot): bigint {
  const data = snapshot.data;
  if (data.length !== 8) throw new Error(`snapshot data is ${data.length} bytes, not a value`);
  return new DataView(data.buffer, data.byteOffset, 8).getBigInt64(0);
}
