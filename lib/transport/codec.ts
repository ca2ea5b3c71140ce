/**
 * Encoding and decoding of frame bodies: `[kind, group, requestId, payload]` in MessagePack, or,
 * for the hot frames (Raft App, AppResp, Heartbeat, HeartbeatResp; `incr` and `get` requests and
 * their responses), the binary form of `binary_codec.ts`, which starts with the byte 0xc1 that
 * MessagePack never uses. The encoders choose the binary form by themselves whenever it can
 * carry the value; {@linkcode decodeBody} accepts both forms for every kind it has.
 *
 * Decoding a MessagePack body trusts nothing: the bytes are first walked by a structural check
 * (limits, nesting, no extension types, no trailing bytes), then decoded, then every field is
 * checked for type and range. Any failure is a {@linkcode ProtocolError}; nothing else escapes {@linkcode decodeBody}.
 *
 * Encoding asserts the same rules on the way out, so a bug on this side fails here, loudly,
 * instead of making a peer drop the connection. A binary body is a view of a buffer shared with
 * other bodies: its bytes never change once returned, but its `.buffer` is not the caller's to
 * transfer or write through.
 *
 * @module
 */

import { Decoder, Encoder } from "@msgpack/msgpack";
import {
  type ConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  type Snapshot,
} from "../raft/types.ts";
import { type ScanLimits, scanMsgpack } from "./_msgpack_scan.ts";
import {
  BINARY_MARKER,
  decodeBinaryBody,
  encodeRaftBinary,
  encodeRequestBinary,
  encodeResponseBinary,
} from "./binary_codec.ts";
import { FRAME_BYTES_LIMIT } from "./frame.ts";

/** The `kind` field of a body. */
export enum BodyKind {
  /** A Raft message, node to node, one-way. */
  Raft = 1,
  /** A client request, client to node. */
  Request = 2,
  /** The answer to a request, node to client, with the request's id. */
  Response = 3,
  /** One chunk of an InstallSnapshot transfer, leader to follower, one-way. */
  SnapshotChunk = 4,
  /** A follower's acknowledgement of a snapshot chunk, one-way. */
  SnapshotAck = 5,
  /** A node's identity, the first body on each of its outbound peer connections, one-way. */
  Hello = 6,
  /**
   * One step of the peer authentication handshake (a cluster token's challenge and response),
   * the first bodies on a peer connection when the group has a cluster token. Kind 6 is the
   * identity HELLO.
   */
  PeerAuth = 7,
  /**
   * A node-level heartbeat, one-way: the sender's node is alive. Sent on a peer connection that
   * carried nothing else for a heartbeat interval, so that quiet groups' nodes still hear from
   * each other (see docs/DESIGN.md, "Quiescent groups").
   */
  PeerHeartbeat = 8,
}

/** Error codes a node puts in a failed {@linkcode ClientResponse}; see docs/PROTOCOL.md. */
export type ErrorCode =
  | "NOT_LEADER"
  | "NO_LEADER"
  | "UNKNOWN_GROUP"
  | "OVERFLOW"
  | "BAD_REQUEST"
  | "UNKNOWN_OP"
  | "TIMEOUT"
  | "SHUTTING_DOWN"
  | "BUSY"
  | "NOT_APPLIED"
  | "STALE_REQUEST"
  | "REFUSED"
  | "WRONG_CLUSTER"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "INTERNAL";

