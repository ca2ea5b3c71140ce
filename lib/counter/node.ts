/**
 * One counter node: the shell around the pure Raft core. It owns the data dir, the TCP port,
 * the clock and the counter state machine, and runs the Ready loop:
 *
 * 1. take a Ready from the core;
 * 2. send the leader's appends at once (they do not depend on this node's disk);
 * 3. write the entries and hard state with one append and one fsync (group commit: everything
 *    that arrived while the previous fsync ran goes into this one);
 * 4. send the remaining messages (votes and acks promise what was just made durable);
 * 5. apply committed entries, answer the clients whose increments they were, serve reads;
 * 6. advance the core.
 *
 * @module
 */

import {
  bootstrapState,
  type ConfChange,
  decodeConfState,
  type Entry,
  EntryType,
  type Message,
  MessageType,
  Raft,
  type ReadState,
  type Ready,
  Role,
} from "../raft/mod.ts";
import { DataDir, type LogJournal } from "../storage/mod.ts";
import { encodeSnapshot } from "../storage/snapshot_store.ts";
import {
  type ClientRequest,
  type ClientResponse,
  encodeHello,
  encodeSnapshotAck,
  encodeSnapshotChunk,
  type Hello,
  IDENTITY_HEX_PATTERN,
  parseAddress,
  type PeerSender,
  RpcClientConnection,
  type SnapshotAck,
  type SnapshotChunk,
} from "../transport/mod.ts";
import type { Logger } from "../logging/logger.ts";
import { type ApplyResult, CounterStateMachine } from "./state_machine.ts";
import type { ClientTls, ServerTls } from "../transport/tls.ts";
import { IncrementBatch, readStampMs } from "./command.ts";
import { ClusterClock } from "./cluster_clock.ts";
import { PendingProposals, type Reply, replyAll } from "./pending_proposals.ts";
import { entryProblem, snapshotProblem } from "./entry_check.ts";
import { SnapshotReceiver, SnapshotSender } from "./snapshot_transfer.ts";
import { type Health, judgeHealth, NodeMetrics, type NodeSample } from "./metrics.ts";
import { PeerGate, settledMembers } from "./peer_identity.ts";
import { NodeHost } from "./host.ts";
import { turnNowMs } from "../transport/turn_clock.ts";
import {
  answerIdentity,
  computeClusterId,
  parseIdentityAnswer,
  runBootstrapCheck,
} from "./bootstrap_check.ts";

/** A node's TLS and tokens (`serve --tls-* --*-token-file`); each part is optional. */
export interface NodeSecurity {
  /** Serve TLS with `server`; dial peers with TLS trusting `client`'s CAs. */
  tls?: { server: ServerTls; client: ClientTls };
  /** The secret peers prove to one another (peer handshake); none: peers unauthenticated. */
  clusterToken?: Uint8Array;
  /** The token clients prove for data and read ops. */
  clientToken?: Uint8Array;
  /** The token clients prove for admin ops. */
  adminToken?: Uint8Array;
}

/** Settings of a node, as `counter serve` gives them. */
export interface NodeOptions {
  /** The data dir (holds log/, raft_meta/, snapshot/). */
  dataDir: string;
  /**
   * The data root given to `counter serve --data` (it holds `groups/NAME/` = `dataDir`), for the
   * commands printed to operators. Default `dataDir`.
   */
  dataRoot?: string;
  /** This node's HOST:PORT: its id, the address its peers and clients use. */
  id: string;
  /** The address to listen on, when not `id` (for example 0.0.0.0:8081, or behind a port map). */
  listen?: string;
  /** The initial members (used only when the data dir is new). */
  conf: string[];
  /** Members of an existing group to join: an empty data dir is not bootstrapped. */
  join?: string[];
  /** Raft group id. */
  group: string;
  /**
   * The groups a host serves (`serve --groups`); used by `NodeHost`, ignored by a node, which
   * serves `group`.
   */
  groups?: readonly string[];
  /** Followers campaign after this long without a leader (randomized up to twice as long). */
  electionTimeoutMs: number;
  /** Leader heartbeat period. */
  heartbeatIntervalMs: number;
  /** Seconds between periodic snapshots (0 = never). */
  snapshotIntervalSecs: number;
  /** Entries applied since the last snapshot that trigger a new one (0 = never). Default 10,000. */
  snapshotLogEntries?: number;
  /** Entries kept below a snapshot when compacting, for lagging followers. Default 5,000. */
  snapshotRetainEntries?: number;
  /**
   * Bytes of entry data applied since the last snapshot that trigger a new one (0 = never).
   * Default {@linkcode SNAPSHOT_LOG_BYTES_DEFAULT}: with batched increments an entry holds
   * kilobytes, so a count of entries alone would let the log in memory grow to tens of MiB.
   */
  snapshotLogBytes?: number;
  /**
   * Most bytes of entry data kept below a snapshot when compacting (the tail also stops at
   * `snapshotRetainEntries`). Default {@linkcode SNAPSHOT_RETAIN_BYTES_DEFAULT}.
   */
  snapshotRetainBytes?: number;
  /** Log segment size in bytes. Default: the storage layer's (16 MiB). */
  logSegmentBytes?: number;
  /**
   * The host journal the group's appends go through (one flush per turn for all groups; see
   * lib/storage/journal.ts). The host sets it. Default: each append flushes the group's log.
   */
  journal?: LogJournal;
  /** Where log lines go. */
  logger: Logger;
  /** Longest a request may wait inside the node before it is answered TIMEOUT. Default 10 s. */
  requestTimeoutMs?: number;
  /** Requests waiting at once before new ones are refused with BUSY. Default 100,000. */
  pendingRequestsMax?: number;
  /** TLS and tokens. Default: none (plain TCP, anyone may connect). */
  security?: NodeSecurity;
  /** How often the "no leader" warning repeats while the group has none. Default 60 s. */
  leaderlessWarnIntervalMs?: number;
  /**
   * How long an empty node started with `conf` waits for every other initial member to answer
   * the identity check before it gives up; 0 waits forever. Default 300 s.
   */
  bootstrapTimeoutSecs?: number;
  /** A connection silent this long (awaiting no reply) is closed; 0 never. Default 300 s. */
  idleTimeoutMs?: number;
  /** A frame must arrive whole this long after its first byte. Default 10 s. */
  frameTimeoutMs?: number;
  /**
   * Let idle, fully replicated groups go quiet (no heartbeats; see docs/DESIGN.md, "Quiescent
   * groups"); the host then provides node liveness. Default true.
   */
  quiesce?: boolean;
}

/**
 * What one group's node uses of the process hosting it (`NodeHost`): the outbound connections,
 * shared by every group, and the listener's counters. The host owns both; a node only sends.
 */
export interface NodeTransport {
  /** Sends bodies to peers; one connection per peer for all the host's groups. */
  readonly peers: PeerSender;
  /** The address the host listens on. */
  readonly address: string;
  /** Inbound connections open now (clients and peers, all groups). */
  connectionCount(): number;
  /** Inbound connections accepted since the host started. */
  connectionsAccepted(): number;
  /**
   * The node no longer sends to `peer` (it left this group's configuration): the host closes the
   * connection unless another group still has `peer` as a member.
   */
  forgetPeer(peer: string): void;
  /**
   * The node opened its data dir and is about to run the bootstrap check: until it runs, the host
   * answers the other members' `identity` probes for this group from `storage`.
   */
  starting(storage: DataDir): void;
  /**
   * The node has work (its Ready loop is being run): the host's ticker, which slows down while
   * every group is quiet, ticks at full rate again. Optional.
   */
  busy?(): void;
}

/** How often a node without a leader warns again. */
const LEADERLESS_WARN_INTERVAL_MS = 60_000;

/**
 * Warns when `--conf` names other members than the data dir's group has: it only seeds a new
 * group, so on a restart it is ignored, and the operator must not believe it took effect.
 */
function warnIfConfIgnored(
  options: NodeOptions,
  fresh: boolean,
  voters: readonly string[],
  learners: readonly string[],
): void {
  if (fresh || options.conf.length === 0) return;
  const given = [...new Set(options.conf)].sort().join(",");
  if (given === [...voters].sort().join(",")) return;
  options.logger.warn(
    "--conf is ignored: the data dir already holds a group; change members with " +
      "'counter peers add/remove'",
    { conf: given, voters: voters.join(","), learners: learners.join(",") || undefined },
  );
}

/** How long one identity probe of the bootstrap check may take, connection included. */
const IDENTITY_PROBE_TIMEOUT_MS = 1000;

/** Longest client id accepted (its UTF-8 form must fit the snapshot's 16-bit length field). */
const CLIENT_ID_CHARS_MAX = 256;

/** A snapshot transfer whose follower acknowledges no chunk for this long is abandoned. */
const SNAPSHOT_ACK_TIMEOUT_MS = 5000;

