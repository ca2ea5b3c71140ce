/**
 * The leader's view of each follower: how much of the log it holds, what to send next, and how
 * many AppendEntries are in flight to it.
 *
 * @module
 */

/** How the leader is currently replicating to a follower. */
export enum ProgressState {
  /** Unknown match: send one AppendEntries at a time and wait for the answer. */
  Probe = "probe",
  /** Known match: stream AppendEntries optimistically, up to the in-flight window. */
  Replicate = "replicate",
  /** The follower needs a snapshot; one is in flight. */
  Snapshot = "snapshot",
}

/** Replication progress of one peer, kept by the leader. */
export class Progress {
  /** Highest index known to be replicated on the peer. */
  match = 0;
  /** Next index to send. */
  next: number;
  /** Replication state. */
  state: ProgressState = ProgressState.Probe;
  /** In Probe state: one message was sent and no answer has come yet. */
  probeSent = false;
  /** Index of the snapshot in flight (Snapshot state). */
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Highest commit index sent to the peer. */
  sentCommit = 0;
  /** Last index of each AppendEntries in flight, oldest first. Bounded by `#inflightMax`. */
  #inflight: number[] = [];
  #inflightMax: number;

  /** Starts tracking a peer whose next index is `next`; at most `inflightMax` messages in flight. */
  constructor(next: number, inflightMax: number) {
    this.next = next;
    this.#inflightMax = inflightMax;
  }

  /** Number of AppendEntries in flight. */
  inflightCount(): number {
    return this.#inflight.length;
  }

  /** True when the leader should not send more entries now. */
  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.#inflight.length >= this.#inflightMax;
      case ProgressState.Snapshot:
        return true;
    }
  }

  /** Records that AppendEntries ending at `lastIndex` was sent. */
  sentEntries(lastIndex: number, entryCount: number): void {
    if (this.state === ProgressState.Replicate) {
      if (entryCount > 0) {
        this.next = lastIndex + 1;
        this.#inflight.push(lastIndex);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  /**
   * Frees the oldest in-flight slot. A heartbeat answer calls it so that a window filled by lost
   * AppendEntries cannot stall replication forever.
   */
  freeFirstInflight(): void {
    if (this.#inflight.length > 0) this.#inflight.shift();
  }

  /** Switches to Probe: next index just after the match. */
  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.#reset(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.#reset(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  /** Switches to Replicate: stream from just after the match. */
  becomeReplicate(): void {
    this.#reset(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  /** Switches to Snapshot with a snapshot at `index` in flight. */
  becomeSnapshot(index: number): void {
    this.#reset(ProgressState.Snapshot);
    this.pendingSnapshot = index;
  }

  #reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.#inflight.length = 0;
  }

  /**
   * Records an accepted AppendEntries up to `index`. Returns false when it brought nothing new
   * (a stale or duplicated answer).
   */
  maybeUpdate(index: number): boolean {
    let updated = false;
    if (this.match < index) {
      this.match = index;
      updated = true;
      this.probeSent = false;
    }
    if (this.next < index + 1) this.next = index + 1;
    let drop = 0;
    while (drop < this.#inflight.length && this.#inflight[drop] <= index) drop++;
    if (drop > 0) this.#inflight.splice(0, drop);
    return updated;
  }

  /**
   * Lowers the match to `lastIndex`, what the follower says it holds now, and probes from there.
   * Called when a follower reports fewer entries than it acknowledged (its log was truncated or
   * replaced): its old acknowledgements must no longer count.
   */
  distrustMatch(lastIndex: number): void {
    if (lastIndex >= this.match) return;
    this.match = Math.max(0, lastIndex);
    this.#reset(ProgressState.Probe);
    this.next = this.match + 1;
  }

  /**
   * Handles a rejected AppendEntries for `rejected` with the follower's hint that entries from
   * `matchHint + 1` are worth trying. Returns false when the rejection is stale.
   *
   * A rejection of an index at or below the match is stale: it answers an AppendEntries sent
   * before the follower acknowledged the match (etcd's rule), so a duplicated or late one never
   * lowers the match. A follower that really lost acknowledged entries says so in its heartbeat
   * answers instead (see {@linkcode Progress.distrustMatch}).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = Math.max(this.match + 1, Math.min(rejected, matchHint + 1));
      return true;
    }
    // In Probe only the answer to the latest probe (at next - 1) counts.
    if (rejected < this.match || this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1, 1);
    this.probeSent = false;
    return true;
  }
}

/**
 * The highest index that a majority of `voters` holds, given each voter's match index.
 * Returns 0 for an empty voter set.
 */
export function quorumMatchIndex(
  voters: readonly string[],
  matchOf: (id: string) => number,
): number {
  if (voters.length === 0) return 0;
  const matches = voters.map(matchOf).sort((a, b) => b - a);
  return matches[Math.floor(voters.length / 2)];
}

/** Outcome of counting votes. */
export enum VoteResult {
  Pending = "pending",
  Won = "won",
  Lost = "lost",
}

/** Counts `granted` against a majority of `voters`. */
export function tallyVotes(
  voters: readonly string[],
  granted: ReadonlyMap<string, boolean>,
): VoteResult {
  let yes = 0;
  let no = 0;
  for (const v of voters) {
    const g = granted.get(v);
    if (g === true) yes++;
    else if (g === false) no++;
  }
  const quorum = Math.floor(voters.length / 2) + 1;
  if (yes >= quorum) return VoteResult.Won;
  if (no > voters.length - quorum) return VoteResult.Lost;
  return VoteResult.Pending;
}
