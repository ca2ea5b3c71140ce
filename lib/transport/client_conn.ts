/**
 * A client's connection to one node: many requests in flight, matched to responses by id.
 *
 * Cost model: a busy client has hundreds of calls in flight per connection, and a timer per
 * call (set, then cleared when the answer comes) costs more than the rest of the call's
 * bookkeeping. So calls are kept by request id (in a ring, see `calls_by_id.ts`), in the order
 * they were sent, each with its deadline, and one timer per connection sweeps them: it is armed
 * for the earliest deadline, fails every call whose deadline has passed, and re-arms for the next
 * one. An answer only deletes its call. Sweeps run at most once per {@linkcode SWEEP_MS_MIN}, so a
 * call fails at its timeout or up to that much later, never earlier.
 *
 * Requests made in one turn of the event loop go out as one frame: each is encoded (and so
 * checked) when it is made, and a microtask joins the binary ones of a group into one request
 * batch (docs/PROTOCOL.md, section 2a), so the node decodes one frame instead of hundreds and
 * answers them in response batches. A request without a binary form closes the batch being
 * filled and goes alone, so requests still leave in the order they were made. A node from before
 * batches closes the connection on a batch: upgrade nodes before clients.
 *
 * @module
 */

import { type Logger, silentLogger } from "../logging/logger.ts";
import { formatAddress, parseAddress } from "./address.ts";
import {
  BATCH_BYTES_SOFT_MAX,
  BATCH_ITEMS_MAX,
  encodeRequestBatch,
  isBinaryRequest,
} from "./binary_codec.ts";
import {
  type ClientRequest,
  type ClientResponse,
  type DecodedBody,
  encodeRequest,
  ProtocolError,
} from "./codec.ts";
import {
  CONNECT_TIMEOUT_MS_DEFAULT,
  Connection,
  connectionLimits,
  type ConnectionOptions,
} from "./connection.ts";
import { CallsById } from "./calls_by_id.ts";
import { type ClientTls, connect as connectMaybeTls, TlsHandshakeError } from "./tls.ts";

/** Default bound on calls awaiting a response; matches the server's per-connection limit. */
export const CALLS_IN_FLIGHT_MAX_DEFAULT = 1024;

// setTimeout's largest delay.
const TIMEOUT_MS_LIMIT = 2 ** 31 - 1;

/**
 * Least time between two sweeps of expired calls: a call fails at its timeout or at most this
 * much later (plus the event loop's own lateness), so that calls that expire close together (a
 * node that stopped answering) are failed by one sweep rather than one timer each.
 */
export const SWEEP_MS_MIN = 10;

// The sequence number of a call whose batch has not been handed to the connection yet.
const NOT_QUEUED = Number.MAX_SAFE_INTEGER;

/**
 * Why a call failed without a response:
 * - `unreachable`: the connection could not be opened;
 * - `timeout`: no response within the call's time limit;
 * - `disconnected`: the connection broke;
 * - `closed`: this side closed the connection;
 * - `busy`: too many calls in flight or too many bytes queued;
 * - `tls`: TLS does not match: the handshake failed (wrong CA, a certificate that does not name
 *   the node, a node without TLS), or the node speaks TLS and this side does not. Retrying the
 *   same node cannot help; the node never decoded the request.
 */
export type RpcFailure = "unreachable" | "timeout" | "disconnected" | "closed" | "busy" | "tls";

/**
 * A call ended without a response. When `sent` is false the request never left this process, so
 * it was certainly not applied and may be retried anywhere. When `sent` is true the node may or
 * may not have applied it: the outcome is unknown.
 */
export class RpcError extends Error {
  /** Why the call failed. */
  readonly reason: RpcFailure;
  /** Whether the request may have reached the node. */
  readonly sent: boolean;

  /** Creates the error for `reason`, saying whether the request was `sent`. */
  constructor(reason: RpcFailure, sent: boolean, options?: ErrorOptions & { detail?: string }) {
    super(rpcErrorMessage(reason, sent, options?.detail), options);
    this.name = "RpcError";
    this.reason = reason;
    this.sent = sent;
  }
}

