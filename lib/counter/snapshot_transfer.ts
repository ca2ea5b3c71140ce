/**
 * InstallSnapshot in bounded chunks.
 *
 * The Raft core hands the shell one `Snap` message holding the whole snapshot. The leader's
 * {@linkcode SnapshotSender} cuts its data into chunks that each fit a frame and sends one at a
 * time, the next only after the follower acknowledged the previous one (so a large snapshot never
 * floods the peer queue). The follower's {@linkcode SnapshotReceiver} collects the chunks in
 * order, checks the CRC-32C of the whole, and only then gives the core the complete `Snap`
 * message. A transfer that stalls is abandoned and reported, so the core retries later; a crash
 * in the middle leaves nothing on disk, since only a complete, verified snapshot is installed
 * (atomically, by the storage layer).
 *
 * @module
 */

import { makeMessage, type Message, MessageType, type Snapshot } from "../raft/mod.ts";
import type { SnapshotAck, SnapshotChunk } from "../transport/mod.ts";
import { crc32c } from "../storage/crc32c.ts";

/** Bytes of snapshot data per chunk: well under the 4 MiB frame limit. */
export const SNAPSHOT_CHUNK_BYTES = 512 * 1024;
/** Largest snapshot a follower accepts (its data is held in memory until verified). */
export const SNAPSHOT_TRANSFER_BYTES_MAX = 256 * 1024 * 1024;

interface Outgoing {
  message: Message;
  snapshot: Snapshot;
  checksum: number;
  offset: number;
  deadlineMs: number;
}

/** The leader's side: one transfer per follower at a time. */
export class SnapshotSender {
  #sends = new Map<string, Outgoing>();
  readonly #sendChunk: (chunk: SnapshotChunk) => void;
  readonly #onDone: (to: string, ok: boolean) => void;
  readonly #ackTimeoutMs: number;
  readonly #chunkBytes: number;

  /**
   * `sendChunk` puts a chunk on the wire; `onDone` reports a finished (`ok`) or abandoned
   * transfer; a transfer with no acknowledgement for `ackTimeoutMs` is abandoned.
   */
  constructor(options: {
    sendChunk: (chunk: SnapshotChunk) => void;
    onDone: (to: string, ok: boolean) => void;
    ackTimeoutMs: number;
    chunkBytes?: number;
  }) {
    this.#sendChunk = options.sendChunk;
    this.#onDone = options.onDone;
    this.#ackTimeoutMs = options.ackTimeoutMs;
    this.#chunkBytes = options.chunkBytes ?? SNAPSHOT_CHUNK_BYTES;
  }

  /** Number of transfers in progress. */
  get activeCount(): number {
    return this.#sends.size;
  }

  /** Starts sending the snapshot in `message` (a core `Snap` message) unless one is under way. */
  start(message: Message, nowMs: number): void {
    const snapshot = message.snapshot;
    if (snapshot === null) return;
    const current = this.#sends.get(message.to);
    if (current !== undefined && current.snapshot.index >= snapshot.index) return;
    const out: Outgoing = {
      message,
      snapshot,
      checksum: crc32c(snapshot.data),
      offset: 0,
      deadlineMs: nowMs + this.#ackTimeoutMs,
    };
    this.#sends.set(message.to, out);
    this.#sendNext(out);
  }