/** Every {@linkcode ErrorCode}, in documentation order. */
export const ERROR_CODES: readonly ErrorCode[] = [
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

const ERROR_CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

/** A MessagePack value as this codec decodes it: what may appear in `args` and `data`. */
export type WireValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | WireValue[]
  | { [key: string]: WireValue };

/** A map of wire values with string keys. */
export type WireMap = { [key: string]: WireValue };

/**
 * A client request. Only `op` is required; which other fields an op needs is the service's
 * business (it answers `BAD_REQUEST`), the codec only checks their types.
 */
export interface ClientRequest {
  /** The operation: "incr", "get", "status", or an admin op. Unknown ops pass through. */
  op: string;
  /** incr: the signed 64-bit amount to add. */
  delta?: bigint;
  /** incr: the client's id, for duplicate detection with `seq`. */
  clientId?: string;
  /** incr: the client's request sequence number, increasing per `clientId`. */
  seq?: number;
  /** incr: the client holds the answers to every `seq` below this, so the node may forget them. */
  ackedBelow?: number;
  /** get: the read consistency the client asks for. */
  consistency?: string;
  /** Arguments of admin ops. */
  args?: WireMap;
  /**
   * The cluster id the client pinned: a node of another cluster refuses the request with
   * `WRONG_CLUSTER` instead of serving it.
   */
  clusterId?: string;
}

/** A node's answer to a {@linkcode ClientRequest}. */
export interface ClientResponse {
  /** True when the operation succeeded. A failed response carries `code`. */
  ok: boolean;
  /** incr: the counter after the increment; get: the counter. Signed 64-bit. */
  value?: bigint;
  /** Human-readable failure message. */
  error?: string;
  /** Machine-readable failure code; present exactly when `ok` is false. */
  code?: ErrorCode;
  /** The leader's `HOST:PORT` as this node knows it, for redirects. */
  leader?: string;
  /** Results of status and admin ops. */
  data?: WireMap;
  /** The answering node's cluster id; sent when the request carried none, and with refusals. */
  clusterId?: string;
}

/** A decoded Raft body. */
export interface RaftBody {
  /** Discriminant. */
  kind: "raft";
  /** The Raft group id. */
  group: string;
  /** The message. */
  message: Message;
}

/** A decoded request body. */
export interface RequestBody {
  /** Discriminant. */
  kind: "request";
  /** The Raft group id the request is for. */
  group: string;
  /** The client's id for this request, echoed in the response; at least 1. */
  requestId: number;
  /** The request. */
  request: ClientRequest;
}

/** A decoded response body. */
export interface ResponseBody {
  /** Discriminant. */
  kind: "response";
  /** The Raft group id of the request. */
  group: string;
  /** The id of the request this answers. */
  requestId: number;
  /** The response. */
  response: ClientResponse;
}

/**
 * A decoded request batch: requests of one group sent in one frame (binary form only, see
 * docs/PROTOCOL.md section 2a). `requestIds[i]` is the id of `requests[i]`; each is answered
 * on its own.
 */
export interface RequestBatchBody {
  /** Discriminant. */
  kind: "request_batch";
  /** The Raft group id every request is for. */
  group: string;
  /** Each request's id, at least 1. */
  requestIds: number[];
  /** The requests, in the order they were sent. */
  requests: ClientRequest[];
}

/** A decoded response batch: answers to requests of one group, in one frame. */
export interface ResponseBatchBody {
  /** Discriminant. */
  kind: "response_batch";
  /** The Raft group id of the requests. */
  group: string;
  /** The id of the request each response answers. */
  requestIds: number[];
  /** The responses. */
  responses: ClientResponse[];
}

/**
 * One step of the peer handshake (see `lib/security/peer_auth.ts` and docs/PROTOCOL.md):
 * 1 (dialer to acceptor) `from`, `to` and the dialer's nonce; 2 (acceptor to dialer) the
 * acceptor's nonce and its MAC; 3 (dialer to acceptor) the dialer's MAC. Unused fields are
 * empty.
 */
export interface PeerAuth {
  /** 1, 2 or 3. */
  step: 1 | 2 | 3;
  /** The sender's node id. */
  from: string;
  /** The receiver's node id. */
  to: string;
  /** The sender's fresh nonce (steps 1 and 2), 32 bytes; empty in step 3. */
  nonce: Uint8Array;
  /** HMAC-SHA-256 of the handshake transcript (steps 2 and 3), 32 bytes; empty in step 1. */
  mac: Uint8Array;
}

/** Bytes of a peer handshake nonce and of its MACs (HMAC-SHA-256). */
export const PEER_AUTH_BYTES = 32;

/** A decoded peer handshake body. */
export interface PeerAuthBody {
  /** Discriminant. */
  kind: "peer_auth";
  /** The Raft group id. */
  group: string;
  /** The step. */
  auth: PeerAuth;
}

/**
 * A node-level heartbeat: node `from` is alive. It concerns no group; the body names one the
 * connection carries (whose HELLO the receiver accepted), so it passes the same gate as the
 * group's bodies.
 */
export interface PeerHeartbeat {
  /** The sending node's id. */
  from: string;
  /** The receiving node's id. */
  to: string;
}

/** A decoded node-level heartbeat body. */
export interface PeerHeartbeatBody {
  /** Discriminant. */
  kind: "peer_heartbeat";
  /** A group the connection carries. */
  group: string;
  /** The heartbeat. */
  heartbeat: PeerHeartbeat;
}

/** Any decoded body. */
export type DecodedBody =
  | RaftBody
  | RequestBody
  | ResponseBody
  | RequestBatchBody
  | ResponseBatchBody
  | SnapshotChunkBody
  | SnapshotAckBody
  | PeerAuthBody
  | HelloBody
  | PeerHeartbeatBody;

/**
 * Who is talking: the first body a node sends on each connection it opens to a peer. The
 * receiver accepts Raft and snapshot bodies on that connection only once it accepted this.
 */
export interface Hello {
  /** The sending node's id (`HOST:PORT`); every later body on the connection is from it. */
  from: string;
  /** The sender's data dir incarnation: 16 lowercase hex digits, random per data dir. */
  incarnation: string;
  /** The sender's cluster id (16 lowercase hex digits), or "" when it has none yet. */
  clusterId: string;
}

/** A decoded hello body. */
export interface HelloBody {
  /** Discriminant. */
  kind: "hello";
  /** The Raft group id. */
  group: string;
  /** The hello. */
  hello: Hello;
}

/**
 * One piece of a snapshot sent to a follower. A snapshot travels as chunks of at most a frame,
 * each acknowledged before the next is sent, so a large one never needs one huge frame.
 */
export interface SnapshotChunk {
  /** The leader. */
  from: string;
  /** The follower. */
  to: string;
  /** The leader's term. */
  term: number;
  /** Index of the last entry the snapshot covers. */
  index: number;
  /** Term of that entry. */
  snapTerm: number;
  /** The configuration the snapshot carries. */
  conf: ConfState;
  /** Byte offset of `data` within the snapshot's data. */
  offset: number;
  /** Size of the whole snapshot data. */
  totalBytes: number;
  /** CRC-32C of the whole snapshot data, checked by the follower once all chunks are in. */
  checksum: number;
  /** This chunk's bytes. */
  data: Uint8Array;
}

/** A follower's answer to a {@linkcode SnapshotChunk}. */
export interface SnapshotAck {
  /** The follower. */
  from: string;
  /** The leader. */
  to: string;
  /** The snapshot's index. */
  index: number;
  /** Bytes of the snapshot the follower now holds (the next offset it expects). */
  offset: number;
  /** False when the follower dropped the transfer (out of order, too large, bad checksum). */
  ok: boolean;
}

/** A decoded snapshot chunk body. */
export interface SnapshotChunkBody {
  /** Discriminant. */
  kind: "snapshot_chunk";
  /** The Raft group id. */
  group: string;
  /** The chunk. */
  chunk: SnapshotChunk;
}

/** A decoded snapshot acknowledgement body. */
export interface SnapshotAckBody {
  /** Discriminant. */
  kind: "snapshot_ack";
  /** The Raft group id. */
  group: string;
  /** The acknowledgement. */
  ack: SnapshotAck;
}

/** The bytes are not a valid body; the connection they came from must be closed. */
export class ProtocolError extends Error {
  /** Creates the error with the reason as its message. */
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = "ProtocolError";
  }
}

