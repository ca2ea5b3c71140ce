/**
 * The Raft consensus algorithm as a deterministic state machine.
 *
 * `Raft` performs no I/O, reads no clock and draws no random numbers of its own: time arrives as
 * `tick()` calls, randomness through the injected `random` function, and network input through
 * `step()`. Its output is a {@linkcode Ready}: what to persist, what to send, what to apply. The
 * shell persists, sends and applies, then calls `advance()`. This is the design of etcd's raft,
 * and it is what lets the simulator drive thousands of clusters from a seed.
 *
 * Implemented: leader election with randomized timeouts, PreVote (thesis §9.6), CheckQuorum and
 * leader stickiness (§4.2.3, §6.2), log replication with the consistency check and fast back-off,
 * commit by counting only entries of the current term (§5.4.2), pipelined AppendEntries with a
 * bounded window, batched ReadIndex (§6.4) including forwarded follower reads, snapshots
 * (§5), single-server membership changes with learners (§4.1-4.3), leadership transfer (§3.10),
 * and quiescence: an idle, fully replicated group stops heartbeating (CockroachDB's quiescent
 * ranges; see `RaftOptions.quiesce` and docs/DESIGN.md "Quiescent groups").
 *
 * @module
 */

import {
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  makeMessage,
  type Message,
  MessageType,
  type NodeId,
  type ReadState,
  Role,
  type Snapshot,
} from "./types.ts";
import { RaftLog } from "./log.ts";
import { Progress, ProgressState, quorumMatchIndex, tallyVotes, VoteResult } from "./progress.ts";
import { type PendingRead, ReadOnlyQueue } from "./read_only.ts";
import { applyConfChange, type ConfChange, encodeConfState } from "./conf.ts";
import { assert } from "./assert.ts";

/** Tuning and injected dependencies of a {@linkcode Raft} node. */
export interface RaftOptions {
  /** This node's id. */
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized up to 2x). */
  electionTicks: number;
  /** Ticks between leader heartbeats; must be smaller than `electionTicks`. */
  heartbeatTicks: number;
  /** Uniform random number in [0, 1); the only source of randomness. */
  random: () => number;
  /** Run a PreVote round before a real election. Default true. */
  preVote?: boolean;
  /** Leader steps down when it has not heard from a quorum for an election timeout. Default true. */
  checkQuorum?: boolean;
  /** AppendEntries in flight per follower. Default 256. */
  inflightMax?: number;
  /** Entry payload bytes per AppendEntries. Default 1 MiB. */
  msgBytesMax?: number;
  /** Committed entries handed out per Ready. Default 4096. */
  applyBatchMax?: number;
  /** Proposals refused while this many entries are uncommitted. Default 65536. */
  uncommittedMax?: number;
  /** Reads refused while this many are waiting. Default 65536. */
  pendingReadsMax?: number;
  /**
   * Ignore vote requests for one election timeout after starting, as if a leader had just been
   * heard from. A node that restarts may have been honouring a leader's lease before it went
   * down; voting at once could elect a new leader while the old one still serves lease reads.
   * Default false (tests that campaign at tick 0 rely on that); the node shell turns it on.
   */
  respectLeaseOnStart?: boolean;
  /**
   * This node neither votes nor campaigns until its log reaches this index (default 0: no
   * floor); -1 means "until a leader has been heard from", and the first AppendEntries or
   * snapshot from a leader then sets the floor to the index it reaches. A node that joins with
   * an empty data dir, under an id the group may have used before, starts with -1: until its log
   * passes the entry that added it back, the configurations it replays are those of the id's
   * earlier life, which may name it a voter, and voting or campaigning under them could elect a
   * second leader. The shell persists the floor (`voteFloor`) and passes it back on restart.
   */
  voteFloor?: number;
  /**
   * As leader, quiesce the group when it is idle: once an entry of this term is committed, the
   * whole log is committed and on this node's disk, every follower (voters and learners) holds
   * it, and no read, transfer or snapshot is pending, the next heartbeat is a quiesce heartbeat
   * (a Heartbeat whose `index` is the leader's last index) and no heartbeat follows it. A
   * follower that holds that entry goes quiet too: it sends no answer and its election timer
   * stops. Anything that is not news from the leader wakes a node up again (see `quiesced`).
   * The shell must call {@linkcode Raft.unquiesce} on a quiet follower whose leader's node it
   * believes dead, and on a quiet leader when a member's node comes back (a restarted learner
   * never campaigns), since nothing else would; and it must keep ticking quiet nodes. Followers
   * honour quiesce heartbeats whatever this option says. Default false.
   */
  quiesce?: boolean;
}

/** What a node starts from: the persisted hard state, snapshot and log. */
export interface RaftInitialState {
  /** Persisted term and vote. */
  hardState: HardState;
  /** Latest persisted snapshot, if any. */
  snapshot: Snapshot | null;
  /** Persisted entries after the snapshot, contiguous. */
  entries: Entry[];
}

/**
 * Work handed to the shell. Order matters: persist `hardState`, `snapshot` and `entries`; only
 * then send `messages` (they may promise what was just persisted); `messagesEarly` may go at
 * once. Apply `snapshot` (if any) and then `committedEntries` in order. Then call `advance`.
 */
export interface Ready {
  /** New term/vote to persist; null when unchanged. */
  hardState: HardState | null;
  /** Entries to persist; they replace any persisted entries from `entries[0].index` on. */
  entries: Entry[];
  /** A snapshot received from the leader: persist it, discard the log, load it into the state machine. */
  snapshot: Snapshot | null;
  /** Committed entries to apply, in order. */
  committedEntries: Entry[];
  /** Messages to send after persisting. */
  messages: Message[];
  /** Messages that may be sent before persisting (the leader's appends and heartbeats). */
  messagesEarly: Message[];
  /** Reads now safe to serve once the state machine reaches their index. */
  readStates: ReadState[];
  /** Reads that cannot be served here (no leader, leadership lost); the caller retries. */
  failedReads: number[];
}

/** Outcome of a proposal: where the entries went, or why they were refused. */
export type ProposeResult =
  | { ok: true; firstIndex: number; term: number }
  | { ok: false; reason: string };

/** Replication state of one peer as seen by the leader. */
export interface PeerStatus {
  /** Peer id. */
  id: NodeId;
  /** Highest index known replicated there. */
  match: number;
  /** Next index to send. */
  next: number;
  /** Replication state. */
  state: ProgressState;
  /** Heard from since the last CheckQuorum round. */
  recentActive: boolean;
}