  /** Handles a follower's acknowledgement. */
  onAck(ack: SnapshotAck, nowMs: number): void {
    const out = this.#sends.get(ack.from);
    if (out === undefined || out.snapshot.index !== ack.index) return;
    if (!ack.ok) {
      this.#finish(ack.from, false);
      return;
    }
    const sentEnd = Math.min(out.offset + this.#chunkBytes, out.snapshot.data.length);
    if (ack.offset !== sentEnd) return; // A stale or duplicated acknowledgement.
    if (sentEnd >= out.snapshot.data.length) {
      this.#finish(ack.from, true);
      return;
    }
    out.offset = sentEnd;
    out.deadlineMs = nowMs + this.#ackTimeoutMs;
    this.#sendNext(out);
  }

  /** Abandons transfers whose follower stopped answering. */
  expire(nowMs: number): void {
    for (const [to, out] of this.#sends) {
      if (out.deadlineMs <= nowMs) this.#finish(to, false);
    }
  }

  /** Abandons every transfer (leadership lost, shutting down) without reporting. */
  clear(): void {
    this.#sends.clear();
  }

  #sendNext(out: Outgoing): void {
    const { message, snapshot } = out;
    const end = Math.min(out.offset + this.#chunkBytes, snapshot.data.length);
    this.#sendChunk({
      from: message.from,
      to: message.to,
      term: message.term,
      index: snapshot.index,
      snapTerm: snapshot.term,
      conf: snapshot.conf,
      offset: out.offset,
      totalBytes: snapshot.data.length,
      checksum: out.checksum,
      data: snapshot.data.subarray(out.offset, end),
    });
  }

  #finish(to: string, ok: boolean): void {
    this.#sends.delete(to);
    this.#onDone(to, ok);
  }
}

interface Incoming {
  chunk: SnapshotChunk;
  data: Uint8Array;
  received: number;
}

/** What the follower does with a chunk: acknowledge it, and maybe step a complete snapshot. */
export interface ReceiveResult {
  /** The acknowledgement to send back. */
  ack: SnapshotAck;
  /** The complete, verified `Snap` message for the core, once the last chunk is in. */
  message: Message | null;
  /** Why the transfer was dropped, when `ack.ok` is false. */
  error?: string;
}

/** The follower's side: reassembles one transfer per leader. */
export class SnapshotReceiver {
  #incoming = new Map<string, Incoming>();
  readonly #bytesMax: number;

  /** Accepts snapshots of at most `bytesMax` bytes of data. */
  constructor(bytesMax = SNAPSHOT_TRANSFER_BYTES_MAX) {
    this.#bytesMax = bytesMax;
  }

  /** Takes one chunk; returns the acknowledgement and, when complete, the message to step. */
  onChunk(chunk: SnapshotChunk): ReceiveResult {
    const fail = (error: string, received = 0): ReceiveResult => {
      this.#incoming.delete(chunk.from);
      return {
        ack: { from: chunk.to, to: chunk.from, index: chunk.index, offset: received, ok: false },
        message: null,
        error,
      };
    };
    if (chunk.totalBytes > this.#bytesMax) {
      return fail(`snapshot of ${chunk.totalBytes} bytes exceeds the ${this.#bytesMax} limit`);
    }
    let inc = this.#incoming.get(chunk.from);
    if (chunk.offset === 0) {
      inc = { chunk, data: new Uint8Array(chunk.totalBytes), received: 0 };
      this.#incoming.set(chunk.from, inc);
    } else if (
      inc === undefined || inc.chunk.index !== chunk.index || inc.chunk.term !== chunk.term ||
      inc.received !== chunk.offset || inc.chunk.totalBytes !== chunk.totalBytes
    ) {
      return fail("snapshot chunk out of order", inc?.received ?? 0);
    }
    inc.data.set(chunk.data, chunk.offset);
    inc.received += chunk.data.length;
    const ack = {
      from: chunk.to,
      to: chunk.from,
      index: chunk.index,
      offset: inc.received,
      ok: true,
    };
    if (inc.received < chunk.totalBytes) return { ack, message: null };
    this.#incoming.delete(chunk.from);
    if (crc32c(inc.data) !== chunk.checksum) {
      return fail("snapshot checksum mismatch after the last chunk", inc.received);
    }
    const snapshot: Snapshot = {
      index: chunk.index,
      term: chunk.snapTerm,
      conf: chunk.conf,
      data: inc.data,
    };
    const message = makeMessage(MessageType.Snap, {
      from: chunk.from,
      to: chunk.to,
      term: chunk.term,
      index: chunk.index,
      snapshot,
    });
    return { ack, message };
  }
}
