/**
 * Deterministic simulation of a whole counter cluster: Raft nodes with simulated disks, an
 * unreliable network, crashes, partitions, snapshots, membership changes and clients, all driven
 * by one seed on a simulated clock.
 *
 * Each node runs one of two shells, chosen per seed:
 *
 * - the pumping shell of lib/counter/node.ts (most seeds): take a Ready when none is outstanding,
 *   send its early messages and apply its committed entries at once (unless it installs a
 *   snapshot), write it to disk (which takes simulated time), and only when the write is durable
 *   send the rest, install the snapshot, handle its reads and advance. While the write is in
 *   flight, after inputs and at random moments, the pump sends the leader's new early messages
 *   and, unless the Ready installs a snapshot, applies newly committed entries and handles
 *   answered reads (`takeEarlyMessages`, `takeCommittedEntries`, `takeReadStates`);
 * - the plain shell: nothing happens between Readys, and a Ready's entries are applied only once
 *   its write is durable.
 *
 * In some seeds a leader holds the increments it takes for a short while (node.ts's turn of the
 * event loop) and proposes them as one batch entry (lib/counter/command.ts), now and then with the
 * same request twice in it; the checks hold each item of a batch to what the same increments in
 * consecutive entries would have done.
 *
 * The state machine is the real {@linkcode CounterStateMachine} with client sessions. Simulated
 * clients number their increments, send the oldest sequence number they still wait for (as
 * lib/client/client.ts does), retry with the same number after a timeout, a refusal or a leader
 * change, and now and then send an already answered request again. The leader's wall clock that
 * expires idle sessions runs fast in some seeds, so sessions expire within a run.
 *
 * In half the seeds the groups quiesce (`RaftOptions.quiesce`): an idle, fully replicated group
 * stops heartbeating. The shell then plays the part of node liveness: a quiet follower that has
 * not been able to reach its leader's node (down, paused, or cut off either way) for an election
 * timeout is woken with `unquiesce()`. Those seeds end with an idle stretch in which the settled
 * group should go quiet, then one more increment and read, which must wake it.
 *
 * A {@linkcode Simulation} is one group. In a multi-group run (tests/raft/sim/multigroup.ts) each
 * group is one, built with a {@linkcode GroupHost}: the host runs the shared clock, crashes,
 * pauses and partitions nodes for every group at once, and plays node liveness itself.
 *
 * The {@linkcode Checker} looks at every Raft step; the {@linkcode Ledger} (the real state machine
 * fed once with the committed log) checks that every node's state machine applies each request at
 * most once, answers duplicates with the first answer, and holds the same sessions.
 *
 * Time is in simulated microseconds. Nothing here reads a real clock or `Math.random`.
 *
 * @module
 */

import {
  bootstrapState,
  type ConfChange,
  type ConfState,
  decodeConfState,
  type Entry,
  EntryType,
  forceNewClusterState,
  InvariantError,
  type Message,
  MessageType,
  type NodeId,
  Raft,
  type RaftOptions,
  type ReadState,
  type Ready,
  Role,
  type Snapshot,
} from "../../../lib/raft/mod.ts";
import {
  decodeIncrements,
  encodeIncrement,
  IncrementBatch,
  type IncrementItem,
  readStampMs,
} from "../../../lib/counter/command.ts";
import { ClusterClock } from "../../../lib/counter/cluster_clock.ts";
import { settledMembers } from "../../../lib/counter/peer_identity.ts";
import {
  answerIdentity,
  decideBootstrap,
  type IdentityAnswer,
  type IdentityRaftView,
  type IdentitySource,
} from "../../../lib/counter/bootstrap_check.ts";
import {
  type ApplyResult,
  CLIENT_IDLE_EXPIRY_MS,
  CounterStateMachine,
} from "../../../lib/counter/state_machine.ts";
import {
  Check,
  Checker,
  CheckFailure,
  type CheckName,
  type DiskView,
  type LogView,
} from "./checker.ts";
import { isCommand, Ledger, observable, sameBytes, smValueOf } from "./ledger.ts";
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
  /** Node n2's state machine adds one too many to odd-numbered requests. */
  | "corrupt-apply"
  /** Serves reads from the local state machine without a ReadIndex round. */
  | "stale-read"
  /** Node n2 restores only the counter value from snapshots, forgetting the client sessions. */
  | "lose-sessions"
  /** Node n2 expires client sessions by its own clock instead of the proposing leader's. */
  | "local-clock-expiry"
  /**
   * Leaders stamp increments with their wall clocks (which jump in disk-fault seeds) instead of
   * cluster time: the state before lib/counter/cluster_clock.ts.
   */
  | "wall-clock-stamps"
  /**
   * A node that starts empty with `--join` votes and campaigns at once, under whatever
   * configuration it replays (the state before the vote floor).
   */
  | "no-vote-floor"
  /** The pump applies committed entries while a Ready installing a snapshot is in flight. */
  | "pump-during-snapshot"
  /** The pumping shell applies a Ready's committed entries after its write, not before. */
  | "late-ready-apply"
  /**
   * A node with a wiped data dir bootstraps again without asking its peers, and nodes accept
   * messages from any incarnation of a peer: the state before the identity checks.
   */
  | "no-identity-check"
  /**
   * The shell never wakes quiet nodes (no node liveness): a quiet follower of a dead leader waits
   * forever, which the liveness check must catch.
   */
  | "no-node-liveness"
  /**
   * Multi-group runs: the host tracks liveness per group instead of per node, from that group's
   * own messages only (no node heartbeats, nothing heard from other groups): a quiet group hears
   * nothing from its quiet leader, so its followers are woken over and over by a host that takes
   * silence for death.
   */
  | "group-liveness"
  /**
   * Multi-group runs: the host wakes a quiet leader only for a member heard again after it was
   * thought dead, not for one that restarted quickly (a bounced learner is never woken for).
   */
  | "restart-unseen"
  /**
   * Multi-group runs: the host now and then hands a message of one group to the node's replica of
   * another group (a routing mistake on the shared connection), which the per-group checks must
   * notice.
   */
  | "cross-group-delivery"
  /**
   * Staggered-start seeds: a member that bootstrapped and is still starting answers `identity`
   * "not fresh" (the answer before it went by the log alone), so members that ask it then start
   * below a vote floor, and a group whose members all did never campaigns.
   */
  | "starting-not-fresh";

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
  /**
   * Nodes run lib/counter/node.ts's pumping shell (work between Readys, a Ready's entries
   * applied before its write). Default: on for 80% of the seeds.
   */
  pump?: boolean;
  /**
   * Faults of the disk and the process beyond crashes: wiped data dirs, disks that lose their
   * newest data (the node notices and refuses to start), and pauses longer than an election
   * timeout. Default: on for 40% of the seeds.
   */
  diskFaults?: boolean;
  /**
   * Once in the run, the group loses a majority for good and the operator forces one survivor
   * into a new group (`counter recover --force-new-cluster`), then wipes and adds back every
   * other node. Default: a quarter of the disk-fault seeds.
   */
  forcedReset?: boolean;
  /**
   * Leaders quiesce idle groups, and the shell wakes quiet followers whose leader's node it
   * cannot reach (node liveness). Default: on for half the seeds.
   */
  quiesce?: boolean;
  /**
   * Node processes: the voters plus spares that membership changes may add. Default: the voters,
   * or 5 with membership changes.
   */
  pool?: number;
  /**
   * The initial members start with empty data dirs at times drawn from the seed (one of them
   * sometimes much later), run node.ts's bootstrap check against each other, and may take a
   * while from bootstrapping to running Raft; the group must then elect a leader within
   * {@linkcode STAGGER_ELECTIONS} election timeouts of the last one's start (or of the end of
   * the partitions and crashes that half of these seeds have while the group starts), before
   * any other fault. Default: on for 30% of the seeds; multi-group runs only when set.
   */
  staggeredStart?: boolean;
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
  /** The pumping shell of lib/counter/node.ts; otherwise the plain shell. */
  pump: boolean;
  /** Probability that an input to a node with a write in flight is followed by a pump. */
  pumpAfterInput: number;
  /** Most extra pumps at random moments of each write in flight. */
  pumpsPerWriteMax: number;
  /** Clients active at once. */
  clients: number;
  /** Requests one client has in flight at most. */
  clientWindow: number;
  /** A client retries a request it got no answer for after this long (µs). */
  attemptTimeoutUs: number;
  /**
   * A client gives a request up this long (µs) after first sending it. Short enough that no
   * session can expire between a request's first application and its last retry.
   */
  giveUpUs: number;
  /** Probability that a proposal is a deliberate duplicate of an answered request. */
  duplicates: number;
  /** Probability that a proposal is an anonymous increment (no session). */
  anonymous: number;
  /** Probability that a client retires (a new client id replaces it) when it is picked. */
  retire: number;
  /** Probability that a delta is huge (up to 1000 * 2^52), so that some increments overflow. */
  hugeDeltas: number;
  /** Leader wall clock ms per simulated µs (1e-3 is real time; larger ones expire sessions). */
  wallMsPerUs: number;
  /** Offset of each node's wall clock (ms). */
  wallOffsetMs: number[];
  /** Every node's state machine bytes are compared with the reference at multiples of this. */
  sampleEvery: number;
  /** Wiped data dirs, lost newest data and long pauses happen (see `SimOptions.diskFaults`). */
  diskFaults: boolean;
  /** Relative weights of the disk and process faults. */
  diskWeights: Record<DiskChaosAction, number>;
  /** Longest process pause, in election timeouts. */
  pauseElectionsMax: number;
  /** The run includes a majority loss and a forced new cluster (see `SimOptions.forcedReset`). */
  forcedReset: boolean;
  /**
   * Election timeout of each node (ticks): `electionTicks` times a factor of 1 to 3 in a third of
   * the seeds, since nothing makes operators give every node the same `--election-timeout-ms`.
   */
  electionTicksOf: number[];
  /**
   * Probability that a leader holds an increment it takes for a batch entry (node.ts proposes a
   * turn's increments as one entry); 0 in half the seeds.
   */
  batchProposals: number;
  /** Longest a held increment waits for others before its batch is proposed (µs). */
  batchWindowUsMax: number;
  /** Probability that a request held for a batch is held twice (a client's early resend). */
  batchRepeats: number;
  /** Groups quiesce when idle (see `SimOptions.quiesce`). */
  quiesce: boolean;
  /** The initial members start empty at `startUs` (see `SimOptions.staggeredStart`). */
  staggeredStart: boolean;
  /**
   * Staggered starts: when each node's process starts (µs); a single-group run starts its spares
   * at once.
   */
  startUs: number[];
  /**
   * Staggered starts: longest time (µs) from a member's bootstrap (its dir holds the bootstrap
   * entry) to its Raft node running, during which it answers `identity` as a starting node (a
   * host opening many groups at once, its disk slow with their first writes).
   */
  bootUsMax: number;
  /** Staggered starts: delay (µs) between two rounds of a waiting bootstrap check. */
  probeRetryUs: number;
  /**
   * Staggered starts: faults go on for this long (µs) after the last member's start, 0 for none:
   * partitions, and crashes of members checking (the check starts over), starting (Raft runs
   * once the process is back) or running.
   */
  startFaultsUs: number;
}

type ChaosAction = "crash" | "bounce" | "partition" | "snapshot" | "confChange" | "transfer";

/** Clients stop for 1 to 5 election timeouts (quiesce seeds only): the group may go quiet. */
type IdleAction = "idle";

/**
 * Faults that an operator has to repair: `wipe` empties a node's data dir (a dead disk
 * replaced, `rm -rf`), after which it restarts with the same id and `--conf`; `loss` makes a
 * node's disk lose its newest data in a way the storage detects (a deleted newest segment, a bit
 * flip in the last record), so it refuses to start; `pause` stops a process (SIGSTOP, a long GC)
 * for longer than an election timeout; `clockJump` steps a node's wall clock by up to two session
 * expiry periods, forward or back (which cluster time must not notice).
 */
type DiskChaosAction = "wipe" | "loss" | "pause" | "clockJump" | "majorityLoss";

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
  /** Client requests (distinct client id and sequence number). */
  requests: number;
  /** Attempts beyond the first of a request (same sequence number). */
  retries: number;
  /** Deliberate duplicates of answered requests sent. */
  duplicatesSent: number;
  /** Requests answered. */
  answered: number;
  /** Requests given up without an answer. */
  gaveUp: number;
  /**
   * Increments repeating an applied request, applied by a node (and answered as the first time).
   */
  duplicateAnswers: number;
  /** Of those, on a node whose state machine came from a snapshot covering the first one. */
  duplicateAnswersAfterRestore: number;
  /** Duplicates answered STALE_REQUEST (after the client acknowledged the answer). */
  staleAnswers: number;
  /** Client sessions expired in the committed log. */
  sessionsExpired: number;
  /** Increments refused with OVERFLOW. */
  overflows: number;
  /** Entries applied while the node's own write was in flight (pumping shell). */
  appliedEarly: number;
  /** Leader messages sent by the pump between Readys. */
  pumpedMessages: number;
  /** State machine snapshots compared byte for byte with the reference. */
  bytesCompared: number;
  /**
   * Snapshots the node could not take: node.ts's `index <= storage.lastIndex()` test passed,
   * but the disk holds another term there (an entry being replaced), which the storage refuses.
   */
  snapshotsRefused: number;
  /** Data dirs wiped. */
  wipes: number;
  /** Disks that lost their newest data (detected). */
  losses: number;
  /** Process pauses longer than an election timeout. */
  pauses: number;
  /** Starts refused: a wiped node its peers knew, or a disk that lost data. */
  startsRefused: number;
  /** Wiped nodes that found no peer had heard of them and bootstrapped. */
  bootstrapsAfterWipe: number;
  /** Staggered starts: initial members that bootstrapped after their bootstrap check. */
  staggeredBootstraps: number;
  /** Of those, members that found a history and started below a vote floor. */
  bootstrapsBelowVoteFloor: number;
  /** Identity answers given by members that had bootstrapped but were still starting. */
  answersWhileStarting: number;
  /** Dead nodes replaced by the operator (removed, wiped, added back, promoted). */
  replacements: number;
  /** Messages dropped because the sender's incarnation is not the one the receiver knows. */
  identityDrops: number;
  /** Wall-clock steps of a node. */
  clockJumps: number;
  /** Majorities lost for good and groups forced from a survivor. */
  forcedResets: number;
  /** Messages dropped because sender and receiver belong to different clusters. */
  clusterDrops: number;
  /** Batch proposals a leader made (one call, one or more entries). */
  batches: number;
  /** Increments proposed in those batches. */
  batchedIncrements: number;
  /**
   * Increments repeating a request earlier in the same batch entry, applied by a node (and
   * answered as the first).
   */
  batchRepeats: number;
  /** Times a leader quiesced its group. */
  quiescences: number;
  /** Ticks nodes spent quiet (leaders and followers). */
  quietTicks: number;
  /**
   * Quiet nodes woken by the shell's node liveness (`unquiesce()`): followers of an unreachable
   * leader, leaders of a member that came back.
   */
  livenessWakes: number;
  /** Runs whose settled group went wholly quiet in the idle stretch at the end (0 or 1). */
  quietAtEnd: number;
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

