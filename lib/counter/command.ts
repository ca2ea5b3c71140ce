/**
 * The counter's log commands: how increments are written into a Raft entry.
 *
 * The first byte of a Normal entry's data is its op code. Two ops exist, and a node accepts both
 * forever (logs and snapshots never migrate):
 *
 * Op 1, one increment (big-endian):
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
 * Op 2, a batch of increments (big-endian): what a leader proposes for the increments it took in
 * one turn of its event loop. Applying it is applying its items in order, each as an op 1 entry
 * with the batch's stamp would be; each item has its own answer.
 *
 * | offset | size | field                                                          |
 * |-------:|-----:|----------------------------------------------------------------|
 * | 0      | 1    | op: 2 = increment batch                                        |
 * | 1      | 8    | cluster time at proposal, ms, for every item                   |
 * | 9      | 2    | item count, 1 to {@linkcode BATCH_ITEMS_MAX}                   |
 * | 11     |      | the items, back to back                                        |
 *
 * Each item:
 *
 * | offset | size | field                                                          |
 * |-------:|-----:|----------------------------------------------------------------|
 * | 0      | 8    | delta, signed 64-bit                                           |
 * | 8      | 8    | client sequence number, 0 = no de-duplication (below 2^53)     |
 * | 16     | 8    | lowest sequence number the client still waits for (below 2^53) |
 * | 24     | 2    | client id length m, at most {@linkcode CLIENT_ID_BYTES_MAX}    |
 * | 26     | m    | client id, UTF-8 (empty = anonymous)                           |
 *
 * A batch entry is at most {@linkcode BATCH_BYTES_MAX} bytes with nothing after its last item;
 * decoding checks every bound, so hostile data is an error, never a crash or a huge allocation.
 *
 * @module
 */

/** Op code of a single increment command. */
export const OP_INCREMENT = 1;
/** Op code of a batch of increment commands. */
export const OP_INCREMENT_BATCH = 2;

/** Most increments in one batch entry. */
export const BATCH_ITEMS_MAX = 1024;
/**
 * Most bytes of a batch entry's data: 64 KiB, far below a Raft message (1 MiB of entries) and a
 * frame (4 MiB by default), so a batch always travels and is stored like any small entry.
 */
export const BATCH_BYTES_MAX = 64 * 1024;
/**
 * Longest client id in an entry, in UTF-8 bytes: what a node accepts from a client (256
 * characters) at 4 bytes each. The snapshot format itself stops at 65,535.
 */
export const CLIENT_ID_BYTES_MAX = 1024;

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

/** One increment of a batch: a command without its stamp, which the whole entry shares. */
export type IncrementItem = Omit<IncrementCommand, "proposedAtMs">;

const HEADER_BYTES = 33;
const BATCH_HEADER_BYTES = 11;
const ITEM_HEADER_BYTES = 26;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Encodes an increment as op 1 entry data. */
export function encodeIncrement(cmd: IncrementCommand): Uint8Array {
  checkItem(cmd);
  return encodeSingle(cmd, encoder.encode(cmd.clientId), cmd.proposedAtMs);
}

function checkItem(item: IncrementItem): void {
  // Out-of-range values would wrap silently in the fixed-width fields.
  if (item.delta < -(1n << 63n) || item.delta >= 1n << 63n) {
    throw new RangeError(`delta ${item.delta} is outside the signed 64-bit range`);
  }
  for (const [name, n] of [["seq", item.seq], ["ackedBelow", item.ackedBelow]] as const) {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`${name} ${n} is not a valid count`);
    }
  }
}

function stampOf(proposedAtMs: number): bigint {
  return BigInt(Math.max(0, Math.floor(proposedAtMs)));
}

function encodeSingle(item: IncrementItem, id: Uint8Array, proposedAtMs: number): Uint8Array {
  const out = new Uint8Array(HEADER_BYTES + id.length);
  const view = new DataView(out.buffer);
  out[0] = OP_INCREMENT;
  view.setBigInt64(1, item.delta);
  view.setBigUint64(9, stampOf(proposedAtMs));
  view.setBigUint64(17, BigInt(item.seq));
  view.setBigUint64(25, BigInt(item.ackedBelow));
  out.set(id, HEADER_BYTES);
  return out;
}

/** Decodes op 1 entry data written by {@linkcode encodeIncrement}; throws on anything else. */
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
 * The increments held by op 1 or op 2 entry data, in order, each with the entry's stamp. Throws
 * on anything else, and on a batch that breaks a bound of the layout.
 */
export function decodeIncrements(data: Uint8Array): IncrementCommand[] {
  if (data.length > 0 && data[0] === OP_INCREMENT_BATCH) return decodeBatch(data);
  return [decodeIncrement(data)];
}