/** Most ticks given at once after a pause (an election timeout is at most 60,000 ticks). */
const TICKS_CATCH_UP_MAX = 100_000;

/** Waiting requests are checked against their deadlines every this many ticks (100 ms). */
const EXPIRY_CHECK_TICKS = 10;

/** Default of `NodeOptions.snapshotLogBytes`: 4 MiB. */
export const SNAPSHOT_LOG_BYTES_DEFAULT = 4 * 1024 * 1024;

/** Default of `NodeOptions.snapshotRetainBytes`: 1 MiB. */
export const SNAPSHOT_RETAIN_BYTES_DEFAULT = 1024 * 1024;

/**
 * A quiet group's tick does its checks (catch-up ticks, deadlines, admin waits) only this often;
 * the ticks in between return at once. Every input catches the core's ticks up first, so the
 * core's clock is never behind when it matters.
 */
export const QUIET_CHECK_MS = 100;

/** Length of one Raft tick. Election and heartbeat periods are whole numbers of ticks. */
export const TICK_MS = 10;
/**
 * How often the host calls {@linkcode CounterNode.slowTick}: the commit floor is saved then when
 * it moved (see DataDir.flushCommitFloor), and a periodic snapshot is taken when due.
 */
export const SLOW_TICK_MS = 1000;

/** Bytes of a backup sent per `backup` answer (well under the 4 MiB frame limit). */
export const BACKUP_CHUNK_BYTES = 512 * 1024;

/** A backup being fetched: a snapshot file image, read out in chunks by `counter backup`. */
interface PendingBackup {
  id: number;
  bytes: Uint8Array;
}

/** Learners within this many entries of the leader are promoted by `add_peer`. */
const PROMOTE_LAG_ENTRIES_MAX = 1000;

interface PendingPromotion {
  node: string;
  reply: (resp: ClientResponse) => void;
  /** Monotonic deadline (`performance.now()` ms): a wall clock step moves no deadline. */
  deadlineMs: number;
}

interface PendingTransfer {
  target: string;
  reply: (resp: ClientResponse) => void;
  /** Monotonic deadline (`performance.now()` ms): a wall clock step moves no deadline. */
  deadlineMs: number;
}

interface PendingRead {
  reply: (resp: ClientResponse) => void;
  /** Monotonic deadline (`performance.now()` ms): a wall clock step moves no deadline. */
  deadlineMs: number;
  index: number;
}

/** A running counter node. */
export class CounterNode {
  readonly #options: NodeOptions;
  readonly #log: Logger;
  readonly #storage: DataDir;
  readonly #raft: Raft;
  readonly #sm: CounterStateMachine;
  readonly #transport: NodeTransport;
  readonly #peers: PeerSender;
  /** The host this node was started with by {@linkcode CounterNode.start}: `stop` stops it. */
  #ownerHost: NodeHost | null = null;
  readonly #requestTimeoutMs: number;
  readonly #pendingRequestsMax: number;
  #applied: number;
  /** Bytes of entry data applied since the last snapshot was taken or installed. */
  #appliedBytesSinceSnapshot = 0;
  /** Stamps increments with cluster time (never the wall clock); see cluster_clock.ts. */
  readonly #clock = new ClusterClock();
  #proposals = new PendingProposals();
  /**
   * Increments taken in this turn of the event loop, not proposed yet: the flush (a microtask
   * queued by the first) proposes each batch as one entry. Replies are in item order.
   */
  #incrBatches: Array<{ batch: IncrementBatch; replies: Reply[] }> = [];
  /** Increments in `#incrBatches`. */
  #incrQueued = 0;
  #reads = new Map<number, PendingRead>();
  #readsAwaitingApply: Array<{ id: number; index: number }> = [];
  #readSeq = 0;
  #pumpScheduled = false;
  #lastTickAtMs = performance.now();
  #tickCount = 0;
  /** When a quiet group checks next; a random phase spreads the groups over the period. */
  #quietCheckAtMs = performance.now() + Math.random() * QUIET_CHECK_MS;
  #loopStartScheduled = false;
  /** The Ready being handled installs a snapshot: nothing may be applied until it is loaded. */
  #snapshotInFlight = false;
  #promotions: PendingPromotion[] = [];
  #knownPeers = new Set<string>();
  readonly #snapshotSender: SnapshotSender;
  readonly #snapshotReceiver = new SnapshotReceiver();
  readonly #gate: PeerGate;
  #transfers: PendingTransfer[] = [];
  #leaderlessSinceMs: number | null = null;
  #leaderlessWarnedAtMs: number | null = null;
  #loopRunning = false;
  #stopping = false;
  /** A fatal error was met: the first one is reported, later ones are its consequences. */
  #fatalSeen = false;
  #lastRole: Role;
  #lastTerm: number;
  #lastLeader: string;
  /** When the next periodic snapshot is due (monotonic ms); see `snapshotIntervalSecs`. */
  #nextSnapshotAtMs: number;
  /** Index of the newest snapshot on disk (ours or the leader's). */
  #snapshotIndex: number;
  /** The snapshot being written, if any; one at a time. */
  #snapshotting: Promise<number> | null = null;
  readonly #metrics: NodeMetrics;
  /** The one backup being fetched, if any; a new one replaces it. */
  #backup: PendingBackup | null = null;
  #backupSeq = 0;
  #resolveClosed!: () => void;
  #rejectClosed!: (err: Error) => void;
  /** Settles when the node has stopped (rejects if it stopped because of a fatal error). */
  readonly closed: Promise<void>;