/** A simulated client: a session id and its numbered requests. */
interface Client {
  id: string;
  /** Last sequence number issued. */
  seq: number;
  /** Requests not settled yet (neither answered nor given up), in sequence order. */
  pending: Request[];
  /** Recently answered requests, candidates for deliberate duplicates. */
  answered: Request[];
}

/** One increment of a client, from its first attempt to its answer. */
interface Request {
  client: Client;
  seq: number;
  delta: bigint;
  /** The oldest sequence number the client still waited for when it issued this one. */
  ackedBelow: number;
  /** When it was first sent (µs). */
  firstUs: number;
  status: "pending" | "answered" | "gaveUp";
  /** The first answer the client got. */
  answer: string | null;
  /** Attempts made so far (duplicates excluded). */
  attempts: number;
  /** Bumped by every attempt and retry decision: only the latest timer counts. */
  generation: number;
  /** Wait before the next attempt after a refusal (doubles up to a limit, as the client's). */
  backoffUs: number;
}

/** One proposal of a command at one node: an attempt of a request, a duplicate, or anonymous. */
interface Proposal {
  id: number;
  /** The request it carries; null for an anonymous increment. */
  request: Request | null;
  /** A deliberate duplicate of an answered request (never retried). */
  duplicate: boolean;
  /** The request's generation after this attempt was made (its timeout's). */
  generation: number;
  node: number;
  epoch: number;
  index: number;
  term: number;
  /** The increment. */
  increment: IncrementItem;
  /** The data of the entry that carries it (a batch's, once proposed). */
  data: Uint8Array;
  /** Its position in the entry: 0, or its item in a batch. */
  item: number;
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
  /** The real counter state machine. */
  sm: CounterStateMachine;
  /** Cluster time for the increments it proposes (node.ts's ClusterClock), this life. */
  clock: ClusterClock;
  applied: number;
  /** Index of the snapshot the state machine was last restored from (this life), 0 for none. */
  restoredAt: number;
  /** The Ready whose write is in flight. */
  write: Ready | null;
  /** Counts writes, so that a pump scheduled for one write is ignored after it. */
  writeSeq: number;
  /** Term this node last led in (this life), 0 for none. */
  leaderTerm: number;
  /** Highest term seen in this life. */
  termSeen: number;
  /** Highest commit index already checked for durability (this life). */
  commitChecked: number;
  /** This life's proposals by log index. */
  proposals: Map<number, Proposal[]>;
  /** Increments taken and held for the next batch entry (this life), in order. */
  batch: Proposal[];
  /** The stamp taken when the first held increment came, and the term it was taken in. */
  batchStamp: { stampMs: number; term: number };
  /** This life's reads by id. */
  reads: Map<number, Read>;
  /** Reads with a read index, waiting for the state machine to reach it. */
  readsWaiting: Read[];
  /** Starts with an empty disk as a member of the initial `--conf` (probing), not `--join`. */
  initialMember: boolean;
  /** One of the run's initial `--conf` members: the ids a probing node asks. */
  readonly initialMemberOfRun: boolean;
  /** Down until the operator replaces it: it refused to start (see `DiskChaosAction`). */
  refused: boolean;
  /** Waiting, with an empty disk, for every initial member to answer its bootstrap probe. */
  probing: boolean;
  /**
   * The answers its bootstrap check has gathered (as runBootstrapCheck, an answered member is not
   * asked again), and whether any said "not fresh"; null when no check runs.
   */
  probeAnswers: { answers: Map<NodeId, IdentityAnswer>; history: boolean } | null;
  /** Bootstrapped (its dir holds the bootstrap entry) but its Raft node is not running yet. */
  booting: boolean;
  /** The process is stopped until this time (µs); 0 when running. */
  pausedUntilUs: number;
  /** Ticks that fell due while paused, given at once on resume (node.ts's catch-up). */
  pausedTicks: number;
  /** Its data dir was wiped and it has not bootstrapped or been replaced since. */
  wiped: boolean;
  /** Its leader was quiet when last observed (counts quiescences). */
  quiet: boolean;
  /** Since when (µs) this node could not reach its leader's node; -1 while it can. */
  leaderLostSinceUs: number;
  /** Leader: how it last saw each member's node, "down" or "up EPOCH" (node liveness). */
  peersSeen: Map<NodeId, string>;
  /**
   * Disks this node had before a wipe or a replacement: what it acknowledged while they were
   * its disks stays counted when the checker asks whether a commit was durable on a majority.
   */
  formerDisks: SimDisk[];
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
  Pump = 10,
  Retry = 11,
  Snapshot = 12,
  Operator = 13,
  Batch = 14,
}

/** An event of a group's simulation. */
export type SimEvent =
  | { kind: Kind.Tick; node: number; epoch: number }
  | {
    kind: Kind.Deliver;
    msg: Message;
    incarnation: number;
    cluster: number;
    /** The receiver's incarnation when it was sent: a wiped receiver's connections died. */
    toIncarnation: number;
    /** The sender's life (epoch) when it was sent: what node liveness learns of restarts. */
    epoch: number;
    /** When it was sent (µs): a connection closed after it loses it. */
    sentUs: number;
  }
  | { kind: Kind.Disk; node: number; epoch: number }
  | { kind: Kind.Chaos }
  | { kind: Kind.Restart; node: number }
  | { kind: Kind.Heal; generation: number }
  | { kind: Kind.Propose }
  | { kind: Kind.ReadReq }
  | { kind: Kind.Report; node: number; epoch: number; to: NodeId; ok: boolean }
  | { kind: Kind.Pump; node: number; epoch: number; write: number }
  | { kind: Kind.Retry; request: Request; generation: number }
  | { kind: Kind.Snapshot; node: number; epoch: number }
  | { kind: Kind.Operator; node: number; step: ReplaceStep }
  | { kind: Kind.Batch; node: number; epoch: number };

/** Where the operator's replacement of a refused node stands. */
type ReplaceStep = "remove" | "add" | "promote";

/** Events in the fault phase of a run, unless `SimOptions.events` says otherwise. */
export const EVENTS_DEFAULT = 4000;
/** How long the cluster has to settle once faults stop (µs of simulated time). */
export const SETTLE_US_MAX = 60_000_000;
/**
 * Staggered starts: once every initial member runs, the group must have a leader within this
 * many (longest) election timeouts, before any fault (message loss aside).
 */
export const STAGGER_ELECTIONS = 30;
/** Election timeouts of the idle stretch at the end of quiesce seeds (see `#settle`). */
export const IDLE_ELECTIONS = 10;
/** Ready rounds one input may cause before the shell decides the node is looping. */
const READY_ROUNDS_MAX = 10_000;
/** Trace lines kept for a failure report. */
export const TRACE_LINES = 40;
/** Wall clock of the simulated leaders at simulated time 0 (ms since the epoch). */
const WALL_BASE_MS = 1_700_000_000_000;
/** Probability that a node takes a snapshot at some moment of a given write. */
const SNAPSHOT_DURING_WRITE = 0.03;
/** A client's wait after a refusal, doubled by each refusal in a row (µs). */
const BACKOFF_US_MIN = 1_000;
const BACKOFF_US_MAX = 50_000;
/** Answered requests a client keeps as candidates for deliberate duplicates. */
const ANSWERED_KEPT = 8;

/** Answers whose sender a node counts: a vote, an acknowledgement, a heartbeat's echo. */
function isCountedAnswer(type: MessageType): boolean {
  return type === MessageType.VoteResp || type === MessageType.PreVoteResp ||
    type === MessageType.AppResp || type === MessageType.HeartbeatResp;
}

/** The text of cluster id `n` as a data dir holds it ("" for none). */
function clusterIdText(n: number): string {
  return n === 0 ? "" : n.toString(16).padStart(16, "0");
}

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
  const pool = options.pool ?? (membership ? 5 : voters);
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
  const base = {
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
  // Drawn after everything above, so that these never change the values above.
  const pumpDrawn = r.chance(0.8);
  const pumpAfterInput = r.pick([1, 1, 0.5, 0.1]);
  const pumpsPerWriteMax = r.pick([0, 1, 3]);
  // Drawn last of all, so that seeds without these faults run as they did before them.
  const diskFaultsDrawn = r.chance(0.4);
  const diskWeights = { wipe: r.pick([1, 2]), loss: r.pick([0, 1]), pause: r.pick([0, 1, 2]) };
  const pauseElectionsMax = r.pick([2, 5]);
  const mixedTimeouts = r.chance(1 / 3);
  const timeoutFactors: number[] = [];
  for (let i = 0; i < 5; i++) timeoutFactors.push(mixedTimeouts ? r.pick([1, 1, 1.5, 2, 3]) : 1);
  const clockJumpWeight = r.pick([0, 1]);
  const forcedResetDrawn = r.chance(0.25);
  // Drawn after all of the above, so that seeds without batches run as they did before them.
  const batchProposals = r.pick([0, 0, 0.5, 1]);
  const batchWindowUsMax = r.pick([0, 500, 5_000, 20_000]);
  const batchRepeats = r.pick([0, 0.05]);
  // Sessions idle for CLIENT_IDLE_EXPIRY_MS of the leaders' wall clock expire. That hour lasts
  // 0.3 s, 1 s or 3 s of simulated time in most seeds (so sessions expire during a run), or an
  // hour (real time) in the rest.
  const expiryUs = r.pick([0, 300_000, 1_000_000, 3_000_000]);
  const wallMsPerUs = expiryUs === 0 ? 1e-3 : CLIENT_IDLE_EXPIRY_MS / expiryUs;
  const skewMs = Math.round(r.pick([0, 0.01, 0.1]) * CLIENT_IDLE_EXPIRY_MS);
  const wallOffsetMs: number[] = [];
  for (let i = 0; i < 5; i++) wallOffsetMs.push(r.int(-skewMs, skewMs));
  // No session may expire between a request's first application and its last attempt: every
  // attempt goes out within giveUpUs of the first, and the wall clocks of two entries proposed
  // that far apart differ by at most giveUpUs * wallMsPerUs + 2 * skewMs (an entry is always
  // proposed after every entry before it in the log), which stays below the expiry.
  const giveUpBoundUs = (0.8 * CLIENT_IDLE_EXPIRY_MS - 2 * skewMs) / wallMsPerUs;
  const giveUpUs = Math.floor(Math.min(2_000_000, giveUpBoundUs) * r.range(0.5, 1));
  const attemptTimeoutUs = Math.min(r.pick([10_000, 30_000, 100_000]), Math.floor(giveUpUs / 2));
  const params: SimParams = {
    ...base,
    pump: options.pump ?? pumpDrawn,
    pumpAfterInput,
    pumpsPerWriteMax,
    clients: r.int(1, 6),
    clientWindow: r.pick([1, 2, 4]),
    attemptTimeoutUs,
    giveUpUs,
    duplicates: r.pick([0, 0.05, 0.2]),
    anonymous: r.pick([0, 0.05]),
    retire: r.pick([0, 0.02, 0.1]),
    hugeDeltas: r.chance(0.1) ? 0.1 : 0,
    wallMsPerUs,
    wallOffsetMs: wallOffsetMs.slice(0, pool),
    sampleEvery: r.pick([4, 16, 64]),
    diskFaults: options.diskFaults ?? diskFaultsDrawn,
    diskWeights: { ...diskWeights, clockJump: clockJumpWeight, majorityLoss: 1 },
    pauseElectionsMax,
    forcedReset: options.forcedReset ??
      (forcedResetDrawn && (options.diskFaults ?? diskFaultsDrawn)),
    electionTicksOf: timeoutFactors.slice(0, pool).map((f) => Math.round(base.electionTicks * f)),
    batchProposals,
    batchWindowUsMax,
    batchRepeats,
    quiesce: false,
    staggeredStart: false,
    startUs: [],
    bootUsMax: 0,
    probeRetryUs: 0,
    startFaultsUs: 0,
  };
  // Drawn after everything else (the literal above draws in its own order), so that every other
  // value of a seed stays what it was before quiescence; seeds that draw it off replay as before.
  const quiesceDrawn = r.chance(0.5);
  params.quiesce = options.quiesce ?? quiesceDrawn;
  // Drawn after quiescence, for the same reason: seeds that draw it off replay as before.
  const staggerDrawn = r.chance(0.3);
  const electionUs = base.electionTicks * tickBase;
  // Most members within a few election timeouts of each other, one now and then far later.
  const spreadUs = electionUs * r.pick([0, 1, 3, 8]);
  const lateUs = r.chance(0.3) ? electionUs * r.range(10, 40) : 0;
  const late = r.int(0, 4);
  const startUs: number[] = [];
  for (let i = 0; i < 5; i++) {
    startUs.push(Math.round(r.range(0, spreadUs) + (i === late ? lateUs : 0)));
  }
  params.staggeredStart = options.staggeredStart ?? staggerDrawn;
  params.startUs = params.staggeredStart ? startUs.slice(0, pool) : new Array(pool).fill(0);
  params.bootUsMax = Math.round(electionUs * r.pick([0.1, 1, 4]));
  params.probeRetryUs = Math.round(electionUs * r.pick([0.2, 1, 3]));
  params.startFaultsUs = Math.round(electionUs * r.pick([0, 0, 3, 10]));
  return params;
}

/** The replay command for a run (`groups`: groups per node of a multi-group run). */
export function replayCommand(options: SimOptions, params: SimParams, groups?: number): string {
  const parts = ["deno run -A tests/raft/simulate.ts", `--seed ${options.seed}`];
  if (groups !== undefined) parts.push(`--groups ${groups}`);
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
  if (options.pump !== undefined) parts.push(options.pump ? "--pump" : "--no-pump");
  if (options.diskFaults !== undefined) {
    parts.push(options.diskFaults ? "--disk-faults" : "--no-disk-faults");
  }
  if (options.forcedReset !== undefined) {
    parts.push(options.forcedReset ? "--forced-reset" : "--no-forced-reset");
  }
  if (options.quiesce !== undefined) parts.push(options.quiesce ? "--quiesce" : "--no-quiesce");
  if (options.staggeredStart !== undefined) {
    parts.push(options.staggeredStart ? "--staggered-start" : "--no-staggered-start");
  }
  parts.push("--verbose");
  return parts.join(" ");
}

