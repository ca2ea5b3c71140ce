/**
 * Node liveness as a multi-group host keeps it (the model of what lib/counter/host.ts does for
 * quiescence): per peer node, when this node last heard anything from it (any message of any
 * group, or a node heartbeat), whether it thinks that peer dead, and whether the peer came back
 * since the last check (heard again after being thought dead, or heard from a new life of its
 * process: it restarted).
 *
 * @module
 */

/** One host's view of every peer, for every node of a run (indexes `[at][peer]`). */
export class NodeLiveness {
  readonly #lastHeardUs: number[][] = [];
  readonly #dead: boolean[][] = [];
  readonly #back: boolean[][] = [];
  /** The latest life (process epoch) heard of each peer; -1 before any. */
  readonly #life: number[][] = [];
  readonly #noticesRestarts: boolean;

  /**
   * Tracks `pool` nodes. `noticesRestarts` false models a host that takes a peer for back only
   * when it had thought it dead (a quick restart goes unnoticed).
   */
  constructor(pool: number, noticesRestarts = true) {
    this.#noticesRestarts = noticesRestarts;
    for (let i = 0; i < pool; i++) {
      this.#lastHeardUs.push(new Array(pool).fill(0));
      this.#dead.push(new Array(pool).fill(false));
      this.#back.push(new Array(pool).fill(false));
      this.#life.push(new Array(pool).fill(-1));
    }
  }

  /** Node `at`'s process (re)started at `nowUs`: every peer gets a fresh election timeout. */
  restarted(at: number, nowUs: number): void {
    this.#lastHeardUs[at].fill(nowUs);
    this.#dead[at].fill(false);
    this.#back[at].fill(false);
    this.#life[at].fill(-1);
  }

  /** Node `at` heard from `peer`'s process in its life `life` at `nowUs`. */
  heard(at: number, peer: number, life: number, nowUs: number): void {
    const known = this.#life[at][peer];
    // Bytes of an earlier life, delivered late, say nothing about the process now.
    if (life < known) return;
    this.#lastHeardUs[at][peer] = nowUs;
    if (this.#dead[at][peer]) {
      this.#dead[at][peer] = false;
      this.#back[at][peer] = true;
    }
    if (known >= 0 && life > known && this.#noticesRestarts) this.#back[at][peer] = true;
    this.#life[at][peer] = life;
  }

  /** Node `at` takes every peer silent for more than `timeoutUs` at `nowUs` for dead. */
  check(at: number, nowUs: number, timeoutUs: number): void {
    const heard = this.#lastHeardUs[at];
    for (let peer = 0; peer < heard.length; peer++) {
      if (peer !== at && nowUs - heard[peer] > timeoutUs) this.#dead[at][peer] = true;
    }
  }

  /** Node `at` thinks `peer` dead (as of its last check). */
  isDead(at: number, peer: number): boolean {
    return this.#dead[at][peer];
  }

  /** `peer` came back (for node `at`) since `at` last cleared it. */
  isBack(at: number, peer: number): boolean {
    return this.#back[at][peer];
  }

  /** Node `at` woke what it had to for every peer that came back. */
  clearBack(at: number): void {
    this.#back[at].fill(false);
  }

  /** Microseconds since node `at` last heard from `peer`. */
  silentUs(at: number, peer: number, nowUs: number): number {
    return nowUs - this.#lastHeardUs[at][peer];
  }
}