  private constructor(
    options: NodeOptions,
    storage: DataDir,
    raft: Raft,
    transport: NodeTransport,
    sm: CounterStateMachine,
    applied: number,
  ) {
    this.#sm = sm;
    this.#options = options;
    this.#log = options.logger;
    this.#storage = storage;
    this.#raft = raft;
    this.#transport = transport;
    this.#peers = transport.peers;
    this.#applied = applied;
    this.#snapshotIndex = applied;
    this.#nextSnapshotAtMs = performance.now() + options.snapshotIntervalSecs * 1000;
    // Cluster time continues from the newest stamp this node holds.
    this.#clock.observe(sm.newestActivityMs());
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
    this.#pendingRequestsMax = options.pendingRequestsMax ?? 100_000;
    this.#snapshotSender = new SnapshotSender({
      sendChunk: (chunk) => {
        this.#peers.sendBody(
          chunk.to,
          options.group,
          encodeSnapshotChunk(options.group, chunk),
          "snapshot chunk",
        );
      },
      onDone: (to, ok) => {
        if (ok) this.#log.info("snapshot sent", { peer: to });
        else this.#log.warn("snapshot transfer abandoned; will retry", { peer: to });
        this.#raft.reportSnapshot(to, ok);
        this.#kick();
      },
      ackTimeoutMs: SNAPSHOT_ACK_TIMEOUT_MS,
    });
    this.#gate = new PeerGate({
      self: options.id,
      group: options.group,
      store: storage,
      members: () => this.#members(),
      settled: () => this.#settledMembers(),
      logger: options.logger,
    });
    this.#lastRole = raft.role;
    this.#lastTerm = raft.term;
    this.#lastLeader = raft.leader;
    this.#metrics = new NodeMetrics(
      { id: options.id, group: options.group },
      () => this.#metricsSample(),
    );
    this.closed = new Promise((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // A caller that never awaits `closed` must not see an unhandled rejection.
    this.closed.catch(() => {});
  }

  /**
   * Starts a node serving one group in a process of its own: a {@linkcode NodeHost} with the
   * one group `options.group`, whose data dir is `options.dataDir/groups/GROUP` (a single-group
   * data dir at `options.dataDir` is moved there first). Binds the port before anything is
   * written: a busy or foreign address fails with `ListenError` and leaves the data dir as it
   * was. {@linkcode CounterNode.stop} stops the whole host.
   */
  static async start(options: NodeOptions): Promise<CounterNode> {
    const host = await NodeHost.start({ ...options, groups: [options.group] });
    const node = host.node(options.group);
    if (node === undefined) {
      await host.stop();
      throw new Error(`the host did not start group ${options.group}`);
    }
    node.#ownerHost = host;
    return node;
  }

  /**
   * Opens `options.dataDir` (this group's own data dir), recovers, bootstraps a new group (after
   * the bootstrap check), sending through `transport`. Used by {@linkcode NodeHost}; it routes
   * the group's traffic to the node's `on*` methods and drives its time ({@linkcode tick} every
   * {@linkcode TICK_MS}, {@linkcode slowTick} every {@linkcode SLOW_TICK_MS}).
   */
  static async open(options: NodeOptions, transport: NodeTransport): Promise<CounterNode> {
    const log = options.logger;
    const storage = await DataDir.open(options.dataDir, {
      nodeId: options.id,
      group: options.group,
      logger: log,
      segmentBytesMax: options.logSegmentBytes,
      journal: options.journal,
    });
    try {
      let recovered = storage.recovered();
      // While an empty node checks whether it may bootstrap, the other initial members run the
      // same check and must get its answer: identity probes are answered from here on.
      transport.starting(storage);
      const fresh = storage.isFresh();
      if (fresh && options.join !== undefined) {
        // Its id may have served before: the configurations it will replay from the start of
        // the leader's log may be that earlier life's and name it a voter. It neither votes nor
        // campaigns until its log passes what its first leader held (the core's vote floor).
        await storage.saveVoteFloorPending(true);
        log.info("empty node waiting to be added to the group", {
          hint: `counter peers add ${options.id} --peers ${options.join.join(",")}`,
        });
      } else if (fresh) {
        if (!options.conf.includes(options.id)) {
          throw new Error(`--conf must include this node's --id ${options.id}`);
        }
        const clusterId = await computeClusterId(options.group, options.conf);
        const history = await checkBeforeBootstrap(options, storage, clusterId);
        if (history) {
          // The group already has a history nobody says this id took part in: a member that
          // started late, or one whose data was lost after its peers' records of it were reset.
          // Either way it first catches up from a leader before it votes or campaigns.
          await storage.saveVoteFloorPending(true);
        }
        // Saved first: a crash before the entries leaves an empty dir, checked again next time.
        await storage.saveClusterId(clusterId);
        const initial = bootstrapState({ voters: [...options.conf].sort(), learners: [] });
        await storage.append(initial.entries);
        await storage.saveHardState(initial.hardState);
        recovered = initial;
        log.info("bootstrapped a new group", {
          group: options.group,
          conf: options.conf.join(","),
          clusterId,
        });
      }
      const electionTicks = Math.max(2, Math.round(options.electionTimeoutMs / TICK_MS));
      const heartbeatTicks = Math.max(1, Math.round(options.heartbeatIntervalMs / TICK_MS));
      const raft = new Raft({
        id: options.id,
        electionTicks,
        heartbeatTicks: Math.min(heartbeatTicks, electionTicks - 1),
        random: Math.random,
        respectLeaseOnStart: true,
        voteFloor: storage.voteFloorPending() ? -1 : 0,
        quiesce: options.quiesce ?? true,
      }, recovered);
      const sm = new CounterStateMachine();
      let applied = 0;
      if (recovered.snapshot !== null) {
        sm.restore(recovered.snapshot.data);
        applied = recovered.snapshot.index;
      }
      log.info("recovered", {
        term: recovered.hardState.term,
        vote: recovered.hardState.vote || undefined,
        snapshotIndex: recovered.snapshot?.index ?? 0,
        lastIndex: raft.lastIndex,
        voters: raft.conf.voters.join(","),
        incarnation: storage.incarnation(),
        clusterId: storage.clusterId() || undefined,
      });
      warnIfConfIgnored(options, fresh, raft.conf.voters, raft.conf.learners);
      const node = new CounterNode(options, storage, raft, transport, sm, applied);
      node.#observeStamps(recovered.entries);
      node.#knownPeers = new Set([...raft.conf.voters, ...raft.conf.learners]);
      log.info("serving", { id: options.id, listen: transport.address, group: options.group });
      return node;
    } catch (err) {
      await storage.close();
      throw err;
    }
  }

  /**
   * The HELLO this node's group sends on each peer connection: its id, its data dir's
   * incarnation and its cluster id (asked for anew: a joining node learns it after it started).
   */
  hello(): Uint8Array {
    return encodeHello(this.#options.group, {
      from: this.#options.id,
      incarnation: this.#storage.incarnation(),
      clusterId: this.#storage.clusterId(),
    });
  }

  /** The group this node serves. */
  get group(): string {
    return this.#options.group;
  }

  /**
   * The members this node sends to and takes traffic from (see `#members`); empty while it has
   * no configuration.
   */
  members(): ReadonlySet<string> {
    return this.#members() ?? new Set();
  }

  /** A peer's HELLO for this group: accept, refuse, or accept once recorded (see PeerGate). */
  onHello(hello: Hello): boolean | Promise<boolean> {
    if (this.#stopping) return false;
    return this.#gate.onHello(this.#options.group, hello);
  }

  /** A Raft message for this group, from a peer whose hello was accepted. */
  onRaftMessage(msg: Message): void {
    this.#onRaftMessage(this.#options.group, msg);
  }

  /** A snapshot chunk for this group, from its leader. */
  onSnapshotChunk(chunk: SnapshotChunk): void {
    this.#onSnapshotChunk(this.#options.group, chunk);
  }

  /** A follower's acknowledgement of a snapshot chunk this node sent. */
  onSnapshotAck(ack: SnapshotAck): void {
    if (!this.#stopping) this.#snapshotSender.onAck(ack, Date.now());
  }

  /** A client request for this group; `reply` is called once. */
  onRequest(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    this.#onRequest(this.#options.group, req, reply);
  }

  /** A request for this group was answered (for metrics). */
  onReplied(op: string, resp: ClientResponse, elapsedMs: number): void {
    this.#metrics.requestDone(op, resp.ok, resp.code, elapsedMs / 1000);
  }

  /** This node's id (HOST:PORT). */
  get id(): string {
    return this.#options.id;
  }

  /** The node's Raft role now. */
  get role(): Role {
    return this.#raft.role;
  }

  /** The Prometheus text exposition of this node's metrics (`/metrics`). */
  metricsText(): string {
    return this.#metrics.expose();
  }

  /** Healthy with a known leader and applied close to commit (`/health`, `counter health`). */
  health(): Health {
    const s = this.#raft.status();
    return judgeHealth({ ...s, applied: this.#applied });
  }

  /** What the `status` operation answers (`/status`, `counter status`). */
  status(): Record<string, string | number | string[]> {
    return this.#statusData();
  }

  /**
   * Stops serving. A node started with {@linkcode CounterNode.start} stops its whole host (the
   * port, the peer connections); a node of a host stops only its group: fails waiting requests,
   * syncs and unlocks the group's data dir.
   */
  async stop(): Promise<void> {
    const host = this.#ownerHost;
    if (host !== null) {
      this.#ownerHost = null;
      await host.stop().catch(() => {});
      return this.closed;
    }
    return await this.stopGroup();
  }

  /** Stops this group only; the host keeps serving its others. See {@linkcode stop}. */
  async stopGroup(): Promise<void> {
    if (this.#stopping) return this.closed;
    this.#stopping = true;
    try {
      while (this.#loopRunning) await new Promise((r) => setTimeout(r, 1));
      if (this.#snapshotting !== null) await this.#snapshotting.catch(() => {});
      this.#failAll("SHUTTING_DOWN", "the node is shutting down");
      await this.#storage.close();
      this.#log.info("stopped");
      this.#resolveClosed();
    } catch (err) {
      this.#rejectClosed(err as Error);
    }
    return this.closed;
  }

  /**
   * The nodes this node takes peer traffic from: the members of the latest configuration and of
   * the committed one (a node whose removal is not yet committed may still have to campaign).
   * Null while the node has no configuration (started with `--join`, not yet reached).
   */
  #members(): ReadonlySet<string> | null {
    const latest = this.#raft.conf;
    if (latest.voters.length === 0 && latest.learners.length === 0) return null;
    const committed = this.#raft.confAt(this.#raft.commitIndex);
    return new Set([
      ...latest.voters,
      ...latest.learners,
      ...committed.voters,
      ...committed.learners,
    ]);
  }

  /** Members of the committed configuration and voters of the latest (see PeerGate). */
  #settledMembers(): ReadonlySet<string> | null {
    return settledMembers(this.#raft.conf, this.#raft.confAt(this.#raft.commitIndex));
  }

  /**
   * Once a second, from the host's ticker: saves the commit floor when it moved, and takes the
   * periodic snapshot when `snapshotIntervalSecs` passed since the last one was due.
   */
  slowTick(nowMs: number): void {
    if (this.#stopping) return;
    // Checked first: an idle group's second costs a comparison, not a promise.
    if (this.#storage.commitFloorBehind()) {
      this.#storage.flushCommitFloor().catch((err) => this.#fatal(err));
    }
    const intervalMs = this.#options.snapshotIntervalSecs * 1000;
    if (intervalMs > 0 && nowMs >= this.#nextSnapshotAtMs) {
      this.#nextSnapshotAtMs = Math.max(this.#nextSnapshotAtMs + intervalMs, nowMs);
      this.#snapshot("interval").catch((err) => this.#fatal(err));
    }
  }

  /**
   * Writes a snapshot of the applied state, then compacts the log below it (keeping a tail).
   * Resolves with the snapshot's index. Appends and client answers go on meanwhile: only the
   * in-memory copy of the state happens on the caller's turn.
   */
  #snapshot(reason: string): Promise<number> {
    if (this.#snapshotting !== null) return this.#snapshotting;
    const index = this.#applied;
    const term = this.#raft.termAt(index);
    // Applied entries may still be on their way to this node's own disk (or the disk may still
    // hold an older term's entry at that index, about to be replaced); a snapshot must not cover
    // entries the log on disk does not hold as applied. The next trigger will find them written.
    const onDisk = index <= this.#raft.stableIndex;
    if (index <= this.#snapshotIndex || term === undefined || this.#stopping || !onDisk) {
      return Promise.resolve(this.#snapshotIndex);
    }
    const snap = { index, term, conf: this.#raft.confAt(index), data: this.#sm.snapshot() };
    this.#appliedBytesSinceSnapshot = 0;
    const startMs = performance.now();
    const task = (async () => {
      await this.#storage.saveSnapshot(snap);
      this.#snapshotIndex = Math.max(this.#snapshotIndex, index);
      const retain = this.#options.snapshotRetainEntries ?? 5_000;
      const retainBytes = this.#options.snapshotRetainBytes ?? SNAPSHOT_RETAIN_BYTES_DEFAULT;
      // Keep the shorter of the two tails: at most `retain` entries and `retainBytes` of data.
      const compactIndex = Math.max(
        0,
        index - retain,
        this.#raft.tailStart(index, retainBytes) - 1,
      );
      this.#raft.setSnapshot(snap, compactIndex);
      if (compactIndex > 0) await this.#storage.compactTo(compactIndex);
      this.#metrics.snapshots.inc();
      this.#metrics.snapshotBytes.set(snap.data.length);
      this.#metrics.snapshotSeconds.observe((performance.now() - startMs) / 1000);
      this.#log.info("snapshot saved", {
        reason,
        index,
        bytes: snap.data.length,
        compactedTo: compactIndex,
        ms: Math.round(performance.now() - startMs),
      });
      return index;
    })();
    this.#snapshotting = task;
    task.finally(() => this.#snapshotting = null).catch(() => {});
    return task;
  }

  #maybeSnapshotForLogSize(): void {
    if (this.#snapshotting !== null) return;
    const every = this.#options.snapshotLogEntries ?? 10_000;
    const everyBytes = this.#options.snapshotLogBytes ?? SNAPSHOT_LOG_BYTES_DEFAULT;
    const byEntries = every > 0 && this.#applied - this.#snapshotIndex >= every;
    const byBytes = everyBytes > 0 && this.#appliedBytesSinceSnapshot >= everyBytes;
    if (!byEntries && !byBytes) return;
    this.#snapshot("log size").catch((err) => this.#fatal(err));
  }

  /**
   * Gives the core as many ticks as real (monotonic) time says are due. A process that was
   * paused (SIGSTOP, a long GC, an overloaded machine) thus sees its election timer and its
   * leader lease expire at once on resume, instead of believing no time has passed.
   */
  #catchUpTicks(now: number = performance.now()): void {
    const due = Math.floor((now - this.#lastTickAtMs) / TICK_MS);
    if (due <= 0) return;
    this.#lastTickAtMs += due * TICK_MS;
    // Past a few election timeouts more ticks change nothing; keep the loop short.
    const ticks = Math.min(due, TICKS_CATCH_UP_MAX);
    for (let i = 0; i < ticks; i++) this.#raft.tick();
  }

  /**
   * One tick, from the host's ticker (every {@linkcode TICK_MS} while some group is awake;
   * `nowMs` is its monotonic clock reading). A quiet group (`raft.quiesced`) returns at once
   * except every {@linkcode QUIET_CHECK_MS}, and its Ready is not checked: a tick of a quiet core
   * produces no work. Returns whether the group is awake (wants ticks every `TICK_MS`).
   */
  tick(nowMs: number): boolean {
    if (this.#stopping) return false;
    const quiet = this.#raft.quiesced;
    if (quiet) {
      if (nowMs < this.#quietCheckAtMs) return false;
      this.#quietCheckAtMs = nowMs + QUIET_CHECK_MS;
    }
    const count = ++this.#tickCount;
    this.#catchUpTicks(nowMs);
    // Deadlines are coarse (seconds); scanning every waiting request each tick would not be.
    if (quiet || count % EXPIRY_CHECK_TICKS === 0) this.#expireRequests(nowMs);
    this.#checkAdminWaits(nowMs);
    if (this.#snapshotSender.activeCount > 0) {
      if (this.#raft.role !== Role.Leader) this.#snapshotSender.clear();
      else this.#snapshotSender.expire(Date.now());
    }
    this.#checkLeaderless(nowMs);
    // The tick that quiets the group has its quiesce heartbeats to send; later ones have nothing.
    if (!quiet || !this.#raft.quiesced) this.#kick();
    return !this.#raft.quiesced;
  }

  /** True while the group is quiet (see `RaftOptions.quiesce`). */
  get quiesced(): boolean {
    return this.#raft.quiesced;
  }

  /** The leader this node knows of ("" if none). */
  get leader(): string {
    return this.#raft.leader;
  }

  /** True when `peer` is a voter or learner of the latest configuration. */
  hasMember(peer: string): boolean {
    const conf = this.#raft.conf;
    return conf.voters.includes(peer) || conf.learners.includes(peer);
  }

  /**
   * Wakes a quiet group (the host's node liveness: its leader's node seems dead, or a member's
   * node came back). The core's ticks are caught up first; a group that is not quiet is left
   * alone.
   */
  unquiesce(): void {
    if (this.#stopping || !this.#raft.quiesced) return;
    this.#catchUpTicks();
    this.#raft.unquiesce();
    this.#kick();
  }

  /**
   * Warns once the group has had no leader for two election timeouts (a quorum of voters is
   * unreachable, or elections keep failing), again every `leaderlessWarnIntervalMs` while it
   * lasts, and says when a leader is back.
   */
  #checkLeaderless(nowMs: number): void {
    const voters = this.#raft.conf.voters;
    if (this.#raft.leader !== "" || !voters.includes(this.#options.id)) {
      if (this.#leaderlessWarnedAtMs !== null) {
        this.#log.info("the group has a leader again", { leader: this.#raft.leader || undefined });
      }
      this.#leaderlessSinceMs = null;
      this.#leaderlessWarnedAtMs = null;
      return;
    }
    this.#leaderlessSinceMs ??= nowMs;
    const leaderlessMs = nowMs - this.#leaderlessSinceMs;
    if (leaderlessMs < 2 * this.#options.electionTimeoutMs) return;
    const intervalMs = this.#options.leaderlessWarnIntervalMs ?? LEADERLESS_WARN_INTERVAL_MS;
    if (this.#leaderlessWarnedAtMs !== null && nowMs - this.#leaderlessWarnedAtMs < intervalMs) {
      return;
    }
    this.#leaderlessWarnedAtMs = nowMs;
    const quorum = Math.floor(voters.length / 2) + 1;
    this.#log.warn(
      `no leader for ${Math.round(leaderlessMs / 1000)} s: the group needs ${quorum} of ` +
        `${voters.length} voters to elect one; check that they are up and reachable`,
      { term: this.#raft.term, voters: voters.join(",") },
    );
  }

  #onRaftMessage(group: string, msg: Message): void {
    if (this.#stopping) return;
    // The host routes by group; another group's message here would be a routing bug.
    if (group !== this.#options.group) return;
    if (msg.to !== this.#options.id) {
      this.#log.debug("dropped a raft message for another node", { to: msg.to, from: msg.from });
      return;
    }
    if (!this.#admissible(msg)) return;
    // After a pause (SIGSTOP, a long GC) the input may be handled before the tick timer fires:
    // time must be caught up first, or an expired lease or election timer would look alive.
    this.#catchUpTicks();
    this.#raft.step(msg);
    this.#kick();
  }

  /**
   * True when every entry and the snapshot `msg` carries is something this node can apply.
   * A sender of anything else is broken or hostile: the whole message is dropped, so no part of
   * it is ever stored, and the drop is logged.
   */
  #admissible(msg: Message): boolean {
    for (const e of msg.entries) {
      const problem = entryProblem(e);
      if (problem === null) continue;
      this.#log.warn("dropped a raft message carrying a malformed entry", {
        from: msg.from,
        type: MessageType[msg.type],
        term: msg.term,
        index: e.index,
        reason: problem,
      });
      return false;
    }
    if (msg.snapshot !== null) {
      const problem = snapshotProblem(msg.snapshot.data, msg.snapshot.conf);
      if (problem !== null) {
        this.#log.warn("dropped a malformed snapshot", {
          from: msg.from,
          index: msg.snapshot.index,
          reason: problem,
        });
        return false;
      }
    }
    return true;
  }

  #onSnapshotChunk(group: string, chunk: SnapshotChunk): void {
    if (this.#stopping || group !== this.#options.group || chunk.to !== this.#options.id) return;
    if (chunk.offset === 0) {
      this.#log.info("receiving snapshot", {
        from: chunk.from,
        index: chunk.index,
        bytes: chunk.totalBytes,
      });
    }
    const result = this.#snapshotReceiver.onChunk(chunk);
    this.#peers.sendBody(
      chunk.from,
      group,
      encodeSnapshotAck(group, result.ack),
      "snapshot ack",
    );
    if (result.error !== undefined) {
      this.#log.warn("snapshot transfer dropped", { from: chunk.from, reason: result.error });
    }
    if (result.message !== null && this.#admissible(result.message)) {
      this.#catchUpTicks();
      this.#raft.step(result.message);
      this.#kick();
    }
  }

  #onRequest(group: string, req: ClientRequest, answer: (resp: ClientResponse) => void): void {
    const clusterId = this.#storage.clusterId();
    // A client that has not pinned a cluster yet learns this node's from the answer; one that
    // has is refused here when it pinned another (a separately force-recovered group).
    const reply = req.clusterId === undefined && clusterId !== ""
      ? (resp: ClientResponse) => answer({ ...resp, clusterId })
      : answer;
    if (this.#stopping) {
      reply({ ok: false, code: "SHUTTING_DOWN", error: "the node is shutting down" });
      return;
    }
    if (group !== this.#options.group) {
      reply({
        ok: false,
        code: "UNKNOWN_GROUP",
        error: `unknown group "${group}": this node serves group "${this.#options.group}"`,
      });
      return;
    }
    if (
      req.clusterId !== undefined && req.clusterId !== "" && clusterId !== "" &&
      req.clusterId !== clusterId
    ) {
      reply({
        ok: false,
        code: "WRONG_CLUSTER",
        error: `node ${this.#options.id} belongs to another cluster (id ${clusterId}), not ` +
          `${req.clusterId}: it was force-recovered separately`,
        clusterId,
      });
      return;
    }
    // As for Raft messages: the core's clock must not fall behind. One reading serves the
    // requests of a whole network read; a lease read catches up again with a fresh one.
    this.#catchUpTicks(turnNowMs());
    switch (req.op) {
      case "incr":
        this.#handleIncrement(req, reply);
        return;
      case "get":
        this.#handleGet(req, reply);
        return;
      case "snapshot":
        this.#snapshot("requested").then(
          (index) => reply({ ok: true, data: { snapshotIndex: index } }),
          (err) => reply({ ok: false, code: "INTERNAL", error: `snapshot failed: ${err}` }),
        );
        return;
      case "status":
        reply({ ok: true, data: this.#statusData(), leader: this.#raft.leader || undefined });
        return;
      case "peers":
        this.#handlePeers(reply);
        return;
      case "add_peer":
      case "remove_peer":
      case "promote_peer":
        this.#handleConfChange(req, reply);
        return;
      case "transfer_leader":
        this.#handleTransfer(req, reply);
        return;
      case "backup":
        this.#handleBackup(req, reply);
        return;
      case "identity":
        reply(identityReply(req, this.#storage, this.#raft));
        return;
      default:
        reply({ ok: false, code: "UNKNOWN_OP", error: `unknown operation "${req.op}"` });
    }
  }

  #notLeader(reply: (resp: ClientResponse) => void): void {
    const leader = this.#raft.leader;
    if (leader !== "" && leader !== this.#options.id) {
      reply({ ok: false, code: "NOT_LEADER", error: `not the leader; try ${leader}`, leader });
    } else {
      reply({ ok: false, code: "NO_LEADER", error: "no leader is known right now" });
    }
  }

  #busy(): boolean {
    return this.#proposals.requests + this.#incrQueued + this.#reads.size >=
      this.#pendingRequestsMax;
  }

  #handleIncrement(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    if (typeof req.delta !== "bigint") {
      reply({ ok: false, code: "BAD_REQUEST", error: "incr needs a delta" });
      return;
    }
    if ((req.clientId?.length ?? 0) > CLIENT_ID_CHARS_MAX) {
      reply({
        ok: false,
        code: "BAD_REQUEST",
        error: `clientId is longer than ${CLIENT_ID_CHARS_MAX} characters`,
      });
      return;
    }
    if (this.#raft.role !== Role.Leader) return this.#notLeader(reply);
    if (this.#busy()) {
      reply({ ok: false, code: "BUSY", error: "too many requests waiting; retry later" });
      return;
    }
    const item = {
      delta: req.delta,
      clientId: req.clientId ?? "",
      seq: req.seq ?? 0,
      ackedBelow: req.ackedBelow ?? 0,
    };
    // Increments taken in one turn of the event loop become one entry (a batch, see command.ts),
    // proposed by a microtask after every frame of this turn was read: one log entry, storage
    // record and apply step for all of them instead of one each.
    let open = this.#incrBatches.at(-1);
    if (open === undefined) {
      queueMicrotask(() => this.#flushIncrements());
      open = { batch: new IncrementBatch(), replies: [] };
      this.#incrBatches.push(open);
    }
    try {
      if (!open.batch.add(item)) {
        open = { batch: new IncrementBatch(), replies: [] };
        this.#incrBatches.push(open);
        open.batch.add(item);
      }
    } catch (err) {
      // An increment no entry can hold (a sequence number beyond 2^53, say).
      reply({
        ok: false,
        code: "BAD_REQUEST",
        error: String(err instanceof Error ? err.message : err),
      });
      return;
    }
    open.replies.push(reply);
    this.#incrQueued++;
  }

  /** Proposes the increments taken in this turn: one entry per batch, in one step. */
  #flushIncrements(): void {
    const batches = this.#incrBatches;
    if (batches.length === 0) return;
    this.#incrBatches = [];
    this.#incrQueued = 0;
    const everyone = (answer: (reply: Reply) => void) => {
      for (const b of batches) for (const reply of b.replies) answer(reply);
    };
    if (this.#stopping) {
      const error = "the node is shutting down";
      return everyone((reply) => reply({ ok: false, code: "SHUTTING_DOWN", error }));
    }
    if (this.#raft.role !== Role.Leader) return everyone((reply) => this.#notLeader(reply));
    // Cluster time, not Date.now(): a wall clock that is ahead or steps would expire live client
    // sessions, and a retry would then be applied twice. One stamp per entry, as always.
    const stampMs = this.#clock.stamp(this.#raft.term);
    const result = this.#raft.propose(batches.map((b) => b.batch.encode(stampMs)));
    if (!result.ok) {
      if (this.#raft.role !== Role.Leader) return everyone((reply) => this.#notLeader(reply));
      const error = `cannot take the increment now: ${result.reason}`;
      return everyone((reply) => reply({ ok: false, code: "BUSY", error }));
    }
    const deadlineMs = turnNowMs() + this.#requestTimeoutMs;
    for (let i = 0; i < batches.length; i++) {
      this.#proposals.add(result.firstIndex + i, {
        term: result.term,
        replies: batches[i].replies,
        deadlineMs,
      });
    }
    this.#kick();
  }

  #handleGet(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const consistency = req.consistency ?? "linearizable";
    const leader = this.#raft.leader || undefined;
    switch (consistency) {
      case "stale":
        // The local state machine as it is: possibly behind the leader, never ahead of commit.
        reply({ ok: true, value: this.#sm.value, leader, data: { node: this.#options.id } });
        return;
      case "linearizable":
      case "lease":
        if (this.#raft.role !== Role.Leader) return this.#notLeader(reply);
        break;
      case "follower":
        // Any node: a follower asks the leader for the read index, then waits to apply it.
        if (this.#raft.role !== Role.Leader && leader === undefined) {
          return this.#notLeader(reply);
        }
        break;
      default:
        reply({
          ok: false,
          code: "BAD_REQUEST",
          error:
            `unknown consistency "${consistency}" (use linearizable, lease, follower or stale)`,
        });
        return;
    }
    if (this.#busy()) {
      reply({ ok: false, code: "BUSY", error: "too many requests waiting; retry later" });
      return;
    }
    const id = ++this.#readSeq;
    this.#reads.set(id, { reply, deadlineMs: turnNowMs() + this.#requestTimeoutMs, index: 0 });
    // A lease is only as good as the core's clock: bring it up to real time first.
    if (consistency === "lease") this.#catchUpTicks();
    this.#raft.readIndex(id, { lease: consistency === "lease" });
    this.#kick();
  }

  #argString(req: ClientRequest, name: string): string | null {
    const value = req.args?.[name];
    return typeof value === "string" && value !== "" ? value : null;
  }

  /** Members and roles; on the leader also each follower's match index and lag. */
  #handlePeers(reply: (resp: ClientResponse) => void): void {
    if (this.#raft.role !== Role.Leader) return this.#notLeader(reply);
    const s = this.#raft.status();
    const progress = new Map(s.peers.map((p) => [p.id, p]));
    const members = [...s.conf.voters, ...s.conf.learners].map((id) => {
      const p = progress.get(id);
      const match = id === s.id ? s.lastIndex : p?.match ?? 0;
      return {
        id,
        role: id === s.id ? "leader" : s.conf.learners.includes(id) ? "learner" : "follower",
        match,
        lag: s.lastIndex - match,
        state: id === s.id ? "self" : p?.state ?? "unknown",
      };
    });
    reply({ ok: true, leader: s.id, data: { leader: s.id, term: s.term, members } });
  }

  #handleConfChange(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const node = this.#argString(req, "node");
    if (node === null) {
      reply({ ok: false, code: "BAD_REQUEST", error: `${req.op} needs args.node (HOST:PORT)` });
      return;
    }
    try {
      parseAddress(node);
    } catch (err) {
      reply({
        ok: false,
        code: "BAD_REQUEST",
        error: `bad node address: ${(err as Error).message}`,
      });
      return;
    }
    if (this.#raft.role !== Role.Leader) return this.#notLeader(reply);
    if (req.op === "promote_peer") {
      // As etcd does: a voter that cannot yet acknowledge what the others hold would only add to
      // the quorum's size, and a lagging one can cost the group its availability.
      const lag = this.#learnerLag(node);
      if (lag !== null && !lag.caughtUp) {
        reply({
          ok: false,
          code: "REFUSED",
          error: `learner ${node} is ${lag.behind} entries behind; try again when it has ` +
            `caught up (within ${PROMOTE_LAG_ENTRIES_MAX})`,
        });
        return;
      }
    }
    const learnerOnly = req.args?.learner === true;
    let change: ConfChange;
    if (req.op === "remove_peer") change = { type: "remove", node };
    else if (req.op === "promote_peer") change = { type: "promote", node };
    else change = { type: "addLearner", node };
    const result = this.#raft.proposeConfChange(change);
    if (!result.ok) {
      reply({ ok: false, code: "REFUSED", error: result.reason });
      return;
    }
    const deadlineMs = performance.now() + this.#requestTimeoutMs;
    const onCommitted = (resp: ClientResponse) => {
      if (!resp.ok || req.op !== "add_peer" || learnerOnly) return reply(resp);
      // New members join as learners; they become voters once they have caught up, so that
      // adding a member never costs the group its availability.
      this.#promotions.push({ node, reply, deadlineMs });
    };
    this.#proposals.add(result.firstIndex, {
      term: result.term,
      replies: [onCommitted],
      deadlineMs,
    });
    this.#log.info("membership change proposed", {
      op: req.op,
      peer: node,
      index: result.firstIndex,
    });
    this.#kick();
  }

  #handleTransfer(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const target = this.#argString(req, "node");
    if (target === null) {
      reply({ ok: false, code: "BAD_REQUEST", error: "transfer_leader needs args.node" });
      return;
    }
    if (this.#raft.role !== Role.Leader) return this.#notLeader(reply);
    if (target === this.#options.id) {
      reply({ ok: true, leader: target, data: { leader: target } });
      return;
    }
    const refused = this.#raft.transferLeader(target);
    if (refused !== null) {
      reply({ ok: false, code: "REFUSED", error: refused });
      return;
    }
    this.#log.info("leadership transfer started", { to: target });
    // The core abandons a transfer after an election timeout; wait a little longer than that.
    const deadlineMs = performance.now() + 2 * this.#options.electionTimeoutMs + 500;
    this.#transfers.push({ target, reply, deadlineMs });
    this.#kick();
  }

  /**
   * `counter backup`: the first call (no `args.id`) confirms leadership and waits for the applied
   * state to include every increment acknowledged before it (a linearizable read), then encodes
   * that state as a snapshot file image and answers its first chunk with an id; later calls
   * fetch `args.offset` of that image from this same node.
   */
  #handleBackup(req: ClientRequest, reply: (resp: ClientResponse) => void): void {
    const id = req.args?.id;
    const offset = req.args?.offset ?? 0;
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      reply({ ok: false, code: "BAD_REQUEST", error: "backup needs args.offset >= 0" });
      return;
    }
    if (id === undefined) {
      this.#handleGet({ op: "get", consistency: "linearizable" }, (resp) => {
        if (!resp.ok) return reply(resp);
        const index = this.#applied;
        const term = this.#raft.termAt(index);
        if (term === undefined) {
          reply({ ok: false, code: "BUSY", error: "the applied state moved; retry the backup" });
          return;
        }
        const bytes = encodeSnapshot({
          index,
          term,
          conf: this.#raft.confAt(index),
          data: this.#sm.snapshot(),
        });
        this.#backup = { id: ++this.#backupSeq, bytes };
        this.#log.info("backup started", { index, term, bytes: bytes.length });
        this.#sendBackupChunk(this.#backup, 0, reply);
      });
      return;
    }
    const backup = this.#backup;
    if (backup === null || backup.id !== id) {
      reply({
        ok: false,
        code: "REFUSED",
        error: "that backup is gone from this node (another one replaced it); start again",
      });
      return;
    }
    this.#sendBackupChunk(backup, offset, reply);
  }

  #sendBackupChunk(
    backup: PendingBackup,
    offset: number,
    reply: (resp: ClientResponse) => void,
  ): void {
    if (offset > backup.bytes.length) {
      reply({ ok: false, code: "BAD_REQUEST", error: `offset ${offset} is past the backup's end` });
      return;
    }
    const end = Math.min(backup.bytes.length, offset + BACKUP_CHUNK_BYTES);
    // The last chunk frees the image: a backup is read once.
    if (end === backup.bytes.length && this.#backup === backup) this.#backup = null;
    reply({
      ok: true,
      leader: this.#raft.leader || undefined,
      data: {
        node: this.#options.id,
        id: backup.id,
        offset,
        totalBytes: backup.bytes.length,
        chunk: backup.bytes.subarray(offset, end),
      },
    });
  }

  /** Progresses promotions and transfers; called every tick. */
  #checkAdminWaits(now: number): void {
    if (this.#promotions.length === 0 && this.#transfers.length === 0) return;
    if (this.#promotions.length > 0) {
      const still: PendingPromotion[] = [];
      for (const p of this.#promotions) {
        const done = this.#tryPromote(p, now);
        if (!done) still.push(p);
      }
      this.#promotions = still;
    }
    if (this.#transfers.length > 0) {
      const leader = this.#raft.leader;
      const still: PendingTransfer[] = [];
      for (const t of this.#transfers) {
        if (leader === t.target) {
          t.reply({ ok: true, leader, data: { leader } });
        } else if (now >= t.deadlineMs) {
          t.reply({
            ok: false,
            code: "TIMEOUT",
            error: `leadership did not move to ${t.target} in time (leader now: ${
              leader || "none"
            })`,
            leader: leader || undefined,
          });
        } else {
          still.push(t);
        }
      }
      this.#transfers = still;
    }
  }

  #tryPromote(p: PendingPromotion, now: number): boolean {
    if (now >= p.deadlineMs) {
      p.reply({
        ok: false,
        code: "TIMEOUT",
        error: `${p.node} was added as a learner but did not catch up in time; ` +
          `promote it later with 'counter peers promote ${p.node}'`,
      });
      return true;
    }
    if (this.#raft.role !== Role.Leader) {
      this.#notLeader(p.reply);
      return true;
    }
    const s = this.#raft.status();
    if (s.conf.voters.includes(p.node)) {
      p.reply({ ok: true, data: { voters: s.conf.voters, learners: s.conf.learners } });
      return true;
    }
    if (!(this.#learnerLag(p.node)?.caughtUp ?? false)) return false;
    const result = this.#raft.proposeConfChange({ type: "promote", node: p.node });
    if (!result.ok) return false; // Another change is still in flight; try on a later tick.
    this.#log.info("promoting caught-up learner", { peer: p.node, index: result.firstIndex });
    this.#proposals.add(result.firstIndex, {
      term: result.term,
      replies: [p.reply],
      deadlineMs: p.deadlineMs,
    });
    this.#kick();
    return true;
  }

  /**
   * How far the learner `node` is behind this leader's log, and whether that is close enough to
   * promote it (it has acknowledged something and is within `PROMOTE_LAG_ENTRIES_MAX`). Null when
   * `node` is not a learner.
   */
  #learnerLag(node: string): { behind: number; caughtUp: boolean } | null {
    const s = this.#raft.status();
    if (!s.conf.learners.includes(node)) return null;
    const match = s.peers.find((peer) => peer.id === node)?.match ?? 0;
    const behind = s.lastIndex - match;
    return { behind, caughtUp: match > 0 && behind <= PROMOTE_LAG_ENTRIES_MAX };
  }

  #statusData(): Record<string, string | number | string[]> {
    const s = this.#raft.status();
    return {
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commit: s.commit,
      applied: this.#applied,
      lastIndex: s.lastIndex,
      lastTerm: s.lastIndex === 0 ? 0 : this.#raft.termAt(s.lastIndex) ?? 0,
      clusterId: this.#storage.clusterId(),
      snapshotIndex: this.#snapshotIndex,
      compactedIndex: s.snapshotIndex,
      value: this.#sm.value.toString(),
      voters: s.conf.voters,
      learners: s.conf.learners,
      pid: Deno.pid,
      ...memoryFields(),
    };
  }

  #metricsSample(): NodeSample {
    const s = this.#raft.status();
    return {
      role: s.role,
      term: s.term,
      leader: s.leader,
      commit: s.commit,
      applied: this.#applied,
      lastIndex: s.lastIndex,
      snapshotIndex: this.#snapshotIndex,
      proposalsPending: this.#proposals.requests + this.#incrQueued,
      readsPending: this.#reads.size,
      followers: s.peers.filter((p) => p.id !== s.id),
      peers: this.#peers.stats(),
      connections: this.#transport.connectionCount(),
      connectionsAccepted: this.#transport.connectionsAccepted(),
    };
  }

  /** Runs the Ready loop unless it is already running; it drains everything pending. */
  #kick(): void {
    if (this.#stopping) return;
    this.#transport.busy?.();
    if (this.#loopRunning) {
      this.#schedulePump();
      return;
    }
    if (this.#loopStartScheduled) return;
    // Start on a microtask rather than now: every frame of the network read being handled is
    // stepped first, so they all share the first Ready and its fsync.
    this.#loopStartScheduled = true;
    queueMicrotask(() => {
      this.#loopStartScheduled = false;
      if (this.#loopRunning || this.#stopping || !this.#raft.hasReady()) return;
      this.#loopRunning = true;
      this.#runLoop().catch((err) => this.#fatal(err));
    });
  }

  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    queueMicrotask(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  /**
   * While the Ready loop waits for the disk, does the work that does not depend on it: sends the
   * leader's new appends (so followers write in parallel with the leader), applies entries a
   * quorum has just committed and answers their clients, and serves confirmed reads. Without
   * this, every answer would wait for an unrelated fsync to finish.
   */
  #pump(): void {
    if (this.#stopping || !this.#loopRunning) return;
    this.#send(this.#raft.takeEarlyMessages());
    if (this.#snapshotInFlight) return;
    this.#apply(this.#raft.takeCommittedEntries());
    const { readStates, failedReads } = this.#raft.takeReadStates();
    this.#handleReads(readStates, failedReads);
  }

  async #runLoop(): Promise<void> {
    try {
      while (!this.#stopping && this.#raft.hasReady()) {
        const rd = this.#raft.ready();
        await this.#handleReady(rd);
        this.#raft.advance(rd);
        // Checked here, not only inside: an await per Ready costs a promise hop per group batch.
        if (this.#storage.voteFloorPending()) await this.#clearVoteFloorWhenPassed();
        this.#logRoleChange();
        this.#maybeSnapshotForLogSize();
      }
    } finally {
      this.#loopRunning = false;
    }
  }

  async #handleReady(rd: Ready): Promise<void> {
    this.#snapshotInFlight = rd.snapshot !== null;
    this.#send(rd.messagesEarly);
    // Entries must be applied in log order. The pump applies entries committed after this Ready
    // was taken while the disk write below runs, so this Ready's own committed entries go first,
    // now: they are durable on a quorum already, and the state machine lives in memory. Only a
    // snapshot to install must be loaded before anything is applied (the pump waits for it too).
    if (rd.snapshot === null) this.#apply(rd.committedEntries);
    if (this.#stopping) return;
    if (rd.snapshot !== null) {
      // Our own snapshot must not land after (and on top of) the leader's newer one.
      if (this.#snapshotting !== null) await this.#snapshotting.catch(() => {});
      await this.#storage.restoreSnapshot(rd.snapshot);
      this.#snapshotIndex = rd.snapshot.index;
    }
    this.#observeStamps(rd.entries);
    // Usually only the append: awaited alone, without an array and Promise.all per Ready.
    const append = rd.entries.length > 0 ? this.#storage.append(rd.entries) : null;
    const save = rd.hardState !== null ? this.#storage.saveHardState(rd.hardState) : null;
    // Memory only: the commit floor (what a restart must find on disk) is saved with the next
    // meta write or by the floor timer, never on this path.
    this.#storage.noteCommitIndex(this.#raft.commitIndex);
    if (append !== null || save !== null) {
      const writeStartMs = performance.now();
      if (append !== null && save !== null) await Promise.all([append, save]);
      else await (append ?? save);
      this.#metrics.fsyncSeconds.observe((performance.now() - writeStartMs) / 1000);
    }
    if (
      (rd.entries.length > 0 || rd.snapshot !== null) && this.#storage.clusterId() === ""
    ) await this.#adoptClusterId();
    // Only now may votes and acknowledgements go out: they promise what was just made durable.
    this.#send(rd.messages);
    if (rd.snapshot !== null) {
      this.#appliedBytesSinceSnapshot = 0;
      this.#sm.restore(rd.snapshot.data);
      this.#clock.observe(this.#sm.newestActivityMs());
      this.#applied = rd.snapshot.index;
      this.#log.info("installed snapshot from leader", { index: rd.snapshot.index });
      // The snapshot may cover a member's removal and its return with a new data dir, which
      // this node never saw as entries: forget every recorded incarnation and record each peer
      // afresh from its next connection (the other members still hold theirs). Otherwise the
      // returned member would be refused here forever. Found by the simulator.
      await this.#storage.forgetPeerIncarnations(new Set());
      this.#metrics.snapshotsInstalled.inc();
      this.#metrics.snapshotBytes.set(rd.snapshot.data.length);
      for (const [index, p] of this.#proposals) {
        if (index > rd.snapshot.index) continue;
        this.#proposals.delete(index);
        replyAll(p, {
          ok: false,
          code: "TIMEOUT",
          error: "outcome unknown: the entry was replaced by a snapshot before this node saw it",
        });
      }
    }
    if (rd.snapshot !== null) this.#apply(rd.committedEntries);
    this.#snapshotInFlight = false;
    this.#handleReads(rd.readStates, rd.failedReads);
  }

  /**
   * A node without a cluster id (started with `--join`, or a data dir from before cluster ids)
   * takes its leader's, announced in the leader's hello, once it holds entries from it.
   */
  async #adoptClusterId(): Promise<void> {
    if (this.#storage.clusterId() !== "") return;
    const leader = this.#raft.leader;
    if (leader === "" || leader === this.#options.id) return;
    const clusterId = this.#gate.clusterIdOf(leader);
    if (clusterId === undefined) return;
    await this.#storage.saveClusterId(clusterId);
    this.#log.info("adopted the leader's cluster id", { leader, clusterId });
  }

  /** The log durably holds what the first leader held: the node may vote again after a restart. */
  async #clearVoteFloorWhenPassed(): Promise<void> {
    if (!this.#storage.voteFloorPending()) return;
    const floor = this.#raft.voteFloor;
    if (floor < 0 || this.#raft.stableIndex < floor) return;
    await this.#storage.saveVoteFloorPending(false);
    this.#log.info("caught up past the vote floor: this node may vote", { index: floor });
  }

  #handleReads(readStates: ReadState[], failedReads: number[]): void {
    for (const rs of readStates) {
      const read = this.#reads.get(rs.requestId);
      if (read === undefined) continue;
      read.index = rs.index;
      this.#readsAwaitingApply.push({ id: rs.requestId, index: rs.index });
    }
    for (const id of failedReads) {
      const read = this.#reads.get(id);
      if (read === undefined) continue;
      this.#reads.delete(id);
      this.#notLeader(read.reply);
    }
    this.#serveReads();
  }

  #apply(entries: Entry[]): void {
    const leader = this.#raft.leader || undefined;
    for (const e of entries) {
      if (this.#stopping) return;
      const isCommand = e.type === EntryType.Normal && e.data.length > 0;
      let results: ApplyResult[] | null = null;
      try {
        if (isCommand) results = this.#sm.applyEntry(e.data);
        if (e.type === EntryType.Config) this.#onConfApplied(e);
      } catch (err) {
        // Entries are checked before they are stored, so only a damaged log or a bug gets here.
        // Going on would make this node's state differ from the others': stop, loudly.
        this.#fatal(
          new Error(
            `cannot apply committed entry ${e.index} (term ${e.term}): ${
              err instanceof Error ? err.message : String(err)
            }; the node stops rather than diverge`,
            { cause: err },
          ),
        );
        return;
      }
      this.#applied = e.index;
      this.#appliedBytesSinceSnapshot += e.data.length;
      const p = this.#proposals.get(e.index);
      if (p === undefined) continue;
      this.#proposals.delete(e.index);
      if (p.term === e.term && e.type === EntryType.Config) {
        const conf = decodeConfState(e.data);
        this.#metrics.proposalsCommitted.inc(p.replies.length);
        replyAll(p, { ok: true, leader, data: { voters: conf.voters, learners: conf.learners } });
      } else if (results === null || p.term !== e.term || results.length !== p.replies.length) {
        this.#metrics.proposalsFailed.inc(p.replies.length);
        replyAll(p, {
          ok: false,
          code: "NOT_APPLIED",
          error: "a new leader replaced the entry before it committed; it was not applied",
          leader,
        });
      } else {
        // One answer per increment of the entry, in order (a batch's items, see command.ts).
        for (let i = 0; i < results.length; i++) {
          const result = results[i];
          if (result.ok) {
            this.#metrics.proposalsCommitted.inc();
            p.replies[i]({ ok: true, value: result.value, leader });
          } else {
            this.#metrics.proposalsFailed.inc();
            p.replies[i]({ ok: false, code: result.code, error: result.error, leader });
          }
        }
      }
    }
  }

  /** Notes the cluster-time stamps of entries this node holds: its stamps will not go below. */
  #observeStamps(entries: Entry[]): void {
    for (const e of entries) {
      if (e.type !== EntryType.Normal) continue;
      const stampMs = readStampMs(e.data);
      if (stampMs !== null) this.#clock.observe(stampMs);
    }
  }

  #onConfApplied(e: Entry): void {
    const conf = decodeConfState(e.data);
    this.#log.info("configuration committed", {
      index: e.index,
      voters: conf.voters.join(","),
      learners: conf.learners.join(",") || undefined,
    });
    const members = new Set([...conf.voters, ...conf.learners]);
    // A removed node's incarnation is forgotten, so that the id can be added back with a new
    // data dir; until then nothing from it is accepted.
    this.#storage.forgetPeerIncarnations(members).catch((err) => this.#fatal(err));
    for (const peer of this.#knownPeers) {
      if (!members.has(peer)) this.#transport.forgetPeer(peer);
    }
    this.#knownPeers = members;
    if (!members.has(this.#options.id) && e.index > 1) {
      this.#log.warn("this node is no longer a member of the group; it will not campaign");
    }
  }

  #serveReads(): void {
    if (this.#readsAwaitingApply.length === 0) return;
    const still: Array<{ id: number; index: number }> = [];
    const leader = this.#raft.leader || undefined;
    for (const r of this.#readsAwaitingApply) {
      const read = this.#reads.get(r.id);
      if (read === undefined) continue;
      if (r.index > this.#applied) {
        still.push(r);
        continue;
      }
      this.#reads.delete(r.id);
      read.reply({ ok: true, value: this.#sm.value, leader, data: { node: this.#options.id } });
    }
    this.#readsAwaitingApply = still;
  }

  #send(messages: Message[]): void {
    for (const m of messages) {
      if (m.type === MessageType.Snap) this.#snapshotSender.start(m, Date.now());
      else this.#peers.send(m.to, this.#options.group, m);
    }
  }

  #expireRequests(now: number): void {
    // Empty maps are the common case (every idle group): no iterator is made for them.
    if (this.#proposals.size > 0) this.#expireProposals(now);
    if (this.#reads.size > 0) this.#expireReads(now);
  }

  #expireProposals(now: number): void {
    for (const [index, p] of this.#proposals) {
      if (p.deadlineMs > now) continue;
      this.#proposals.delete(index);
      replyAll(p, {
        ok: false,
        code: "TIMEOUT",
        error: "outcome unknown: the increment was not committed in time",
      });
    }
  }

  #expireReads(now: number): void {
    for (const [id, r] of this.#reads) {
      if (r.deadlineMs > now) continue;
      this.#reads.delete(id);
      r.reply({ ok: false, code: "TIMEOUT", error: "the read could not be confirmed in time" });
    }
  }

  #failAll(code: "SHUTTING_DOWN", error: string): void {
    for (const p of this.#proposals.values()) replyAll(p, { ok: false, code, error });
    for (const b of this.#incrBatches) {
      for (const reply of b.replies) reply({ ok: false, code, error });
    }
    this.#incrBatches = [];
    this.#incrQueued = 0;
    for (const r of this.#reads.values()) r.reply({ ok: false, code, error });
    this.#proposals.clear();
    this.#reads.clear();
    this.#readsAwaitingApply = [];
  }

  #logRoleChange(): void {
    const role = this.#raft.role;
    const term = this.#raft.term;
    const leader = this.#raft.leader;
    if (role === this.#lastRole && term === this.#lastTerm && leader === this.#lastLeader) return;
    if (leader !== this.#lastLeader) this.#metrics.leaderChanges.inc();
    if (role !== this.#lastRole || term !== this.#lastTerm) {
      this.#log.info(`became ${role}`, { term, leader: leader || undefined });
    } else {
      this.#log.info("leader changed", { term, leader: leader || "none" });
    }
    this.#lastRole = role;
    this.#lastTerm = term;
    this.#lastLeader = leader;
  }

  #fatal(err: unknown): void {
    if (this.#fatalSeen) return;
    this.#fatalSeen = true;
    this.#log.error("fatal error; stopping the node", { error: err as Error });
    this.#stopping = true;
    const finish = async () => {
      this.#failAll("SHUTTING_DOWN", "the node stopped after a fatal error");
      await this.#storage.close().catch(() => {});
    };
    // The host sees `closed` reject and stops (the port, the peers, its other groups).
    finish().finally(() => this.#rejectClosed(err as Error));
  }
}

/**
 * Answers the bootstrap check's `identity` request (args `id`, `incarnation`): whether this node
 * has recorded an incarnation for `id`, i.e. ever took Raft traffic from it. `raft` is null
 * while the node is starting (and perhaps running the same check itself).
 */
export function identityReply(
  req: ClientRequest,
  storage: DataDir,
  raft: Raft | null,
): ClientResponse {
  const id = req.args?.id;
  const incarnation = req.args?.incarnation;
  if (
    typeof id !== "string" || id === "" || typeof incarnation !== "string" ||
    !IDENTITY_HEX_PATTERN.test(incarnation)
  ) {
    return {
      ok: false,
      code: "BAD_REQUEST",
      error: "identity needs args.id (HOST:PORT) and args.incarnation (16 hex digits)",
    };
  }
  const answer = answerIdentity(id, storage, raft);
  return { ok: true, data: { ...answer } };
}

/**
 * Runs the bootstrap check (see `bootstrap_check.ts`) against the other `--conf` members; throws
 * with a one-line message when this node must not bootstrap.
 */
async function checkBeforeBootstrap(
  options: NodeOptions,
  storage: DataDir,
  clusterId: string,
): Promise<boolean> {
  const others = options.conf.filter((m) => m !== options.id);
  if (others.length === 0) return false;
  let history = false;
  const request: ClientRequest = {
    op: "identity",
    args: { id: options.id, incarnation: storage.incarnation() },
  };
  options.logger.info("checking with the other initial members before bootstrapping", {
    members: others.join(","),
  });
  const decision = await runBootstrapCheck({
    self: options.id,
    members: options.conf,
    clusterId,
    timeoutMs: (options.bootstrapTimeoutSecs ?? 300) * 1000,
    dataDir: options.dataRoot ?? storage.path,
    logger: options.logger,
    ask: async (member) => {
      let conn: RpcClientConnection | null = null;
      try {
        conn = await RpcClientConnection.connect(member, {
          connectTimeoutMs: IDENTITY_PROBE_TIMEOUT_MS,
          tls: options.security?.tls?.client,
        });
        const response = await conn.call(options.group, request, IDENTITY_PROBE_TIMEOUT_MS);
        const answer = parseIdentityAnswer(response);
        if (answer !== null && !answer.fresh) history = true;
        return answer;
      } catch {
        return null;
      } finally {
        await conn?.close();
      }
    },
  });
  if (decision.action !== "bootstrap") throw new Error(decision.message);
  return history;
}

/** The process's memory use, in bytes, for `status`. */
function memoryFields(): Record<string, number> {
  const m = Deno.memoryUsage();
  return { rssBytes: m.rss, heapUsedBytes: m.heapUsed, heapTotalBytes: m.heapTotal };
}

/** Starts a node; see {@linkcode CounterNode.start}. */
export function startNode(options: NodeOptions): Promise<CounterNode> {
  return CounterNode.start(options);
}
