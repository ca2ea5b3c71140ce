/**
 * End-to-end test of node identity on real `counter serve` processes (issue 9, point 2): a group
 * whose members start seconds apart still forms; a member restarted with a wiped data dir under
 * its old id and `--conf` refuses to start and prints the commands that replace it; following
 * them brings it back; a wiped member started with `--join` under its old id is refused by its
 * peers. A client increments throughout; no acknowledged increment may be lost.
 *
 * The steps share one group and build on each other; the first failure stops the rest.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import {
  cli,
  dumpLogTails,
  IncrementLoad,
  readLogFrom,
  ServeProcess,
  sleep,
  statusOf,
  WAIT_MS,
  waitFor,
  waitForAgreedLeader,
  waitForConvergence,
  waitForLog,
} from "./_cluster_helpers.ts";

/** Acknowledged increments the load must add after each step, to show it goes on. */
const PROGRESS = 200;

Deno.test("a wiped node under its old id is refused, and replacing it as told works", async (t) => {
  const root = await Deno.makeTempDir({ prefix: "counter-identity-" });
  const ids = freePorts(3).map((port) => `127.0.0.1:${port}`);
  const dataDir = (id: string) => join(root, id.replace(":", "_"));
  const logPath = (id: string) => join(root, `${id.replace(":", "_")}.log`);
  const procs = new Map<string, ServeProcess>();
  const load = new IncrementLoad(ids, { workers: 8, timeoutMs: 5000 });
  let ok = true;

  async function spawn(id: string, how: { conf?: string[]; join?: string[] }) {
    const proc = await ServeProcess.spawn({
      id,
      dataDir: dataDir(id),
      logPath: logPath(id),
      ...how,
    });
    procs.set(id, proc);
    return proc;
  }

  async function step(name: string, fn: () => Promise<void>): Promise<void> {
    if (!ok) return;
    ok = await t.step(name, fn);
  }

  /** A follower of the agreed leader. */
  async function someFollower(): Promise<string> {
    const leader = await waitForAgreedLeader(ids);
    return ids.find((id) => id !== leader)!;
  }

  try {
    await step("a new group whose members start 1.5 s apart forms and serves", async () => {
      for (const [k, id] of ids.entries()) {
        if (k > 0) await sleep(1500);
        await spawn(id, { conf: ids });
      }
      await waitForAgreedLeader(ids);
      load.start();
      await load.waitForAcked(PROGRESS, "after the group formed");
    });

    let wiped = "";
    let refusal = "";
    await step("a follower restarted with a wiped data dir refuses to start", async () => {
      wiped = await someFollower();
      await procs.get(wiped)!.stop();
      await Deno.remove(dataDir(wiped), { recursive: true });
      const offset = (await Deno.stat(logPath(wiped))).size;
      const proc = await spawn(wiped, { conf: ids });
      const code = await proc.waitExit(15_000);
      const output = (await readLogFrom(logPath(wiped), offset)).trim().split("\n");
      assert.equal(
        code,
        1,
        `the wiped node must exit 1 at once; it printed:\n${output.join("\n")}`,
      );
      refusal = output.find((line) => line.includes("counter peers remove")) ?? "";
      const others = ids.filter((id) => id !== wiped).sort().join(",");
      for (
        const command of [
          `counter peers remove ${wiped} --peers ${others}`,
          `wipe ${dataDir(wiped)}`,
          `counter serve --data ${dataDir(wiped)} --id ${wiped} --join ${others}`,
          `counter peers add ${wiped} --peers ${others}`,
        ]
      ) assert.ok(refusal.includes(command), `"${command}" in the refusal line: ${refusal}`);
      const acked = load.acked;
      await load.waitForAcked(acked + PROGRESS, "while the wiped node was refused");
    });

    await step("following the printed commands brings the node back", async () => {
      const commands = refusal.slice(refusal.indexOf("counter peers remove")).split(", then ");
      assert.equal(commands.length, 4, refusal);
      const run = async (command: string) => {
        const result = await cli(command.replace(/^counter /, "").split(" "));
        assert.equal(result.code, 0, `${command}: ${result.stderr}`);
      };
      await run(commands[0]);
      assert.match(commands[1], /^wipe /);
      await Deno.remove(commands[1].slice("wipe ".length), { recursive: true });
      const serve = commands[2].split(" ");
      assert.deepEqual(serve.slice(0, 6), [
        "counter",
        "serve",
        "--data",
        dataDir(wiped),
        "--id",
        wiped,
      ]);
      assert.equal(serve[6], "--join");
      await spawn(wiped, { join: serve[7].split(",") });
      await waitFor(async () => (await statusOf(wiped)) ?? undefined, `${wiped} answers`);
      await run(commands[3]);
      const acked = load.acked;
      await load.waitForAcked(acked + PROGRESS, "after the replacement");
      await load.stop();
      const { value } = await waitForConvergence(ids, undefined, WAIT_MS);
      assert.ok(
        BigInt(load.acked) <= value && value <= BigInt(load.acked + load.unknown),
        `value ${value} against ${load.summary()}`,
      );
      load.start();
    });

    await step("a wiped member started with --join under its old id is refused", async () => {
      const victim = await someFollower();
      const others = ids.filter((id) => id !== victim);
      const offsets = new Map<string, number>();
      for (const id of others) offsets.set(id, (await Deno.stat(logPath(id))).size);
      await procs.get(victim)!.stop();
      await Deno.remove(dataDir(victim), { recursive: true });
      await spawn(victim, { join: others });
      // The leader keeps sending to its member; the member's answers come with a new
      // incarnation, which the leader refuses.
      const leader = await waitForAgreedLeader(others);
      await waitForLog(
        logPath(leader),
        new RegExp(`${victim} came back with a different data dir .*replace it: counter peers`),
        offsets.get(leader),
      );
      const acked = load.acked;
      await load.waitForAcked(acked + PROGRESS, "while the wiped member knocks");
      await load.stop();
      const { value } = await waitForConvergence(others, undefined, WAIT_MS);
      assert.ok(
        BigInt(load.acked) <= value && value <= BigInt(load.acked + load.unknown),
        `value ${value} against ${load.summary()}`,
      );
      // Its term and vote were lost: it must have been heard by nobody, so it holds no vote.
      const leaderLog = await readLogFrom(logPath(leader), offsets.get(leader));
      const recorded = leaderLog.split("\n").filter((line) =>
        line.includes("recorded a peer's data dir incarnation") && line.includes(victim)
      );
      assert.deepEqual(recorded, [], "the wiped member's new incarnation was never recorded");
    });
  } finally {
    await load.close();
    if (!ok) await dumpLogTails(new Map(ids.map((id) => [id, logPath(id)])));
    await Promise.allSettled([...procs.values()].map((p) => p.stop("SIGKILL")));
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