function decodeBatch(data: Uint8Array): IncrementCommand[] {
  if (data.length < BATCH_HEADER_BYTES) {
    throw new Error(`increment batch of ${data.length} bytes is shorter than its header`);
  }
  if (data.length > BATCH_BYTES_MAX) {
    throw new Error(`increment batch of ${data.length} bytes is over ${BATCH_BYTES_MAX}`);
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const proposedAtMs = Number(view.getBigUint64(1));
  const count = view.getUint16(9);
  if (count === 0 || count > BATCH_ITEMS_MAX) {
    throw new Error(`increment batch of ${count} items (1 to ${BATCH_ITEMS_MAX} allowed)`);
  }
  const out: IncrementCommand[] = new Array(count);
  let at = BATCH_HEADER_BYTES;
  // Items of one client often follow each other: decode its id once.
  let lastId: Uint8Array = new Uint8Array(0);
  let lastClientId = "";
  for (let i = 0; i < count; i++) {
    if (at + ITEM_HEADER_BYTES > data.length) {
      throw new Error(`increment batch is truncated in item ${i} of ${count}`);
    }
    const delta = view.getBigInt64(at);
    const seq = readCount(view, at + 8, i, "sequence number");
    const ackedBelow = readCount(view, at + 16, i, "acknowledged sequence number");
    const idBytes = view.getUint16(at + 24);
    at += ITEM_HEADER_BYTES;
    if (idBytes > CLIENT_ID_BYTES_MAX) {
      throw new Error(
        `client id of ${idBytes} bytes in batch item ${i} (${CLIENT_ID_BYTES_MAX} max)`,
      );
    }
    if (at + idBytes > data.length) {
      throw new Error(`increment batch is truncated in the client id of item ${i} of ${count}`);
    }
    const id = data.subarray(at, at + idBytes);
    at += idBytes;
    if (!sameBytes(id, lastId)) {
      try {
        lastClientId = decoder.decode(id);
      } catch {
        throw new Error(`client id of batch item ${i} is not UTF-8`);
      }
      lastId = id;
    }
    out[i] = { delta, proposedAtMs, clientId: lastClientId, seq, ackedBelow };
  }
  if (at !== data.length) {
    throw new Error(`increment batch has ${data.length - at} bytes after its last item`);
  }
  return out;
}

/** An unsigned 64-bit count at `at` that must be a safe integer (below 2^53). */
function readCount(view: DataView, at: number, item: number, what: string): number {
  const high = view.getUint32(at);
  if (high > 0x1f_ffff) throw new Error(`${what} of batch item ${item} is beyond 2^53`);
  return high * 0x1_0000_0000 + view.getUint32(at + 4);
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The cluster-time stamp of op 1 or op 2 entry data, or null when the data is neither. Cheaper
 * than a full decode: nodes note every stamp they persist.
 */
export function readStampMs(data: Uint8Array): number | null {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length >= HEADER_BYTES && data[0] === OP_INCREMENT) {
    return Number(view.getBigUint64(9));
  }
  if (data.length >= BATCH_HEADER_BYTES && data[0] === OP_INCREMENT_BATCH) {
    return Number(view.getBigUint64(1));
  }
  return null;
}

/**
 * Increments collected for one entry, within {@linkcode BATCH_ITEMS_MAX} and
 * {@linkcode BATCH_BYTES_MAX}. The leader fills one per turn of its event loop (starting another
 * when one is full) and proposes each as one entry.
 */
export class IncrementBatch {
  #items: IncrementItem[] = [];
  #ids: Uint8Array[] = [];
  #bytes = BATCH_HEADER_BYTES;
  #lastClientId = "";
  #lastId: Uint8Array = new Uint8Array(0);

  /** Number of increments held. */
  get count(): number {
    return this.#items.length;
  }

  /** Bytes the batch entry holding them would take (an op 2 entry). */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Adds `item` when it fits; false when the batch is full (nothing is added). Throws a
   * RangeError for an item no entry can hold (a delta outside 64 bits, a sequence number that is
   * not a safe non-negative integer, a client id over {@linkcode CLIENT_ID_BYTES_MAX} bytes).
   */
  add(item: IncrementItem): boolean {
    checkItem(item);
    let id = this.#lastId;
    if (item.clientId !== this.#lastClientId) {
      id = encoder.encode(item.clientId);
      if (id.length > CLIENT_ID_BYTES_MAX) {
        throw new RangeError(
          `client id of ${id.length} UTF-8 bytes (${CLIENT_ID_BYTES_MAX} allowed)`,
        );
      }
      this.#lastClientId = item.clientId;
      this.#lastId = id;
    }
    const itemBytes = ITEM_HEADER_BYTES + id.length;
    if (
      this.#items.length > 0 &&
      (this.#items.length >= BATCH_ITEMS_MAX || this.#bytes + itemBytes > BATCH_BYTES_MAX)
    ) {
      return false;
    }
    this.#items.push(item);
    this.#ids.push(id);
    this.#bytes += itemBytes;
    return true;
  }

  /**
   * The entry data holding every increment added, stamped `proposedAtMs`: an op 1 entry for a
   * single increment (the smaller and older form), otherwise an op 2 batch. Throws when empty.
   */
  encode(proposedAtMs: number): Uint8Array {
    const count = this.#items.length;
    if (count === 0) throw new RangeError("an increment batch needs at least one increment");
    if (count === 1) return encodeSingle(this.#items[0], this.#ids[0], proposedAtMs);
    const out = new Uint8Array(this.#bytes);
    const view = new DataView(out.buffer);
    out[0] = OP_INCREMENT_BATCH;
    view.setBigUint64(1, stampOf(proposedAtMs));
    view.setUint16(9, count);
    let at = BATCH_HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const item = this.#items[i];
      const id = this.#ids[i];
      view.setBigInt64(at, item.delta);
      writeCount(view, at + 8, item.seq);
      writeCount(view, at + 16, item.ackedBelow);
      view.setUint16(at + 24, id.length);
      out.set(id, at + ITEM_HEADER_BYTES);
      at += ITEM_HEADER_BYTES + id.length;
    }
    return out;
  }
}

function writeCount(view: DataView, at: number, n: number): void {
  view.setUint32(at, Math.floor(n / 0x1_0000_0000));
  view.setUint32(at + 4, n >>> 0);
}
