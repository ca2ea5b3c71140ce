/**
 * Which peers a node listens to: the decision on each HELLO, and the durable registry of the data
 * dir incarnation each peer showed.
 *
 * A node records the incarnation of every peer it accepts Raft traffic from, durably, before any
 * of that traffic reaches the core. A peer that later shows another incarnation has lost its data
 * dir: it may have forgotten a vote it gave or entries it acknowledged, so it must never be heard
 * again under that id. It has to be replaced (removed, wiped, added back), and removal forgets the
 * record. See docs/DESIGN.md, "Reusing a node id with an empty data dir".
 *
 * @module
 */

import type { ConfState } from "../raft/mod.ts";
import type { Hello } from "../transport/mod.ts";
import type { Logger } from "../logging/logger.ts";

/** What the node keeps in its data dir about identities (implemented by `DataDir`). */
export interface IdentityStore {
  /** This data dir's incarnation: 16 hex digits, random, created with the dir. */
  incarnation(): string;
  /** The cluster this data dir belongs to, or "" while it does not know. */
  clusterId(): string;
  /** Durably records the cluster id. */
  saveClusterId(id: string): Promise<void>;
  /** The incarnation recorded for peer `id`, if any. */
  peerIncarnation(id: string): string | undefined;
  /** Durably records `incarnation` for peer `id`. */
  savePeerIncarnation(id: string, incarnation: string): Promise<void>;
  /** Durably forgets the incarnations of every peer not in `keep`. */
  forgetPeerIncarnations(keep: ReadonlySet<string>): Promise<void> | void;
}

/** What a node knows when it judges a hello; see {@linkcode judgeHello}. */
export interface HelloContext {
  /** This node's id. */
  self: string;
  /** This node's group. */
  group: string;
  /** This node's cluster id, or "". */
  clusterId: string;
  /**
   * The members of this node's configuration (voters and learners), or null when it has none
   * yet (a node started with `--join` that has not received its first entries).
   */
  members: ReadonlySet<string> | null;
  /** The incarnation recorded for the hello's sender, if any. */
  recorded: string | undefined;
  /**
   * Ids whose recorded incarnation binds: members of the committed configuration and voters of
   * the latest one (null when this node has no configuration). Another id may have been recorded
   * as a learner whose addition never committed; it never voted nor counted toward a commit, so
   * a new data dir under that id replaces the record. When absent, every record binds.
   */
  settled?: ReadonlySet<string> | null;
}

/**
 * The ids whose recorded incarnation binds ({@linkcode HelloContext.settled}): members of the
 * committed configuration and voters of the latest; null when `latest` is empty (no
 * configuration yet).
 */
export function settledMembers(latest: ConfState, committed: ConfState): Set<string> | null {
  if (latest.voters.length === 0 && latest.learners.length === 0) return null;
  return new Set([...latest.voters, ...committed.voters, ...committed.learners]);
}

/**
 * The verdict on a hello: `accept` (the sender's incarnation is already recorded), `record`
 * (accept once the incarnation is durably recorded), or `refuse` with the reason.
 */
export type HelloJudgement =
  | { verdict: "accept" }
  | { verdict: "record" }
  | {
    verdict: "refuse";
    reason: "group" | "self" | "cluster" | "member" | "incarnation";
  };

/**
 * Decides a hello; pure, so the simulator can apply the same rules. In order: another group,
 * this node's own id, another cluster (when both sides know theirs), a sender outside the
 * configuration (skipped while this node has none), a recorded incarnation that differs (unless
 * the sender is not settled: see {@linkcode HelloContext.settled}).
 *
 * @example
 * ```ts
 * import { judgeHello } from "./peer_identity.ts";
 * const j = judgeHello({ from: "b:1", incarnation: "00000000000000bb", clusterId: "" }, "g", {
 *   self: "a:1", group: "g", clusterId: "", members: new Set(["a:1", "b:1"]), recorded: undefined,
 * });
 * console.log(j); // { verdict: "record" }
 * ```
 */
export function judgeHello(hello: Hello, group: string, ctx: HelloContext): HelloJudgement {
  if (group !== ctx.group) return { verdict: "refuse", reason: "group" };
  if (hello.from === ctx.self) return { verdict: "refuse", reason: "self" };
  if (hello.clusterId !== "" && ctx.clusterId !== "" && hello.clusterId !== ctx.clusterId) {
    return { verdict: "refuse", reason: "cluster" };
  }
  if (ctx.members !== null && !ctx.members.has(hello.from)) {
    return { verdict: "refuse", reason: "member" };
  }
  if (ctx.recorded === undefined) return { verdict: "record" };
  if (ctx.recorded !== hello.incarnation) {
    if (ctx.settled !== undefined && ctx.settled !== null && !ctx.settled.has(hello.from)) {
      return { verdict: "record" };
    }
    return { verdict: "refuse", reason: "incarnation" };
  }
  return { verdict: "accept" };
}

/**
 * The commands that replace node `id` whose data dir `dir` was lost, on one line; `members` are
 * the group's nodes (`id` among them or not).
 */
export function replacementCommands(id: string, members: readonly string[], dir = "DIR"): string {
  const others = [...new Set(members)].filter((p) => p !== id).join(",") || "HOST:PORT";
  return `counter peers remove ${id} --peers ${others}, then wipe ${dir}, then ` +
    `counter serve --data ${dir} --id ${id} --join ${others}, then ` +
    `counter peers add ${id} --peers ${others}`;
}

