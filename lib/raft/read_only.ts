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
  acks: Set<NodeId>;
  reads: PendingRead[];
}

/** Queue of ReadIndex rounds, oldest first. */
export class ReadOnlyQueue {
  #rounds: Round[] = [];
  #unsent: PendingRead[] = [];
  #seq = 0;

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
  startRound(self: NodeId): number {
    const seq = ++this.#seq;
    this.#rounds.push({ seq, acks: new Set([self]), reads: this.#unsent });
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
    return done.flatMap((r) => r.reads);
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
