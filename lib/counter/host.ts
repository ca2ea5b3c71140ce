/**
 * One process hosting several Raft groups on one port (`counter serve --groups a,b,c`).
 *
 * The host owns what the groups share: the listener, the outbound peer connections (one per
 * peer for every group), the peer and client authenticators, and the data root's lock. Each group
 * is a {@linkcode CounterNode} with its own data dir (`DATA/groups/NAME/`), log, meta, snapshot,
 * Raft core, leader and membership. The host routes every body by its `group`:
 *
 * - a request for a group the host does not serve is answered `UNKNOWN_GROUP`;
 * - a peer's HELLO for such a group is refused (a WARN once per peer and group), so its Raft
 *   bodies never reach anyone: the connection is closed when it carries no other accepted group
 *   (as before there were several groups), and kept, dropping that group's bodies, when it does
 *   (`TransportServer`).
 *
 * The host also drives every group's time from one {@linkcode GroupTicker} (no timer per group),
 * and provides the node liveness quiet groups need (see docs/DESIGN.md, "Quiescent groups"): it
 * tracks when it last heard from each peer node over all groups ({@linkcode NodeLiveness}), sends
 * each peer a node-level heartbeat (PEER_HEARTBEAT) every heartbeat interval in which nothing
 * else went to it, wakes every quiet group whose leader's node it has not heard from for an
 * election timeout, and wakes every quiet group it leads that has as member a peer whose node
 * came back (heard again after that, or a new connection to it).
 *
 * See docs/DESIGN.md, "Many groups in one process".
 *
 * @module
 */

import { resolve } from "node:path";
import {
  CounterNode,
  identityReply,
  type NodeOptions,
  type NodeTransport,
  QUIET_CHECK_MS,
  SLOW_TICK_MS,
  TICK_MS,
} from "./node.ts";
import { GroupTicker } from "./group_ticker.ts";
import { NodeLiveness } from "./node_liveness.ts";
import { Role } from "../raft/mod.ts";
import { turnNowMs } from "../transport/turn_clock.ts";
import { DirLock } from "../storage/dir_lock.ts";
import { DataDir, HostJournal } from "../storage/mod.ts";
import {
  flushGroupSet,
  groupDataDir,
  type GroupSet,
  migrateSingleGroupLayout,
  moveGroupAside,
  readGroupSet,
  saveGroupSet,
} from "../storage/layout.ts";
import {
  type ClientRequest,
  type ClientResponse,
  encodePeerHeartbeat,
  parseAddress,
  PeerSender,
  type PeerStats,
  TransportServer,
} from "../transport/mod.ts";
import type { Hello } from "../transport/codec.ts";
import type { TransportHandler } from "../transport/server.ts";
import { PeerAuthenticator } from "../security/peer_auth.ts";
import { ClientAuthenticator } from "../security/client_auth.ts";
import type { Logger } from "../logging/logger.ts";
import type { Health } from "./metrics.ts";

/** What a group name may hold: letters, digits, `.`, `_`, `-`; 1 to 64 of them. */
export const GROUP_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Why `name` cannot name a group (it is also a directory name under `DATA/groups/`), or null
 * when it can.
 */
export function groupNameProblem(name: string): string | null {
  if (!GROUP_NAME_PATTERN.test(name)) {
    return `group name ${JSON.stringify(name)} must be 1 to 64 letters, digits, '.', '_' or '-'`;
  }
  if (name === "." || name === "..") return `group name ${JSON.stringify(name)} is reserved`;
  return null;
}

/** Settings of a host: a node's settings, for each of `groups`. */
export interface HostOptions extends Omit<NodeOptions, "group" | "groups"> {
  /** The groups to serve (at least one); `dataDir` is the data root holding them all. */
  groups: readonly string[];
}

/** One hosted group: its node once running, its data dir while it starts. */
interface GroupSlot {
  node: CounterNode | null;
  storage: DataDir | null;
}

/** Bound on the (peer, group) pairs warned about for an unknown group; the network may be hostile. */
const UNKNOWN_GROUP_WARNINGS_MAX = 1024;

