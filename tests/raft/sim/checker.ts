/**
 * The simulator's safety checks, kept apart from the simulator so that tests can feed them a
 * broken history by hand and see them fail.
 *
 * Every check is incremental: each call looks only at what just happened, against global maps
 * built up over the run, so checking after every event stays cheap for thousands of seeds.
 *
 * @module
 */

import {
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Snapshot,
} from "../../../lib/raft/mod.ts";

/** Names of the properties the checker enforces; a failure names the one that broke. */
export const Check = {
  electionSafety: "election safety",
  logMatching: "log matching",
  leaderCompleteness: "leader completeness",
  stateMachineSafety: "state machine safety",
  acknowledged: "acknowledged increment",
  durability: "durability",
  linearizability: "linearizability",
  exactlyOnce: "exactly once",
  liveness: "liveness",
  raftInvariant: "raft invariant",
  shell: "shell",
} as const;

/** One of the {@linkcode Check} names. */
export type CheckName = typeof Check[keyof typeof Check];

/** Thrown by the checker when a property does not hold. */
export class CheckFailure extends Error {
  /** The property that broke. */
  readonly check: CheckName;

  /** Creates a failure of `check` with a `message` giving the evidence. */
  constructor(check: CheckName, message: string) {
    super(`${check}: ${message}`);
    this.name = "CheckFailure";
    this.check = check;
  }
}

/** The read-only view of a node's in-memory log that the checks need. */
export interface LogView {
  /** Term of the entry at `index` (the snapshot's term at its index); undefined when not held. */
  termAt(index: number): number | undefined;
  /** Index covered by the node's snapshot (entries at or below it count as held). */
  readonly snapshotIndex: number;
}

/** The read-only view of a node's durable state that the checks need. */
export interface DiskView {
  /** Persisted term and vote. */
  readonly hardState: HardState;
  /** True when (`index`, `term`) is durable, or covered by the durable snapshot. */
  holds(index: number, term: number | undefined): boolean;
}

/** How the checker reads the application's entries. */
export interface CheckerOptions {
  /** Counter delta of an entry (0 for no-ops and configuration entries). */
  deltaOf(entry: Entry): bigint;
  /** Unique proposal id carried by an entry, 0 when it carries none. */
  proposalIdOf(entry: Entry): number;
  /** Counter value encoded in a snapshot. */
  valueOf(snapshot: Snapshot): bigint;
}

interface LogRecord {
  term: number;
  entry: Entry;
  /** Term of the entry before it; undefined when not known yet. */
  prevTerm: number | undefined;
}

interface CommittedRecord {
  term: number;
  /**
   * Lowest current term of a node that has applied it. The entry was committed by a leader of
   * this term or an earlier one, so every leader of this term or a later one must hold it.
   */
  knownInTerm: number;
  /** The entry, or null when only a snapshot covering it has been seen so far. */
  entry: Entry | null;
}

/** Incremental checker of Raft's safety properties over one simulated run. */
export class Checker {
  readonly #options: CheckerOptions;
  readonly #leaderByTerm = new Map<number, NodeId>();
  /** Every (index, term) entry ever seen in any log: `#log[index]` lists one record per term. */
  readonly #log: (LogRecord[] | undefined)[] = [];
  /** Entries known committed (applied by some node), by index. */
  readonly #committed: (CommittedRecord | undefined)[] = [];
  /** Counter value after applying each index, as first computed by any node. */
  readonly #valueAt: (bigint | undefined)[] = [];
  /** Per leader term: the term of the leader's entry at each index it sent. */
  readonly #leaderLog = new Map<number, Map<number, number>>();
  /** Last index each node applied, since its last restart. */
  readonly #applied = new Map<NodeId, number>();
  /** Index at which each proposal id was applied. */
  readonly #proposalIndex = new Map<number, number>();
  #committedMax = 0;
  #ackedIndexMax = 0;

  /** Creates a checker that interprets entries through `options`. */
  constructor(options: CheckerOptions) {
    this.#options = options;
  }

  /** Highest index known committed. */
  get committedMax(): number {
    return this.#committedMax;
  }

  /** Highest index of an acknowledged increment. */
  get ackedIndexMax(): number {
    return this.#ackedIndexMax;
  }

