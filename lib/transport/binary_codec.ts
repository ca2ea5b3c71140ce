/**
 * The binary body format of the hot frames: Raft App, AppResp, Heartbeat and HeartbeatResp
 * messages, `incr` and `get` requests, and their responses, alone or in batches (many requests,
 * or many responses, of one group in one body). Everything else is MessagePack
 * (see `codec.ts`, which chooses the form and dispatches on the first byte).
 *
 * A binary body starts with 0xc1, the one byte MessagePack never uses, then a tag byte naming
 * the layout, then fixed-layout fields, big-endian (docs/PROTOCOL.md, section 2a, has the byte
 * layouts). The format exists for speed: no type headers to walk, no structural pre-scan, no
 * intermediate arrays or maps; a term is 8 bytes read in two 32-bit loads.
 *
 * Decoding trusts nothing: every length is checked against the bytes that remain before
 * anything is allocated for it, strings must be valid UTF-8, every number must be in the range
 * the MessagePack form allows, unused flag bits must be 0, and bytes after the last field are an
 * error. Any failure is a {@linkcode ProtocolError}.
 *
 * Encoding returns null for a value this format does not carry (another message kind, a
 * snapshot, request `args`, a large response `data` map, a string over 65,535 UTF-8 bytes): the
 * caller then writes MessagePack. An invalid value (an out-of-range term, an unknown error code)
 * throws the same `TypeError` or `RangeError` as the MessagePack encoder.
 *
 * This module and `codec.ts` import each other; this side only uses codec.ts's values inside
 * functions, never while the module loads, so either may be imported first.
 *
 * @module
 */

import { type Entry, EntryType, type Message, MessageType } from "../raft/types.ts";
import {
  type ClientRequest,
  type ClientResponse,
  ELECTION_TICKS_WIRE_MAX,
  ENTRIES_PER_MESSAGE_MAX,
  type ErrorCode,
  ProtocolError,
  RAFT_NUMBER_LIMIT,
  type RaftBody,
  type RequestBatchBody,
  type RequestBody,
  type ResponseBatchBody,
  type ResponseBody,
  type WireMap,
} from "./codec.ts";

/** First byte of every binary body: reserved in MessagePack, so no MessagePack body starts so. */
export const BINARY_MARKER = 0xc1;

/** The tag byte after {@linkcode BINARY_MARKER}: which layout, version 1 of each. */
export enum BinaryTag {
  /** A Raft App, AppResp, Heartbeat or HeartbeatResp message without a snapshot. */
  Raft = 0x01,
  /** An `incr` or `get` request without `args`. */
  Request = 0x02,
  /** A response without `data`, or with a small `data` map of strings. */
  Response = 0x03,
  /** Requests of one group, each as in {@linkcode BinaryTag.Request} without marker and group. */
  RequestBatch = 0x04,
  /** Responses of one group, each as in {@linkcode BinaryTag.Response} without marker and group. */
  ResponseBatch = 0x05,
}

/** Most requests (or responses) one batch body carries; 0 is not a batch either. */
export const BATCH_ITEMS_MAX = 1024;

/**
 * Most bytes of item bodies an encoder joins into one batch: it closes the batch before the item
 * that would take it past this (or past the frame limit, if smaller) and starts another. A single
 * item larger than this goes alone. Decoders only apply the frame limit.
 */
export const BATCH_BYTES_SOFT_MAX = 64 * 1024;

// Fewest bytes one item of a batch takes: requestId, op and flags; requestId and flags.
const REQUEST_ITEM_BYTES_MIN = 8 + 1 + 1;
const RESPONSE_ITEM_BYTES_MIN = 8 + 1;

/** Most keys of a response `data` map the binary form carries; larger maps go as MessagePack. */
export const BINARY_DATA_KEYS_MAX = 8;

/**
 * Error codes by their number in a binary response (the list index; 0 is unused). Fixed wire
 * numbers: append new codes, never reorder.
 */
export const BINARY_ERROR_CODES: readonly (ErrorCode | null)[] = [
  null,
  "NOT_LEADER",
  "NO_LEADER",
  "UNKNOWN_GROUP",
  "OVERFLOW",
  "BAD_REQUEST",
  "UNKNOWN_OP",
  "TIMEOUT",
  "SHUTTING_DOWN",
  "BUSY",
  "NOT_APPLIED",
  "STALE_REQUEST",
  "REFUSED",
  "WRONG_CLUSTER",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
  "INTERNAL",
];

const ERROR_CODE_NUMBERS: ReadonlyMap<string, number> = new Map(
  BINARY_ERROR_CODES.flatMap((code, n) => code === null ? [] : [[code, n]]),
);

/** Ops of a binary request, by their number. */
const OP_INCR = 1;
const OP_GET = 2;

