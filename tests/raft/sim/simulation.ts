/**
 * Deterministic simulation of a whole counter cluster: Raft nodes with simulated disks, an
 * unreliable network, crashes, partitions, snapshots, membership changes and clients, all driven
 * by one seed on a simulated clock.
 *
 * Each node runs the same shell loop as the real server: take a Ready when none is outstanding,
 * send its early messages, write it to disk (which takes simulated time), and only when the write
 * is durable send the rest, apply, and advance. The {@linkcode Checker} looks at every step.
 *
 * Time is in simulated microseconds. Nothing here reads a real clock or `Math.random`.
 *
 * @module
 */

import {
  bootstrapState,
  type ConfChange,
  type ConfState,
  type Entry,
  InvariantError,
  type Message,
  MessageType,
  type NodeId,
  Raft,
  type RaftOptions,
  type Ready,
  Role,
  type Snapshot,
} from "../../../lib/raft/mod.ts";
import { Check, Checker, CheckFailure, type CheckName, type LogView } from "./checker.ts";
import { deltaOf, encodeIncrement, encodeValue, proposalIdOf, valueOf } from "./codec.ts";
import { DiskError, isEmptyWrite, SimDisk, writePieceCount } from "./disk.ts";
import { EventQueue } from "./event_queue.ts";
import { Prng } from "./prng.ts";
import { formatMessage, formatReady, TraceHash, TraceRing } from "./trace.ts";

/**
 * A deliberately broken shell, used to prove that the checks catch real mistakes. Never set in a
 * normal run.
 */
export type Mutation =
  /** Sends every message of a Ready before its write is durable. */
  | "send-before-persist"
  /** Loses the persisted vote when a node crashes. */
  | "forget-vote-on-crash"
  /** Node n2's state machine adds one too many to odd-numbered proposals. */
  | "corrupt-apply"
  /** Serves reads from the local state machine without a ReadIndex round. */
  | "stale-read";

/** What to simulate. Everything not given is chosen from the seed. */
export interface SimOptions {
  /** The seed: the same seed and options replay the same run. */
  seed: number;
  /** Number of initial voters (3 or 5); default chosen from the seed. */
  nodes?: number;
  /** Events in the fault phase, before faults stop and the cluster must settle. Default 4000. */
  events?: number;
  /** Nodes take snapshots and compact their logs. Default true. */
  snapshots?: boolean;
  /** Random membership changes and leadership transfers. Default: on for half the seeds. */
  membership?: boolean;
  /** Receives every trace line as it happens (the `--verbose` replay). */
  trace?: (line: string) => void;
  /** A deliberately broken shell (see {@linkcode Mutation}). */
  mutation?: Mutation;
  /** Clients ask the leader for lease reads. Default: on for 30% of the seeds. */
  leaseReads?: boolean;
}

/** Parameters of one run, all drawn from its seed. */
export interface SimParams {
  /** Initial voters. */
  voters: number;
  /** Node processes (voters plus spares that membership changes may add). */
  pool: number;
  /** Raft election timeout in ticks. */
  electionTicks: number;
  /** Raft heartbeat interval in ticks. */
  heartbeatTicks: number;
  /** PreVote enabled. */
  preVote: boolean;
  /** CheckQuorum enabled. */
  checkQuorum: boolean;
  /** AppendEntries in flight per follower. */
  inflightMax: number;
  /** Entry bytes per AppendEntries. */
  msgBytesMax: number;
  /** Committed entries per Ready. */
  applyBatchMax: number;
  /** Tick period of each node (µs): nodes' clocks run at slightly different rates. */
  tickUs: number[];
  /** Random extra delay of each tick (µs). */
  tickJitterUsMax: number;
  /** Network delay range (µs). */
  netDelayUsMin: number;
  /** Network delay range (µs). */
  netDelayUsMax: number;
  /** Messages on one link arrive in the order sent (as over one TCP connection). */
  netFifo: boolean;
  /** Probability a message is lost. */
  netLoss: number;
  /** Probability a message is delivered twice. */
  netDup: number;
  /** Disk write latency range (µs). */
  diskUsMin: number;
  /** Disk write latency range (µs). */
  diskUsMax: number;
  /** Probability that a crash keeps a random prefix of the write in flight. */
  tornWrite: number;
  /** Mean time between fault events (µs). */
  chaosUsMean: number;
  /** Relative weights of the fault actions. */
  weights: Record<ChaosAction, number>;
  /** Longest time a crashed node stays down (µs). */
  downUsMax: number;
  /** Longest time a partition lasts (µs). */
  partitionUsMax: number;
  /** Mean time between client proposals (µs). */
  proposeUsMean: number;
  /** Mean time between client reads (µs). */
  readUsMean: number;
  /** Probability that a client read asks for a lease read (served by the leader without a round). */
  leaseReads: number;
  /** Snapshots enabled. */
  snapshots: boolean;
  /** Membership changes enabled. */
  membership: boolean;
  /** Events in the fault phase. */
  events: number;
}

type ChaosAction = "crash" | "bounce" | "partition" | "snapshot" | "confChange" | "transfer";

/** Counts of what happened in a run. */
export interface SimStats {
  /** Events processed. */
  events: number;
  /** Messages sent. */
  messages: number;
  /** Messages dropped (loss, partition, dead receiver). */
  dropped: number;
  /** Leaders elected. */
  elections: number;
  /** Highest term reached. */
  termMax: number;
  /** Node crashes. */
  crashes: number;
  /** Crashes that tore a write in flight. */
  tornWrites: number;
  /** Partitions started. */
  partitions: number;
  /** Snapshots taken by nodes. */
  snapshotsTaken: number;
  /** Snapshots installed from a leader. */
  snapshotsInstalled: number;
  /** Membership changes accepted by a leader. */
  confChanges: number;
  /** Leadership transfers started. */
  transfers: number;
  /** Increments proposed and accepted by a leader. */
  proposed: number;
  /** Increments acknowledged to the client. */
  acked: number;
  /** Increments that certainly failed. */
  failed: number;
  /** Increments whose outcome the client never learned (proposer crashed, snapshot skipped it). */
  unknown: number;
  /** Reads answered. */
  reads: number;
  /** Reads refused (no leader, leadership lost). */
  readsFailed: number;
  /** Entries applied, over all nodes. */
  applied: number;
  /** Last index applied by the final leader. */
  finalIndex: number;
}

