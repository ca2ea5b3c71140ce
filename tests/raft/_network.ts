/**
 * A tiny in-memory network for driving small Raft clusters by hand in tests.
 *
 * Each node is a bare {@linkcode Raft}. "Persisting" a Ready means remembering what it handed
 * out and calling `advance`; "sending" means queueing its messages here. Nothing is delivered
 * until a test asks for it, so a test can inspect, drop or reorder messages between steps.
 *
 * @module
 */

import {
  bootstrapState,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  Raft,
  type RaftInitialState,
  type RaftOptions,
  type ReadState,
  type Ready,
  type Snapshot,
} from "../../lib/raft/mod.ts";

/** Deterministic PRNG (mulberry32): the same seed gives the same election timeouts every run. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options shared by every node of a test cluster; `id` and `random` are filled in per node. */
export type NodeOptions = Partial<Omit<RaftOptions, "id">>;

/** Default tuning for tests: small numbers keep the tick loops short. */
export const ELECTION_TICKS = 10;
/** Default heartbeat interval in ticks. */
export const HEARTBEAT_TICKS = 1;

/** Builds a node with test defaults and a fixed per-node seed. */
export function newNode(
  id: NodeId,
  initial: RaftInitialState,
  options: NodeOptions = {},
  seed = 1,
): Raft {
  return new Raft({
    id,
    electionTicks: ELECTION_TICKS,
    heartbeatTicks: HEARTBEAT_TICKS,
    random: seededRandom(seed),
    ...options,
  }, initial);
}

/** What the network has seen a node persist and apply. */
export interface NodeRecord {
  /** The node under test. */
  raft: Raft;
  /** Last hard state it persisted. */
  hardState: HardState | null;
  /** Every committed entry it applied, in order. */
  applied: Entry[];
  /** Every snapshot it installed. */
  snapshots: Snapshot[];
  /** Reads it may now serve. */
  readStates: ReadState[];
  /** Reads it reported as failed. */
  failedReads: number[];
  /** Every Ready it produced, oldest first. */
  readies: Ready[];
}

/** Upper bound on delivery rounds in `stabilize`; a cluster that never settles is a bug. */
const STABILIZE_ROUNDS_MAX = 1000;

/** A set of nodes plus the messages travelling between them. */
export class Network {
  /** Nodes by id. */
  readonly nodes = new Map<NodeId, NodeRecord>();
  /** Messages sent and not yet delivered, in send order. */
  inFlight: Message[] = [];
  /** Every message any node sent, including dropped ones, in send order. */
  readonly sent: Message[] = [];
  #cut = new Set<string>();
  #dropIf: ((m: Message) => boolean)[] = [];

  /** Adds a node to the network. */
  add(raft: Raft): Raft {
    this.nodes.set(raft.id, {
      raft,
      hardState: null,
      applied: [],
      snapshots: [],
      readStates: [],
      failedReads: [],
      readies: [],
    });
    return raft;
  }

  /** The node `id`. */
  node(id: NodeId): Raft {
    return this.record(id).raft;
  }

  /** The record of node `id`. */
  record(id: NodeId): NodeRecord {
    const r = this.nodes.get(id);
    if (r === undefined) throw new Error(`no node ${id}`);
    return r;
  }

