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
  encodePeerAuth,
  encodeResponse,
  type Hello,
  type PeerAuth,
  type PeerHeartbeat,
  ProtocolError,
  type SnapshotAck,
  type SnapshotChunk,
} from "./codec.ts";
import {
  BATCH_BYTES_SOFT_MAX,
  BATCH_ITEMS_MAX,
  encodeResponseBatch,
  isBinaryResponse,
} from "./binary_codec.ts";
import { Connection, connectionLimits, type ConnectionOptions } from "./connection.ts";
import {
  ByteBudget,
  CLIENT_FRAMES_PER_TURN_DEFAULT,
  FRAME_TIMEOUT_MS_DEFAULT,
  HELD_BYTES_MAX_DEFAULT,
  IDLE_TIMEOUT_MS_DEFAULT,
} from "./limits.ts";
import { listen as listenMaybeTls, type ServerTls } from "./tls.ts";
import { turnNowMs } from "./turn_clock.ts";
import {
  type ClientAuthenticator,
  type ClientSession,
  newSession,
} from "../security/client_auth.ts";
import {
  type AcceptorHandshake,
  type PeerAuthenticator,
  PeerAuthError,
} from "../security/peer_auth.ts";

/**
 * Default bound on open client connections (every connection counts as a client's until its
 * HELLO is accepted). At the bound, a new connection evicts the least recently active one.
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

/**
 * Most peer bodies held on one connection while its hello is being decided; later ones are
 * dropped (Raft resends what matters).
 */
export const HELD_BODIES_MAX = 1024;

// How long the accept loop rests after an accept error (such as too many open files), so it
// does not spin while the condition lasts.
const ACCEPT_RETRY_MS = 100;

/** Sends the response to one request; call it exactly once. */
export type ReplyFn = (response: ClientResponse) => void;

/**
 * The answer to a hello: true accepts the connection's peer bodies, false closes it. A promise
 * holds the connection's later peer bodies until it settles (a rejection closes it).
 */
export type HelloVerdict = boolean | Promise<boolean>;

/**
 * What the server does with what it receives.
 *
 * Peer bodies (RAFT, SNAPSHOT_CHUNK, SNAPSHOT_ACK, PEER_HEARTBEAT) are delivered only for a group whose HELLO
 * `onHello` accepted on that connection, and only when they come from the node the connection's
 * hellos named. A peer body of a group with no hello on the connection closes it; one of a group
 * whose hello was refused (while other groups keep the connection open) is dropped.
 */
export interface TransportHandler {
  /**
   * A peer opened a connection and said who it is (`remote` is the socket's address). Without a
   * handler every hello is refused, so no peer body is ever delivered.
   */
  onHello?(group: string, hello: Hello, remote: string): HelloVerdict;
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
   * A node-level heartbeat arrived (its `from` is the connection's peer, checked); `group` is
   * only the one the body was sent under. Without a handler it is dropped.
   */
  onPeerHeartbeat?(group: string, heartbeat: PeerHeartbeat): void;
  /**
   * A request for `group` was answered `elapsedMs` after it arrived (for metrics). It must not
   * throw; it is called before the response is sent.
   */
  onReplied?(op: string, response: ClientResponse, elapsedMs: number, group: string): void;
}

/** Options for {@linkcode TransportServer}. */
export interface TransportServerOptions extends ConnectionOptions {
  /**
   * Most client connections open at once; a new one beyond evicts the least recently active.
   * Default {@linkcode CONNECTIONS_MAX_DEFAULT}.
   */
  connectionsMax?: number;
  /**
   * Most peer connections (those whose HELLO was accepted) open at once; a new one
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
  /** Serve TLS with this certificate and key; plain TCP without. */
  tls?: ServerTls;
  /**
   * Client roles: requests a connection's proved role does not cover are refused before the
   * handler sees them, and the `auth` op is answered here. Without it every request goes on.
   */
  clientAuth?: ClientAuthenticator;
  /**
   * Peer authentication: a HELLO (and so any peer body) is taken only on a connection whose
   * dialer completed the handshake, and only naming the id it proved. Without it, from anyone.
   */
  peerAuth?: PeerAuthenticator;
}

/**
 * The address a {@linkcode TransportServer} could not listen on, and why. Its message is
 * `cannot listen on HOST:PORT: REASON`.
 */
export class ListenError extends Error {
  /** The address, `HOST:PORT`. */
  readonly address: string;

