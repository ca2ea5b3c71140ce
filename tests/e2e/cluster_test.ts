/**
 * End-to-end tests: real `counter serve` processes started by `LocalCluster`, driven through the
 * CLI (`deno run -A main.ts ...`) and through `CounterClient`, with crashes (SIGKILL), pauses
 * (SIGSTOP/SIGCONT) and garbage on the wire.
 *
 * Durations are measured and printed, never asserted beyond generous bounds.
 */

import assert from "node:assert/strict";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import { encodeResponse } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import {
  cli,
  type CliResult,
  dumpClusterLogs,
  ELECTION_TIMEOUT_MS,
  waitFor,
  waitForConvergence,
} from "./_cluster_helpers.ts";

/** Bounds on waiting; generous so a slow machine does not fail the test. */
const LEADER_WAIT_MS = 15_000;
const CATCH_UP_WAIT_MS = 15_000;

/** Runs the CLI and asserts exit 0 and one line of output; returns that line. */
async function cliOk(args: string[]): Promise<string> {
  const r = await cli(args);
  assert.equal(r.code, 0, `counter ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  assert.equal(r.stderr, "");
  assert.match(r.stdout, /^[^\n]+\n$/);
  return r.stdout.trimEnd();
}

/** Deterministic bytes (xorshift32), so a failure replays exactly. */
function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  let x = seed >>> 0 || 1;
  return Uint8Array.from({ length }, () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x & 0xff;
  });
}

/** Connects to `address`, writes `bytes`, and resolves once the node has closed the connection. */
async function sendAndExpectClose(address: string, bytes: Uint8Array): Promise<void> {
  const [hostname, port] = address.split(":");
  const conn = await Deno.connect({ hostname, port: Number(port) });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, 5000);
  try {
    try {
      let written = 0;
      while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    } catch {
      // The node may close while this side is still writing: that is the expected outcome.
    }
    const buffer = new Uint8Array(4096);
    while (true) {
      let n: number | null;
      try {
        n = await conn.read(buffer);
      } catch (err) {
        if (timedOut) break;
        // A reset is a close, too.
        if (err instanceof Deno.errors.ConnectionReset) return;
        throw err;
      }
      if (n === null) break;
    }
    assert.ok(!timedOut, `${address} did not close a connection that sent bad bytes`);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Already closed by the timer.
    }
  }
}

Deno.test("a three-node cluster through the CLI and the client, with crashes and pauses", async (t) => {
  const cluster = await LocalCluster.start({
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  const client = new CounterClient({ peers: cluster.ids, timeoutMs: 10_000 });
  let failed = false;
  let ok = true;
  try {
    const startMs = performance.now();
    let leader = await cluster.waitForLeader(LEADER_WAIT_MS);
    console.log(`first leader ${leader} after ${(performance.now() - startMs).toFixed(0)} ms`);
    let expected = 0n;
    // Each step builds on the state the previous ones left: stop at the first failure.
    ok = await t.step("incr and get through each node's address alone", async () => {
      for (const [k, id] of cluster.ids.entries()) {
        expected += BigInt(k + 1);
        assert.equal(await cliOk(["incr", String(k + 1), "--peers", id]), expected.toString());
        assert.equal(await cliOk(["get", "--peers", id]), expected.toString());
      }
      // The default peer list comes from $COUNTER_PEERS.
      const r = await cli(["get"], { COUNTER_PEERS: cluster.ids.join(",") });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${expected}\n`);
    });

    if (!ok) return;
    ok = await t.step("incr -5 and incr -- -5 both subtract", async () => {
      const peers = ["--peers", cluster.ids.join(",")];
      expected -= 5n;
      assert.equal(await cliOk(["incr", "-5", ...peers]), expected.toString());
      expected -= 5n;
      assert.equal(await cliOk(["incr", ...peers, "--", "-5"]), expected.toString());
      assert.equal(await cliOk(["get", ...peers]), expected.toString());
    });

    if (!ok) return;
    ok = await t.step("--json prints one object with value and leader", async () => {
      const peers = ["--peers", cluster.ids[0]];
      leader = await cluster.waitForLeader(LEADER_WAIT_MS);
      expected += 1n;
      const line = await cliOk(["incr", "1", "--json", ...peers]);
      assert.equal(line, `{"value":${expected},"leader":"${leader}"}`);
      const parsed = JSON.parse(line);
      assert.deepEqual(Object.keys(parsed), ["value", "leader"]);
      assert.equal(typeof parsed.value, "number");
      // Beyond 2^53 - 1 the value is a string, so that no JSON parser rounds it.
      const big = 2n ** 60n;
      expected += big;
      const bigLine = await cliOk(["incr", big.toString(), "--json", ...peers]);
      assert.deepEqual(JSON.parse(bigLine), { value: expected.toString(), leader });
      const getLine = await cliOk(["get", "--json", ...peers]);
      assert.deepEqual(JSON.parse(getLine), { value: expected.toString(), leader });
      expected -= big;
      assert.equal(await cliOk(["incr", (-big).toString(), ...peers]), expected.toString());
    });

    if (!ok) return;
    ok = await t.step(
      "an overflow exits 1 and changes nothing; a usage error exits 2",
      async () => {
        const peers = ["--peers", cluster.ids.join(",")];
        if (expected <= 0n) {
          // Only a positive value can overflow by adding INT64_MAX.
          const delta = 1n - expected;
          expected = 1n;
          assert.equal(await cliOk(["incr", delta.toString(), ...peers]), "1");
        }
        const max = ((1n << 63n) - 1n).toString();
        const r = await cli(["incr", max, ...peers]);
        assert.equal(r.code, 1, r.stderr);
        assert.equal(r.stdout, "");
        assert.match(r.stderr, /^counter incr: .*overflow[^\n]*\n$/);
        assert.equal(await cliOk(["get", ...peers]), expected.toString());
        const usage = await cli(["incr", "1.5", ...peers]);
        assert.equal(usage.code, 2);
        assert.match(usage.stderr, /^counter incr: [^\n]*\n$/);
      },
    );

    if (!ok) return;
    ok = await t.step("bad bytes close that connection only; the node keeps serving", async () => {
      leader = await cluster.waitForLeader(LEADER_WAIT_MS);
      for (const target of cluster.ids) {
        // Pseudo-random bytes: a length prefix past the 4 MiB limit (its first byte is forced
        // high), then noise.
        const noise = pseudoRandomBytes(1000, 0xc0ffee);
        noise[0] = 0xf0;
        await sendAndExpectClose(target, noise);
        // A frame of the right length whose body is noise.
        await sendAndExpectClose(target, encodeFrame(pseudoRandomBytes(64, 42)));
        // The largest possible length prefix, then a few bytes: refused before any allocation.
        await sendAndExpectClose(target, Uint8Array.of(0xff, 0xff, 0xff, 0xff, 1, 2, 3));
        // A zero-length frame.
        await sendAndExpectClose(target, Uint8Array.of(0, 0, 0, 0));
        // A well-formed response body: nodes accept none.
        await sendAndExpectClose(target, encodeFrame(encodeResponse("counter", 1, { ok: true })));
      }
      expected += 1n;
      assert.deepEqual(await client.incrementAndGet(1n), { value: expected, leader, node: leader });
      for (const id of cluster.ids) {
        assert.equal(await cliOk(["get", "--peers", id]), expected.toString());
      }
    });

    if (!ok) return;
    ok = await t.step("a paused follower catches up after SIGCONT", async () => {
      leader = await cluster.waitForLeader(LEADER_WAIT_MS);
      const follower = cluster.ids.find((id) => id !== leader)!;
      await cluster.signal(follower, "SIGSTOP");
      let resumed = false;
      try {
        // Keep incrementing for several election timeouts, so the follower misses heartbeats
        // and a long stretch of the log, not just one batch.
        const pausedAtMs = performance.now();
        let batches = 0;
        while (performance.now() - pausedAtMs < 4 * ELECTION_TIMEOUT_MS || batches < 5) {
          const results = await Promise.all(
            Array.from({ length: 20 }, () => client.incrementAndGet(1n)),
          );
          expected += 20n;
          batches++;
          assert.equal(results.reduce((m, r) => (r.value > m ? r.value : m), 0n), expected);
        }
        const stale = await cluster.statuses(300);
        assert.equal(stale.get(follower), null); // paused: it cannot even answer
        await cluster.signal(follower, "SIGCONT");
        resumed = true;
      } finally {
        if (!resumed) await cluster.signal(follower, "SIGCONT");
      }
      const resumedAtMs = performance.now();
      const { applied } = await waitForConvergence(cluster.ids, expected, CATCH_UP_WAIT_MS);
      console.log(
        `paused follower ${follower} caught up to applied index ${applied} in ` +
          `${(performance.now() - resumedAtMs).toFixed(0)} ms`,
      );
    });

    if (!ok) return;
    ok = await t.step(
      "SIGKILL the leader under load: acknowledged increments survive",
      async () => {
        leader = await cluster.waitForLeader(LEADER_WAIT_MS);
        const base = (await client.get()).value;
        assert.equal(base, expected);
        const WORKERS = 64;
        // Short deadlines, so that increments caught by the crash end with outcome unknown
        // instead of being retried until they succeed: the bound below then has teeth.
        const load = new CounterClient({
          peers: cluster.ids,
          timeoutMs: 2 * ELECTION_TIMEOUT_MS,
          attemptTimeoutMs: ELECTION_TIMEOUT_MS / 2,
        });
        let running = true;
        let acked = 0;
        let unknown = 0;
        let failedCount = 0;
        const failures: string[] = [];
        const worker = async () => {
          while (running) {
            try {
              await load.incrementAndGet(1n);
              acked++;
            } catch (err) {
              if (err instanceof CounterError && err.outcome === "unknown") unknown++;
              else failedCount++;
              if (failures.length < 2) failures.push(String(err).slice(0, 160));
            }
          }
        };
        const workers = Array.from({ length: WORKERS }, worker);
        try {
          await waitFor(() => (acked >= 300 ? true : undefined), "load to start", 15_000);
          const killed = leader;
          await cluster.kill(killed);
          const killedAtMs = performance.now();
          const ackedAtKill = acked;
          const newLeader = await cluster.waitForLeader(LEADER_WAIT_MS, [killed]);
          const electionMs = performance.now() - killedAtMs;
          assert.notEqual(newLeader, killed);
          // Keep the load on until the new leader has acknowledged a good number more.
          await waitFor(
            () => (acked >= ackedAtKill + 300 ? true : undefined),
            "increments after the failover",
            15_000,
          );
          running = false;
          await Promise.all(workers);
          const valueAtStop = (await client.get()).value;

          // The crashed node restarts from its data dir and catches up. Only then is the value
          // judged: an increment whose outcome is unknown may still land after the load stops.
          await cluster.startNode(killed);
          const restartedAtMs = performance.now();
          const caughtUp = await waitForConvergence(cluster.ids, undefined, CATCH_UP_WAIT_MS);
          const final = (await client.get()).value;
          const grew = final - base;
          console.log(
            `killed leader ${killed}; new leader ${newLeader} after ${electionMs.toFixed(0)} ms; ` +
              `acked ${acked}, unknown ${unknown}, failed ${failedCount}, value grew by ${grew}` +
              (final === valueAtStop ? "" : ` (${final - valueAtStop} after the load stopped)`) +
              `; restarted ${killed} caught up to applied index ${caughtUp.applied} in ` +
              `${(performance.now() - restartedAtMs).toFixed(0)} ms` +
              (failures.length > 0 ? `; first failures: ${failures.join(" | ")}` : ""),
          );
          // Every acknowledged increment is in; of the others, at most the unknown ones.
          assert.ok(grew >= BigInt(acked), `lost acknowledged increments: ${grew} < ${acked}`);
          assert.ok(
            grew <= BigInt(acked + unknown),
            `applied more than was sent: ${grew} > ${acked} + ${unknown}`,
          );
          assert.equal(caughtUp.value, final);
          expected = final;
          assert.equal(await cliOk(["get", "--peers", killed]), expected.toString());
        } finally {
          running = false;
          await Promise.allSettled(workers);
          await load.close();
        }
      },
    );

    if (!ok) return;
    ok = await t.step(
      "with every node paused, incr exits 3 (outcome unknown) and get exits 1",
      async () => {
        const before = (await client.get()).value;
        assert.equal(before, expected, "the value moved while nothing was sent");
        const peers = ["--peers", cluster.ids.join(",")];
        for (const id of cluster.ids) await cluster.signal(id, "SIGSTOP");
        let incr: CliResult;
        let get: CliResult;
        try {
          // The kernel still accepts connections for a stopped process, so the request is sent
          // and never answered.
          [incr, get] = await Promise.all([
            cli(["incr", "1", "--timeout-ms", "1500", ...peers]),
            cli(["get", "--timeout-ms", "1500", ...peers]),
          ]);
        } finally {
          for (const id of cluster.ids) await cluster.signal(id, "SIGCONT");
        }
        assert.equal(incr.code, 3, incr.stderr);
        assert.equal(incr.stdout, "");
        assert.match(incr.stderr, /^counter incr: .*outcome unknown[^\n]*\n$/);
        assert.equal(get.code, 1, get.stderr);
        assert.match(get.stderr, /^counter get: [^\n]*\n$/);
        // The paused nodes read the increment once resumed: it may or may not be applied.
        await cluster.waitForLeader(LEADER_WAIT_MS);
        const after = (await client.get()).value;
        assert.ok(after === before || after === before + 1n, `value ${after}, before ${before}`);
        expected = after;
        await waitForConvergence(cluster.ids, expected, CATCH_UP_WAIT_MS);
      },
    );
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await client.close();
    if (failed || !ok) await dumpClusterLogs(cluster);
    await cluster.stop();
  }
});

