/**
 * `CounterClient`: the client library that the CLI is built on.
 *
 * It finds the leader itself (ask any peer, follow redirects, like SOFAJRaft's RouteTable), keeps
 * one connection per server with many requests in flight, retries with backoff until the caller's
 * deadline, and makes retried increments safe: every increment carries this client's id and a
 * sequence number, and the state machine applies each (id, seq) once.
 *
 * One client serves any number of groups hosted by the same nodes (`counter serve --groups`):
 * the connections are shared, and the leader and the pinned cluster id are kept per group. Calls
 * without a group go to the client's default group (`group` in the options); `client.group(name)`
 * is a view whose calls go to `name`.
 *
 * @example
 * ```ts
 * const client = new CounterClient({ peers: ["127.0.0.1:8081", "127.0.0.1:8082"] });
 * const { value } = await client.incrementAndGet(5n);
 * const orders = client.group("orders");
 * await orders.incrementAndGet(1n);
 * await client.close();
 * ```
 *
 * @module
 */

import type { ClientRequest, ClientResponse, WireMap } from "../transport/codec.ts";
import { RpcClientConnection, RpcError } from "../transport/client_conn.ts";
import { InflightSeqs } from "./inflight_seqs.ts";
import type { ClientTls } from "../transport/tls.ts";
import { authenticate, ClientAuthError } from "../security/client_auth.ts";
import { hmacKey } from "../security/tokens.ts";
import { type Logger, silentLogger } from "../logging/logger.ts";

/** Options of {@linkcode CounterClient}. */
export interface CounterClientOptions {
  /** Servers to ask, as HOST:PORT. */
  peers: string[];
  /** The default group: the one calls that name none go to. Default "counter". */
  group?: string;
  /** Overall deadline of one call, retries included. Default 5000 ms. */
  timeoutMs?: number;
  /** Deadline of one attempt at one server. Default 1000 ms. */
  attemptTimeoutMs?: number;
  /** Session id for exactly-once increments. Default: a random UUID. */
  clientId?: string;
  /** Where to log retries (debug). Default: nowhere. */
  logger?: Logger;
  /** Connect with TLS, trusting these CAs (see `loadClientTls`); plain TCP without. */
  tls?: ClientTls;
  /**
   * The client or admin token (see `readTokenFile`): each new connection proves it holds it
   * (the `auth` op) before anything else. Without it no proof is made, and a node with tokens
   * answers `UNAUTHENTICATED`.
   */
  token?: Uint8Array;
}

/** Result of a successful call: the counter's value and the server that answered. */
export interface CounterValue {
  /** The counter value (after the increment, for increments). */
  value: bigint;
  /** The leader as the answering node knows it. */
  leader: string;
  /** The node that answered. */
  node: string;
}

/**
 * Read consistency levels:
 * - `linearizable`: the leader confirms its leadership with a heartbeat round (ReadIndex).
 * - `lease`: the leader answers from its lease without a round; linearizable as long as clocks
 *   drift by less than 10% over an election timeout.
 * - `follower`: any node; a follower gets the read index from the leader, then answers once it
 *   has applied up to it. Linearizable, and it spreads reads over the group.
 * - `stale`: any node answers from its own state at once; may be behind.
 */
export type Consistency = "linearizable" | "lease" | "follower" | "stale";

/** Every {@linkcode Consistency}, in the order the help lists them. */
export const CONSISTENCIES: readonly Consistency[] = ["linearizable", "lease", "follower", "stale"];

/** Options of a call that may name its group. */
export interface GroupOption {
  /** The group the call is for. Default: the client's default group. */
  group?: string;
}

/** Options of a read. */
export interface GetOptions extends GroupOption {
  /** Consistency of the read; default `linearizable`. */
  consistency?: Consistency;
}

/** Options of an admin call. */
export interface AdminOptions extends GroupOption {
  /** Send to this node alone (no redirects); default the group's leader. */
  peer?: string;
}

/**
 * What the client knows of one group: the leader it last heard of and the cluster id it pinned.
 * Both are per group: each group has its own leader and its own data dirs (and cluster id).
 */
