/**
 * One framed TCP connection: a read loop that turns bytes into decoded bodies, and a writer that
 * batches every frame queued in the same tick into a single write.
 *
 * Cost model: a Raft leader sends many small frames (appends, heartbeats) to each peer, and a
 * busy client pipelines many small requests. One `write` per frame would make the syscall the
 * bottleneck, so frames queue up and go out together: everything sent while the event loop is
 * busy with one task becomes one write, and everything queued while a write is in flight becomes
 * the next one.
 *
 * @module
 */

import { type Logger, silentLogger } from "../logging/logger.ts";
import { formatAddress } from "./address.ts";
import { decodeBody, type DecodedBody, ProtocolError } from "./codec.ts";
import {
  assertFrameBytesMax,
  FRAME_BYTES_MAX_DEFAULT,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  FrameError,
  writeFrame,
} from "./frame.ts";
import { type ByteBudget, HELD_BYTES_SMALL, yieldTurn } from "./limits.ts";
import { looksLikeTls, tuneSocket } from "./tls.ts";

/** Default bound on bytes queued for sending on one connection: 8 MiB, two full frames. */
export const QUEUE_BYTES_MAX_DEFAULT: number = 8 * 1024 * 1024;

/** Default limit on how long opening a connection may take. */
export const CONNECT_TIMEOUT_MS_DEFAULT = 1000;

// One read takes at most this much; large frames arrive over several reads.
const READ_BYTES = 64 * 1024;
// The read buffer's first size: it grows (x4) up to READ_BYTES whenever a read fills it. A
// short-lived connection (a client's call, a starting group's identity probe: a host starting a
// thousand new groups opens thousands at once) then never takes 64 KiB.
const READ_BYTES_FIRST = 4 * 1024;
// A batch buffer up to this size is kept for the next batch; bigger ones are freed after use.
const BATCH_BYTES_RETAINED = 1024 * 1024;

/** Options for {@linkcode Connection}. */
export interface ConnectionOptions {
  /** Largest frame body accepted or sent, in bytes. Default 4 MiB. */
  frameBytesMax?: number;
  /**
   * Most bytes (frames with their prefixes) queued for sending, counting the batch being
   * written. Default {@linkcode QUEUE_BYTES_MAX_DEFAULT}; must fit one largest frame.
   */
  queueBytesMax?: number;
  /** Where protocol errors and failures are logged. Default: nowhere. */
  logger?: Logger;
  /**
   * Budget shared with other connections, charged with what this one holds (partial frame,
   * queued frames). While it is exceeded, a connection not marked as a peer that holds more
   * than a small amount is closed. Default: none.
   */
  budget?: ByteBudget;
  /**
   * Bodies delivered before the read loop yields to the event loop, until the connection is
   * marked as a peer ({@linkcode Connection.markPeer}); a request batch counts as its requests
   * (it yields after a batch that reaches the limit). Default: no limit.
   */
  framesPerTurn?: number;
}

/**
 * Returns the frame and queue limits `options` ask for, with defaults applied. Throws
 * `RangeError` when they are invalid: the queue must fit at least one largest frame.
 */
export function connectionLimits(
  options: ConnectionOptions,
): { frameBytesMax: number; queueBytesMax: number } {
  const frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
  assertFrameBytesMax(frameBytesMax);
  const queueBytesMax = options.queueBytesMax ?? QUEUE_BYTES_MAX_DEFAULT;
  if (!Number.isSafeInteger(queueBytesMax) || queueBytesMax < frameBytesMax + FRAME_HEADER_BYTES) {
    throw new RangeError(
      `Queue limit ${queueBytesMax} must be an integer that fits one largest frame`,
    );
  }
  return { frameBytesMax, queueBytesMax };
}

/**
 * Receives each decoded body, in order. Throwing {@linkcode ProtocolError} (for a body this side
 * does not accept) closes the connection with a warning; throwing anything else closes it with an
 * error log, since that is a bug in the handler.
 */
export type BodyHandler = (body: DecodedBody) => void;

/**
 * A framed connection over a TCP stream.
 *
 * @example
 * ```ts ignore
 * import { Connection } from "./connection.ts";
 * import { encodeRequest } from "./codec.ts";
 * const tcp = await Deno.connect({ hostname: "127.0.0.1", port: 4000 });
 * const conn = new Connection(tcp, (body) => console.log(body));
 * conn.send(encodeRequest("counter", 1, { op: "get" }));
 * await conn.close();
 * ```
 */
export class Connection {
  #conn: Deno.Conn;
  #onBody: BodyHandler;
  #logger: Logger;
  #remoteAddress: string;
  #frameBytesMax: number;
  #queueBytesMax: number;
  #frames: FrameDecoder;

  // Bodies waiting for the next batch, and the bytes they and the batch in flight take.
  #queue: Uint8Array[] = [];
  #queuedBytes = 0;
  // Frames ever queued, and how many of them have been handed to the OS (their write started).
  #queuedSeq = 0;
  #sentSeq = 0;
  #batch: Uint8Array = new Uint8Array(0);
  #writer: Promise<void> | null = null;

