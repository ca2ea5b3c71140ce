/**
 * Outbound Raft traffic: one connection per peer, opened on first use, reopened with backoff.
 *
 * Raft tolerates lost messages (the leader retransmits from its progress tracking, elections
 * time out and retry), so this layer never waits, never retries a message and never blocks the
 * caller: when a peer cannot take a message now, the message is dropped and counted.
 *
 * @module
 */

import { type Logger, silentLogger } from "../logging/logger.ts";
import type { Message, NodeId } from "../raft/types.ts";
import { type HostPort, parseAddress } from "./address.ts";
import { type DecodedBody, encodePeerAuth, encodeRaft, ProtocolError } from "./codec.ts";
import type { PeerAuthenticator } from "../security/peer_auth.ts";
import { CONNECT_TIMEOUT_MS_DEFAULT, Connection, connectionLimits } from "./connection.ts";
import { FRAME_HEADER_BYTES } from "./frame.ts";
import { type ClientTls, connect as connectMaybeTls, TlsHandshakeError } from "./tls.ts";

/** Default first reconnect delay. */
export const BACKOFF_MS_INITIAL_DEFAULT = 50;
/** Default longest reconnect delay. */
export const BACKOFF_MS_MAX_DEFAULT = 1000;

/** Options for {@linkcode PeerSender}. */
export interface PeerSenderOptions {
  /** Where "peer up" / "peer down" go. Default: nowhere. */
  logger?: Logger;
  /** Largest frame body sent, in bytes; bigger messages are dropped. Default 4 MiB. */
  frameBytesMax?: number;
  /**
   * Most bytes queued per peer, while connecting and once connected. Default 8 MiB; must fit one
   * largest frame.
   */
  queueBytesMax?: number;
  /** First delay before reconnecting after a failure. Default 50 ms. */
  backoffMsInitial?: number;
  /** Longest delay before reconnecting; each failure doubles the delay up to this. Default 1 s. */
  backoffMsMax?: number;
  /** How long a connection attempt may take before it counts as failed. Default 1 s. */
  connectTimeoutMs?: number;
  /**
   * Source of jitter in [0, 1): each delay is drawn from [delay/2, delay). Default
   * `Math.random`; inject a seeded one for deterministic tests.
   */
  random?: () => number;
  /** Clock, for how long a connection lasted. Default `Date.now`. */
  now?: () => number;
  /** Dial peers with TLS, trusting these CAs; plain TCP without. */
  tls?: ClientTls;
  /**
   * Run the peer handshake (see `lib/security/peer_auth.ts`) on every connection before any
   * message goes out; a peer that fails it is treated as unreachable. Without it, none.
   */
  peerAuth?: PeerAuthenticator;
  /**
   * The HELLO body (see `encodeHello`) of `group`, sent on a connection before the first body of
   * that group and again every {@linkcode HELLO_REPEAT_MS} while the group sends on it; asked
   * for anew each time so it carries the group's current cluster id. Null: the group has none
   * (not running here), and its bodies are dropped. Without it no hello is sent, and a node's
   * server delivers none of this sender's messages.
   */
  hello?: (group: string) => Uint8Array | null;
  /**
   * Called when a connection to `peer` comes up (the first one, or a new one after it broke):
   * the peer's process is there again, perhaps restarted.
   */
  onPeerUp?: (peer: NodeId) => void;
}

/**
 * A group's hello is repeated on a connection this often while the group sends on it, so that
 * a receiver that refused it once (while other groups keep the connection open) judges it again.
 */
export const HELLO_REPEAT_MS = 10_000;

/** Counters for one peer. */
export interface PeerStats {
  /** The peer's id (`HOST:PORT`). */
  id: NodeId;
  /** Whether a connection is open now. */
  up: boolean;
  /** Messages dropped since the sender was created. */
  dropped: number;
  /** Bytes waiting to be sent. */
  queuedBytes: number;
  /** Bodies queued for it (hellos and node-level heartbeats aside) since the sender was created. */
  sent: number;
  /** Node-level heartbeats queued for it ({@linkcode PeerSender.beatIdlePeers}). */
  heartbeats: number;
}

