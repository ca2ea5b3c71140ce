/**
 * Micro-benchmarks of the pure Raft core (lib/raft): no disk, no network, no clock.
 *
 *     deno bench -A bench/raft_step_bench.ts
 *
 * - "3 nodes: propose 64 + deliver until committed": a 3-node in-memory cluster; the leader
 *   proposes 64 increments, and Readies are handled (persisting is a no-op) and messages
 *   delivered until every node has applied them. Entries/s = 64 / the time per iteration.
 * - "follower: step 64 App messages of N entries each": `step` of an AppendEntries message
 *   carrying N new entries on a follower, 64 times in a row (one step = time/iter / 64; a single
 *   step is too short for `b.start()`/`b.end()`). The Ready that follows, with the 64
 *   acknowledgements, is handled outside the measured part; a variant measures one step + Ready +
 *   advance together.
 *
 * Every few thousand iterations each node is given a snapshot at its applied index and its log is
 * compacted (outside the measured part), so memory stays flat however long the bench runs.
 *
 * @module
 */

import {
  bootstrapState,
  type ConfState,
  type Entry,
  EntryType,
  makeMessage,
  type Message,
  MessageType,
  Raft,
} from "../lib/raft/mod.ts";
import { encodeIncrement } from "../lib/counter/command.ts";

const IDS = ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"];
const CONF: ConfState = { voters: [...IDS].sort(), learners: [] };

/** Deterministic PRNG (mulberry32), so elections are the same on every run. */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A realistic increment command (delta 1, a UUID client id): 69 bytes. */
const COMMAND = encodeIncrement({
  delta: 1n,
  proposedAtMs: Date.now(),
  clientId: crypto.randomUUID(),
  seq: 1,
  ackedBelow: 1,
});
const BATCH = Array.from({ length: 64 }, () => COMMAND);

/** A 3-node group whose messages are delivered in memory, in send order. */
class Cluster {
  readonly nodes = new Map<string, Raft>();
  #queue: Message[] = [];
  applied = 0;

  constructor() {
    IDS.forEach((id, i) => {
      this.nodes.set(
        id,
        new Raft(
          { id, electionTicks: 10, heartbeatTicks: 1, random: seeded(i + 1) },
          bootstrapState(CONF),
        ),
      );
    });
  }

  /** Handles every Ready (persist = nothing, apply = count) and delivers until nothing moves. */
  stabilize(): void {
    for (;;) {
      let moved = false;
      for (const raft of this.nodes.values()) {
        while (raft.hasReady()) {
          const rd = raft.ready();
          for (const m of rd.messagesEarly) this.#queue.push(m);
          for (const m of rd.messages) this.#queue.push(m);
          if (raft.id === IDS[0]) this.applied += rd.committedEntries.length;
          raft.advance(rd);
          moved = true;
        }
      }
      if (this.#queue.length === 0 && !moved) return;
      const batch = this.#queue;
      this.#queue = [];
      for (const m of batch) this.nodes.get(m.to)!.step(m);
    }
  }

  leader(): Raft {
    for (const r of this.nodes.values()) if (r.role === "leader") return r;
    throw new Error("no leader");
  }

  /** Gives every node a snapshot at its applied index (what the node shell does) and compacts. */
  compact(): void {
    for (const r of this.nodes.values()) {
      const index = r.status().applied;
      const term = r.termAt(index);
      if (term === undefined) continue;
      r.setSnapshot({ index, term, conf: CONF, data: new Uint8Array(8) }, index);
    }
  }
}

function electedCluster(): Cluster {
  const c = new Cluster();
  c.nodes.get(IDS[0])!.campaign();
  c.stabilize();
  if (c.leader().id !== IDS[0]) throw new Error("unexpected leader");
  return c;
}

const COMPACT_EVERY = 2048;

{
  const cluster = electedCluster();
  const leader = cluster.leader();
  let n = 0;
  Deno.bench(
    "3 nodes: propose 64 + deliver until committed and applied everywhere",
    { group: "cluster", n: 20_000, warmup: 2_000 },
    (b) => {
      if (++n % (COMPACT_EVERY / 8) === 0) cluster.compact();
      b.start();
      const res = leader.propose(BATCH);
      cluster.stabilize();
      b.end();
      if (!res.ok) throw new Error(res.reason);
    },
  );
}

/**
 * A follower in a 3-node group plus a generator of the leader's next App message carrying
 * `count` entries (each commits everything before it).
 */
function followerWithLeaderStream(count: number): { follower: Raft; next: () => Message } {
  const cluster = electedCluster();
  const leader = cluster.leader();
  const follower = cluster.nodes.get(IDS[1])!;
  const term = leader.term;
  let last = follower.lastIndex;
  const next = (): Message => {
    const entries: Entry[] = new Array(count);
    for (let i = 0; i < count; i++) {
      entries[i] = { term, index: last + 1 + i, type: EntryType.Normal, data: COMMAND };
    }
    const m = makeMessage(MessageType.App, {
      from: leader.id,
      to: follower.id,
      term,
      logTerm: term,
      index: last,
      commit: last,
      entries,
    });
    last += count;
    return m;
  };
  return { follower, next };
}

function compactFollower(follower: Raft): void {
  const index = follower.status().applied;
  const term = follower.termAt(index);
  if (term !== undefined) {
    follower.setSnapshot({ index, term, conf: CONF, data: new Uint8Array(8) }, index);
  }
}

// One step is ~1 µs, below what `b.start()`/`b.end()` can time (Deno ignores them under 10 µs
// an iteration), so each iteration steps a batch of pre-built messages and the Ready is handled
// outside the measured part: time per step = time per iteration / STEPS.
const STEPS = 64;

for (const count of [1, 64]) {
  const { follower, next } = followerWithLeaderStream(count);
  let n = 0;
  Deno.bench(
    `follower: step ${STEPS} App messages of ${count} ${count === 1 ? "entry" : "entries"} each`,
    { group: "follower", baseline: count === 1 },
    (b) => {
      const ms = Array.from({ length: STEPS }, next);
      b.start();
      for (let i = 0; i < STEPS; i++) follower.step(ms[i]);
      b.end();
      const rd = follower.ready();
      follower.advance(rd);
      if (rd.messages.length !== STEPS) throw new Error(`expected ${STEPS} AppResps`);
      if (++n % (COMPACT_EVERY / STEPS) === 0) compactFollower(follower);
    },
  );
}

{
  const { follower, next } = followerWithLeaderStream(1);
  let n = 0;
  Deno.bench(
    "follower: step one App (1 entry) + Ready + advance, message built in the loop",
    { group: "follower, one step" },
    () => {
      follower.step(next());
      const rd = follower.ready();
      follower.advance(rd);
      if (rd.messages.length !== 1) throw new Error("expected one AppResp");
      if (++n % COMPACT_EVERY === 0) compactFollower(follower);
    },
  );
}