  /** Drops every message between `a` and `b`, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}->${b}`);
    this.#cut.add(`${b}->${a}`);
  }

  /** Drops every message from `from` to `to` (one way). */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.#cut.add(`${from}->${to}`);
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) if (other !== id) this.cut(id, other);
  }

  /** Drops every message for which `predicate` holds, until `heal`. */
  dropWhere(predicate: (m: Message) => boolean): void {
    this.#dropIf.push(predicate);
  }

  /** Restores every link and removes every drop rule. */
  heal(): void {
    this.#cut.clear();
    this.#dropIf = [];
  }

  /** Advances every listed node (default: all) by `n` ticks, without delivering anything. */
  tick(ids: NodeId[] = [...this.nodes.keys()], n = 1): void {
    for (let i = 0; i < n; i++) for (const id of ids) this.node(id).tick();
  }

  /**
   * Handles the Ready of `id` (default: every node) the way a shell would: persist (remember),
   * apply, queue messages, advance. Returns the number of Readies handled.
   */
  processReady(ids: NodeId[] = [...this.nodes.keys()]): number {
    let handled = 0;
    for (const id of ids) {
      const rec = this.record(id);
      while (rec.raft.hasReady()) {
        const rd = rec.raft.ready();
        rec.readies.push(rd);
        if (rd.hardState !== null) rec.hardState = rd.hardState;
        if (rd.snapshot !== null) rec.snapshots.push(rd.snapshot);
        rec.applied.push(...rd.committedEntries);
        rec.readStates.push(...rd.readStates);
        rec.failedReads.push(...rd.failedReads);
        for (const m of [...rd.messagesEarly, ...rd.messages]) this.#enqueue(m);
        rec.raft.advance(rd);
        handled++;
      }
    }
    return handled;
  }

  #enqueue(m: Message): void {
    this.sent.push(m);
    if (this.#cut.has(`${m.from}->${m.to}`)) return;
    if (this.#dropIf.some((p) => p(m))) return;
    if (!this.nodes.has(m.to)) return;
    this.inFlight.push(m);
  }

  /** Delivers every message now in flight (not those they cause). Returns how many. */
  deliver(): number {
    const batch = this.inFlight;
    this.inFlight = [];
    for (const m of batch) this.node(m.to).step(m);
    return batch.length;
  }

  /** Removes and returns the in-flight messages for which `predicate` holds. */
  take(predicate: (m: Message) => boolean): Message[] {
    const taken = this.inFlight.filter(predicate);
    this.inFlight = this.inFlight.filter((m) => !predicate(m));
    return taken;
  }

  /** Steps one message into its destination, as if the network delivered it. */
  send(m: Message): void {
    this.node(m.to).step(m);
  }

  /** Handles Readies and delivers messages until nothing moves. */
  stabilize(): void {
    for (let round = 0; round < STABILIZE_ROUNDS_MAX; round++) {
      const handled = this.processReady();
      const delivered = this.deliver();
      if (handled === 0 && delivered === 0) return;
    }
    throw new Error(`cluster did not settle within ${STABILIZE_ROUNDS_MAX} rounds`);
  }

  /** `id` campaigns at once; the cluster then settles. */
  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.stabilize();
  }

  /** Ids of the nodes that currently believe they lead. */
  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((r) => r.raft.role === "leader").map((r) => r.raft.id);
  }

  /** Messages sent since `mark` (an earlier `sent.length`) that satisfy `predicate`. */
  sentSince(mark: number, predicate: (m: Message) => boolean = () => true): Message[] {
    return this.sent.slice(mark).filter(predicate);
  }
}

/** Options for {@linkcode newCluster}. */
export interface ClusterOptions extends NodeOptions {
  /** Non-voting members, bootstrapped with the voters. */
  learners?: NodeId[];
}

/**
 * A freshly bootstrapped group: every member starts from the same Config entry at index 1,
 * term 1. Node `i` gets seed `i + 1`.
 */
export function newCluster(voters: NodeId[], options: ClusterOptions = {}): Network {
  const { learners = [], ...nodeOptions } = options;
  const conf: ConfState = { voters: [...voters].sort(), learners: [...learners].sort() };
  const net = new Network();
  [...voters, ...learners].forEach((id, i) => {
    net.add(newNode(id, bootstrapState(conf), nodeOptions, i + 1));
  });
  return net;
}

/** A Normal entry of `term` at `index` carrying `text`. */
export function entry(index: number, term: number, text = ""): Entry {
  return { index, term, type: EntryType.Normal, data: new TextEncoder().encode(text) };
}

/** The text of a Normal entry's data. */
export function text(e: Entry): string {
  return new TextDecoder().decode(e.data);
}

/** Encodes each string as a command. */
export function commands(...texts: string[]): Uint8Array[] {
  return texts.map((t) => new TextEncoder().encode(t));
}

/**
 * A node state whose log follows the bootstrap Config entry of `conf` with one entry per term in
 * `terms` (index 2 onwards), in hard-state term `term`.
 */
export function stateWithLog(conf: ConfState, terms: number[], term: number): RaftInitialState {
  const boot = bootstrapState(conf);
  const entries = [...boot.entries, ...terms.map((t, i) => entry(i + 2, t))];
  return { hardState: { term, vote: "" }, snapshot: null, entries };
}