interface GroupRoute {
  readonly group: string;
  leader: string | null;
  /** The cluster id pinned from the first node that named one for this group; "" until then. */
  clusterId: string;
  /**
   * Peers that answered `UNKNOWN_GROUP` for this group (a group may live on some of the nodes
   * only): skipped when picking a node to ask, until every peer has said so.
   */
  absent: Set<string> | null;
}

/**
 * Bound on the groups a client remembers routes of, besides its default group; past it the
 * route learned first is forgotten (its next call asks any node again).
 */
const ROUTES_MAX = 4096;

/** Whether a failed call certainly had no effect, or may have been applied. */
export type Outcome = "failed" | "unknown";

/** A call that did not succeed. `outcome` tells whether it may still have been applied. */
export class CounterError extends Error {
  /** Machine-readable reason, e.g. "TIMEOUT", "OVERFLOW". */
  readonly code: string;
  /** "failed": certainly not applied. "unknown": may or may not have been applied. */
  readonly outcome: Outcome;

  /** Creates the error. */
  constructor(code: string, outcome: Outcome, message: string) {
    super(message);
    this.name = "CounterError";
    this.code = code;
    this.outcome = outcome;
  }
}

/**
 * Notes that `target` does not serve `route`'s group. True when another peer may still serve
 * it; false when every peer has said it does not (the answer is then final), which also forgets
 * the notes, so that a later call asks them all again (the group may have been created since).
 */
function noteGroupAbsent(route: GroupRoute, target: string, peers: readonly string[]): boolean {
  route.absent ??= new Set();
  route.absent.add(target);
  if (peers.every((p) => route.absent!.has(p))) {
    route.absent = null;
    return false;
  }
  return true;
}

/** Answers that end a call at once: retrying cannot change them. */
const FINAL_CODES = new Set([
  "OVERFLOW",
  "BAD_REQUEST",
  "UNKNOWN_GROUP",
  "UNKNOWN_OP",
  "STALE_REQUEST",
  "WRONG_CLUSTER",
  "UNAUTHENTICATED",
  "PERMISSION_DENIED",
]);

/**
 * A TLS mismatch (wrong CA, a node with or without TLS unlike this client) is a configuration
 * error that no retry fixes: it ends the call at once, as `TLS`.
 */
function throwIfTls(err: unknown): void {
  if (err instanceof RpcError && err.reason === "tls") {
    throw new CounterError("TLS", "failed", err.message);
  }
  // The node refused this client's token: no retry changes that.
  if (err instanceof ClientAuthError) throw new CounterError(err.code, "failed", err.message);
}

const BACKOFF_MS_MIN = 10;
const BACKOFF_MS_MAX = 500;

/** A client of a counter group. */
export class CounterClient {
  readonly #peers: string[];
  readonly #timeoutMs: number;
  readonly #attemptTimeoutMs: number;
  readonly #clientId: string;
  readonly #log: Logger;
  readonly #tls: ClientTls | undefined;
  readonly #tokenKey: Promise<CryptoKey> | null;
  #conns = new Map<string, RpcClientConnection>();
  #connecting = new Map<string, Promise<RpcClientConnection>>();
  /** The default group's route; also in `#routes`. */
  readonly #route: GroupRoute;
  /** Every group's route, by name, oldest first. */
  readonly #routes = new Map<string, GroupRoute>();
  #nextPeer = 0;
  #seq = 0;
  /** Sequence numbers of the increments in flight, in issue order (a `Set` keeps it). */
  #inflight = new InflightSeqs();
  #closed = false;

  /** Creates a client; connections are opened on first use. */
  constructor(options: CounterClientOptions) {
    if (options.peers.length === 0) throw new Error("a client needs at least one peer");
    this.#peers = [...options.peers];
    const group = options.group ?? "counter";
    this.#route = { group, leader: null, clusterId: "", absent: null };
    this.#routes.set(group, this.#route);
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? 1000;
    this.#clientId = options.clientId ?? crypto.randomUUID();
    this.#log = options.logger ?? silentLogger;
    this.#tls = options.tls;
    this.#tokenKey = options.token === undefined ? null : hmacKey(options.token);
    // Reported on first use; unhandled until then it would end the process.
    this.#tokenKey?.catch(() => {});
    this.#nextPeer = Math.floor(Math.random() * this.#peers.length);
  }