  /** Wraps `cause`, the error of `Deno.listen` for `address`. */
  constructor(address: string, cause: unknown) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(`cannot listen on ${address}: ${reason}`, { cause });
    this.name = "ListenError";
    this.address = address;
  }
}

/** What answers while a server has no handler yet: the node behind it is still starting. */
const STARTING_HANDLER: TransportHandler = {
  onRaftMessage() {},
  onRequest(_group, _request, reply) {
    reply({ ok: false, code: "SHUTTING_DOWN", error: "node is starting" });
  },
};

type PeerBody = DecodedBody & {
  kind: "raft" | "snapshot_chunk" | "snapshot_ack" | "peer_heartbeat";
};

/** Where one group's HELLO stands on a peer connection. */
interface PeerGroupState {
  /** Being decided, accepted, or refused (its bodies are dropped until a new hello). */
  state: "pending" | "accepted" | "refused";
  /** Peer bodies of this group that arrived while its hello was pending. */
  held: PeerBody[];
}

interface ClientState {
  conn: Connection;
  requestsInFlight: number;
  /** The client handshake's state: the role this connection proved. */
  session: ClientSession;
  /** Peer handshake: none yet, challenge being computed or sent, or done. */
  peerAuth: "none" | "challenging" | "challenged" | "authenticated";
  peerHandshake: AcceptorHandshake | null;
  /** The id the dialer proved in the peer handshake. */
  authPeerId: string;
  /**
   * The sender every hello on this connection named ("" before the first one): one connection
   * carries one peer's traffic, for every group it announced with a hello.
   */
  peerId: string;
  /** Each group this connection sent a hello for, and where that hello stands. */
  groups: Map<string, PeerGroupState>;
  /** Peer bodies held over all groups (bounded by {@linkcode HELD_BODIES_MAX}). */
  heldCount: number;
  heldDropped: number;
  /** Bodies dropped because their group's hello was refused. */
  refusedDropped: number;
  /**
   * Binary responses to requests that came in batches, waiting for the end of the turn to go
   * out as one response batch (`replyCount` of them, all of `replyGroup`, `replyBytes` long).
   */
  replies: Uint8Array[];
  replyCount: number;
  replyBytes: number;
  replyGroup: string;
  /** Sends `replies`; made once per connection, queued as a microtask when the first waits. */
  flushReplies: () => void;
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
  #listener: Deno.Listener;
  #handler: TransportHandler | null;
  #logger: Logger;
  #connectionOptions: ConnectionOptions;
  #connectionsMax: number;
  #peerConnectionsMax: number;
  #idleTimeoutMs: number;
  #frameTimeoutMs: number;
  #requestsInFlightMax: number;
  /** Most bytes of response bodies one response batch joins. */
  #replyBatchBytesMax: number;
  #clientAuth: ClientAuthenticator | undefined;
  #peerAuth: PeerAuthenticator | undefined;
  // Every connection, and the ones known to be peers'; the others count as clients.
  #clients = new Set<ClientState>();
  #peers = new Set<ClientState>();
  // Every connection whose loops have not ended yet, counted or not.
  #live = new Set<Connection>();
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #address: HostPort;
  #closing = false;
  #connectionsAccepted = 0;
  #acceptLoop: Promise<void>;
  #closed: Promise<void> | null = null;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryWake: (() => void) | null = null;