// Presence bits of a request's optional fields, in wire order.
const REQ_DELTA = 1 << 0;
const REQ_CLIENT_ID = 1 << 1;
const REQ_SEQ = 1 << 2;
const REQ_ACKED_BELOW = 1 << 3;
const REQ_CONSISTENCY = 1 << 4;
const REQ_CLUSTER_ID = 1 << 5;
const REQ_FLAGS_ALL = 0x3f;

// Flag bits of a response: `ok`, then the presence of each optional field, in wire order.
const RESP_OK = 1 << 0;
const RESP_VALUE = 1 << 1;
const RESP_ERROR = 1 << 2;
const RESP_CODE = 1 << 3;
const RESP_LEADER = 1 << 4;
const RESP_DATA = 1 << 5;
const RESP_CLUSTER_ID = 1 << 6;
const RESP_FLAGS_ALL = 0x7f;

// Flag bits of a Raft message.
const RAFT_REJECT = 1 << 0;
const RAFT_FLAGS_ALL = 0x01;

/** Bytes of an entry before its data: term, index (u64 each), type (u8), data length (u32). */
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 4;
const STR_BYTES_MAX = 0xffff;

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const TWO_32 = 2 ** 32;
// High 32-bit words: a term or index is below 2^48, a safe integer below 2^53.
const RAFT_HIGH_LIMIT = 2 ** 16;
const SAFE_HIGH_LIMIT = 2 ** 21;

// ---------------------------------------------------------------------------------------------
// Encoding

// Bodies are written straight into a shared slab and handed out as views of it, each body its
// own bytes that nothing writes again: connections queue the bytes they are given, and a typed
// array with its own buffer costs about ten times more to allocate than a view. A full slab is
// left to the views that still use it (freed with the last) and a new one started; a body that
// outgrows the slab moves to a buffer of its own size. The cost: a body kept for long pins its
// slab, at most SLAB_BYTES beyond the largest body.
const SLAB_BYTES = 64 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabView = new DataView(slab.buffer);
// Where the body being written starts in the slab, and the write position.
let base = 0;
let at = 0;
const utf8Encoder = new TextEncoder();

function reserve(bytes: number): void {
  if (at + bytes <= slab.length) return;
  const used = at - base;
  const grown = new Uint8Array(Math.max(SLAB_BYTES, 2 * (used + bytes)));
  grown.set(slab.subarray(base, at));
  slab = grown;
  slabView = new DataView(grown.buffer);
  base = 0;
  at = used;
}

// Starts a body of at most `bytesMax` bytes after the marker and tag: the one place an encode
// makes room, so the writers below never check.
function begin(tag: BinaryTag, bytesMax: number): void {
  at = base;
  reserve(2 + bytesMax);
  slab[at] = BINARY_MARKER;
  slab[at + 1] = tag;
  at += 2;
}

function finish(): Uint8Array {
  const body = slab.subarray(base, at);
  base = at;
  // A slab grown for one large body is not reused for the next small ones.
  if (slab.length > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabView = new DataView(slab.buffer);
    base = at = 0;
  }
  return body;
}

function putU8(n: number): void {
  slab[at++] = n;
}

function putU32(n: number): void {
  slabView.setUint32(at, n);
  at += 4;
}

// A non-negative safe integer as two 32-bit words.
function putU64(n: number): void {
  const high = (n / TWO_32) >>> 0;
  slabView.setUint32(at, high);
  slabView.setUint32(at + 4, n - high * TWO_32);
  at += 8;
}

function putI64(v: bigint): void {
  slabView.setBigInt64(at, v);
  at += 8;
}

// True when `s` is a string of at most 65,535 UTF-8 bytes, which the binary form can carry.
// Checked before anything is written, so an encoder gives up on the binary form up front.
function fits(s: string | undefined): boolean {
  if (typeof s !== "string") return true; // A wrong type is refused while writing.
  if (s.length <= STR_BYTES_MAX / 3) return true;
  if (s.length > STR_BYTES_MAX) return false;
  let bytes = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    // A surrogate pair counts 6 for its 4 bytes: the overestimate only sends a string within a
    // few bytes of the limit as MessagePack. (A lone surrogate is written as U+FFFD, 3 bytes.)
    bytes += c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
  }
  return bytes <= STR_BYTES_MAX;
}

// Most bytes putStr writes for `s`, 0 for a value that is not a string (refused when written).
function strBytesMax(s: string | undefined): number {
  return typeof s === "string" ? 2 + s.length * 3 : 0;
}

// A u16 byte length and the UTF-8 bytes; the caller checked the length with fits().
function putStr(s: string): void {
  const length = s.length;
  const start = at + 2;
  let i = 0;
  // ASCII, by far the common case (ids, ops, codes), byte by byte: cheaper than a call out.
  for (; i < length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) break;
    slab[start + i] = c;
  }
  let bytes = i;
  if (i < length) {
    bytes += utf8Encoder.encodeInto(s.substring(i), slab.subarray(start + i)).written;
  }
  if (bytes > STR_BYTES_MAX) throw new Error(`Unreachable: a string of ${bytes} bytes passed fits`);
  slab[at] = bytes >>> 8;
  slab[at + 1] = bytes & 0xff;
  at = start + bytes;
}