/** Three consecutive ports on 127.0.0.1 that were free a moment ago. */
function consecutiveFreePorts(count: number): number {
  for (let attempt = 0; attempt < 50; attempt++) {
    const [base] = freePorts(1);
    if (base + count - 1 > 65535) continue;
    const listeners: Deno.Listener[] = [];
    try {
      for (let k = 0; k < count; k++) {
        listeners.push(Deno.listen({ hostname: "127.0.0.1", port: base + k }));
      }
      return base;
    } catch {
      // Taken: try another base.
    } finally {
      for (const l of listeners) l.close();
    }
  }
  throw new Error(`found no ${count} consecutive free ports`);
}

Deno.test("counter demo runs the seed workload and exits 0", async () => {
  const basePort = consecutiveFreePorts(3);
  const r = await cli(["demo", "--base-port", String(basePort)]);
  assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /1000 ops, cost: \d+ ms/);
  assert.ok(r.stdout.includes(`127.0.0.1:${basePort}, 127.0.0.1:${basePort + 1}`), r.stdout);
  assert.match(r.stdout, /caught up/);
  // A successful demo removes its temporary data.
  const dataLine = r.stdout.split("\n").find((l) => l.startsWith("data in "));
  assert.ok(dataLine !== undefined, r.stdout);
  const dataRoot = dataLine.slice("data in ".length).split(";")[0];
  await assert.rejects(Deno.stat(dataRoot), Deno.errors.NotFound);
});
