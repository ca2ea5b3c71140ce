/**
 * Multi-group runs of the simulator: N nodes each host G groups (2 to 5, drawn from the seed), as
 * lib/counter/host.ts does. Each group is a whole {@linkcode Simulation} of its own (its members,
 * Raft replicas, state machines, clients, checker and ledger, so every check holds per group),
 * and the groups share what a host shares:
 *
 * - the process: a crash, a restart, a pause or a wall-clock step of a node hits every group's
 *   replica on it at once;
 * - the connection between two nodes: a partition, a one-way link or a closed connection (what
 *   was in flight on it is lost) hits every group between them, and FIFO links stay FIFO across
 *   groups;
 * - node liveness (quiesce seeds): per peer node, the host tracks when it last heard anything
 *   from it (any message of any group, or a node heartbeat sent to each peer every heartbeat
 *   interval, lost, delayed and blocked like the rest). At every heartbeat interval it wakes
 *   (`unquiesce()`) every quiet group whose leader is a peer not heard from for an election
 *   timeout, and every quiet group it leads that has a member that came back (heard again after
 *   it was thought dead, or heard from a new life of its process).
 *
 * Faults of one group alone stay per group: snapshots, membership changes (so groups drift to
 * different member sets; in some seeds each group starts on its own 3 of 5 nodes), leadership
 * transfers, idle clients. Disk faults are the node's pauses and wall-clock steps; wiped dirs,
 * lost data and forced new clusters stay in single-group runs (a group refusing to start stops
 * the whole host, which the operator model does not cover).
 *
 * With `staggeredStart` (only when asked for), each node's process starts at its drawn time with
 * empty dirs, and every group of it runs its own bootstrap check and takes its own time from
 * bootstrap to running Raft, while the host's faults go on.
 *
 * Once faults stop, every group must settle as in a single-group run; in quiesce seeds the whole
 * host then idles, every group should go quiet, and each takes one more increment and read. While
 * settled, node liveness must never wake a quiet follower whose leader's node is up and connected
 * (its node heartbeats arrive well within an election timeout): that would be a host waking idle
 * groups for nothing.
 *
 * @module
 */

import { Check, CheckFailure } from "./checker.ts";
import { EventQueue } from "./event_queue.ts";
import { NodeLiveness } from "./node_liveness.ts";
import { Prng } from "./prng.ts";
import {
  checkOf,
  EVENTS_DEFAULT,
  type GroupHost,
  IDLE_ELECTIONS,
  nodeId,
  replayCommand,
  SETTLE_US_MAX,
  type SimEvent,
  type SimFailure,
  type SimOptions,
  type SimParams,
  simParams,
  type SimQueue,
  type SimResult,
  type SimStats,
  Simulation,
  TRACE_LINES,
} from "./simulation.ts";
import { TraceHash, TraceRing } from "./trace.ts";
import { CLIENT_IDLE_EXPIRY_MS } from "../../../lib/counter/state_machine.ts";

/** What to simulate in a multi-group run. */
export interface MultiGroupOptions extends SimOptions {
  /** Groups per node, 2 to 5; default drawn from the seed. */
  groups?: number;
}

/** What the host layer did in a multi-group run. */
export interface HostStats {
  /** Node crashes (every group's replica on the node). */
  nodeCrashes: number;
  /** Node process pauses. */
  nodePauses: number;
  /** Partitions (every group between the nodes). */
  partitions: number;
  /** Connections closed with messages in flight on them. */
  connectionsClosed: number;
  /** Node heartbeats sent. */
  nodeBeats: number;
  /** Node heartbeats lost (loss, blocked link, closed connection, dead receiver). */
  nodeBeatsLost: number;
  /** Quiet followers woken because their leader's node was not heard from. */
  followerWakes: number;
  /** Quiet leaders woken because a member's node came back. */
  leaderWakes: number;
  /** Groups quiet at once at the end of the idle stretch (quiesce seeds). */
  groupsQuietAtEnd: number;
}

/** The outcome of one multi-group run. */
export interface MultiGroupResult extends SimResult {
  /** Groups per node. */
  groups: number;
  /** Each group's initial voters (node indexes). */
  groupVoters: number[][];
  /** What the host layer did. */
  host: HostStats;
}

