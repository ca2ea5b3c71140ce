/** The health verdict shared by `/health` and `counter health`. */

import assert from "node:assert/strict";
import {
  HEALTH_APPLY_LAG_MAX,
  judgeHealth,
  NodeMetrics,
  type NodeSample,
} from "../../lib/counter/metrics.ts";
import denoConfig from "../../deno.json" with { type: "json" };

const VERSION = denoConfig.version;

const base = { role: "follower", term: 4, leader: "127.0.0.1:1", commit: 100, applied: 100 };

Deno.test("healthy with a known leader and applied at commit", () => {
  const h = judgeHealth(base);
  assert.equal(h.healthy, true);
  assert.equal(h.reason, "leader 127.0.0.1:1, term 4, applied 100 of commit 100");
});

Deno.test("unhealthy without a leader, saying so in one line", () => {
  const h = judgeHealth({ ...base, leader: "", role: "candidate" });
  assert.equal(h.healthy, false);
  assert.equal(h.reason, "no leader known (candidate in term 4)");
});

Deno.test("unhealthy when applied trails commit by more than the bound, healthy at the bound", () => {
  const behind = { ...base, commit: 100 + HEALTH_APPLY_LAG_MAX, applied: 100 };
  assert.equal(judgeHealth(behind).healthy, true);
  const tooFar = { ...behind, commit: behind.commit + 1 };
  const h = judgeHealth(tooFar);
  assert.equal(h.healthy, false);
  assert.match(h.reason, /applied index 100 is 1001 entries behind commit 1101/);
  assert.equal(judgeHealth(tooFar, 2000).healthy, true);
});

function sampleWith(commit: number): NodeSample {
  return {
    role: "leader",
    term: 3,
    leader: "127.0.0.1:1",
    commit,
    applied: 9,
    lastIndex: 12,
    snapshotIndex: 4,
    proposalsPending: 2,
    readsPending: 1,
    followers: [{ id: "b:1", match: 7 }, { id: "c:1", match: 15 }],
    peers: [{ id: "b:1", up: true, dropped: 3 }, { id: "c:1", up: false, dropped: 0 }],
    connections: 5,
    connectionsAccepted: 9,
  };
}

/** The exposition's samples (not HELP/TYPE), as "name{labels}" -> value. */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const cut = line.lastIndexOf(" ");
    out.set(line.slice(0, cut), line.slice(cut + 1));
  }
  return out;
}

Deno.test("NodeMetrics exposes what was recorded and the sample of the moment, scrape after scrape", () => {
  let commit = 10;
  const metrics = new NodeMetrics({ id: "127.0.0.1:1", group: "g" }, () => sampleWith(commit));
  metrics.requestDone("incr", true, undefined, 0.002);
  metrics.requestDone("get", false, "NOT_LEADER", 0.3);
  metrics.requestDone("incr", false, undefined, 20);
  metrics.requestDone("weird", true, undefined, 0.00001);
  metrics.proposalsCommitted.inc(4);
  metrics.leaderChanges.inc(2);
  metrics.fsyncSeconds.observe(0.0003);
  metrics.fsyncSeconds.observe(2);
  metrics.snapshotBytes.set(77);
  const first = metrics.expose();
  // Scraping again counts nothing twice; the sample is read anew.
  commit = 11;
  metrics.requestDone("incr", true, undefined, 0.001);
  const s = samples(metrics.expose());
  const expect: [string, string][] = [
    ['counter_node_info{id="127.0.0.1:1",group="g",version="' + VERSION + '"}', "1"],
    ['counter_raft_role{role="leader"}', "1"],
    ['counter_raft_role{role="follower"}', "0"],
    ["counter_raft_commit_index", "11"],
    ["counter_raft_leader_changes_total", "2"],
    ["counter_proposals_committed_total", "4"],
    ["counter_proposals_failed_total", "0"],
    ['counter_client_requests_total{op="incr",result="ok"}', "2"],
    ['counter_client_requests_total{op="incr",result="error"}', "1"],
    ['counter_client_requests_total{op="get",result="not_leader"}', "1"],
    ['counter_client_requests_total{op="other",result="ok"}', "1"],
    ['counter_client_request_duration_seconds_bucket{op="incr",le="0.001"}', "1"],
    ['counter_client_request_duration_seconds_bucket{op="incr",le="0.0025"}', "2"],
    ['counter_client_request_duration_seconds_bucket{op="incr",le="+Inf"}', "3"],
    ['counter_client_request_duration_seconds_count{op="incr"}', "3"],
    ['counter_storage_fsync_duration_seconds_bucket{le="0.0005"}', "1"],
    ['counter_storage_fsync_duration_seconds_bucket{le="5"}', "2"],
    ["counter_storage_fsync_duration_seconds_sum", "2.0003"],
    ["counter_storage_fsync_duration_seconds_count", "2"],
    ["counter_snapshot_bytes", "77"],
    ["counter_snapshot_duration_seconds_count", "0"],
    ["counter_peers_up", "1"],
    ['counter_peer_up{peer="c:1"}', "0"],
    ['counter_peer_messages_dropped_total{peer="b:1"}', "3"],
    ['counter_follower_lag_entries{peer="b:1"}', "5"],
    ['counter_follower_lag_entries{peer="c:1"}', "0"],
    ["counter_transport_connections_accepted_total", "9"],
  ];
  for (const [key, value] of expect) assert.equal(s.get(key), value, key);
  assert.ok(Number(s.get("process_resident_memory_bytes")) > 0);
  assert.equal(samples(first).get("counter_raft_commit_index"), "10");
  assert.equal(samples(first).get('counter_client_requests_total{op="incr",result="ok"}'), "1");
  // Every family once, in a stable order.
  const types = first.split("\n").filter((l) => l.startsWith("# TYPE "));
  assert.equal(new Set(types).size, types.length);
  assert.equal(types.length, 29);
});