  #closing = false;
  #resourceClosed = false;
  #firstChunk = true;
  #tlsSeen = false;
  #reader: Promise<void>;
  #closed: Promise<void>;

  // Limits against strangers; see lib/transport/limits.ts.
  #budget: ByteBudget | null;
  #chargedBytes = 0;
  #framesPerTurn: number;
  #isPeer = false;
  #lastReceiveMs = performance.now();
  #partialSinceMs: number | null = null;

  /**
   * Takes over `conn` (a TCP or TLS connection; sets no-delay and keep-alive where it can) and
   * starts reading. `onBody` is called for every decoded body.
   */
  constructor(conn: Deno.Conn, onBody: BodyHandler, options: ConnectionOptions = {}) {
    this.#conn = conn;
    this.#onBody = onBody;
    const limits = connectionLimits(options);
    this.#frameBytesMax = limits.frameBytesMax;
    this.#queueBytesMax = limits.queueBytesMax;
    this.#remoteAddress = formatAddress(conn.remoteAddr as Deno.NetAddr);
    this.#logger = options.logger ?? silentLogger;
    this.#frames = new FrameDecoder({ frameBytesMax: this.#frameBytesMax });
    this.#budget = options.budget ?? null;
    this.#framesPerTurn = options.framesPerTurn ?? Infinity;
    // Small frames must not wait for Nagle's algorithm (batching is done here instead), and
    // keep-alive lets the OS reap a connection whose peer vanished; a TLS connection has
    // neither setting of its own (see tuneSocket).
    tuneSocket(conn);
    this.#reader = this.#readLoop();
    this.#closed = this.#reader.then(() => this.#writer ?? undefined);
  }

  /** The remote end as `HOST:PORT`. */
  get remoteAddress(): string {
    return this.#remoteAddress;
  }

  /** Bytes queued or being written, prefixes included. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * Sequence number of the last frame handed to the OS. A frame whose number (from
   * {@linkcode send}) is at most this may have reached the peer; a larger one certainly did not.
   */
  get sentSeq(): number {
    return this.#sentSeq;
  }

  /** When bytes last arrived (`performance.now()` time); the creation time before any. */
  get lastReceiveMs(): number {
    return this.#lastReceiveMs;
  }

  /** When the first byte of the frame still incomplete arrived, or null when none is. */
  get partialSinceMs(): number | null {
    return this.#partialSinceMs;
  }

  /** True once {@linkcode markPeer} was called. */
  get isPeer(): boolean {
    return this.#isPeer;
  }

  /**
   * Marks the connection as a peer's: its bodies are no longer paced, and a full budget does
   * not close it (peers are few, and their traffic is what keeps the group alive).
   */
  markPeer(): void {
    this.#isPeer = true;
    this.#framesPerTurn = Infinity;
  }

  /**
   * True when the connection closed because the other side spoke TLS on this plain connection
   * (a TLS node answering a plain client, or a TLS client at a plain node).
   */
  get peerSpokeTls(): boolean {
    return this.#tlsSeen;
  }

  /** True once the connection is closing or closed: nothing more is sent or delivered. */
  get isClosed(): boolean {
    return this.#closing;
  }

  /** Resolves when the connection has closed, by either side, and both loops have ended. */
  get closed(): Promise<void> {
    return this.#closed;
  }