/** The simulator's clock as a group sees it: simulated time and its events. */
export interface SimQueue {
  /** Simulated time (µs) of the event being handled. */
  readonly now: number;
  /** Schedules `event` at `time` (µs). */
  push(time: number, event: SimEvent): void;
  /** The next event (a single-group run only). */
  pop(): SimEvent | undefined;
}

/**
 * What a group's simulation shares with the other groups of its nodes in a multi-group run
 * (tests/raft/sim/multigroup.ts): the clock, the links between nodes (one connection per pair of
 * nodes for every group), the trace, and node liveness, which the host plays instead of the
 * group.
 */
export interface GroupHost {
  /** The group's name in trace lines (g1, g2, ...). */
  readonly name: string;
  /** The group's own random stream. */
  readonly rng: Prng;
  /** The run's clock: the host hands the events pushed here back to `handleEvent`. */
  readonly queue: SimQueue;
  /** `blocked[from][to]`: messages of every group on that link are dropped. */
  readonly blocked: boolean[][];
  /** `linkDueUs[from][to]`: delivery time of the latest message of any group (FIFO links). */
  readonly linkDueUs: number[][];
  /** `linkResetUs[from][to]`: when the connection last closed; what was in flight is lost. */
  readonly linkResetUs: number[][];
  /** The run's parameters (the same for every group: they are the nodes' settings). */
  readonly params: SimParams;
  /** This group's initial voters (node indexes); the other nodes start as spares. */
  readonly voters: readonly number[];
  /** The run's trace ring (failure reports). */
  readonly ring: TraceRing;
  /** The run's trace hash. */
  readonly hash: TraceHash;
  /** The run's trace output (`--verbose`). */
  readonly trace: ((line: string) => void) | undefined;
  /** Handles the run's next event (any group's or the host's); false when none is left. */
  step(): boolean;
  /** A message of this group from node `from`, sent in its life `epoch`, reached node `to`. */
  heard(from: number, to: number, epoch: number): void;
  /** Node `index`'s process runs (a replica still checking or starting waits on it). */
  processUp(index: number): boolean;
}