/** Events of the fault phase per group, unless `events` says otherwise. */
const EVENTS_PER_GROUP = EVENTS_DEFAULT / 2;
/** Marks a host event in the trace hash. */
const HOST_MARK = 0xffff;
/** Probability that a group's message is handed to another group (`cross-group-delivery`). */
const MISROUTE = 0.02;

type HostEvent =
  | { kind: "chaos" }
  | { kind: "heal"; generation: number }
  | { kind: "restart"; node: number }
  /** The host's heartbeat interval: node heartbeats out, node liveness checked. */
  | { kind: "beat"; node: number; epoch: number }
  | { kind: "beatArrives"; from: number; to: number; life: number; sentUs: number };

/** An event on the run's clock: a group's (for its simulation) or the host's. */
type Routed = { group: number; ev: SimEvent; host: null } | {
  group: -1;
  ev: null;
  host: HostEvent;
};

/** The parameters of a multi-group run, all drawn from its seed. */
export function multiGroupParams(
  options: MultiGroupOptions,
): { params: SimParams; groups: number; voters: number[][] } {
  const r = new Prng(options.seed ^ 0x6a09e667);
  const groupsDrawn = r.int(2, 5);
  const subsetsDrawn = r.chance(0.5);
  const groups = options.groups ?? groupsDrawn;
  // Drawn as in a single-group run, with room for groups on 3 of 5 nodes.
  const base = simParams(options);
  const subsets = subsetsDrawn && base.voters === 3 && options.pool === undefined;
  const params = subsets ? simParams({ ...options, pool: 5 }) : base;
  params.events = options.events ?? EVENTS_PER_GROUP * groups;
  // A group that cannot start stops the whole host: no wiped dirs, lost data or forced resets.
  params.diskWeights = { ...params.diskWeights, wipe: 0, loss: 0, majorityLoss: 0 };
  params.forcedReset = false;
  // Staggered initial starts only when asked for (so that the other seeds replay as before they
  // existed): node processes start at the drawn times, every group of a node runs its own
  // bootstrap check, and the host's faults go on meanwhile (none of the single-group run's own).
  params.staggeredStart = options.staggeredStart === true;
  if (!params.staggeredStart) params.startUs = params.startUs.map(() => 0);
  params.startFaultsUs = 0;
  const voters: number[][] = [];
  for (let g = 0; g < groups; g++) {
    const all = Array.from({ length: params.pool }, (_, i) => i);
    if (!subsets) {
      voters.push(all.slice(0, params.voters));
      continue;
    }
    const chosen: number[] = [];
    while (chosen.length < params.voters) {
      const i = r.pick(all.filter((x) => !chosen.includes(x)));
      chosen.push(i);
    }
    voters.push(chosen.sort((a, b) => a - b));
  }
  return { params, groups, voters };
}

/** Runs one multi-group simulation to the end (or to the first failed check). */
export function simulateGroups(options: MultiGroupOptions): MultiGroupResult {
  return new MultiGroupSimulation(options).run();
}