/** The outcome of one simulated run. */
export interface SimResult {
  /** The seed. */
  seed: number;
  /** Initial voters. */
  nodes: number;
  /** Run parameters drawn from the seed. */
  params: SimParams;
  /** Null when every check held; otherwise what failed. */
  failure: SimFailure | null;
  /** What happened. */
  stats: SimStats;
  /** Hash of the whole event sequence: equal for equal runs. */
  traceHash: string;
  /** Simulated time at the end (ms). */
  simMs: number;
}

/** A failed check, with the evidence needed to replay and debug it. */
export interface SimFailure {
  /** The property that broke. */
  check: CheckName;
  /** What the check saw. */
  message: string;
  /** The last trace lines before the failure. */
  recent: string[];
  /** Command that replays the run. */
  replay: string;
  /** The original error (for its stack). */
  error: unknown;
}

/** A client's increment, from proposal to answer. */
interface Proposal {
  id: number;
  node: number;
  epoch: number;
  index: number;
  term: number;
  delta: bigint;
  status: "pending" | "acked" | "failed" | "unknown";
}

/** A client's linearizable read. */
interface Read {
  id: number;
  node: number;
  /** Highest acknowledged increment index when the read was issued. */
  ackedIndexMax: number;
  /** Read index from Raft; -1 until it arrives. */
  index: number;
  /** The answer; null until served. */
  value: bigint | null;
}

interface SimNode {
  id: NodeId;
  index: number;
  disk: SimDisk;
  prng: Prng;
  up: boolean;
  /** Incremented by every crash, so events of a previous life are ignored. */
  epoch: number;
  raft: Raft | null;
  counter: bigint;
  applied: number;
  /** The Ready whose write is in flight. */
  write: Ready | null;
  /** Term this node last led in (this life), 0 for none. */
  leaderTerm: number;
  /** Highest term seen in this life. */
  termSeen: number;
  /** Highest commit index already checked for durability (this life). */
  commitChecked: number;
  /** This life's proposals by log index. */
  proposals: Map<number, Proposal[]>;
  /** This life's reads by id. */
  reads: Map<number, Read>;
  /** Reads with a read index, waiting for the state machine to reach it. */
  readsWaiting: Read[];
}

const enum Kind {
  Tick = 1,
  Deliver = 2,
  Disk = 3,
  Chaos = 4,
  Restart = 5,
  Heal = 6,
  Propose = 7,
  ReadReq = 8,
  Report = 9,
}

type SimEvent =
  | { kind: Kind.Tick; node: number; epoch: number }
  | { kind: Kind.Deliver; msg: Message }
  | { kind: Kind.Disk; node: number; epoch: number }
  | { kind: Kind.Chaos }
  | { kind: Kind.Restart; node: number }
  | { kind: Kind.Heal; generation: number }
  | { kind: Kind.Propose }
  | { kind: Kind.ReadReq }
  | { kind: Kind.Report; node: number; epoch: number; to: NodeId; ok: boolean };

const EVENTS_DEFAULT = 4000;
/** How long the cluster has to settle once faults stop (µs of simulated time). */
const SETTLE_US_MAX = 60_000_000;
/** Ready rounds one input may cause before the shell decides the node is looping. */
const READY_ROUNDS_MAX = 10_000;
const TRACE_LINES = 40;

/** Node id of the i-th node (0-based). */
export function nodeId(i: number): NodeId {
  return `n${i + 1}`;
}

/** Draws a run's parameters from `options.seed`; `options` fields override. */
export function simParams(options: SimOptions): SimParams {
  const r = new Prng(options.seed ^ 0x5eed5eed);
  // Draw every value even when overridden, so that an override changes nothing else.
  const votersDrawn = r.chance(0.5) ? 3 : 5;
  const membershipDrawn = r.chance(0.5);
  const voters = options.nodes ?? votersDrawn;
  const membership = options.membership ?? membershipDrawn;
  const pool = membership ? 5 : voters;
  const electionTicksDrawn = r.int(5, 15);
  const heartbeatTicks = r.int(1, 3);
  const calm = r.chance(0.2);
  // Lease reads are only safe while clocks drift less than the lease's allowance (10% of an
  // election timeout, of which the follower's tick rounding can eat one tick): runs with lease
  // reads keep drift and jitter small and election timeouts long.
  const leaseDrawn = r.chance(0.3);
  const lease = options.leaseReads ?? leaseDrawn;
  const tickBase = 10_000;
  const drift = lease ? 0.005 : 0.05;
  const tickUs: number[] = [];
  for (let i = 0; i < 5; i++) tickUs.push(Math.round(tickBase * r.range(1 - drift, 1 + drift)));
  const tickJitterUsMax = r.int(0, 500);
  const electionTicks = lease ? electionTicksDrawn + 10 : electionTicksDrawn;
  const checkQuorumDrawn = r.chance(0.8);
  return {
    voters,
    pool,
    electionTicks,
    heartbeatTicks: Math.min(heartbeatTicks, electionTicks - 1),
    // Without PreVote and CheckQuorum a removed node disrupts forever (thesis §4.2.3), so only
    // runs without membership changes may turn them off.
    preVote: r.chance(0.8) || membership,
    checkQuorum: checkQuorumDrawn || membership || lease,
    inflightMax: r.pick([1, 2, 4, 16, 256]),
    msgBytesMax: r.pick([1, 64, 512, 1 << 20]),
    applyBatchMax: r.pick([1, 3, 16, 4096]),
    tickUs: tickUs.slice(0, pool),
    tickJitterUsMax: lease ? 0 : tickJitterUsMax,
    netDelayUsMin: r.int(100, 1000),
    netDelayUsMax: r.pick([2_000, 5_000, 15_000, 40_000]),
    netFifo: r.chance(0.5),
    netLoss: calm ? 0 : r.pick([0, 0.01, 0.05, 0.15]),
    netDup: calm ? 0 : r.pick([0, 0.01, 0.05]),
    diskUsMin: r.int(50, 500),
    diskUsMax: r.pick([1_000, 3_000, 10_000, 30_000]),
    tornWrite: r.pick([0, 0.5, 1]),
    chaosUsMean: r.pick([30_000, 100_000, 300_000]),
    weights: {
      crash: calm ? 0 : r.pick([0, 1, 3]),
      // A crash followed by an immediate restart, as under a process supervisor.
      bounce: calm ? 0 : r.pick([0, 1, 3]),
      partition: calm ? 0 : r.pick([0, 1, 3]),
      snapshot: r.pick([1, 3, 6]),
      confChange: r.pick([1, 3]),
      transfer: r.pick([0, 1]),
    },
    downUsMax: r.pick([50_000, 300_000, 2_000_000]),
    partitionUsMax: r.pick([50_000, 500_000, 3_000_000]),
    proposeUsMean: r.pick([2_000, 10_000, 40_000]),
    readUsMean: r.pick([5_000, 20_000, 80_000]),
    leaseReads: lease ? 0.5 : 0,
    snapshots: options.snapshots ?? true,
    membership,
    events: options.events ?? EVENTS_DEFAULT,
  };
}

