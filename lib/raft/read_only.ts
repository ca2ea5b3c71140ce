/**
 * ReadIndex bookkeeping (Raft thesis §6.4): reads wait for one round of heartbeats that proves
 * the leader still leads, then are served at the commit index noted when they arrived.
 *
 * Reads that arrive together share one round: each round has a sequence number carried as the
 * heartbeat's context, and a quorum of acks for round N also confirms every round before it.
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
  reads: PendingRead[];
}

/** Rounds kept waiting at most; the oldest is folded into the next when more start. */
const ROUNDS_MAX = 64;

/** Queue of ReadIndex rounds, oldest first. */
export class ReadOnlyQueue {
  #rounds: Round[] = [];
  #unsent: PendingRead[] = [];
  #seq = 0;
  #confirmedTick = -Infinity;

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
    this.#rounds.push({ seq, startTick: tick, acks: new Set([self]), reads: this.#unsent });
    this.#unsent = [];
    return seq;
  }

  /**
   * Records `from`'s ack of round `seq`. When `hasQuorum` says the acks of a round suffice,
   * returns the reads of that round and of all earlier rounds, now safe to serve.
   */
  ack(seq: number, from: NodeId, hasQuorum: (acks: Set<NodeId>) => boolean): PendingRead[] {
    const pos = this.#rounds.findIndex((r) => r.seq === seq);
    if (pos < 0) return [];
    const round = this.#rounds[pos];
    round.acks.add(from);
    if (!hasQuorum(round.acks)) return [];
    const done = this.#rounds.splice(0, pos + 1);
    if (round.startTick > this.#confirmedTick) this.#confirmedTick = round.startTick;
    return done.flatMap((r) => r.reads);
  }

  /**
   * Start tick of the newest round a quorum acknowledged: at that tick this node was still the
   * leader, and no other leader can be elected for an election timeout after it.
   */
  confirmedTick(): number {
    return this.#confirmedTick;
  }

  /**
   * Sequence number of the newest round still waiting, or 0. Regular heartbeats carry it so that
   * a round whose heartbeats were lost still completes.
   */
  latestRound(): number {
    const n = this.#rounds.length;
    return n > 0 ? this.#rounds[n - 1].seq : 0;
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