/** A snapshot of the node's Raft state, for status reports and tests. */
export interface RaftStatus {
  /** This node. */
  id: NodeId;
  /** Current role. */
  role: Role;
  /** Current term. */
  term: number;
  /** Vote in the current term. */
  vote: NodeId;
  /** Known leader, "" if none. */
  leader: NodeId;
  /** Commit index. */
  commit: number;
  /** Highest index handed out for applying. */
  applied: number;
  /** Last log index. */
  lastIndex: number;
  /** Index covered by the latest snapshot. */
  snapshotIndex: number;
  /** Current configuration (latest in the log). */
  conf: ConfState;
  /** Leader only: progress of every other member. */
  peers: PeerStatus[];
}

/** Context value of a Vote sent because of a leadership transfer: voters ignore their lease. */
const CONTEXT_TRANSFER = 1;

const EMPTY = new Uint8Array(0);

/** One Raft node's consensus state machine. */
export class Raft {
  readonly #id: NodeId;
  readonly #electionTicks: number;
  readonly #heartbeatTicks: number;
  readonly #random: () => number;
  readonly #preVote: boolean;
  readonly #checkQuorum: boolean;
  readonly #inflightMax: number;
  readonly #msgBytesMax: number;
  readonly #applyBatchMax: number;
  readonly #uncommittedMax: number;
  readonly #pendingReadsMax: number;
  readonly #quiesce: boolean;

  #term = 0;
  #vote: NodeId = "";
  #leader: NodeId = "";
  #role: Role = Role.Follower;
  readonly #log: RaftLog;
  #conf: ConfState = { voters: [], learners: [] };
  #confIndex = -1;
  #confTerm = -1;
  #progress = new Map<NodeId, Progress>();
  #votes = new Map<NodeId, boolean>();
  #electionElapsed = 0;
  /** Ticks since this object was created: the core's only notion of time. */
  #ticks = 0;
  /** Ticks left during which vote requests are ignored after a start (`respectLeaseOnStart`). */
  #startLeaseTicks = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #leadTransferee: NodeId = "";
  /**
   * This leader sent TimeoutNow in its term. The target may win the next term at any later time
   * with votes that ignore the voters' leases, so this leader's own lease is void for the rest of
   * the term, even once the transfer is abandoned.
   */
  #timeoutNowSent = false;
  #readOnly = new ReadOnlyQueue();
  #readsAwaitingCommit: PendingRead[] = [];
  /**
   * Follower: reads forwarded to a leader and not answered yet, by request id, with the leader
   * asked. They fail as soon as this node leaves that leader's term or role, instead of waiting
   * for an answer a deposed leader will never send.
   */
  #forwardedReads = new Map<number, NodeId>();
  #msgs: Message[] = [];
  #readStates: ReadState[] = [];
  #failedReads: number[] = [];
  #pendingSnapshot: Snapshot | null = null;
  #snapshot: Snapshot | null = null;
  #persistedHardState: HardState;
  /** A Ready carrying a term/vote change is being persisted. */
  #hardStateInFlight = false;
  /** See `RaftOptions.voteFloor`. */
  #voteFloor: number;
  /**
   * The group is quiet (`RaftOptions.quiesce`): a leader sends no heartbeats and does not count
   * CheckQuorum rounds, a follower's election timer is stopped. Ticks still count (`#ticks`), so
   * leases run out on time.
   */
  #quiesced = false;
  /**
   * Follower: the latest round number of the leader when it quiesced. A regular heartbeat of
   * that leader with a number up to this one was sent before the quiesce heartbeat (arriving
   * late or duplicated) and is no sign that the leader woke up.
   */
  #quiesceRound = 0;