type PeerState = "idle" | "connecting" | "up" | "backoff";

interface Peer {
  id: NodeId;
  hostPort: HostPort;
  state: PeerState;
  conn: Connection | null;
  // Bodies sent while the connection is being opened, with their groups; they go out once it is.
  pending: Array<{ group: string; body: Uint8Array }>;
  // When each group's hello last went out on the current connection.
  hellos: Map<string, number>;
  pendingBytes: number;
  connecting: Promise<void> | null;
  abort: AbortController | null;
  timer: ReturnType<typeof setTimeout> | undefined;
  backoffMs: number;
  upSinceMs: number;
  dropped: number;
  // The last transition logged, so each is logged once.
  reported: "up" | "down" | null;
  // A body was sent since the last `beatIdlePeers`, and the group of the latest one.
  sentSinceBeat: boolean;
  lastGroup: string;
  sent: number;
  heartbeats: number;
}

/**
 * Sends Raft messages to peers over one connection each.
 *
 * A peer is connected on the first message to it. While the connection is being opened,
 * messages wait in a bounded queue. When the peer cannot be reached or the connection breaks,
 * messages are dropped during a backoff delay (50 ms, doubling to 1 s, with jitter); the next
 * message after the delay opens a new connection. A full queue drops the newest message: Raft
 * resends what matters, and the queued order stays intact. Every connection starts with the
 * sender's HELLO (see {@linkcode PeerSenderOptions.hello}).
 *
 * @example
 * ```ts ignore
 * import { PeerSender } from "./peers.ts";
 * import { makeMessage, MessageType } from "../raft/types.ts";
 * const peers = new PeerSender();
 * peers.send("127.0.0.1:4001", "counter", makeMessage(MessageType.Heartbeat, {
 *   from: "127.0.0.1:4000", to: "127.0.0.1:4001", term: 2,
 * }));
 * await peers.close();
 * ```
 */
export class PeerSender {
  #peers = new Map<NodeId, Peer>();
  #logger: Logger;
  #frameBytesMax: number;
  #queueBytesMax: number;
  #backoffMsInitial: number;
  #backoffMsMax: number;
  #connectTimeoutMs: number;
  #random: () => number;
  #now: () => number;
  #tls: ClientTls | undefined;
  #peerAuth: PeerAuthenticator | undefined;
  #hello: ((group: string) => Uint8Array | null) | null;
  #onPeerUp: ((peer: NodeId) => void) | undefined;
  #closing = false;
  #closed: Promise<void> | null = null;

