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
 * See docs/DESIGN.md, "Many groups in one process".
 *
 * @module
 */

import { resolve } from "node:path";
import { CounterNode, identityReply, type NodeOptions, type NodeTransport } from "./node.ts";
import { DirLock } from "../storage/dir_lock.ts";
import type { DataDir } from "../storage/mod.ts";
import { groupDataDir, migrateSingleGroupLayout } from "../storage/layout.ts";
import {
  type ClientRequest,
  type ClientResponse,
  parseAddress,
  PeerSender,
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
  readonly #slots: Map<string, GroupSlot>;
  readonly #unknownWarned = new Set<string>();
  #stopping = false;
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
    const peers = new PeerSender({
      logger: log,
      tls: security.tls?.client,
      peerAuth,
      hello: (group) => slots.get(group)?.node?.hello() ?? null,
    });
    const host = new NodeHost({ ...options, groups }, root, server, peers, lock, slots);
    // Every configured group answers "node is starting" (not UNKNOWN_GROUP) from now on.
    for (const group of groups) slots.set(group, { node: null, storage: null });
    server.setHandler(host.#handler());
    try {
      await migrateSingleGroupLayout(root, groups[0], log);
      await Promise.all(groups.map((group) => host.#openGroup(group)));
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
    await this.#server.close();
    const nodes = [...this.#slots.values()].map((slot) => slot.node).filter((n) => n !== null);
    await Promise.all(nodes.map((node) => node.stopGroup().catch(() => {})));
    await this.#peers.close();
    this.#lock.release();
  }

  /** Opens (and bootstraps, when new) `group`'s node; its traffic is routed to it once running. */
  async #openGroup(group: string): Promise<CounterNode> {
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
    };
    let node: CounterNode;
    try {
      node = await CounterNode.open({
        ...this.#options,
        group,
        dataDir: groupDataDir(this.#root, group),
        logger: this.#options.groups.length > 1 ? this.#log.with({ group }) : this.#log,
      }, transport);
    } catch (err) {
      if (this.#slots.get(group) === opened) this.#slots.delete(group);
      throw err;
    }
    opened.node = node;
    opened.storage = null;
    node.closed.catch((err) => this.#fatal(group, err));
    return node;
  }

  /** Closes the connection to `peer` unless some group still has it as a member. */
  #forgetPeer(peer: string): void {
    for (const slot of this.#slots.values()) {
      if (slot.node?.members().has(peer)) return;
    }
    this.#peers.removePeer(peer).catch(() => {});
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
      onRaftMessage: (group, msg) => this.#slots.get(group)?.node?.onRaftMessage(msg),
      onSnapshotChunk: (group, chunk) => this.#slots.get(group)?.node?.onSnapshotChunk(chunk),
      onSnapshotAck: (group, ack) => this.#slots.get(group)?.node?.onSnapshotAck(ack),
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