/** N nodes hosting G groups. Use {@linkcode simulateGroups} unless you need to poke at it. */
export class MultiGroupSimulation {
  readonly #options: MultiGroupOptions;
  readonly #params: SimParams;
  readonly #voters: number[][];
  readonly #rng: Prng;
  readonly #queue = new EventQueue<Routed>();
  readonly #groups: Simulation[] = [];
  readonly #ring = new TraceRing(TRACE_LINES);
  readonly #hash = new TraceHash();
  readonly #trace: ((line: string) => void) | undefined;
  readonly #blocked: boolean[][] = [];
  readonly #linkDueUs: number[][] = [];
  readonly #linkResetUs: number[][] = [];
  readonly #up: boolean[] = [];
  readonly #epoch: number[] = [];
  readonly #pausedUntilUs: number[] = [];
  /** Node liveness: one for the host, or one per group (`group-liveness`). */
  readonly #liveness: NodeLiveness[] = [];
  readonly #stats: HostStats = {
    nodeCrashes: 0,
    nodePauses: 0,
    partitions: 0,
    connectionsClosed: 0,
    nodeBeats: 0,
    nodeBeatsLost: 0,
    followerWakes: 0,
    leaderWakes: 0,
    groupsQuietAtEnd: 0,
  };
  #events = 0;
  #faults = true;
  #netLoss: number;
  #netFifo: boolean;
  #partitionGeneration = 0;
  #clockJumps = 0;
  /** The group whose event is being handled, or -1. */
  #current = -1;
  /** The group being settled, or -1. */
  #settling = -1;
  /** From when (µs) every node runs and every link works for good; -1 before. */
  #settledFromUs = -1;

  /** Sets up the nodes and their groups; nothing runs until {@linkcode MultiGroupSimulation.run}. */
  constructor(options: MultiGroupOptions) {
    this.#options = options;
    const { params, groups, voters } = multiGroupParams(options);
    this.#params = params;
    this.#voters = voters;
    this.#rng = new Prng(options.seed);
    this.#trace = options.trace;
    this.#netLoss = params.netLoss;
    this.#netFifo = params.netFifo;
    for (let i = 0; i < params.pool; i++) {
      this.#blocked.push(new Array(params.pool).fill(false));
      this.#linkDueUs.push(new Array(params.pool).fill(0));
      this.#linkResetUs.push(new Array(params.pool).fill(0));
      this.#up.push(false);
      this.#epoch.push(0);
      this.#pausedUntilUs.push(0);
    }
    const perGroup = options.mutation === "group-liveness";
    for (let g = 0; g < (perGroup ? groups : 1); g++) {
      this.#liveness.push(new NodeLiveness(params.pool, options.mutation !== "restart-unseen"));
    }
    for (let g = 0; g < groups; g++) {
      const queue: SimQueue = {
        get now() {
          return clock.now;
        },
        push: (time, ev) => this.#queue.push(time, { group: g, ev, host: null }),
        pop: () => {
          throw new Error("a group of a multi-group run does not run the clock");
        },
      };
      const clock = this.#queue;
      const host: GroupHost = {
        name: `g${g + 1}`,
        params,
        rng: this.#rng.fork(),
        queue,
        blocked: this.#blocked,
        linkDueUs: this.#linkDueUs,
        linkResetUs: this.#linkResetUs,
        voters: voters[g],
        ring: this.#ring,
        hash: this.#hash,
        trace: this.#trace,
        step: () => this.#step(),
        heard: (from, to, epoch) => this.#heard(g, from, to, epoch),
        processUp: (i) => this.#up[i],
      };
      this.#groups.push(new Simulation({ ...options, trace: undefined }, host));
    }
  }

  /** Runs the fault phase, then lets every group settle and checks liveness. */
  run(): MultiGroupResult {
    let failure: SimFailure | null = null;
    try {
      this.#note(() =>
        `seed ${this.#options.seed}: ${this.#groups.length} groups on nodes ` +
        `${this.#voters.map((v) => `{${v.map(nodeId)}}`).join(" ")}: ` +
        JSON.stringify(this.#params)
      );
      for (const group of this.#groups) group.begin();
      for (let i = 0; i < this.#params.pool; i++) {
        if (this.#params.staggeredStart) {
          this.#scheduleHost(this.#params.startUs[i], { kind: "restart", node: i });
        } else {
          this.#processStarted(i);
        }
      }
      this.#scheduleHost(this.#expDelay(this.#params.chaosUsMean), { kind: "chaos" });
      while (this.#events < this.#params.events) {
        if (!this.#step()) break;
      }
      this.#settle();
    } catch (error) {
      failure = this.#failure(error);
    }
    return {
      seed: this.#options.seed,
      nodes: this.#params.voters,
      params: this.#params,
      failure,
      stats: this.#sumStats(),
      traceHash: this.#hash.hex(),
      simMs: this.#queue.now / 1000,
      groups: this.#groups.length,
      groupVoters: this.#voters,
      host: this.#stats,
    };
  }

  #failure(error: unknown): SimFailure {
    const group = this.#current >= 0 ? this.#current : this.#settling;
    const where = group >= 0 ? `g${group + 1}: ` : "";
    const message = where + (error instanceof Error ? error.message : String(error));
    this.#note(() => `FAILED ${message}`);
    return {
      check: checkOf(error),
      message,
      recent: this.#ring.lines(),
      replay: replayCommand(this.#options, this.#params, this.#groups.length),
      error,
    };
  }

  /** The groups' counts added up; what happens to a node is counted once, not per group. */
  #sumStats(): SimStats {
    const sum = { ...this.#groups[0].stats };
    for (const group of this.#groups.slice(1)) {
      for (const [key, value] of Object.entries(group.stats) as [keyof SimStats, number][]) {
        sum[key] = key === "termMax" ? Math.max(sum[key], value) : sum[key] + value;
      }
    }
    sum.events = this.#events;
    sum.crashes = this.#stats.nodeCrashes;
    sum.partitions = this.#stats.partitions;
    sum.pauses = this.#stats.nodePauses;
    sum.clockJumps = this.#clockJumps;
    return sum;
  }

  // ---------------------------------------------------------------- clock and trace

  #note(line: () => string): void {
    const t = this.#queue.now;
    const stamped = () => `${(t / 1000).toFixed(3).padStart(10)}ms host ${line()}`;
    this.#ring.push(stamped);
    if (this.#trace !== undefined) this.#trace(stamped());
  }

  #scheduleHost(delayUs: number, host: HostEvent): void {
    const at = this.#queue.now + Math.max(0, Math.round(delayUs));
    this.#queue.push(at, { group: -1, ev: null, host });
  }

  #expDelay(meanUs: number): number {
    return 1 - Math.log(1 - this.#rng.float()) * meanUs;
  }

  /** Handles the run's next event; false when none is left. */
  #step(): boolean {
    const item = this.#queue.pop();
    if (item === undefined) return false;
    this.#events++;
    if (item.host !== null) {
      this.#hash.num(HOST_MARK);
      this.#handleHost(item.host);
      return true;
    }
    let group = item.group;
    if (
      this.#options.mutation === "cross-group-delivery" && "msg" in item.ev &&
      item.ev.msg.entries.length > 0 && this.#rng.chance(MISROUTE)
    ) {
      group = (group + 1) % this.#groups.length;
      this.#note(() => `MISROUTES a message of g${item.group + 1} to g${group + 1}`);
    }
    this.#hash.num(group);
    this.#current = group;
    this.#groups[group].handleEvent(item.ev);
    this.#current = -1;
    return true;
  }

  #handleHost(ev: HostEvent): void {
    const target = ev.kind === "beat" ? ev.node : ev.kind === "beatArrives" ? ev.to : -1;
    if (target >= 0 && this.#pausedUntilUs[target] > this.#queue.now) {
      // A stopped process sends nothing and reads nothing until it runs again.
      this.#queue.push(this.#pausedUntilUs[target], { group: -1, ev: null, host: ev });
      return;
    }
    switch (ev.kind) {
      case "chaos":
        this.#onChaos();
        break;
      case "heal":
        if (ev.generation === this.#partitionGeneration) this.#heal();
        break;
      case "restart":
        if (!this.#up[ev.node]) this.#startProcess(ev.node);
        break;
      case "beat":
        this.#onBeat(ev.node, ev.epoch);
        break;
      case "beatArrives":
        this.#onBeatArrives(ev.from, ev.to, ev.life, ev.sentUs);
        break;
    }
  }

  // ---------------------------------------------------------------- node liveness

  #livenessOf(group: number): NodeLiveness {
    return this.#liveness[this.#liveness.length === 1 ? 0 : group];
  }

  #heard(group: number, from: number, to: number, life: number): void {
    this.#livenessOf(group).heard(to, from, life, this.#queue.now);
  }

  /** The host's heartbeat interval (µs) on node `i`. */
  #beatUs(i: number): number {
    return this.#params.heartbeatTicks * this.#params.tickUs[i];
  }

  #electionUs(i: number): number {
    return this.#params.electionTicksOf[i] * this.#params.tickUs[i];
  }

  /** Node `i`'s process is running from now on. */
  #processStarted(i: number): void {
    this.#up[i] = true;
    for (const liveness of this.#liveness) liveness.restarted(i, this.#queue.now);
    if (!this.#params.quiesce || this.#options.mutation === "no-node-liveness") return;
    this.#scheduleHost(this.#rng.int(0, this.#beatUs(i)), {
      kind: "beat",
      node: i,
      epoch: this.#epoch[i],
    });
  }

  /** Node `i`'s heartbeat interval: a node heartbeat to each peer, then node liveness. */
  #onBeat(i: number, epoch: number): void {
    if (!this.#up[i] || this.#epoch[i] !== epoch) return;
    this.#hash.num(i);
    if (this.#options.mutation !== "group-liveness") {
      for (let to = 0; to < this.#params.pool; to++) if (to !== i) this.#sendBeat(i, to);
    }
    this.#checkLiveness(i);
    this.#scheduleHost(this.#beatUs(i), { kind: "beat", node: i, epoch });
  }

  #sendBeat(from: number, to: number): void {
    this.#stats.nodeBeats++;
    if (this.#blocked[from][to] || this.#rng.chance(this.#netLoss)) {
      this.#stats.nodeBeatsLost++;
      return;
    }
    const p = this.#params;
    const u = this.#rng.float();
    const now = this.#queue.now;
    let due = now + Math.round(p.netDelayUsMin + (p.netDelayUsMax - p.netDelayUsMin) * u * u * u);
    if (this.#netFifo) {
      // The same connection as the groups' messages.
      due = Math.max(due, this.#linkDueUs[from][to]);
      this.#linkDueUs[from][to] = due;
    }
    this.#queue.push(due, {
      group: -1,
      ev: null,
      host: { kind: "beatArrives", from, to, life: this.#epoch[from], sentUs: now },
    });
  }

  #onBeatArrives(from: number, to: number, life: number, sentUs: number): void {
    if (!this.#up[to] || this.#blocked[from][to] || sentUs < this.#linkResetUs[from][to]) {
      this.#stats.nodeBeatsLost++;
      return;
    }
    this.#hash.num(from);
    this.#liveness[0].heard(to, from, life, this.#queue.now);
  }

  /**
   * Node `i` wakes every quiet group whose leader is a peer it has not heard from for an election
   * timeout, and every quiet group it leads with a member that came back.
   */
  #checkLiveness(i: number): void {
    const now = this.#queue.now;
    const electionUs = this.#electionUs(i);
    for (const liveness of this.#liveness) liveness.check(i, now, electionUs);
    this.#groups.forEach((group, g) => {
      const quiet = group.quietReplica(i);
      if (quiet === null) return;
      const liveness = this.#livenessOf(g);
      if (!quiet.leading) {
        const leader = quiet.leader;
        if (leader < 0 || leader === i || !liveness.isDead(i, leader)) return;
        const silentMs = liveness.silentUs(i, leader, now) / 1000;
        this.#checkNotSpurious(g, i, leader, silentMs);
        this.#stats.followerWakes++;
        this.#current = g;
        group.unquiesce(i, `leader ${nodeId(leader)} not heard from for ${silentMs} ms`);
        this.#current = -1;
        return;
      }
      const back = quiet.members.find((m) => liveness.isBack(i, m));
      if (back === undefined) return;
      this.#stats.leaderWakes++;
      this.#current = g;
      group.unquiesce(i, `member ${nodeId(back)} is back`);
      this.#current = -1;
    });
    for (const liveness of this.#liveness) liveness.clearBack(i);
  }

  /**
   * Once settled, every node runs and every link carries everything in order within
   * `netDelayUsMax`: a leader's node heartbeats reach each peer at least every
   * `beatUs + netDelayUsMax`. When that is shorter than the follower's election timeout, a host
   * that takes the leader's node for dead is wrong.
   */
  #checkNotSpurious(group: number, at: number, leader: number, silentMs: number): void {
    if (this.#settledFromUs < 0) return;
    const gapUs = this.#beatUs(leader) + this.#params.netDelayUsMax;
    if (gapUs >= this.#electionUs(at)) return;
    if (this.#queue.now < this.#settledFromUs + gapUs) return;
    this.#current = group;
    throw new CheckFailure(
      Check.liveness,
      `node liveness of ${nodeId(at)} woke a quiet follower: leader ${nodeId(leader)} not heard ` +
        `from for ${silentMs} ms, though its node runs and its node heartbeats arrive at least ` +
        `every ${gapUs / 1000} ms (election timeout ${this.#electionUs(at) / 1000} ms)`,
    );
  }

  // ---------------------------------------------------------------- node and link faults

  #onChaos(): void {
    if (!this.#faults) return;
    const p = this.#params;
    const w = p.weights;
    const actions = [
      "crash",
      "bounce",
      "partition",
      "close",
      "snapshot",
      "confChange",
      "transfer",
      "pause",
      "clockJump",
      "idle",
    ] as const;
    const weights = [
      w.crash,
      w.bounce,
      w.partition,
      w.partition,
      p.snapshots ? w.snapshot : 0,
      p.membership ? w.confChange : 0,
      p.membership ? w.transfer : 0,
      p.diskFaults ? p.diskWeights.pause : 0,
      p.diskFaults ? p.diskWeights.clockJump : 0,
      p.quiesce ? 2 : 0,
    ];
    const i = this.#rng.weighted(weights);
    if (i >= 0) {
      this.#hash.num(i);
      const action = actions[i];
      switch (action) {
        case "crash":
          this.#chaosCrash(p.downUsMax);
          break;
        case "bounce":
          this.#chaosCrash(10_000);
          break;
        case "partition":
          this.#chaosPartition();
          break;
        case "close":
          this.#chaosClose();
          break;
        case "pause":
          this.#chaosPause();
          break;
        case "clockJump":
          this.#chaosClockJump();
          break;
        case "snapshot":
        case "confChange":
        case "transfer":
          this.#inGroup(this.#rng.int(0, this.#groups.length - 1), (g) => g.groupChaos(action));
          break;
        case "idle":
          // One group's clients go idle, or every group's (the whole host idles).
          if (this.#rng.chance(0.5)) {
            this.#inGroup(this.#rng.int(0, this.#groups.length - 1), (g) => g.groupChaos(action));
          } else {
            this.#groups.forEach((_, g) => this.#inGroup(g, (group) => group.groupChaos(action)));
          }
          break;
      }
    }
    this.#scheduleHost(this.#expDelay(p.chaosUsMean), { kind: "chaos" });
  }

  #inGroup(g: number, action: (group: Simulation) => void): void {
    this.#current = g;
    action(this.#groups[g]);
    this.#current = -1;
  }

  /** Nodes that lead at least one group. */
  #leaderNodes(): number[] {
    const set = new Set<number>();
    for (const group of this.#groups) for (const i of group.leaderIndexes()) set.add(i);
    return [...set].sort((a, b) => a - b);
  }

  #upNodes(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.#params.pool; i++) if (this.#up[i]) out.push(i);
    return out;
  }

  /** A node to hit: one that leads some group half the time. */
  #victim(among: number[]): number {
    const leaders = this.#leaderNodes().filter((i) => among.includes(i));
    return leaders.length > 0 && this.#rng.chance(0.5)
      ? this.#rng.pick(leaders)
      : this.#rng.pick(among);
  }

  #chaosCrash(downUsMax: number): void {
    const up = this.#upNodes();
    if (up.length === 0) return;
    const i = this.#victim(up);
    this.#note(() => `${nodeId(i)} CRASH (every group)`);
    this.#up[i] = false;
    this.#epoch[i]++;
    this.#pausedUntilUs[i] = 0;
    this.#stats.nodeCrashes++;
    this.#groups.forEach((_, g) => this.#inGroup(g, (group) => group.crashNode(i)));
    this.#scheduleHost(this.#rng.int(1_000, downUsMax), { kind: "restart", node: i });
  }

  #startProcess(i: number): void {
    this.#note(() => `${nodeId(i)} starts (every group)`);
    this.#groups.forEach((_, g) => this.#inGroup(g, (group) => group.startNode(i)));
    this.#processStarted(i);
  }

  #chaosPause(): void {
    const now = this.#queue.now;
    const up = this.#upNodes().filter((i) => this.#pausedUntilUs[i] <= now);
    if (up.length === 0) return;
    const i = this.#victim(up);
    const tickUs = this.#params.tickUs[i];
    const electionUs = this.#params.electionTicks * tickUs;
    const pauseUs = Math.round(electionUs * this.#rng.range(1.2, this.#params.pauseElectionsMax));
    this.#pausedUntilUs[i] = now + pauseUs;
    for (const group of this.#groups) {
      group.pauseNode(i, now + pauseUs, Math.floor(pauseUs / tickUs));
    }
    this.#stats.nodePauses++;
    this.#note(() => `${nodeId(i)} PAUSED for ${pauseUs / 1000} ms (every group)`);
  }

  #chaosClockJump(): void {
    const i = this.#rng.int(0, this.#params.pool - 1);
    const jumpMs = Math.round(CLIENT_IDLE_EXPIRY_MS * this.#rng.range(-2, 2));
    for (const group of this.#groups) group.jumpWallClock(i, jumpMs);
    this.#clockJumps++;
    this.#note(() => `${nodeId(i)} WALL CLOCK JUMPS by ${jumpMs} ms`);
  }

  /** The connection between two nodes closes: every group's messages in flight on it are lost. */
  #chaosClose(): void {
    const n = this.#params.pool;
    const a = this.#rng.int(0, n - 1);
    const b = (a + this.#rng.int(1, n - 1)) % n;
    const now = this.#queue.now;
    this.#linkResetUs[a][b] = now;
    this.#linkResetUs[b][a] = now;
    this.#stats.connectionsClosed++;
    this.#note(() => `CONNECTION ${nodeId(a)}<->${nodeId(b)} closed`);
  }

  #chaosPartition(): void {
    const n = this.#params.pool;
    for (const row of this.#blocked) row.fill(false);
    const kind = this.#rng.int(0, 2);
    let what = "";
    if (kind === 0) {
      const side = this.#blocked.map(() => this.#rng.chance(0.5));
      for (let a = 0; a < n; a++) {
        for (let b = 0; b < n; b++) this.#blocked[a][b] = side[a] !== side[b];
      }
      const ids = (on: boolean) => side.flatMap((s, i) => s === on ? [nodeId(i)] : []);
      what = `split {${ids(true)}} | {${ids(false)}}`;
    } else if (kind === 1) {
      // Isolate a node leading some group (or any node).
      const all = Array.from({ length: n }, (_, i) => i);
      const leaders = this.#leaderNodes();
      const victim = leaders.length > 0 ? this.#rng.pick(leaders) : this.#rng.pick(all);
      for (let b = 0; b < n; b++) {
        if (b === victim) continue;
        this.#blocked[victim][b] = true;
        this.#blocked[b][victim] = true;
      }
      what = `isolate ${nodeId(victim)}`;
    } else {
      const links: string[] = [];
      const count = this.#rng.int(1, n);
      for (let k = 0; k < count; k++) {
        const a = this.#rng.int(0, n - 1);
        const b = this.#rng.int(0, n - 1);
        if (a === b) continue;
        this.#blocked[a][b] = true;
        links.push(`${nodeId(a)}->${nodeId(b)}`);
      }
      what = `one-way ${links.join(" ")}`;
    }
    this.#stats.partitions++;
    const generation = ++this.#partitionGeneration;
    this.#note(() => `PARTITION ${what} (every group)`);
    this.#scheduleHost(this.#rng.int(1_000, this.#params.partitionUsMax), {
      kind: "heal",
      generation,
    });
  }

  #heal(): void {
    for (const row of this.#blocked) row.fill(false);
    this.#note(() => `HEAL`);
  }

  // ---------------------------------------------------------------- the end

  /** Longest election timeout of any node (µs). */
  #electionUsMax(): number {
    let max = 0;
    for (let i = 0; i < this.#params.pool; i++) max = Math.max(max, this.#electionUs(i));
    return max;
  }

  /**
   * Faults stop, links heal, every node runs. Every group must settle (one leader, one more
   * acknowledged increment every member applied, a read of it); in quiesce seeds the host then
   * idles, and every group takes one more increment and read.
   */
  #settle(): void {
    this.#faults = false;
    this.#netLoss = 0;
    this.#netFifo = true;
    this.#groups.forEach((_, g) => this.#inGroup(g, (group) => group.stopFaults()));
    this.#heal();
    this.#note(() => `SETTLE: faults stop`);
    for (let i = 0; i < this.#params.pool; i++) if (!this.#up[i]) this.#startProcess(i);
    this.#settledFromUs = Math.max(this.#queue.now, ...this.#pausedUntilUs);
    this.#settleEach(this.#queue.now + SETTLE_US_MAX);
    if (this.#params.quiesce) {
      const idleUntilUs = this.#queue.now + IDLE_ELECTIONS * this.#electionUsMax();
      while (this.#queue.now < idleUntilUs) {
        if (!this.#step()) throw new CheckFailure(Check.liveness, "no events left");
      }
      let quiet = 0;
      this.#groups.forEach((_, g) =>
        this.#inGroup(g, (group) => quiet += group.quietNow() ? 1 : 0)
      );
      this.#stats.groupsQuietAtEnd = quiet;
      this.#note(() => `IDLE: ${quiet} of ${this.#groups.length} groups quiet`);
      this.#settleEach(this.#queue.now + SETTLE_US_MAX);
    }
    this.#groups.forEach((_, g) => this.#inGroup(g, (group) => group.checkSettled()));
  }

  #settleEach(deadlineUs: number): void {
    this.#groups.forEach((group, g) => {
      this.#settling = g;
      group.settleGroup(deadlineUs);
      this.#settling = -1;
    });
  }
}
