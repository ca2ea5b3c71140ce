/**
 * Data types shared by the pure Raft core, the storage layer and the transport.
 *
 * Everything here is plain data: no classes, no I/O. Node ids are the node's
 * `HOST:PORT` address, which is also how peers reach it.
 *
 * @module
 */

/** A node id: the `HOST:PORT` address the node listens on. */
export type NodeId = string;

/** What an entry's `data` means. */
export enum EntryType {
  /** Application command (for the counter: an encoded increment), or empty (a leader's no-op). */
  Normal = 0,
  /** A cluster configuration: `data` is an encoded {@linkcode ConfState}. */
  Config = 1,
}

/** One log entry. */
export interface Entry {
  /** Term of the leader that created the entry. */
  term: number;
  /** Position in the log, starting at 1. */
  index: number;
  /** What `data` holds. */
  type: EntryType;
  /** Opaque payload; empty for a leader's no-op entry. */
  data: Uint8Array;
}

/** The members of a group: voters decide elections and commits, learners only receive the log. */
export interface ConfState {
  /** Voting members, sorted. */
  voters: NodeId[];
  /** Non-voting members, sorted. */
  learners: NodeId[];
}

/** The part of a node's state that must survive a crash before it answers anyone. */
export interface HardState {
  /** The latest term this node has seen. */
  term: number;
  /** The candidate this node voted for in `term`, or "" for none. */
  vote: NodeId;
}

/** Point-in-time image of the state machine plus the log position and configuration it covers. */
export interface Snapshot {
  /** Index of the last entry the snapshot includes. */
  index: number;
  /** Term of that entry. */
  term: number;
  /** The configuration in force at `index`. */
  conf: ConfState;
  /** The state machine's encoded state. */
  data: Uint8Array;
}

/** Kinds of Raft message. Local kinds (`Hup`, `Beat`, `Prop`, ...) never cross the network. */
export enum MessageType {
  /** AppendEntries request (also the probe when `entries` is empty). */
  App = 1,
  /** AppendEntries response. */
  AppResp = 2,
  /** RequestVote. */
  Vote = 3,
  /** RequestVote response. */
  VoteResp = 4,
  /** PreVote request: "would you vote for me?", changes no one's term. */
  PreVote = 5,
  /** PreVote response. */
  PreVoteResp = 6,
  /** Leader heartbeat, carrying the commit index and an optional read context. */
  Heartbeat = 7,
  /** Heartbeat response, echoing the read context. */
  HeartbeatResp = 8,
  /** InstallSnapshot. */
  Snap = 9,
  /** Leader to transfer target: start an election now. */
  TimeoutNow = 10,
  /** Follower to leader: please run a ReadIndex round for me (follower reads). */
  ReadIndex = 11,
  /** Leader to follower: the read index for a forwarded read. */
  ReadIndexResp = 12,
}

/**
 * A Raft message. One flat shape for every kind, as in etcd's raftpb.Message; fields a kind does
 * not use are left at their zero value.
 */
export interface Message {
  /** The kind of message. */
  type: MessageType;
  /** Sender id. */
  from: NodeId;
  /** Receiver id. */
  to: NodeId;
  /** Sender's term (for PreVote: the term the sender would campaign in). */
  term: number;
  /**
   * App: term of the entry at `index`. Vote/PreVote: term of the candidate's last entry.
   * AppResp (reject): term of the follower's entry at `rejectHint` (conflict hint).
   * Heartbeat: 0, or for a quiesce heartbeat the term of the entry at `index`.
   */
  logTerm: number;
  /**
   * App: index of the entry just before `entries`. Vote/PreVote: candidate's last index.
   * AppResp: the follower's last matching index when accepted, the rejected `index` otherwise.
   * Snap: the snapshot's index. ReadIndexResp: the read index. Heartbeat: 0, or the leader's
   * last index in a quiesce heartbeat (the leader stops heartbeating until something happens;
   * see `RaftOptions.quiesce`). HeartbeatResp: the sender's last index.
   */
  index: number;
  /** App: entries to append. */
  entries: Entry[];
  /** App/Heartbeat: the leader's commit index. */
  commit: number;
  /** Responses: true when the request was refused. */
  reject: boolean;
  /** AppResp with reject: the index the leader should try next (fast back-off hint). */
  rejectHint: number;
  /**
   * Heartbeat/HeartbeatResp/ReadIndex/ReadIndexResp: read context; 0 for none. A quiesce
   * heartbeat starts no round: it carries the number of the leader's latest round, so that the
   * follower can tell heartbeats sent before it from those of a leader that woke up.
   */
  context: number;
  /**
   * HeartbeatResp: the sender's election timeout in ticks. Having heard from the leader, the
   * sender neither votes for nor becomes another candidate for that many ticks, which bounds the
   * leader's lease. 0 in every other kind.
   */
  electionTicks: number;
  /** Snap: the snapshot. */
  snapshot: Snapshot | null;
}

/** A read request that is now safe to serve once the state machine has applied `index`. */
export interface ReadState {
  /** The caller's id for this read (as given to `Raft.readIndex`). */
  requestId: number;
  /** The commit index the state machine must reach before the read is served. */
  index: number;
}

/** Roles a node can be in. */
export enum Role {
  Follower = "follower",
  PreCandidate = "pre-candidate",
  Candidate = "candidate",
  Leader = "leader",
}

/** Returns a message of `type` with every field at its zero value, then `fields` applied. */
export function makeMessage(
  type: MessageType,
  fields: Partial<Message> & { from: NodeId; to: NodeId; term: number },
): Message {
  return {
    type,
    from: fields.from,
    to: fields.to,
    term: fields.term,
    logTerm: fields.logTerm ?? 0,
    index: fields.index ?? 0,
    entries: fields.entries ?? [],
    commit: fields.commit ?? 0,
    reject: fields.reject ?? false,
    rejectHint: fields.rejectHint ?? 0,
    context: fields.context ?? 0,
    electionTicks: fields.electionTicks ?? 0,
    snapshot: fields.snapshot ?? null,
  };
}