  /**
   * The cluster id this client pinned: the first node that answered with one named it, and
   * every later request carries it, so that a node of another cluster (one force-recovered
   * separately) refuses it rather than serve it. "" until a node has named one.
   */
  get clusterId(): string {
    return this.#route.clusterId;
  }

  /** The leader of the default group this client last heard of, if any. */
  get leader(): string | null {
    return this.#route.leader;
  }

  /** The default group's name. */
  get defaultGroup(): string {
    return this.#route.group;
  }

  /** The leader of `group` this client last heard of, if any. */
  leaderOf(group: string): string | null {
    return this.#routes.get(group)?.leader ?? null;
  }

  /** The cluster id this client pinned for `group` ("" until a node named one). */
  clusterIdOf(group: string): string {
    return this.#routes.get(group)?.clusterId ?? "";
  }

  /**
   * A view of this client whose calls go to `group`: same connections, same session, its own
   * leader and cluster id. Views are cheap; closing the client closes them all.
   */
  group(group: string): CounterGroupClient {
    return new CounterGroupClient(this, group);
  }

  /**
   * Adds `delta` and returns the value after it. Safe to call concurrently; retries inside keep
   * the same sequence number, so the increment is applied at most once.
   *
   * One sequence space serves every group: each group's state machine sees a subsequence of it,
   * which de-duplicates as well, and `ackedBelow` (the oldest increment still waiting, in any
   * group) only tells a group to forget answers the client already has.
   */
  incrementAndGet(delta: bigint, options?: GroupOption): Promise<CounterValue> {
    const route = options?.group === undefined ? this.#route : this.#routeOf(options.group);
    const seq = ++this.#seq;
    this.#inflight.add(seq);
    // Every answer below the oldest increment still waiting is in hand: the node may forget them.
    const ackedBelow = this.#inflight.oldest;
    const clientId = this.#clientId;
    const req: ClientRequest = route.clusterId === ""
      ? { op: "incr", delta, clientId, seq, ackedBelow }
      : { op: "incr", delta, clientId, seq, ackedBelow, clusterId: route.clusterId };
    // #call forgets `seq` once it has settled.
    return this.#call(route, req, true, seq);
  }

  /** Reads the counter; linearizable unless `consistency` says otherwise. */
  get(options: GetOptions = {}): Promise<CounterValue> {
    const route = options.group === undefined ? this.#route : this.#routeOf(options.group);
    const consistency = options.consistency ?? "linearizable";
    const req: ClientRequest = route.clusterId === ""
      ? { op: "get", consistency }
      : { op: "get", consistency, clusterId: route.clusterId };
    return this.#call(route, req, false, 0);
  }

  /**
   * Sends an admin operation (see docs/PROTOCOL.md): to `peer` alone when given, otherwise to
   * the leader, following redirects. Returns the response's `data`; throws {@linkcode CounterError}
   * when the node refuses. Admin operations are not retried once sent: they report failures
   * rather than risk applying a membership change twice.
   */
  async admin(
    op: string,
    args: WireMap = {},
    options: AdminOptions = {},
  ): Promise<{ data: WireMap; leader: string }> {
    const route = options.group === undefined ? this.#route : this.#routeOf(options.group);
    const deadline = Date.now() + this.#timeoutMs;
    let backoffMs = BACKOFF_MS_MIN;
    let lastError = "no server answered";
    while (!this.#closed && Date.now() < deadline) {
      const target = options.peer ?? route.leader ?? this.#rotatePeer();
      let resp: ClientResponse;
      try {
        const conn = await this.#connection(target, route.group);
        const req = this.#pinned(route, { op, args });
        resp = await conn.call(route.group, req, Math.max(1, deadline - Date.now()));
      } catch (err) {
        const sent = err instanceof RpcError ? err.sent : false;
        this.#dropConnection(target);
        throwIfTls(err);
        if (sent) {
          throw new CounterError("TIMEOUT", "unknown", `${target}: ${(err as Error).message}`);
        }
        lastError = `${target}: ${(err as Error).message}`;
        if (options.peer !== undefined) throw new CounterError("UNAVAILABLE", "failed", lastError);
        if (route.leader === target) route.leader = null;
        await this.#sleep(Math.min(backoffMs, deadline - Date.now()));
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
        continue;
      }
      this.#checkCluster(route, target, resp, "failed");
      if (resp.ok) return { data: resp.data ?? {}, leader: resp.leader ?? target };
      const code = resp.code ?? "UNKNOWN";
      lastError = resp.error ?? code;
      if (options.peer === undefined && (code === "NOT_LEADER" || code === "NO_LEADER")) {
        route.leader = code === "NOT_LEADER" && resp.leader ? resp.leader : null;
        if (route.leader === null) {
          await this.#sleep(Math.min(backoffMs, deadline - Date.now()));
          backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
        }
        continue;
      }
      throw new CounterError(code, code === "TIMEOUT" ? "unknown" : "failed", lastError);
    }
    throw new CounterError(
      "TIMEOUT",
      "failed",
      `failed within ${this.#timeoutMs} ms: ${lastError}`,
    );
  }