/** A warning about one peer is repeated at most this often. */
export const PEER_WARN_INTERVAL_MS = 60_000;

/** Options for {@linkcode PeerGate}. */
export interface PeerGateOptions {
  /** This node's id. */
  self: string;
  /** This node's group. */
  group: string;
  /** Where incarnations and the cluster id are kept. */
  store: IdentityStore;
  /** The members of the current configuration, or null when this node has none yet. */
  members: () => ReadonlySet<string> | null;
  /** See {@linkcode HelloContext.settled}; when absent, every record binds. */
  settled?: () => ReadonlySet<string> | null;
  /** Where refusals are reported. */
  logger: Logger;
  /** Clock for rate-limiting warnings. Default `Date.now`. */
  now?: () => number;
}

/**
 * The node's side of the HELLO handshake: judges each hello, records a new peer's incarnation
 * durably before accepting it, and warns (rate-limited) about refused peers.
 */
export class PeerGate {
  readonly #options: PeerGateOptions;
  readonly #now: () => number;
  /** Saves under way, per peer: a second connection from it waits for the same save. */
  #saving = new Map<string, { incarnation: string; done: Promise<boolean> }>();
  /** When each kind of warning was last given for a peer. */
  #warnedAtMs = new Map<string, number>();
  /** The cluster id each accepted peer announced, for a node that has none yet. */
  #peerClusterIds = new Map<string, string>();

  /** Creates the gate; see {@linkcode PeerGateOptions}. */
  constructor(options: PeerGateOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Judges `hello` for `group`: true or false at once, or a promise that resolves to true once
   * the sender's incarnation is durably recorded.
   */
  onHello(group: string, hello: Hello): boolean | Promise<boolean> {
    const { store, logger } = this.#options;
    const judgement = judgeHello(hello, group, {
      self: this.#options.self,
      group: this.#options.group,
      clusterId: store.clusterId(),
      members: this.#options.members(),
      recorded: store.peerIncarnation(hello.from),
      settled: this.#options.settled?.(),
    });
    const peer = hello.from;
    switch (judgement.verdict) {
      case "accept":
        this.#noteCluster(hello);
        return true;
      case "record":
        return this.#record(hello);
      case "refuse":
        break;
    }
    switch (judgement.reason) {
      case "group":
        // Once per peer and group: a node started with another --group (or pointed at the
        // wrong cluster) is a configuration mistake an operator must see, but not once a retry.
        if (!this.#warnedAtMs.has(`group ${peer} ${group}`) && this.#warnedAtMs.size < 4096) {
          this.#warnedAtMs.set(`group ${peer} ${group}`, this.#now());
          logger.warn("refusing raft traffic for another group; check --group and --conf", {
            peer,
            group,
            ours: this.#options.group,
          });
        }
        break;
      case "self":
        logger.debug("refused a peer connection", { peer, group, reason: judgement.reason });
        break;
      case "cluster":
        // Once per peer: a misconfigured address does not heal by itself.
        if (!this.#warnedAtMs.has(`cluster ${peer}`)) {
          this.#warnedAtMs.set(`cluster ${peer}`, this.#now());
          logger.warn(
            `peer ${peer} belongs to cluster ${hello.clusterId}, not ours (${store.clusterId()})`,
          );
        }
        break;
      case "member":
        if (this.#due(`member ${peer}`)) {
          logger.info("refused a peer that is not a member of the configuration", { peer });
        }
        break;
      case "incarnation":
        if (this.#due(`incarnation ${peer}`)) {
          const members = [...(this.#options.members() ?? [])];
          logger.warn(
            `${peer} came back with a different data dir (incarnation ${hello.incarnation}, ` +
              `was ${store.peerIncarnation(peer)}): its data was lost; replace it: ` +
              replacementCommands(peer, [this.#options.self, ...members]),
          );
        }
        break;
    }
    return false;
  }

  /**
   * The cluster id leader `peer` announced in its accepted hello, for a node that has none yet
   * and adopts its leader's when it first takes entries from it.
   */
  clusterIdOf(peer: string): string | undefined {
    return this.#peerClusterIds.get(peer);
  }

  #noteCluster(hello: Hello): void {
    if (hello.clusterId !== "") this.#peerClusterIds.set(hello.from, hello.clusterId);
  }

  #record(hello: Hello): boolean | Promise<boolean> {
    const peer = hello.from;
    const inFlight = this.#saving.get(peer);
    if (inFlight !== undefined) {
      if (inFlight.incarnation === hello.incarnation) return inFlight.done;
      // Two data dirs under one id at once: believe neither until one is on record.
      return false;
    }
    const done = this.#options.store.savePeerIncarnation(peer, hello.incarnation).then(() => {
      this.#options.logger.info("recorded a peer's data dir incarnation", {
        peer,
        incarnation: hello.incarnation,
      });
      this.#noteCluster(hello);
      return true;
    }).finally(() => this.#saving.delete(peer));
    this.#saving.set(peer, { incarnation: hello.incarnation, done });
    return done;
  }

  #due(key: string): boolean {
    const now = this.#now();
    const last = this.#warnedAtMs.get(key);
    if (last !== undefined && now - last < PEER_WARN_INTERVAL_MS) return false;
    this.#warnedAtMs.set(key, now);
    return true;
  }
}