  /** Creates a sender; see {@linkcode PeerSenderOptions}. */
  constructor(options: PeerSenderOptions = {}) {
    this.#logger = options.logger ?? silentLogger;
    const limits = connectionLimits(options);
    this.#frameBytesMax = limits.frameBytesMax;
    this.#queueBytesMax = limits.queueBytesMax;
    this.#backoffMsInitial = options.backoffMsInitial ?? BACKOFF_MS_INITIAL_DEFAULT;
    this.#backoffMsMax = options.backoffMsMax ?? BACKOFF_MS_MAX_DEFAULT;
    if (!(this.#backoffMsInitial > 0 && this.#backoffMsInitial <= this.#backoffMsMax)) {
      throw new RangeError("Backoff delays must satisfy 0 < initial <= max");
    }
    this.#connectTimeoutMs = options.connectTimeoutMs ?? CONNECT_TIMEOUT_MS_DEFAULT;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? Date.now;
    this.#tls = options.tls;
    this.#peerAuth = options.peerAuth;
    this.#hello = options.hello ?? null;
    this.#onPeerUp = options.onPeerUp;
  }

  /**
   * Encodes `message` and queues it for peer `to` (`HOST:PORT`). Returns true when it was
   * queued, false when it was dropped (peer unreachable, queue full, message larger than a frame,
   * or sender closed). Throws only for an invalid message or address, which are bugs.
   */
  send(to: NodeId, group: string, message: Message): boolean {
    return this.sendBody(
      to,
      group,
      encodeRaft(group, message),
      `raft message type ${message.type}`,
    );
  }

  /**
   * Queues an already encoded body of `group` (see `encodeSnapshotChunk`) for peer `to`; same
   * outcome as {@linkcode PeerSender.send}. `what` names the body in the warning if it is too
   * large.
   */
  sendBody(to: NodeId, group: string, body: Uint8Array, what = "body"): boolean {
    if (this.#closing) return false;
    const peer = this.#peer(to);
    peer.sentSinceBeat = true;
    peer.lastGroup = group;
    if (!this.#sendBody(peer, group, body, what)) return false;
    peer.sent++;
    return true;
  }

  /**
   * Node-level heartbeats: to every peer that was sent nothing since the previous call (and was
   * sent something once), sends `encode(peer, group)`, `group` being the group of the latest
   * body sent to it (one the peer takes). Returns how many went out. These do not count as
   * traffic for the next call.
   */
  beatIdlePeers(encode: (to: NodeId, group: string) => Uint8Array): number {
    if (this.#closing) return 0;
    let sent = 0;
    for (const peer of this.#peers.values()) {
      if (!peer.sentSinceBeat && peer.lastGroup !== "") {
        if (this.#sendBody(peer, peer.lastGroup, encode(peer.id, peer.lastGroup), "heartbeat")) {
          peer.heartbeats++;
          sent++;
        }
      }
      peer.sentSinceBeat = false;
    }
    return sent;
  }

  #sendBody(peer: Peer, group: string, body: Uint8Array, what: string): boolean {
    const to = peer.id;
    if (body.length > this.#frameBytesMax) {
      peer.dropped++;
      this.#logger.warn("message larger than a frame, dropped", {
        peer: to,
        what,
        bytes: body.length,
        limit: this.#frameBytesMax,
      });
      return false;
    }
    switch (peer.state) {
      case "up":
        if (!this.#sayHello(peer, peer.conn!, group)) break;
        if (peer.conn!.send(body) > 0) return true;
        break;
      case "idle":
        this.#connect(peer);
        return this.#hold(peer, group, body);
      case "connecting":
        return this.#hold(peer, group, body);
      case "backoff":
        break;
    }
    peer.dropped++;
    return false;
  }

  /** Whether a connection to `to` is open now. */
  isUp(to: NodeId): boolean {
    return this.#peers.get(to)?.state === "up";
  }

  /** Counters for every peer messages were sent to. */
  stats(): PeerStats[] {
    return [...this.#peers.values()].map((peer) => ({
      id: peer.id,
      up: peer.state === "up",
      dropped: peer.dropped,
      queuedBytes: peer.pendingBytes + (peer.conn?.queuedBytes ?? 0),
      sent: peer.sent,
      heartbeats: peer.heartbeats,
    }));
  }

  /** Closes the connection to `to` and forgets the peer (for a node removed from the group). */
  async removePeer(to: NodeId): Promise<void> {
    const peer = this.#peers.get(to);
    if (peer === undefined) return;
    this.#peers.delete(to);
    await this.#shutPeer(peer);
  }

  /** Closes every connection and stops every timer. Idempotent. */
  close(): Promise<void> {
    this.#closed ??= this.#close();
    return this.#closed;
  }