/** A running host; see the module doc. */
export class NodeHost {
  readonly #options: HostOptions;
  readonly #log: Logger;
  readonly #root: string;
  readonly #server: TransportServer;
  readonly #peers: PeerSender;
  readonly #lock: DirLock;
  /** The data root's journal: every group's appends, one flush per turn; set once replayed. */
  #journal: HostJournal | null = null;
  readonly #slots: Map<string, GroupSlot>;
  readonly #unknownWarned = new Set<string>();
  /** Groups removed at run time: `--groups` does not bring them back at a restart. */
  #removed = new Set<string>();
  /** Group set changes run one at a time (each rewrites `groups.json`). */
  #changing: Promise<unknown> = Promise.resolve();
  #stopping = false;
  /** Drives every group's ticks; started once the groups are open. */
  readonly #ticker: GroupTicker<CounterNode>;
  /** When each peer node was last heard from (over every group). */
  readonly #liveness: NodeLiveness;
  /** Node liveness (heartbeats, waking quiet groups) runs this often, and next at this time. */
  readonly #livenessMs: number;
  #livenessAtMs = 0;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: Error) => void;
  /** Settles when the host has stopped (rejects if a group stopped on a fatal error). */
  readonly closed: Promise<void>;

  private constructor(
    options: HostOptions,
    root: string,
    server: TransportServer,
    peers: PeerSender,
    lock: DirLock,
    slots: Map<string, GroupSlot>,
  ) {
    this.#slots = slots;
    this.#options = options;
    this.#log = options.logger;
    this.#root = root;
    this.#server = server;
    this.#peers = peers;
    this.#lock = lock;
    this.#liveness = new NodeLiveness(options.electionTimeoutMs);
    this.#livenessMs = Math.max(TICK_MS, options.heartbeatIntervalMs);
    this.#ticker = new GroupTicker<CounterNode>({
      tickMs: TICK_MS,
      // Quiet groups check every QUIET_CHECK_MS; the node heartbeats go every interval.
      idleTickMs: Math.min(QUIET_CHECK_MS, this.#livenessMs),
      slowMs: SLOW_TICK_MS,
      onTick: (nowMs) => {
        if (nowMs < this.#livenessAtMs) return;
        this.#livenessAtMs = Math.max(this.#livenessAtMs + this.#livenessMs, nowMs);
        this.#livenessRound(nowMs);
      },
    });
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.closed.catch(() => {});
  }