function rpcErrorMessage(reason: RpcFailure, sent: boolean, detail?: string): string {
  // The detail says it all, and the node never decoded the request.
  if (reason === "tls" && detail !== undefined) return detail;
  const what = {
    unreachable: "Node could not be reached",
    timeout: "Request timed out",
    disconnected: "Connection to the node was lost",
    closed: "Connection was closed",
    busy: "Too many requests in flight",
    tls: "TLS mismatch",
  }[reason];
  const outcome = sent
    ? "the request was sent, so its outcome is unknown"
    : "the request was not sent";
  return `${what}${detail === undefined ? "" : ` (${detail})`}; ${outcome}`;
}

/** Options for {@linkcode RpcClientConnection.connect}. */
export interface RpcClientOptions extends ConnectionOptions {
  /** How long opening the connection may take. Default 1 s. */
  connectTimeoutMs?: number;
  /** Most calls awaiting a response; more fail at once as `busy`. Default 1024. */
  callsInFlightMax?: number;
  /** Connect with TLS, trusting these CAs; plain TCP without. */
  tls?: ClientTls;
}

interface PendingCall {
  group: string;
  requestId: number;
  /**
   * The frame's sequence number on the connection: whether it was sent.
   * {@linkcode NOT_QUEUED} while the call waits in the batch being filled.
   */
  seq: number;
  /** `performance.now()` time after which the call fails. */
  deadlineMs: number;
  /** The call's timeout, for the error message. */
  timeoutMs: number;
  resolve: (response: ClientResponse) => void;
  reject: (err: RpcError) => void;
}

/**
 * A connection from a client to one node.
 *
 * @example
 * ```ts ignore
 * import { RpcClientConnection } from "./client_conn.ts";
 * const conn = await RpcClientConnection.connect("127.0.0.1:4000");
 * const response = await conn.call("counter", { op: "incr", delta: 1n }, 2000);
 * await conn.close();
 * ```
 */
export class RpcClientConnection {
  #conn: Connection;
  #address: string;
  #callsInFlightMax: number;
  /** Calls awaiting a response, by request id, in the order they were sent. */
  #pending = new CallsById<PendingCall>();
  #lastRequestId = 0;
  #closedByUs = false;
  /** The sweep's timer, or null when none is armed. */
  #sweepTimer: ReturnType<typeof setTimeout> | null = null;
  /** When the armed sweep fires (`performance.now()` time); Infinity when none is armed. */
  #sweepAtMs = Infinity;
  /** When the last sweep ran. */
  #lastSweepMs = -Infinity;
  /** Most bytes of request bodies one batch joins (within a frame). */
  #batchBytesMax: number;
  /** The batch being filled: binary request bodies of `#batchGroup`, and their calls. */
  #batchBodies: Uint8Array[] = [];
  #batchCalls: PendingCall[] = [];
  #batchBytes = 0;
  #batchGroup = "";
  #flushBound = () => this.#flushBatch();

