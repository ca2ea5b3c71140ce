/**
 * End-to-end test of membership changes on real `counter serve` processes, with a client
 * incrementing throughout: grow 3 -> 5 with `serve --join` nodes and `add_peer`, shrink 5 -> 3
 * (removing the leader too), replace a dead node by a new one under a new address, and move the
 * leadership to a named node and back. No acknowledged increment may be lost:
 * acked <= growth of the value <= acked + unknown.
 *
 * The steps share one cluster and build on each other; the first failure stops the rest.
 * Durations are printed, never asserted.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterClient, CounterError } from "../../lib/client/client.ts";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import type { WireMap } from "../../lib/transport/codec.ts";
import {
  answers,
  checkSameAppliedSameValue,
  describeStatuses,
  dumpLogTails,
  ELECTION_TIMEOUT_MS,
  IncrementLoad,
  ServeProcess,
  sleep,
  statusesOf,
  WAIT_MS,
  waitFor,
  waitForAgreedLeader,
  waitForConvergence,
  waitForLog,
} from "./_cluster_helpers.ts";

/** Acknowledged increments the load must add after each change, to show it goes on. */
const PROGRESS = 300;

/** Refusals that only mean "not now": the leader is busy with an earlier change or is new. */
const TRANSIENT_REFUSALS = [
  "another membership change is in progress",
  "has not committed an entry of its term",
  "leadership transfer in progress",
];

function sorted(ids: Iterable<string>): string[] {
  return [...ids].sort();
}

