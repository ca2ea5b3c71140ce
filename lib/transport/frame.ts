/**
 * Length-prefixed framing: a 4-byte big-endian unsigned length N, then N bytes of body.
 *
 * The length is checked against a maximum before any buffer is allocated for the body, so a
 * peer cannot make the node reserve memory it never sends.
 *
 * @module
 */

/** Bytes in the length prefix. */
export const FRAME_HEADER_BYTES = 4;

/** Default largest body accepted: 4 MiB, enough for a counter snapshot or a large append. */
export const FRAME_BYTES_MAX_DEFAULT: number = 4 * 1024 * 1024;

/**
 * Largest `frameBytesMax` that may be configured: 64 MiB. The codec's binary limit matches it,
 * and a bigger single frame would stall every other message on the connection for too long.
 */
export const FRAME_BYTES_LIMIT: number = 64 * 1024 * 1024;

// A partially received body starts this small and doubles, so a peer that announces a large
// frame and then trickles bytes only costs the memory it has actually sent.
const ASSEMBLY_BYTES_INITIAL = 64 * 1024;

const EMPTY = new Uint8Array(0);

/** Why a frame was refused. */
export type FrameErrorReason = "empty" | "oversize";

/** A frame's length prefix is invalid; the stream cannot be resynchronized and must be closed. */
export class FrameError extends Error {
  /** What was wrong with the length prefix. */
  readonly reason: FrameErrorReason;
  /** The length the prefix announced. */
  readonly frameBytes: number;

  /** Creates the error for a prefix announcing `frameBytes` when the limit is `frameBytesMax`. */
  constructor(frameBytes: number, frameBytesMax: number) {
    super(
      frameBytes === 0
        ? "Frame length is zero"
        : `Frame length ${frameBytes} exceeds the limit of ${frameBytesMax} bytes`,
    );
    this.name = "FrameError";
    this.reason = frameBytes === 0 ? "empty" : "oversize";
    this.frameBytes = frameBytes;
  }
}

/** Throws unless `frameBytesMax` is an integer in 1..{@linkcode FRAME_BYTES_LIMIT}. */
export function assertFrameBytesMax(frameBytesMax: number): void {
  if (
    !Number.isSafeInteger(frameBytesMax) || frameBytesMax < 1 || frameBytesMax > FRAME_BYTES_LIMIT
  ) {
    throw new RangeError(
      `Frame size limit must be an integer from 1 to ${FRAME_BYTES_LIMIT}, got ${frameBytesMax}`,
    );
  }
}

/**
 * Writes the frame for `body` (prefix, then body) into `target` at `offset`; returns the offset
 * just past it. `target` must have `FRAME_HEADER_BYTES + body.length` bytes free at `offset`.
 */
export function writeFrame(target: Uint8Array, offset: number, body: Uint8Array): number {
  const bodyBytes = body.length;
  if (bodyBytes === 0 || bodyBytes > 0xffff_ffff) {
    throw new RangeError(`Frame body must hold 1 to 4294967295 bytes, got ${bodyBytes}`);
  }
  target[offset] = bodyBytes >>> 24;
  target[offset + 1] = (bodyBytes >>> 16) & 0xff;
  target[offset + 2] = (bodyBytes >>> 8) & 0xff;
  target[offset + 3] = bodyBytes & 0xff;
  target.set(body, offset + FRAME_HEADER_BYTES);
  return offset + FRAME_HEADER_BYTES + bodyBytes;
}

/**
 * Returns a new buffer holding the frame for `body`.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./frame.ts";
 * const frame = encodeFrame(new Uint8Array([0x90]));
 * // frame is 00 00 00 01 90
 * ```
 */
export function encodeFrame(body: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  writeFrame(frame, 0, body);
  return frame;
}

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Largest body accepted, in bytes. Default {@linkcode FRAME_BYTES_MAX_DEFAULT}. */
  frameBytesMax?: number;
}

/**
 * Splits a byte stream into frame bodies. Chunks may be cut anywhere and may hold several frames.
 *
 * A body that lies whole inside one chunk is returned as a view of that chunk (no copy), so a
 * chunk must not be modified after it is pushed. A body spread over several chunks is assembled
 * into its own buffer.
 *
 * After a {@linkcode FrameError} the decoder stays failed: the stream has lost its framing.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameDecoder } from "./frame.ts";
 * const decoder = new FrameDecoder();
 * for (const body of decoder.push(encodeFrame(new Uint8Array([1, 2])))) {
 *   console.log(body); // Uint8Array [1, 2]
 * }
 * ```
 */
export class FrameDecoder {
  #frameBytesMax: number;
  // The chunk being consumed, and how far.
  #chunk: Uint8Array = EMPTY;
  #pos = 0;
  // A length prefix split across chunks.
  #header = new Uint8Array(FRAME_HEADER_BYTES);
  #headerBytes = 0;
  // Length of the body being read, or -1 while reading a prefix.
  #bodyBytes = -1;
  // A body split across chunks: a growing buffer and how much of it is filled.
  #assembly: Uint8Array = EMPTY;
  #assemblyBytes = 0;
  #error: FrameError | null = null;