  /**
   * Binds the port, locks the data root (`DATA/LOCK`), moves a single-group data dir into
   * `DATA/groups/NAME/`, then starts every group (each runs its own bootstrap check when new).
   * The port comes first: a busy or foreign address fails with `ListenError` before anything is
   * written.
   */
  static async start(options: HostOptions): Promise<NodeHost> {
    const groups = [...new Set(options.groups)];
    if (groups.length === 0) throw new Error("a host needs at least one group");
    for (const group of groups) {
      const problem = groupNameProblem(group);
      if (problem !== null) throw new Error(problem);
    }
    const log = options.logger;
    const security = options.security ?? {};
    // The slots exist before the host does: the authenticators and the sender look them up.
    const slots = new Map<string, GroupSlot>();
    const hosts = (group: string) => slots.has(group);
    // One cluster token for every group: a connection carries all of them, so the handshake
    // accepts any group name in its transcript (it proves the token; the hellos that follow say
    // which groups the connection carries). Dialing binds the first group's name.
    const peerAuth = security.clusterToken === undefined
      ? undefined
      : await PeerAuthenticator.create(security.clusterToken, groups[0], options.id, () => true);
    const clientAuth = await ClientAuthenticator.create(hosts, {
      client: security.clientToken,
      admin: security.adminToken,
    });
    // Bound before the data root is touched; answers "node is starting" until the handler is set.
    const server = new TransportServer(parseAddress(options.listen ?? options.id), null, {
      logger: log,
      requestsInFlightMax: 65536,
      idleTimeoutMs: options.idleTimeoutMs,
      frameTimeoutMs: options.frameTimeoutMs,
      tls: security.tls?.server,
      peerAuth,
      clientAuth,
    });
    const root = resolve(options.dataDir);
    let lock: DirLock;
    try {
      await Deno.mkdir(root, { recursive: true });
      lock = DirLock.acquire(root);
    } catch (err) {
      await server.close();
      throw err;
    }
    let host: NodeHost | null = null;
    const peers = new PeerSender({
      logger: log,
      tls: security.tls?.client,
      peerAuth,
      hello: (group) => slots.get(group)?.node?.hello() ?? null,
      onPeerUp: (peer) => {
        if (host !== null) host.#peerCameBack(peer);
      },
    });
    host = new NodeHost({ ...options, groups }, root, server, peers, lock, slots);
    // Every group given answers "node is starting" (not UNKNOWN_GROUP) from now on.
    for (const group of groups) slots.set(group, { node: null, storage: null });
    server.setHandler(host.#handler());
    try {
      const migrated = await migrateSingleGroupLayout(root, groups[0], log);
      const hosted = await host.#groupSet(groups, migrated);
      for (const group of hosted) {
        if (!slots.has(group)) slots.set(group, { node: null, storage: null });
      }
      for (const group of [...slots.keys()]) if (!hosted.includes(group)) slots.delete(group);
      host.#journal = await host.#replayJournal(hosted);
      // Each group ticks from the moment it is open, as the others still open.
      host.#ticker.start();
      await Promise.all(hosted.map((group) => host.#openGroup(group)));
    } catch (err) {
      await host.#shutdown();
      throw err;
    }
    return host;
  }

  /** The groups served now, sorted. */
  groups(): string[] {
    return [...this.#slots.keys()].sort();
  }

  /** The running node of `group`, if the host serves it and it has started. */
  node(group: string): CounterNode | undefined {
    return this.#slots.get(group)?.node ?? undefined;
  }

  /** The address the host listens on, `HOST:PORT`. */
  get address(): string {
    return this.#server.address;
  }

  /** Inbound peer connections open now (one per peer, for every group). */
  get peerConnectionCount(): number {
    return this.#server.peerConnectionCount;
  }

  /** Counters of the outbound peer connections (bodies sent, node-level heartbeats, drops). */
  peerStats(): PeerStats[] {
    return this.#peers.stats();
  }

  /** This host's node id. */
  get id(): string {
    return this.#options.id;
  }

  /** The Prometheus text of every group's metrics, merged family by family. */
  metricsText(): string {
    return mergeExpositions(this.#nodes().map((node) => node.metricsText()));
  }

  /** Healthy when every group is; otherwise the first unhealthy group's reason. */
  health(): Health {
    const nodes = this.#nodes();
    if (nodes.length === 1) return nodes[0].health();
    for (const node of nodes) {
      const h = node.health();
      if (!h.healthy) return { ...h, reason: `group ${node.group}: ${h.reason}` };
    }
    return { healthy: true, reason: `${nodes.length} groups healthy` };
  }

  /** The first group's status, and with several groups each one's under `groups`. */
  status(): Record<string, unknown> {
    const nodes = this.#nodes();
    if (nodes.length === 1) return nodes[0].status();
    const groups: Record<string, unknown> = {};
    for (const node of nodes) groups[node.group] = node.status();
    return { ...(nodes[0]?.status() ?? {}), groups };
  }

  /** Stops every group, closes the port and the peer connections, unlocks the data root. */
  async stop(): Promise<void> {
    if (this.#stopping) return this.closed;
    this.#stopping = true;
    try {
      await this.#shutdown();
      this.#log.info("host stopped");
      this.#resolveClosed();
    } catch (err) {
      this.#rejectClosed(err as Error);
    }
    return this.closed;
  }

  #nodes(): CounterNode[] {
    const nodes: CounterNode[] = [];
    for (const name of this.groups()) {
      const node = this.#slots.get(name)?.node;
      if (node) nodes.push(node);
    }
    return nodes;
  }

  async #shutdown(): Promise<void> {
    this.#stopping = true;
    this.#ticker.stop();
    await this.#server.close();
    const nodes = [...this.#slots.values()].map((slot) => slot.node).filter((n) => n !== null);
    await Promise.all(nodes.map((node) => node.stopGroup().catch(() => {})));
    await this.#peers.close();
    await this.#journal?.close().catch((error) => {
      this.#log.warn("could not close the host journal", { error: String(error) });
    });
    this.#lock.release();
  }

  /**
   * Opens the data root's journal and replays what it holds onto each hosted group's log, one
   * group at a time (each flushed), then starts a new journal file: the groups open after this,
   * so none appends before every record is safe in its log. Records of groups not hosted
   * (removed) are dropped with the old files.
   */
  async #replayJournal(hosted: readonly string[]): Promise<HostJournal> {
    const journal = await HostJournal.open(this.#root, { logger: this.#log });
    const hostedSet = new Set(hosted);
    for (const group of journal.recoveredGroups()) {
      if (!hostedSet.has(group)) {
        this.#log.info("dropping journal records of a group not hosted", { group });
        continue;
      }
      const storage = await DataDir.open(groupDataDir(this.#root, group), {
        nodeId: this.#options.id,
        group,
        logger: this.#log.with({ group }),
        segmentBytesMax: this.#options.logSegmentBytes,
        journalRecords: (incarnation) => journal.recoveredRecords(group, incarnation),
      });
      await storage.close();
    }
    await journal.finishRecovery();
    return journal;
  }

  /**
   * The groups to host: those `groups.json` records, plus those of `given` (`--groups`) not
   * removed at run time, plus a group just migrated from the single-group layout; recorded
   * durably before any is opened, so that a restart finds them all.
   */
  async #groupSet(given: readonly string[], migrated: string | null): Promise<string[]> {
    const recorded = await readGroupSet(this.#root, groupNameProblem);
    if (recorded !== null) await flushGroupSet(this.#root);
    const set: GroupSet = recorded ?? { groups: [], removed: [] };
    this.#removed = new Set(set.removed);
    const hosted = new Set(set.groups);
    for (const group of given) {
      if (this.#removed.has(group)) {
        this.#log.warn(
          `--groups names ${group}, which was removed from this node ('counter groups remove'); ` +
            `not serving it (bring it back with 'counter groups create')`,
        );
      } else hosted.add(group);
    }
    if (migrated !== null) hosted.add(migrated);
    const groups = [...hosted].sort();
    if (recorded === null || groups.join(",") !== [...recorded.groups].sort().join(",")) {
      await saveGroupSet(this.#root, { groups, removed: [...this.#removed] });
    }
    return groups;
  }

  /** Durably records the hosted groups (the slots) and the removed ones. */
  async #saveGroupSet(): Promise<void> {
    await saveGroupSet(this.#root, { groups: this.groups(), removed: [...this.#removed] });
  }

  /** Runs `change` after the group set changes before it. */
  #serially<T>(change: () => Promise<T>): Promise<T> {
    const run = this.#changing.then(change, change);
    this.#changing = run.catch(() => {});
    return run;
  }

  /**
   * `create_group` (args `name`, `voters`): starts a new group with `voters` as its initial
   * members, this node among them. Recorded in `groups.json` first; the group then runs the
   * bootstrap check like any new group, so every voter must be asked (`counter groups create`
   * asks them all). Already hosted: answered at once, `created: false`.
   */
  #createGroup(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const name = req.args?.name;
    const voters = req.args?.voters;
    if (typeof name !== "string" || groupNameProblem(name) !== null) {
      const why = typeof name === "string" ? groupNameProblem(name) : "args.name is missing";
      reply({ ok: false, code: "BAD_REQUEST", error: `create_group: ${why}` });
      return;
    }
    if (
      !Array.isArray(voters) || voters.length === 0 ||
      !voters.every((v) => typeof v === "string" && v !== "")
    ) {
      reply({
        ok: false,
        code: "BAD_REQUEST",
        error: "create_group needs args.voters (HOST:PORT list)",
      });
      return;
    }
    const members = [...new Set(voters as string[])].sort();
    for (const member of members) {
      try {
        parseAddress(member);
      } catch (err) {
        reply({ ok: false, code: "BAD_REQUEST", error: `bad voter: ${(err as Error).message}` });
        return;
      }
    }
    if (!members.includes(this.#options.id)) {
      reply({
        ok: false,
        code: "BAD_REQUEST",
        error: `this node (${this.#options.id}) is not among the voters ${members.join(",")}`,
      });
      return;
    }
    this.#serially(async () => {
      if (this.#slots.has(name)) return { created: false };
      // A dir left by a removal cut short is moved aside: the new group starts empty.
      const aside = await moveGroupAside(this.#root, name);
      if (aside !== null) {
        this.#log.warn("moved an old dir of the group aside", { group: name, to: aside });
      }
      this.#removed.delete(name);
      this.#slots.set(name, { node: null, storage: null });
      await this.#saveGroupSet();
      this.#log.info("creating group", { group: name, voters: members.join(",") });
      try {
        await this.#openGroup(name, members);
      } catch (err) {
        this.#slots.delete(name);
        await this.#saveGroupSet();
        throw err;
      }
      return { created: true };
    }).then(
      ({ created }) => reply({ ok: true, data: { name, created, voters: members } }),
      (err) =>
        reply({
          ok: false,
          code: this.#stopping ? "SHUTTING_DOWN" : "REFUSED",
          error: `cannot create group ${name}: ${err instanceof Error ? err.message : err}`,
        }),
    );
  }

  /**
   * `remove_group` (args `name`): stops the group here, records its removal in `groups.json`,
   * then moves its dir aside to `DATA/removed/NAME.TIMESTAMP`. Not hosted: `removed: false`.
   * The last group is refused (stop the node instead).
   */
  #removeGroup(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const name = req.args?.name;
    if (typeof name !== "string" || groupNameProblem(name) !== null) {
      reply({ ok: false, code: "BAD_REQUEST", error: "remove_group needs args.name" });
      return;
    }
    this.#serially(async () => {
      const slot = this.#slots.get(name);
      if (slot === undefined) return { removed: false, movedTo: "" };
      if (this.#slots.size === 1) {
        throw new Error(`${name} is the last group this node serves; stop the node instead`);
      }
      if (slot.node === null) throw new Error(`${name} is still starting; try again`);
      // Durable first: a crash from here on leaves the group removed (its dir, if not yet moved,
      // is moved aside by a later create).
      this.#slots.delete(name);
      this.#removed.add(name);
      await this.#saveGroupSet();
      this.#ticker.delete(slot.node);
      await slot.node.stopGroup().catch(() => {});
      const movedTo = await moveGroupAside(this.#root, name) ?? "";
      this.#log.info("removed group", { group: name, movedTo });
      return { removed: true, movedTo };
    }).then(
      ({ removed, movedTo }) => reply({ ok: true, data: { name, removed, movedTo } }),
      (err) =>
        reply({
          ok: false,
          code: "REFUSED",
          error: `cannot remove group ${name}: ${err instanceof Error ? err.message : err}`,
        }),
    );
  }

  /**
   * `groups`: each hosted group with this node's role, the leader it knows, the term, and
   * whether it is quiet here.
   */
  #listGroups(reply: (resp: ClientResponse) => void): void {
    const groups = this.groups().map((name) => {
      const status = this.#slots.get(name)?.node?.status();
      return {
        name,
        role: String(status?.role ?? "starting"),
        leader: String(status?.leader ?? ""),
        term: Number(status?.term ?? 0),
        quiet: this.#slots.get(name)?.node?.quiesced ?? false,
      };
    });
    reply({ ok: true, data: { node: this.#options.id, groups } });
  }

  /** Opens (and bootstraps, when new) `group`'s node; its traffic is routed to it once running. */
  async #openGroup(group: string, voters?: readonly string[]): Promise<CounterNode> {
    let slot = this.#slots.get(group);
    if (slot === undefined) {
      slot = { node: null, storage: null };
      this.#slots.set(group, slot);
    }
    const opened = slot;
    const server = this.#server;
    const transport: NodeTransport = {
      peers: this.#peers,
      address: server.address,
      connectionCount: () => server.connectionCount,
      connectionsAccepted: () => server.connectionsAccepted,
      forgetPeer: (peer) => this.#forgetPeer(peer),
      starting: (storage) => opened.storage = storage,
      busy: () => this.#ticker.hurry(),
    };
    let node: CounterNode;
    try {
      node = await CounterNode.open({
        ...this.#options,
        ...(voters !== undefined ? { conf: [...voters], join: undefined } : {}),
        group,
        dataDir: groupDataDir(this.#root, group),
        dataRoot: this.#root,
        // One group flushes its own log: with nothing to share the flush with, the journal's
        // second write and extra turn only cost (measured: 9% more CPU per increment).
        journal: this.#slots.size > 1 ? this.#journal ?? undefined : undefined,
        logger: this.#options.groups.length > 1 ? this.#log.with({ group }) : this.#log,
      }, transport);
    } catch (err) {
      if (this.#slots.get(group) === opened) this.#slots.delete(group);
      throw err;
    }
    opened.node = node;
    opened.storage = null;
    this.#ticker.add(node);
    node.closed.then(() => this.#ticker.delete(node), (err) => {
      this.#ticker.delete(node);
      this.#fatal(group, err);
    });
    return node;
  }

  /** Closes the connection to `peer` unless some group still has it as a member. */
  #forgetPeer(peer: string): void {
    for (const slot of this.#slots.values()) {
      if (slot.node?.members().has(peer)) return;
    }
    this.#liveness.forget(peer);
    this.#peers.removePeer(peer).catch(() => {});
  }

  /**
   * Node liveness, every heartbeat interval: a node-level heartbeat to each peer that was sent
   * nothing since the last round, then every quiet group whose leader's node has not been heard
   * from for an election timeout is woken (its follower restarts its election timer).
   */
  #livenessRound(nowMs: number): void {
    if (this.#stopping || this.#options.quiesce === false) return;
    const from = this.#options.id;
    this.#peers.beatIdlePeers((to, group) => encodePeerHeartbeat(group, { from, to }));
    this.#liveness.sweep(nowMs);
    const dead = this.#liveness.dead;
    if (dead.size === 0) return;
    for (const slot of this.#slots.values()) {
      const node = slot.node;
      if (node !== null && node.quiesced && dead.has(node.leader)) node.unquiesce();
    }
  }

  /** Something arrived from `peer`'s node: it is alive; if it was thought dead, it came back. */
  #heard(peer: string): void {
    if (this.#liveness.heard(peer, turnNowMs())) this.#peerCameBack(peer);
  }

  /**
   * `peer`'s node is back (heard from again after it was thought dead, or a connection to it came
   * up): every quiet group led here that has it as a member wakes, so that its heartbeats find
   * what the peer lacks (a restarted follower would otherwise time out and campaign).
   */
  #peerCameBack(peer: string): void {
    if (this.#stopping) return;
    for (const slot of this.#slots.values()) {
      const node = slot.node;
      if (node !== null && node.quiesced && node.role === Role.Leader && node.hasMember(peer)) {
        node.unquiesce();
      }
    }
  }

  /**
   * A group stopped on a fatal error (a disk failure, a damaged log): the whole process stops,
   * as a single-group node does, so that the operator sees it and no group runs on a bad disk.
   */
  #fatal(group: string, err: unknown): void {
    if (this.#stopping) return;
    this.#log.error("a group stopped on a fatal error; stopping the host", {
      group,
      error: err as Error,
    });
    this.#stopping = true;
    this.#shutdown().catch(() => {}).finally(() => this.#rejectClosed(err as Error));
  }

