/**
 * The counter's log commands: how an increment is written into a Raft entry.
 *
 * Layout (big-endian), version 1:
 *
 * | offset | size | field                                                          |
 * |-------:|-----:|----------------------------------------------------------------|
 * | 0      | 1    | op: 1 = increment                                              |
 * | 1      | 8    | delta, signed 64-bit                                           |
 * | 9      | 8    | cluster time at proposal, ms (client expiry; see cluster_clock) |
 * | 17     | 8    | client sequence number, 0 = no de-duplication                  |
 * | 25     | 8    | lowest sequence number the client still waits for              |
 * | 33     | n    | client id, UTF-8 (empty = anonymous)                           |
 *
 * @module
 */

/** Op code of an increment command. */
export const OP_INCREMENT = 1;

/** An increment as it travels through the log. */
export interface IncrementCommand {
  /** Signed amount to add. */
  delta: bigint;
  /**
   * Cluster time at proposal (ms), from the proposing leader's `ClusterClock`
   * (cluster_clock.ts), never a wall clock; only used to expire idle clients deterministically. (Entries written by older
   * versions hold the leader's wall clock here; cluster time simply continues from them.)
   */
  proposedAtMs: number;
  /** Client session id; "" for none. */
  clientId: string;
  /** Per-client sequence number; 0 for none. */
  seq: number;
  /** The client has every answer below this sequence number, so they may be forgotten. */
  ackedBelow: number;
}

const HEADER_BYTES = 33;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes an increment as entry data. */
export function encodeIncrement(cmd: IncrementCommand): Uint8Array {
  // Out-of-range values would wrap silently in the fixed-width fields below.
  if (cmd.delta < -(1n << 63n) || cmd.delta >= 1n << 63n) {
    throw new RangeError(`delta ${cmd.delta} is outside the signed 64-bit range`);
  }
  for (const [name, n] of [["seq", cmd.seq], ["ackedBelow", cmd.ackedBelow]] as const) {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`${name} ${n} is not a valid count`);
    }
  }
  const id = encoder.encode(cmd.clientId);
  const out = new Uint8Array(HEADER_BYTES + id.length);
  const view = new DataView(out.buffer);
  out[0] = OP_INCREMENT;
  view.setBigInt64(1, cmd.delta);
  view.setBigUint64(9, BigInt(Math.max(0, Math.floor(cmd.proposedAtMs))));
  view.setBigUint64(17, BigInt(cmd.seq));
  view.setBigUint64(25, BigInt(cmd.ackedBelow));
  out.set(id, HEADER_BYTES);
  return out;
}

/** Decodes entry data written by {@linkcode encodeIncrement}; throws on anything else. */
export function decodeIncrement(data: Uint8Array): IncrementCommand {
  if (data.length < HEADER_BYTES || data[0] !== OP_INCREMENT) {
    throw new Error(`entry data is not an increment command (${data.length} bytes)`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return {
    delta: view.getBigInt64(1),
    proposedAtMs: Number(view.getBigUint64(9)),
    seq: Number(view.getBigUint64(17)),
    ackedBelow: Number(view.getBigUint64(25)),
    clientId: decoder.decode(data.subarray(HEADER_BYTES)),
  };
}

/**
 * The cluster-time stamp of entry data written by {@linkcode encodeIncrement}, or null when the
 * data is not an increment. Cheaper than a full decode: nodes note every stamp they persist.
 */
export function readStampMs(data: Uint8Array): number | null {
  if (data.length < HEADER_BYTES || data[0] !== OP_INCREMENT) return null;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Number(view.getBigUint64(9));
}