/**
 * Bound on every Raft term and index on the wire (terms, log indexes, commit, reject hints,
 * read contexts, snapshot and chunk indexes): each must be below 2^48.
 *
 * A term or index at the top of the safe-integer range (2^53 - 1) would pass a "safe integer"
 * check, but the node adds 1 to terms (a campaign) and indexes (the next entry), and storage
 * refuses to persist a value that is no longer safe: a single such message would stop a node at
 * its next fsync, on every restart. Below 2^48 there are 32 increments of headroom for every
 * value that can reach a node's state, and 2^48 is still far beyond use: one election per
 * millisecond takes 8,900 years to get there, and so does one entry per microsecond for 9 years.
 */
export const RAFT_NUMBER_LIMIT: number = 2 ** 48;

/**
 * Most entries one App message may carry. The leader sends at most about 43,700 (its 1 MiB
 * message budget counts at least 24 bytes per entry); anything beyond is refused at decode so
 * that a 4 MiB frame of empty entries cannot make the receiver build hundreds of megabytes of
 * objects.
 */
export const ENTRIES_PER_MESSAGE_MAX = 65_536;

/**
 * Decoding limits. Strings are ids, ops and messages; binary values are entry payloads and
 * snapshots, already bounded by the frame size. Array and map lengths bound what the decoder
 * allocates up front, and the total count of values bounds everything it builds for one body
 * (a full App message is about 5 values per entry), whatever the nesting.
 */
export const CODEC_LIMITS: Readonly<ScanLimits> = Object.freeze({
  strBytesMax: 64 * 1024,
  binBytesMax: FRAME_BYTES_LIMIT,
  arrayLengthMax: ENTRIES_PER_MESSAGE_MAX,
  mapLengthMax: 64 * 1024,
  // Body, payload, entries, entry: 4; request args and status data get a few levels more.
  depthMax: 8,
  valuesMax: ENTRIES_PER_MESSAGE_MAX * 5 + 1024,
});

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MAX_SAFE_BIGINT = BigInt(Number.MAX_SAFE_INTEGER);
const UINT32_LIMIT = 2 ** 32;
const INT32_MIN = -(2 ** 31);

const REQUEST_KEYS: ReadonlySet<string> = new Set([
  "op",
  "delta",
  "clientId",
  "seq",
  "ackedBelow",
  "consistency",
  "args",
  "clusterId",
]);
const RESPONSE_KEYS: ReadonlySet<string> = new Set([
  "ok",
  "value",
  "error",
  "code",
  "leader",
  "data",
  "clusterId",
]);
const MESSAGE_TYPES: ReadonlySet<unknown> = new Set(
  Object.values(MessageType).filter((v) => typeof v === "number"),
);
const ENTRY_TYPES: ReadonlySet<unknown> = new Set(
  Object.values(EntryType).filter((v) => typeof v === "number"),
);
const RAFT_FIELDS = 13;
/**
 * Largest election timeout (ticks) a HeartbeatResp may carry: well above the 60,000 ticks of the
 * longest `--election-timeout-ms`, far below anything that could overflow a tick count.
 */
export const ELECTION_TICKS_WIRE_MAX = 1_000_000;
const ENTRY_FIELDS = 4;
const SNAPSHOT_FIELDS = 5;

// One of each, reused: both are stateless between calls and re-entrant (they clone themselves
// if ever entered recursively), and reuse keeps the encoder's grown buffer.
const encoder = new Encoder({ useBigInt64: true, initialBufferSize: 16 * 1024 });
const decoder = new Decoder({
  useBigInt64: true,
  maxStrLength: CODEC_LIMITS.strBytesMax,
  maxBinLength: CODEC_LIMITS.binBytesMax,
  maxArrayLength: CODEC_LIMITS.arrayLengthMax,
  maxMapLength: CODEC_LIMITS.mapLengthMax,
  maxExtLength: 0,
});

// ---------------------------------------------------------------------------------------------
// Encoding

/**
 * Encodes a Raft message for `group` as a body (`requestId` 0): binary for App, AppResp,
 * Heartbeat and HeartbeatResp, MessagePack for the others (see the module documentation).
 *
 * @example
 * ```ts
 * import { makeMessage, MessageType } from "../raft/types.ts";
 * import { decodeBody, encodeRaft } from "./codec.ts";
 * const msg = makeMessage(MessageType.Heartbeat, { from: "a:1", to: "b:1", term: 3 });
 * const body = encodeRaft("counter", msg);
 * console.log(decodeBody(body)); // { kind: "raft", group: "counter", message: ... }
 * ```
 */
export function encodeRaft(group: string, message: Message): Uint8Array {
  return encodeRaftBinary(group, message) ?? encodeRaftMessagePack(group, message);
}

/**
 * Encodes a Raft message for `group` as a MessagePack body, whatever its type: the form every
 * receiver accepts, which {@linkcode encodeRaft} uses for the kinds without a binary form.
 */