  /** The counter value after applying `index`, if some node has reached it. */
  valueAt(index: number): bigint | undefined {
    return index === 0 ? 0n : this.#valueAt[index];
  }

  /** The term of the entry known committed at `index`, if any. */
  committedTerm(index: number): number | undefined {
    return this.#committed[index]?.term;
  }

  /** The committed entry at `index`, if known. */
  committedEntry(index: number): Entry | null | undefined {
    return this.#committed[index]?.entry;
  }

  // ------------------------------------------------------------ elections

  /**
   * `node` became leader of `term` with `log`. Election safety: no other node led `term`.
   * Leader completeness: the log holds every entry known committed in an earlier term. (A
   * candidate of a lower term may still win with votes cast long ago, after a later leader
   * committed entries it lacks; Raft promises those entries only to leaders of later terms.)
   */
  leaderElected(node: NodeId, term: number, log: LogView): void {
    const other = this.#leaderByTerm.get(term);
    if (other !== undefined && other !== node) {
      throw new CheckFailure(
        Check.electionSafety,
        `${node} became leader of term ${term}, which ${other} already leads`,
      );
    }
    this.#leaderByTerm.set(term, node);
    const snapshotIndex = log.snapshotIndex;
    for (let i = Math.max(1, snapshotIndex); i <= this.#committedMax; i++) {
      const c = this.#committed[i];
      if (c === undefined || c.knownInTerm > term) continue;
      const t = log.termAt(i);
      if (t !== c.term) {
        throw new CheckFailure(
          Check.leaderCompleteness,
          `${node}, leader of term ${term}, holds term ${t} at index ${i}, ` +
            `where term ${c.term} is committed`,
        );
      }
    }
  }

  // ------------------------------------------------------------ logs

