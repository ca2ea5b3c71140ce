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

/** Default bound on open connections per server. */
export const CONNECTIONS_MAX_DEFAULT = 1024;

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
  /**
   * A request was answered `elapsedMs` after it arrived (for metrics). It must not throw; it is
   * called before the response is sent.
   */
  onReplied?(op: string, response: ClientResponse, elapsedMs: number): void;
}

/** Options for {@linkcode TransportServer}. */
export interface TransportServerOptions extends ConnectionOptions {
  /** Most connections open at once; more are closed on arrival. Default 1024. */
  connectionsMax?: number;
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
  #requestsInFlightMax: number;
  #clients = new Set<ClientState>();
  #address: HostPort;
  #closing = false;
  #connectionsAccepted = 0;
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
    this.#connectionOptions = { ...connectionLimits(options), logger: this.#logger };
    this.#connectionsMax = options.connectionsMax ?? CONNECTIONS_MAX_DEFAULT;
    this.#requestsInFlightMax = options.requestsInFlightMax ?? REQUESTS_IN_FLIGHT_MAX_DEFAULT;
    assertPositiveInteger("Connection limit", this.#connectionsMax);
    assertPositiveInteger("Requests in flight limit", this.#requestsInFlightMax);
    this.#listener = Deno.listen({ hostname: listen.hostname, port: listen.port });
    const addr = this.#listener.addr;
    this.#address = { hostname: addr.hostname, port: addr.port };
    this.#acceptLoop = this.#accept();
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

  /** Connections accepted since the server started (including those refused at the limit). */
  get connectionsAccepted(): number {
    return this.#connectionsAccepted;
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
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    clearTimeout(this.#retryTimer);
    this.#retryWake?.();
    await this.#acceptLoop;
    await Promise.all([...this.#clients].map((client) => client.conn.close()));
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
      this.#connectionsAccepted++;
      if (this.#clients.size >= this.#connectionsMax) {
        this.#logger.warn("connection limit reached, closing new connection", {
          remote: formatAddress(tcp.remoteAddr),
          limit: this.#connectionsMax,
        });
        tcp.close();
        continue;
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
    client.conn.closed.then(() => this.#clients.delete(client));
  }

  #dispatch(client: ClientState, body: DecodedBody): void {
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
    const op = body.request.op;
    const arrivedMs = performance.now();
    let replied = false;
    return (response) => {
      if (replied) throw new Error(`Request ${requestId} was already answered`);
      // Encoded before anything else so a bad response throws to the caller and changes nothing.
      const bytes = encodeResponse(group, requestId, response);
      replied = true;
      this.#handler.onReplied?.(op, response, performance.now() - arrivedMs);
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