  /** Asks one server for its status in a group (no redirects). */
  async status(peer: string, options: GroupOption = {}): Promise<ClientResponse> {
    const group = options.group ?? this.#route.group;
    const conn = await this.#connection(peer, group);
    return await conn.call(group, { op: "status" }, this.#timeoutMs);
  }

  /** Closes every connection. */
  async close(): Promise<void> {
    this.#closed = true;
    const pending = [...this.#connecting.values()];
    await Promise.allSettled(pending);
    const conns = [...this.#conns.values()];
    this.#conns.clear();
    await Promise.allSettled(conns.map((c) => c.close()));
  }

  /**
   * Runs `req` to its end: retries, redirects, backoff. `seq`, when not 0, is the increment's
   * sequence number, dropped from those in flight when the call settles. (One async function per
   * call, not a wrapper around another: each costs a promise and a resumption per request.)
   */
  async #call(
    route: GroupRoute,
    req: ClientRequest,
    hasEffect: boolean,
    seq: number,
  ): Promise<CounterValue> {
    try {
      const group = route.group;
      const deadline = Date.now() + this.#timeoutMs;
      let maybeApplied = false;
      let lastError = "no server answered";
      let lastCode = "TIMEOUT";
      let backoffMs = BACKOFF_MS_MIN;
      let redirects = 0;
      while (!this.#closed) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        const anyNode = req.consistency === "follower" || req.consistency === "stale";
        // Until a cluster id is pinned, concurrent increments all go to one node (not one each),
        // so that they cannot land in two separately recovered groups before the pin exists.
        const sticky = hasEffect && route.clusterId === "";
        const target = anyNode
          ? this.#rotatePeer(route)
          : route.leader ?? (sticky ? this.#currentPeer(route) : this.#rotatePeer(route));
        let resp: ClientResponse;
        try {
          // The connection is almost always open already: no promise to wait for then.
          let conn = this.#conns.get(target);
          if (conn === undefined || conn.isClosed) conn = await this.#connection(target, group);
          const attempt = this.#pinned(route, req);
          resp = await conn.call(group, attempt, Math.min(remaining, this.#attemptTimeoutMs));
        } catch (err) {
          const sent = err instanceof RpcError ? err.sent : false;
          if (!maybeApplied) throwIfTls(err);
          if (sent && hasEffect) maybeApplied = true;
          lastError = `${target}: ${(err as Error).message}`;
          lastCode = sent ? "TIMEOUT" : "UNAVAILABLE";
          this.#log.debug("attempt failed", { target, error: lastError, sent });
          this.#dropConnection(target);
          if (route.leader === target) route.leader = null;
          if (sticky) this.#passPeer(target);
          await this.#sleep(Math.min(backoffMs, deadline - Date.now()));
          backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
          continue;
        }
        this.#checkCluster(route, target, resp, hasEffect && resp.ok ? "unknown" : "failed");
        if (resp.ok) {
          if (resp.value === undefined) {
            throw new CounterError("BAD_RESPONSE", "unknown", "no value");
          }
          if (resp.leader) route.leader = resp.leader;
          else if (!anyNode) route.leader = target;
          return { value: resp.value, leader: resp.leader ?? target, node: target };
        }
        const code = resp.code ?? "UNKNOWN";
        lastCode = code;
        lastError = resp.error ?? code;
        if (code === "UNKNOWN_GROUP" && noteGroupAbsent(route, target, this.#peers)) {
          // This node does not serve the group; another of the peers may. Ask the next one now.
          if (route.leader === target) route.leader = null;
          if (sticky) this.#passPeer(target);
          continue;
        }
        if (FINAL_CODES.has(code)) {
          // With de-duplication, a final answer is the answer for this request, even after an
          // earlier attempt with unknown outcome.
          throw new CounterError(code, "failed", lastError);
        }
        if (code === "TIMEOUT" && hasEffect) maybeApplied = true;
        if (code === "NOT_LEADER" && resp.leader && resp.leader !== target && !anyNode) {
          route.leader = resp.leader;
          // Nodes that disagree about the leader (mid-election) must not be ping-ponged at full
          // speed: after one redirect per peer, back off as for any other failure.
          if (++redirects <= this.#peers.length) continue;
          redirects = 0;
          await this.#sleep(Math.min(backoffMs, deadline - Date.now()));
          backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
          continue;
        }
        route.leader = null;
        if (sticky) this.#passPeer(target);
        await this.#sleep(Math.min(backoffMs, deadline - Date.now()));
        backoffMs = Math.min(backoffMs * 2, BACKOFF_MS_MAX);
      }
      if (this.#closed) {
        throw new CounterError("CLOSED", maybeApplied ? "unknown" : "failed", "client closed");
      }
      if (maybeApplied) {
        throw new CounterError(
          "TIMEOUT",
          "unknown",
          `no answer within ${this.#timeoutMs} ms; the increment may or may not have been applied (last error: ${lastError})`,
        );
      }
      throw new CounterError(
        lastCode === "TIMEOUT" ? "TIMEOUT" : lastCode,
        "failed",
        `failed within ${this.#timeoutMs} ms: ${lastError}`,
      );
    } finally {
      if (seq !== 0) this.#inflight.delete(seq);
    }
  }

  /** The route of `group`, made on first use (at most {@linkcode ROUTES_MAX} besides the default). */
  #routeOf(group: string): GroupRoute {
    let route = this.#routes.get(group);
    if (route !== undefined) return route;
    if (this.#routes.size > ROUTES_MAX) {
      for (const name of this.#routes.keys()) {
        if (name === this.#route.group) continue;
        this.#routes.delete(name);
        break;
      }
    }
    route = { group, leader: null, clusterId: "", absent: null };
    this.#routes.set(group, route);
    return route;
  }

  /**
   * `req` with `route`'s pinned cluster id, once there is one (requests made after it have it).
   */
  #pinned(route: GroupRoute, req: ClientRequest): ClientRequest {
    const clusterId = route.clusterId;
    return clusterId === "" || req.clusterId === clusterId ? req : { ...req, clusterId };
  }

  /**
   * Pins the cluster id an answer names, or throws `WRONG_CLUSTER` when it names another one
   * than the pinned id (or the node refused the pinned id): that node belongs to a group
   * force-recovered separately, whose history must not mix with this one's. `outcome` is the
   * error's outcome: "unknown" when the answer says the other group applied an increment.
   */
  #checkCluster(route: GroupRoute, target: string, resp: ClientResponse, outcome: Outcome): void {
    const theirs = resp.clusterId ?? "";
    if (resp.code !== "WRONG_CLUSTER" && (theirs === "" || theirs === route.clusterId)) return;
    if (resp.code !== "WRONG_CLUSTER" && route.clusterId === "") {
      route.clusterId = theirs;
      this.#log.debug("pinned cluster id", { clusterId: theirs, node: target, group: route.group });
      return;
    }
    throw new CounterError(
      "WRONG_CLUSTER",
      resp.code === "WRONG_CLUSTER" ? "failed" : outcome,
      `node ${target} belongs to another cluster (id ${theirs || "unknown"}, this client's is ` +
        `${route.clusterId}): it was force-recovered separately`,
    );
  }

  /** The peer that `#rotatePeer` would pick next, without moving on. */
  #currentPeer(route?: GroupRoute): string {
    this.#skipAbsent(route);
    return this.#peers[this.#nextPeer % this.#peers.length];
  }

  /** Moves the rotation past peers that said they do not serve `route`'s group. */
  #skipAbsent(route: GroupRoute | undefined): void {
    const absent = route?.absent;
    if (absent === null || absent === undefined) return;
    for (let i = 0; i < this.#peers.length; i++) {
      if (!absent.has(this.#peers[this.#nextPeer % this.#peers.length])) return;
      this.#nextPeer++;
    }
  }

  /** Moves past `peer` if it is the current one (many calls failing there move on once). */
  #passPeer(peer: string): void {
    if (this.#currentPeer() === peer) this.#nextPeer++;
  }

  #rotatePeer(route?: GroupRoute): string {
    this.#skipAbsent(route);
    const peer = this.#peers[this.#nextPeer % this.#peers.length];
    this.#nextPeer++;
    return peer;
  }

  /** The connection to `peer`, opened (and authenticated for `group`) when there is none. */
  async #connection(peer: string, group: string): Promise<RpcClientConnection> {
    const existing = this.#conns.get(peer);
    if (existing !== undefined && !existing.isClosed) return existing;
    let pending = this.#connecting.get(peer);
    if (pending === undefined) {
      pending = this.#open(peer, group);
      this.#connecting.set(peer, pending);
    }
    try {
      const conn = await pending;
      if (this.#closed) {
        await conn.close();
        throw new Error("client closed");
      }
      this.#conns.set(peer, conn);
      return conn;
    } finally {
      this.#connecting.delete(peer);
    }
  }

  /**
   * Opens a connection to `peer` and, with a token, proves it holds it. The proof names `group`
   * (the group of the call that opened the connection); the role it earns covers the connection,
   * so every group the node hosts can use it.
   */
  async #open(peer: string, group: string): Promise<RpcClientConnection> {
    const conn = await RpcClientConnection.connect(peer, {
      connectTimeoutMs: this.#attemptTimeoutMs,
      tls: this.#tls,
    });
    if (this.#tokenKey === null) return conn;
    try {
      const key = await this.#tokenKey;
      const call = (req: ClientRequest) => conn.call(group, req, this.#attemptTimeoutMs);
      await authenticate(call, group, key);
      return conn;
    } catch (err) {
      await conn.close();
      throw err;
    }
  }

  #dropConnection(peer: string): void {
    const conn = this.#conns.get(peer);
    if (conn !== undefined && conn.isClosed) {
      this.#conns.delete(peer);
    }
  }

  #sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}

/**
 * A view of a {@linkcode CounterClient} whose calls go to one group: it shares the client's
 * connections and session, and has that group's own leader and cluster id. Made by
 * `client.group(name)`; `close()` closes the whole client.
 */
export class CounterGroupClient {
  /** The client this is a view of. */
  readonly client: CounterClient;
  /** The group the calls go to. */
  readonly name: string;
  readonly #options: GroupOption;

  /** A view of `client` for `group`; see {@linkcode CounterClient.group}. */
  constructor(client: CounterClient, group: string) {
    this.client = client;
    this.name = group;
    this.#options = { group };
  }

  /** The leader of this group the client last heard of, if any. */
  get leader(): string | null {
    return this.client.leaderOf(this.name);
  }

  /** The cluster id the client pinned for this group ("" until a node named one). */
  get clusterId(): string {
    return this.client.clusterIdOf(this.name);
  }

  /** {@linkcode CounterClient.incrementAndGet} in this group. */
  incrementAndGet(delta: bigint): Promise<CounterValue> {
    return this.client.incrementAndGet(delta, this.#options);
  }

  /** {@linkcode CounterClient.get} in this group. */
  get(options: { consistency?: Consistency } = {}): Promise<CounterValue> {
    return this.client.get(
      options.consistency === undefined ? this.#options : { ...options, group: this.name },
    );
  }

  /** {@linkcode CounterClient.admin} in this group. */
  admin(
    op: string,
    args: WireMap = {},
    options: { peer?: string } = {},
  ): Promise<{ data: WireMap; leader: string }> {
    return this.client.admin(op, args, { ...options, group: this.name });
  }

  /** {@linkcode CounterClient.status} in this group. */
  status(peer: string): Promise<ClientResponse> {
    return this.client.status(peer, this.#options);
  }

  /** Closes the client this is a view of (every group's calls end). */
  close(): Promise<void> {
    return this.client.close();
  }
}