  /**
   * `node` holds `entries` right after the entry at `prevIndex` of term `prevTerm` (undefined:
   * unknown). Log matching: one content and one predecessor term per (index, term).
   */
  entriesAppended(
    node: NodeId,
    prevIndex: number,
    prevTerm: number | undefined,
    entries: readonly Entry[],
  ): void {
    let prevT = prevTerm;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.index !== prevIndex + 1 + i) {
        throw new CheckFailure(
          Check.logMatching,
          `${node} holds entry ${e.index} where ${prevIndex + 1 + i} belongs`,
        );
      }
      if (prevT !== undefined && e.term < prevT) {
        throw new CheckFailure(
          Check.logMatching,
          `${node} holds entry ${e.index} of term ${e.term} after one of term ${prevT}`,
        );
      }
      this.#recordEntry(node, e, prevT);
      prevT = e.term;
    }
  }

  #recordEntry(node: NodeId, e: Entry, prevTerm: number | undefined): void {
    let records = this.#log[e.index];
    if (records === undefined) {
      records = [];
      this.#log[e.index] = records;
    }
    for (const r of records) {
      if (r.term !== e.term) continue;
      if (!sameEntry(r.entry, e)) {
        throw new CheckFailure(
          Check.logMatching,
          `${node} holds entry ${e.index} of term ${e.term} with contents ` +
            `${describeEntry(e)}, another node holds ${describeEntry(r.entry)}`,
        );
      }
      if (prevTerm !== undefined) {
        if (r.prevTerm === undefined) r.prevTerm = prevTerm;
        else if (r.prevTerm !== prevTerm) {
          throw new CheckFailure(
            Check.logMatching,
            `${node} holds entry ${e.index} of term ${e.term} after term ${prevTerm}, ` +
              `another node after term ${r.prevTerm}`,
          );
        }
      }
      return;
    }
    records.push({ term: e.term, entry: e, prevTerm });
  }

  /**
   * The group lost its majority for good and one survivor was forced into a new one-voter
   * group (`counter recover --force-new-cluster`) with its log committed up to `keptIndex`, in
   * `forcedTerm` (above every term the survivor had seen). Entries the lost majority committed
   * above `keptIndex` are lost by design, and so are terms from `forcedTerm` on that only the
   * lost (or fenced-off) nodes reached: the checks go on from the survivor's history.
   */
  forcedReset(keptIndex: number, forcedTerm: number): void {
    this.#committed.length = Math.min(this.#committed.length, keptIndex + 1);
    this.#valueAt.length = Math.min(this.#valueAt.length, keptIndex + 1);
    this.#committedMax = Math.min(this.#committedMax, keptIndex);
    this.#ackedIndexMax = Math.min(this.#ackedIndexMax, keptIndex);
    for (const term of [...this.#leaderByTerm.keys()]) {
      if (term >= forcedTerm) this.#leaderByTerm.delete(term);
    }
    for (const term of [...this.#leaderLog.keys()]) {
      if (term >= forcedTerm) this.#leaderLog.delete(term);
    }
    for (let i = 0; i < this.#log.length; i++) {
      const records = this.#log[i];
      if (records !== undefined) this.#log[i] = records.filter((r) => r.term < forcedTerm);
    }
    for (const [id, index] of this.#proposalIndex) {
      if (index > keptIndex) this.#proposalIndex.delete(id);
    }
    this.#applied.clear();
  }

  // ------------------------------------------------------------ applying

  /**
   * `node`, in term `nodeTerm`, applied `entry`, reaching counter value `valueAfter`. State
   * machine safety: in order, once, and the same entry and value at each index on every node.
   */
  entryApplied(node: NodeId, nodeTerm: number, entry: Entry, valueAfter: bigint): void {
    const cursor = this.#applied.get(node) ?? 0;
    if (entry.index !== cursor + 1) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} applied index ${entry.index} right after index ${cursor}`,
      );
    }
    this.#applied.set(node, entry.index);
    this.#commit(node, nodeTerm, entry.index, entry.term, entry);
    const before = this.valueAt(entry.index - 1);
    if (before !== undefined) {
      const expected = BigInt.asIntN(64, before + this.#options.deltaOf(entry));
      if (expected !== valueAfter) {
        throw new CheckFailure(
          Check.stateMachineSafety,
          `${node} reached value ${valueAfter} at index ${entry.index}, ` +
            `expected ${before} + delta = ${expected}`,
        );
      }
    }
    this.#value(node, entry.index, valueAfter);
    const id = this.#options.proposalIdOf(entry);
    if (id > 0) {
      const at = this.#proposalIndex.get(id);
      if (at !== undefined && at !== entry.index) {
        throw new CheckFailure(
          Check.stateMachineSafety,
          `proposal ${id} applied at index ${entry.index} and again at index ${at}`,
        );
      }
      this.#proposalIndex.set(id, entry.index);
    }
  }

  /** `node`, in term `nodeTerm`, loaded `snapshot` from its leader. */
  snapshotApplied(node: NodeId, nodeTerm: number, snapshot: Snapshot): void {
    const cursor = this.#applied.get(node) ?? 0;
    if (snapshot.index <= cursor) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} applied a snapshot at index ${snapshot.index} after applying index ${cursor}`,
      );
    }
    this.#applied.set(node, snapshot.index);
    this.#snapshotConsistent(node, nodeTerm, snapshot);
  }

  /** `node`, in term `nodeTerm`, took `snapshot` of its own applied state. */
  snapshotTaken(node: NodeId, nodeTerm: number, snapshot: Snapshot): void {
    const cursor = this.#applied.get(node) ?? 0;
    if (snapshot.index !== cursor) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} took a snapshot at index ${snapshot.index} with index ${cursor} applied`,
      );
    }
    this.#snapshotConsistent(node, nodeTerm, snapshot);
  }

  /**
   * `node` restarted from its disk in term `nodeTerm`, with its state machine at `snapshot` (or
   * empty).
   */
  nodeRestarted(node: NodeId, nodeTerm: number, snapshot: Snapshot | null): void {
    this.#applied.set(node, snapshot === null ? 0 : snapshot.index);
    if (snapshot !== null) this.#snapshotConsistent(node, nodeTerm, snapshot);
  }

  #snapshotConsistent(node: NodeId, nodeTerm: number, snapshot: Snapshot): void {
    this.#commit(node, nodeTerm, snapshot.index, snapshot.term, null);
    this.#value(node, snapshot.index, this.#options.valueOf(snapshot));
  }

  #commit(
    node: NodeId,
    nodeTerm: number,
    index: number,
    term: number,
    entry: Entry | null,
  ): void {
    const c = this.#committed[index];
    if (c === undefined) {
      this.#committed[index] = { term, knownInTerm: nodeTerm, entry };
      if (index > this.#committedMax) this.#committedMax = index;
      return;
    }
    if (c.term !== term || (entry !== null && c.entry !== null && !sameEntry(c.entry, entry))) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} applied ${entry === null ? `a snapshot of term ${term}` : describeEntry(entry)} ` +
          `at index ${index}, where ${
            c.entry === null ? `a snapshot of term ${c.term}` : describeEntry(c.entry)
          } was applied`,
      );
    }
    if (c.entry === null && entry !== null) c.entry = entry;
    if (nodeTerm < c.knownInTerm) c.knownInTerm = nodeTerm;
  }

  #value(node: NodeId, index: number, value: bigint): void {
    const known = this.valueAt(index);
    if (known === undefined) {
      this.#valueAt[index] = value;
    } else if (known !== value) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `${node} has counter value ${value} at index ${index}, another node had ${known}`,
      );
    }
  }

  // ------------------------------------------------------------ messages and disks

  /**
   * `node` is about to send `m` with `disk` as its durable state. Durability: nothing a message
   * promises (a term, a vote, an accepted entry) may be missing from the sender's disk.
   */
  messageSent(node: NodeId, m: Message, disk: DiskView): void {
    const diskTerm = disk.hardState.term;
    if (m.type === MessageType.PreVote) {
      // A PreVote asks about the term after the persisted one, without adopting it.
      if (m.term > diskTerm + 1) {
        throw new CheckFailure(
          Check.durability,
          `${node} sent PreVote for term ${m.term} with term ${diskTerm} on disk`,
        );
      }
    } else if (m.type !== MessageType.PreVoteResp && m.term > diskTerm) {
      throw new CheckFailure(
        Check.durability,
        `${node} sent ${MessageType[m.type]} in term ${m.term} with term ${diskTerm} on disk`,
      );
    }
    switch (m.type) {
      case MessageType.VoteResp:
        if (m.reject) return;
        if (diskTerm === m.term && disk.hardState.vote !== m.to) {
          throw new CheckFailure(
            Check.durability,
            `${node} granted its term ${m.term} vote to ${m.to}, ` +
              `its disk holds a vote for "${disk.hardState.vote}"`,
          );
        }
        return;
      case MessageType.AppResp: {
        // A node in a later term than the answer may have replaced those entries since, which
        // its newer leader was entitled to; the answer is stale and the old leader steps down.
        if (m.reject || m.index === 0 || diskTerm > m.term) return;
        const expected = this.#leaderLog.get(m.term)?.get(m.index);
        if (!disk.holds(m.index, expected)) {
          throw new CheckFailure(
            Check.durability,
            `${node} acknowledged index ${m.index}` +
              `${expected === undefined ? "" : ` of term ${expected}`} to ${m.to} ` +
              `(term ${m.term}) before it was on disk`,
          );
        }
        return;
      }
      case MessageType.App: {
        let log = this.#leaderLog.get(m.term);
        if (log === undefined) {
          log = new Map();
          this.#leaderLog.set(m.term, log);
        }
        log.set(m.index, m.logTerm);
        for (const e of m.entries) log.set(e.index, e.term);
        this.entriesAppended(node, m.index, m.logTerm, m.entries);
        return;
      }
    }
  }

  /**
   * Leader `node` made commit index `index` (of term `term`) visible. Durability: a majority of
   * the voters of one of `confs` (the configurations the commit may have been counted in) holds
   * the entry on disk.
   */
  commitExposed(
    node: NodeId,
    index: number,
    term: number,
    confs: readonly ConfState[],
    diskOf: (id: NodeId) => DiskView | undefined,
  ): void {
    for (const conf of confs) {
      let holders = 0;
      for (const v of conf.voters) if (diskOf(v)?.holds(index, term) === true) holders++;
      if (holders > conf.voters.length / 2) return;
    }
    const voters = confs.map((c) => `{${c.voters.join(",")}}`).join(" or ");
    throw new CheckFailure(
      Check.durability,
      `${node} committed index ${index} of term ${term}, which no majority of ${voters} ` +
        `holds on disk`,
    );
  }

  // ------------------------------------------------------------ clients

  /**
   * The proposer applied its proposal `id` at (`index`, `term`): the client is answered. The
   * entry must be the committed one.
   */
  proposalAcked(id: number, index: number, term: number): void {
    const c = this.#committed[index];
    const got = c?.entry == null ? 0 : this.#options.proposalIdOf(c.entry);
    if (c === undefined || c.term !== term || got !== id) {
      throw new CheckFailure(
        Check.acknowledged,
        `proposal ${id} acknowledged at index ${index} term ${term}, committed there: ` +
          `${c === undefined ? "nothing" : `term ${c.term} proposal ${got}`}`,
      );
    }
    if (index > this.#ackedIndexMax) this.#ackedIndexMax = index;
  }

  /**
   * The proposer applied the entry it proposed as `data` at (`index`, `term`) and answered the
   * client. The committed entry there must be exactly that one.
   */
  commandAcked(index: number, term: number, data: Uint8Array): void {
    const c = this.#committed[index];
    const e = c?.entry;
    if (c === undefined || c.term !== term || e == null || !sameData(e.data, data)) {
      throw new CheckFailure(
        Check.acknowledged,
        `a command acknowledged at index ${index} term ${term}, committed there: ` +
          `${c === undefined ? "nothing" : e == null ? `a snapshot` : describeEntry(e)}`,
      );
    }
    if (index > this.#ackedIndexMax) this.#ackedIndexMax = index;
  }

  /**
   * A read issued when increments up to `ackedIndexMax` were acknowledged got read index
   * `readIndex`. Linearizability: it must cover them.
   */
  readIndexReturned(node: NodeId, readId: number, ackedIndexMax: number, readIndex: number): void {
    if (readIndex < ackedIndexMax) {
      throw new CheckFailure(
        Check.linearizability,
        `read ${readId} at ${node} got read index ${readIndex}, but an increment at index ` +
          `${ackedIndexMax} was acknowledged before the read was issued`,
      );
    }
  }

  /** A read issued as in `readIndexReturned` was answered with `value` at applied `index`. */
  readServed(
    node: NodeId,
    readId: number,
    ackedIndexMax: number,
    index: number,
    value: bigint,
  ): void {
    if (index < ackedIndexMax) {
      throw new CheckFailure(
        Check.linearizability,
        `read ${readId} at ${node} answered at index ${index}, missing the increment at index ` +
          `${ackedIndexMax} acknowledged before the read was issued`,
      );
    }
    const known = this.valueAt(index);
    if (known !== value) {
      throw new CheckFailure(
        Check.linearizability,
        `read ${readId} at ${node} answered ${value} at index ${index}, the value there is ${known}`,
      );
    }
  }

  /**
   * End of run: every index up to `lastIndex` is known committed, the counter there equals the
   * sum of all committed deltas, and it includes every acknowledged proposal.
   */
  finalSum(lastIndex: number, ackedIds: ReadonlyMap<number, number>): bigint {
    let sum = 0n;
    for (let i = 1; i <= lastIndex; i++) {
      const c = this.#committed[i];
      if (c === undefined || c.entry === null) {
        throw new CheckFailure(
          Check.stateMachineSafety,
          `index ${i} was never applied as an entry`,
        );
      }
      sum = BigInt.asIntN(64, sum + this.#options.deltaOf(c.entry));
    }
    const value = this.valueAt(lastIndex);
    if (value !== sum) {
      throw new CheckFailure(
        Check.stateMachineSafety,
        `counter is ${value} at index ${lastIndex}, the committed deltas sum to ${sum}`,
      );
    }
    for (const [id, index] of ackedIds) {
      const at = this.#proposalIndex.get(id);
      if (at !== index || index > lastIndex) {
        throw new CheckFailure(
          Check.acknowledged,
          `acknowledged proposal ${id} (index ${index}) is ${
            at === undefined ? "not applied" : `applied at ${at}`
          } in a final log ending at ${lastIndex}`,
        );
      }
    }
    return sum;
  }
}

function sameData(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function sameEntry(a: Entry, b: Entry): boolean {
  if (a === b) return true;
  if (a.index !== b.index || a.term !== b.term || a.type !== b.type) return false;
  if (a.data.length !== b.data.length) return false;
  for (let i = 0; i < a.data.length; i++) if (a.data[i] !== b.data[i]) return false;
  return true;
}

/** Short description of an entry for failure messages. */
export function describeEntry(e: Entry): string {
  const hex = Array.from(e.data.subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
  return `(${e.index}, t${e.term}, type ${e.type}, ${e.data.length}B ${hex})`;
}