  /** Creates a node from its persisted state. It starts as a follower. */
  constructor(options: RaftOptions, initial: RaftInitialState) {
    assert(options.heartbeatTicks > 0, "heartbeatTicks must be positive");
    assert(options.electionTicks > options.heartbeatTicks, "electionTicks must exceed heartbeat");
    this.#id = options.id;
    this.#electionTicks = options.electionTicks;
    this.#heartbeatTicks = options.heartbeatTicks;
    this.#random = options.random;
    this.#preVote = options.preVote ?? true;
    this.#checkQuorum = options.checkQuorum ?? true;
    this.#inflightMax = options.inflightMax ?? 256;
    this.#msgBytesMax = options.msgBytesMax ?? 1 << 20;
    this.#applyBatchMax = options.applyBatchMax ?? 4096;
    this.#uncommittedMax = options.uncommittedMax ?? 65536;
    this.#pendingReadsMax = options.pendingReadsMax ?? 65536;
    this.#quiesce = options.quiesce ?? false;
    this.#log = new RaftLog(initial.snapshot, initial.entries);
    this.#snapshot = initial.snapshot;
    this.#term = initial.hardState.term;
    this.#vote = initial.hardState.vote;
    this.#persistedHardState = { ...initial.hardState };
    if (options.respectLeaseOnStart === true) this.#startLeaseTicks = this.#electionTicks;
    this.#voteFloor = options.voteFloor ?? 0;
    assert(
      Number.isSafeInteger(this.#voteFloor) && this.#voteFloor >= -1,
      "voteFloor must be an index or -1",
    );
    this.#refreshConf();
    this.#becomeFollower(this.#term, "");
  }

  // ---------------------------------------------------------------- queries

  /** This node's id. */
  get id(): NodeId {
    return this.#id;
  }

  /** Current role. */
  get role(): Role {
    return this.#role;
  }

  /** Current term. */
  get term(): number {
    return this.#term;
  }

  /** The leader this node knows of, "" if none. */
  get leader(): NodeId {
    return this.#leader;
  }

  /** Commit index. */
  get commitIndex(): number {
    return this.#log.committed;
  }

  /** Last index in the log. */
  get lastIndex(): number {
    return this.#log.lastIndex();
  }

  /** The configuration in force (the latest one in the log). */
  get conf(): ConfState {
    return this.#conf;
  }

  /**
   * True when this node may campaign: it is a voter in the latest configuration, or that
   * configuration removes it but is not known committed and the one before it (which was
   * committed before the latest was proposed) has it as a voter. A leader that appended its own
   * removal and then lost leadership may be the only node holding the longest log; if it could
   * not campaign, no one could win and the group would stall.
   */
  get promotable(): boolean {
    if (!this.#pastVoteFloor()) return false;
    if (this.#conf.voters.includes(this.#id)) return true;
    const latest = this.#log.latestConfIndex();
    return latest > this.#log.committed && this.confAt(latest - 1).voters.includes(this.#id);
  }

  /**
   * True while this node is quiet (see `RaftOptions.quiesce`): a quiesced leader sends no
   * heartbeats, a quiesced follower never campaigns. A tick of a quiet node produces no work, so
   * the shell may skip its Ready check after one; but it must go on ticking it, since leases
   * run out on those ticks.
   */
  get quiesced(): boolean {
    return this.#quiesced;
  }

  /** The vote floor in force: 0 for none, -1 until a leader is heard (`RaftOptions.voteFloor`). */
  get voteFloor(): number {
    return this.#voteFloor;
  }

  #pastVoteFloor(): boolean {
    return this.#voteFloor >= 0 && this.#log.lastIndex() >= this.#voteFloor;
  }

  /** The first message from a leader after an empty join fixes the vote floor. */
  #fixVoteFloor(index: number): void {
    if (this.#voteFloor === -1) this.#voteFloor = index;
  }

  /** Configuration at `index`, for the shell to store in a snapshot. */
  confAt(index: number): ConfState {
    return this.#log.confAt(index) ?? { voters: [], learners: [] };
  }

  /**
   * Highest index this node's disk is known to hold as the log holds it (reported through
   * `advance`). Entries above it may be unwritten, or on disk with an older term awaiting
   * replacement.
   */
  get stableIndex(): number {
    return this.#log.stableIndex();
  }

  /** Term of the entry at `index`, if the log still holds it. */
  termAt(index: number): number | undefined {
    return this.#log.term(index);
  }

  /** A description of the node's state. */
  status(): RaftStatus {
    const peers: PeerStatus[] = [];
    if (this.#role === Role.Leader) {
      for (const [id, pr] of this.#progress) {
        peers.push({
          id,
          match: pr.match,
          next: pr.next,
          state: pr.state,
          recentActive: pr.recentActive,
        });
      }
    }
    return {
      id: this.#id,
      role: this.#role,
      term: this.#term,
      vote: this.#vote,
      leader: this.#leader,
      commit: this.#log.committed,
      applied: this.#log.applied,
      lastIndex: this.#log.lastIndex(),
      snapshotIndex: this.#log.snapshotIndex(),
      conf: this.#conf,
      peers,
    };
  }

  // ---------------------------------------------------------------- inputs

  /** Advances logical time by one tick. */
  tick(): void {
    this.#ticks++;
    if (this.#startLeaseTicks > 0) this.#startLeaseTicks--;
    // Quiet: time passes for leases, but no heartbeat, no CheckQuorum round, no election.
    if (this.#quiesced) return;
    this.#electionElapsed++;
    if (this.#role === Role.Leader) {
      this.#tickLeader();
      return;
    }
    // Only a node that campaigns restarts its clock: a node that may not campaign must let its
    // leader lease run out, or it would ignore every candidate as disruptive forever.
    if (this.#electionElapsed >= this.#randomizedElectionTimeout && this.promotable) {
      this.#electionElapsed = 0;
      this.campaign();
      return;
    }
    this.#pokeQuietLeader();
  }

  /**
   * A member that may not campaign (a learner, a voter below its vote floor) and missed its
   * leader's quiesce heartbeat would wait awake, short of the final commit index, under a quiet
   * leader until the group's next write: a voter in its place campaigns, which wakes the leader,
   * but this one never does. So with quiescence, after each election timeout without word from
   * its leader it tells the leader it is awake (a heartbeat answer without a round, as a woken
   * follower does), which wakes a quiet leader; an awake one just answers with what it lacks.
   */
  #pokeQuietLeader(): void {
    if (!this.#quiesce || this.#leader === "" || this.#leader === this.#id) return;
    const elapsed = this.#electionElapsed;
    if (elapsed === 0 || elapsed % this.#randomizedElectionTimeout !== 0) return;
    if (!this.#conf.voters.includes(this.#id) && !this.#conf.learners.includes(this.#id)) return;
    this.#send(MessageType.HeartbeatResp, this.#leader, {
      index: this.#log.lastIndex(),
      electionTicks: this.#electionTicks,
    });
  }

  #tickLeader(): void {
    this.#heartbeatElapsed++;
    if (this.#electionElapsed >= this.#electionTicks) {
      this.#electionElapsed = 0;
      if (this.#checkQuorum) {
        if (!this.#quorumActive()) {
          this.#becomeFollower(this.#term, "");
          return;
        }
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.#leadTransferee = "";
    }
    if (this.#heartbeatElapsed >= this.#heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      if (this.#mayQuiesce()) {
        this.#quiesceGroup();
        return;
      }
      // Every heartbeat is a round: its acknowledgements renew the leader's lease.
      this.#broadcastHeartbeat(this.#readOnly.startRound(this.#id, this.#ticks));
    }
  }

  /**
   * Wakes this node if it is quiet: a leader resumes heartbeats at once, a follower restarts its
   * election timer (randomized) and tells its leader it is awake. The shell calls it from its node
   * liveness, on a quiet follower whose leader's node it believes dead and on a quiet leader when
   * a member's node comes back: nothing else would wake them.
   */
  unquiesce(): void {
    if (this.#quiesced) this.#wake(true);
  }

  /**
   * Leader: the group may go quiet. Everything is committed in this term and durable here, every
   * follower holds the whole log (so the quiesce heartbeat tells each the final commit index), and
   * nothing waits for a heartbeat round, a transfer or a snapshot.
   */
  #mayQuiesce(): boolean {
    if (!this.#quiesce || !this.#committedInTerm()) return false;
    const last = this.#log.lastIndex();
    if (this.#log.committed !== last || this.#log.stableIndex() !== last) return false;
    if (this.#leadTransferee !== "" || this.#readsAwaitingCommit.length > 0) return false;
    if (this.#readOnly.size() > 0) return false;
    for (const pr of this.#progress.values()) {
      if (pr.match !== last || pr.state === ProgressState.Snapshot) return false;
    }
    return true;
  }

  /**
   * Leader: sends the quiesce heartbeat (the last index, its term and the commit index, which
   * equals it) and stops heartbeating. It starts no round: followers that go quiet do not answer.
   */
  #quiesceGroup(): void {
    this.#quiesced = true;
    const last = this.#log.lastIndex();
    const round = this.#readOnly.lastStarted();
    for (const [id, pr] of this.#progress) {
      this.#send(MessageType.Heartbeat, id, {
        commit: last,
        index: last,
        logTerm: this.#term,
        context: round,
      });
      pr.sentCommit = last;
    }
  }

  /**
   * Leaves the quiet state. A leader resumes heartbeats with one now, and starts a fresh
   * CheckQuorum window: its followers had no heartbeat to answer while it was quiet, which must
   * not count as silence. A follower restarts its election timer; unless `tellLeader` is false
   * (the leader is talking to it already), it sends its leader a heartbeat answer without a round,
   * which wakes a quiet leader, so that a follower is never awake under a quiet leader for long:
   * it would campaign against a healthy one.
   */
  #wake(tellLeader: boolean): void {
    this.#quiesced = false;
    this.#electionElapsed = 0;
    if (this.#role === Role.Leader) {
      this.#heartbeatElapsed = 0;
      for (const pr of this.#progress.values()) pr.recentActive = true;
      this.#broadcastHeartbeat(this.#readOnly.startRound(this.#id, this.#ticks));
      return;
    }
    this.#randomizedElectionTimeout = this.#electionTicks +
      Math.floor(this.#random() * this.#electionTicks);
    if (tellLeader && this.#leader !== "" && this.#leader !== this.#id) {
      this.#send(MessageType.HeartbeatResp, this.#leader, {
        index: this.#log.lastIndex(),
        electionTicks: this.#electionTicks,
      });
    }
  }

  /**
   * True when `m`, of this node's term or a later one, leaves a quiet node quiet: nothing in it is
   * news. A message from a non-member; for a leader: a follower's answer to a round or to appends sent before it went quiet.
   * For a follower: its leader's quiesce heartbeat (checked again by `#handleHeartbeat`), or a
   * regular heartbeat sent before it.
   */
  #keepsQuiet(m: Message): boolean {
    // A quiet node holds the whole committed log, configuration included: a node it does not
    // list (one removed, campaigning from an old configuration) has no part in the group.
    if (!this.#conf.voters.includes(m.from) && !this.#conf.learners.includes(m.from)) return true;
    if (m.term !== this.#term) return false;
    if (this.#role === Role.Leader) {
      const pr = this.#progress.get(m.from);
      if (pr === undefined || m.reject) return false;
      if (m.type === MessageType.HeartbeatResp) return m.context > 0;
      return m.type === MessageType.AppResp && m.index <= pr.match;
    }
    if (m.type !== MessageType.Heartbeat || m.from !== this.#leader) return false;
    return isQuiesceHeartbeat(m) || (m.context > 0 && m.context <= this.#quiesceRound);
  }

  /** Starts an election now (PreVote first when enabled). */
  campaign(): void {
    if (this.#role === Role.Leader || !this.promotable) return;
    if (this.#preVote) this.#becomePreCandidate();
    else this.#becomeCandidate(false);
  }

  /**
   * Appends `commands` to the log as Normal entries, if this node leads. The shell matches each
   * command to the entry it became by index and term.
   */
  propose(commands: Uint8Array[]): ProposeResult {
    if (this.#role !== Role.Leader) return { ok: false, reason: "not the leader" };
    if (this.#quiesced) this.#wake(true);
    if (this.#leadTransferee !== "") {
      return { ok: false, reason: "leadership transfer in progress" };
    }
    if (this.#log.lastIndex() - this.#log.committed + commands.length > this.#uncommittedMax) {
      return { ok: false, reason: "too many uncommitted entries" };
    }
    const firstIndex = this.#log.lastIndex() + 1;
    const entries: Entry[] = commands.map((data, i) => ({
      term: this.#term,
      index: firstIndex + i,
      type: EntryType.Normal,
      data,
    }));
    this.#log.append(entries);
    this.#maybeCommit();
    return { ok: true, firstIndex, term: this.#term };
  }

  /**
   * Proposes one membership change (single-server method). Refused while another change is
   * uncommitted, and until the leader has committed an entry of its own term (the fix for the
   * single-server bug, thesis errata).
   */
  proposeConfChange(change: ConfChange): ProposeResult {
    if (this.#role !== Role.Leader) return { ok: false, reason: "not the leader" };
    if (this.#quiesced) this.#wake(true);
    if (this.#leadTransferee !== "") {
      return { ok: false, reason: "leadership transfer in progress" };
    }
    if (!this.#committedInTerm()) {
      return { ok: false, reason: "the leader has not committed an entry of its term yet" };
    }
    if (this.#log.latestConfIndex() > this.#log.committed) {
      return { ok: false, reason: "another membership change is in progress" };
    }
    const next = applyConfChange(this.#conf, change);
    if (typeof next === "string") return { ok: false, reason: next };
    const index = this.#log.lastIndex() + 1;
    this.#log.append([{
      term: this.#term,
      index,
      type: EntryType.Config,
      data: encodeConfState(next),
    }]);
    this.#refreshConf();
    this.#maybeCommit();
    return { ok: true, firstIndex: index, term: this.#term };
  }

  /**
   * Asks for leadership to move to `to`. The leader stops taking proposals, brings `to` up to
   * date and tells it to campaign at once; the attempt is dropped after an election timeout.
   */
  transferLeader(to: NodeId): string | null {
    if (this.#role !== Role.Leader) return "not the leader";
    if (to === this.#id) return "already the leader";
    if (!this.#conf.voters.includes(to)) return `${to} is not a voter`;
    if (this.#quiesced) this.#wake(true);
    this.#leadTransferee = to;
    this.#electionElapsed = 0;
    const pr = this.#progress.get(to)!;
    if (pr.match === this.#log.lastIndex()) this.#send(MessageType.TimeoutNow, to, {});
    else this.#sendAppend(to, pr);
    return null;
  }

  /**
   * Asks for a linearizable read. The answer arrives later in `Ready.readStates` (serve once the
   * state machine has applied its index) or `Ready.failedReads` (retry elsewhere).
   */
  readIndex(requestId: number, options: { lease?: boolean } = {}): void {
    // A leader that wakes may still serve from its lease: its ticks went on counting while it was
    // quiet, and a quiet follower keeps its promise at least as long as an active one.
    if (this.#quiesced) this.#wake(true);
    const waiting = this.#readOnly.size() + this.#readsAwaitingCommit.length +
      this.#forwardedReads.size;
    if (waiting >= this.#pendingReadsMax) {
      this.#failedReads.push(requestId);
      return;
    }
    if (options.lease === true && this.#role === Role.Leader && this.#inLease()) {
      this.#readStates.push({ requestId, index: this.#log.committed });
      return;
    }
    if (this.#role === Role.Leader) {
      this.#addRead({ requestId, index: 0, from: "" });
    } else if (this.#leader !== "" && this.#leader !== this.#id) {
      this.#forwardedReads.set(requestId, this.#leader);
      this.#send(MessageType.ReadIndex, this.#leader, { context: requestId });
    } else {
      this.#failedReads.push(requestId);
    }
  }

  /**
   * True while this leader may serve reads from its lease (no heartbeat round): a quorum
   * acknowledged a heartbeat sent recently enough that no other leader can have been elected
   * since. Each acknowledging voter ignores candidates for ITS OWN election timeout after hearing
   * from a leader (thanks to CheckQuorum) and says how long that is in its answer, so the lease
   * lasts 90% of the shortest such timeout in the quorum (the rest allows for clock drift),
   * whatever this node's own timeout is. Never during a leadership transfer nor, once TimeoutNow
   * went out, for the rest of the term; and only once an entry of this term is committed.
   */
  #inLease(): boolean {
    if (!this.#checkQuorum || this.#leadTransferee !== "" || this.#timeoutNowSent) return false;
    if (!this.#committedInTerm()) return false;
    return this.#ticks < this.#readOnly.leaseEndTick();
  }

  /** Tells the leader that sending a snapshot to `to` finished (`ok`) or failed. */
  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.#progress.get(to);
    if (this.#role !== Role.Leader || pr === undefined) return;
    if (pr.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the next heartbeat answer before probing again.
    pr.probeSent = true;
  }

  /** Tells the leader that `to` could not be reached, so optimistic streaming stops. */
  reportUnreachable(to: NodeId): void {
    const pr = this.#progress.get(to);
    if (this.#role !== Role.Leader || pr === undefined) return;
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /**
   * Gives the core a durable snapshot of the applied state: it is sent to followers that need
   * compacted entries, and entries up to `compactIndex` (at most the snapshot's index) are dropped.
   */
  setSnapshot(snapshot: Snapshot, compactIndex: number): void {
    assert(snapshot.index <= this.#log.applied, "snapshot beyond applied index");
    if (this.#snapshot === null || snapshot.index > this.#snapshot.index) this.#snapshot = snapshot;
    this.#log.compact(Math.min(compactIndex, snapshot.index));
  }

  /**
   * The lowest index from which the entries up to `hi` hold at most `bytesMax` bytes of data
   * (see `RaftLog.tailStart`): a shell bounds the log it keeps after a snapshot with it.
   */
  tailStart(hi: number, bytesMax: number): number {
    return this.#log.tailStart(hi, bytesMax);
  }

  /** Handles a message from another node. */
  step(m: Message): void {
    // A quiet node wakes on anything of its term or later that is not old news (a stale term's
    // message changes nothing, and its answer tells the sender of the newer term). A follower
    // woken by its leader's heartbeat knows its leader is awake; any other wake is passed on.
    if (this.#quiesced && m.term >= this.#term && !this.#keepsQuiet(m)) {
      this.#wake(!(m.type === MessageType.Heartbeat && m.from === this.#leader));
    }
    if (m.term > this.#term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = m.type === MessageType.Vote && m.context === CONTEXT_TRANSFER;
        const inLease = this.#checkQuorum &&
          ((this.#leader !== "" && this.#electionElapsed < this.#electionTicks) ||
            this.#startLeaseTicks > 0);
        // A node that hears from a leader ignores disruptive candidates (thesis §4.2.3).
        if (!force && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // A PreVote never changes our term.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // We will bump our term when the PreVote round is won.
      } else if (
        m.type === MessageType.App || m.type === MessageType.Heartbeat ||
        m.type === MessageType.Snap
      ) {
        this.#becomeFollower(m.term, m.from);
      } else if (m.type === MessageType.Vote) {
        // Raft §5.2: the election timer restarts on hearing from a leader or granting a vote
        // (#handleVoteRequest), not on merely learning of a higher term. A candidate with a
        // stale log and a shorter election timeout than the others would otherwise hold their
        // timers back forever, and no node that could win would ever campaign.
        const elapsed = this.#electionElapsed;
        this.#becomeFollower(m.term, "");
        this.#electionElapsed = elapsed;
      } else {
        this.#becomeFollower(m.term, "");
      }
    } else if (m.term < this.#term) {
      if (m.type === MessageType.App || m.type === MessageType.Heartbeat) {
        // Tell the stale leader about the newer term so it steps down.
        this.#send(MessageType.AppResp, m.from, {});
      } else if (m.type === MessageType.PreVote) {
        this.#send(MessageType.PreVoteResp, m.from, { reject: true });
      } else if (m.type === MessageType.Vote) {
        // Raft §5.1: every answer carries the current term, so a candidate stuck in an older
        // term learns the newer one and campaigns above it. A node that does not count the
        // candidate as a voter (its configuration lags) never sends it anything else, and the
        // two could otherwise race their terms forever.
        this.#send(MessageType.VoteResp, m.from, { reject: true });
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.#handleVoteRequest(m);
      return;
    }
    switch (this.#role) {
      case Role.Leader:
        this.#stepLeader(m);
        break;
      case Role.Candidate:
      case Role.PreCandidate:
        this.#stepCandidate(m);
        break;
      case Role.Follower:
        this.#stepFollower(m);
        break;
    }
  }

  // ---------------------------------------------------------------- output

  /** True when there is something for the shell to do. */
  hasReady(): boolean {
    this.#flush();
    return this.#hardStateChanged() || this.#log.hasUnstable() || this.#pendingSnapshot !== null ||
      this.#log.hasCommittedToApply() || this.#msgs.length > 0 || this.#readStates.length > 0 ||
      this.#failedReads.length > 0;
  }

  /** Collects the pending work. Call `advance` with it once it is done. */
  ready(): Ready {
    this.#flush();
    const hardStateChanged = this.#hardStateChanged();
    const snapshot = this.#pendingSnapshot;
    this.#pendingSnapshot = null;
    const rd: Ready = {
      hardState: hardStateChanged ? { term: this.#term, vote: this.#vote } : null,
      entries: this.#log.takeUnstable(),
      snapshot,
      committedEntries: this.#log.takeCommitted(this.#applyBatchMax),
      messages: [],
      messagesEarly: [],
      readStates: this.#readStates,
      failedReads: this.#failedReads,
    };
    for (const m of this.#msgs) {
      if (!hardStateChanged && isLeaderMessage(m.type)) rd.messagesEarly.push(m);
      else rd.messages.push(m);
    }
    this.#msgs = [];
    this.#readStates = [];
    this.#failedReads = [];
    if (rd.hardState !== null) {
      this.#persistedHardState = rd.hardState;
      this.#hardStateInFlight = true;
    }
    return rd;
  }

  /**
   * The leader's appends and heartbeats produced since the last Ready, for sending between
   * Readys: they depend on nothing this node has yet to persist, so holding them back until the
   * disk write in progress finishes would only add latency (Raft thesis §10.2.1). Empty while a
   * term or vote change is unpersisted.
   */
  takeEarlyMessages(): Message[] {
    if (this.#role !== Role.Leader || this.#hardStateInFlight || this.#hardStateChanged()) {
      return [];
    }
    this.#flush();
    if (this.#msgs.length === 0) return [];
    const early: Message[] = [];
    const rest: Message[] = [];
    for (const m of this.#msgs) (isLeaderMessage(m.type) ? early : rest).push(m);
    this.#msgs = rest;
    return early;
  }

  /**
   * Committed entries not yet handed out, for applying between Readys (they are durable on a
   * quorum already). Empty while a received snapshot waits to be handed out: the state machine
   * must load it first. The shell must not apply these while a Ready with a snapshot is in
   * progress either.
   */
  takeCommittedEntries(): Entry[] {
    if (this.#pendingSnapshot !== null) return [];
    return this.#log.takeCommitted(this.#applyBatchMax);
  }

  /** Reads answered since the last Ready (served and failed), for handling between Readys. */
  takeReadStates(): { readStates: ReadState[]; failedReads: number[] } {
    const out = { readStates: this.#readStates, failedReads: this.#failedReads };
    if (out.readStates.length > 0) this.#readStates = [];
    if (out.failedReads.length > 0) this.#failedReads = [];
    return out;
  }

  /** Acknowledges that `rd` was persisted, sent and applied. */
  advance(rd: Ready): void {
    this.#hardStateInFlight = false;
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      this.#log.stableTo(last.index, last.term);
      if (this.#role === Role.Leader) this.#maybeCommit();
    }
  }

  // ---------------------------------------------------------------- roles

  #reset(term: number): void {
    if (this.#term !== term) {
      this.#term = term;
      this.#vote = "";
    }
    this.#leader = "";
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTicks +
      Math.floor(this.#random() * this.#electionTicks);
    this.#leadTransferee = "";
    this.#timeoutNowSent = false;
    this.#quiesced = false;
    this.#votes.clear();
    this.#progress.clear();
    this.#failAllReads();
    // A lease confirmed in an earlier leadership says nothing about the next one.
    this.#readOnly = new ReadOnlyQueue();
  }

  #becomeFollower(term: number, leader: NodeId): void {
    this.#reset(term);
    this.#role = Role.Follower;
    this.#leader = leader;
  }

  #becomePreCandidate(): void {
    // PreVote keeps term and vote: the node only asks whether it could win.
    this.#votes.clear();
    this.#progress.clear();
    this.#failAllReads();
    this.#leader = "";
    this.#quiesced = false;
    this.#role = Role.PreCandidate;
    this.#electionElapsed = 0;
    this.#randomizedElectionTimeout = this.#electionTicks +
      Math.floor(this.#random() * this.#electionTicks);
    this.#requestVotes(MessageType.PreVote, this.#term + 1, false);
  }

  #becomeCandidate(transfer: boolean): void {
    this.#reset(this.#term + 1);
    this.#vote = this.#id;
    this.#role = Role.Candidate;
    this.#requestVotes(MessageType.Vote, this.#term, transfer);
  }

  #requestVotes(type: MessageType, term: number, transfer: boolean): void {
    this.#votes.set(this.#id, true);
    if (this.#tally() === VoteResult.Won) {
      this.#onElectionWon(type);
      return;
    }
    for (const v of this.#conf.voters) {
      if (v === this.#id) continue;
      this.#msgs.push(makeMessage(type, {
        from: this.#id,
        to: v,
        term,
        index: this.#log.lastIndex(),
        logTerm: this.#log.lastTerm(),
        context: transfer ? CONTEXT_TRANSFER : 0,
      }));
    }
  }

  #onElectionWon(type: MessageType): void {
    if (type === MessageType.PreVote) this.#becomeCandidate(false);
    else this.#becomeLeader();
  }

  #becomeLeader(): void {
    assert(this.#role === Role.Candidate, "only a candidate becomes leader");
    this.#reset(this.#term);
    this.#role = Role.Leader;
    this.#leader = this.#id;
    this.#initProgress();
    // A no-op of the new term lets the leader commit (and learn the commit index) at once.
    this.#log.append([{
      term: this.#term,
      index: this.#log.lastIndex() + 1,
      type: EntryType.Normal,
      data: EMPTY,
    }]);
    this.#maybeCommit();
  }

  #initProgress(): void {
    this.#progress.clear();
    for (const id of [...this.#conf.voters, ...this.#conf.learners]) {
      if (id === this.#id) continue;
      const pr = new Progress(this.#log.lastIndex() + 1, this.#inflightMax);
      pr.recentActive = true;
      this.#progress.set(id, pr);
    }
  }

  // ---------------------------------------------------------------- votes

  #handleVoteRequest(m: Message): void {
    const isPre = m.type === MessageType.PreVote;
    const respType = isPre ? MessageType.PreVoteResp : MessageType.VoteResp;
    const canVote = this.#vote === m.from ||
      (this.#vote === "" && this.#leader === "") ||
      (isPre && m.term > this.#term);
    // Below its vote floor the node's configurations may be an earlier life's of its id.
    if (canVote && this.#pastVoteFloor() && this.#log.isUpToDate(m.index, m.logTerm)) {
      // A granted PreVote answers in the term asked about, so the candidate counts it.
      this.#send(respType, m.from, { term: m.term });
      if (!isPre) {
        this.#electionElapsed = 0;
        this.#vote = m.from;
      }
    } else {
      this.#send(respType, m.from, { reject: true });
    }
  }

  #tally(): VoteResult {
    return tallyVotes(this.#conf.voters, this.#votes);
  }

  #stepCandidate(m: Message): void {
    const myRespType = this.#role === Role.PreCandidate
      ? MessageType.PreVoteResp
      : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.#becomeFollower(m.term, m.from);
        this.#handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.#becomeFollower(m.term, m.from);
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.#becomeFollower(m.term, m.from);
        this.#handleSnapshot(m);
        return;
      case myRespType: {
        this.#votes.set(m.from, !m.reject);
        const result = this.#tally();
        if (result === VoteResult.Won) {
          this.#onElectionWon(
            this.#role === Role.PreCandidate ? MessageType.PreVote : MessageType.Vote,
          );
        } else if (result === VoteResult.Lost) {
          this.#becomeFollower(this.#term, "");
        }
        return;
      }
      case MessageType.TimeoutNow:
        return;
      case MessageType.ReadIndex:
        this.#send(MessageType.ReadIndexResp, m.from, { context: m.context, reject: true });
        return;
    }
  }

  // ---------------------------------------------------------------- follower

  #stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#fixVoteFloor(m.index + m.entries.length);
        this.#handleAppend(m);
        return;
      case MessageType.Heartbeat:
        this.#electionElapsed = 0;
        this.#leader = m.from;
        this.#handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.#electionElapsed = 0;
        this.#leader = m.from;
        if (m.snapshot !== null) this.#fixVoteFloor(m.snapshot.index);
        this.#handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        // Leadership transfer: campaign at once, skipping PreVote and the voters' leases.
        if (this.promotable) this.#becomeCandidate(true);
        return;
      case MessageType.ReadIndexResp:
        // Only answers to reads still waiting, from the leader asked: a late or duplicated answer
        // must not serve (or fail) a read twice.
        if (this.#forwardedReads.get(m.context) !== m.from) return;
        this.#forwardedReads.delete(m.context);
        if (m.reject) this.#failedReads.push(m.context);
        else this.#readStates.push({ requestId: m.context, index: m.index });
        return;
      case MessageType.ReadIndex:
        this.#send(MessageType.ReadIndexResp, m.from, { context: m.context, reject: true });
        return;
    }
  }

  #handleAppend(m: Message): void {
    if (m.index < this.#log.committed) {
      this.#send(MessageType.AppResp, m.from, { index: this.#log.committed });
      return;
    }
    const lastNew = this.#log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew >= 0) {
      this.#refreshConf();
      this.#send(MessageType.AppResp, m.from, { index: lastNew });
      return;
    }
    // Fast back-off: point the leader at the last index that could possibly match.
    const hintIndex = this.#log.findConflictByTerm(
      Math.min(m.index, this.#log.lastIndex()),
      m.logTerm,
    );
    this.#send(MessageType.AppResp, m.from, {
      index: m.index,
      reject: true,
      rejectHint: hintIndex,
      logTerm: this.#log.term(hintIndex) ?? 0,
    });
  }

  #handleHeartbeat(m: Message): void {
    const last = this.#log.lastIndex();
    const quiesce = isQuiesceHeartbeat(m);
    if (m.commit > last) {
      // The leader sends a commit index only up to what this node acknowledged, so this node
      // has lost entries it once held (a truncated or replaced log). Clamping would mark entries
      // committed that this log never had from this leader; refuse, and tell the leader how far
      // this log really goes so it stops counting on the rest (etcd panics here).
      if (this.#quiesced) this.#wake(false);
      this.#send(MessageType.HeartbeatResp, m.from, {
        // The answer to a quiesce heartbeat acknowledges no round: it only wakes the leader.
        context: quiesce ? 0 : m.context,
        reject: true,
        index: last,
        electionTicks: this.#electionTicks,
      });
      return;
    }
    if (quiesce) {
      if (m.index <= last && this.#log.matchTerm(m.index, m.logTerm)) {
        // This log holds the leader's whole log, all of it committed: nothing can change until
        // the leader speaks again. No answer, which would wake it.
        this.#log.commitTo(m.commit);
        this.#quiesced = true;
        this.#quiesceRound = m.context;
        return;
      }
      // The leader counts on entries this log does not hold (it lost or replaced them): refuse
      // as above, pointing below the leader's last entry, and stay awake.
      if (this.#quiesced) this.#wake(false);
      this.#send(MessageType.HeartbeatResp, m.from, {
        reject: true,
        index: Math.min(last, m.index - 1),
        electionTicks: this.#electionTicks,
      });
      return;
    }
    this.#log.commitTo(m.commit);
    // The answer carries this node's promise: it ignores candidates for its election timeout
    // from now on (see `step`), and the leader's lease must not outlast that.
    this.#send(MessageType.HeartbeatResp, m.from, {
      context: m.context,
      index: last,
      electionTicks: this.#electionTicks,
    });
  }

  #handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (s === null) return;
    if (s.index <= this.#log.committed) {
      this.#send(MessageType.AppResp, m.from, { index: this.#log.committed });
      return;
    }
    if (this.#log.matchTerm(s.index, s.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.#log.commitTo(s.index);
      this.#send(MessageType.AppResp, m.from, { index: this.#log.committed });
      return;
    }
    this.#log.restore(s);
    this.#snapshot = s;
    this.#pendingSnapshot = s;
    this.#refreshConf();
    this.#send(MessageType.AppResp, m.from, { index: this.#log.lastIndex() });
  }

  // ---------------------------------------------------------------- leader

  #stepLeader(m: Message): void {
    const pr = this.#progress.get(m.from);
    if (m.type === MessageType.ReadIndex) {
      if (pr === undefined) {
        // Not a member (any more): refuse rather than leave its read unanswered.
        this.#send(MessageType.ReadIndexResp, m.from, { context: m.context, reject: true });
        return;
      }
      if (this.#readOnly.size() + this.#readsAwaitingCommit.length >= this.#pendingReadsMax) {
        this.#send(MessageType.ReadIndexResp, m.from, { context: m.context, reject: true });
        return;
      }
      this.#addRead({ requestId: m.context, index: 0, from: m.from });
      return;
    }
    if (pr === undefined) return;
    pr.recentActive = true;
    switch (m.type) {
      case MessageType.AppResp:
        this.#handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        if (m.reject && m.index < pr.match) {
          // The follower holds less than it acknowledged: its match can no longer be counted
          // toward commits or chosen for a hand-over. Probe again from what it really holds.
          pr.distrustMatch(m.index);
        }
        pr.probeSent = false;
        // A full window may hold only lost AppendEntries: free a slot so one more goes out,
        // and its answer (a rejection, if the others were lost) restarts replication.
        if (pr.state === ProgressState.Replicate && pr.isPaused()) pr.freeFirstInflight();
        if (pr.match < this.#log.lastIndex()) this.#sendAppend(m.from, pr);
        if (m.context > 0) {
          // Only voters' promises bound the lease; a learner's ack never counts toward a quorum.
          const promise = this.#conf.voters.includes(m.from) ? m.electionTicks : Infinity;
          const released = this.#readOnly.ack(
            m.context,
            m.from,
            (acks) => this.#hasQuorum(acks),
            promise,
          );
          for (const r of released) this.#serveRead(r);
        }
        return;
    }
  }

  #handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // The follower's hint (index and term of its last possibly-matching entry) lets us skip
      // a whole term of mismatched entries per round trip instead of one index.
      let hint = m.rejectHint;
      if (m.logTerm > 0) hint = this.#log.findConflictByTerm(m.rejectHint, m.logTerm);
      if (pr.maybeDecrTo(m.index, hint)) {
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.#sendAppend(m.from, pr);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.#sendAppend(m.from, pr);
      return;
    }
    if (pr.state === ProgressState.Probe) {
      pr.becomeReplicate();
    } else if (
      pr.state === ProgressState.Snapshot && pr.match + 1 >= this.#log.firstIndex()
    ) {
      pr.becomeProbe();
      pr.becomeReplicate();
    }
    this.#maybeCommit();
    if (m.from === this.#leadTransferee && pr.match === this.#log.lastIndex()) {
      this.#send(MessageType.TimeoutNow, m.from, {});
    }
  }

  #selfMatch(): number {
    return this.#log.stableIndex();
  }

  #maybeCommit(): void {
    if (this.#role !== Role.Leader) return;
    const index = quorumMatchIndex(
      this.#conf.voters,
      (id) => id === this.#id ? this.#selfMatch() : this.#progress.get(id)?.match ?? 0,
    );
    // Only entries of the current term are committed by counting replicas (Raft §5.4.2).
    if (index <= this.#log.committed || this.#log.term(index) !== this.#term) return;
    const firstInTerm = !this.#committedInTerm();
    this.#log.commitTo(index);
    if (firstInTerm) {
      for (const r of this.#readsAwaitingCommit) this.#addRead(r);
      this.#readsAwaitingCommit = [];
    }
    // A leader that removed itself hands over once the change is committed (thesis §4.2.2).
    if (!this.promotable && this.#log.latestConfIndex() <= this.#log.committed) {
      this.#handOverAndStepDown();
    }
  }

  #handOverAndStepDown(): void {
    let best: NodeId = "";
    let bestMatch = -1;
    for (const v of this.#conf.voters) {
      const match = this.#progress.get(v)?.match ?? 0;
      if (match > bestMatch) {
        best = v;
        bestMatch = match;
      }
    }
    if (best !== "" && bestMatch === this.#log.lastIndex()) {
      this.#send(MessageType.TimeoutNow, best, {});
    }
    this.#becomeFollower(this.#term, "");
  }

  #committedInTerm(): boolean {
    return this.#log.term(this.#log.committed) === this.#term;
  }

  #hasQuorum(acks: Set<NodeId>): boolean {
    let n = 0;
    for (const v of this.#conf.voters) if (acks.has(v)) n++;
    return n > this.#conf.voters.length / 2;
  }

  #quorumActive(): boolean {
    const active = new Set<NodeId>([this.#id]);
    for (const [id, pr] of this.#progress) {
      if (pr.recentActive) active.add(id);
      pr.recentActive = false;
    }
    return this.#hasQuorum(active);
  }

  #addRead(read: PendingRead): void {
    if (!this.#committedInTerm()) {
      // Thesis §6.4 step 1: the leader must know the commit index of its term first.
      this.#readsAwaitingCommit.push(read);
      return;
    }
    const r = { ...read, index: this.#log.committed };
    if (this.#conf.voters.length === 1 && this.#conf.voters[0] === this.#id) {
      this.#serveRead(r);
      return;
    }
    this.#readOnly.add(r);
  }

  #serveRead(r: PendingRead): void {
    if (r.from === "") this.#readStates.push({ requestId: r.requestId, index: r.index });
    else {
      this.#send(MessageType.ReadIndexResp, r.from, { context: r.requestId, index: r.index });
    }
  }

  #failAllReads(): void {
    // Reads forwarded to the leader of a term this node is leaving: that leader may be deposed
    // and never answer, so they fail now and the client retries with the new leader.
    for (const requestId of this.#forwardedReads.keys()) this.#failedReads.push(requestId);
    this.#forwardedReads.clear();
    const dropped = [...this.#readOnly.releaseAll(), ...this.#readsAwaitingCommit];
    this.#readsAwaitingCommit = [];
    for (const r of dropped) {
      if (r.from === "") this.#failedReads.push(r.requestId);
      else this.#send(MessageType.ReadIndexResp, r.from, { context: r.requestId, reject: true });
    }
  }

  /** Leader: turns accumulated proposals, commit advances and reads into messages. */
  #flush(): void {
    if (this.#role !== Role.Leader) return;
    const last = this.#log.lastIndex();
    for (const [id, pr] of this.#progress) {
      while (!pr.isPaused() && pr.next <= last) {
        if (!this.#sendAppend(id, pr)) break;
      }
      if (!pr.isPaused() && pr.sentCommit < Math.min(pr.match, this.#log.committed)) {
        this.#sendAppend(id, pr);
      }
    }
    if (this.#readOnly.hasUnsent()) {
      this.#broadcastHeartbeat(this.#readOnly.startRound(this.#id, this.#ticks));
    }
  }

  /** Sends entries from `pr.next` (or a snapshot when they are compacted). False if paused. */
  #sendAppend(to: NodeId, pr: Progress): boolean {
    if (pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.#log.term(prevIndex);
    if (prevTerm === undefined) return this.#sendSnapshot(to, pr);
    const last = this.#log.lastIndex();
    const entries = pr.next <= last ? this.#log.slice(pr.next, last, this.#msgBytesMax) : [];
    const commit = this.#log.committed;
    this.#send(MessageType.App, to, { index: prevIndex, logTerm: prevTerm, entries, commit });
    pr.sentCommit = commit;
    pr.sentEntries(prevIndex + entries.length, entries.length);
    return true;
  }

  #sendSnapshot(to: NodeId, pr: Progress): boolean {
    const snap = this.#snapshot;
    if (snap === null || !pr.recentActive) return false;
    this.#send(MessageType.Snap, to, { snapshot: snap });
    pr.becomeSnapshot(snap.index);
    return true;
  }

  #broadcastHeartbeat(context: number): void {
    for (const [id, pr] of this.#progress) {
      // Never tell a follower a commit index beyond what it holds.
      const commit = Math.min(pr.match, this.#log.committed);
      this.#send(MessageType.Heartbeat, id, { commit, context });
      if (pr.sentCommit < commit) pr.sentCommit = commit;
    }
  }

  // ---------------------------------------------------------------- helpers

  #send(type: MessageType, to: NodeId, fields: Partial<Message>): void {
    if (type === MessageType.TimeoutNow) this.#timeoutNowSent = true;
    this.#msgs.push(makeMessage(type, { term: this.#term, ...fields, from: this.#id, to }));
  }

  #hardStateChanged(): boolean {
    return this.#term !== this.#persistedHardState.term ||
      this.#vote !== this.#persistedHardState.vote;
  }

  /** Re-reads the configuration from the log after it changed (append, truncate, restore). */
  #refreshConf(): void {
    const index = this.#log.latestConfIndex();
    const term = this.#log.term(index) ?? -1;
    if (index === this.#confIndex && term === this.#confTerm) return;
    this.#confIndex = index;
    this.#confTerm = term;
    this.#conf = this.#log.latestConf() ?? { voters: [], learners: [] };
    if (this.#role !== Role.Leader) return;
    const members = new Set([...this.#conf.voters, ...this.#conf.learners]);
    for (const id of this.#progress.keys()) {
      if (!members.has(id)) this.#progress.delete(id);
    }
    for (const id of members) {
      if (id === this.#id || this.#progress.has(id)) continue;
      const pr = new Progress(this.#log.lastIndex() + 1, this.#inflightMax);
      pr.recentActive = true;
      this.#progress.set(id, pr);
    }
    if (this.#leadTransferee !== "" && !this.#conf.voters.includes(this.#leadTransferee)) {
      this.#leadTransferee = "";
    }
    // Alone among the voters, no heartbeat ack can ever arrive: serve waiting reads now. Safe,
    // since no other node can be elected once this configuration is in the log.
    if (this.#conf.voters.length === 1 && this.#conf.voters[0] === this.#id) {
      for (const r of this.#readOnly.releaseAll()) this.#serveRead(r);
    }
    this.#maybeCommit();
  }
}

/** A heartbeat by which the leader quiesces the group: it names the leader's last entry. */
function isQuiesceHeartbeat(m: Message): boolean {
  return m.type === MessageType.Heartbeat && m.index > 0;
}

function isLeaderMessage(type: MessageType): boolean {
  return type === MessageType.App || type === MessageType.Heartbeat ||
    type === MessageType.Snap || type === MessageType.TimeoutNow ||
    type === MessageType.ReadIndexResp;
}

/**
 * The state a brand-new group member starts from: term 1 and one Config entry at index 1 naming
 * the initial members. Every initial member writes the same entry, so their logs agree from the
 * start.
 */
export function bootstrapState(conf: ConfState): RaftInitialState {
  return {
    hardState: { term: 1, vote: "" },
    snapshot: null,
    entries: [{ term: 1, index: 1, type: EntryType.Config, data: encodeConfState(conf) }],
  };
}