export function encodeRaftMessagePack(group: string, message: Message): Uint8Array {
  assertGroup(group);
  const m = message;
  if (!MESSAGE_TYPES.has(m.type)) throw new TypeError(`Unknown message type ${m.type}`);
  if (m.entries.length > ENTRIES_PER_MESSAGE_MAX) {
    throw new RangeError(`A message carries at most ${ENTRIES_PER_MESSAGE_MAX} entries`);
  }
  const entries = new Array(m.entries.length);
  for (let i = 0; i < m.entries.length; i++) entries[i] = entryToWire(m.entries[i]);
  const payload = [
    m.type,
    id(m.from, "from"),
    id(m.to, "to"),
    raftUint(m.term, "term"),
    raftUint(m.logTerm, "logTerm"),
    raftUint(m.index, "index"),
    entries,
    raftUint(m.commit, "commit"),
    bool(m.reject, "reject"),
    raftUint(m.rejectHint, "rejectHint"),
    raftUint(m.context, "context"),
    m.snapshot === null ? null : snapshotToWire(m.snapshot),
    electionTicks(m),
  ];
  return encoder.encode([BodyKind.Raft, group, 0, payload]);
}

/** Encodes a snapshot chunk for `group` as a body. */
export function encodeSnapshotChunk(group: string, c: SnapshotChunk): Uint8Array {
  assertGroup(group);
  const payload = [
    id(c.from, "from"),
    id(c.to, "to"),
    raftUint(c.term, "term"),
    raftUint(c.index, "index"),
    raftUint(c.snapTerm, "snapTerm"),
    c.conf.voters.map((v) => id(v, "voter")),
    c.conf.learners.map((v) => id(v, "learner")),
    uint(c.offset, "offset"),
    uint(c.totalBytes, "totalBytes"),
    uint(c.checksum, "checksum"),
    c.data,
  ];
  return encoder.encode([BodyKind.SnapshotChunk, group, 0, payload]);
}

/** Encodes a snapshot chunk acknowledgement for `group` as a body. */
export function encodeSnapshotAck(group: string, a: SnapshotAck): Uint8Array {
  assertGroup(group);
  const payload = [
    id(a.from, "from"),
    id(a.to, "to"),
    raftUint(a.index, "index"),
    uint(a.offset, "offset"),
    bool(a.ok, "ok"),
  ];
  return encoder.encode([BodyKind.SnapshotAck, group, 0, payload]);
}

/** Encodes one step of the peer handshake for `group` as a body; see {@linkcode PeerAuth}. */
export function encodePeerAuth(group: string, a: PeerAuth): Uint8Array {
  assertGroup(group);
  if (a.step !== 1 && a.step !== 2 && a.step !== 3) throw new RangeError("Step must be 1, 2 or 3");
  const nonceBytes = a.step === 3 ? 0 : PEER_AUTH_BYTES;
  const macBytes = a.step === 1 ? 0 : PEER_AUTH_BYTES;
  if (a.nonce.length !== nonceBytes || a.mac.length !== macBytes) {
    throw new RangeError(`Step ${a.step} needs a ${nonceBytes}-byte nonce, a ${macBytes}-byte MAC`);
  }
  const payload = [a.step, id(a.from, "from"), id(a.to, "to"), a.nonce, a.mac];
  return encoder.encode([BodyKind.PeerAuth, group, 0, payload]);
}

/** Encodes a node-level heartbeat as a body of `group`; see {@linkcode PeerHeartbeat}. */
export function encodePeerHeartbeat(group: string, h: PeerHeartbeat): Uint8Array {
  assertGroup(group);
  const payload = [id(h.from, "from"), id(h.to, "to")];
  return encoder.encode([BodyKind.PeerHeartbeat, group, 0, payload]);
}

/** Pattern of an incarnation and of a non-empty cluster id: 16 lowercase hex digits. */
export const IDENTITY_HEX_PATTERN: RegExp = /^[0-9a-f]{16}$/;

/** Encodes a hello for `group` as a body; see {@linkcode Hello}. */
export function encodeHello(group: string, h: Hello): Uint8Array {
  assertGroup(group);
  if (typeof h.incarnation !== "string" || !IDENTITY_HEX_PATTERN.test(h.incarnation)) {
    throw new TypeError(`Field incarnation must be 16 lowercase hex digits, got ${h.incarnation}`);
  }
  if (
    typeof h.clusterId !== "string" ||
    (h.clusterId !== "" && !IDENTITY_HEX_PATTERN.test(h.clusterId))
  ) {
    throw new TypeError(
      `Field clusterId must be "" or 16 lowercase hex digits, got ${h.clusterId}`,
    );
  }
  const payload = [id(h.from, "from"), h.incarnation, h.clusterId];
  return encoder.encode([BodyKind.Hello, group, 0, payload]);
}

/**
 * Encodes a client request for `group` with `requestId` (at least 1) as a body: binary for
 * `incr` and `get` without `args`, MessagePack otherwise.
 */
export function encodeRequest(
  group: string,
  requestId: number,
  request: ClientRequest,
): Uint8Array {
  return encodeRequestBinary(group, requestId, request) ??
    encodeRequestMessagePack(group, requestId, request);
}

/** Encodes a client request as a MessagePack body, whatever its op; see {@linkcode encodeRequest}. */
export function encodeRequestMessagePack(
  group: string,
  requestId: number,
  request: ClientRequest,
): Uint8Array {
  assertGroup(group);
  assertRequestId(requestId);
  const r = request;
  if (typeof r.op !== "string" || r.op.length === 0) {
    throw new TypeError("Request op must be a non-empty string");
  }
  const payload: Record<string, unknown> = { op: r.op };
  if (r.delta !== undefined) payload.delta = int64(r.delta, "delta");
  if (r.clientId !== undefined) payload.clientId = str(r.clientId, "clientId");
  if (r.seq !== undefined) payload.seq = uint(r.seq, "seq");
  if (r.ackedBelow !== undefined) payload.ackedBelow = uint(r.ackedBelow, "ackedBelow");
  if (r.consistency !== undefined) payload.consistency = str(r.consistency, "consistency");
  if (r.args !== undefined) payload.args = wireMap(r.args, "args");
  if (r.clusterId !== undefined) payload.clusterId = str(r.clusterId, "clusterId");
  assertKnownKeys(r, REQUEST_KEYS, "Request");
  return encoder.encode([BodyKind.Request, group, wireUint(requestId), payload]);
}