/** The replay command for a run. */
export function replayCommand(options: SimOptions, params: SimParams): string {
  const parts = ["deno run -A tests/raft/simulate.ts", `--seed ${options.seed}`];
  parts.push(`--nodes ${params.voters}`);
  if (options.events !== undefined) parts.push(`--events ${options.events}`);
  if (options.snapshots === false) parts.push("--no-snapshots");
  if (options.membership !== undefined) {
    parts.push(options.membership ? "--membership" : "--no-membership");
  }
  if (options.mutation !== undefined) parts.push(`--mutation ${options.mutation}`);
  if (options.leaseReads !== undefined) {
    parts.push(options.leaseReads ? "--lease-reads" : "--no-lease-reads");
  }
  parts.push("--verbose");
  return parts.join(" ");
}

/** Runs one simulation to the end (or to the first failed check). */
export function simulate(options: SimOptions): SimResult {
  return new Simulation(options).run();
}

/** One simulated cluster. Use {@linkcode simulate} unless you need to poke at it. */
export class Simulation {
  readonly #options: SimOptions;
  readonly #params: SimParams;
  readonly #rng: Prng;
  readonly #queue = new EventQueue<SimEvent>();
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<NodeId, SimNode>();
  readonly #checker = new Checker({ deltaOf, proposalIdOf, valueOf });
  readonly #ring = new TraceRing(TRACE_LINES);
  readonly #hash = new TraceHash();
  readonly #trace: ((line: string) => void) | undefined;
  readonly #stats: SimStats = {
    events: 0,
    messages: 0,
    dropped: 0,
    elections: 0,
    termMax: 0,
    crashes: 0,
    tornWrites: 0,
    partitions: 0,
    snapshotsTaken: 0,
    snapshotsInstalled: 0,
    confChanges: 0,
    transfers: 0,
    proposed: 0,
    acked: 0,
    failed: 0,
    unknown: 0,
    reads: 0,
    readsFailed: 0,
    applied: 0,
    finalIndex: 0,
  };
  /** `#blocked[from][to]`: messages on that link are dropped. */
  #blocked: boolean[][] = [];
  /** `#linkDueUs[from][to]`: delivery time of the latest message on that link (FIFO links). */
  #linkDueUs: number[][] = [];
  #partitionGeneration = 0;
  #netLoss: number;
  #netDup: number;
  #netFifo: boolean;
  #faults = true;
  #proposalSeq = 0;
  #readSeq = 0;
  /** Acknowledged proposals: id -> index. */
  readonly #acked = new Map<number, number>();

  /** Sets up a cluster for `options`; nothing runs until {@linkcode Simulation.run}. */
  constructor(options: SimOptions) {
    this.#options = options;
    this.#params = simParams(options);
    this.#rng = new Prng(options.seed);
    this.#trace = options.trace;
    this.#netLoss = this.#params.netLoss;
    this.#netDup = this.#params.netDup;
    this.#netFifo = this.#params.netFifo;
    const p = this.#params;
    const voters: NodeId[] = [];
    for (let i = 0; i < p.voters; i++) voters.push(nodeId(i));
    for (let i = 0; i < p.pool; i++) {
      // Spares start empty, as a freshly installed server does before it is added.
      const initial = i < p.voters
        ? bootstrapState({ voters, learners: [] })
        : { hardState: { term: 0, vote: "" }, snapshot: null, entries: [] };
      const node: SimNode = {
        id: nodeId(i),
        index: i,
        disk: new SimDisk(initial),
        prng: this.#rng.fork(),
        up: false,
        epoch: 0,
        raft: null,
        counter: 0n,
        applied: 0,
        write: null,
        leaderTerm: 0,
        termSeen: 0,
        commitChecked: 0,
        proposals: new Map(),
        reads: new Map(),
        readsWaiting: [],
      };
      this.#nodes.push(node);
      this.#byId.set(node.id, node);
      this.#blocked.push(new Array(p.pool).fill(false));
      this.#linkDueUs.push(new Array(p.pool).fill(0));
    }
  }

  /** The run's parameters. */
  get params(): SimParams {
    return this.#params;
  }

  /** Runs the fault phase, then lets the cluster settle and checks liveness. */
  run(): SimResult {
    let failure: SimFailure | null = null;
    try {
      this.#note(() => `seed ${this.#options.seed}: ${JSON.stringify(this.#params)}`);
      for (const node of this.#nodes) this.#start(node);
      this.#schedule(this.#expDelay(this.#params.chaosUsMean), { kind: Kind.Chaos });
      this.#schedule(this.#expDelay(this.#params.proposeUsMean), { kind: Kind.Propose });
      this.#schedule(this.#expDelay(this.#params.readUsMean), { kind: Kind.ReadReq });
      while (this.#stats.events < this.#params.events) {
        if (!this.#step()) break;
      }
      this.#settle();
    } catch (error) {
      failure = this.#failure(error);
    }
    return {
      seed: this.#options.seed,
      nodes: this.#params.voters,
      params: this.#params,
      failure,
      stats: this.#stats,
      traceHash: this.#hash.hex(),
      simMs: this.#queue.now / 1000,
    };
  }

  #failure(error: unknown): SimFailure {
    let check: CheckName = Check.shell;
    if (error instanceof CheckFailure) check = error.check;
    else if (error instanceof InvariantError) check = Check.raftInvariant;
    else if (error instanceof DiskError) check = Check.durability;
    const message = error instanceof Error ? error.message : String(error);
    this.#note(() => `FAILED ${message}`);
    return {
      check,
      message,
      recent: this.#ring.lines(),
      replay: replayCommand(this.#options, this.#params),
      error,
    };
  }

  // ---------------------------------------------------------------- event loop

  /** Simulated time (µs). */
  get #now(): number {
    return this.#queue.now;
  }

  #schedule(delayUs: number, event: SimEvent): void {
    this.#queue.push(this.#now + Math.max(0, Math.round(delayUs)), event);
  }

  #expDelay(meanUs: number): number {
    return 1 - Math.log(1 - this.#rng.float()) * meanUs;
  }

  /** Processes one event; false when none is left. */
  #step(): boolean {
    const ev = this.#queue.pop();
    if (ev === undefined) return false;
    this.#stats.events++;
    this.#hash.num(this.#now);
    this.#hash.num(ev.kind);
    switch (ev.kind) {
      case Kind.Tick:
        this.#onTick(ev.node, ev.epoch);
        break;
      case Kind.Deliver:
        this.#onDeliver(ev.msg);
        break;
      case Kind.Disk:
        this.#onDiskDone(ev.node, ev.epoch);
        break;
      case Kind.Chaos:
        this.#onChaos();
        break;
      case Kind.Restart:
        this.#hash.num(ev.node);
        if (!this.#nodes[ev.node].up) this.#start(this.#nodes[ev.node]);
        break;
      case Kind.Heal:
        if (ev.generation === this.#partitionGeneration) this.#heal();
        break;
      case Kind.Propose:
        if (!this.#faults) break;
        this.#clientPropose();
        this.#schedule(this.#expDelay(this.#params.proposeUsMean), { kind: Kind.Propose });
        break;
      case Kind.ReadReq:
        if (!this.#faults) break;
        this.#clientRead();
        this.#schedule(this.#expDelay(this.#params.readUsMean), { kind: Kind.ReadReq });
        break;
      case Kind.Report:
        this.#onReport(ev.node, ev.epoch, ev.to, ev.ok);
        break;
    }
    return true;
  }

  /** Records a trace line (formatted lazily unless tracing). */
  #note(line: () => string): void {
    const t = this.#now;
    const stamped = () => `${(t / 1000).toFixed(3).padStart(10)}ms ${line()}`;
    this.#ring.push(stamped);
    if (this.#trace !== undefined) this.#trace(stamped());
  }

  // ---------------------------------------------------------------- node life

  #start(node: SimNode): void {
    const p = this.#params;
    const options: RaftOptions = {
      id: node.id,
      electionTicks: p.electionTicks,
      heartbeatTicks: p.heartbeatTicks,
      random: () => node.prng.float(),
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      inflightMax: p.inflightMax,
      msgBytesMax: p.msgBytesMax,
      applyBatchMax: p.applyBatchMax,
      // As the real node does: a restarted node honours a lease it may have promised.
      respectLeaseOnStart: true,
    };
    const initial = node.disk.recover();
    node.raft = new Raft(options, initial);
    node.up = true;
    node.counter = initial.snapshot === null ? 0n : valueOf(initial.snapshot);
    node.applied = initial.snapshot === null ? 0 : initial.snapshot.index;
    node.write = null;
    node.leaderTerm = 0;
    node.termSeen = node.raft.term;
    node.commitChecked = node.applied;
    node.proposals = new Map();
    node.reads = new Map();
    node.readsWaiting = [];
    this.#checker.nodeRestarted(node.id, node.raft.term, initial.snapshot);
    // Recovered entries must agree with every other log (they were checked when written).
    const s = initial.snapshot;
    this.#checker.entriesAppended(
      node.id,
      s === null ? 0 : s.index,
      s === null ? 0 : s.term,
      initial.entries,
    );
    const last = node.disk.lastIndex();
    this.#note(() =>
      `${node.id} start: term ${initial.hardState.term} vote "${initial.hardState.vote}" ` +
      `snapshot ${s === null ? 0 : s.index} last ${last}`
    );
    this.#schedule(this.#rng.int(0, this.#params.tickUs[node.index]), {
      kind: Kind.Tick,
      node: node.index,
      epoch: node.epoch,
    });
    this.#afterInput(node);
  }

  #crash(node: SimNode): void {
    const rd = node.write;
    let kept = "";
    if (rd !== null && this.#rng.chance(this.#params.tornWrite)) {
      const pieces = this.#rng.int(0, writePieceCount(rd) - 1);
      node.disk.write(rd, pieces);
      kept = ` (torn write: ${pieces} of ${writePieceCount(rd)} pieces kept)`;
      this.#stats.tornWrites++;
    }
    if (this.#options.mutation === "forget-vote-on-crash") {
      node.disk.hardState = { term: node.disk.hardState.term, vote: "" };
    }
    for (const list of node.proposals.values()) {
      for (const p of list) this.#resolve(p, "unknown");
    }
    node.up = false;
    node.raft = null;
    node.write = null;
    node.epoch++;
    this.#stats.crashes++;
    this.#note(() => `${node.id} CRASH${kept}`);
  }

  #onTick(index: number, epoch: number): void {
    const node = this.#nodes[index];
    if (!node.up || node.epoch !== epoch) return;
    this.#hash.num(index);
    node.raft!.tick();
    this.#afterInput(node);
    const jitter = this.#params.tickJitterUsMax === 0
      ? 0
      : this.#rng.int(0, this.#params.tickJitterUsMax);
    this.#schedule(this.#params.tickUs[index] + jitter, { kind: Kind.Tick, node: index, epoch });
  }

  /** Runs after every input to a node: role checks, then the Ready loop. */
  #afterInput(node: SimNode): void {
    this.#observe(node);
    this.#pump(node);
  }

  #observe(node: SimNode): void {
    const r = node.raft;
    if (r === null) return;
    const term = r.term;
    if (term < node.termSeen) {
      throw new CheckFailure(
        Check.shell,
        `${node.id} went back from term ${node.termSeen} to ${term}`,
      );
    }
    node.termSeen = term;
    if (term > this.#stats.termMax) this.#stats.termMax = term;
    if (r.role === Role.Leader && node.leaderTerm !== term) {
      node.leaderTerm = term;
      // The commit index it learned as a follower was counted by an earlier leader (and checked
      // there); from now on its increases are this leader's own counting.
      node.commitChecked = r.commitIndex;
      this.#stats.elections++;
      const last = r.lastIndex;
      this.#note(() => `${node.id} became LEADER of term ${term} (last index ${last})`);
      const view: LogView = {
        termAt: (i) => r.termAt(i),
        snapshotIndex: r.status().snapshotIndex,
      };
      this.#checker.leaderElected(node.id, term, view);
    }
  }

  // ---------------------------------------------------------------- the shell loop

  #pump(node: SimNode): void {
    for (let rounds = 0; rounds < READY_ROUNDS_MAX; rounds++) {
      if (!node.up || node.write !== null) return;
      const r = node.raft!;
      if (!r.hasReady()) return;
      const rd = r.ready();
      this.#onReady(node, rd);
      if (!isEmptyWrite(rd)) {
        node.write = rd;
        const p = this.#params;
        this.#schedule(this.#rng.int(p.diskUsMin, p.diskUsMax), {
          kind: Kind.Disk,
          node: node.index,
          epoch: node.epoch,
        });
        return;
      }
      this.#completeReady(node, rd);
      this.#observe(node);
    }
    throw new CheckFailure(Check.shell, `${node.id} produced Readies without end`);
  }

  /** A Ready was just taken: check it, note its reads, send what may go before the write. */
  #onReady(node: SimNode, rd: Ready): void {
    const r = node.raft!;
    this.#note(() => `${node.id} ready: ${formatReady(rd)}`);
    if (rd.snapshot !== null && rd.entries.length > 0) {
      if (rd.entries[0].index !== rd.snapshot.index + 1) {
        throw new CheckFailure(
          Check.durability,
          `${node.id} Ready holds snapshot ${rd.snapshot.index} and entries from ` +
            `${rd.entries[0].index}`,
        );
      }
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0].index;
      this.#checker.entriesAppended(node.id, first - 1, r.termAt(first - 1), rd.entries);
    }
    // A leader exposes its commit index in this Ready (applying, App and Heartbeat messages):
    // it must be durable on a majority of the configuration it was counted in.
    if (node.leaderTerm === r.term && r.commitIndex > node.commitChecked) {
      const c = r.commitIndex;
      const confs: ConfState[] = [r.conf, r.confAt(c)];
      this.#checker.commitExposed(
        node.id,
        c,
        r.termAt(c)!,
        confs,
        (id) => this.#byId.get(id)?.disk,
      );
      node.commitChecked = c;
    }
    for (const rs of rd.readStates) {
      const read = node.reads.get(rs.requestId);
      if (read === undefined || read.index >= 0) continue;
      this.#checker.readIndexReturned(node.id, read.id, read.ackedIndexMax, rs.index);
      read.index = rs.index;
      node.readsWaiting.push(read);
    }
    for (const id of rd.failedReads) {
      if (node.reads.delete(id)) this.#stats.readsFailed++;
    }
    for (const m of rd.messagesEarly) this.#send(node, m);
    if (this.#options.mutation === "send-before-persist") {
      for (const m of rd.messages) this.#send(node, m);
    }
  }

  #onDiskDone(index: number, epoch: number): void {
    const node = this.#nodes[index];
    if (!node.up || node.epoch !== epoch || node.write === null) return;
    this.#hash.num(index);
    const rd = node.write;
    node.write = null;
    node.disk.write(rd);
    this.#note(() => `${node.id} write durable`);
    this.#completeReady(node, rd);
    this.#afterInput(node);
  }

  /** The Ready's write is durable: send, apply, advance. */
  #completeReady(node: SimNode, rd: Ready): void {
    if (this.#options.mutation !== "send-before-persist") {
      for (const m of rd.messages) this.#send(node, m);
    }
    if (rd.snapshot !== null) this.#applySnapshot(node, rd.snapshot);
    for (const e of rd.committedEntries) this.#apply(node, e);
    node.raft!.advance(rd);
    this.#serveReads(node);
  }

  #applySnapshot(node: SimNode, s: Snapshot): void {
    node.counter = valueOf(s);
    node.applied = s.index;
    this.#stats.snapshotsInstalled++;
    const value = node.counter;
    this.#note(() => `${node.id} installed snapshot ${s.index}/t${s.term} value ${value}`);
    this.#checker.snapshotApplied(node.id, node.raft!.term, s);
    // Proposals the snapshot jumped over: the proposer never learns what became of them.
    for (const [index, list] of node.proposals) {
      if (index > s.index) continue;
      for (const p of list) this.#resolve(p, "unknown");
      node.proposals.delete(index);
    }
  }

  #apply(node: SimNode, e: Entry): void {
    let delta = deltaOf(e);
    const id = proposalIdOf(e);
    if (this.#options.mutation === "corrupt-apply" && node.index === 1 && id % 2 === 1) delta++;
    node.counter = BigInt.asIntN(64, node.counter + delta);
    node.applied = e.index;
    this.#stats.applied++;
    this.#checker.entryApplied(node.id, node.raft!.term, e, node.counter);
    const waiting = node.proposals.get(e.index);
    if (waiting === undefined) return;
    node.proposals.delete(e.index);
    for (const p of waiting) {
      if (p.term !== e.term) {
        this.#resolve(p, "failed");
        continue;
      }
      if (id !== p.id) {
        throw new CheckFailure(
          Check.logMatching,
          `${node.id} proposed ${p.id} at index ${p.index} term ${p.term}, applied proposal ${id} there`,
        );
      }
      this.#checker.proposalAcked(p.id, p.index, p.term);
      this.#acked.set(p.id, p.index);
      this.#resolve(p, "acked");
      this.#note(() =>
        `${node.id} ACK proposal ${p.id} (delta ${p.delta}) at ${p.index}/t${p.term}`
      );
    }
  }

  #resolve(p: Proposal, status: "acked" | "failed" | "unknown"): void {
    if (p.status !== "pending") return;
    p.status = status;
    this.#stats[status]++;
  }

  #serveReads(node: SimNode): void {
    if (node.readsWaiting.length === 0) return;
    const still: Read[] = [];
    for (const read of node.readsWaiting) {
      if (read.index > node.applied) {
        still.push(read);
        continue;
      }
      this.#serveRead(node, read, node.applied);
    }
    node.readsWaiting = still;
  }

  #serveRead(node: SimNode, read: Read, index: number): void {
    read.value = node.counter;
    node.reads.delete(read.id);
    this.#stats.reads++;
    this.#note(() => `${node.id} READ ${read.id} = ${read.value} at index ${index}`);
    this.#checker.readServed(node.id, read.id, read.ackedIndexMax, index, node.counter);
  }

  // ---------------------------------------------------------------- network

  #send(node: SimNode, m: Message): void {
    this.#checker.messageSent(node.id, m, node.disk);
    this.#stats.messages++;
    const to = this.#byId.get(m.to);
    if (to === undefined) {
      this.#stats.dropped++;
      return;
    }
    // The wire copies: a receiver must not share objects with the sender.
    const copy = cloneMessage(m);
    if (this.#blocked[node.index][to.index] || this.#rng.chance(this.#netLoss)) {
      this.#drop(copy);
      return;
    }
    const copies = this.#rng.chance(this.#netDup) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      this.#schedule(this.#netDelay(node.index, to.index), {
        kind: Kind.Deliver,
        msg: i === 0 ? copy : cloneMessage(m),
      });
    }
  }

  /** Delay of a message on link `from` -> `to`: mostly short, with a long tail. */
  #netDelay(from: number, to: number): number {
    const p = this.#params;
    const u = this.#rng.float();
    let due = this.#now +
      Math.round(p.netDelayUsMin + (p.netDelayUsMax - p.netDelayUsMin) * u * u * u);
    if (this.#netFifo) {
      due = Math.max(due, this.#linkDueUs[from][to]);
      this.#linkDueUs[from][to] = due;
    }
    return due - this.#now;
  }

  #drop(m: Message): void {
    this.#stats.dropped++;
    // The transport tells the leader when a snapshot could not be delivered.
    if (m.type === MessageType.Snap) this.#report(m.from, m.to, false);
  }

  #report(from: NodeId, to: NodeId, ok: boolean): void {
    const sender = this.#byId.get(from)!;
    if (!sender.up) return;
    this.#schedule(this.#rng.int(0, 1000), {
      kind: Kind.Report,
      node: sender.index,
      epoch: sender.epoch,
      to,
      ok,
    });
  }

  #onReport(index: number, epoch: number, to: NodeId, ok: boolean): void {
    const node = this.#nodes[index];
    if (!node.up || node.epoch !== epoch) return;
    this.#note(() => `${node.id} snapshot to ${to} reported ${ok ? "sent" : "failed"}`);
    node.raft!.reportSnapshot(to, ok);
    this.#afterInput(node);
  }

  #onDeliver(m: Message): void {
    const from = this.#byId.get(m.from)!;
    const to = this.#byId.get(m.to)!;
    this.#hash.num(m.type);
    this.#hash.num(from.index);
    this.#hash.num(to.index);
    this.#hash.num(m.term);
    this.#hash.num(m.index);
    this.#hash.num(m.entries.length);
    if (this.#blocked[from.index][to.index] || !to.up) {
      this.#note(() => `drop ${formatMessage(m)}`);
      this.#drop(m);
      return;
    }
    this.#note(() => formatMessage(m));
    to.raft!.step(m);
    this.#afterInput(to);
    if (m.type === MessageType.Snap) this.#report(m.from, m.to, true);
  }

  #heal(): void {
    for (const row of this.#blocked) row.fill(false);
    this.#note(() => `HEAL`);
  }

  // ---------------------------------------------------------------- faults

  #onChaos(): void {
    if (!this.#faults) return;
    const w = this.#params.weights;
    const actions: ChaosAction[] = [
      "crash",
      "bounce",
      "partition",
      "snapshot",
      "confChange",
      "transfer",
    ];
    const weights = [
      w.crash,
      w.bounce,
      w.partition,
      this.#params.snapshots ? w.snapshot : 0,
      this.#params.membership ? w.confChange : 0,
      this.#params.membership ? w.transfer : 0,
    ];
    const i = this.#rng.weighted(weights);
    if (i >= 0) {
      this.#hash.num(i);
      switch (actions[i]) {
        case "crash":
          this.#chaosCrash(this.#params.downUsMax);
          break;
        case "bounce":
          this.#chaosCrash(10_000);
          break;
        case "partition":
          this.#chaosPartition();
          break;
        case "snapshot":
          this.#chaosSnapshot();
          break;
        case "confChange":
          this.#chaosConfChange();
          break;
        case "transfer":
          this.#chaosTransfer();
          break;
      }
    }
    this.#schedule(this.#expDelay(this.#params.chaosUsMean), { kind: Kind.Chaos });
  }

  #upNodes(): SimNode[] {
    return this.#nodes.filter((n) => n.up);
  }

  #leaders(): SimNode[] {
    return this.#nodes.filter((n) => n.up && n.raft!.role === Role.Leader);
  }

  #chaosCrash(downUsMax: number): void {
    const up = this.#upNodes();
    if (up.length === 0) return;
    // Leaders are the interesting victims: crash one half the time.
    const leaders = this.#leaders();
    const node = leaders.length > 0 && this.#rng.chance(0.5)
      ? this.#rng.pick(leaders)
      : this.#rng.pick(up);
    this.#crash(node);
    this.#schedule(this.#rng.int(1_000, downUsMax), {
      kind: Kind.Restart,
      node: node.index,
    });
  }

  #chaosPartition(): void {
    const n = this.#nodes.length;
    for (const row of this.#blocked) row.fill(false);
    const kind = this.#rng.int(0, 2);
    let what = "";
    if (kind === 0) {
      // Random split into two sides.
      const side = this.#nodes.map(() => this.#rng.chance(0.5));
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) this.#blocked[a][b] = side[a] !== side[b];
      }
      what = `split {${this.#nodes.filter((_, i) => side[i]).map((x) => x.id)}} | ` +
        `{${this.#nodes.filter((_, i) => !side[i]).map((x) => x.id)}}`;
    } else if (kind === 1) {
      // Isolate the leader (or anyone when there is none).
      const leaders = this.#leaders();
      const victim = leaders.length > 0 ? this.#rng.pick(leaders) : this.#rng.pick(this.#nodes);
      for (let b = 0; b < n; b++) {
        if (b === victim.index) continue;
        this.#blocked[victim.index][b] = true;
        this.#blocked[b][victim.index] = true;
      }
      what = `isolate ${victim.id}`;
    } else {
      // A few one-way links.
      const links: string[] = [];
      const count = this.#rng.int(1, n);
      for (let k = 0; k < count; k++) {
        const a = this.#rng.int(0, n - 1);
        const b = this.#rng.int(0, n - 1);
        if (a === b) continue;
        this.#blocked[a][b] = true;
        links.push(`${nodeId(a)}->${nodeId(b)}`);
      }
      what = `one-way ${links.join(" ")}`;
    }
    this.#stats.partitions++;
    const generation = ++this.#partitionGeneration;
    this.#note(() => `PARTITION ${what}`);
    this.#schedule(this.#rng.int(1_000, this.#params.partitionUsMax), {
      kind: Kind.Heal,
      generation,
    });
  }

  #chaosSnapshot(): void {
    const candidates = this.#nodes.filter((n) => n.up && n.applied > n.disk.snapshotIndex());
    if (candidates.length === 0) return;
    const node = this.#rng.pick(candidates);
    const r = node.raft!;
    const index = node.applied;
    const term = r.termAt(index);
    // A leader's snapshot being installed (write in flight) already moved the log past us.
    if (term === undefined || index < r.status().snapshotIndex) return;
    const snapshot: Snapshot = {
      index,
      term,
      conf: r.confAt(index),
      data: encodeValue(node.counter),
    };
    this.#checker.snapshotTaken(node.id, r.term, snapshot);
    node.disk.saveLocalSnapshot(snapshot);
    const compactIndex = Math.max(0, index - this.#rng.int(0, 5));
    this.#stats.snapshotsTaken++;
    this.#note(() => `${node.id} SNAPSHOT at ${index}/t${term}, compact to ${compactIndex}`);
    r.setSnapshot(snapshot, compactIndex);
    this.#afterInput(node);
  }

  #chaosConfChange(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#rng.pick(leaders);
    const conf = leader.raft!.conf;
    const options: ConfChange[] = [];
    for (const n of this.#nodes) {
      if (conf.voters.includes(n.id)) {
        if (conf.voters.length > 1) options.push({ type: "remove", node: n.id });
      } else if (conf.learners.includes(n.id)) {
        options.push({ type: "promote", node: n.id }, { type: "remove", node: n.id });
      } else {
        options.push({ type: "addLearner", node: n.id }, { type: "addVoter", node: n.id });
      }
    }
    if (options.length === 0) return;
    const change = this.#rng.pick(options);
    const res = leader.raft!.proposeConfChange(change);
    this.#note(() =>
      `${leader.id} CONF ${change.type} ${change.node}: ` +
      (res.ok ? `at ${res.firstIndex}/t${res.term}` : res.reason)
    );
    if (res.ok) this.#stats.confChanges++;
    this.#afterInput(leader);
  }

  #chaosTransfer(): void {
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#rng.pick(leaders);
    const targets = leader.raft!.conf.voters.filter((v) => v !== leader.id);
    if (targets.length === 0) return;
    const to = this.#rng.pick(targets);
    const err = leader.raft!.transferLeader(to);
    this.#note(() => `${leader.id} TRANSFER to ${to}: ${err ?? "started"}`);
    if (err === null) this.#stats.transfers++;
    this.#afterInput(leader);
  }

  // ---------------------------------------------------------------- clients

  #clientPropose(): void {
    const leaders = this.#leaders();
    const up = this.#upNodes();
    if (up.length === 0) return;
    // Clients find the leader most of the time, and sometimes ask a stale or wrong node.
    const node = leaders.length > 0 && this.#rng.chance(0.9)
      ? this.#rng.pick(leaders)
      : this.#rng.pick(up);
    this.#propose(node, this.#rng.int(1, 3));
  }

  #propose(node: SimNode, count: number): Proposal[] {
    const r = node.raft!;
    const made: Proposal[] = [];
    const datas: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      const id = ++this.#proposalSeq;
      const delta = BigInt(this.#rng.int(-1000, 1000));
      made.push({
        id,
        node: node.index,
        epoch: node.epoch,
        index: 0,
        term: 0,
        delta,
        status: "pending",
      });
      datas.push(encodeIncrement(delta, id));
    }
    const res = r.propose(datas);
    this.#hash.num(res.ok ? res.firstIndex : 0);
    if (!res.ok) {
      this.#note(() => `${node.id} propose refused: ${res.reason}`);
      return [];
    }
    for (let i = 0; i < made.length; i++) {
      const p = made[i];
      p.index = res.firstIndex + i;
      p.term = res.term;
      if (r.termAt(p.index) !== p.term) {
        throw new CheckFailure(
          Check.shell,
          `${node.id} accepted proposal ${p.id} at ${p.index}/t${p.term}, its log says t${
            r.termAt(p.index)
          }`,
        );
      }
      let list = node.proposals.get(p.index);
      if (list === undefined) {
        list = [];
        node.proposals.set(p.index, list);
      }
      list.push(p);
      this.#stats.proposed++;
    }
    this.#note(() =>
      `${node.id} PROPOSE ${made.map((p) => `#${p.id}(${p.delta})`).join(" ")} at ` +
      `${res.firstIndex}/t${res.term}`
    );
    this.#afterInput(node);
    return made;
  }

  #clientRead(): void {
    const up = this.#upNodes();
    if (up.length === 0) return;
    this.#read(this.#rng.pick(up));
  }

  #read(node: SimNode): Read {
    const read: Read = {
      id: ++this.#readSeq,
      node: node.index,
      ackedIndexMax: this.#checker.ackedIndexMax,
      index: -1,
      value: null,
    };
    this.#note(() => `${node.id} READ ${read.id} issued (acked up to ${read.ackedIndexMax})`);
    if (this.#options.mutation === "stale-read") {
      read.index = node.applied;
      this.#serveRead(node, read, node.applied);
      return read;
    }
    node.reads.set(read.id, read);
    const lease = this.#rng.chance(this.#params.leaseReads);
    node.raft!.readIndex(read.id, { lease });
    this.#afterInput(node);
    return read;
  }

  // ---------------------------------------------------------------- the end

  /**
   * Faults stop, partitions heal, every node restarts. Within a bounded simulated time the
   * cluster must have one leader, accept and acknowledge one more increment, bring every member
   * to the same applied index and value, and answer a read with that value.
   */
  #settle(): void {
    this.#faults = false;
    this.#netLoss = 0;
    this.#netDup = 0;
    // Reordering is a fault too: from now on links deliver in order, as TCP connections do.
    this.#netFifo = true;
    this.#heal();
    this.#note(() => `SETTLE: faults stop`);
    for (const node of this.#nodes) if (!node.up) this.#start(node);
    const deadline = this.#now + SETTLE_US_MAX;
    let final: Proposal | null = null;
    let read: Read | null = null;
    let leader: SimNode | null = null;
    for (;;) {
      if (!this.#step()) throw new CheckFailure(Check.liveness, "no events left");
      if (this.#now > deadline) {
        throw new CheckFailure(
          Check.liveness,
          `cluster did not settle within ${SETTLE_US_MAX / 1e6}s of simulated time: ` +
            this.#describeCluster(),
        );
      }
      const leaders = this.#leaders();
      if (leaders.length !== 1) continue;
      if (leader !== leaders[0]) {
        leader = leaders[0];
        final = null;
        read = null;
      }
      if (final === null || final.status === "failed" || final.status === "unknown") {
        if (!this.#caughtUp(leader, 0)) continue;
        const made = this.#propose(leader, 1);
        final = made.length > 0 ? made[0] : null;
        continue;
      }
      if (final.status !== "acked" || !this.#caughtUp(leader, final.index)) continue;
      if (read === null) {
        read = this.#read(leader);
        continue;
      }
      if (read.value === null) {
        if (!leader.reads.has(read.id)) read = null;
        continue;
      }
      break;
    }
    const sum = this.#checker.finalSum(leader.applied, this.#acked);
    if (sum !== leader.counter || read.value !== leader.counter) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `final counter ${leader.counter}, read ${read.value}, committed deltas sum to ${sum}`,
      );
    }
    this.#stats.finalIndex = leader.applied;
    const index = leader.applied;
    this.#note(() => `SETTLED: leader ${leader.id}, index ${index}, value ${sum}`);
  }

  /** The leader and every member agree on an applied index of at least `indexMin`. */
  #caughtUp(leader: SimNode, indexMin: number): boolean {
    const r = leader.raft!;
    if (leader.applied < indexMin || leader.write !== null) return false;
    if (r.commitIndex !== r.lastIndex || leader.applied !== r.lastIndex) return false;
    for (const id of [...r.conf.voters, ...r.conf.learners]) {
      const node = this.#byId.get(id)!;
      if (!node.up || node.write !== null || node === leader) continue;
      if (node.raft!.term !== r.term || node.applied !== leader.applied) return false;
      if (node.counter !== leader.counter) {
        throw new CheckFailure(
          Check.stateMachineSafety,
          `${node.id} has value ${node.counter} at index ${node.applied}, ` +
            `leader ${leader.id} has ${leader.counter}`,
        );
      }
    }
    return true;
  }

  #describeCluster(): string {
    return this.#nodes.map((n) => {
      if (!n.up) return `${n.id} down`;
      const s = n.raft!.status();
      return `${n.id} ${s.role} t${s.term} lead "${s.leader}" commit ${s.commit} ` +
        `applied ${n.applied} last ${s.lastIndex} snap ${s.snapshotIndex} ` +
        `conf {${s.conf.voters}}/{${s.conf.learners}}` +
        (s.peers.length > 0
          ? ` peers ${s.peers.map((p) => `${p.id}:${p.state}/m${p.match}/n${p.next}`).join(" ")}`
          : "");
    }).join("; ");
  }
}

function cloneMessage(m: Message): Message {
  return {
    ...m,
    entries: m.entries.map((e) => ({ ...e, data: e.data.slice() })),
    snapshot: m.snapshot === null ? null : {
      ...m.snapshot,
      conf: { voters: [...m.snapshot.conf.voters], learners: [...m.snapshot.conf.learners] },
      data: m.snapshot.data.slice(),
    },
  };
}
