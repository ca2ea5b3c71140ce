/**
 * End-to-end test of `serve --metrics-addr` and `counter health` on three real `counter serve`
 * processes: every node's `/metrics` is scraped and checked by the real `promtool check metrics`
 * and for the values a running group must show; `/health` and `/status` answer; `counter health`
 * exits 0, then 1 once two nodes are gone (and `/health` turns 503 with a reason); a busy metrics
 * port fails the start before the data dir is written.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { CounterClient } from "../../lib/client/client.ts";
import { promtoolVerdict } from "../metrics/_promtool.ts";
import {
  cli,
  dumpLogTails,
  ServeProcess,
  WAIT_MS,
  waitFor,
  waitForAgreedLeader,
  waitForConvergence,
} from "./_cluster_helpers.ts";

/** The value of the series `name` (with `labels` exactly, e.g. `{op="incr",result="ok"}`). */
function metricValue(text: string, name: string, labels = ""): number | undefined {
  const prefix = `${name}${labels} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

async function get(url: string): Promise<{ status: number; body: string; type: string }> {
  const resp = await fetch(url);
  return {
    status: resp.status,
    body: await resp.text(),
    type: resp.headers.get("content-type") ?? "",
  };
}

Deno.test("metrics, health and status of a real 3-node cluster", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "counter-metrics-" });
  const ports = freePorts(6);
  const ids = ports.slice(0, 3).map((p) => `127.0.0.1:${p}`);
  const metricsAddrs = ports.slice(3).map((p) => `127.0.0.1:${p}`);
  const procs = new Map<string, ServeProcess>();
  const logs = new Map<string, string>();
  try {
    for (const [k, id] of ids.entries()) {
      const logPath = join(root, `node${k + 1}.log`);
      logs.set(id, logPath);
      procs.set(
        id,
        await ServeProcess.spawn({
          id,
          dataDir: join(root, `node${k + 1}`),
          logPath,
          conf: ids,
          args: ["--metrics-addr", metricsAddrs[k]],
        }),
      );
    }
    let leader = await waitForAgreedLeader(ids);
    /**
     * Runs `check` against a cluster with one agreed leader (kept in `leader`). A loaded machine
     * can stall a node past an election timeout and start an election mid-check; then `check` is
     * run again on the settled cluster, with the reason printed, until WAIT_MS has passed.
     */
    const whenSettled = async (check: () => Promise<void>): Promise<void> => {
      const deadline = Date.now() + WAIT_MS;
      while (true) {
        leader = await waitForAgreedLeader(ids);
        try {
          return await check();
        } catch (err) {
          if (Date.now() > deadline) throw err;
          console.log(`checked again after an election (leader was ${leader}): ${err}`);
        }
      }
    };
    const client = new CounterClient({ peers: ids, timeoutMs: WAIT_MS });
    try {
      for (let i = 0; i < 20; i++) await client.incrementAndGet(1n);
    } finally {
      await client.close();
    }
    await waitForConvergence(ids, 20n);

    await t.step("every node's /metrics passes promtool and shows the group's state", async () => {
      await whenSettled(async () => {
        // The 20 increments were answered by whichever node led then: summed over the nodes.
        let incrementsOk = 0;
        let proposalsCommitted = 0;
        for (const [k, id] of ids.entries()) {
          const { status, body, type } = await get(`http://${metricsAddrs[k]}/metrics`);
          assert.equal(status, 200);
          assert.match(type, /^text\/plain; version=0\.0\.4/);
          const verdict = await promtoolVerdict(body, `${id}'s /metrics`);
          if (verdict !== null) assert.equal(verdict.code, 0, `${id}: ${verdict.output}`);
          const isLeader = id === leader;
          assert.equal(metricValue(body, "counter_raft_role", '{role="leader"}'), isLeader ? 1 : 0);
          assert.equal(metricValue(body, "counter_raft_has_leader"), 1);
          assert.ok(metricValue(body, "counter_raft_term")! >= 1);
          assert.ok(metricValue(body, "counter_raft_applied_index")! >= 21);
          assert.ok(metricValue(body, "counter_raft_commit_index")! >= 21);
          assert.ok(metricValue(body, "counter_storage_fsync_duration_seconds_count")! > 0);
          assert.ok(metricValue(body, "process_resident_memory_bytes")! > 0);
          assert.ok(metricValue(body, "counter_peers_up")! >= (isLeader ? 2 : 1));
          assert.match(body, new RegExp(`counter_node_info\\{id="${id}",group="counter"`));
          incrementsOk +=
            metricValue(body, "counter_client_requests_total", '{op="incr",result="ok"}') ?? 0;
          proposalsCommitted += metricValue(body, "counter_proposals_committed_total") ?? 0;
          if (isLeader) {
            assert.equal(
              metricValue(
                body,
                "counter_client_request_duration_seconds_count",
                '{op="incr"}',
              ),
              // Every answered incr is timed, whatever its result.
              body.split("\n").filter((l) =>
                l.startsWith('counter_client_requests_total{op="incr"')
              )
                .reduce((sum, l) => sum + Number(l.split(" ")[1]), 0),
            );
            for (const other of ids.filter((i) => i !== id)) {
              const lag = metricValue(body, "counter_follower_lag_entries", `{peer="${other}"}`);
              assert.ok(lag !== undefined && lag >= 0, `lag of ${other}`);
            }
          }
        }
        assert.equal(incrementsOk, 20);
        assert.ok(proposalsCommitted >= 20, `${proposalsCommitted} proposals committed`);
      });
    });

    await t.step("/health is 200 and /status is the node's status as JSON", async () => {
      await whenSettled(async () => {
        for (const [k, id] of ids.entries()) {
          const health = await get(`http://${metricsAddrs[k]}/health`);
          assert.equal(health.status, 200, health.body);
          assert.match(health.body, new RegExp(`^healthy: leader ${leader}, term \\d+`));
          const status = await get(`http://${metricsAddrs[k]}/status`);
          assert.equal(status.status, 200);
          const json = JSON.parse(status.body);
          assert.equal(json.id, id);
          assert.equal(json.leader, leader);
          assert.equal(json.value, 20);
          assert.deepEqual([...json.voters].sort(), [...ids].sort());
          const missing = await get(`http://${metricsAddrs[k]}/nope`);
          assert.equal(missing.status, 404);
        }
      });
    });

    await t.step("counter health: one healthy line per node, exit 0", async () => {
      await whenSettled(async () => {
        const result = await cli(["health", "--peers", ids.join(",")]);
        assert.equal(result.code, 0, result.stderr + result.stdout);
        const lines = result.stdout.trimEnd().split("\n");
        assert.equal(lines.length, 3);
        for (const [k, id] of ids.entries()) {
          assert.match(
            lines[k],
            new RegExp(`^${id} is healthy: leader ${leader}, .* \\(took \\d+ ms\\)$`),
          );
        }
        const json = await cli(["health", "--peers", ids.join(","), "--json"]);
        assert.equal(json.code, 0);
        const parsed = JSON.parse(json.stdout);
        assert.equal(parsed.endpoints.length, 3);
        assert.ok(parsed.endpoints.every((e: { healthy: boolean }) => e.healthy));
      });
    });

    await t.step(
      "with two nodes gone: /health 503 with a reason, counter health exits 1",
      async () => {
        const survivor = ids.find((id) => id !== leader)!;
        const k = ids.indexOf(survivor);
        for (const id of ids.filter((id) => id !== survivor)) await procs.get(id)!.stop();
        const health = await waitFor(async () => {
          const h = await get(`http://${metricsAddrs[k]}/health`);
          return h.status === 503 ? h : undefined;
        }, "the survivor's /health to turn 503");
        assert.match(
          health.body,
          /^unhealthy: no leader known \((pre-candidate|candidate|follower) in term \d+\)\n$/,
        );
        const metrics = await get(`http://${metricsAddrs[k]}/metrics`);
        assert.equal(metricValue(metrics.body, "counter_raft_has_leader"), 0);
        assert.ok(metricValue(metrics.body, "counter_raft_leader_changes_total")! >= 2);
        const result = await cli(["health", "--peers", ids.join(","), "--timeout-ms", "2000"]);
        assert.equal(result.code, 1, result.stdout + result.stderr);
        const lines = result.stdout.trimEnd().split("\n");
        assert.equal(lines.length, 3);
        assert.match(lines[k], new RegExp(`^${survivor} is unhealthy: no leader known`));
        for (const id of ids.filter((id) => id !== survivor)) {
          assert.match(lines[ids.indexOf(id)], new RegExp(`^${id} is unhealthy: unreachable`));
        }
      },
    );

    await t.step("a busy metrics port fails the start before the data dir is written", async () => {
      const [port] = freePorts(1);
      const busy = Deno.listen({ hostname: "127.0.0.1", port });
      try {
        const id = `127.0.0.1:${freePorts(1)[0]}`;
        const dataDir = join(root, "busy");
        const proc = await ServeProcess.spawn({
          id,
          dataDir,
          logPath: join(root, "busy.log"),
          conf: [id],
          args: ["--metrics-addr", `127.0.0.1:${port}`],
        });
        const code = await proc.waitExit(WAIT_MS);
        assert.equal(code, 1);
        const log = await Deno.readTextFile(join(root, "busy.log"));
        assert.match(log, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} for metrics`));
        await assert.rejects(Deno.stat(dataDir), Deno.errors.NotFound);
      } finally {
        busy.close();
      }
    });
  } catch (err) {
    await dumpLogTails(logs);
    throw err;
  } finally {
    for (const proc of procs.values()) await proc.stop("SIGKILL");
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
