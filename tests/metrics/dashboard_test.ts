/**
 * The Grafana dashboard in docs/: valid JSON with panels, every query naming only metrics a node
 * exposes, and every query valid PromQL (checked by the real `promtool check rules`).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { NodeMetrics } from "../../lib/counter/metrics.ts";
import { promtoolMissing } from "./_promtool.ts";

const DASHBOARD = new URL("../../docs/grafana-dashboard.json", import.meta.url);

interface Panel {
  title: string;
  type: string;
  targets: { expr: string }[];
}

async function panels(): Promise<Panel[]> {
  const dashboard = JSON.parse(await Deno.readTextFile(DASHBOARD));
  assert.equal(typeof dashboard.title, "string");
  assert.ok(Array.isArray(dashboard.panels) && dashboard.panels.length >= 10);
  return dashboard.panels;
}

/** The metric names a node exposes (histograms with their _bucket, _sum and _count series). */
function exposedNames(): Set<string> {
  const metrics = new NodeMetrics({ id: "127.0.0.1:1", group: "g" }, () => ({
    role: "leader",
    term: 1,
    leader: "127.0.0.1:1",
    commit: 1,
    applied: 1,
    lastIndex: 1,
    snapshotIndex: 0,
    proposalsPending: 0,
    readsPending: 0,
    followers: [],
    peers: [],
    connections: 0,
    connectionsAccepted: 0,
  }));
  const names = new Set<string>();
  for (const line of metrics.expose().split("\n")) {
    const match = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (match === null) continue;
    names.add(match[1]);
    if (match[2] === "histogram") {
      for (const suffix of ["_bucket", "_sum", "_count"]) names.add(match[1] + suffix);
    }
  }
  return names;
}

Deno.test("every dashboard query names only metrics the node exposes", async () => {
  const names = exposedNames();
  const used = new Set<string>();
  for (const panel of await panels()) {
    assert.ok(panel.targets.length > 0, `panel ${panel.title} has no query`);
    for (const { expr } of panel.targets) {
      for (const name of expr.match(/\b(counter|process)_[a-z_]+\b/g) ?? []) {
        assert.ok(names.has(name), `panel "${panel.title}" uses unknown metric ${name}`);
        used.add(name);
      }
    }
  }
  // The key metrics each have a panel.
  for (
    const key of [
      "counter_raft_role",
      "counter_raft_term",
      "counter_raft_leader_changes_total",
      "counter_raft_commit_index",
      "counter_proposals_committed_total",
      "counter_client_requests_total",
      "counter_client_request_duration_seconds_bucket",
      "counter_storage_fsync_duration_seconds_bucket",
      "counter_snapshots_total",
      "counter_peers_up",
      "counter_follower_lag_entries",
      "counter_transport_connections",
      "process_resident_memory_bytes",
    ]
  ) {
    assert.ok(used.has(key), `no panel shows ${key}`);
  }
});

Deno.test("every dashboard query is valid PromQL (promtool check rules)", async () => {
  const missing = await promtoolMissing();
  if (missing !== null) {
    console.log(`SKIPPED promtool check of the dashboard's queries: ${missing}`);
    return;
  }
  const rules = (await panels()).flatMap((panel) => panel.targets).map((target, i) =>
    `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(target.expr)}`
  );
  const dir = await Deno.makeTempDir({ prefix: "counter-dashboard-" });
  try {
    const path = join(dir, "rules.yml");
    await Deno.writeTextFile(
      path,
      `groups:\n  - name: dashboard\n    rules:\n${rules.join("\n")}\n`,
    );
    const out = await new Deno.Command("promtool", {
      args: ["check", "rules", path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.match(text, new RegExp(`SUCCESS: ${rules.length} rules found`));
    // And a broken query fails the same check (the check can fail).
    await Deno.writeTextFile(
      path,
      'groups:\n  - name: d\n    rules:\n      - record: x:y\n        expr: "rate(counter_x[5m]"\n',
    );
    const bad = await new Deno.Command("promtool", {
      args: ["check", "rules", path],
      stdout: "null",
      stderr: "null",
    }).output();
    assert.notEqual(bad.code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