/**
 * Encodes a response to request `requestId` of `group` as a body: binary unless `data` is more
 * than a few strings (then MessagePack).
 */
export function encodeResponse(
  group: string,
  requestId: number,
  response: ClientResponse,
): Uint8Array {
  return encodeResponseBinary(group, requestId, response) ??
    encodeResponseMessagePack(group, requestId, response);
}

/** Encodes a response as a MessagePack body, whatever it holds; see {@linkcode encodeResponse}. */
export function encodeResponseMessagePack(
  group: string,
  requestId: number,
  response: ClientResponse,
): Uint8Array {
  assertGroup(group);
  assertRequestId(requestId);
  const r = response;
  const payload: Record<string, unknown> = { ok: bool(r.ok, "ok") };
  if (r.value !== undefined) payload.value = int64(r.value, "value");
  if (r.error !== undefined) payload.error = str(r.error, "error");
  if (r.code !== undefined) {
    if (!ERROR_CODE_SET.has(r.code)) throw new TypeError(`Unknown error code ${r.code}`);
    payload.code = r.code;
  }
  if (r.leader !== undefined) payload.leader = str(r.leader, "leader");
  if (r.data !== undefined) payload.data = wireMap(r.data, "data");
  if (r.clusterId !== undefined) payload.clusterId = str(r.clusterId, "clusterId");
  assertKnownKeys(r, RESPONSE_KEYS, "Response");
  if (r.ok === (r.code !== undefined)) {
    throw new TypeError("Response must carry a code exactly when ok is false");
  }
  return encoder.encode([BodyKind.Response, group, wireUint(requestId), payload]);
}

function entryToWire(e: Entry): unknown[] {
  if (!ENTRY_TYPES.has(e.type)) throw new TypeError(`Unknown entry type ${e.type}`);
  if (!(e.data instanceof Uint8Array)) throw new TypeError("Entry data must be a Uint8Array");
  if (!Number.isSafeInteger(e.index) || e.index < 1 || e.index >= RAFT_NUMBER_LIMIT) {
    throw new RangeError(`Entry index must be a positive integer below 2^48, got ${e.index}`);
  }
  return [raftUint(e.term, "entry term"), wireUint(e.index), e.type, e.data];
}

function snapshotToWire(s: Snapshot): unknown[] {
  if (!(s.data instanceof Uint8Array)) throw new TypeError("Snapshot data must be a Uint8Array");
  return [
    raftUint(s.index, "snapshot index"),
    raftUint(s.term, "snapshot term"),
    idList(s.conf.voters, "voters"),
    idList(s.conf.learners, "learners"),
    s.data,
  ];
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

function assertKnownKeys(value: object, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(value)) {
    if (!known.has(key)) throw new TypeError(`${what} has unknown field ${key}`);
  }
}

// The encoder writes a number of 2^32 or more as a float when bigints are enabled, so such
// numbers go out as bigints, which it writes as 64-bit integers.
function wireUint(n: number): number | bigint {
  return n < UINT32_LIMIT ? n : BigInt(n);
}

/** The `electionTicks` field on the way out, under the rules {@linkcode readElectionTicks} checks. */
function electionTicks(m: Message): number {
  const n = m.electionTicks;
  const ok = m.type === MessageType.HeartbeatResp
    ? Number.isSafeInteger(n) && n >= 1 && n <= ELECTION_TICKS_WIRE_MAX
    : n === 0;
  if (!ok) throw new RangeError(`Field electionTicks ${n} is invalid for message type ${m.type}`);
  return n;
}

function raftUint(n: number, field: string): number | bigint {
  if (!Number.isSafeInteger(n) || n < 0 || n >= RAFT_NUMBER_LIMIT) {
    throw new RangeError(`Field ${field} must be a non-negative integer below 2^48, got ${n}`);
  }
  return wireUint(n);
}

function uint(n: number, field: string): number | bigint {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`Field ${field} must be a non-negative safe integer, got ${n}`);
  }
  return wireUint(n);
}

// Small values go out as numbers so they take the compact encodings instead of 9 bytes.
function int64(v: bigint, field: string): number | bigint {
  if (typeof v !== "bigint" || v < INT64_MIN || v > INT64_MAX) {
    throw new RangeError(`Field ${field} must be a signed 64-bit bigint, got ${v}`);
  }
  return v >= INT32_MIN && v < UINT32_LIMIT ? Number(v) : v;
}

function bool(b: boolean, field: string): boolean {
  if (typeof b !== "boolean") throw new TypeError(`Field ${field} must be a boolean`);
  return b;
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

function idList(ids: string[], field: string): string[] {
  if (!Array.isArray(ids)) throw new TypeError(`Field ${field} must be an array`);
  for (const s of ids) id(s, field);
  return ids;
}

// Checks a free-form map on the way out and returns a copy with large numbers widened; depth
// counts the levels the body and payload already use.
function wireMap(map: WireMap, field: string): WireMap {
  if (!isPlainMap(map)) throw new TypeError(`Field ${field} must be a plain object`);
  return wireValue(map, field, 3) as WireMap;
}

function wireValue(v: unknown, field: string, depth: number): unknown {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (v instanceof Uint8Array) return v;
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return v >= INT32_MIN ? wireUint(v) : BigInt(v);
    if (Number.isFinite(v)) return v;
    throw new RangeError(`Field ${field} holds a non-finite number`);
  }
  if (typeof v === "bigint") return int64(v, field);
  if (depth > CODEC_LIMITS.depthMax) {
    throw new RangeError(`Field ${field} nests deeper than the protocol allows`);
  }
  if (Array.isArray(v)) return v.map((item) => wireValue(item, field, depth + 1));
  if (isPlainMap(v)) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(v)) {
      if (item !== undefined) out[key] = wireValue(item, field, depth + 1);
    }
    return out;
  }
  throw new TypeError(`Field ${field} holds a value MessagePack cannot carry`);
}

