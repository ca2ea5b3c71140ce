/**
 * The metrics of one counter node, and its health verdict.
 *
 * Events (a request answered, an entry applied, an fsync, a snapshot) are recorded by the node as
 * they happen, into series created once here. State that the node keeps anyway (role, term, the
 * Raft indexes, followers' progress, connections, memory) is read only when `/metrics` is
 * scraped, from a {@linkcode NodeSample}.
 *
 * @module
 */

import denoConfig from "../../deno.json" with { type: "json" };
import {
  type Counter,
  type Family,
  type Gauge,
  type Histogram,
  LATENCY_BUCKETS_SECONDS,
  Registry,
} from "../metrics/registry.ts";

/** Operations counted under their own name; anything else a client sends is "other". */
export const METRIC_OPS: readonly string[] = [
  "incr",
  "get",
  "status",
  "snapshot",
  "backup",
  "peers",
  "add_peer",
  "remove_peer",
  "promote_peer",
  "transfer_leader",
];

const ROLES = ["leader", "follower", "candidate", "pre-candidate"] as const;

/** Applied may trail commit by at most this many entries on a healthy node. */
export const HEALTH_APPLY_LAG_MAX = 1000;

/** Fsync latencies in seconds: 50 µs to 5 s. */
const FSYNC_BUCKETS_SECONDS: readonly number[] = [
  0.00005,
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  5,
];

/** Snapshot durations in seconds: 1 ms to 60 s. */
const SNAPSHOT_BUCKETS_SECONDS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
  60,
];

/** One follower's replication progress, as the leader sees it. */
export interface FollowerSample {
  /** The follower's id. */
  id: string;
  /** Highest index known to be replicated there. */
  match: number;
}

/** One outbound peer connection. */
export interface PeerSample {
  /** The peer's id. */
  id: string;
  /** A connection is open now. */
  up: boolean;
  /** Messages dropped towards it since start. */
  dropped: number;
}

/** The node's state at one moment, read at scrape time. */
export interface NodeSample {
  /** Raft role. */
  role: string;
  /** Current term. */
  term: number;
  /** The known leader, "" for none. */
  leader: string;
  /** Commit index. */
  commit: number;
  /** Applied index. */
  applied: number;
  /** Last log index. */
  lastIndex: number;
  /** Index of the newest snapshot on disk. */
  snapshotIndex: number;
  /** Increments waiting to commit. */
  proposalsPending: number;
  /** Reads waiting to be confirmed or applied. */
  readsPending: number;
  /** Leader only: every other member's progress. */
  followers: FollowerSample[];
  /** Outbound peer connections. */
  peers: PeerSample[];
  /** Inbound connections open now (clients and peers). */
  connections: number;
  /** Inbound connections accepted since start. */
  connectionsAccepted: number;
}

/** A node's health: healthy, or why not (one line). */
export type Health = { healthy: true; reason: string } | { healthy: false; reason: string };

/**
 * Judges a node healthy when it knows a leader and has applied within
 * {@linkcode HEALTH_APPLY_LAG_MAX} entries of its commit index. The reason is one line.
 */
export function judgeHealth(
  s: { role: string; term: number; leader: string; commit: number; applied: number },
  applyLagMax: number = HEALTH_APPLY_LAG_MAX,
): Health {
  if (s.leader === "") {
    return { healthy: false, reason: `no leader known (${s.role} in term ${s.term})` };
  }
  const lag = s.commit - s.applied;
  if (lag > applyLagMax) {
    return {
      healthy: false,
      reason: `applied index ${s.applied} is ${lag} entries behind commit ${s.commit} ` +
        `(at most ${applyLagMax} allowed)`,
    };
  }
  return {
    healthy: true,
    reason: `leader ${s.leader}, term ${s.term}, applied ${s.applied} of commit ${s.commit}`,
  };
}

/** The metric series of one node; see the module doc. */
export class NodeMetrics {
  /** The registry `/metrics` exposes. */
  readonly registry: Registry = new Registry();
  /** Committed entries whose proposer got a success. */
  readonly proposalsCommitted: Counter;
  /** Proposals answered with a failure after they entered the log. */
  readonly proposalsFailed: Counter;
  /** Leader changes this node has seen. */
  readonly leaderChanges: Counter;
  /** Time to make one batch of entries and hard state durable. */
  readonly fsyncSeconds: Histogram;
  /** Snapshots written by this node. */
  readonly snapshots: Counter;
  /** Snapshots installed from the leader. */
  readonly snapshotsInstalled: Counter;
  /** Size of the newest snapshot this node wrote or installed. */
  readonly snapshotBytes: Gauge;
  /** Time to write one snapshot. */
  readonly snapshotSeconds: Histogram;

  readonly #requests: Family<Counter>;
  readonly #latency: Family<Histogram>;
  /** op -> result -> series, so that counting a request allocates nothing once seen. */
  readonly #requestSeries = new Map<string, Map<string, Counter>>();
  readonly #latencySeries = new Map<string, Histogram>();

