/**
 * What idle groups cost in the pure Raft core, quiet or not (issue 13: 1,000 idle groups on 3
 * nodes within 5% of a core per node).
 *
 *     deno bench -A bench/quiesce_bench.ts
 *
 * 1,000 three-replica groups live in one process (3,000 `Raft` objects, all three nodes' worth),
 * with the node's default timing: a tick every 10 ms, heartbeats every 10 ticks, elections after
 * 100. One iteration is 100 ms of their time: 10 ticks of every replica, each followed by what a
 * host does with it (take and advance the Ready, deliver the messages in memory, take and advance
 * the receivers' Readies). No disk, no network, no codec: this is the core's share only.
 *
 * - "active": groups that never quiesce (`quiesce: false`), heartbeating and answering;
 * - "quiet": quiesced groups, whose host skips the Ready check of a quiet replica after a tick
 *   (`raft.quiesced`), as a tick of a quiet replica produces no work;
 * - "quiet, Ready checked anyway": the same, with a host that calls `hasReady()` every tick.
 *
 * CPU per node for 1,000 groups = time per iteration / 3 nodes / 100 ms.
 *
 * @module
 */

import { bootstrapState, type ConfState, type Message, Raft } from "../lib/raft/mod.ts";

const GROUPS = 1000;
const TICKS_PER_ITERATION = 10;
const ELECTION_TICKS = 100;
const HEARTBEAT_TICKS = 10;
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

/** One group: three replicas whose messages are delivered in memory. */
class Group {
  readonly replicas = new Map<string, Raft>();

  constructor(index: number, quiesce: boolean) {
    IDS.forEach((id, i) => {
      const raft = new Raft({
        id,
        electionTicks: ELECTION_TICKS,
        heartbeatTicks: HEARTBEAT_TICKS,
        random: seeded(index * 3 + i + 1),
        quiesce,
      }, bootstrapState(CONF));
      this.replicas.set(id, raft);
    });
    this.replicas.get(IDS[index % 3])!.campaign();
    this.settle();
  }

  /** Handles the Ready of `raft`, queueing its messages. */
  #handle(raft: Raft, out: Message[]): void {
    while (raft.hasReady()) {
      const rd = raft.ready();
      for (const m of rd.messagesEarly) out.push(m);
      for (const m of rd.messages) out.push(m);
      raft.advance(rd);
    }
  }

  /** Delivers messages and handles Readies until nothing moves. */
  settle(pending: Message[] = []): void {
    for (const raft of this.replicas.values()) this.#handle(raft, pending);
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      for (const m of batch) {
        const to = this.replicas.get(m.to)!;
        to.step(m);
        this.#handle(to, pending);
      }
    }
  }

  /** One tick of every replica, with the host's work after it. */
  tick(skipQuiet: boolean): void {
    const out: Message[] = [];
    for (const raft of this.replicas.values()) {
      raft.tick();
      if (skipQuiet && raft.quiesced) continue;
      this.#handle(raft, out);
    }
    if (out.length > 0) this.settle(out);
  }
}

function groups(quiesce: boolean): Group[] {
  const all: Group[] = [];
  for (let i = 0; i < GROUPS; i++) all.push(new Group(i, quiesce));
  // A heartbeat interval and then some: quiesce groups go quiet, the others settle into beats.
  for (let t = 0; t < 2 * HEARTBEAT_TICKS; t++) for (const g of all) g.tick(false);
  const quiet = all.filter((g) => [...g.replicas.values()].every((r) => r.quiesced)).length;
  if (quiet !== (quiesce ? GROUPS : 0)) throw new Error(`${quiet} of ${GROUPS} groups are quiet`);
  return all;
}

const active = groups(false);
const quiet = groups(true);

function run(all: Group[], skipQuiet: boolean): void {
  for (let t = 0; t < TICKS_PER_ITERATION; t++) for (const g of all) g.tick(skipQuiet);
}

Deno.bench({
  name: "1,000 active idle groups x 3 replicas: 100 ms (10 ticks, 1 heartbeat round)",
  group: "idle groups",
  baseline: true,
  fn: () => run(active, true),
});

Deno.bench({
  name: "1,000 quiet groups x 3 replicas: 100 ms (10 ticks)",
  group: "idle groups",
  fn: () => run(quiet, true),
});

Deno.bench({
  name: "1,000 quiet groups x 3 replicas: 100 ms (10 ticks), Ready checked anyway",
  group: "idle groups",
  fn: () => run(quiet, false),
});