  async #close(): Promise<void> {
    this.#closing = true;
    const peers = [...this.#peers.values()];
    this.#peers.clear();
    await Promise.all(peers.map((peer) => this.#shutPeer(peer)));
  }

  async #shutPeer(peer: Peer): Promise<void> {
    // Marked first so the connect and close paths below leave the peer alone.
    peer.state = "backoff";
    clearTimeout(peer.timer);
    peer.timer = undefined;
    peer.abort?.abort();
    peer.pending = [];
    peer.pendingBytes = 0;
    await peer.connecting;
    await peer.conn?.close();
  }

  #peer(id: NodeId): Peer {
    let peer = this.#peers.get(id);
    if (peer === undefined) {
      peer = {
        id,
        hostPort: parseAddress(id),
        state: "idle",
        conn: null,
        pending: [],
        hellos: new Map(),
        pendingBytes: 0,
        connecting: null,
        abort: null,
        timer: undefined,
        backoffMs: this.#backoffMsInitial,
        upSinceMs: 0,
        dropped: 0,
        reported: null,
        sentSinceBeat: false,
        lastGroup: "",
        sent: 0,
        heartbeats: 0,
      };
      this.#peers.set(id, peer);
    }
    return peer;
  }

  /**
   * Sends `group`'s hello on `conn` when it has not gone out there yet, or not for
   * {@linkcode HELLO_REPEAT_MS}. False when the connection cannot take it.
   */
  #sayHello(peer: Peer, conn: Connection, group: string): boolean {
    if (this.#hello === null) return true;
    const nowMs = this.#now();
    const lastMs = peer.hellos.get(group);
    if (lastMs !== undefined && nowMs - lastMs < HELLO_REPEAT_MS) return true;
    let hello: Uint8Array | null;
    try {
      hello = this.#hello(group);
    } catch (err) {
      // A bug on this side; without its hello the group's bodies would be refused.
      this.#logger.error("could not encode the hello", { peer: peer.id, group, reason: err });
      return false;
    }
    // No hello (the group is not running here): its body would only get the connection closed.
    if (hello === null) return false;
    peer.hellos.set(group, nowMs);
    return conn.send(hello) > 0;
  }