function putBytes(data: Uint8Array): void {
  slab.set(data, at);
  at += data.length;
}

function isHotRaftType(type: MessageType): boolean {
  return type === MessageType.App || type === MessageType.AppResp ||
    type === MessageType.Heartbeat || type === MessageType.HeartbeatResp;
}

/**
 * Encodes a Raft message as a binary body, or returns null when it is not a hot one (App,
 * AppResp, Heartbeat, HeartbeatResp, without a snapshot) or a string is too long. Throws
 * `TypeError`/`RangeError` for an invalid message.
 */
export function encodeRaftBinary(group: string, m: Message): Uint8Array | null {
  if (!isHotRaftType(m.type) || m.snapshot !== null) return null;
  assertGroup(group);
  if (m.entries.length > ENTRIES_PER_MESSAGE_MAX) {
    throw new RangeError(`A message carries at most ${ENTRIES_PER_MESSAGE_MAX} entries`);
  }
  if (typeof m.reject !== "boolean") throw new TypeError("Field reject must be a boolean");
  const ticks = m.electionTicks;
  const ticksOk = m.type === MessageType.HeartbeatResp
    ? Number.isSafeInteger(ticks) && ticks >= 1 && ticks <= ELECTION_TICKS_WIRE_MAX
    : ticks === 0;
  if (!ticksOk) {
    throw new RangeError(`Field electionTicks ${ticks} is invalid for message type ${m.type}`);
  }
  if (!fits(group) || !fits(m.from) || !fits(m.to)) return null;
  const from = id(m.from, "from");
  const to = id(m.to, "to");
  const entries = m.entries;
  let entriesBytes = 0;
  for (let i = 0; i < entries.length; i++) entriesBytes += entryBytes(entries[i]);
  begin(
    BinaryTag.Raft,
    strBytesMax(group) + 1 + strBytesMax(from) + strBytesMax(to) + RAFT_FIXED_BYTES +
      entriesBytes,
  );
  putStr(group);
  putU8(m.type);
  putStr(from);
  putStr(to);
  putU64(raftUint(m.term, "term"));
  putU64(raftUint(m.logTerm, "logTerm"));
  putU64(raftUint(m.index, "index"));
  putU64(raftUint(m.commit, "commit"));
  putU64(raftUint(m.rejectHint, "rejectHint"));
  putU64(raftUint(m.context, "context"));
  putU32(ticks);
  putU8(m.reject ? RAFT_REJECT : 0);
  putU32(entries.length);
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    putU64(e.term);
    putU64(e.index);
    putU8(e.type);
    putU32(e.data.length);
    putBytes(e.data);
  }
  return finish();
}

// Bytes of a Raft body after the strings and type: six u64, electionTicks, flags, entry count.
const RAFT_FIXED_BYTES = 6 * 8 + 4 + 1 + 4;

// Checks an entry before anything is written and returns the bytes it takes.
function entryBytes(e: Entry): number {
  if (e.type !== EntryType.Normal && e.type !== EntryType.Config) {
    throw new TypeError(`Unknown entry type ${e.type}`);
  }
  if (!(e.data instanceof Uint8Array)) throw new TypeError("Entry data must be a Uint8Array");
  if (!Number.isSafeInteger(e.index) || e.index < 1 || e.index >= RAFT_NUMBER_LIMIT) {
    throw new RangeError(`Entry index must be a positive integer below 2^48, got ${e.index}`);
  }
  raftUint(e.term, "entry term");
  return ENTRY_HEADER_BYTES + e.data.length;
}

/**
 * Encodes a request as a binary body, or returns null when it is not a hot one (op `incr` or
 * `get`, no `args`) or a string is too long. Throws `TypeError`/`RangeError` for an invalid
 * request.
 */
export function encodeRequestBinary(
  group: string,
  requestId: number,
  r: ClientRequest,
): Uint8Array | null {
  const op = r.op === "incr" ? OP_INCR : r.op === "get" ? OP_GET : 0;
  if (op === 0 || r.args !== undefined) return null;
  assertGroup(group);
  assertRequestId(requestId);
  let flags = 0;
  for (const key in r) {
    switch (key) {
      case "op":
      case "args":
        break;
      case "delta":
        if (r.delta !== undefined) flags |= REQ_DELTA;
        break;
      case "clientId":
        if (r.clientId !== undefined) flags |= REQ_CLIENT_ID;
        break;
      case "seq":
        if (r.seq !== undefined) flags |= REQ_SEQ;
        break;
      case "ackedBelow":
        if (r.ackedBelow !== undefined) flags |= REQ_ACKED_BELOW;
        break;
      case "consistency":
        if (r.consistency !== undefined) flags |= REQ_CONSISTENCY;
        break;
      case "clusterId":
        if (r.clusterId !== undefined) flags |= REQ_CLUSTER_ID;
        break;
      default:
        throw new TypeError(`Request has unknown field ${key}`);
    }
  }
  if (!fits(group) || !fits(r.clientId) || !fits(r.consistency) || !fits(r.clusterId)) {
    return null;
  }
  begin(
    BinaryTag.Request,
    strBytesMax(group) + 8 + 1 + 1 + 8 + strBytesMax(r.clientId) + 8 + 8 +
      strBytesMax(r.consistency) + strBytesMax(r.clusterId),
  );
  putStr(group);
  putU64(requestId);
  putU8(op);
  putU8(flags);
  if (flags & REQ_DELTA) putI64(int64(r.delta!, "delta"));
  if (flags & REQ_CLIENT_ID) putStr(str(r.clientId!, "clientId"));
  if (flags & REQ_SEQ) putU64(uint(r.seq!, "seq"));
  if (flags & REQ_ACKED_BELOW) putU64(uint(r.ackedBelow!, "ackedBelow"));
  if (flags & REQ_CONSISTENCY) putStr(str(r.consistency!, "consistency"));
  if (flags & REQ_CLUSTER_ID) putStr(str(r.clusterId!, "clusterId"));
  return finish();
}