/** The property an error thrown by a run broke. */
export function checkOf(error: unknown): CheckName {
  if (error instanceof CheckFailure) return error.check;
  if (error instanceof InvariantError) return Check.raftInvariant;
  if (error instanceof DiskError) return Check.durability;
  return Check.shell;
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
  readonly #queue: SimQueue;
  /** The multi-group host this group runs in; null in a single-group run. */
  readonly #host: GroupHost | null;
  /** Prefix of this group's trace lines ("" in a single-group run). */
  readonly #tag: string;
  readonly #nodes: SimNode[] = [];
  readonly #byId = new Map<NodeId, SimNode>();
  readonly #ledger: Ledger;
  readonly #checker: Checker;
  readonly #ring: TraceRing;
  readonly #hash: TraceHash;
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
    requests: 0,
    retries: 0,
    duplicatesSent: 0,
    answered: 0,
    gaveUp: 0,
    duplicateAnswers: 0,
    duplicateAnswersAfterRestore: 0,
    staleAnswers: 0,
    sessionsExpired: 0,
    overflows: 0,
    appliedEarly: 0,
    pumpedMessages: 0,
    bytesCompared: 0,
    snapshotsRefused: 0,
    wipes: 0,
    losses: 0,
    pauses: 0,
    startsRefused: 0,
    bootstrapsAfterWipe: 0,
    staggeredBootstraps: 0,
    bootstrapsBelowVoteFloor: 0,
    answersWhileStarting: 0,
    replacements: 0,
    identityDrops: 0,
    clockJumps: 0,
    forcedResets: 0,
    clusterDrops: 0,
    batches: 0,
    batchedIncrements: 0,
    batchRepeats: 0,
    quiescences: 0,
    quietTicks: 0,
    livenessWakes: 0,
    quietAtEnd: 0,
  };
  /** `#blocked[from][to]`: messages on that link are dropped. */
  #blocked: boolean[][] = [];
  /** `#linkDueUs[from][to]`: delivery time of the latest message on that link (FIFO links). */
  #linkDueUs: number[][] = [];
  /** `#linkResetUs[from][to]`: when that link's connection closed (multi-group runs only). */
  #linkResetUs: number[][] | null = null;
  #partitionGeneration = 0;
  #netLoss: number;
  #netDup: number;
  #netFifo: boolean;
  #faults = true;
  /** Clients send nothing new before this time (µs): an idle spell (`ChaosAction` "idle"). */
  #idleUntilUs = 0;
  /** Offset of each node's wall clock (ms): the drawn skew, moved by clock jumps. */
  readonly #wallOffsetMs: number[];
  /** Cluster ids handed out so far (the run's group is 1). */
  #clusterSeq = 1;
  /** Incarnations handed out so far: every disk, wiped ones included, gets a new one. */
  #incarnationSeq = 0;
  /** Nodes the operator is replacing now. */
  readonly #replacing = new Set<number>();
  /** The same nodes, in the order the operator handles them (one at a time). */
  readonly #replaceQueue: number[] = [];
  #proposalSeq = 0;
  #readSeq = 0;
  /** Active clients. */
  readonly #clients: Client[] = [];
  #clientSeq = 0;
  /** Every answered request, for the final check. */
  readonly #answered: Request[] = [];
  /** Multi-group runs: the group's final client, leader and read once it settled. */
  #final: { client: Client; leader: SimNode; read: Read } | null = null;

  /** Sets up a cluster for `options`; nothing runs until {@linkcode Simulation.run}. */
  constructor(options: SimOptions, host: GroupHost | null = null) {
    this.#options = options;
    this.#host = host;
    this.#params = host?.params ?? simParams(options);
    this.#wallOffsetMs = this.#params.wallOffsetMs.slice();
    this.#rng = host?.rng ?? new Prng(options.seed);
    this.#queue = host?.queue ?? new EventQueue<SimEvent>();
    this.#ring = host?.ring ?? new TraceRing(TRACE_LINES);
    this.#hash = host?.hash ?? new TraceHash();
    this.#tag = host === null ? "" : `${host.name} `;
    const ledger = new Ledger(this.#params.sampleEvery);
    this.#ledger = ledger;
    // The checker sees the effective change of each entry (0 for a duplicate), as the reference
    // state machine computed it.
    this.#checker = new Checker({
      deltaOf: (e) => ledger.deltaAt(e.index),
      proposalIdOf: () => 0,
      valueOf: smValueOf,
    });
    this.#trace = host === null ? options.trace : host.trace;
    this.#netLoss = this.#params.netLoss;
    this.#netDup = this.#params.netDup;
    this.#netFifo = this.#params.netFifo;
    const p = this.#params;
    const isVoter = (i: number) => host === null ? i < p.voters : host.voters.includes(i);
    const voters: NodeId[] = [];
    for (let i = 0; i < p.pool; i++) if (isVoter(i)) voters.push(nodeId(i));
    for (let i = 0; i < p.pool; i++) {
      // Spares start empty, as a freshly installed server does before it is added; so do the
      // initial members of a staggered start, which bootstrap after their check.
      const initial = isVoter(i) && !p.staggeredStart
        ? bootstrapState({ voters, learners: [] })
        : { hardState: { term: 0, vote: "" }, snapshot: null, entries: [] };
      const node: SimNode = {
        id: nodeId(i),
        index: i,
        disk: new SimDisk(initial, ++this.#incarnationSeq),
        prng: this.#rng.fork(),
        up: false,
        epoch: 0,
        raft: null,
        sm: new CounterStateMachine(),
        clock: new ClusterClock(),
        applied: 0,
        restoredAt: 0,
        write: null,
        writeSeq: 0,
        leaderTerm: 0,
        termSeen: 0,
        commitChecked: 0,
        proposals: new Map(),
        batch: [],
        batchStamp: { stampMs: 0, term: 0 },
        reads: new Map(),
        readsWaiting: [],
        initialMember: isVoter(i),
        initialMemberOfRun: isVoter(i),
        refused: false,
        probing: false,
        probeAnswers: null,
        booting: false,
        pausedUntilUs: 0,
        pausedTicks: 0,
        wiped: false,
        quiet: false,
        leaderLostSinceUs: -1,
        peersSeen: new Map(),
        formerDisks: [],
      };
      if (isVoter(i) && !p.staggeredStart) node.disk.clusterId = 1;
      this.#nodes.push(node);
      this.#byId.set(node.id, node);
      this.#blocked.push(new Array(p.pool).fill(false));
      this.#linkDueUs.push(new Array(p.pool).fill(0));
    }
    if (host !== null) {
      this.#blocked = host.blocked;
      this.#linkDueUs = host.linkDueUs;
      this.#linkResetUs = host.linkResetUs;
    }
    for (let i = 0; i < p.clients; i++) this.#clients.push(this.#newClient());
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
      if (this.#params.staggeredStart) {
        this.#staggeredStart();
      } else {
        for (const node of this.#nodes) this.#start(node);
      }
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
    this.#stats.staleAnswers = this.#ledger.stats.staleAnswers;
    this.#stats.sessionsExpired = this.#ledger.stats.sessionsExpired;
    this.#stats.overflows = this.#ledger.stats.overflows;
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
    const check = checkOf(error);
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

  // ---------------------------------------------------------------- the multi-group host's hooks

  /** Starts the group (multi-group runs): notes, every node's replica, clients. */
  begin(): void {
    // With staggered starts the host starts each node's process (every group) at its time.
    if (!this.#params.staggeredStart) { for (const node of this.#nodes) this.#start(node); }
    this.#schedule(this.#expDelay(this.#params.proposeUsMean), { kind: Kind.Propose });
    this.#schedule(this.#expDelay(this.#params.readUsMean), { kind: Kind.ReadReq });
  }

  /** What happened in this group so far. */
  get stats(): SimStats {
    this.#stats.staleAnswers = this.#ledger.stats.staleAnswers;
    this.#stats.sessionsExpired = this.#ledger.stats.sessionsExpired;
    this.#stats.overflows = this.#ledger.stats.overflows;
    return this.#stats;
  }

  /** Handles one event of this group, popped by the host. */
  handleEvent(ev: SimEvent): void {
    this.#handle(ev);
  }

  /** Node `index`'s process crashed: this group's replica goes with it. */
  crashNode(index: number): void {
    const node = this.#nodes[index];
    if (node.up) this.#crash(node);
    // A replica still checking forgets its answers; one starting runs Raft from its dir (the
    // bootstrap entry) when the process is back.
    node.probing = false;
    node.probeAnswers = null;
    node.booting = false;
  }

  /** Node `index`'s process starts: so does this group's replica. */
  startNode(index: number): void {
    const node = this.#nodes[index];
    if (!node.up) this.#start(node);
  }

  /** Node `index`'s process stops until `untilUs`; `ticks` fall due meanwhile. */
  pauseNode(index: number, untilUs: number, ticks: number): void {
    const node = this.#nodes[index];
    if (!node.up) return;
    node.pausedUntilUs = untilUs;
    node.pausedTicks = ticks;
  }

  /** Node `index`'s wall clock steps by `ms`. */
  jumpWallClock(index: number, ms: number): void {
    this.#wallOffsetMs[index] += ms;
  }

  /** A fault of this group alone: a snapshot, a membership change, a transfer, idle clients. */
  groupChaos(action: "snapshot" | "confChange" | "transfer" | "idle"): void {
    switch (action) {
      case "snapshot":
        return this.#chaosSnapshot();
      case "confChange":
        return this.#chaosConfChange();
      case "transfer":
        return this.#chaosTransfer();
      case "idle": {
        const idleUs = Math.round(this.#electionUsMax() * this.#rng.range(1, 5));
        this.#idleUntilUs = Math.max(this.#idleUntilUs, this.#now + idleUs);
        this.#note(() => `IDLE clients for ${idleUs / 1000} ms`);
      }
    }
  }

  /** Node indexes of this group's leaders now. */
  leaderIndexes(): number[] {
    return this.#leaders().map((n) => n.index);
  }

  /**
   * Node `index`'s replica as node liveness sees it: null when down or not quiet; otherwise its
   * role, its leader's node and its members' nodes.
   */
  quietReplica(
    index: number,
  ): { leading: boolean; leader: number; members: number[] } | null {
    const node = this.#nodes[index];
    const r = node.raft;
    if (!node.up || r === null || !r.quiesced) return null;
    const members = [...r.conf.voters, ...r.conf.learners]
      .map((id) => this.#byId.get(id)?.index ?? -1)
      .filter((i) => i >= 0 && i !== index);
    const leader = r.leader === "" ? -1 : this.#byId.get(r.leader)?.index ?? -1;
    return { leading: r.role === Role.Leader, leader, members };
  }

  /** The host's node liveness wakes node `index`'s quiet replica (`unquiesce()`). */
  unquiesce(index: number, why: string): void {
    const node = this.#nodes[index];
    this.#stats.livenessWakes++;
    this.#note(() => `${node.id} UNQUIESCE: ${why}`);
    node.raft!.unquiesce();
    this.#afterInput(node);
  }

  /** Faults stop for this group: no new client work, no more loss, duplication or reordering. */
  stopFaults(): void {
    this.#faults = false;
    this.#netLoss = 0;
    this.#netDup = 0;
    this.#netFifo = true;
  }

  /**
   * Runs the whole run (every group) until this group has one leader that acknowledged one more
   * increment every member applied, and answered a read after it; a liveness failure past
   * `deadlineUs`.
   */
  settleGroup(deadlineUs: number): void {
    const client = this.#final?.client ?? this.#newClient();
    const { leader, read } = this.#incrementAndRead(client, deadlineUs);
    this.#final = { client, leader, read };
  }

  /** True when every member of this group's settled configuration is quiet. */
  quietNow(): boolean {
    const leader = this.#final!.leader;
    const members = [...leader.raft!.conf.voters, ...leader.raft!.conf.learners];
    const quiet = members.every((id) => this.#byId.get(id)!.raft?.quiesced === true);
    this.#note(() => `IDLE: the group is ${quiet ? "quiet" : "awake"}`);
    if (quiet) this.#stats.quietAtEnd = 1;
    return quiet;
  }

  /** The settled group's final checks (see `#checkFinal`). */
  checkSettled(): void {
    this.#checkFinal(this.#final!.leader, this.#final!.read);
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

  /** Processes one event (in a multi-group run, of any group); false when none is left. */
  #step(): boolean {
    if (this.#host !== null) return this.#host.step();
    const ev = this.#queue.pop();
    if (ev === undefined) return false;
    this.#handle(ev);
    return true;
  }

  #handle(ev: SimEvent): void {
    this.#stats.events++;
    this.#hash.num(this.#now);
    this.#hash.num(ev.kind);
    const paused = this.#pausedTarget(ev);
    if (paused !== null) {
      // A stopped process does nothing: what arrives waits in its socket buffers, its timers
      // and its disk completions fire when it runs again (in their original order).
      this.#queue.push(paused.pausedUntilUs, ev);
      return;
    }
    switch (ev.kind) {
      case Kind.Tick:
        this.#onTick(ev.node, ev.epoch);
        break;
      case Kind.Deliver:
        this.#onDeliver(ev);
        break;
      case Kind.Disk:
        this.#onDiskDone(ev.node, ev.epoch);
        break;
      case Kind.Chaos:
        this.#onChaos();
        break;
      case Kind.Restart:
        this.#hash.num(ev.node);
        // In a multi-group run a replica's check rounds and start wait on its node's process.
        if (this.#host !== null && !this.#host.processUp(ev.node)) break;
        if (!this.#nodes[ev.node].up) this.#start(this.#nodes[ev.node]);
        break;
      case Kind.Operator:
        this.#hash.num(ev.node);
        this.#operatorReplace(ev.node, ev.step);
        break;
      case Kind.Heal:
        if (ev.generation === this.#partitionGeneration) this.#heal();
        break;
      case Kind.Propose:
        if (!this.#faults) break;
        if (this.#now >= this.#idleUntilUs) this.#clientPropose();
        this.#schedule(this.#expDelay(this.#params.proposeUsMean), { kind: Kind.Propose });
        break;
      case Kind.ReadReq:
        if (!this.#faults) break;
        if (this.#now >= this.#idleUntilUs) this.#clientRead();
        this.#schedule(this.#expDelay(this.#params.readUsMean), { kind: Kind.ReadReq });
        break;
      case Kind.Report:
        this.#onReport(ev.node, ev.epoch, ev.to, ev.ok);
        break;
      case Kind.Pump: {
        const node = this.#nodes[ev.node];
        if (
          node.up && node.epoch === ev.epoch && node.write !== null && node.writeSeq === ev.write
        ) {
          this.#hash.num(ev.node);
          this.#pumpBetweenReadys(node);
        }
        break;
      }
      case Kind.Retry:
        if (ev.request.generation === ev.generation) this.#retry(ev.request);
        break;
      case Kind.Batch: {
        const node = this.#nodes[ev.node];
        if (node.up && node.epoch === ev.epoch) {
          this.#hash.num(ev.node);
          this.#proposeBatch(node);
        }
        break;
      }
      case Kind.Snapshot: {
        const node = this.#nodes[ev.node];
        if (node.up && node.epoch === ev.epoch && this.#faults) {
          this.#hash.num(ev.node);
          this.#takeSnapshot(node);
        }
        break;
      }
    }
  }

  /** The paused node an event is for, or null (resuming a node whose pause is over). */
  #pausedTarget(ev: SimEvent): SimNode | null {
    let index = -1;
    switch (ev.kind) {
      case Kind.Tick:
      case Kind.Disk:
      case Kind.Report:
      case Kind.Pump:
      case Kind.Snapshot:
      case Kind.Batch:
        index = ev.node;
        break;
      case Kind.Deliver:
        index = this.#byId.get(ev.msg.to)?.index ?? -1;
        break;
    }
    if (index < 0) return null;
    const node = this.#nodes[index];
    if (node.pausedUntilUs === 0) return null;
    if (node.pausedUntilUs > this.#now) return node;
    node.pausedUntilUs = 0;
    const ticks = node.pausedTicks;
    node.pausedTicks = 0;
    this.#note(() => `${node.id} RESUMES (${ticks} ticks due)`);
    // node.ts gives every tick that fell due before it handles any input: election timers and
    // leases expire on resume instead of the node believing no time has passed.
    if (node.up) {
      for (let i = 0; i < ticks; i++) node.raft!.tick();
      this.#afterInput(node);
    }
    return null;
  }

  /** Records a trace line (formatted lazily unless tracing). */
  #note(line: () => string): void {
    const t = this.#now;
    const tag = this.#tag;
    const stamped = () => `${(t / 1000).toFixed(3).padStart(10)}ms ${tag}${line()}`;
    this.#ring.push(stamped);
    if (this.#trace !== undefined) this.#trace(stamped());
  }

  // ---------------------------------------------------------------- node life

  #start(node: SimNode): void {
    if (node.refused) return;
    const fresh = node.disk.isFresh();
    // An empty dir runs the bootstrap check when wiped, or with --conf (a staggered start).
    const check = node.formerDisks.length > 0 ||
      (node.initialMember && this.#params.staggeredStart);
    if (fresh && check && !this.#probe(node)) return;
    node.booting = false;
    // An empty dir started with --join (a spare, a node added back) may replay configurations
    // of its id's earlier life: no vote and no campaign before it passes what a leader held.
    if (fresh && !node.initialMember && this.#options.mutation !== "no-vote-floor") {
      node.disk.voteFloor = -1;
    }
    node.disk.bound = true;
    const p = this.#params;
    const options: RaftOptions = {
      id: node.id,
      electionTicks: p.electionTicksOf[node.index],
      heartbeatTicks: p.heartbeatTicks,
      random: () => node.prng.float(),
      preVote: p.preVote,
      checkQuorum: p.checkQuorum,
      inflightMax: p.inflightMax,
      msgBytesMax: p.msgBytesMax,
      applyBatchMax: p.applyBatchMax,
      // As the real node does: a restarted node honours a lease it may have promised.
      respectLeaseOnStart: true,
      voteFloor: node.disk.voteFloor,
      quiesce: p.quiesce,
    };
    const initial = node.disk.recover();
    node.raft = new Raft(options, initial);
    node.up = true;
    node.sm = new CounterStateMachine();
    node.restoredAt = 0;
    // node.ts's clock runs on the process's monotonic clock; sessions expire in simulated
    // seconds here, so it runs at the speed of the leaders' model clock (`wallMsPerUs`).
    node.clock = new ClusterClock(() => this.#now * p.wallMsPerUs);
    if (initial.snapshot !== null) this.#restoreStateMachine(node, initial.snapshot);
    this.#observeStamps(node, initial.entries);
    node.applied = initial.snapshot === null ? 0 : initial.snapshot.index;
    node.write = null;
    node.leaderTerm = 0;
    node.termSeen = node.raft.term;
    node.commitChecked = node.applied;
    node.proposals = new Map();
    node.batch = [];
    node.reads = new Map();
    node.readsWaiting = [];
    node.quiet = false;
    node.leaderLostSinceUs = -1;
    node.peersSeen = new Map();
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

  /**
   * A node starts with an empty data dir: wiped, or an initial member of a staggered start.
   * node.ts asks every peer it knows of (the initial `--conf` members, or with `--join` the
   * members it was told to join) whether it has heard from this id, with bootstrap_check.ts's
   * rounds and decision, each peer answering with the real `answerIdentity`. True when it may go
   * on (with `--conf` it bootstrapped); false when it waits for answers (a restart is scheduled),
   * refused to start, or bootstrapped and is still starting (a restart is scheduled).
   */
  #probe(node: SimNode): boolean {
    const voters = this.#nodes.filter((n) => n.initialMemberOfRun).map((n) => n.id);
    const members = node.initialMember ? voters : this.#nodes.map((n) => n.id);
    const check = node.probeAnswers ?? { answers: new Map(), history: false };
    node.probeAnswers = check;
    let action: "bootstrap" | "refuse" | "wait" = "bootstrap";
    if (this.#options.mutation !== "no-identity-check") {
      // As runBootstrapCheck: one round asks every member not answered yet (the initial ones,
      // then every member an answer names), then decides.
      const asked = new Set(members);
      for (const a of check.answers.values()) for (const m of a.members ?? []) asked.add(m);
      for (const id of asked) {
        if (id === node.id || check.answers.has(id)) continue;
        const answer = this.#askIdentity(node, this.#byId.get(id));
        if (answer === null) continue;
        check.answers.set(id, answer);
        if (!answer.fresh) check.history = true;
      }
      // A --join node compares no cluster ids (it has none until it hears from a leader).
      const answers = node.initialMember ? check.answers : new Map(
        [...check.answers].map(([id, a]) => [id, { ...a, clusterId: "" }]),
      );
      action = decideBootstrap(answers, {
        self: node.id,
        members,
        clusterId: node.initialMember ? clusterIdText(1) : "",
        elapsedMs: 0,
        timeoutMs: 0,
        dataDir: "DIR",
      }).action as "bootstrap" | "refuse" | "wait";
    }
    this.#note(() => `${node.id} PROBE with an empty dir: ${action}`);
    if (action === "wait") {
      node.probing = true;
      const retryUs = this.#params.staggeredStart
        ? this.#params.probeRetryUs
        : this.#rng.int(10_000, 100_000);
      this.#schedule(retryUs, { kind: Kind.Restart, node: node.index });
      return false;
    }
    node.probing = false;
    node.probeAnswers = null;
    if (action === "refuse") {
      node.refused = true;
      this.#stats.startsRefused++;
      this.#beginReplace(node);
      return false;
    }
    node.wiped = false;
    if (!node.initialMember) return true;
    // No peer has ever heard from this id: it never voted nor acknowledged anything, so it may
    // start the group's first configuration as a brand-new member would.
    const initial = bootstrapState({ voters, learners: [] });
    const firstStart = node.formerDisks.length === 0;
    node.disk = new SimDisk(initial, node.disk.incarnation);
    if (firstStart) node.disk.clusterId = 1;
    // As node.ts: the group has a history no peer says this id took part in (a member that
    // started late, or whose peers' records of it were reset by a snapshot): catch up from a
    // leader before voting.
    if (check.history) node.disk.voteFloor = -1;
    if (firstStart) {
      this.#stats.staggeredBootstraps++;
      if (check.history) this.#stats.bootstrapsBelowVoteFloor++;
    } else {
      this.#stats.bootstrapsAfterWipe++;
    }
    if (!this.#params.staggeredStart) return true;
    // Its Raft node runs a while later; meanwhile it answers identity probes from its dir.
    node.booting = true;
    this.#note(() => `${node.id} BOOTSTRAPPED${check.history ? " below a vote floor" : ""}`);
    this.#schedule(this.#rng.int(0, this.#params.bootUsMax), {
      kind: Kind.Restart,
      node: node.index,
    });
    return false;
  }

  /**
   * `peer`'s answer to `asker`'s identity probe, as node.ts gives it (`answerIdentity`): null
   * when it does not answer (unreachable, down, paused, no process yet). A peer runs a process
   * that answers from its dir while it waits in its own check or is still starting.
   */
  #askIdentity(asker: SimNode, peer: SimNode | undefined): IdentityAnswer | null {
    if (peer === undefined) return null;
    const reachable = !this.#blocked[asker.index][peer.index] &&
      !this.#blocked[peer.index][asker.index];
    if (!reachable || peer.pausedUntilUs > this.#now) return null;
    const starting = peer.probing || peer.booting;
    if (!peer.up && !starting) return null;
    const disk = peer.disk;
    const dir: IdentitySource = {
      peerIncarnation: (id) => {
        const inc = disk.peerIncarnations.get(id);
        return inc === undefined ? undefined : inc.toString(16).padStart(16, "0");
      },
      clusterId: () => clusterIdText(disk.clusterId),
      // What the dir held when the process opened it: a starting node opened an empty one.
      recovered: () => ({ hardState: { term: peer.up ? disk.hardState.term : 0 } }),
      lastIndex: () => disk.lastIndex(),
      isFresh: () => disk.isFresh(),
    };
    const raft: IdentityRaftView | null = peer.up ? peer.raft! : null;
    if (peer.booting) this.#stats.answersWhileStarting++;
    const answer = answerIdentity(asker.id, dir, raft);
    if (this.#options.mutation === "starting-not-fresh") {
      // The answer before the fix: a starting node went by its dir being empty, a running one
      // by its log alone.
      answer.fresh = raft === null ? disk.isFresh() : raft.lastIndex <= 1;
    }
    return answer;
  }

  /**
   * Staggered start: each initial member's process starts at its drawn time and runs the
   * bootstrap check; spares start at once; in some seeds faults go on until
   * `startFaultsUs` after the last start. Returns once the group has a leader; a liveness
   * failure when it has none {@linkcode STAGGER_ELECTIONS} election timeouts after the faults
   * ended and every member runs its Raft node.
   */
  #staggeredStart(): void {
    const p = this.#params;
    const members = this.#nodes.filter((n) => n.initialMemberOfRun);
    for (const node of this.#nodes) {
      if (!node.initialMemberOfRun) this.#start(node);
      else this.#schedule(p.startUs[node.index], { kind: Kind.Restart, node: node.index });
    }
    this.#note(() =>
      `STAGGERED START at ${members.map((n) => `${n.id} ${p.startUs[n.index] / 1000}ms`)}`
    );
    const lastStartUs = Math.max(...members.map((n) => p.startUs[n.index]));
    const faultsEndUs = p.startFaultsUs === 0 ? 0 : lastStartUs + p.startFaultsUs;
    const faultMeanUs = this.#electionUsMax();
    let nextFaultUs = p.startFaultsUs === 0 ? Infinity : this.#expDelay(faultMeanUs);
    let allUpUs = -1;
    /** When the faults of the start ended (the network healed). */
    let healedUs = p.startFaultsUs === 0 ? 0 : Infinity;
    for (;;) {
      if (!this.#step()) throw new CheckFailure(Check.liveness, "no events left");
      if (this.#leaders().length > 0) return;
      if (this.#now >= nextFaultUs) {
        if (this.#now < faultsEndUs) {
          this.#startFault(members);
          nextFaultUs = this.#now + this.#expDelay(faultMeanUs);
        } else {
          // Faults end: the network heals, members that are down start again.
          nextFaultUs = Infinity;
          healedUs = this.#now;
          this.#partitionGeneration++;
          this.#heal();
          for (const n of members) if (!n.up && !n.probing && !n.booting) this.#start(n);
        }
      }
      if (!members.every((n) => n.up)) allUpUs = -1;
      else if (allUpUs < 0) allUpUs = this.#now;
      // Without faults, every member bootstraps within a few check rounds of the last start.
      const fromUs = allUpUs >= 0
        ? Math.max(healedUs, allUpUs)
        : Math.max(healedUs, lastStartUs) + p.bootUsMax + 10 * p.probeRetryUs;
      if (this.#now > fromUs + STAGGER_ELECTIONS * this.#electionUsMax()) {
        throw new CheckFailure(
          Check.liveness,
          `no leader ${STAGGER_ELECTIONS} election timeouts after ` +
            `${allUpUs >= 0 ? "every initial member started" : "the last initial member began"}` +
            ` (staggered start): ${this.#describeCluster()}`,
        );
      }
    }
  }

  /**
   * A fault while a staggered group starts: a partition, or a crash of a member that is checking
   * (it checks again from the start), starting (it runs Raft once back), or running.
   */
  #startFault(members: SimNode[]): void {
    if (this.#rng.chance(0.4)) {
      this.#chaosPartition();
      return;
    }
    const node = this.#rng.pick(members);
    if (node.probing) {
      // The process restarts at once (a supervisor): its check starts over.
      node.probeAnswers = null;
      this.#note(() => `${node.id} CRASH while checking: its check starts over`);
    } else if (node.booting) {
      // Its dir holds the bootstrap entry: it runs Raft when the pending restart comes.
      node.booting = false;
      this.#note(() => `${node.id} CRASH while starting`);
    } else if (node.up) {
      this.#crash(node);
      this.#schedule(this.#rng.int(1_000, this.#electionUsMax() * 3), {
        kind: Kind.Restart,
        node: node.index,
      });
    }
  }

  /** Starts a node the operator just wiped after its removal: nobody may know it, no probe. */
  #startJoining(node: SimNode): void {
    const former = node.formerDisks;
    node.formerDisks = [];
    try {
      this.#start(node);
    } finally {
      node.formerDisks = former;
    }
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
    node.up = false;
    node.pausedUntilUs = 0;
    node.pausedTicks = 0;
    for (const list of node.proposals.values()) {
      for (const p of list) this.#resolve(p, "unknown");
    }
    node.proposals = new Map();
    // Increments held for a batch die with the process: their clients hear nothing.
    for (const p of node.batch) this.#resolve(p, "unknown");
    node.batch = [];
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
    if (node.raft!.quiesced) this.#stats.quietTicks++;
    node.raft!.tick();
    if (
      this.#params.quiesce && this.#host === null && this.#options.mutation !== "no-node-liveness"
    ) {
      this.#nodeLiveness(node);
    }
    this.#afterInput(node);
    const jitter = this.#params.tickJitterUsMax === 0
      ? 0
      : this.#rng.int(0, this.#params.tickJitterUsMax);
    this.#schedule(this.#params.tickUs[index] + jitter, { kind: Kind.Tick, node: index, epoch });
  }

  /**
   * The host's node liveness, which quiescence relies on. A quiet follower has no election timer:
   * when it has not been able to reach its leader's node for an election timeout (the node is
   * down or paused, or a link between them is cut either way), the shell wakes it. A quiet leader
   * sends nothing: when a member's node comes back (it restarted, or was unreachable and is not
   * any more), the shell wakes the leader, whose heartbeats then find out what that node lacks
   * (a restarted learner, which never campaigns, would otherwise wait forever).
   */
  #nodeLiveness(node: SimNode): void {
    const r = node.raft!;
    if (r.role === Role.Leader) {
      let back = "";
      for (const id of [...r.conf.voters, ...r.conf.learners]) {
        const peer = this.#byId.get(id);
        if (peer === undefined || peer === node) continue;
        const seen = this.#reachable(node, peer) ? `up ${peer.epoch}` : "down";
        const before = node.peersSeen.get(id);
        node.peersSeen.set(id, seen);
        if (before !== undefined && before !== seen && seen !== "down") back = id;
      }
      if (back === "" || !r.quiesced) return;
      this.#stats.livenessWakes++;
      this.#note(() => `${node.id} UNQUIESCE: ${back} is back`);
      r.unquiesce();
      return;
    }
    node.peersSeen.clear();
    const leader = r.leader === "" || r.leader === node.id ? undefined : this.#byId.get(r.leader);
    if (leader === undefined || this.#reachable(node, leader)) {
      node.leaderLostSinceUs = -1;
      return;
    }
    if (node.leaderLostSinceUs < 0) node.leaderLostSinceUs = this.#now;
    const electionUs = this.#params.electionTicksOf[node.index] * this.#params.tickUs[node.index];
    if (!r.quiesced || this.#now - node.leaderLostSinceUs < electionUs) return;
    this.#stats.livenessWakes++;
    this.#note(() => `${node.id} UNQUIESCE: leader ${r.leader} unreachable`);
    r.unquiesce();
  }

  /** `peer`'s process runs and the links between it and `node` carry messages both ways. */
  #reachable(node: SimNode, peer: SimNode): boolean {
    return peer.up && peer.pausedUntilUs <= this.#now && !this.#blocked[peer.index][node.index] &&
      !this.#blocked[node.index][peer.index];
  }

  /**
   * Runs after every input to a node: role checks, then the Ready loop, or (pumping shell, with a
   * write in flight) the pump, as node.ts's `#kick` does on the next microtask.
   */
  #afterInput(node: SimNode): void {
    this.#observe(node);
    if (node.up && node.write !== null) {
      if (this.#params.pump && this.#rng.chance(this.#params.pumpAfterInput)) {
        this.#pumpBetweenReadys(node);
      }
      return;
    }
    this.#readyLoop(node);
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
    const quiet = r.role === Role.Leader && r.quiesced;
    if (quiet && !node.quiet) {
      this.#stats.quiescences++;
      this.#note(() => `${node.id} QUIESCED its group (term ${term}, index ${r.lastIndex})`);
    }
    node.quiet = quiet;
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
      this.#clientsSeeLeader(node);
    }
  }

  // ---------------------------------------------------------------- the shell loop

  /** node.ts's `#runLoop`: handle Readys until one waits for the disk or none is left. */
  #readyLoop(node: SimNode): void {
    for (let rounds = 0; rounds < READY_ROUNDS_MAX; rounds++) {
      if (!node.up || node.write !== null) return;
      const r = node.raft!;
      if (!r.hasReady()) return;
      const rd = r.ready();
      this.#onReady(node, rd);
      const late = this.#options.mutation === "late-ready-apply";
      if (this.#params.pump && rd.snapshot === null && !late) {
        // node.ts applies a Ready's committed entries before its write: they are durable on a
        // quorum, and the pump may apply later ones while the write runs.
        const early = rd.committedEntries.length;
        for (const e of rd.committedEntries) this.#apply(node, e);
        if (!isEmptyWrite(rd)) this.#stats.appliedEarly += early;
        if (!node.up) return;
      }
      if (!isEmptyWrite(rd)) {
        node.write = rd;
        const seq = ++node.writeSeq;
        const p = this.#params;
        const latency = this.#rng.int(p.diskUsMin, p.diskUsMax);
        this.#schedule(latency, { kind: Kind.Disk, node: node.index, epoch: node.epoch });
        if (p.snapshots && this.#rng.chance(SNAPSHOT_DURING_WRITE)) {
          // node.ts's snapshot timer (or its log-size trigger) firing while the write runs.
          this.#schedule(this.#rng.int(0, latency), {
            kind: Kind.Snapshot,
            node: node.index,
            epoch: node.epoch,
          });
        }
        if (p.pump) {
          // Pumps at random moments of the write, as microtasks run between network reads.
          const pumps = this.#rng.int(0, p.pumpsPerWriteMax);
          for (let i = 0; i < pumps; i++) {
            this.#schedule(this.#rng.int(0, latency), {
              kind: Kind.Pump,
              node: node.index,
              epoch: node.epoch,
              write: seq,
            });
          }
        }
        return;
      }
      this.#completeReady(node, rd);
      this.#observe(node);
    }
    throw new CheckFailure(Check.shell, `${node.id} produced Readies without end`);
  }

  /**
   * node.ts's `#pump`, run while a Ready's write is in flight: send the leader's new appends and
   * heartbeats; unless the Ready installs a snapshot, apply newly committed entries and handle
   * answered reads.
   */
  #pumpBetweenReadys(node: SimNode): void {
    const r = node.raft!;
    const rd = node.write!;
    const early = r.takeEarlyMessages();
    if (early.length > 0) {
      this.#checkCommitExposed(node);
      this.#note(() => `${node.id} pump: ${early.length} early messages`);
      this.#stats.pumpedMessages += early.length;
      for (const m of early) this.#send(node, m);
    }
    if (rd.snapshot !== null && this.#options.mutation !== "pump-during-snapshot") return;
    const entries = r.takeCommittedEntries();
    if (entries.length > 0) {
      this.#checkCommitExposed(node);
      this.#note(() =>
        `${node.id} pump: apply ${entries[0].index}..${entries[entries.length - 1].index}`
      );
      this.#stats.appliedEarly += entries.length;
      for (const e of entries) {
        this.#apply(node, e);
        if (!node.up) return;
      }
    }
    const { readStates, failedReads } = r.takeReadStates();
    this.#handleReads(node, readStates, failedReads);
  }

  /**
   * A leader exposes its commit index (applying, App and Heartbeat messages): it must be durable
   * on a majority of the configuration it was counted in.
   */
  #checkCommitExposed(node: SimNode): void {
    const r = node.raft!;
    if (node.leaderTerm !== r.term || r.commitIndex <= node.commitChecked) return;
    const c = r.commitIndex;
    const confs: ConfState[] = [r.conf, r.confAt(c)];
    this.#checker.commitExposed(node.id, c, r.termAt(c)!, confs, (id) => this.#diskView(id));
    node.commitChecked = c;
  }

  /**
   * What `id` holds for the durability check: its disk, or one it had before a wipe (a commit
   * counted on an acknowledgement was durable then; losing the disk later is the fault).
   */
  #diskView(id: NodeId): DiskView | undefined {
    const node = this.#byId.get(id);
    if (node === undefined) return undefined;
    if (node.formerDisks.length === 0) return node.disk;
    const disks = [node.disk, ...node.formerDisks];
    return {
      hardState: node.disk.hardState,
      holds: (index, term) => disks.some((d) => d.holds(index, term)),
    };
  }

  /** node.ts's `#observeStamps`: cluster time never goes below a stamp the node holds. */
  #observeStamps(node: SimNode, entries: readonly Entry[]): void {
    for (const e of entries) {
      if (e.type !== EntryType.Normal) continue;
      const stampMs = readStampMs(e.data);
      if (stampMs !== null) node.clock.observe(stampMs);
    }
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
      this.#observeStamps(node, rd.entries);
    }
    this.#checkCommitExposed(node);
    // The plain shell notes read indexes at once; node.ts handles them after the write.
    if (!this.#params.pump) this.#noteReads(node, rd.readStates, rd.failedReads);
    for (const m of rd.messagesEarly) this.#send(node, m);
    if (this.#options.mutation === "send-before-persist") {
      for (const m of rd.messages) this.#send(node, m);
    }
  }

  #noteReads(node: SimNode, readStates: readonly ReadState[], failedReads: readonly number[]) {
    for (const rs of readStates) {
      const read = node.reads.get(rs.requestId);
      if (read === undefined || read.index >= 0) continue;
      this.#checker.readIndexReturned(node.id, read.id, read.ackedIndexMax, rs.index);
      read.index = rs.index;
      node.readsWaiting.push(read);
    }
    for (const id of failedReads) {
      if (node.reads.delete(id)) this.#stats.readsFailed++;
    }
  }

  /** node.ts's `#handleReads`: note read indexes and failures, serve what is applied. */
  #handleReads(node: SimNode, readStates: readonly ReadState[], failedReads: readonly number[]) {
    this.#noteReads(node, readStates, failedReads);
    this.#serveReads(node);
  }

  #onDiskDone(index: number, epoch: number): void {
    const node = this.#nodes[index];
    if (!node.up || node.epoch !== epoch || node.write === null) return;
    this.#hash.num(index);
    const rd = node.write;
    node.write = null;
    node.disk.write(rd);
    // The shell saves a vote floor fixed by the first leader it heard (meta), with the write.
    if (node.disk.voteFloor === -1) node.disk.voteFloor = node.raft!.voteFloor;
    this.#note(() => `${node.id} write durable`);
    this.#completeReady(node, rd);
    this.#afterInput(node);
  }

  /** The Ready's write is durable: send, apply (what is left), handle reads, advance. */
  #completeReady(node: SimNode, rd: Ready): void {
    if (this.#options.mutation !== "send-before-persist") {
      for (const m of rd.messages) this.#send(node, m);
    }
    if (rd.snapshot !== null) this.#applySnapshot(node, rd.snapshot);
    const late = this.#options.mutation === "late-ready-apply";
    if (!this.#params.pump || rd.snapshot !== null || late) {
      for (const e of rd.committedEntries) {
        this.#apply(node, e);
        if (!node.up) return;
      }
    }
    if (this.#params.pump) {
      this.#handleReads(node, rd.readStates, rd.failedReads);
      node.raft!.advance(rd);
    } else {
      node.raft!.advance(rd);
      this.#serveReads(node);
    }
  }

  /** Loads a snapshot into a fresh state machine (a restart, or the leader's snapshot). */
  #restoreStateMachine(node: SimNode, s: Snapshot): void {
    const sm = new CounterStateMachine();
    if (this.#options.mutation === "lose-sessions" && node.index === 1) {
      // The broken restore keeps only the counter value.
      sm.apply({ delta: smValueOf(s), proposedAtMs: 0, clientId: "", seq: 0, ackedBelow: 0 });
    } else {
      sm.restore(s.data);
      // The session table must survive the round trip exactly (order included: it decides
      // which session expires or is evicted first).
      if (!sameBytes(sm.snapshot(), s.data)) {
        throw new CheckFailure(
          Check.exactlyOnce,
          `${node.id} restored snapshot ${s.index}, and its state machine encodes differently`,
        );
      }
    }
    node.sm = sm;
    node.restoredAt = s.index;
    node.clock.observe(sm.newestActivityMs());
    this.#compareBytes(node, s.index, s.data, "snapshot");
  }

  /** At a sampled index, snapshot `data` must be the reference state machine's bytes. */
  #compareBytes(node: SimNode, index: number, data: Uint8Array, what: string): void {
    if (!this.#ledger.sampled(index)) return;
    this.#stats.bytesCompared++;
    this.#ledger.compareData(node.id, index, data, what);
  }

  #applySnapshot(node: SimNode, s: Snapshot): void {
    this.#restoreStateMachine(node, s);
    // The snapshot may cover a member's removal and its return with a new data dir, which this
    // node never saw as entries: node.ts forgets every recorded incarnation, and records each
    // peer's afresh from its next connection (the others still hold theirs).
    this.#forgetNonMembers(node, { voters: [], learners: [] });
    node.applied = s.index;
    this.#stats.snapshotsInstalled++;
    const value = node.sm.value;
    this.#note(() => `${node.id} installed snapshot ${s.index}/t${s.term} value ${value}`);
    this.#checker.snapshotApplied(node.id, node.raft!.term, s);
    // Proposals the snapshot jumped over: the proposer never learns what became of them.
    for (const [index, list] of node.proposals) {
      if (index > s.index) continue;
      node.proposals.delete(index);
      for (const p of list) this.#resolve(p, "unknown");
    }
  }

  /**
   * node.ts forgets the incarnations of ids a committed configuration (applied from an entry or
   * a snapshot) no longer names, so that an id removed and added back with a new data dir can be
   * heard from again.
   */
  #forgetNonMembers(node: SimNode, conf: ConfState): void {
    if (this.#options.mutation === "no-identity-check") return;
    for (const id of [...node.disk.peerIncarnations.keys()]) {
      if (!conf.voters.includes(id) && !conf.learners.includes(id)) {
        node.disk.peerIncarnations.delete(id);
        this.#note(() => `${node.id} forgets the incarnation of ${id}`);
      }
    }
  }

  #apply(node: SimNode, e: Entry): void {
    if (e.index !== node.applied + 1) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node.id} applied index ${e.index} right after index ${node.applied}`,
      );
    }
    this.#ledger.observe(node.id, e);
    const before = node.sm.value;
    let results: ApplyResult[] | null = null;
    const m = this.#options.mutation;
    if (isCommand(e)) {
      if ((m === "corrupt-apply" || m === "local-clock-expiry") && node.index === 1) {
        results = decodeIncrements(e.data).map((cmd) => {
          if (m === "corrupt-apply" && cmd.seq % 2 === 1) cmd.delta++;
          if (m === "local-clock-expiry") cmd.proposedAtMs = this.#wallMs(node);
          return node.sm.apply(cmd);
        });
      } else {
        // As node.ts: the whole entry (one increment or a batch) in one call.
        results = node.sm.applyEntry(e.data);
      }
    }
    node.applied = e.index;
    this.#stats.applied++;
    if (e.type === EntryType.Config) this.#forgetNonMembers(node, decodeConfState(e.data));
    const sampled = this.#ledger.sampled(e.index);
    if (sampled) this.#stats.bytesCompared++;
    this.#ledger.nodeApplied(node.id, e, before, results, node.sm);
    this.#checker.entryApplied(node.id, node.raft!.term, e, node.sm.value);
    for (const firstIndex of this.#ledger.repeatsAt(e.index)) {
      // This node answered a repeated request with the first answer (checked just above).
      this.#stats.duplicateAnswers++;
      if (firstIndex === e.index) this.#stats.batchRepeats++;
      if (node.restoredAt >= firstIndex) this.#stats.duplicateAnswersAfterRestore++;
    }
    const waiting = node.proposals.get(e.index);
    if (waiting === undefined) return;
    node.proposals.delete(e.index);
    for (const p of waiting) {
      if (p.term !== e.term) {
        // node.ts answers NOT_APPLIED: another leader's entry took the index.
        this.#resolve(p, "failed");
        continue;
      }
      if (!sameBytes(p.data, e.data)) {
        throw new CheckFailure(
          Check.logMatching,
          `${node.id} proposed #${p.id} at index ${p.index} term ${p.term}, applied other ` +
            `data there`,
        );
      }
      const answer = observable(results![p.item]);
      this.#checker.commandAcked(p.index, p.term, p.data);
      this.#resolve(p, "acked");
      this.#note(() => `${node.id} ACK #${p.id} ${describeProposal(p)} at ${p.index}: ${answer}`);
      if (p.request !== null) this.#onAnswer(node, p, e.index, answer);
    }
  }

  #resolve(p: Proposal, status: "acked" | "failed" | "unknown"): void {
    if (p.status !== "pending") return;
    p.status = status;
    this.#stats[status]++;
    // The client hears of a failed or lost attempt (NOT_APPLIED, a broken connection, TIMEOUT)
    // and tries again soon, with the same sequence number.
    const req = p.request;
    if (status !== "acked" && req !== null && !p.duplicate && p.generation === req.generation) {
      this.#scheduleRetry(req, this.#rng.int(1_000, 10_000));
    }
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
    read.value = node.sm.value;
    node.reads.delete(read.id);
    this.#stats.reads++;
    this.#note(() => `${node.id} READ ${read.id} = ${read.value} at index ${index}`);
    this.#checker.readServed(node.id, read.id, read.ackedIndexMax, index, node.sm.value);
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
        incarnation: node.disk.incarnation,
        cluster: node.disk.clusterId,
        toIncarnation: to.disk.incarnation,
        epoch: node.epoch,
        sentUs: this.#now,
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

  /**
   * node.ts's HELLO check: a node steps messages of a peer only from the incarnation (data dir)
   * it first heard from under that id, recorded durably before the first message is stepped. A
   * peer that comes back with a wiped dir is thus never heard again under its old id until the
   * configuration no longer names it.
   */
  #identityAccepts(to: SimNode, m: Message, incarnation: number): boolean {
    if (this.#options.mutation === "no-identity-check") return true;
    const from = m.from;
    const known = to.disk.peerIncarnations.get(from);
    // Only answers are counted (votes granted, entries acknowledged, heartbeats confirming a
    // lease or a read): those of an unknown incarnation are dropped. Requests, and a leader's
    // appends, are safe from anyone: a node that missed a member's replacement must still follow
    // the new incarnation when it leads, or it could never learn of the replacement.
    if (known !== undefined && known !== incarnation) {
      // As judgeHello: a record binds for members of the committed configuration and voters of
      // the latest; a learner whose addition never committed may come back with a new dir.
      const r = to.raft!;
      if (settledMembers(r.conf, r.confAt(r.commitIndex))?.has(from) !== false) {
        return !isCountedAnswer(m.type);
      }
      to.disk.peerIncarnations.set(from, incarnation);
      this.#note(() => `${to.id} replaces the incarnation of unsettled ${from} by ${incarnation}`);
      return true;
    }
    if (known !== undefined) return true;
    // Only members are recorded (and forgotten once a committed configuration drops them);
    // a message from an id this node does not count (yet) cannot have been counted by it.
    const conf = to.raft!.conf;
    if (conf.voters.includes(from) || conf.learners.includes(from)) {
      to.disk.peerIncarnations.set(from, incarnation);
      this.#note(() => `${to.id} records incarnation ${incarnation} of ${from}`);
    }
    return true;
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

  #onDeliver(ev: SimEvent & { kind: Kind.Deliver }): void {
    const { msg: m, incarnation, cluster, toIncarnation } = ev;
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
    if (this.#linkResetUs !== null && ev.sentUs < this.#linkResetUs[from.index][to.index]) {
      // The one connection between the two nodes closed since: every group's messages on it
      // were lost.
      this.#note(() => `drop (connection closed) ${formatMessage(m)}`);
      this.#drop(m);
      return;
    }
    const stale = from.disk.incarnation !== incarnation || to.disk.incarnation !== toIncarnation;
    if (stale && this.#options.mutation !== "no-identity-check") {
      // Sender or receiver had its data dir wiped since: the connection died with the process.
      this.#note(() => `drop (a wiped end's old connection) ${formatMessage(m)}`);
      this.#drop(m);
      return;
    }
    // The host heard the sender's process: node liveness counts any message of any group.
    this.#host?.heard(from.index, to.index, ev.epoch);
    const mine = to.disk.clusterId;
    if (cluster !== 0 && mine !== 0 && cluster !== mine) {
      // The HELLO of another cluster's node is refused: a group forced from a survivor never
      // hears the old group's nodes, and they never hear it.
      this.#note(() => `drop (cluster ${cluster}, not ${mine}) ${formatMessage(m)}`);
      this.#stats.clusterDrops++;
      this.#drop(m);
      return;
    }
    // As node.ts: a node that joined takes the cluster id of the leader whose entries or
    // snapshot it first takes (not of a heartbeat alone).
    const givesState = (m.type === MessageType.App && m.entries.length > 0) ||
      m.type === MessageType.Snap;
    if (mine === 0 && cluster !== 0 && givesState) to.disk.clusterId = cluster;
    if (!this.#identityAccepts(to, m, incarnation)) {
      this.#note(() =>
        `drop (incarnation ${incarnation} of ${m.from} unknown) ${formatMessage(m)}`
      );
      this.#stats.identityDrops++;
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
    const actions: (ChaosAction | DiskChaosAction | IdleAction)[] = [
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
    if (this.#params.diskFaults) {
      const dw = this.#params.diskWeights;
      actions.push("wipe", "loss", "pause", "clockJump", "majorityLoss");
      weights.push(
        dw.wipe,
        dw.loss,
        dw.pause,
        dw.clockJump,
        this.#params.forcedReset && this.#stats.forcedResets === 0 ? dw.majorityLoss : 0,
      );
    }
    if (this.#params.quiesce) {
      // Only quiesce seeds: the others draw their faults as before.
      actions.push("idle");
      weights.push(2);
    }
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
        case "wipe":
          this.#chaosWipe();
          break;
        case "loss":
          this.#chaosLoss();
          break;
        case "pause":
          this.#chaosPause();
          break;
        case "clockJump":
          this.#chaosClockJump();
          break;
        case "majorityLoss":
          this.#chaosMajorityLoss();
          break;
        case "idle": {
          const idleUs = Math.round(this.#electionUsMax() * this.#rng.range(1, 5));
          this.#idleUntilUs = Math.max(this.#idleUntilUs, this.#now + idleUs);
          this.#note(() => `IDLE clients for ${idleUs / 1000} ms`);
          break;
        }
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

  /** A node is being repaired: wiped, waiting for its probe, refused or being replaced. */
  #repairing(): boolean {
    return this.#replacing.size > 0 ||
      this.#nodes.some((n) =>
        n.probing || n.booting || n.refused || n.wiped || this.#belowVoteFloor(n)
      );
  }

  /**
   * A voter that started empty and may not vote yet: for the group, one voter short. (Spares
   * that were never added hold nothing and count as nothing.)
   */
  #belowVoteFloor(n: SimNode): boolean {
    const r = n.raft;
    const below = !n.up || r === null
      ? n.disk.voteFloor === -1
      : r.voteFloor === -1 || r.lastIndex < r.voteFloor;
    if (!below) return false;
    // A voter by any running node's configuration.
    return this.#nodes.some((m) => m.up && m.raft !== null && m.raft.conf.voters.includes(n.id));
  }

  /**
   * Nodes whose disk may fail now. One repair at a time, and only while the group's committed
   * configuration has at least three voters: losing a disk in a smaller group loses its
   * majority for good, which needs `counter recover`, not a replacement.
   */
  #repairable(): SimNode[] {
    if (this.#repairing()) return [];
    const leaders = this.#leaders();
    if (leaders.length !== 1) return [];
    const r = leaders[0].raft!;
    if (r.confAt(r.commitIndex).voters.length < 3 || r.conf.voters.length < 3) return [];
    // A configuration that only a stale log suffix holds counts too: the longest log may carry
    // an uncommitted change to two voters (a former leader's self-removal), and whoever wins
    // then commits it. Losing one of those two is a majority loss, not a single disk loss.
    if (this.#nodes.some((n) => this.#latestVoters(n) < 3)) return [];
    return this.#nodes.slice();
  }

  /** Voters of the latest configuration in `node`'s log (∞ for a node that holds none). */
  #latestVoters(node: SimNode): number {
    if (node.up && node.raft !== null) {
      const voters = node.raft.conf.voters.length;
      return voters === 0 ? Number.POSITIVE_INFINITY : voters;
    }
    for (let i = node.disk.entries.length - 1; i >= 0; i--) {
      const e = node.disk.entries[i];
      if (e.type === EntryType.Config) return decodeConfState(e.data).voters.length;
    }
    const snap = node.disk.snapshot;
    return snap === null || snap.conf.voters.length === 0
      ? Number.POSITIVE_INFINITY
      : snap.conf.voters.length;
  }

  #chaosWipe(): void {
    const candidates = this.#repairable();
    if (candidates.length === 0) return;
    const node = this.#rng.pick(candidates);
    if (node.up) this.#crash(node);
    this.#replaceDisk(node);
    node.wiped = true;
    this.#stats.wipes++;
    this.#note(() => `${node.id} WIPED: restarts with an empty dir, same id and --conf`);
    this.#schedule(this.#rng.int(1_000, this.#params.downUsMax), {
      kind: Kind.Restart,
      node: node.index,
    });
  }

  /** The disk loses its newest data; the storage notices on restart and refuses to start. */
  #chaosLoss(): void {
    const candidates = this.#repairable();
    if (candidates.length === 0) return;
    const node = this.#rng.pick(candidates);
    if (node.up) this.#crash(node);
    node.refused = true;
    this.#stats.losses++;
    this.#stats.startsRefused++;
    this.#note(() => `${node.id} DISK LOSS: it will refuse to start`);
    this.#beginReplace(node);
  }

  #chaosPause(): void {
    const up = this.#upNodes().filter((n) => n.pausedUntilUs === 0);
    if (up.length === 0) return;
    const leaders = up.filter((n) => n.raft!.role === Role.Leader);
    const node = leaders.length > 0 && this.#rng.chance(0.5)
      ? this.#rng.pick(leaders)
      : this.#rng.pick(up);
    const tickUs = this.#params.tickUs[node.index];
    const electionUs = this.#params.electionTicks * tickUs;
    const pauseUs = Math.round(electionUs * this.#rng.range(1.2, this.#params.pauseElectionsMax));
    node.pausedUntilUs = this.#now + pauseUs;
    node.pausedTicks = Math.floor(pauseUs / tickUs);
    this.#stats.pauses++;
    this.#note(() => `${node.id} PAUSED for ${pauseUs / 1000} ms`);
  }

  /** A node's wall clock steps (NTP, an operator, a VM restore): cluster time must not care. */
  #chaosClockJump(): void {
    const node = this.#rng.pick(this.#nodes);
    const jumpMs = Math.round(CLIENT_IDLE_EXPIRY_MS * this.#rng.range(-2, 2));
    this.#wallOffsetMs[node.index] += jumpMs;
    this.#stats.clockJumps++;
    this.#note(() => `${node.id} WALL CLOCK JUMPS by ${jumpMs} ms`);
  }

  /**
   * A majority of the voters is lost for good (their disks with it). The operator runs
   * `counter recover --force-new-cluster` on one survivor, as README says: it keeps its log,
   * becomes a one-voter group in a new term with a new cluster id, and every other node is
   * wiped and added back. Increments only the lost majority held are lost by design; the checks
   * go on from the survivor's history.
   */
  #chaosMajorityLoss(): void {
    if (this.#repairing()) return;
    const leaders = this.#leaders();
    if (leaders.length !== 1) return;
    const r = leaders[0].raft!;
    const voters = r.confAt(r.commitIndex).voters;
    if (voters.length < 3 || r.conf.voters.length !== voters.length) return;
    // The operator forces a survivor that holds something (recover refuses an empty dir).
    const up = voters.map((id) => this.#byId.get(id)!).filter((n) =>
      n.up && n.disk.lastIndex() > 0
    );
    if (up.length === 0) return;
    const forced = this.#rng.pick(up);
    const survivorsMax = Math.floor((voters.length - 1) / 2);
    const survivors = new Set<SimNode>([forced]);
    while (survivors.size < Math.min(survivorsMax, this.#rng.int(1, survivorsMax))) {
      survivors.add(this.#rng.pick(voters.map((id) => this.#byId.get(id)!)));
    }
    const commit = forced.raft!.commitIndex;
    const oldCluster = forced.disk.clusterId;
    for (const n of this.#nodes) if (n.up) this.#crash(n);
    // What the survivor's disk holds of the committed history: up to its commit index, as far
    // as its entries are the committed ones (a write overwriting old entries, or installing a
    // snapshot, may have been lost in the crash).
    let keptIndex = Math.min(commit, forced.disk.lastIndex());
    while (
      keptIndex > forced.disk.snapshotIndex() &&
      forced.disk.term(keptIndex) !== this.#checker.committedTerm(keptIndex)
    ) keptIndex--;
    const state = forceNewClusterState(forced.disk.recover(), forced.id);
    // Same data dir (incarnation), new cluster id, the other members' incarnations forgotten.
    const disk = new SimDisk(state.state, forced.disk.incarnation);
    disk.bound = true;
    disk.clusterId = ++this.#clusterSeq;
    forced.disk = disk;
    this.#checker.forcedReset(keptIndex, state.entry.term);
    this.#ledger.truncate(keptIndex);
    // Answers whose only application the lost majority held are lost with it: the survivor's
    // group may apply a retry or a duplicate of such a request afresh, with another answer.
    const kept: Request[] = [];
    for (const req of this.#answered) {
      if (this.#ledger.firstApplication(req.client.id, req.seq) !== undefined) kept.push(req);
      else req.answer = null;
    }
    this.#answered.length = 0;
    this.#answered.push(...kept);
    this.#stats.forcedResets++;
    this.#note(() =>
      `MAJORITY LOST: survivors ${[...survivors].map((n) => n.id)}; ${forced.id} forced into ` +
      `cluster ${disk.clusterId} at ${state.entry.index}/t${state.entry.term}, kept index ` +
      `${keptIndex}`
    );
    this.#schedule(this.#rng.int(1_000, 50_000), { kind: Kind.Restart, node: forced.index });
    for (const n of this.#nodes) {
      if (n === forced) continue;
      if (survivors.has(n)) {
        // A survivor that was not forced stays stopped (README: run recover on one survivor
        // only) until the operator wipes it and adds it back. Started as it is, its cluster id
        // fences it off; tests/e2e/recover_test.ts checks that with real processes.
        n.refused = true;
        this.#beginReplace(n);
      } else if (n.disk.clusterId === oldCluster || voters.includes(n.id)) {
        n.refused = true;
        this.#beginReplace(n);
      }
    }
  }

  // ---------------------------------------------------------------- the operator

  /**
   * The operator replaces `node` as README says: remove it, wipe it, `--join`, add, promote;
   * one node at a time, each caught up and promoted before the next is added.
   */
  #beginReplace(node: SimNode): void {
    this.#replacing.add(node.index);
    this.#replaceQueue.push(node.index);
    this.#note(() => `${node.id} cannot serve; the operator replaces it`);
    this.#schedule(this.#rng.int(10_000, 100_000), {
      kind: Kind.Operator,
      node: node.index,
      step: "remove",
    });
  }

  #operatorReplace(index: number, step: ReplaceStep): void {
    const node = this.#nodes[index];
    const again = (next: ReplaceStep) =>
      this.#schedule(this.#rng.int(20_000, 100_000), {
        kind: Kind.Operator,
        node: index,
        step: next,
      });
    // README's procedure adds dead nodes back one at a time: a node added back with the id of a
    // former voter may hold an old configuration naming it a voter until it has caught up, and
    // two such nodes at once could elect each other under it (the id is reused; etcd gives a
    // replaced member a new member id instead).
    if (this.#replaceQueue[0] !== index) return again(step);
    const leaders = this.#leaders();
    if (leaders.length === 0) return again(step);
    const leader = this.#rng.pick(leaders);
    const r = leader.raft!;
    // Only a leader that committed an entry of its term knows the committed configuration
    // (as `counter peers list` asks the leader); a stale one may lack the latest changes.
    if (r.termAt(r.commitIndex) !== r.term) return again(step);
    const committed = r.confAt(r.commitIndex);
    const isMember = (c: ConfState) => c.voters.includes(node.id) || c.learners.includes(node.id);
    const propose = (change: ConfChange) => {
      const res = r.proposeConfChange(change);
      this.#note(() =>
        `OPERATOR ${change.type} ${change.node} at ${leader.id}: ` +
        (res.ok ? `at ${res.firstIndex}/t${res.term}` : res.reason)
      );
      this.#afterInput(leader);
    };
    switch (step) {
      case "remove": {
        if (isMember(r.conf)) {
          propose({ type: "remove", node: node.id });
          return again("remove");
        }
        if (isMember(committed)) return again("remove");
        // The removal is committed: wipe the dir and start the node with --join.
        if (node.up) this.#crash(node);
        this.#replaceDisk(node);
        node.wiped = false;
        node.refused = false;
        node.probing = false;
        node.initialMember = false;
        this.#note(() => `OPERATOR wiped ${node.id} and starts it with --join`);
        if (!node.up) this.#startJoining(node);
        return again("add");
      }
      case "add":
        if (!isMember(r.conf)) propose({ type: "addLearner", node: node.id });
        return again(isMember(committed) ? "promote" : "add");
      case "promote": {
        if (committed.voters.includes(node.id) || !isMember(committed)) {
          // A voter again (or a membership change removed it meanwhile: a spare now).
          this.#replacing.delete(index);
          this.#replaceQueue.shift();
          this.#stats.replacements++;
          this.#note(() => `OPERATOR done replacing ${node.id}`);
          return;
        }
        const match = r.status().peers.find((pr) => pr.id === node.id)?.match ?? 0;
        if (match >= r.lastIndex && !r.conf.voters.includes(node.id)) {
          propose({ type: "promote", node: node.id });
        }
        return again("promote");
      }
    }
  }

  /** Gives `node` a new, empty data dir (keeping the old one for the durability check). */
  #replaceDisk(node: SimNode): void {
    node.formerDisks.push(node.disk);
    node.disk = new SimDisk(
      { hardState: { term: 0, vote: "" }, snapshot: null, entries: [] },
      ++this.#incarnationSeq,
    );
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
    this.#takeSnapshot(this.#rng.pick(candidates));
  }

  /** `node` snapshots its applied state and compacts its log, as node.ts's `#snapshot` does. */
  #takeSnapshot(node: SimNode): void {
    if (node.applied <= node.disk.snapshotIndex()) return;
    const r = node.raft!;
    const index = node.applied;
    const term = r.termAt(index);
    // A leader's snapshot being installed (write in flight) already moved the log past us.
    if (term === undefined || index < r.status().snapshotIndex) return;
    // node.ts's #snapshot: applied entries may still be on their way to this node's own disk
    // (the pumping shell applies before the write), or the disk may still hold an older term's
    // entry at that index; only entries up to the core's stable index are on disk as applied.
    if (index > r.stableIndex) return;
    if (index > node.disk.lastIndex() || node.disk.term(index) !== term) {
      // The storage would refuse this snapshot and node.ts would stop with a fatal error.
      this.#stats.snapshotsRefused++;
      throw new CheckFailure(
        Check.shell,
        `${node.id} snapshot at ${index}/t${term} passed the stable-index guard, but the disk ` +
          `holds term ${node.disk.term(index)} there`,
      );
    }
    const snapshot: Snapshot = {
      index,
      term,
      conf: r.confAt(index),
      data: node.sm.snapshot(),
    };
    this.#compareBytes(node, index, snapshot.data, "snapshot");
    this.#checker.snapshotTaken(node.id, r.term, snapshot);
    node.disk.saveLocalSnapshot(snapshot);
    const compactIndex = Math.max(0, index - this.#rng.int(0, 5));
    this.#stats.snapshotsTaken++;
    this.#note(() => `${node.id} SNAPSHOT at ${index}/t${term}, compact to ${compactIndex}`);
    r.setSnapshot(snapshot, compactIndex);
    this.#afterInput(node);
  }

  #chaosConfChange(): void {
    // An operator replacing a dead node does not change the membership meanwhile.
    if (this.#repairing()) return;
    const leaders = this.#leaders();
    if (leaders.length === 0) return;
    const leader = this.#rng.pick(leaders);
    const conf = leader.raft!.conf;
    const options: ConfChange[] = [];
    // As `counter peers` does: a node joins as a learner and is promoted once it holds the
    // leader's log (a voter that could not vote yet, below its vote floor, could block the
    // group if the leader then failed).
    const r = leader.raft!;
    const matchOf = (id: NodeId) => r.status().peers.find((pr) => pr.id === id)?.match ?? 0;
    for (const n of this.#nodes) {
      if (conf.voters.includes(n.id)) {
        if (conf.voters.length > 1) options.push({ type: "remove", node: n.id });
      } else if (conf.learners.includes(n.id)) {
        if (matchOf(n.id) >= r.lastIndex) options.push({ type: "promote", node: n.id });
        options.push({ type: "remove", node: n.id });
      } else {
        options.push({ type: "addLearner", node: n.id });
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

  /** Wall clock of `node` (ms), as node.ts writes it into the entries it proposes. */
  #wallMs(node: SimNode): number {
    const p = this.#params;
    return WALL_BASE_MS + this.#wallOffsetMs[node.index] +
      Math.floor(this.#now * p.wallMsPerUs);
  }

  #newClient(): Client {
    const n = ++this.#clientSeq;
    // Some ids are not ASCII: the session table stores them as UTF-8.
    return { id: n % 4 === 0 ? `клиент-${n}` : `c${n}`, seq: 0, pending: [], answered: [] };
  }

  /** A node to send to: the leader most of the time, sometimes a stale or wrong one. */
  #target(): SimNode | null {
    const leaders = this.#leaders();
    const up = this.#upNodes();
    if (up.length === 0) return null;
    return leaders.length > 0 && this.#rng.chance(0.9)
      ? this.#rng.pick(leaders)
      : this.#rng.pick(up);
  }

  #delta(): bigint {
    let delta = BigInt(this.#rng.int(1, 1000)) * (this.#rng.chance(0.5) ? 1n : -1n);
    if (this.#rng.chance(this.#params.hugeDeltas)) delta *= 1n << 52n;
    return delta;
  }

  #clientPropose(): void {
    const node = this.#target();
    if (node === null) return;
    const p = this.#params;
    const u = this.#rng.float();
    if (u < p.anonymous) {
      this.#propose(node, [{ request: null, duplicate: false, delta: this.#delta() }]);
      return;
    }
    if (u < p.anonymous + p.duplicates && this.#proposeDuplicate(node)) return;
    let index = this.#rng.int(0, this.#clients.length - 1);
    let client = this.#clients[index];
    if (client.pending.length === 0 && this.#rng.chance(p.retire)) {
      // The client goes away; its session stays until it expires. A new one takes its place.
      client = this.#newClient();
      this.#clients[index] = client;
      const id = client.id;
      this.#note(() => `client ${id} starts`);
    }
    const room = p.clientWindow - client.pending.length;
    if (room <= 0) {
      // A client with a full window; another one may have room.
      index = this.#rng.int(0, this.#clients.length - 1);
      client = this.#clients[index];
      if (client.pending.length >= p.clientWindow) return;
    }
    const count = this.#rng.int(1, Math.min(3, p.clientWindow - client.pending.length));
    const requests: Request[] = [];
    for (let i = 0; i < count; i++) {
      const seq = ++client.seq;
      const req: Request = {
        client,
        seq,
        delta: this.#delta(),
        // As lib/client/client.ts: every answer below the oldest request still waiting is in
        // hand. Retries keep this value.
        ackedBelow: client.pending.length > 0 ? client.pending[0].seq : seq,
        firstUs: this.#now,
        status: "pending",
        answer: null,
        attempts: 0,
        generation: 0,
        backoffUs: BACKOFF_US_MIN,
      };
      client.pending.push(req);
      requests.push(req);
      this.#stats.requests++;
    }
    this.#attempt(node, requests);
  }

  /** Sends an answered request again, as a buggy or replaying client would. */
  #proposeDuplicate(node: SimNode): boolean {
    const client = this.#rng.pick(this.#clients);
    // Only within the retry window: past it the session may have expired, and the request
    // would rightly be applied again.
    const fresh = client.answered.filter((r) => this.#now < r.firstUs + this.#params.giveUpUs);
    if (fresh.length === 0) return false;
    const req = this.#rng.pick(fresh);
    this.#stats.duplicatesSent++;
    this.#propose(node, [{ request: req, duplicate: true, delta: req.delta }]);
    return true;
  }

  /** Sends one attempt of each of `requests` to `node` (as one batch of proposals). */
  #attempt(node: SimNode, requests: Request[]): Proposal[] | null {
    for (const req of requests) {
      if (req.attempts > 0) this.#stats.retries++;
      req.attempts++;
    }
    const made = this.#propose(
      node,
      requests.map((request) => ({ request, duplicate: false, delta: request.delta })),
    );
    for (const req of requests) {
      if (made !== null) {
        // No answer within the timeout: try again (the attempt may still be applied).
        req.backoffUs = BACKOFF_US_MIN;
        this.#scheduleRetry(req, this.#params.attemptTimeoutUs);
        // This attempt is the latest: its failure makes the client retry at once.
        for (const p of made) if (p.request === req) p.generation = req.generation;
      } else {
        // NOT_LEADER or NO_LEADER: the client follows the redirect or backs off.
        this.#scheduleRetry(req, this.#rng.int(req.backoffUs / 2, req.backoffUs));
        req.backoffUs = Math.min(2 * req.backoffUs, BACKOFF_US_MAX);
      }
    }
    return made;
  }

  #scheduleRetry(req: Request, delayUs: number): void {
    if (req.status !== "pending") return;
    const generation = ++req.generation;
    this.#schedule(delayUs, { kind: Kind.Retry, request: req, generation });
  }

  #retry(req: Request): void {
    if (req.status !== "pending" || !this.#faults) return;
    if (this.#now >= req.firstUs + this.#params.giveUpUs) {
      // The client's deadline: it reports an unknown outcome and moves on.
      req.status = "gaveUp";
      this.#stats.gaveUp++;
      this.#settleRequest(req);
      this.#note(() => `client ${req.client.id} gives up #${req.seq}`);
      return;
    }
    const node = this.#target();
    if (node === null) {
      this.#scheduleRetry(req, this.#rng.int(1_000, 10_000));
      return;
    }
    this.#attempt(node, [req]);
  }

  /** A new leader: clients with requests in flight elsewhere retry with it soon. */
  #clientsSeeLeader(leader: SimNode): void {
    if (!this.#faults) return;
    for (const client of this.#clients) {
      for (const req of client.pending) {
        if (this.#rng.chance(0.5)) this.#scheduleRetry(req, this.#rng.int(500, 5_000));
      }
    }
    this.#note(() => `clients hear of leader ${leader.id}`);
  }

  #settleRequest(req: Request): void {
    const pending = req.client.pending;
    const i = pending.indexOf(req);
    if (i >= 0) pending.splice(i, 1);
  }

  /** The proposer answered attempt `p` of a request with `answer` (applied at `index`). */
  #onAnswer(node: SimNode, p: Proposal, index: number, answer: string): void {
    const req = p.request!;
    const first = this.#ledger.firstApplication(req.client.id, req.seq);
    if (answer === "STALE_REQUEST") {
      // Only once the client said it has the answer (a later request's ackedBelow), and every
      // attempt of a request goes out before the client says so.
      if (!p.duplicate) {
        throw new CheckFailure(
          Check.exactlyOnce,
          `${node.id} answered STALE_REQUEST to attempt #${p.id} of (${req.client.id}, ` +
            `${req.seq}), which the client was still waiting for`,
        );
      }
      return;
    }
    if (first === undefined || answer !== first.answer) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `${node.id} answered ${answer} to (${req.client.id}, ${req.seq}) at index ${index}, ` +
          `first applied ${first === undefined ? "nowhere" : `at ${first.index}: ${first.answer}`}`,
      );
    }
    if (req.answer !== null && req.answer !== answer) {
      throw new CheckFailure(
        Check.exactlyOnce,
        `(${req.client.id}, ${req.seq}) was answered ${req.answer}, now ${answer}`,
      );
    }
    if (req.status !== "pending") return;
    req.status = "answered";
    req.answer = answer;
    this.#stats.answered++;
    this.#answered.push(req);
    this.#settleRequest(req);
    const answered = req.client.answered;
    answered.push(req);
    if (answered.length > ANSWERED_KEPT) answered.shift();
  }

  /**
   * Proposes `commands` at `node` in one call, one entry each, or holds them for the node's next
   * batch entry (see {@linkcode SimParams.batchProposals}). Null when the node refuses (not the
   * leader, a transfer in progress, too many uncommitted entries).
   */
  #propose(
    node: SimNode,
    commands: { request: Request | null; duplicate: boolean; delta: bigint }[],
  ): Proposal[] | null {
    // A stopped process answers nothing; the client times out and tries elsewhere.
    if (node.pausedUntilUs > this.#now) return null;
    const r = node.raft!;
    const made: Proposal[] = commands.map(({ request, duplicate, delta }) => ({
      id: ++this.#proposalSeq,
      request,
      duplicate,
      generation: request?.generation ?? 0,
      node: node.index,
      epoch: node.epoch,
      index: 0,
      term: 0,
      increment: {
        delta,
        clientId: request?.client.id ?? "",
        seq: request?.seq ?? 0,
        ackedBelow: request?.ackedBelow ?? 0,
      },
      data: new Uint8Array(0),
      item: 0,
      status: "pending",
    }));
    const p = this.#params;
    // Not while settling: the final request is attempted again after every event until it is
    // taken, and a held one would be refused (a transfer, say) at the same instant, forever.
    const hold = r.role === Role.Leader && this.#faults &&
      // Once one increment is held, every later one joins it: node.ts proposes in arrival order.
      (node.batch.length > 0 || (p.batchProposals > 0 && this.#rng.chance(p.batchProposals)));
    if (hold) {
      // As node.ts: a leader takes the increment now and proposes it with the others of its turn.
      if (node.batch.length === 0) {
        // node.ts stamps its batch in the turn that took the increments. The window here stands
        // for that turn, but a pause can stretch it over more than a session's expiry (an hour
        // lasts 0.3 s in some seeds): the stamp is the turn's start, as it would be in node.ts.
        node.batchStamp = { stampMs: this.#stampOf(node), term: r.term };
        this.#schedule(this.#rng.int(0, p.batchWindowUsMax), {
          kind: Kind.Batch,
          node: node.index,
          epoch: node.epoch,
        });
      }
      for (const proposal of made) {
        node.batch.push(proposal);
        if (proposal.request !== null && this.#rng.chance(p.batchRepeats)) {
          // The same request again before the batch goes out: a client resending early.
          node.batch.push({ ...proposal, id: ++this.#proposalSeq });
        }
      }
      this.#note(() =>
        `${node.id} HOLDS ${made.map((p) => `#${p.id} ${describeProposal(p)}`).join(" ")} ` +
        `for a batch of ${node.batch.length}`
      );
      return made;
    }
    const stampMs = this.#stampOf(node);
    for (const proposal of made) {
      proposal.data = encodeIncrement({ ...proposal.increment, proposedAtMs: stampMs });
    }
    const res = r.propose(made.map((p) => p.data));
    this.#hash.num(res.ok ? res.firstIndex : 0);
    if (!res.ok) {
      this.#note(() =>
        `${node.id} propose ${made.map(describeProposal).join(" ")} refused: ${res.reason}`
      );
      return null;
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
      `${node.id} PROPOSE ${made.map((p) => `#${p.id} ${describeProposal(p)}`).join(" ")} at ` +
      `${res.firstIndex}/t${res.term}`
    );
    this.#afterInput(node);
    return made;
  }

  /**
   * Proposes the increments `node` holds as batch entries (as many as the batch bounds need), as
   * node.ts's `#flushIncrements` does at the end of its turn.
   */
  #proposeBatch(node: SimNode): void {
    const held = node.batch;
    node.batch = [];
    if (held.length === 0) return;
    const r = node.raft!;
    const groups: Proposal[][] = [];
    const batches: IncrementBatch[] = [];
    for (const p of held) {
      if (batches.length === 0 || !batches[batches.length - 1].add(p.increment)) {
        batches.push(new IncrementBatch());
        groups.push([]);
        batches[batches.length - 1].add(p.increment);
      }
      const group = groups[groups.length - 1];
      p.item = group.length;
      group.push(p);
    }
    const stampMs = node.batchStamp.term === r.term ? node.batchStamp.stampMs : this.#stampOf(node);
    const data = batches.map((b) => b.encode(stampMs));
    groups.forEach((group, i) => group.forEach((p) => p.data = data[i]));
    const res = r.propose(data);
    this.#hash.num(res.ok ? res.firstIndex : 0);
    if (!res.ok) {
      // node.ts answers each client NOT_LEADER or BUSY; they retry.
      this.#note(() => `${node.id} propose batch of ${held.length} refused: ${res.reason}`);
      for (const p of held) this.#resolve(p, "failed");
      return;
    }
    groups.forEach((group, i) => {
      const index = res.firstIndex + i;
      for (const p of group) {
        p.index = index;
        p.term = res.term;
        let list = node.proposals.get(index);
        if (list === undefined) {
          list = [];
          node.proposals.set(index, list);
        }
        list.push(p);
        this.#stats.proposed++;
      }
      if (r.termAt(index) !== res.term) {
        throw new CheckFailure(
          Check.shell,
          `${node.id} accepted a batch at ${index}/t${res.term}, its log says t${r.termAt(index)}`,
        );
      }
    });
    this.#stats.batches++;
    this.#stats.batchedIncrements += held.length;
    this.#note(() =>
      `${node.id} PROPOSE BATCH ${
        groups.map((g) => g.map((p) => `#${p.id} ${describeProposal(p)}`).join(" ")).join(" / ")
      } at ${res.firstIndex}/t${res.term}`
    );
    this.#afterInput(node);
  }

  /** The stamp `node` gives the increments it proposes now. */
  #stampOf(node: SimNode): number {
    const r = node.raft!;
    if (this.#options.mutation === "wall-clock-stamps") return this.#wallMs(node);
    // As node.ts: only a leader stamps (a follower refuses before encoding the command; here
    // the core refuses it).
    return r.role === Role.Leader ? node.clock.stamp(r.term) : 0;
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
    // A stopped process answers nothing; the client gives the read up.
    if (node.pausedUntilUs > this.#now) return read;
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
    const finalClient = this.#newClient();
    let { leader, read } = this.#incrementAndRead(finalClient, this.#now + SETTLE_US_MAX);
    if (this.#params.quiesce) {
      // Idle: no client, no fault. The group should go quiet; whether or not it does (a member
      // that refused to start keeps it awake), one more increment and read must get through.
      const idleUntilUs = this.#now + IDLE_ELECTIONS * this.#electionUsMax();
      while (this.#now < idleUntilUs) {
        if (!this.#step()) throw new CheckFailure(Check.liveness, "no events left");
      }
      const members = [...leader.raft!.conf.voters, ...leader.raft!.conf.learners];
      const quiet = members.every((id) => this.#byId.get(id)!.raft?.quiesced === true);
      this.#note(() => `IDLE: the group is ${quiet ? "quiet" : "awake"}`);
      if (quiet) this.#stats.quietAtEnd = 1;
      ({ leader, read } = this.#incrementAndRead(finalClient, this.#now + SETTLE_US_MAX));
    }
    this.#checkFinal(leader, read);
  }

  /** Longest election timeout of any node (µs). */
  #electionUsMax(): number {
    const p = this.#params;
    let max = 0;
    for (let i = 0; i < p.pool; i++) max = Math.max(max, p.electionTicksOf[i] * p.tickUs[i]);
    return max;
  }

  /**
   * Runs the cluster until one leader has acknowledged an increment of `client` that every member
   * applied, and answered a read after it; throws a liveness failure past `deadlineUs`.
   */
  #incrementAndRead(client: Client, deadlineUs: number): { leader: SimNode; read: Read } {
    const finalClient = client;
    const deadline = deadlineUs;
    let finalRequest: Request | null = null;
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
        // Increments a leader held for a batch when the faults stopped go out first (node.ts
        // holds them only to the end of a turn): the final read must see everything proposed.
        if (this.#nodes.some((n) => n.batch.length > 0)) continue;
        // Retried with the same sequence number within the client's deadline; past it, the
        // client gives up and sends a new request.
        if (
          finalRequest?.status === "pending" &&
          this.#now >= finalRequest.firstUs + this.#params.giveUpUs
        ) {
          finalRequest.status = "gaveUp";
          this.#settleRequest(finalRequest);
        }
        if (finalRequest === null || finalRequest.status !== "pending") {
          const seq = ++finalClient.seq;
          finalRequest = {
            client: finalClient,
            seq,
            delta: 1n,
            ackedBelow: seq,
            firstUs: this.#now,
            status: "pending",
            answer: null,
            attempts: 0,
            generation: 0,
            backoffUs: BACKOFF_US_MIN,
          };
          finalClient.pending.push(finalRequest);
          this.#stats.requests++;
        }
        final = this.#attempt(leader, [finalRequest])?.[0] ?? null;
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
      return { leader, read };
    }
  }

  /** The settled cluster's final checks: value, answers, sessions on every member. */
  #checkFinal(leader: SimNode, read: Read): void {
    const value = leader.sm.value;
    const sum = this.#checker.finalSum(leader.applied, new Map());
    const expected = this.#ledger.expectedAt(leader.applied);
    if (sum !== value || read.value !== value || expected !== value) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `final counter ${value}, read ${read.value}, committed changes sum to ${sum}, ` +
          `distinct requests to ${expected}`,
      );
    }
    // Every answer a client got is the answer of its request's one application in the log.
    for (const req of this.#answered) {
      const first = this.#ledger.firstApplication(req.client.id, req.seq);
      if (first === undefined || first.index > leader.applied || first.answer !== req.answer) {
        throw new CheckFailure(
          Check.acknowledged,
          `(${req.client.id}, ${req.seq}) was answered ${req.answer}, but the final log ending ` +
            `at ${leader.applied} ${
              first === undefined
                ? "never applied it"
                : `applied it at ${first.index} answering ${first.answer}`
            }`,
        );
      }
    }
    // Every member at the same index holds the same state: value and client sessions.
    const bytes = leader.sm.snapshot();
    for (const id of [...leader.raft!.conf.voters, ...leader.raft!.conf.learners]) {
      const node = this.#byId.get(id)!;
      if (node === leader || !node.up || node.applied !== leader.applied) continue;
      if (!sameBytes(node.sm.snapshot(), bytes)) {
        throw new CheckFailure(
          Check.exactlyOnce,
          `${node.id}'s client sessions at index ${node.applied} differ from the leader's`,
        );
      }
    }
    this.#stats.finalIndex = leader.applied;
    const index = leader.applied;
    this.#note(() => `SETTLED: leader ${leader.id}, index ${index}, value ${value}`);
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
      if (node.sm.value !== leader.sm.value) {
        throw new CheckFailure(
          Check.stateMachineSafety,
          `${node.id} has value ${node.sm.value} at index ${node.applied}, ` +
            `leader ${leader.id} has ${leader.sm.value}`,
        );
      }
    }
    return true;
  }

  #describeCluster(): string {
    return this.#nodes.map((n) => {
      if (!n.up) {
        return `${n.id} ${n.probing ? "checking" : n.booting ? "starting" : "down"}`;
      }
      const s = n.raft!.status();
      const floor = n.raft!.voteFloor === 0 ? "" : ` floor ${n.raft!.voteFloor}`;
      return `${n.id} ${s.role} t${s.term}${floor} lead "${s.leader}" commit ${s.commit} ` +
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

function describeProposal(p: Proposal): string {
  const r = p.request;
  if (r === null) return `anonymous`;
  return `(${r.client.id}, ${r.seq}${p.duplicate ? ", duplicate" : ""})`;
}