Deno.test("membership changes under a continuous increment load", async (t) => {
  const startedMs = performance.now();
  const cluster = await LocalCluster.start({
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  const joinRoot = await Deno.makeTempDir({ prefix: "counter-membership-" });
  // Three more addresses: two nodes to grow the group, one to replace a dead node.
  const [growA, growB, replacement] = freePorts(3).map((port) => `127.0.0.1:${port}`);
  const everyId = [...cluster.ids, growA, growB, replacement];
  const joiners = new Map<string, ServeProcess>();
  const load = new IncrementLoad(everyId, { workers: 16, timeoutMs: 5000 });
  const admin = new CounterClient({ peers: everyId, timeoutMs: WAIT_MS });
  /** The voters, as the test expects them. */
  let members = [...cluster.ids];
  let ok = true;
  let failed = false;

  const logPath = (id: string) =>
    cluster.ids.includes(id) ? cluster.logPath(id) : join(joinRoot, `${id.replace(":", "_")}.log`);

  /** Stops node `id`, wherever it was started; returns its exit code when known. */
  async function stopNode(id: string, signal: Deno.Signal): Promise<number | null> {
    if (cluster.ids.includes(id)) {
      await cluster.signal(id, signal);
      return null;
    }
    return await joiners.get(id)!.stop(signal);
  }

  /** Starts an empty node with `--join` and waits until it answers. */
  async function startJoiner(id: string): Promise<void> {
    const proc = await ServeProcess.spawn({
      id,
      dataDir: join(joinRoot, id.replace(":", "_")),
      logPath: logPath(id),
      join: members,
    });
    joiners.set(id, proc);
    await waitFor(async () => {
      if (!proc.running) throw new Error(`${id} exited with ${await proc.wait()}`);
      return (await answers(id)) ? true : undefined;
    }, `${id} to listen`);
    await waitForLog(logPath(id), /empty node waiting to be added to the group/);
  }

  /** Sends a membership change to the leader, again while it is refused for a passing reason. */
  async function confChange(op: string, node: string, args: WireMap = {}): Promise<WireMap> {
    const deadline = Date.now() + WAIT_MS;
    while (true) {
      try {
        return (await admin.admin(op, { node, ...args })).data;
      } catch (err) {
        const passing = err instanceof CounterError && err.outcome === "failed" &&
          err.code === "REFUSED" && TRANSIENT_REFUSALS.some((r) => err.message.includes(r));
        if (!passing || Date.now() > deadline) throw err;
        await sleep(100);
      }
    }
  }

  /** Waits until every member reports `members` as voters and no learners; returns statuses. */
  async function waitForConf(what: string): Promise<void> {
    let last = "";
    await waitFor(
      async () => {
        const statuses = await statusesOf(members);
        last = describeStatuses(statuses);
        checkSameAppliedSameValue(statuses);
        for (const s of statuses.values()) {
          if (s === null) return undefined;
          if (s.voters.join(",") !== sorted(members).join(",") || s.learners.length > 0) {
            return undefined;
          }
        }
        return true;
      },
      `every member to see the configuration ${sorted(members).join(",")} (${what})`,
      WAIT_MS,
      () => last,
    );
  }

  /** The load acknowledges `PROGRESS` more increments. */
  function loadProgresses(what: string): Promise<true> {
    return load.waitForAcked(load.acked + PROGRESS, what);
  }

  try {
    let leader = await cluster.waitForLeader(WAIT_MS);
    const initial = (await admin.get()).value;
    load.start();
    await loadProgresses("before any change");

    ok = await t.step("grow from 3 to 5 voters with --join nodes", async () => {
      for (const id of [growA, growB]) {
        const stepMs = performance.now();
        await startJoiner(id);
        const conf = await confChange("add_peer", id);
        // add_peer answers once the node has caught up and been promoted.
        assert.ok((conf.voters as string[]).includes(id), JSON.stringify(conf));
        assert.deepEqual(conf.learners, []);
        members = [...members, id];
        assert.deepEqual(sorted(conf.voters as string[]), sorted(members));
        console.log(`added ${id} in ${(performance.now() - stepMs).toFixed(0)} ms`);
        await loadProgresses(`after adding ${id}`);
      }
      const peers = (await admin.admin("peers")).data;
      const list = peers.members as { id: string; role: string }[];
      assert.deepEqual(sorted(list.map((m) => m.id)), sorted(members));
      assert.deepEqual(
        list.map((m) => m.role).sort(),
        ["follower", "follower", "follower", "follower", "leader"],
      );
      leader = peers.leader as string;
      await waitForConf("after growing");
      // The new voters hold the data: their own state machine has the load's increments.
      await waitFor(async () => {
        const s = await statusesOf([growA, growB]);
        return [...s.values()].every((x) => x !== null && x.value - initial > 0n)
          ? true
          : undefined;
      }, "the new voters to apply increments");
    });

    if (!ok) return;
    ok = await t.step("shrink from 5 to 3 voters, removing the leader too", async () => {
      leader = await waitForAgreedLeader(members);
      // First a follower (one of the joined nodes if it does not lead), then the leader.
      const follower = [growA, growB, ...members].find((id) =>
        id !== leader && members.includes(id)
      )!;
      for (const [what, id] of [["follower", follower], ["leader", leader]] as const) {
        const stepMs = performance.now();
        const conf = await confChange("remove_peer", id);
        members = members.filter((m) => m !== id);
        assert.deepEqual(sorted(conf.voters as string[]), sorted(members), JSON.stringify(conf));
        const newLeader = await waitForAgreedLeader(members, [id]);
        console.log(
          `removed the ${what} ${id} in ${(performance.now() - stepMs).toFixed(0)} ms; ` +
            `leader now ${newLeader}`,
        );
        if (what === "leader") assert.notEqual(newLeader, id);
        leader = newLeader;
        await waitForConf(`after removing ${id}`);
        const code = await stopNode(id, "SIGTERM");
        if (code !== null) assert.equal(code, 0, `${id} exited ${code} on SIGTERM`);
        await loadProgresses(`after removing the ${what} ${id}`);
      }
      assert.equal(members.length, 3);
    });

    if (!ok) return;
    ok = await t.step("replace a dead node by a new one under a new address", async () => {
      leader = await waitForAgreedLeader(members);
      const dead = members.find((id) => id !== leader)!;
      await stopNode(dead, "SIGKILL");
      await loadProgresses(`with ${dead} dead`);

      const stepMs = performance.now();
      await startJoiner(replacement);
      const added = await confChange("add_peer", replacement);
      assert.deepEqual(sorted(added.voters as string[]), sorted([...members, replacement]));
      const removed = await confChange("remove_peer", dead);
      members = [...members.filter((m) => m !== dead), replacement];
      assert.deepEqual(sorted(removed.voters as string[]), sorted(members));
      assert.deepEqual(removed.learners, []);
      console.log(
        `replaced dead ${dead} by ${replacement} in ${(performance.now() - stepMs).toFixed(0)} ms`,
      );
      await waitForConf(`after replacing ${dead}`);
      await loadProgresses(`after replacing ${dead}`);
    });

    if (!ok) return;
    ok = await t.step("transfer the leadership to a named node and back", async () => {
      const original = await waitForAgreedLeader(members);
      // The replacement, unless it leads already: then another member.
      const target = replacement !== original
        ? replacement
        : members.find((id) => id !== original)!;
      for (const to of [target, original]) {
        const stepMs = performance.now();
        const { data } = await admin.admin("transfer_leader", { node: to });
        assert.equal(data.leader, to);
        assert.equal(await waitForAgreedLeader(members), to);
        console.log(`leadership moved to ${to} in ${(performance.now() - stepMs).toFixed(0)} ms`);
        await loadProgresses(`after the transfer to ${to}`);
      }
    });

    if (!ok) return;
    ok = await t.step("no acknowledged increment lost; every member agrees", async () => {
      await load.stop();
      // Increments with outcome unknown may still land: judge once every member agrees.
      const { value, applied } = await waitForConvergence(members);
      const read = (await admin.get()).value;
      assert.equal(read, value);
      const grew = value - initial;
      console.log(`load ${load.summary()}; value grew by ${grew}; applied index ${applied}`);
      assert.ok(
        grew >= BigInt(load.acked),
        `lost acknowledged increments: ${grew} < ${load.acked}`,
      );
      assert.ok(
        grew <= BigInt(load.acked + load.unknown),
        `applied more than was sent: ${grew} > ${load.acked} + ${load.unknown}`,
      );
      await waitForConf("at the end");
      const leaders = [...(await statusesOf(members)).values()].filter((s) => s?.role === "leader");
      assert.equal(leaders.length, 1);
    });
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await load.close();
    await admin.close();
    if (failed || !ok) {
      console.error(`load: ${load.summary()}`);
      await dumpLogTails(new Map(everyId.map((id) => [id, logPath(id)])));
    }
    for (const proc of joiners.values()) await proc.stop("SIGKILL");
    await cluster.stop();
    await Deno.remove(joinRoot, { recursive: true });
  }
  console.log(`membership e2e: ${Math.round(performance.now() - startedMs)} ms`);
});