/**
 * Encodes a response as a binary body, or returns null when it carries a `data` map the binary
 * form does not (more than {@linkcode BINARY_DATA_KEYS_MAX} keys, or a value that is not a
 * string) or a string is too long. Throws `TypeError`/`RangeError` for an invalid response.
 */
export function encodeResponseBinary(
  group: string,
  requestId: number,
  r: ClientResponse,
): Uint8Array | null {
  if (r.data !== undefined && !isSmallStringMap(r.data)) return null;
  assertGroup(group);
  assertRequestId(requestId);
  if (typeof r.ok !== "boolean") throw new TypeError("Field ok must be a boolean");
  let flags = r.ok ? RESP_OK : 0;
  for (const key in r) {
    switch (key) {
      case "ok":
        break;
      case "value":
        if (r.value !== undefined) flags |= RESP_VALUE;
        break;
      case "error":
        if (r.error !== undefined) flags |= RESP_ERROR;
        break;
      case "code":
        if (r.code !== undefined) flags |= RESP_CODE;
        break;
      case "leader":
        if (r.leader !== undefined) flags |= RESP_LEADER;
        break;
      case "data":
        if (r.data !== undefined) flags |= RESP_DATA;
        break;
      case "clusterId":
        if (r.clusterId !== undefined) flags |= RESP_CLUSTER_ID;
        break;
      default:
        throw new TypeError(`Response has unknown field ${key}`);
    }
  }
  let code = 0;
  if (r.code !== undefined) {
    code = ERROR_CODE_NUMBERS.get(r.code) ?? 0;
    if (code === 0) throw new TypeError(`Unknown error code ${r.code}`);
  }
  if (r.ok === (r.code !== undefined)) {
    throw new TypeError("Response must carry a code exactly when ok is false");
  }
  if (!fits(group) || !fits(r.error) || !fits(r.leader) || !fits(r.clusterId)) return null;
  let dataBytes = 0;
  if (r.data !== undefined) {
    dataBytes = 1;
    for (const key in r.data) dataBytes += strBytesMax(key) + strBytesMax(r.data[key] as string);
  }
  begin(
    BinaryTag.Response,
    strBytesMax(group) + 8 + 1 + 8 + strBytesMax(r.error) + 1 + strBytesMax(r.leader) +
      dataBytes + strBytesMax(r.clusterId),
  );
  putStr(group);
  putU64(requestId);
  putU8(flags);
  if (flags & RESP_VALUE) putI64(int64(r.value!, "value"));
  if (flags & RESP_ERROR) putStr(str(r.error!, "error"));
  if (flags & RESP_CODE) putU8(code);
  if (flags & RESP_LEADER) putStr(str(r.leader!, "leader"));
  if (flags & RESP_DATA) {
    const data = r.data as Record<string, string>;
    const keys = Object.keys(data);
    putU8(keys.length);
    for (const key of keys) {
      putStr(key);
      putStr(data[key]);
    }
  }
  if (flags & RESP_CLUSTER_ID) putStr(str(r.clusterId!, "clusterId"));
  return finish();
}

/**
 * True when `body` is a binary request body ({@linkcode encodeRequestBinary}'s output), which a
 * request batch can carry.
 */
export function isBinaryRequest(body: Uint8Array): boolean {
  return body.length > 2 && body[0] === BINARY_MARKER && body[1] === BinaryTag.Request;
}

/**
 * True when `body` is a binary response body ({@linkcode encodeResponseBinary}'s output), which
 * a response batch can carry.
 */
export function isBinaryResponse(body: Uint8Array): boolean {
  return body.length > 2 && body[0] === BINARY_MARKER && body[1] === BinaryTag.Response;
}

/**
 * Joins `bodies[0..count)`, binary request bodies of one group (from
 * {@linkcode encodeRequestBinary}), into one request batch body. Throws `RangeError` for a count
 * outside 1..{@linkcode BATCH_ITEMS_MAX}, `TypeError` for a body that is not a binary request or
 * names another group than the first.
 */