  private constructor(tcp: Deno.Conn, options: RpcClientOptions) {
    this.#address = formatAddress(tcp.remoteAddr as Deno.NetAddr);
    this.#callsInFlightMax = options.callsInFlightMax ?? CALLS_IN_FLIGHT_MAX_DEFAULT;
    this.#batchBytesMax = Math.min(BATCH_BYTES_SOFT_MAX, connectionLimits(options).frameBytesMax);
    const logger: Logger = options.logger ?? silentLogger;
    this.#conn = new Connection(tcp, (body) => this.#onBody(body), {
      frameBytesMax: options.frameBytesMax,
      queueBytesMax: options.queueBytesMax,
      logger,
    });
    this.#conn.closed.then(() => this.#failAll());
  }

  /**
   * Opens a connection to `address` (`HOST:PORT`). Rejects with {@linkcode RpcError}
   * (`unreachable`) when the node cannot be reached in time, or (`tls`) when the TLS handshake
   * fails.
   */
  static async connect(
    address: string,
    options: RpcClientOptions = {},
  ): Promise<RpcClientConnection> {
    const { hostname, port } = parseAddress(address);
    const callsInFlightMax = options.callsInFlightMax ?? CALLS_IN_FLIGHT_MAX_DEFAULT;
    if (!Number.isSafeInteger(callsInFlightMax) || callsInFlightMax < 1) {
      throw new RangeError(`Calls in flight limit must be a positive integer`);
    }
    const connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    const abort = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, connectTimeoutMs);
    let tcp: Deno.Conn;
    try {
      tcp = await connectMaybeTls(hostname, port, options.tls, abort.signal);
    } catch (err) {
      if (err instanceof TlsHandshakeError) {
        throw new RpcError("tls", false, { cause: err, detail: err.message });
      }
      throw new RpcError("unreachable", false, {
        cause: err,
        detail: timedOut
          ? `${address}: no connection after ${connectTimeoutMs} ms`
          : `${address}: ${err instanceof Error ? err.message : String(err)}`,
      });
    } finally {
      clearTimeout(timer);
    }
    try {
      return new RpcClientConnection(tcp, options);
    } catch (err) {
      tcp.close();
      throw err;
    }
  }

  /** The node's address as `HOST:PORT`. */
  get address(): string {
    return this.#address;
  }

  /** Calls awaiting a response. */
  get callsInFlight(): number {
    return this.#pending.size;
  }

  /** True once the connection is closing or closed; calls then fail at once. */
  get isClosed(): boolean {
    return this.#conn.isClosed;
  }

  /** Resolves when the connection has closed, by either side. */
  get closed(): Promise<void> {
    return this.#conn.closed;
  }

  /**
   * Sends `request` for `group` and resolves with the node's response. Rejects with
   * {@linkcode RpcError} when no response comes: after `timeoutMs`, on connection loss or close,
   * or at once when too many calls are in flight. Throws `TypeError`/`RangeError` for an invalid
   * request.
   */
  call(group: string, request: ClientRequest, timeoutMs: number): Promise<ClientResponse> {
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0 || timeoutMs > TIMEOUT_MS_LIMIT) {
      return Promise.reject(new RangeError(`Timeout must be 1..${TIMEOUT_MS_LIMIT} ms`));
    }
    const requestId = this.#lastRequestId + 1;
    let bytes: Uint8Array;
    try {
      bytes = encodeRequest(group, requestId, request);
    } catch (err) {
      return Promise.reject(err);
    }
    if (this.#conn.isClosed) {
      return Promise.reject(new RpcError(this.#closedByUs ? "closed" : "disconnected", false));
    }
    if (this.#pending.size >= this.#callsInFlightMax) {
      return Promise.reject(new RpcError("busy", false));
    }
    const deadlineMs = performance.now() + timeoutMs;
    let seq = NOT_QUEUED;
    const batched = isBinaryRequest(bytes) && bytes.length + 2 <= this.#batchBytesMax;
    if (!batched) {
      // Alone, after the requests made before it.
      this.#flushBatch();
      try {
        seq = this.#conn.send(bytes);
      } catch (err) {
        // Larger than a frame.
        return Promise.reject(err);
      }
      if (seq === 0) return Promise.reject(new RpcError("busy", false));
    }
    this.#lastRequestId = requestId;
    const { promise, resolve, reject } = Promise.withResolvers<ClientResponse>();
    const call: PendingCall = { group, requestId, seq, deadlineMs, timeoutMs, resolve, reject };
    this.#pending.add(requestId, call);
    if (batched) this.#addToBatch(group, bytes, call);
    // Calls mostly come with the same timeout, so the sweep armed for an earlier call fires
    // first; only a call with a shorter timeout than those before it moves the sweep earlier.
    const sweepAtMs = Math.max(deadlineMs, this.#lastSweepMs + SWEEP_MS_MIN);
    if (sweepAtMs < this.#sweepAtMs) this.#armSweep(sweepAtMs);
    return promise;
  }

  #addToBatch(group: string, bytes: Uint8Array, call: PendingCall): void {
    // A batch is at most 2 bytes longer than its items' bodies together.
    if (
      this.#batchCalls.length > 0 &&
      (group !== this.#batchGroup || this.#batchBytes + bytes.length + 2 > this.#batchBytesMax)
    ) this.#flushBatch();
    if (this.#batchCalls.length === 0) {
      this.#batchGroup = group;
      queueMicrotask(this.#flushBound);
    }
    this.#batchBodies.push(bytes);
    this.#batchCalls.push(call);
    this.#batchBytes += bytes.length;
    if (this.#batchCalls.length >= BATCH_ITEMS_MAX) this.#flushBatch();
  }

  /**
   * Hands the batch being filled to the connection: one request alone, more as one request
   * batch. When the connection will not take it (closed, or its queue is full) its calls fail as
   * unsent. It runs as a microtask of the turn that opened the batch, so before any timer: no
   * call of a batch can have been failed by the sweep (as unsent) before its request leaves.
   */
  #flushBatch(): void {
    const calls = this.#batchCalls;
    const count = calls.length;
    if (count === 0) return;
    const bodies = this.#batchBodies;
    this.#batchCalls = [];
    this.#batchBodies = [];
    this.#batchBytes = 0;
    // Closed: the calls fail with the connection (see #failAll), as unsent.
    if (this.#conn.isClosed) return;
    const seq = this.#conn.send(count === 1 ? bodies[0] : encodeRequestBatch(bodies, count));
    if (seq !== 0) {
      for (let i = 0; i < count; i++) calls[i].seq = seq;
      return;
    }
    for (let i = 0; i < count; i++) {
      const call = calls[i];
      this.#pending.delete(call.requestId);
      call.reject(new RpcError("busy", false));
    }
  }

  /**
   * Closes the connection; calls in flight fail with `closed`. Idempotent; resolves when the
   * connection's loops have ended.
   */
  close(): Promise<void> {
    if (!this.#conn.isClosed) this.#closedByUs = true;
    this.#disarmSweep();
    return this.#conn.close();
  }

  #wasSent(seq: number): boolean {
    return seq <= this.#conn.sentSeq;
  }

  /** Arms the sweep for `atMs` (`performance.now()` time), replacing the one armed. */
  #armSweep(atMs: number): void {
    this.#disarmSweep();
    this.#sweepAtMs = atMs;
    const delayMs = Math.max(0, Math.ceil(atMs - performance.now()));
    this.#sweepTimer = setTimeout(() => this.#sweep(), delayMs);
  }

  #disarmSweep(): void {
    if (this.#sweepTimer !== null) clearTimeout(this.#sweepTimer);
    this.#sweepTimer = null;
    this.#sweepAtMs = Infinity;
  }

  /** Fails every call whose deadline has passed, then arms for the earliest deadline left. */
  #sweep(): void {
    this.#sweepTimer = null;
    this.#sweepAtMs = Infinity;
    const nowMs = performance.now();
    this.#lastSweepMs = nowMs;
    let nextMs = Infinity;
    const expired: PendingCall[] = [];
    this.#pending.forEach((call) => {
      const deadlineMs = call.deadlineMs;
      if (deadlineMs <= nowMs) expired.push(call);
      else if (deadlineMs < nextMs) nextMs = deadlineMs;
    });
    for (const call of expired) {
      this.#pending.delete(call.requestId);
      call.reject(
        new RpcError("timeout", this.#wasSent(call.seq), { detail: `${call.timeoutMs} ms` }),
      );
    }
    if (nextMs < Infinity && !this.#conn.isClosed) {
      this.#armSweep(Math.max(nextMs, nowMs + SWEEP_MS_MIN));
    }
  }

  #onBody(body: DecodedBody): void {
    if (body.kind === "response") {
      this.#onResponse(body.group, body.requestId, body.response);
      return;
    }
    if (body.kind !== "response_batch") {
      throw new ProtocolError(`A client does not accept ${body.kind} bodies`);
    }
    const { group, requestIds, responses } = body;
    for (let i = 0; i < responses.length; i++) this.#onResponse(group, requestIds[i], responses[i]);
  }

  #onResponse(group: string, requestId: number, response: ClientResponse): void {
    if (requestId > this.#lastRequestId) {
      throw new ProtocolError(`Response to request ${requestId}, which was never sent`);
    }
    const call = this.#pending.get(requestId);
    // Absent when the call already timed out: the late answer has nowhere to go.
    if (call === undefined) return;
    if (call.group !== group) {
      throw new ProtocolError(`Response for group ${group} to a request for ${call.group}`);
    }
    this.#pending.delete(requestId);
    call.resolve(response);
  }

  #failAll(): void {
    this.#disarmSweep();
    this.#batchCalls = [];
    this.#batchBodies = [];
    this.#batchBytes = 0;
    const calls = this.#pending.takeAll();
    if (this.#conn.peerSpokeTls) {
      // The node's TLS layer refused the plain bytes: nothing was decoded, nothing applied.
      const detail = `${this.#address} serves TLS; give --tls-ca FILE (or COUNTER_TLS_CA)`;
      for (const call of calls) call.reject(new RpcError("tls", false, { detail }));
      return;
    }
    const reason: RpcFailure = this.#closedByUs ? "closed" : "disconnected";
    for (const call of calls) call.reject(new RpcError(reason, this.#wasSent(call.seq)));
  }
}
