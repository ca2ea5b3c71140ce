/**
 * Node liveness for quiescent groups: when this process last heard anything from each peer node.
 *
 * A quiet group sends nothing (see docs/DESIGN.md, "Quiescent groups"), so a follower cannot tell
 * from its group's traffic that its leader's node died, and a leader cannot tell that a member's
 * node restarted. The host tracks it per peer node instead, over all groups: every peer body that
 * arrives (a Raft message, a snapshot chunk or ack, of any group) and the coalesced node-level
 * heartbeat (PEER_HEARTBEAT) count as hearing from its sender. A peer not heard from for
 * `timeoutMs` is thought dead; one heard again after that has come back.
 *
 * Pure: the caller passes the clock reading (monotonic ms) to every call.
 *
 * @module
 */

interface PeerRecord {
  lastHeardMs: number;
  dead: boolean;
}

/** Per-peer record of the last time anything arrived from it; see the module doc. */
export class NodeLiveness {
  readonly #timeoutMs: number;
  readonly #peers = new Map<string, PeerRecord>();
  readonly #dead = new Set<string>();

  /** A peer is thought dead once nothing arrived from it for `timeoutMs` (an election timeout). */
  constructor(timeoutMs: number) {
    if (!(timeoutMs > 0)) throw new RangeError(`timeoutMs must be positive, got ${timeoutMs}`);
    this.#timeoutMs = timeoutMs;
  }

  /**
   * Something arrived from `peer` at `nowMs`. True when the peer was thought dead until now (it
   * came back: the caller wakes the quiet groups it leads that have `peer` as a member).
   */
  heard(peer: string, nowMs: number): boolean {
    const record = this.#peers.get(peer);
    if (record === undefined) {
      this.#peers.set(peer, { lastHeardMs: nowMs, dead: false });
      return false;
    }
    if (nowMs > record.lastHeardMs) record.lastHeardMs = nowMs;
    if (!record.dead) return false;
    record.dead = false;
    this.#dead.delete(peer);
    return true;
  }

  /**
   * Marks dead every peer not heard from for the timeout as of `nowMs`; returns those newly
   * marked. A peer never heard from is not tracked, so never thought dead.
   */
  sweep(nowMs: number): string[] {
    const died: string[] = [];
    for (const [peer, record] of this.#peers) {
      if (record.dead || nowMs - record.lastHeardMs < this.#timeoutMs) continue;
      record.dead = true;
      this.#dead.add(peer);
      died.push(peer);
    }
    return died;
  }

  /** The peers thought dead at the last {@linkcode sweep} and not heard from since. */
  get dead(): ReadonlySet<string> {
    return this.#dead;
  }

  /** When `peer` was last heard from (monotonic ms), or undefined if never. */
  lastHeardMs(peer: string): number | undefined {
    return this.#peers.get(peer)?.lastHeardMs;
  }

  /** Stops tracking `peer` (no group has it as a member any more). */
  forget(peer: string): void {
    this.#peers.delete(peer);
    this.#dead.delete(peer);
  }
}
