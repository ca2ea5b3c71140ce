/**
 * The leader's table of proposals waiting to be applied, by log index, each with the client
 * replies to send once its entry is applied (or known lost). One entry may carry many client
 * requests (a batch of increments, see command.ts): its replies are in the entry's item order.
 *
 * @module
 */

import type { ClientResponse } from "../transport/mod.ts";

/** Sends one client its answer. */
export type Reply = (resp: ClientResponse) => void;

/** A proposal waiting for its entry to be applied. */
export interface PendingProposal {
  /** Term in which the entry was proposed: an applied entry of another term is not this one. */
  term: number;
  /**
   * The clients to answer, one per request the entry carries, in the entry's order: one for a
   * single increment or a configuration change, one per item for a batch of increments.
   */
  replies: Reply[];
  /** Deadline (`performance.now()` ms) after which every client is answered TIMEOUT. */
  deadlineMs: number;
}

/** Sends every client of `p` the same answer: the entry failed, or its outcome is unknown. */
export function replyAll(p: PendingProposal, resp: ClientResponse): void {
  for (const reply of p.replies) reply(resp);
}

/**
 * Proposals by log index. A map, except that `add` never silently drops a waiting proposal: after
 * a leader change the same index can be proposed again (the earlier entry was overwritten by
 * another leader and this node leads again), and the earlier proposal's clients must hear that
 * their entry was not applied instead of waiting for its deadline, or, worse, getting the new
 * entry's answers. It also counts the requests waiting (`requests`), which the node's bound on
 * waiting work counts rather than entries.
 */
export class PendingProposals extends Map<number, PendingProposal> {
  #requests = 0;

  /** Client requests waiting over all proposals (a batch counts each of its items). */
  get requests(): number {
    return this.#requests;
  }

  /**
   * Records `p` as the proposal at `index`. A proposal still waiting there (from an earlier term:
   * an index holds one entry per term) is answered NOT_APPLIED first.
   */
  add(index: number, p: PendingProposal): void {
    const replaced = this.get(index);
    if (replaced !== undefined) {
      replyAll(replaced, {
        ok: false,
        code: "NOT_APPLIED",
        error: "a new leader replaced the entry before it committed; it was not applied",
      });
    }
    this.set(index, p);
  }

  /** Map's `set`, keeping the request count. */
  override set(index: number, p: PendingProposal): this {
    const replaced = this.get(index);
    if (replaced !== undefined) this.#requests -= replaced.replies.length;
    this.#requests += p.replies.length;
    return super.set(index, p);
  }

  /** Map's `delete`, keeping the request count. */
  override delete(index: number): boolean {
    const p = this.get(index);
    if (p === undefined) return false;
    this.#requests -= p.replies.length;
    return super.delete(index);
  }

  /** Map's `clear`, keeping the request count. */
  override clear(): void {
    this.#requests = 0;
    super.clear();
  }
}