  #warnUnknownGroup(peer: string, group: string): void {
    const key = `${peer}\u0000${group}`;
    if (this.#unknownWarned.has(key) || this.#unknownWarned.size >= UNKNOWN_GROUP_WARNINGS_MAX) {
      return;
    }
    this.#unknownWarned.add(key);
    this.#log.warn(
      "refusing raft traffic for another group, which this node does not serve; check " +
        "--groups and --conf",
      { peer, group, ours: this.groups().join(",") },
    );
  }

  #unknownGroup(group: string): ClientResponse {
    const served = this.groups();
    const which = served.length === 1
      ? `group "${served[0]}"`
      : `groups ${served.map((g) => `"${g}"`).join(", ")}`;
    return {
      ok: false,
      code: "UNKNOWN_GROUP",
      error: `unknown group "${group}": this node serves ${which}`,
    };
  }

  #handler(): TransportHandler {
    return {
      onHello: (group: string, hello: Hello) => {
        const slot = this.#slots.get(group);
        if (slot === undefined) {
          this.#warnUnknownGroup(hello.from, group);
          return false;
        }
        return slot.node === null ? false : slot.node.onHello(hello);
      },
      onRaftMessage: (group, msg) => {
        this.#heard(msg.from);
        this.#slots.get(group)?.node?.onRaftMessage(msg);
      },
      onSnapshotChunk: (group, chunk) => {
        this.#heard(chunk.from);
        this.#slots.get(group)?.node?.onSnapshotChunk(chunk);
      },
      onSnapshotAck: (group, ack) => {
        this.#heard(ack.from);
        this.#slots.get(group)?.node?.onSnapshotAck(ack);
      },
      onPeerHeartbeat: (_group, heartbeat) => {
        // A heartbeat meant for another node (one that had this address before) says nothing.
        if (heartbeat.to === this.#options.id) this.#heard(heartbeat.from);
      },
      onRequest: (group, req, reply) => this.#onRequest(group, req, reply),
      onReplied: (op, resp, elapsedMs, group) => {
        if (group !== undefined) this.#slots.get(group)?.node?.onReplied(op, resp, elapsedMs);
      },
    };
  }

  #onRequest(group: string, req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const slot = this.#slots.get(group);
    if (this.#stopping) {
      reply({ ok: false, code: "SHUTTING_DOWN", error: "the node is shutting down" });
      return;
    }
    // The host's own ops: about the set of groups, whatever group the request names.
    switch (req.op) {
      case "groups":
        return this.#listGroups(reply);
      case "create_group":
        return this.#createGroup(req, reply);
      case "remove_group":
        return this.#removeGroup(req, reply);
    }
    if (slot === undefined) {
      reply(this.#unknownGroup(group));
      return;
    }
    if (slot.node !== null) {
      slot.node.onRequest(req, reply);
      return;
    }
    if (req.op === "identity" && slot.storage !== null) {
      reply(identityReply(req, slot.storage, null));
      return;
    }
    reply({ ok: false, code: "SHUTTING_DOWN", error: "node is starting" });
  }
}