function isPlainMap(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/**
 * Decodes a frame body, binary (first byte 0xc1) or MessagePack. Throws
 * {@linkcode ProtocolError}, and only that, when the bytes are not a valid body.
 *
 * The returned Raft message owns its bytes (entry and snapshot data are copied out of `bytes`);
 * binary values inside request `args` or response `data` are views of `bytes`.
 */
export function decodeBody(bytes: Uint8Array): DecodedBody {
  if (bytes.length > 0 && bytes[0] === BINARY_MARKER) return decodeBinaryBody(bytes);
  const problem = scanMsgpack(bytes, CODEC_LIMITS);
  if (problem !== null) throw new ProtocolError(problem);
  let body: unknown;
  try {
    body = decoder.decode(bytes);
  } catch (err) {
    // The scan admits only what the decoder accepts; reaching here means they disagree.
    throw new ProtocolError(`Malformed MessagePack: ${errorMessage(err)}`, { cause: err });
  }
  if (!Array.isArray(body) || body.length !== 4) {
    throw new ProtocolError("Body is not an array of 4 elements");
  }
  const [kind, group, requestId, payload] = body;
  if (typeof group !== "string" || group.length === 0) {
    throw new ProtocolError("Body group is not a non-empty string");
  }
  switch (kind) {
    case BodyKind.Raft:
      if (requestId !== 0) throw new ProtocolError("Raft body has a request id other than 0");
      return { kind: "raft", group, message: decodeMessage(payload) };
    case BodyKind.Request:
      return {
        kind: "request",
        group,
        requestId: decodeRequestId(requestId),
        request: decodeRequest(payload),
      };
    case BodyKind.PeerAuth:
      if (requestId !== 0) throw new ProtocolError("Peer auth body has a request id other than 0");
      return { kind: "peer_auth", group, auth: decodePeerAuth(payload) };
    case BodyKind.Response:
      return {
        kind: "response",
        group,
        requestId: decodeRequestId(requestId),
        response: decodeResponse(payload),
      };
    case BodyKind.SnapshotChunk:
      if (requestId !== 0) throw new ProtocolError("Snapshot body has a request id other than 0");
      return { kind: "snapshot_chunk", group, chunk: decodeSnapshotChunk(payload) };
    case BodyKind.SnapshotAck:
      if (requestId !== 0) throw new ProtocolError("Snapshot body has a request id other than 0");
      return { kind: "snapshot_ack", group, ack: decodeSnapshotAck(payload) };
    case BodyKind.Hello:
      if (requestId !== 0) throw new ProtocolError("Hello body has a request id other than 0");
      return { kind: "hello", group, hello: decodeHello(payload) };
    case BodyKind.PeerHeartbeat:
      if (requestId !== 0) {
        throw new ProtocolError("Peer heartbeat body has a request id other than 0");
      }
      return { kind: "peer_heartbeat", group, heartbeat: decodePeerHeartbeat(payload) };
    default:
      throw new ProtocolError(`Unknown body kind ${describe(kind)}`);
  }
}

const SNAPSHOT_CHUNK_FIELDS = 11;
const SNAPSHOT_ACK_FIELDS = 5;

function decodeSnapshotChunk(p: unknown): SnapshotChunk {
  if (!Array.isArray(p) || p.length !== SNAPSHOT_CHUNK_FIELDS) {
    throw new ProtocolError(`Snapshot chunk is not an array of ${SNAPSHOT_CHUNK_FIELDS} fields`);
  }
  const chunk: SnapshotChunk = {
    from: readId(p[0], "from"),
    to: readId(p[1], "to"),
    term: readRaftUint(p[2], "term"),
    index: readRaftUint(p[3], "index"),
    snapTerm: readRaftUint(p[4], "snapTerm"),
    conf: { voters: readIdList(p[5], "voters"), learners: readIdList(p[6], "learners") },
    offset: readUint(p[7], "offset"),
    totalBytes: readUint(p[8], "totalBytes"),
    checksum: readUint(p[9], "checksum"),
    data: readBin(p[10], "data").slice(),
  };
  if (chunk.offset + chunk.data.length > chunk.totalBytes) {
    throw new ProtocolError("Snapshot chunk reaches past the snapshot's size");
  }
  if (chunk.checksum > 0xffff_ffff) throw new ProtocolError("Snapshot checksum is not 32-bit");
  return chunk;
}

function decodeSnapshotAck(p: unknown): SnapshotAck {
  if (!Array.isArray(p) || p.length !== SNAPSHOT_ACK_FIELDS) {
    throw new ProtocolError(`Snapshot ack is not an array of ${SNAPSHOT_ACK_FIELDS} fields`);
  }
  return {
    from: readId(p[0], "from"),
    to: readId(p[1], "to"),
    index: readRaftUint(p[2], "index"),
    offset: readUint(p[3], "offset"),
    ok: readBool(p[4], "ok"),
  };
}

function decodePeerAuth(p: unknown): PeerAuth {
  if (!Array.isArray(p) || p.length !== 5) {
    throw new ProtocolError("Peer auth is not an array of 5 fields");
  }
  const step = p[0];
  if (step !== 1 && step !== 2 && step !== 3) throw new ProtocolError("Peer auth step is not 1-3");
  const nonce = readBin(p[3], "nonce").slice();
  const mac = readBin(p[4], "mac").slice();
  const nonceBytes = step === 3 ? 0 : PEER_AUTH_BYTES;
  const macBytes = step === 1 ? 0 : PEER_AUTH_BYTES;
  if (nonce.length !== nonceBytes || mac.length !== macBytes) {
    throw new ProtocolError(`Peer auth step ${step} has a nonce or MAC of the wrong size`);
  }
  return { step, from: readId(p[1], "from"), to: readId(p[2], "to"), nonce, mac };
}

const HELLO_FIELDS = 3;

const PEER_HEARTBEAT_FIELDS = 2;

function decodePeerHeartbeat(p: unknown): PeerHeartbeat {
  if (!Array.isArray(p) || p.length !== PEER_HEARTBEAT_FIELDS) {
    throw new ProtocolError(`Peer heartbeat is not an array of ${PEER_HEARTBEAT_FIELDS} fields`);
  }
  return { from: readId(p[0], "from"), to: readId(p[1], "to") };
}

function decodeHello(p: unknown): Hello {
  if (!Array.isArray(p) || p.length !== HELLO_FIELDS) {
    throw new ProtocolError(`Hello is not an array of ${HELLO_FIELDS} fields`);
  }
  const from = readId(p[0], "from");
  const incarnation = p[1];
  if (typeof incarnation !== "string" || !IDENTITY_HEX_PATTERN.test(incarnation)) {
    throw new ProtocolError("Hello field incarnation is not 16 lowercase hex digits");
  }
  const clusterId = p[2];
  if (
    typeof clusterId !== "string" || (clusterId !== "" && !IDENTITY_HEX_PATTERN.test(clusterId))
  ) {
    throw new ProtocolError("Hello field clusterId is neither empty nor 16 lowercase hex digits");
  }
  return { from, incarnation, clusterId };
}

function decodeRequestId(v: unknown): number {
  const n = asUint(v);
  if (n === null || n < 1) throw new ProtocolError("Body request id is not a positive integer");
  return n;
}

function decodeMessage(p: unknown): Message {
  if (!Array.isArray(p) || p.length !== RAFT_FIELDS) {
    throw new ProtocolError(`Raft payload is not an array of ${RAFT_FIELDS} fields`);
  }
  const type = p[0];
  if (!MESSAGE_TYPES.has(type)) {
    throw new ProtocolError(`Unknown Raft message type ${describe(type)}`);
  }
  // Built in the field order of the Message interface so every message shares one shape.
  return {
    type: type as MessageType,
    from: readId(p[1], "from"),
    to: readId(p[2], "to"),
    term: readRaftUint(p[3], "term"),
    logTerm: readRaftUint(p[4], "logTerm"),
    index: readRaftUint(p[5], "index"),
    entries: readEntries(p[6]),
    commit: readRaftUint(p[7], "commit"),
    reject: readBool(p[8], "reject"),
    rejectHint: readRaftUint(p[9], "rejectHint"),
    context: readRaftUint(p[10], "context"),
    electionTicks: readElectionTicks(type as MessageType, p[12]),
    snapshot: p[11] === null ? null : readSnapshot(p[11]),
  };
}

/**
 * The `electionTicks` field: a HeartbeatResp carries its sender's election timeout (it bounds
 * the leader's lease, so a missing or absurd one is refused); every other kind carries 0.
 */
function readElectionTicks(type: MessageType, v: unknown): number {
  const n = readUint(v, "electionTicks");
  if (type === MessageType.HeartbeatResp) {
    if (n < 1 || n > ELECTION_TICKS_WIRE_MAX) {
      throw new ProtocolError(
        `HeartbeatResp electionTicks ${n} is outside 1..${ELECTION_TICKS_WIRE_MAX}`,
      );
    }
  } else if (n !== 0) {
    throw new ProtocolError(`Field electionTicks is ${n} in a message other than HeartbeatResp`);
  }
  return n;
}

function readEntries(v: unknown): Entry[] {
  if (!Array.isArray(v)) throw new ProtocolError("Raft field entries is not an array");
  if (v.length > ENTRIES_PER_MESSAGE_MAX) {
    throw new ProtocolError(`More than ${ENTRIES_PER_MESSAGE_MAX} entries in one message`);
  }
  const entries: Entry[] = new Array(v.length);
  let dataBytes = 0;
  for (let i = 0; i < v.length; i++) {
    const e = v[i];
    if (!Array.isArray(e) || e.length !== ENTRY_FIELDS) {
      throw new ProtocolError(`Entry ${i} is not an array of ${ENTRY_FIELDS} fields`);
    }
    const index = readRaftUint(e[1], "entry index");
    if (index < 1) throw new ProtocolError(`Entry ${i} has index 0`);
    if (!ENTRY_TYPES.has(e[2])) {
      throw new ProtocolError(`Entry ${i} has unknown type ${describe(e[2])}`);
    }
    const data = readBin(e[3], "entry data");
    dataBytes += data.length;
    entries[i] = { term: readRaftUint(e[0], "entry term"), index, type: e[2] as EntryType, data };
  }
  // Entry data is copied out of the receive buffer so a log that keeps entries does not pin
  // whole network reads; into one shared buffer, because a typed array allocation per entry
  // costs several times the rest of decoding.
  const owned = new Uint8Array(dataBytes);
  let offset = 0;
  for (const entry of entries) {
    const length = entry.data.length;
    owned.set(entry.data, offset);
    entry.data = owned.subarray(offset, offset + length);
    offset += length;
  }
  return entries;
}

function readSnapshot(v: unknown): Snapshot {
  if (!Array.isArray(v) || v.length !== SNAPSHOT_FIELDS) {
    throw new ProtocolError(`Raft field snapshot is not nil or an array of ${SNAPSHOT_FIELDS}`);
  }
  const conf: ConfState = {
    voters: readIdList(v[2], "snapshot voters"),
    learners: readIdList(v[3], "snapshot learners"),
  };
  return {
    index: readRaftUint(v[0], "snapshot index"),
    term: readRaftUint(v[1], "snapshot term"),
    conf,
    data: readBin(v[4], "snapshot data").slice(),
  };
}

function decodeRequest(p: unknown): ClientRequest {
  if (!isDecodedMap(p)) throw new ProtocolError("Request payload is not a map");
  checkKeys(p, REQUEST_KEYS, "Request");
  if (typeof p.op !== "string" || p.op.length === 0) {
    throw new ProtocolError("Request field op is not a non-empty string");
  }
  const request: ClientRequest = { op: p.op };
  if (p.delta !== undefined) request.delta = readInt64(p.delta, "delta");
  if (p.clientId !== undefined) request.clientId = readStr(p.clientId, "clientId");
  if (p.seq !== undefined) request.seq = readUint(p.seq, "seq");
  if (p.ackedBelow !== undefined) request.ackedBelow = readUint(p.ackedBelow, "ackedBelow");
  if (p.consistency !== undefined) request.consistency = readStr(p.consistency, "consistency");
  if (p.args !== undefined) request.args = readMap(p.args, "args");
  if (p.clusterId !== undefined) request.clusterId = readStr(p.clusterId, "clusterId");
  return request;
}

function decodeResponse(p: unknown): ClientResponse {
  if (!isDecodedMap(p)) throw new ProtocolError("Response payload is not a map");
  checkKeys(p, RESPONSE_KEYS, "Response");
  const response: ClientResponse = { ok: readBool(p.ok, "ok") };
  if (p.value !== undefined) response.value = readInt64(p.value, "value");
  if (p.error !== undefined) response.error = readStr(p.error, "error");
  if (p.code !== undefined) {
    if (typeof p.code !== "string" || !ERROR_CODE_SET.has(p.code)) {
      throw new ProtocolError(`Response field code is not a known error code`);
    }
    response.code = p.code as ErrorCode;
  }
  if (p.leader !== undefined) response.leader = readStr(p.leader, "leader");
  if (p.data !== undefined) response.data = readMap(p.data, "data");
  if (p.clusterId !== undefined) response.clusterId = readStr(p.clusterId, "clusterId");
  if (response.ok === (response.code !== undefined)) {
    throw new ProtocolError("Response carries a code when ok is true or none when ok is false");
  }
  return response;
}

// What the decoder produced for a MessagePack map (the scan already excluded extensions).
function isDecodedMap(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function checkKeys(map: Record<string, unknown>, known: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(map)) {
    if (!known.has(key)) throw new ProtocolError(`${what} has unknown field ${describe(key)}`);
  }
}

function readMap(v: unknown, field: string): WireMap {
  if (!isDecodedMap(v)) throw new ProtocolError(`Field ${field} is not a map`);
  return v as WireMap;
}

// A uint field as a number, or null when it is not one. The decoder gives 64-bit encodings as
// bigints, which are fine as long as they fit a safe integer.
function asUint(v: unknown): number | null {
  if (typeof v === "number") return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v === "bigint") return v >= 0n && v <= MAX_SAFE_BIGINT ? Number(v) : null;
  return null;
}