  /** Creates a decoder; see {@linkcode FrameDecoderOptions}. */
  constructor(options: FrameDecoderOptions = {}) {
    const frameBytesMax = options.frameBytesMax ?? FRAME_BYTES_MAX_DEFAULT;
    assertFrameBytesMax(frameBytesMax);
    this.#frameBytesMax = frameBytesMax;
  }

  /** Largest body accepted, in bytes. */
  get frameBytesMax(): number {
    return this.#frameBytesMax;
  }

  /** Bytes received but not yet returned as part of a complete body. */
  get bufferedBytes(): number {
    return (this.#chunk.length - this.#pos) + this.#headerBytes + this.#assemblyBytes;
  }

  /**
   * Bytes of memory the decoder holds: the partial body's buffer (its capacity, which may
   * exceed what arrived), a partial prefix, and the part of the last chunk not yet consumed.
   */
  get retainedBytes(): number {
    return this.#assembly.length + this.#headerBytes + (this.#chunk.length - this.#pos);
  }

  /**
   * Adds `chunk` and returns the complete bodies now available, in order.
   *
   * The chunk is taken at once; the bodies are produced as the result is iterated. Bodies not
   * iterated before the next `push` are kept and come out of the next result. Iteration throws
   * {@linkcode FrameError} on reaching an empty or oversized length prefix, after yielding every
   * body before it.
   */
  push(chunk: Uint8Array): Generator<Uint8Array, void, undefined> {
    if (this.#error !== null) throw this.#error;
    if (this.#pos < this.#chunk.length) {
      // The previous result was not drained: keep its bytes ahead of the new ones.
      const rest = this.#chunk.subarray(this.#pos);
      const joined = new Uint8Array(rest.length + chunk.length);
      joined.set(rest);
      joined.set(chunk, rest.length);
      this.#chunk = joined;
    } else {
      this.#chunk = chunk;
    }
    this.#pos = 0;
    return this.#drain();
  }

  *#drain(): Generator<Uint8Array, void, undefined> {
    while (true) {
      const body = this.#next();
      if (body === null) return;
      yield body;
    }
  }

  #next(): Uint8Array | null {
    if (this.#error !== null) throw this.#error;
    const chunk = this.#chunk;
    if (this.#bodyBytes < 0) {
      const bodyBytes = this.#readHeader(chunk);
      if (bodyBytes < 0) return null;
      if (bodyBytes === 0 || bodyBytes > this.#frameBytesMax) {
        this.#error = new FrameError(bodyBytes, this.#frameBytesMax);
        this.#chunk = EMPTY;
        this.#pos = 0;
        throw this.#error;
      }
      this.#bodyBytes = bodyBytes;
    }
    const bodyBytes = this.#bodyBytes;
    const available = chunk.length - this.#pos;
    if (this.#assemblyBytes === 0 && available >= bodyBytes) {
      const body = chunk.subarray(this.#pos, this.#pos + bodyBytes);
      this.#pos += bodyBytes;
      this.#bodyBytes = -1;
      return body;
    }
    const take = Math.min(bodyBytes - this.#assemblyBytes, available);
    if (take > 0) {
      this.#reserve(this.#assemblyBytes + take, bodyBytes);
      this.#assembly.set(chunk.subarray(this.#pos, this.#pos + take), this.#assemblyBytes);
      this.#assemblyBytes += take;
      this.#pos += take;
    }
    if (this.#assemblyBytes < bodyBytes) return null;
    const body = this.#assembly.length === bodyBytes
      ? this.#assembly
      : this.#assembly.slice(0, bodyBytes);
    this.#assembly = EMPTY;
    this.#assemblyBytes = 0;
    this.#bodyBytes = -1;
    return body;
  }

  // Returns the announced body length, or -1 when the prefix is not complete yet.
  #readHeader(chunk: Uint8Array): number {
    const pos = this.#pos;
    if (this.#headerBytes === 0 && chunk.length - pos >= FRAME_HEADER_BYTES) {
      this.#pos = pos + FRAME_HEADER_BYTES;
      // Multiply the top byte instead of shifting it so the result stays unsigned.
      return chunk[pos] * 0x100_0000 + ((chunk[pos + 1] << 16) | (chunk[pos + 2] << 8) |
        chunk[pos + 3]);
    }
    const take = Math.min(FRAME_HEADER_BYTES - this.#headerBytes, chunk.length - pos);
    this.#header.set(chunk.subarray(pos, pos + take), this.#headerBytes);
    this.#headerBytes += take;
    this.#pos = pos + take;
    if (this.#headerBytes < FRAME_HEADER_BYTES) return -1;
    this.#headerBytes = 0;
    const h = this.#header;
    return h[0] * 0x100_0000 + ((h[1] << 16) | (h[2] << 8) | h[3]);
  }

  // Grows the assembly buffer to hold `needBytes`, never beyond the body's final size.
  #reserve(needBytes: number, bodyBytes: number): void {
    if (this.#assembly.length >= needBytes) return;
    let capacity = Math.max(this.#assembly.length * 2, ASSEMBLY_BYTES_INITIAL);
    while (capacity < needBytes) capacity *= 2;
    const grown = new Uint8Array(Math.min(capacity, bodyBytes));
    grown.set(this.#assembly.subarray(0, this.#assemblyBytes));
    this.#assembly = grown;
  }
}
