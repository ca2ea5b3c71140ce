/**
 * The metrics of one counter node, and its health verdict.
 *
 * Events (a request answered, an entry applied, an fsync, a snapshot) are recorded by the node as
 * they happen, into counters and histograms created once here. State that the node keeps anyway
 * (role, term, the Raft indexes, followers' progress, connections, memory) is read only when
 * `/metrics` is scraped, from a {@linkcode NodeSample}; the exposition's families are built then.
 *
 * @module
 */

import denoConfig from "../../deno.json" with { type: "json" };
import {
  Counter,
  Gauge,
  Histogram,
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

/**
 * The metric series of one node; see the module doc.
 *
 * A host may serve a thousand groups, each with its own `NodeMetrics`, so between scrapes it
 * keeps only the values recorded as they happen (a few counters and two histograms; a request
 * counter and latency histogram per operation once that operation is seen). The families, their
 * help and label maps, are built anew at each {@linkcode NodeMetrics.expose} (a registry per
 * group cost about 16 KiB of heap).
 */
export class NodeMetrics {
  /** Committed entries whose proposer got a success. */
  readonly proposalsCommitted: Counter = new Counter();
  /** Proposals answered with a failure after they entered the log. */
  readonly proposalsFailed: Counter = new Counter();
  /** Leader changes this node has seen. */
  readonly leaderChanges: Counter = new Counter();
  /** Time to make one batch of entries and hard state durable. */
  readonly fsyncSeconds: Histogram = new Histogram(FSYNC_BUCKETS_SECONDS);
  /** Snapshots written by this node. */
  readonly snapshots: Counter = new Counter();
  /** Snapshots installed from the leader. */
  readonly snapshotsInstalled: Counter = new Counter();
  /** Size of the newest snapshot this node wrote or installed. */
  readonly snapshotBytes: Gauge = new Gauge();
  /** Time to write one snapshot. */
  readonly snapshotSeconds: Histogram = new Histogram(SNAPSHOT_BUCKETS_SECONDS);

  readonly #info: { id: string; group: string };
  readonly #sample: () => NodeSample;
  readonly #startTimeSeconds: number;
  /** op -> result -> count, so that counting a request allocates nothing once seen. */
  #requestSeries: Map<string, Map<string, Counter>> | null = null;
  /** The request counts in the order their (op, result) was first seen, for the exposition. */
  #requestOrder: { op: string; result: string; counter: Counter }[] = [];
  #latencySeries: Map<string, Histogram> | null = null;

  /** Creates the series; `sample` is called at every scrape. */
  constructor(info: { id: string; group: string }, sample: () => NodeSample) {
    this.#info = info;
    this.#sample = sample;
    this.#startTimeSeconds = Math.round((Date.now() - performance.now()) / 1000);
  }

  /** Counts one answered request and its latency; allocates only the first time a pair is seen. */
  requestDone(op: string, ok: boolean, code: string | undefined, seconds: number): void {
    const name = METRIC_OPS.includes(op) ? op : "other";
    const result = ok ? "ok" : (code ?? "error").toLowerCase();
    const requests = this.#requestSeries ??= new Map();
    let byResult = requests.get(name);
    if (byResult === undefined) {
      byResult = new Map();
      requests.set(name, byResult);
    }
    let counter = byResult.get(result);
    if (counter === undefined) {
      counter = new Counter();
      byResult.set(result, counter);
      this.#requestOrder.push({ op: name, result, counter });
    }
    counter.inc();
    const latencies = this.#latencySeries ??= new Map();
    let latency = latencies.get(name);
    if (latency === undefined) {
      latency = new Histogram(LATENCY_BUCKETS_SECONDS);
      latencies.set(name, latency);
    }
    latency.observe(seconds);
  }

  /** The exposition text of every metric. */
  expose(): string {
    return this.#registry().expose();
  }

  /** A registry holding the values now: the node's sample, and what was recorded. */
  #registry(): Registry {
    const r = new Registry();
    const s = this.#sample();
    r.gauge("counter_node_info", "Constant 1, labelled with the node's id, group and version.", [
      "id",
      "group",
      "version",
    ]).labels(this.#info.id, this.#info.group, denoConfig.version).set(1);
    const role = r.gauge("counter_raft_role", "1 for the node's current Raft role, else 0.", [
      "role",
    ]);
    for (const name of ROLES) role.labels(name).set(name === s.role ? 1 : 0);
    r.gauge("counter_raft_term", "Current Raft term.").labels().set(s.term);
    r.gauge("counter_raft_has_leader", "1 when the node knows a leader.").labels()
      .set(s.leader === "" ? 0 : 1);
    copyCounter(
      r.counter(
        "counter_raft_leader_changes_total",
        "Times this node has seen the leader change (to another node or to none).",
      ).labels(),
      this.leaderChanges,
    );
    r.gauge("counter_raft_commit_index", "Highest log index known committed.").labels()
      .set(s.commit);
    r.gauge("counter_raft_applied_index", "Highest log index applied.").labels().set(s.applied);
    r.gauge("counter_raft_last_index", "Index of the last log entry.").labels().set(s.lastIndex);
    r.gauge("counter_raft_snapshot_index", "Index of the newest snapshot on disk.").labels()
      .set(s.snapshotIndex);
    copyCounter(
      r.counter(
        "counter_proposals_committed_total",
        "Proposals (increments and membership changes) committed and applied successfully.",
      ).labels(),
      this.proposalsCommitted,
    );
    copyCounter(
      r.counter(
        "counter_proposals_failed_total",
        "Proposals that entered the log but were answered with a failure.",
      ).labels(),
      this.proposalsFailed,
    );
    r.gauge("counter_proposals_pending", "Proposals waiting to commit.").labels()
      .set(s.proposalsPending);
    r.gauge("counter_reads_pending", "Reads waiting to be served.").labels().set(s.readsPending);
    const requests = r.counter(
      "counter_client_requests_total",
      "Client and admin requests answered, by operation and result (ok or the error code).",
      ["op", "result"],
    );
    for (const { op, result, counter } of this.#requestOrder) {
      copyCounter(requests.labels(op, result), counter);
    }
    const latency = r.histogram(
      "counter_client_request_duration_seconds",
      "Time from a request's arrival to its answer, by operation.",
      LATENCY_BUCKETS_SECONDS,
      ["op"],
    );
    for (const [op, histogram] of this.#latencySeries ?? []) {
      copyHistogram(latency.labels(op), histogram);
    }
    copyHistogram(
      r.histogram(
        "counter_storage_fsync_duration_seconds",
        "Time to make one batch of log entries and the hard state durable (write and fsync).",
        FSYNC_BUCKETS_SECONDS,
      ).labels(),
      this.fsyncSeconds,
    );
    copyCounter(
      r.counter("counter_snapshots_total", "Snapshots written by this node.").labels(),
      this.snapshots,
    );
    copyCounter(
      r.counter(
        "counter_snapshots_installed_total",
        "Snapshots received from the leader and installed.",
      ).labels(),
      this.snapshotsInstalled,
    );
    r.gauge(
      "counter_snapshot_bytes",
      "State machine bytes of the newest snapshot written or installed.",
    ).labels().set(this.snapshotBytes.value);
    copyHistogram(
      r.histogram(
        "counter_snapshot_duration_seconds",
        "Time to write one snapshot durably.",
        SNAPSHOT_BUCKETS_SECONDS,
      ).labels(),
      this.snapshotSeconds,
    );
    const peersUp = r.gauge("counter_peers_up", "Outbound peer connections open now.").labels();
    const peerUp = r.gauge("counter_peer_up", "1 when the connection to a peer is open.", [
      "peer",
    ]);
    const peerDropped = r.counter(
      "counter_peer_messages_dropped_total",
      "Messages to a peer dropped because it could not take them.",
      ["peer"],
    );
    let up = 0;
    for (const p of s.peers) {
      peerUp.labels(p.id).set(p.up ? 1 : 0);
      peerDropped.labels(p.id).value = p.dropped;
      if (p.up) up++;
    }
    peersUp.set(up);
    const lag = r.gauge(
      "counter_follower_lag_entries",
      "Leader only: entries a follower is behind the leader's last index.",
      ["peer"],
    );
    for (const f of s.followers) lag.labels(f.id).set(Math.max(0, s.lastIndex - f.match));
    r.gauge("counter_transport_connections", "Inbound connections open now (clients and peers).")
      .labels().set(s.connections);
    r.counter("counter_transport_connections_accepted_total", "Inbound connections accepted.")
      .labels().value = s.connectionsAccepted;
    const memory = Deno.memoryUsage();
    r.gauge("process_resident_memory_bytes", "Resident memory size in bytes.").labels()
      .set(memory.rss);
    r.gauge("counter_heap_used_bytes", "V8 heap in use, in bytes.").labels().set(memory.heapUsed);
    r.gauge(
      "process_start_time_seconds",
      "Start time of the process since the Unix epoch, in seconds.",
    ).labels().set(this.#startTimeSeconds);
    return r;
  }
}

function copyCounter(to: Counter, from: Counter): void {
  to.value = from.value;
}

function copyHistogram(to: Histogram, from: Histogram): void {
  to.counts.set(from.counts);
  to.sum = from.sum;
  to.count = from.count;
}