  /** Creates the series; `sample` is called at every scrape. */
  constructor(info: { id: string; group: string }, sample: () => NodeSample) {
    const r = this.registry;
    r.gauge("counter_node_info", "Constant 1, labelled with the node's id, group and version.", [
      "id",
      "group",
      "version",
    ]).labels(info.id, info.group, denoConfig.version).set(1);
    const role = r.gauge("counter_raft_role", "1 for the node's current Raft role, else 0.", [
      "role",
    ]);
    const roleSeries = ROLES.map((name) => role.labels(name));
    const term = r.gauge("counter_raft_term", "Current Raft term.").labels();
    const hasLeader = r.gauge("counter_raft_has_leader", "1 when the node knows a leader.")
      .labels();
    this.leaderChanges = r.counter(
      "counter_raft_leader_changes_total",
      "Times this node has seen the leader change (to another node or to none).",
    ).labels();
    const commit = r.gauge("counter_raft_commit_index", "Highest log index known committed.")
      .labels();
    const applied = r.gauge("counter_raft_applied_index", "Highest log index applied.").labels();
    const last = r.gauge("counter_raft_last_index", "Index of the last log entry.").labels();
    const snapshotIndex = r.gauge(
      "counter_raft_snapshot_index",
      "Index of the newest snapshot on disk.",
    ).labels();
    this.proposalsCommitted = r.counter(
      "counter_proposals_committed_total",
      "Proposals (increments and membership changes) committed and applied successfully.",
    ).labels();
    this.proposalsFailed = r.counter(
      "counter_proposals_failed_total",
      "Proposals that entered the log but were answered with a failure.",
    ).labels();
    const proposalsPending = r.gauge(
      "counter_proposals_pending",
      "Proposals waiting to commit.",
    ).labels();
    const readsPending = r.gauge("counter_reads_pending", "Reads waiting to be served.").labels();
    this.#requests = r.counter(
      "counter_client_requests_total",
      "Client and admin requests answered, by operation and result (ok or the error code).",
      ["op", "result"],
    );
    this.#latency = r.histogram(
      "counter_client_request_duration_seconds",
      "Time from a request's arrival to its answer, by operation.",
      LATENCY_BUCKETS_SECONDS,
      ["op"],
    );
    this.fsyncSeconds = r.histogram(
      "counter_storage_fsync_duration_seconds",
      "Time to make one batch of log entries and the hard state durable (write and fsync).",
      FSYNC_BUCKETS_SECONDS,
    ).labels();
    this.snapshots = r.counter("counter_snapshots_total", "Snapshots written by this node.")
      .labels();
    this.snapshotsInstalled = r.counter(
      "counter_snapshots_installed_total",
      "Snapshots received from the leader and installed.",
    ).labels();
    this.snapshotBytes = r.gauge(
      "counter_snapshot_bytes",
      "State machine bytes of the newest snapshot written or installed.",
    ).labels();
    this.snapshotSeconds = r.histogram(
      "counter_snapshot_duration_seconds",
      "Time to write one snapshot durably.",
      SNAPSHOT_BUCKETS_SECONDS,
    ).labels();
    const peersUp = r.gauge("counter_peers_up", "Outbound peer connections open now.").labels();
    const peerUp = r.gauge("counter_peer_up", "1 when the connection to a peer is open.", [
      "peer",
    ]);
    const peerDropped = r.counter(
      "counter_peer_messages_dropped_total",
      "Messages to a peer dropped because it could not take them.",
      ["peer"],
    );
    const lag = r.gauge(
      "counter_follower_lag_entries",
      "Leader only: entries a follower is behind the leader's last index.",
      ["peer"],
    );
    const connections = r.gauge(
      "counter_transport_connections",
      "Inbound connections open now (clients and peers).",
    ).labels();
    const accepted = r.counter(
      "counter_transport_connections_accepted_total",
      "Inbound connections accepted.",
    ).labels();
    const rss = r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
      .labels();
    const heap = r.gauge("counter_heap_used_bytes", "V8 heap in use, in bytes.").labels();
    const startTime = r.gauge(
      "process_start_time_seconds",
      "Start time of the process since the Unix epoch, in seconds.",
    ).labels();
    startTime.set(Math.round((Date.now() - performance.now()) / 1000));

    r.onCollect(() => {
      const s = sample();
      for (let i = 0; i < ROLES.length; i++) roleSeries[i].set(ROLES[i] === s.role ? 1 : 0);
      term.set(s.term);
      hasLeader.set(s.leader === "" ? 0 : 1);
      commit.set(s.commit);
      applied.set(s.applied);
      last.set(s.lastIndex);
      snapshotIndex.set(s.snapshotIndex);
      proposalsPending.set(s.proposalsPending);
      readsPending.set(s.readsPending);
      peerUp.clear();
      peerDropped.clear();
      let up = 0;
      for (const p of s.peers) {
        peerUp.labels(p.id).set(p.up ? 1 : 0);
        peerDropped.labels(p.id).value = p.dropped;
        if (p.up) up++;
      }
      peersUp.set(up);
      lag.clear();
      for (const f of s.followers) lag.labels(f.id).set(Math.max(0, s.lastIndex - f.match));
      connections.set(s.connections);
      accepted.value = s.connectionsAccepted;
      const memory = Deno.memoryUsage();
      rss.set(memory.rss);
      heap.set(memory.heapUsed);
    });
  }

  /** Counts one answered request and its latency; allocates only the first time a pair is seen. */
  requestDone(op: string, ok: boolean, code: string | undefined, seconds: number): void {
    const name = METRIC_OPS.includes(op) ? op : "other";
    const result = ok ? "ok" : (code ?? "error").toLowerCase();
    let byResult = this.#requestSeries.get(name);
    if (byResult === undefined) {
      byResult = new Map();
      this.#requestSeries.set(name, byResult);
    }
    let counter = byResult.get(result);
    if (counter === undefined) {
      counter = this.#requests.labels(name, result);
      byResult.set(result, counter);
    }
    counter.inc();
    let latency = this.#latencySeries.get(name);
    if (latency === undefined) {
      latency = this.#latency.labels(name);
      this.#latencySeries.set(name, latency);
    }
    latency.observe(seconds);
  }

  /** The exposition text of every metric. */
  expose(): string {
    return this.registry.expose();
  }
}