function readUint(v: unknown, field: string): number {
  const n = asUint(v);
  if (n === null) throw new ProtocolError(`Field ${field} is not a non-negative safe integer`);
  return n;
}

// Terms and indexes: see RAFT_NUMBER_LIMIT.
function readRaftUint(v: unknown, field: string): number {
  const n = asUint(v);
  if (n === null || n >= RAFT_NUMBER_LIMIT) {
    throw new ProtocolError(`Field ${field} is not a non-negative integer below 2^48`);
  }
  return n;
}

function readInt64(v: unknown, field: string): bigint {
  if (typeof v === "bigint") {
    if (v >= INT64_MIN && v <= INT64_MAX) return v;
  } else if (typeof v === "number" && Number.isSafeInteger(v)) {
    return BigInt(v);
  }
  throw new ProtocolError(`Field ${field} is not a signed 64-bit integer`);
}

function readBool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") throw new ProtocolError(`Field ${field} is not a boolean`);
  return v;
}

function readStr(v: unknown, field: string): string {
  if (typeof v !== "string") throw new ProtocolError(`Field ${field} is not a string`);
  return v;
}

function readId(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length === 0) {
    throw new ProtocolError(`Field ${field} is not a non-empty string`);
  }
  return v;
}

function readIdList(v: unknown, field: string): string[] {
  if (!Array.isArray(v)) throw new ProtocolError(`Field ${field} is not an array`);
  for (const item of v) readId(item, field);
  return v as string[];
}

function readBin(v: unknown, field: string): Uint8Array {
  if (!(v instanceof Uint8Array)) throw new ProtocolError(`Field ${field} is not binary`);
  return v;
}

// Short, safe rendering of an untrusted value for an error message.
function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  if (typeof v === "number" || typeof v === "bigint" || typeof v === "boolean") {
    return String(v);
  }
  if (v === null) return "nil";
  if (v instanceof Uint8Array) return "binary";
  return Array.isArray(v) ? "array" : "map";
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
