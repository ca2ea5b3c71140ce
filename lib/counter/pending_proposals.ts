/**
 * The leader's table of proposals waiting to be applied, by log index, each with the client
 * reply to send once its entry is applied (or known lost).
 *
 * @module
 */

import type { ClientResponse } from "../transport/mod.ts";

/** A proposal waiting for its entry to be applied. */
export interface PendingProposal {
  /** Term in which the entry was proposed: an applied entry of another term is not this one. */
  term: number;
  /** Sends the client its answer. */
  reply: (resp: ClientResponse) => void;
  /** Wall-clock deadline (ms) after which the client is answered TIMEOUT. */
  deadlineMs: number;
}

/**
 * Proposals by log index. A map, except that `add` never silently drops a waiting proposal: after
 * a leader change the same index can be proposed again (the earlier entry was overwritten by
 * another leader and this node leads again), and the earlier proposal's client must hear that its
 * entry was not applied instead of waiting for its deadline, or, worse, getting the new entry's
 * answer.
 */
export class PendingProposals extends Map<number, PendingProposal> {
  /**
   * Records `p` as the proposal at `index`. A proposal still waiting there (from an earlier term:
   * an index holds one entry per term) is answered NOT_APPLIED first.
   */
  add(index: number, p: PendingProposal): void {
    const replaced = this.get(index);
    if (replaced !== undefined) {
      replaced.reply({
        ok: false,
        code: "NOT_APPLIED",
        error: "a new leader replaced the entry before it committed; it was not applied",
      });
    }
    this.set(index, p);
  }
}