export function encodeRequestBatch(bodies: readonly Uint8Array[], count: number): Uint8Array {
  return encodeBatch(BinaryTag.RequestBatch, BinaryTag.Request, bodies, count);
}

/**
 * Joins `bodies[0..count)`, binary response bodies of one group (from
 * {@linkcode encodeResponseBinary}), into one response batch body; throws as
 * {@linkcode encodeRequestBatch}.
 */
export function encodeResponseBatch(bodies: readonly Uint8Array[], count: number): Uint8Array {
  return encodeBatch(BinaryTag.ResponseBatch, BinaryTag.Response, bodies, count);
}

// A batch is the first body's group, a u16 count, then each body after its group: the items are
// copied, never encoded again.
function encodeBatch(
  batchTag: BinaryTag,
  itemTag: BinaryTag,
  bodies: readonly Uint8Array[],
  count: number,
): Uint8Array {
  if (!Number.isSafeInteger(count) || count < 1 || count > BATCH_ITEMS_MAX) {
    throw new RangeError(`A batch carries 1 to ${BATCH_ITEMS_MAX} items, got ${count}`);
  }
  if (count > bodies.length) throw new RangeError(`Only ${bodies.length} bodies to batch`);
  const first = bodies[0];
  // Marker, tag, the group's u16 length and bytes: what every item drops.
  const prefix = first.length >= 4 ? 4 + ((first[2] << 8) | first[3]) : 0;
  let itemBytes = 0;
  for (let i = 0; i < count; i++) {
    const body = bodies[i];
    if (body.length <= prefix || body[0] !== BINARY_MARKER || body[1] !== itemTag) {
      throw new TypeError(`Batch item ${i} is not a binary body of tag ${itemTag}`);
    }
    for (let j = 2; j < prefix; j++) {
      if (body[j] !== first[j]) throw new TypeError(`Batch item ${i} is of another group`);
    }
    itemBytes += body.length - prefix;
  }
  begin(batchTag, prefix - 2 + 2 + itemBytes);
  copyIn(first, 2, prefix);
  slab[at] = count >>> 8;
  slab[at + 1] = count & 0xff;
  at += 2;
  for (let i = 0; i < count; i++) copyIn(bodies[i], prefix, bodies[i].length);
  return finish();
}

// Copies src[from..to) to the write position: byte by byte when short (no view to allocate).
function copyIn(src: Uint8Array, from: number, to: number): void {
  if (to - from > 64) {
    slab.set(src.subarray(from, to), at);
    at += to - from;
    return;
  }
  for (let i = from; i < to; i++) slab[at++] = src[i];
}

// A plain object of at most BINARY_DATA_KEYS_MAX string values (and no `__proto__` key, which a
// decoder must not assign): what a binary response carries in `data`.
function isSmallStringMap(data: WireMap): boolean {
  if (typeof data !== "object" || data === null) return false;
  const proto = Object.getPrototypeOf(data);
  if (proto !== Object.prototype && proto !== null) return false;
  let count = 0;
  for (const key in data) {
    if (!Object.hasOwn(data, key)) return false;
    if (++count > BINARY_DATA_KEYS_MAX || key === "__proto__") return false;
    const value = data[key];
    if (typeof value !== "string" || !fits(key) || !fits(value)) return false;
  }
  return true;
}

function assertGroup(group: string): void {
  if (typeof group !== "string" || group.length === 0) {
    throw new TypeError("Group must be a non-empty string");
  }
}

function assertRequestId(requestId: number): void {
  if (!Number.isSafeInteger(requestId) || requestId < 1) {
    throw new RangeError(`Request id must be a positive integer, got ${requestId}`);
  }
}

function raftUint(n: number, field: string): number {
  if (!Number.isSafeInteger(n) || n < 0 || n >= RAFT_NUMBER_LIMIT) {
    throw new RangeError(`Field ${field} must be a non-negative integer below 2^48, got ${n}`);
  }
  return n;
}

function uint(n: number, field: string): number {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`Field ${field} must be a non-negative safe integer, got ${n}`);
  }
  return n;
}

function int64(v: bigint, field: string): bigint {
  if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) {
    throw new RangeError(`Field ${field} must be a signed 64-bit bigint, got ${v}`);
  }
  return v;
}

function str(s: string, field: string): string {
  if (typeof s !== "string") throw new TypeError(`Field ${field} must be a string`);
  return s;
}