  /**
   * Queues `body` as one frame and returns its sequence number (1, 2, ...), or 0 when it was
   * dropped because the connection is closed or the queue is full. Throws `RangeError` when the
   * body is empty or larger than `frameBytesMax`, since the peer would drop the connection.
   */
  send(body: Uint8Array): number {
    if (body.length === 0 || body.length > this.#frameBytesMax) {
      throw new RangeError(
        `Frame body of ${body.length} bytes is outside 1..${this.#frameBytesMax}`,
      );
    }
    if (this.#closing) return 0;
    const frameBytes = FRAME_HEADER_BYTES + body.length;
    if (this.#queuedBytes + frameBytes > this.#queueBytesMax) return 0;
    if (this.#overBudget(this.#queuedBytes + frameBytes)) return 0;
    this.#queue.push(body);
    this.#queuedBytes += frameBytes;
    this.#recharge();
    this.#queuedSeq++;
    if (this.#writer === null) this.#writer = this.#writeLoop();
    return this.#queuedSeq;
  }

  /**
   * Closes the connection without flushing the queue. Idempotent; resolves when the read loop
   * and the writer have ended.
   */
  close(): Promise<void> {
    this.#beginClose();
    return this.#closed;
  }

  #beginClose(): void {
    this.#closing = true;
    this.#queue = [];
    this.#queuedBytes = 0;
    this.#budget?.charge(-this.#chargedBytes);
    this.#chargedBytes = 0;
    if (this.#resourceClosed) return;
    this.#resourceClosed = true;
    try {
      // Also wakes the pending read and write, which then fail and end their loops.
      this.#conn.close();
    } catch {
      // Already closed by the runtime; nothing left to release.
    }
  }

  async #readLoop(): Promise<void> {
    let buffer = new Uint8Array(READ_BYTES_FIRST);
    try {
      while (!this.#closing) {
        let n: number | null;
        try {
          n = await this.#conn.read(buffer);
        } catch (err) {
          if (!this.#closing) {
            this.#logger.debug("connection lost", { remote: this.#remoteAddress, reason: err });
          }
          return;
        }
        if (n === null) return;
        this.#lastReceiveMs = performance.now();
        // A fresh chunk per read: bodies and the frame decoder may keep views of it.
        const chunk = buffer.slice(0, n);
        if (n === buffer.length && buffer.length < READ_BYTES) {
          buffer = new Uint8Array(Math.min(READ_BYTES, buffer.length * 4));
        }
        if (!await this.#deliver(chunk)) return;
      }
    } finally {
      this.#beginClose();
    }
  }

  // Decodes and hands on every complete body in `chunk`; false when the connection must close.
  // Every `framesPerTurn` bodies it lets the event loop run timers and other connections.
  async #deliver(chunk: Uint8Array): Promise<boolean> {
    if (this.#firstChunk) {
      this.#firstChunk = false;
      if (looksLikeTls(chunk)) {
        this.#tlsSeen = true;
        this.#logger.warn("the other side speaks TLS on a plain connection, closing it", {
          remote: this.#remoteAddress,
        });
        return false;
      }
    }
    try {
      let delivered = 0;
      let completed = false;
      for (const bytes of this.#frames.push(chunk)) {
        completed = true;
        const body = decodeBody(bytes);
        this.#onBody(body);
        if (this.#closing) return false;
        // A batch weighs its requests: batches must not let one client hold the loop longer.
        delivered += body.kind === "request_batch" ? body.requests.length : 1;
        if (delivered >= this.#framesPerTurn) {
          delivered = 0;
          await yieldTurn();
          if (this.#closing) return false;
        }
      }
      this.#notePartial(completed);
      return !this.#overBudget(this.#frames.retainedBytes + this.#queuedBytes);
    } catch (err) {
      if (err instanceof FrameError || err instanceof ProtocolError) {
        this.#logger.warn("protocol error, closing connection", {
          remote: this.#remoteAddress,
          reason: err.message,
        });
      } else {
        this.#logger.error("body handler failed, closing connection", {
          remote: this.#remoteAddress,
          reason: err,
        });
      }
      return false;
    }
  }

  // Tracks when the incomplete frame, if any, began.
  #notePartial(completedOne: boolean): void {
    if (this.#frames.bufferedBytes === 0) this.#partialSinceMs = null;
    else if (completedOne || this.#partialSinceMs === null) {
      this.#partialSinceMs = this.#lastReceiveMs;
    }
  }

  // Charges the budget with what this connection holds now.
  #recharge(): void {
    if (this.#budget === null || this.#closing) return;
    const held = this.#frames.retainedBytes + this.#queuedBytes;
    this.#budget.charge(held - this.#chargedBytes);
    this.#chargedBytes = held;
  }

  // Recharges, then true when this connection must give way: the shared budget is exceeded and
  // it is a large holder that is not a peer. Logs why.
  #overBudget(holdingBytes: number): boolean {
    this.#recharge();
    const budget = this.#budget;
    if (budget === null || this.#isPeer || holdingBytes <= HELD_BYTES_SMALL) return false;
    if (budget.usedBytes - this.#chargedBytes + holdingBytes <= budget.limitBytes) return false;
    this.#logger.warn("memory budget for connections exhausted, closing connection", {
      remote: this.#remoteAddress,
      holdingBytes,
      budgetBytes: budget.limitBytes,
    });
    return true;
  }

  async #writeLoop(): Promise<void> {
    // Let the rest of this tick queue its frames so they share the first write.
    await undefined;
    try {
      while (this.#queue.length > 0 && !this.#closing) {
        const bodies = this.#queue;
        this.#queue = [];
        let batchBytes = 0;
        for (const body of bodies) batchBytes += FRAME_HEADER_BYTES + body.length;
        const batch = this.#batchBuffer(batchBytes);
        let offset = 0;
        for (const body of bodies) offset = writeFrame(batch, offset, body);
        // Counted before the write: a frame partly written may still reach the peer.
        this.#sentSeq += bodies.length;
        let written = 0;
        while (written < batchBytes) {
          written += await this.#conn.write(batch.subarray(written, batchBytes));
        }
        if (!this.#closing) {
          this.#queuedBytes -= batchBytes;
          this.#recharge();
        }
      }
    } catch (err) {
      if (!this.#closing) {
        this.#logger.debug("write failed, closing connection", {
          remote: this.#remoteAddress,
          reason: err,
        });
      }
      this.#beginClose();
    } finally {
      this.#writer = null;
    }
  }

  #batchBuffer(batchBytes: number): Uint8Array {
    if (batchBytes <= this.#batch.length) return this.#batch;
    const batch = new Uint8Array(batchBytes);
    if (batchBytes <= BATCH_BYTES_RETAINED) this.#batch = batch;
    return batch;
  }
}