  /**
   * Listens on `listen` (port 0 picks a free port; see {@linkcode address}) and starts
   * accepting. Throws {@linkcode ListenError} if the address cannot be bound.
   *
   * With `handler` null the server is up before the node behind it: Raft messages are dropped
   * and requests are answered `SHUTTING_DOWN` ("node is starting") until
   * {@linkcode setHandler} wires the node in. A node binds its port this way before it touches
   * its data dir, so a busy or wrong address fails before anything is written.
   */
  constructor(
    listen: HostPort,
    handler: TransportHandler | null,
    options: TransportServerOptions = {},
  ) {
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
    this.#replyBatchBytesMax = Math.min(
      BATCH_BYTES_SOFT_MAX,
      this.#connectionOptions.frameBytesMax!,
    );
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS_DEFAULT;
    this.#frameTimeoutMs = options.frameTimeoutMs ?? FRAME_TIMEOUT_MS_DEFAULT;
    this.#clientAuth = options.clientAuth;
    this.#peerAuth = options.peerAuth;
    assertPositiveInteger("Connection limit", this.#connectionsMax);
    assertPositiveInteger("Peer connection limit", this.#peerConnectionsMax);
    assertPositiveInteger("Requests in flight limit", this.#requestsInFlightMax);
    assertPositiveInteger("Frame timeout", this.#frameTimeoutMs);
    if (!Number.isSafeInteger(this.#idleTimeoutMs) || this.#idleTimeoutMs < 0) {
      throw new RangeError(`Idle timeout must be 0 or more, got ${this.#idleTimeoutMs}`);
    }
    try {
      this.#listener = listenMaybeTls(listen.hostname, listen.port, options.tls);
    } catch (err) {
      throw new ListenError(formatAddress(listen), err);
    }
    const addr = this.#listener.addr as Deno.NetAddr;
    this.#address = { hostname: addr.hostname, port: addr.port };
    this.#acceptLoop = this.#accept();
    const shortest = Math.min(this.#idleTimeoutMs || Infinity, this.#frameTimeoutMs);
    const sweepMs = Math.max(SWEEP_MS_MIN, Math.min(SWEEP_MS_MAX, Math.floor(shortest / 4)));
    this.#sweeper = setInterval(() => this.#sweep(), sweepMs);
  }

  /** Wires in what handles the traffic, once; see the constructor. */
  setHandler(handler: TransportHandler): void {
    if (this.#handler !== null) throw new Error("the server already has a handler");
    this.#handler = handler;
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

  /** Connections currently open whose HELLO was accepted. */
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
      let tcp: Deno.Conn;
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

  #adopt(tcp: Deno.Conn): void {
    const client: ClientState = {
      conn: new Connection(tcp, (body) => this.#dispatch(client, body), this.#connectionOptions),
      requestsInFlight: 0,
      peerId: "",
      groups: new Map(),
      heldCount: 0,
      heldDropped: 0,
      refusedDropped: 0,
      session: newSession(),
      peerAuth: "none",
      peerHandshake: null,
      authPeerId: "",
      replies: [],
      replyCount: 0,
      replyBytes: 0,
      replyGroup: "",
      flushReplies: () => this.#flushReplies(client),
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
   * Called only once the connection's HELLO is accepted: a stranger's hello or a bare peer body
   * never takes a peer slot.
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
    const handler = this.#handler ?? STARTING_HANDLER;
    switch (body.kind) {
      case "hello":
        this.#onHello(client, body.group, body.hello);
        return;
      case "raft":
      case "snapshot_chunk":
      case "snapshot_ack":
      case "peer_heartbeat":
        this.#onPeerBody(client, body);
        return;
      case "request":
        if (client.requestsInFlight >= this.#requestsInFlightMax) {
          throw new ProtocolError(
            `More than ${this.#requestsInFlightMax} requests in flight on one connection`,
          );
        }
        this.#onRequest(client, handler, body.group, body.requestId, body.request, false);
        return;
      case "request_batch": {
        // Checked for the whole batch before any of it runs: a refused batch costs nothing.
        const { group, requestIds, requests } = body;
        if (client.requestsInFlight + requests.length > this.#requestsInFlightMax) {
          throw new ProtocolError(
            `More than ${this.#requestsInFlightMax} requests in flight on one connection`,
          );
        }
        for (let i = 0; i < requests.length && !client.conn.isClosed; i++) {
          this.#onRequest(client, handler, group, requestIds[i], requests[i], true);
        }
        return;
      }
      case "peer_auth":
        this.#onPeerAuth(client, body.group, body.auth);
        return;
      case "response":
      case "response_batch":
        throw new ProtocolError("A node does not accept responses");
    }
  }

  /** One client request, alone or from a batch: the role check, then the handler. */
  #onRequest(
    client: ClientState,
    handler: TransportHandler,
    group: string,
    requestId: number,
    request: ClientRequest,
    batched: boolean,
  ): void {
    client.requestsInFlight++;
    const reply = this.#replier(client, group, requestId, request.op, batched);
    const auth = this.#clientAuth;
    if (auth === undefined) {
      handler.onRequest(group, request, reply);
    } else if (request.op === "auth") {
      auth.answerAuth(client.session, group, request).then(reply, (err) => {
        this.#logger.error("auth failed", { reason: err });
        reply({ ok: false, code: "INTERNAL", error: "auth failed" });
      });
    } else {
      const refusal = auth.check(client.session, request);
      if (refusal === null) handler.onRequest(group, request, reply);
      else reply(refusal);
    }
  }

  /**
   * The acceptor's side of the peer handshake (see `lib/security/peer_auth.ts`). Any step out
   * of order, for a node without a cluster token, or with a wrong proof closes the connection.
   */
  #onPeerAuth(client: ClientState, group: string, step: PeerAuth): void {
    const auth = this.#peerAuth;
    if (auth === undefined) {
      throw new ProtocolError("Peer authentication asked for, but this node has no cluster token");
    }
    if (step.step === 1 && client.peerAuth === "none" && client.groups.size === 0) {
      client.peerAuth = "challenging";
      auth.acceptorChallenge(group, step).then(({ step: challenge, state }) => {
        if (client.conn.isClosed) return;
        client.peerHandshake = state;
        client.peerAuth = "challenged";
        client.conn.send(encodePeerAuth(group, challenge));
      }, (err) => {
        const reason = err instanceof PeerAuthError ? err.message : String(err);
        this.#logger.warn("peer handshake refused", { remote: client.conn.remoteAddress, reason });
        client.conn.close();
      });
      return;
    }
    if (step.step === 3 && client.peerAuth === "challenged" && client.peerHandshake !== null) {
      const state = client.peerHandshake;
      client.peerHandshake = null;
      if (!auth.acceptorVerify(state, group, step)) {
        throw new ProtocolError(
          `Peer ${state.dialer} failed the handshake (another cluster token or group)`,
        );
      }
      client.peerAuth = "authenticated";
      client.authPeerId = state.dialer;
      return;
    }
    throw new ProtocolError(`Peer handshake step ${step.step} out of order`);
  }

  /**
   * One hello per group: a connection carries one peer's traffic for every group it sent a hello
   * for. A repeated hello for a group is judged again (the dialer repeats them, so a group refused
   * once is heard again once the reason is gone). A hello naming another sender than the
   * connection's first closes the connection.
   */
  #onHello(client: ClientState, group: string, hello: Hello): void {
    if (this.#peerAuth !== undefined) {
      // With a cluster token, who is talking is what the handshake proved, nothing else.
      if (client.peerAuth !== "authenticated") {
        throw new ProtocolError("A hello on an unauthenticated connection, refused");
      }
      if (hello.from !== client.authPeerId) {
        throw new ProtocolError(
          `A hello from ${hello.from} after ${client.authPeerId}'s handshake`,
        );
      }
    }
    if (client.peerId !== "" && hello.from !== client.peerId) {
      throw new ProtocolError(`A hello from ${hello.from} on ${client.peerId}'s connection`);
    }
    const remote = client.conn.remoteAddress;
    client.peerId = hello.from;
    const previous = client.groups.get(group);
    if (previous !== undefined && previous.state === "pending") {
      // The first is still being decided; its verdict stands for both.
      return;
    }
    const entry: PeerGroupState = { state: "pending", held: [] };
    client.groups.set(group, entry);
    // A node still starting has no handler yet: its peers retry the connection.
    const verdict = this.#handler?.onHello?.(group, hello, remote) ?? false;
    if (verdict === true) {
      this.#acceptGroup(client, group, entry);
      return;
    }
    if (verdict === false) {
      this.#refuseGroup(client, group, entry, "hello refused");
      return;
    }
    verdict.then(
      (accepted) => {
        if (client.conn.isClosed || client.groups.get(group) !== entry) return;
        if (!accepted) return this.#refuseGroup(client, group, entry, "hello refused");
        this.#acceptGroup(client, group, entry);
      },
      (err) => {
        this.#logger.error("deciding a hello failed, closing connection", {
          peer: client.peerId,
          group,
          remote,
          reason: err,
        });
        client.conn.close();
      },
    );
  }

  /** Accepts `group`'s hello on `client`: delivers its held bodies, in order. */
  #acceptGroup(client: ClientState, group: string, entry: PeerGroupState): void {
    // Only an accepted hello takes a peer slot: a stranger's hello cannot push peers out.
    this.#admitPeer(client);
    entry.state = "accepted";
    const held = entry.held;
    entry.held = [];
    client.heldCount -= held.length;
    if (client.heldDropped > 0) {
      this.#logger.debug("dropped peer bodies that arrived while a hello was decided", {
        peer: client.peerId,
        group,
        dropped: client.heldDropped,
      });
      client.heldDropped = 0;
    }
    try {
      for (const body of held) {
        if (client.conn.isClosed || entry.state !== "accepted") return;
        this.#deliverPeerBody(client, body);
      }
    } catch (err) {
      this.#refuse(client, err instanceof Error ? err.message : String(err));
    }
  }