/**
 * Merges Prometheus text expositions into one: each metric family once (its `# HELP` and
 * `# TYPE` from the first text that has it, then every text's samples of it), and a sample
 * whose name and labels an earlier text already gave is dropped.
 */
export function mergeExpositions(texts: readonly string[]): string {
  if (texts.length === 1) return texts[0];
  const families = new Map<string, { header: string[]; samples: string[] }>();
  const seen = new Set<string>();
  for (const text of texts) {
    let current: { header: string[]; samples: string[] } | null = null;
    let currentName = "";
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const header = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (header !== null) {
        const name = header[2];
        if (name !== currentName || current === null) {
          currentName = name;
          let family = families.get(name);
          const fresh = family === undefined;
          if (family === undefined) {
            family = { header: [], samples: [] };
            families.set(name, family);
          }
          current = family;
          if (fresh) current.header.push(line);
        } else if (current.header.length < 2 && !current.header.includes(line)) {
          current.header.push(line);
        }
        continue;
      }
      if (line.startsWith("#")) continue;
      const key = line.slice(0, line.lastIndexOf(" "));
      if (seen.has(key)) continue;
      seen.add(key);
      if (current === null) {
        currentName = "";
        current = { header: [], samples: [] };
        families.set(`\u0000${families.size}`, current);
      }
      current.samples.push(line);
    }
  }
  const out: string[] = [];
  for (const family of families.values()) out.push(...family.header, ...family.samples);
  return out.join("\n") + "\n";
}

/** Starts a host serving `options.groups`, else `options.group` alone; see {@linkcode NodeHost.start}. */
export function startHost(options: NodeOptions): Promise<NodeHost> {
  return NodeHost.start({ ...options, groups: options.groups ?? [options.group] });
}