function id(s: string, field: string): string {
  if (typeof s !== "string" || s.length === 0) {
    throw new TypeError(`Field ${field} must be a non-empty string`);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Decoding

const utf8Decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A cursor over one binary body; every read checks the bytes that remain first. */
class Reader {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  pos: number;

  constructor(bytes: Uint8Array, pos: number) {
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
  }

  need(bytes: number, what: string): void {
    if (this.bytes.length - this.pos < bytes) {
      throw new ProtocolError(`Binary body ends inside ${what}`);
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.bytes[this.pos++];
  }

  u32(what: string): number {
    this.need(4, what);
    const n = this.view.getUint32(this.pos);
    this.pos += 4;
    return n;
  }

  // A u64 whose high word must be below `highLimit`, as a number.
  #u64(what: string, highLimit: number, range: string): number {
    this.need(8, what);
    const high = this.view.getUint32(this.pos);
    if (high >= highLimit) throw new ProtocolError(`Field ${what} is not ${range}`);
    const n = high * TWO_32 + this.view.getUint32(this.pos + 4);
    this.pos += 8;
    return n;
  }

  /** A term or index: below 2^48. */
  raftUint(what: string): number {
    return this.#u64(what, RAFT_HIGH_LIMIT, "a non-negative integer below 2^48");
  }

  /** A safe integer. */
  uint(what: string): number {
    return this.#u64(what, SAFE_HIGH_LIMIT, "a non-negative safe integer");
  }

  i64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  str(what: string): string {
    this.need(2, what);
    const bytes = this.bytes;
    const length = (bytes[this.pos] << 8) | bytes[this.pos + 1];
    this.pos += 2;
    this.need(length, what);
    const start = this.pos;
    this.pos += length;
    return decodeUtf8(bytes, start, length, what);
  }

  id(what: string): string {
    const s = this.str(what);
    if (s.length === 0) throw new ProtocolError(`Field ${what} is not a non-empty string`);
    return s;
  }

  end(): void {
    if (this.pos !== this.bytes.length) {
      throw new ProtocolError(`${this.bytes.length - this.pos} trailing bytes in a binary body`);
    }
  }
}

// Short strings repeat on the hot path: every Raft message carries the same group, from and to,
// every request the same group and client id. A small cache of recently decoded short strings,
// keyed by their exact bytes, turns most string decodes into a byte comparison. It is two-way
// set associative with LRU in each set: a stream of one-off strings (the ids of many clients)
// can only push a string that keeps being used (the group) to the second way, not out, which a
// direct-mapped cache did whenever two hot strings shared a slot. Hostile input can only cause
// misses; the cache holds STRING_CACHE_SETS * 2 buffers of 64 bytes, reused, never reallocated.
const STRING_CACHE_BYTES_MAX = 64;
const STRING_CACHE_SETS = 32;
const cachedBytes: Uint8Array[] = Array.from(
  { length: 2 * STRING_CACHE_SETS },
  () => new Uint8Array(STRING_CACHE_BYTES_MAX),
);
const cachedLengths = new Int32Array(2 * STRING_CACHE_SETS).fill(-1);
const cachedStrings: string[] = new Array(2 * STRING_CACHE_SETS).fill("");

function cachedAt(way: number, bytes: Uint8Array, start: number, length: number): boolean {
  if (cachedLengths[way] !== length) return false;
  const cached = cachedBytes[way];
  let i = 0;
  while (i < length && cached[i] === bytes[start + i]) i++;
  return i === length;
}

function decodeUtf8(bytes: Uint8Array, start: number, length: number, what: string): string {
  if (length === 0) return "";
  if (length > STRING_CACHE_BYTES_MAX) return decodeUtf8Checked(bytes, start, length, what);
  const end = start + length;
  // Hashed over every byte: ids such as 10.0.0.1:4000 and 10.0.0.2:4000 differ in the middle.
  let hash = length;
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + bytes[i]) | 0;
  // Way `first` of the set is its most recently used string, `first + 1` the other one.
  const first = 2 * ((hash ^ (hash >>> 15)) & (STRING_CACHE_SETS - 1));
  if (cachedAt(first, bytes, start, length)) return cachedStrings[first];
  const second = first + 1;
  if (cachedAt(second, bytes, start, length)) {
    const hit = cachedStrings[second];
    swapWays(first, second);
    return hit;
  }
  // ASCII, the common case, is built in one call: any ASCII bytes are valid UTF-8.
  let ascii = true;
  for (let i = start; i < end && ascii; i++) ascii = bytes[i] < 0x80;
  const s = ascii
    ? String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[])
    : decodeUtf8Checked(bytes, start, length, what);
  // The least recently used way is replaced: the other one moves down, the new string goes first.
  swapWays(first, second);
  cachedBytes[first].set(bytes.subarray(start, end));
  cachedLengths[first] = length;
  cachedStrings[first] = s;
  return s;
}

function swapWays(a: number, b: number): void {
  const bytes = cachedBytes[a];
  cachedBytes[a] = cachedBytes[b];
  cachedBytes[b] = bytes;
  const length = cachedLengths[a];
  cachedLengths[a] = cachedLengths[b];
  cachedLengths[b] = length;
  const s = cachedStrings[a];
  cachedStrings[a] = cachedStrings[b];
  cachedStrings[b] = s;
}

