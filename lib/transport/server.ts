/**
 * The node's listening side: one TCP port for Raft messages from peers and requests from clients.
 *
 * @module
 */

import { type Logger, silentLogger } from "../logging/logger.ts";
import type { Message } from "../raft/types.ts";
import { formatAddress, type HostPort } from "./address.ts";
import {
  type ClientRequest,
  type ClientResponse,
  type DecodedBody,
  encodeResponse,
  ProtocolError,
  type SnapshotAck,
  type SnapshotChunk,
} from "./codec.ts";
import { Connection, connectionLimits, type ConnectionOptions } from "./connection.ts";
import {
  ByteBudget,
  CLIENT_FRAMES_PER_TURN_DEFAULT,
  FRAME_TIMEOUT_MS_DEFAULT,
  HELD_BYTES_MAX_DEFAULT,
  IDLE_TIMEOUT_MS_DEFAULT,
} from "./limits.ts";

/**
 * Default bound on open client connections (every connection counts as a client's until its
 * first peer body). At the bound, a new connection evicts the least recently active one.
 */
export const CONNECTIONS_MAX_DEFAULT = 1024;

/**
 * Default bound on open peer connections, kept apart from the client ones so that clients
 * cannot lock peers out. At the bound, a new peer connection evicts the least recently active.
 */
export const PEER_CONNECTIONS_MAX_DEFAULT = 64;

/**
 * Default bound on requests one connection may have awaiting a reply. The client connection
 * uses the same default, so a client that keeps to it never meets this limit.
 */
export const REQUESTS_IN_FLIGHT_MAX_DEFAULT = 1024;

// How long the accept loop rests after an accept error (such as too many open files), so it
// does not spin while the condition lasts.
const ACCEPT_RETRY_MS = 100;

/** Sends the response to one request; call it exactly once. */
export type ReplyFn = (response: ClientResponse) => void;

/** What the server does with what it receives. */
export interface TransportHandler {
  /** A Raft message for `group` arrived from a peer. */
  onRaftMessage(group: string, message: Message): void;
  /**
   * A client request for `group` arrived. Call `reply` once, now or later; a reply after the
   * client has gone is dropped.
   */
  onRequest(group: string, request: ClientRequest, reply: ReplyFn): void;
  /** A chunk of a snapshot arrived from the leader. Without a handler it is dropped. */
  onSnapshotChunk?(group: string, chunk: SnapshotChunk): void;
  /** A follower acknowledged a snapshot chunk. Without a handler it is dropped. */
  onSnapshotAck?(group: string, ack: SnapshotAck): void;
}

/** Options for {@linkcode TransportServer}. */
export interface TransportServerOptions extends ConnectionOptions {
  /**
   * Most client connections open at once; a new one beyond evicts the least recently active.
   * Default {@linkcode CONNECTIONS_MAX_DEFAULT}.
   */
  connectionsMax?: number;
  /**
   * Most peer connections (those whose first body was a peer body) open at once; a new one
   * beyond evicts the least recently active. Default {@linkcode PEER_CONNECTIONS_MAX_DEFAULT}.
   */
  peerConnectionsMax?: number;
  /**
   * A connection that sends nothing for this long while no reply is owed to it is closed;
   * 0 never closes one. Default {@linkcode IDLE_TIMEOUT_MS_DEFAULT}.
   */
  idleTimeoutMs?: number;
  /**
   * A frame must arrive whole within this long of its first byte, or the connection is closed.
   * Default {@linkcode FRAME_TIMEOUT_MS_DEFAULT}.
   */
  frameTimeoutMs?: number;
  /**
   * Bound on the bytes all connections together hold in partial frames and queued replies.
   * Over it, client connections holding more than 64 KiB are closed. Default 64 MiB.
   */
  heldBytesMax?: number;
  /**
   * Bodies one client connection gets handled before it yields to the event loop (peer
   * connections are not paced). Default {@linkcode CLIENT_FRAMES_PER_TURN_DEFAULT}.
   */
  clientFramesPerTurn?: number;
  /**
   * Most requests per connection awaiting a reply; a client that sends more is cut off as
   * misbehaving. Default {@linkcode REQUESTS_IN_FLIGHT_MAX_DEFAULT}.
   */
  requestsInFlightMax?: number;
}

interface ClientState {
  conn: Connection;
  requestsInFlight: number;
}

// Bounds on how often the limits are checked.
const SWEEP_MS_MIN = 50;
const SWEEP_MS_MAX = 1000;

/**
 * Listens on one TCP port and dispatches every decoded body to a {@linkcode TransportHandler}.
 *
 * A connection that sends a bad frame, a malformed body or a response is closed with a warning;
 * every other connection carries on.
 *
 * @example
 * ```ts ignore
 * import { TransportServer } from "./server.ts";
 * const server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
 *   onRaftMessage(group, message) {},
 *   onRequest(group, request, reply) {
 *     reply({ ok: false, code: "UNKNOWN_OP", error: "Unknown operation" });
 *   },
 * });
 * console.log(server.address); // "127.0.0.1:39123"
 * await server.close();
 * ```
 */