  /**
   * Refuses `group`'s hello. A connection that carries no other accepted group is closed (its
   * dialer reconnects with backoff and says hello again); one that carries other groups stays
   * open, and this group's bodies are dropped until a new hello for it is accepted.
   */
  #refuseGroup(client: ClientState, group: string, entry: PeerGroupState, reason: string): void {
    client.heldCount -= entry.held.length;
    entry.held = [];
    entry.state = "refused";
    for (const other of client.groups.values()) {
      if (other.state === "accepted") {
        this.#logger.debug("refused one group's hello on a peer connection", {
          peer: client.peerId,
          group,
          remote: client.conn.remoteAddress,
          reason,
        });
        return;
      }
    }
    this.#refuse(client, reason);
  }

  #refuse(client: ClientState, reason: string): void {
    this.#logger.debug("closing peer connection", {
      peer: client.peerId,
      remote: client.conn.remoteAddress,
      reason,
    });
    for (const entry of client.groups.values()) entry.held = [];
    client.heldCount = 0;
    client.conn.close();
  }

  #onPeerBody(client: ClientState, body: PeerBody): void {
    const entry = client.groups.get(body.group);
    if (entry === undefined) {
      throw new ProtocolError(
        `A ${body.kind} body before any hello for group ${JSON.stringify(body.group)}`,
      );
    }
    switch (entry.state) {
      case "pending":
        // Nothing reaches the handler before the hello is accepted: held, bounded.
        if (client.heldCount < HELD_BODIES_MAX) {
          entry.held.push(body);
          client.heldCount++;
        } else client.heldDropped++;
        return;
      case "refused":
        // Raft tolerates loss; the dialer's next hello for the group is judged again.
        client.refusedDropped++;
        return;
      case "accepted":
        this.#deliverPeerBody(client, body);
        return;
    }
  }

  #deliverPeerBody(client: ClientState, body: PeerBody): void {
    const from = body.kind === "raft"
      ? body.message.from
      : body.kind === "snapshot_chunk"
      ? body.chunk.from
      : body.kind === "snapshot_ack"
      ? body.ack.from
      : body.heartbeat.from;
    if (from !== client.peerId) {
      throw new ProtocolError(`A ${body.kind} body from ${from} on ${client.peerId}'s connection`);
    }
    const handler = this.#handler ?? STARTING_HANDLER;
    switch (body.kind) {
      case "raft":
        handler.onRaftMessage(body.group, body.message);
        return;
      case "snapshot_chunk":
        handler.onSnapshotChunk?.(body.group, body.chunk);
        return;
      case "snapshot_ack":
        handler.onSnapshotAck?.(body.group, body.ack);
        return;
      case "peer_heartbeat":
        handler.onPeerHeartbeat?.(body.group, body.heartbeat);
        return;
    }
  }

  /**
   * The reply function of one request. The answer to a request that came in a batch waits for
   * the end of the turn and goes out in a response batch with the others answered in the turn
   * (unless it has no binary form); the answer to a lone request goes out alone, as clients
   * from before batches expect.
   */
  #replier(
    client: ClientState,
    group: string,
    requestId: number,
    op: string,
    batched: boolean,
  ): ReplyFn {
    // One clock read per burst: the requests of a network read, the replies of an entry.
    const arrivedMs = turnNowMs();
    let replied = false;
    return (response) => {
      if (replied) throw new Error(`Request ${requestId} was already answered`);
      // Encoded before anything else so a bad response throws to the caller and changes nothing.
      const bytes = encodeResponse(group, requestId, response);
      replied = true;
      this.#handler?.onReplied?.(op, response, turnNowMs() - arrivedMs, group);
      client.requestsInFlight--;
      if (client.conn.isClosed) return;
      if (batched && isBinaryResponse(bytes)) this.#queueReply(client, group, bytes);
      else this.#sendReply(client, bytes);
    };
  }

  #queueReply(client: ClientState, group: string, bytes: Uint8Array): void {
    // A batch is at most 2 bytes longer than its items' bodies together: kept within a frame.
    if (
      client.replyCount > 0 &&
      (client.replyGroup !== group ||
        client.replyBytes + bytes.length + 2 > this.#replyBatchBytesMax)
    ) this.#flushReplies(client);
    if (client.replyCount === 0) {
      client.replyGroup = group;
      queueMicrotask(client.flushReplies);
    }
    client.replies[client.replyCount++] = bytes;
    client.replyBytes += bytes.length;
    if (client.replyCount >= BATCH_ITEMS_MAX) this.#flushReplies(client);
  }

  /** Sends the responses waiting on `client`: one alone, more as one response batch. */
  #flushReplies(client: ClientState): void {
    const count = client.replyCount;
    if (count === 0) return;
    const replies = client.replies;
    const body = count === 1 ? replies[0] : encodeResponseBatch(replies, count);
    // Dropped: the bodies are views of the codec's shared buffer, which they would pin.
    replies.length = 0;
    client.replyCount = 0;
    client.replyBytes = 0;
    if (!client.conn.isClosed) this.#sendReply(client, body);
  }

  #sendReply(client: ClientState, bytes: Uint8Array): void {
    const conn = client.conn;
    if (conn.send(bytes) === 0) {
      // The client stopped reading; its later responses would only pile up.
      this.#logger.warn("client not reading responses, closing connection", {
        remote: conn.remoteAddress,
      });
      conn.close();
    }
  }
}

function assertPositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
}