// The fatal decoder refuses invalid UTF-8.
function decodeUtf8Checked(bytes: Uint8Array, start: number, length: number, what: string): string {
  try {
    return utf8Decoder.decode(bytes.subarray(start, start + length));
  } catch (err) {
    throw new ProtocolError(`Field ${what} is not valid UTF-8`, { cause: err });
  }
}

/**
 * Decodes a binary body (one starting with {@linkcode BINARY_MARKER}). Throws
 * {@linkcode ProtocolError}, and only that, when the bytes are not a valid binary body.
 *
 * As with MessagePack bodies, a Raft message owns its bytes: entry data is copied out of `bytes`.
 */
export function decodeBinaryBody(
  bytes: Uint8Array,
): RaftBody | RequestBody | ResponseBody | RequestBatchBody | ResponseBatchBody {
  if (bytes.length < 2 || bytes[0] !== BINARY_MARKER) {
    throw new ProtocolError("Binary body (first byte 0xc1) ends before its tag");
  }
  const r = new Reader(bytes, 2);
  switch (bytes[1]) {
    case BinaryTag.Raft:
      return decodeRaft(r);
    case BinaryTag.Request:
      return decodeRequest(r);
    case BinaryTag.Response:
      return decodeResponse(r);
    case BinaryTag.RequestBatch:
      return decodeRequestBatch(r);
    case BinaryTag.ResponseBatch:
      return decodeResponseBatch(r);
    default:
      throw new ProtocolError(`Unknown binary body tag ${bytes[1]}`);
  }
}

function decodeRaft(r: Reader): RaftBody {
  const group = r.id("group");
  const type = r.u8("type");
  if (!isHotRaftType(type)) {
    throw new ProtocolError(`Raft message type ${type} has no binary form`);
  }
  const from = r.id("from");
  const to = r.id("to");
  const term = r.raftUint("term");
  const logTerm = r.raftUint("logTerm");
  const index = r.raftUint("index");
  const commit = r.raftUint("commit");
  const rejectHint = r.raftUint("rejectHint");
  const context = r.raftUint("context");
  const electionTicks = r.u32("electionTicks");
  if (type === MessageType.HeartbeatResp) {
    if (electionTicks < 1 || electionTicks > ELECTION_TICKS_WIRE_MAX) {
      throw new ProtocolError(
        `HeartbeatResp electionTicks ${electionTicks} is outside 1..${ELECTION_TICKS_WIRE_MAX}`,
      );
    }
  } else if (electionTicks !== 0) {
    throw new ProtocolError(
      `Field electionTicks is ${electionTicks} in a message other than HeartbeatResp`,
    );
  }
  const flags = r.u8("flags");
  if ((flags & ~RAFT_FLAGS_ALL) !== 0) throw new ProtocolError("Raft flags has unknown bits set");
  const entries = readEntries(r);
  r.end();
  // Built in the field order of the Message interface so every message shares one shape.
  const message: Message = {
    type,
    from,
    to,
    term,
    logTerm,
    index,
    entries,
    commit,
    reject: (flags & RAFT_REJECT) !== 0,
    rejectHint,
    context,
    electionTicks,
    snapshot: null,
  };
  return { kind: "raft", group, message };
}

function readEntries(r: Reader): Entry[] {
  const count = r.u32("entry count");
  if (count > ENTRIES_PER_MESSAGE_MAX) {
    throw new ProtocolError(`More than ${ENTRIES_PER_MESSAGE_MAX} entries in one message`);
  }
  // Every entry takes at least its header: a count the body cannot hold allocates nothing.
  r.need(count * ENTRY_HEADER_BYTES, "entries");
  const entries: Entry[] = new Array(count);
  if (count === 0) return entries;
  const bytes = r.bytes;
  const view = r.view;
  const first = r.pos;
  const dataStarts: number[] = new Array(count);
  const dataLengths: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    r.need(ENTRY_HEADER_BYTES, "an entry header");
    const term = r.raftUint("entry term");
    const index = r.raftUint("entry index");
    if (index < 1) throw new ProtocolError(`Entry ${i} has index 0`);
    const type = bytes[r.pos];
    if (type !== EntryType.Normal && type !== EntryType.Config) {
      throw new ProtocolError(`Entry ${i} has unknown type ${type}`);
    }
    const length = view.getUint32(r.pos + 1);
    r.pos += 5;
    r.need(length, "entry data");
    dataStarts[i] = r.pos - first;
    dataLengths[i] = length;
    r.pos += length;
    entries[i] = { term, index, type, data: EMPTY_DATA };
  }
  // Entry data is copied out of the receive buffer so a log that keeps entries does not pin
  // whole network reads: the entries' region in one copy (one allocation, not one per entry),
  // each entry's data a view of it.
  // (A view made by the constructor costs less than one made by subarray.)
  const owned = bytes.slice(first, r.pos).buffer;
  for (let i = 0; i < count; i++) {
    entries[i].data = new Uint8Array(owned, dataStarts[i], dataLengths[i]);
  }
  return entries;
}

