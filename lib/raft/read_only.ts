/**
 * ReadIndex bookkeeping (Raft thesis §6.4): reads wait for one round of heartbeats that proves
 * the leader still leads, then are served at the commit index noted when they arrived.
 *
 * Reads that arrive together share one round: each round has a sequence number carried as the
 * heartbeat's context, and a quorum of acks for round N also confirms every round before it.
 *
 * A confirmed round also renews the leader's lease: each voter that acknowledged it promised to
 * ignore candidates for its own election timeout after the heartbeat, so no other leader can be
 * elected before the shortest of those promises ends. The lease runs for
 * {@linkcode LEASE_FRACTION} of that shortest promise from the round's start, whatever the
 * leader's own election timeout is.
 *
 * @module
 */

import type { NodeId } from "./types.ts";

/** A read waiting for its round; `from` is the follower that forwarded it, or "" if local. */
export interface PendingRead {
  /** The caller's id for the read. */
  requestId: number;
  /** Commit index when the read arrived; the read is served once applied reaches it. */
  index: number;
  /** Node that asked (for forwarded follower reads), "" for reads of the leader's own clients. */
  from: NodeId;
}

interface Round {
  seq: number;
  /** Tick at which the round's heartbeats were sent: the start of the lease it confirms. */
  startTick: number;
  acks: Set<NodeId>;
  /** Shortest promise (ticks) among the acks that count toward the quorum. */
  promiseTicksMin: number;
  reads: PendingRead[];
}

/**
 * Share of the acknowledging voters' shortest election timeout that the leader's lease lasts;
 * the rest allows for clock drift between nodes and for tick rounding.
 */
export const LEASE_FRACTION = 0.9;

/** Rounds kept waiting at most; the oldest is folded into the next when more start. */
const ROUNDS_MAX = 64;

/** Queue of ReadIndex rounds, oldest first. */
export class ReadOnlyQueue {
  #rounds: Round[] = [];
  #unsent: PendingRead[] = [];
  #seq = 0;
  #leaseEndTick = -Infinity;

  /** Number of reads waiting, sent or not. */
  size(): number {
    let n = this.#unsent.length;
    for (const r of this.#rounds) n += r.reads.length;
    return n;
  }

  /** Queues a read for the next round. */
  add(read: PendingRead): void {
    this.#unsent.push(read);
  }

  /** True when reads wait for a round that has not been started. */
  hasUnsent(): boolean {
    return this.#unsent.length > 0;
  }

  /**
   * Starts a round for every unsent read, acked by `self` already; returns the round's sequence
   * number to put in the heartbeats' context.
   */
  startRound(self: NodeId, tick = 0): number {
    const seq = ++this.#seq;
    if (this.#rounds.length >= ROUNDS_MAX) {
      // A later round confirms everything registered before it, so the oldest round's reads
      // can wait for the next one instead; this bounds the queue while followers are silent.
      const oldest = this.#rounds.shift()!;
      this.#rounds[0].reads = oldest.reads.concat(this.#rounds[0].reads);
    }
    this.#rounds.push({
      seq,
      startTick: tick,
      acks: new Set([self]),
      promiseTicksMin: Infinity,
      reads: this.#unsent,
    });
    this.#unsent = [];
    return seq;
  }

  /**
   * Records `from`'s ack of round `seq`; `from` promised to ignore candidates for
   * `promiseTicks` after the heartbeat (pass Infinity for acks that do not count toward a quorum,
   * such as a learner's; the default 0 confirms the reads but no lease). When `hasQuorum` says the acks of a round suffice, returns the reads of
   * that round and of all earlier rounds, now safe to serve, and extends the lease.
   */
  ack(
    seq: number,
    from: NodeId,
    hasQuorum: (acks: Set<NodeId>) => boolean,
    promiseTicks = 0,
  ): PendingRead[] {
    const pos = this.#rounds.findIndex((r) => r.seq === seq);
    if (pos < 0) return [];
    const round = this.#rounds[pos];
    round.acks.add(from);
    if (promiseTicks < round.promiseTicksMin) round.promiseTicksMin = promiseTicks;
    if (!hasQuorum(round.acks)) return [];
    const done = this.#rounds.splice(0, pos + 1);
    // A round no follower acknowledged (a one-voter group) carries no promise at all: such a
    // leader serves reads without a lease while it is alone, and its lease must not outlive
    // that. (An infinite lease here once let a leader that grew its group from one voter serve
    // stale reads forever after a partition; the simulator found it.)
    if (Number.isFinite(round.promiseTicksMin)) {
      const end = round.startTick + Math.floor(round.promiseTicksMin * LEASE_FRACTION);
      if (end > this.#leaseEndTick) this.#leaseEndTick = end;
    }
    return done.flatMap((r) => r.reads);
  }

  /**
   * First tick at which the lease confirmed so far has run out: before it, no other leader can
   * have been elected, because every voter of some quorum that acknowledged this node's heartbeat
   * still ignores candidates. -Infinity before any round is confirmed.
   */
  leaseEndTick(): number {
    return this.#leaseEndTick;
  }

  /**
   * Sequence number of the newest round still waiting, or 0. Regular heartbeats carry it so that
   * a round whose heartbeats were lost still completes.
   */
  latestRound(): number {
    const n = this.#rounds.length;
    return n > 0 ? this.#rounds[n - 1].seq : 0;
  }

  /** Sequence number of the latest round started, waiting or not; 0 before the first. */
  lastStarted(): number {
    return this.#seq;
  }

  /** Releases every round at once (used when the leader is the only voter). */
  releaseAll(): PendingRead[] {
    const all = this.#rounds.flatMap((r) => r.reads).concat(this.#unsent);
    this.#rounds = [];
    this.#unsent = [];
    return all;
  }

  /** Empties the queue, returning the reads that can no longer be served (leadership lost). */
  drain(): PendingRead[] {
    return this.releaseAll();
  }
}