export class TransportServer {
  #listener: Deno.TcpListener;
  #handler: TransportHandler;
  #logger: Logger;
  #connectionOptions: ConnectionOptions;
  #connectionsMax: number;
  #peerConnectionsMax: number;
  #idleTimeoutMs: number;
  #frameTimeoutMs: number;
  #requestsInFlightMax: number;
  // Every connection, and the ones known to be peers'; the others count as clients.
  #clients = new Set<ClientState>();
  #peers = new Set<ClientState>();
  // Every connection whose loops have not ended yet, counted or not.
  #live = new Set<Connection>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #address: HostPort;
  #closing = false;
  #acceptLoop: Promise<void>;
  #closed: Promise<void> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryWake: (() => void) | null = null;

  /**
   * Listens on `listen` (port 0 picks a free port; see {@linkcode address}) and starts
   * accepting. Throws if the address cannot be bound.
   */
  constructor(listen: HostPort, handler: TransportHandler, options: TransportServerOptions = {}) {
    this.#handler = handler;
    this.#logger = options.logger ?? silentLogger;
    // Checked now: a bad limit found while accepting would only surface as a dropped client.
    const framesPerTurn = options.clientFramesPerTurn ?? CLIENT_FRAMES_PER_TURN_DEFAULT;
    assertPositiveInteger("Client frames per turn", framesPerTurn);
    this.#connectionOptions = {
      ...connectionLimits(options),
      logger: this.#logger,
      budget: new ByteBudget(options.heldBytesMax ?? HELD_BYTES_MAX_DEFAULT),
      framesPerTurn,
    };
    this.#connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
    this.#peerConnectionsMax = options.peerConnectionsMax ?? PEER_CONNECTIONS_MAX_DEFAULT;
    this.#requestsInFlightMax = options.requestsInFlightMax ?? REQUESTS_IN_FLIGHT_MAX_DEFAULT;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS_DEFAULT;
    this.#frameTimeoutMs = options.frameTimeoutMs ?? FRAME_TIMEOUT_MS_DEFAULT;
    assertPositiveInteger("Connection limit", this.#connectionsMax);
    assertPositiveInteger("Peer connection limit", this.#peerConnectionsMax);
    assertPositiveInteger("Requests in flight limit", this.#requestsInFlightMax);
    assertPositiveInteger("Frame timeout", this.#frameTimeoutMs);
    if (!Number.isSafeInteger(this.#idleTimeoutMs) || this.#idleTimeoutMs < 0) {
      throw new RangeError(`Idle timeout must be 0 or more, got ${this.#idleTimeoutMs}`);
    }
    this.#listener = Deno.listen({ hostname: listen.hostname, port: listen.port });
    const addr = this.#listener.addr;
    this.#address = { hostname: addr.hostname, port: addr.port };
    this.#acceptLoop = this.#accept();
    const shortest = Math.min(this.#idleTimeoutMs || Infinity, this.#frameTimeoutMs);
    const sweepMs = Math.max(SWEEP_MS_MIN, Math.min(SWEEP_MS_MAX, Math.floor(shortest / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), sweepMs);
  }

  /** The bound address as `HOST:PORT`, with the real port when 0 was asked for. */
  get address(): string {
    return formatAddress(this.#address);
  }

  /** The bound host and port. */
  get hostPort(): HostPort {
    return { ...this.#address };
  }

  /** Connections currently open. */
  get connectionCount(): number {
    return this.#clients.size;
  }

  /** Connections currently open that sent a peer body first. */
  get peerConnectionCount(): number {
    return this.#peers.size;
  }

  /** Bytes connections hold now in partial frames and queued replies. */
  get heldBytes(): number {
    return this.#connectionOptions.budget!.usedBytes;
  }

  /**
   * Stops listening and closes every connection. Idempotent; resolves when all loops have ended.
   */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweeper);
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    clearTimeout(this.#retryTimer);
    this.#retryWake?.();
    await this.#acceptLoop;
    await Promise.all([...this.#live].map((conn) => conn.close()));
  }

  async #accept(): Promise<void> {
    while (!this.#closing) {
      let tcp: Deno.TcpConn;
      try {
        tcp = await this.#listener.accept();
      } catch (err) {
        if (this.#closing) return;
        this.#logger.error("accept failed", { reason: err });
        await this.#rest();
        continue;
      }
      if (this.#closing) {
        tcp.close();
        return;
      }
      if (this.#clients.size - this.#peers.size >= this.#connectionsMax) {
        this.#evict(this.#clients, this.#peers, false, "client");
      }
      this.#adopt(tcp);
    }
  }

  #rest(): Promise<void> {
    return new Promise((resolve) => {
      this.#retryWake = resolve;
      this.#retryTimer = setTimeout(resolve, ACCEPT_RETRY_MS);
    });
  }

  #adopt(tcp: Deno.TcpConn): void {
    const client: ClientState = {
      conn: new Connection(tcp, (body) => this.#dispatch(client, body), this.#connectionOptions),
      requestsInFlight: 0,
    };
    this.#clients.add(client);
    this.#live.add(client.conn);
    client.conn.closed.then(() => {
      this.#live.delete(client.conn);
      this.#clients.delete(client);
      this.#peers.delete(client);
    });
  }

  /**
   * Makes room in a full pool by closing its least recently active connection, preferring one
   * that is owed no reply. `pool` holds the candidates (`peers` selects whether they are the
   * members of `peerSet` or the others).
   */
  #evict(pool: Set<ClientState>, peerSet: Set<ClientState>, peers: boolean, what: string): void {
    let victim: ClientState | null = null;
    for (const c of pool) {
      if (peerSet.has(c) !== peers || c.conn.isClosed) continue;
      if (
        victim === null ||
        (c.requestsInFlight === 0) > (victim.requestsInFlight === 0) ||
        ((c.requestsInFlight === 0) === (victim.requestsInFlight === 0) &&
          c.conn.lastReceiveMs < victim.conn.lastReceiveMs)
      ) victim = c;
    }
    if (victim === null) return;
    this.#logger.warn(`${what} connection limit reached, closing the least recently active`, {
      remote: victim.conn.remoteAddress,
      limit: peers ? this.#peerConnectionsMax : this.#connectionsMax,
    });
    this.#forget(victim);
  }

  // Closes a connection and stops counting it at once (its loops end later).
  #forget(client: ClientState): void {
    this.#clients.delete(client);
    this.#peers.delete(client);
    client.conn.close();
  }

  /**
   * Moves a connection from the client pool to the peer pool: it no longer competes with
   * clients for slots, its bodies are not paced and the byte budget does not cut it off.
   * (Today a connection is a peer's when its first body is a peer body; a handshake that
   * authenticates peers is the place to call this once it exists.)
   */
  #admitPeer(client: ClientState): void {
    if (this.#peers.has(client)) return;
    if (client.requestsInFlight > 0) {
      throw new ProtocolError("Peer bodies on a connection that sent requests");
    }
    if (this.#peers.size >= this.#peerConnectionsMax) {
      this.#evict(this.#peers, this.#peers, true, "peer");
    }
    this.#peers.add(client);
    client.conn.markPeer();
  }

  /** Closes idle connections and those whose frame did not arrive in time. */
  #sweep(): void {
    const now = performance.now();
    for (const client of this.#clients) {
      const conn = client.conn;
      const since = conn.partialSinceMs;
      if (since !== null && now - since > this.#frameTimeoutMs) {
        this.#logger.warn("frame not completed in time, closing connection", {
          remote: conn.remoteAddress,
          timeoutMs: this.#frameTimeoutMs,
        });
        this.#forget(client);
      } else if (
        this.#idleTimeoutMs > 0 && client.requestsInFlight === 0 && conn.queuedBytes === 0 &&
        now - conn.lastReceiveMs > this.#idleTimeoutMs
      ) {
        this.#logger.debug("idle connection closed", {
          remote: conn.remoteAddress,
          idleMs: Math.round(now - conn.lastReceiveMs),
        });
        this.#forget(client);
      }
    }
  }

  #dispatch(client: ClientState, body: DecodedBody): void {
    if (body.kind === "raft" || body.kind === "snapshot_chunk" || body.kind === "snapshot_ack") {
      this.#admitPeer(client);
    }
    switch (body.kind) {
      case "raft":
        this.#handler.onRaftMessage(body.group, body.message);
        return;
      case "request": {
        if (client.requestsInFlight >= this.#requestsInFlightMax) {
          throw new ProtocolError(
            `More than ${this.#requestsInFlightMax} requests in flight on one connection`,
          );
        }
        client.requestsInFlight++;
        this.#handler.onRequest(body.group, body.request, this.#replier(client, body));
        return;
      }
      case "snapshot_chunk":
        this.#handler.onSnapshotChunk?.(body.group, body.chunk);
        return;
      case "snapshot_ack":
        this.#handler.onSnapshotAck?.(body.group, body.ack);
        return;
      case "response":
        throw new ProtocolError("A node does not accept responses");
    }
  }

  #replier(client: ClientState, body: DecodedBody & { kind: "request" }): ReplyFn {
    const { group, requestId } = body;
    let replied = false;
    return (response) => {
      if (replied) throw new Error(`Request ${requestId} was already answered`);
      // Encoded before anything else so a bad response throws to the caller and changes nothing.
      const bytes = encodeResponse(group, requestId, response);
      replied = true;
      client.requestsInFlight--;
      const conn = client.conn;
      if (conn.isClosed) return;
      if (conn.send(bytes) === 0) {
        // The client stopped reading; its later responses would only pile up.
        this.#logger.warn("client not reading responses, closing connection", {
          remote: conn.remoteAddress,
        });
        conn.close();
      }
    };
  }
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