const EMPTY_DATA = new Uint8Array(0);

function decodeRequest(r: Reader): RequestBody {
  const group = r.id("group");
  const requestId = readRequestId(r);
  const request = readRequest(r);
  r.end();
  return { kind: "request", group, requestId, request };
}

function decodeResponse(r: Reader): ResponseBody {
  const group = r.id("group");
  const requestId = readRequestId(r);
  const response = readResponse(r);
  r.end();
  return { kind: "response", group, requestId, response };
}

function decodeRequestBatch(r: Reader): RequestBatchBody {
  const group = r.id("group");
  const count = readBatchCount(r, REQUEST_ITEM_BYTES_MIN);
  const requestIds: number[] = new Array(count);
  const requests: ClientRequest[] = new Array(count);
  for (let i = 0; i < count; i++) {
    requestIds[i] = readRequestId(r);
    requests[i] = readRequest(r);
  }
  r.end();
  return { kind: "request_batch", group, requestIds, requests };
}

function decodeResponseBatch(r: Reader): ResponseBatchBody {
  const group = r.id("group");
  const count = readBatchCount(r, RESPONSE_ITEM_BYTES_MIN);
  const requestIds: number[] = new Array(count);
  const responses: ClientResponse[] = new Array(count);
  for (let i = 0; i < count; i++) {
    requestIds[i] = readRequestId(r);
    responses[i] = readResponse(r);
  }
  r.end();
  return { kind: "response_batch", group, requestIds, responses };
}

// A batch's item count: 1..BATCH_ITEMS_MAX, and no more than the rest of the body can hold, so a
// count alone allocates nothing.
function readBatchCount(r: Reader, itemBytesMin: number): number {
  r.need(2, "batch count");
  const count = (r.bytes[r.pos] << 8) | r.bytes[r.pos + 1];
  r.pos += 2;
  if (count < 1 || count > BATCH_ITEMS_MAX) {
    throw new ProtocolError(`Batch count ${count} is outside 1..${BATCH_ITEMS_MAX}`);
  }
  r.need(count * itemBytesMin, "batch items");
  return count;
}

function readRequestId(r: Reader): number {
  const requestId = r.uint("requestId");
  if (requestId < 1) throw new ProtocolError("Body request id is not a positive integer");
  return requestId;
}

function readRequest(r: Reader): ClientRequest {
  const op = r.u8("op");
  if (op !== OP_INCR && op !== OP_GET) throw new ProtocolError(`Unknown binary request op ${op}`);
  const flags = r.u8("flags");
  if ((flags & ~REQ_FLAGS_ALL) !== 0) throw new ProtocolError("Request flags has unknown bits set");
  const request: ClientRequest = { op: op === OP_INCR ? "incr" : "get" };
  if (flags & REQ_DELTA) request.delta = r.i64("delta");
  if (flags & REQ_CLIENT_ID) request.clientId = r.str("clientId");
  if (flags & REQ_SEQ) request.seq = r.uint("seq");
  if (flags & REQ_ACKED_BELOW) request.ackedBelow = r.uint("ackedBelow");
  if (flags & REQ_CONSISTENCY) request.consistency = r.str("consistency");
  if (flags & REQ_CLUSTER_ID) request.clusterId = r.str("clusterId");
  return request;
}

function readResponse(r: Reader): ClientResponse {
  const flags = r.u8("flags");
  if ((flags & ~RESP_FLAGS_ALL) !== 0) {
    throw new ProtocolError("Response flags has unknown bits set");
  }
  const response: ClientResponse = { ok: (flags & RESP_OK) !== 0 };
  if (flags & RESP_VALUE) response.value = r.i64("value");
  if (flags & RESP_ERROR) response.error = r.str("error");
  if (flags & RESP_CODE) {
    const n = r.u8("code");
    const code = n < BINARY_ERROR_CODES.length ? BINARY_ERROR_CODES[n] : null;
    if (code === null) throw new ProtocolError(`Response code ${n} is not a known error code`);
    response.code = code;
  }
  if (flags & RESP_LEADER) response.leader = r.str("leader");
  if (flags & RESP_DATA) response.data = readData(r);
  if (flags & RESP_CLUSTER_ID) response.clusterId = r.str("clusterId");
  if (response.ok === (response.code !== undefined)) {
    throw new ProtocolError("Response carries a code when ok is true or none when ok is false");
  }
  return response;
}

function readData(r: Reader): WireMap {
  const count = r.u8("data count");
  if (count > BINARY_DATA_KEYS_MAX) {
    throw new ProtocolError(`Response data has more than ${BINARY_DATA_KEYS_MAX} keys`);
  }
  const data: WireMap = {};
  for (let i = 0; i < count; i++) {
    const key = r.str("data key");
    if (key === "__proto__" || Object.hasOwn(data, key)) {
      throw new ProtocolError(`Response data key ${JSON.stringify(key)} is refused`);
    }
    data[key] = r.str("data value");
  }
  return data;
}