  #hold(peer: Peer, group: string, body: Uint8Array): boolean {
    const frameBytes = FRAME_HEADER_BYTES + body.length;
    if (peer.pendingBytes + frameBytes > this.#queueBytesMax) {
      peer.dropped++;
      return false;
    }
    peer.pending.push({ group, body });
    peer.pendingBytes += frameBytes;
    return true;
  }

  #connect(peer: Peer): void {
    peer.state = "connecting";
    const abort = new AbortController();
    peer.abort = abort;
    peer.connecting = this.#open(peer, abort).finally(() => {
      peer.connecting = null;
      peer.abort = null;
    });
  }

  async #open(peer: Peer, abort: AbortController): Promise<void> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      abort.abort();
    }, this.#connectTimeoutMs);
    let tcp: Deno.Conn;
    try {
      tcp = await connectMaybeTls(
        peer.hostPort.hostname,
        peer.hostPort.port,
        this.#tls,
        abort.signal,
      );
    } catch (err) {
      if (err instanceof TlsHandshakeError && peer.reported !== "down") {
        // A configuration error, not a node that is down: say so loudly, once per outage.
        this.#logger.warn("peer TLS handshake failed", { peer: peer.id, reason: err.message });
      }
      if (peer.state === "connecting") {
        this.#down(peer, timedOut ? `connect timed out after ${this.#connectTimeoutMs} ms` : err);
      }
      return;
    } finally {
      clearTimeout(timer);
    }
    if (peer.state !== "connecting") {
      // Shut down while connecting.
      tcp.close();
      return;
    }
    // The only body a peer may send back is the handshake's challenge, once.
    let onChallenge: ((body: DecodedBody) => void) | null = null;
    const conn = new Connection(tcp, (body) => {
      const deliver = onChallenge;
      onChallenge = null;
      if (deliver === null || body.kind !== "peer_auth") {
        throw new ProtocolError("A peer sent a frame on an outbound Raft connection");
      }
      deliver(body);
    }, {
      frameBytesMax: this.#frameBytesMax,
      queueBytesMax: this.#queueBytesMax,
      logger: this.#logger,
    });
    const auth = this.#peerAuth;
    if (auth !== undefined) {
      const challenge = new Promise<DecodedBody>((resolve) => onChallenge = resolve);
      const failure = await this.#handshake(peer, conn, auth, challenge, abort.signal);
      if (failure !== null) {
        await conn.close();
        if (peer.state === "connecting") this.#down(peer, failure);
        return;
      }
    }
    peer.conn = conn;
    peer.hellos = new Map();
    peer.state = "up";
    peer.upSinceMs = this.#now();
    if (peer.reported !== "up") {
      peer.reported = "up";
      this.#logger.info("peer up", { peer: peer.id });
    }
    try {
      this.#onPeerUp?.(peer.id);
    } catch (err) {
      this.#logger.error("peer up handler failed", { peer: peer.id, reason: err });
    }
    const pending = peer.pending;
    peer.pending = [];
    peer.pendingBytes = 0;
    // Each group's hello goes first (after the handshake): the peer takes no body of a group
    // before that group's hello.
    for (const { group, body } of pending) {
      if (!this.#sayHello(peer, conn, group) || conn.send(body) === 0) peer.dropped++;
    }
    conn.closed.then(() => {
      if (peer.conn !== conn) return;
      peer.conn = null;
      if (peer.state !== "up") return;
      // A connection that lived a while was healthy: start the next backoff from the bottom.
      if (this.#now() - peer.upSinceMs >= this.#backoffMsMax) {
        peer.backoffMs = this.#backoffMsInitial;
      }
      this.#down(peer, "connection closed");
    });
  }

  /**
   * Runs the dialer's side of the peer handshake on `conn`; resolves with null once the peer
   * proved it holds the cluster token and the proof went out, else with why not.
   */
  async #handshake(
    peer: Peer,
    conn: Connection,
    auth: PeerAuthenticator,
    challenge: Promise<DecodedBody>,
    signal: AbortSignal,
  ): Promise<string | null> {
    const { step, state } = auth.dialerStart(peer.id);
    conn.send(encodePeerAuth(auth.group, step));
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort = () => {};
    const giveUp = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`no handshake answer within ${this.#connectTimeoutMs} ms`),
        this.#connectTimeoutMs,
      );
      onAbort = () => resolve("shut down");
      signal.addEventListener("abort", onAbort, { once: true });
      conn.closed.then(() => resolve("the peer closed the connection during the handshake"));
    });
    try {
      const answer = await Promise.race([challenge, giveUp]);
      if (typeof answer === "string") return answer;
      if (answer.kind !== "peer_auth") return "no handshake answer";
      const proof = await auth.dialerFinish(state, answer.group, answer.auth);
      if (conn.isClosed || peer.state !== "connecting") return "connection closed";
      conn.send(encodePeerAuth(auth.group, proof));
      return null;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      // Once per outage: a wrong token is retried at every backoff.
      if (peer.reported !== "down") {
        this.#logger.warn("peer failed the handshake", { peer: peer.id, reason });
      }
      return reason;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
  }

  #down(peer: Peer, reason: unknown): void {
    peer.dropped += peer.pending.length;
    peer.pending = [];
    peer.pendingBytes = 0;
    if (peer.reported !== "down") {
      peer.reported = "down";
      this.#logger.info("peer down", { peer: peer.id, reason });
    }
    peer.state = "backoff";
    // Equal jitter: never less than half the delay, so backoff still backs off.
    const delayMs = peer.backoffMs * (0.5 + 0.5 * this.#random());
    peer.backoffMs = Math.min(peer.backoffMs * 2, this.#backoffMsMax);
    peer.timer = setTimeout(() => {
      peer.timer = undefined;
      if (peer.state === "backoff" && !this.#closing) peer.state = "idle";
    }, delayMs);
  }
}
