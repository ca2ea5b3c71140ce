/**
 * The admin commands against real `counter serve` processes: a 3-node `LocalCluster`, plus a
 * fourth node started with `--join`, driven through `deno run -A main.ts ...`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterClient } from "../../lib/client/client.ts";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import { ROOT, runMain, type RunResult } from "./_run.ts";

/** Bounds on waiting; generous so that a slow machine does not fail the test. */
const WAIT_MS = 15_000;

/** Runs the CLI and asserts exit 0 and nothing on stderr; returns stdout. */
async function cliOk(args: string[]): Promise<string> {
  const result = await runMain(args);
  assert.equal(result.code, 0, `counter ${args.join(" ")} exited ${result.code}: ${result.stderr}`);
  assert.equal(result.stderr, "");
  return result.stdout;
}

/** Runs a `--json` command and parses its one line. */
async function cliJson(args: string[]): Promise<Record<string, unknown>> {
  const stdout = await cliOk([...args, "--json"]);
  assert.match(stdout, /^[^\n]+\n$/, "one line");
  return JSON.parse(stdout);
}

/** Polls `probe` until it returns true; throws after `WAIT_MS`. */
async function waitUntil(probe: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** True once node `id` answers a status request. */
async function answers(id: string): Promise<boolean> {
  const client = new CounterClient({ peers: [id], timeoutMs: 500, attemptTimeoutMs: 500 });
  try {
    return (await client.status(id)).ok;
  } catch {
    return false;
  } finally {
    await client.close();
  }
}

interface Member {
  id: string;
  role: string;
}

Deno.test("admin commands: status, leader, transfer, add and remove a node, snapshot, reset", async () => {
  const startedMs = performance.now();
  const cluster = await LocalCluster.start({ serveArgs: ["--election-timeout-ms", "500"] });
  const joinRoot = await Deno.makeTempDir({ prefix: "counter-admin-e2e-" });
  let joiner: Deno.ChildProcess | null = null;
  let joinerLog: Promise<string> = Promise.resolve("");
  try {
    const peers = ["--peers", cluster.ids.join(",")];
    const firstLeader = await cluster.waitForLeader(WAIT_MS);

    // status: every node answers directly, exactly one leads.
    const status = await cliJson(["status", ...peers]);
    const nodes = status.nodes as { node: string; ok: boolean; role: string }[];
    assert.deepEqual(nodes.map((n) => n.node), cluster.ids);
    assert.ok(nodes.every((n) => n.ok), JSON.stringify(nodes));
    assert.equal(nodes.filter((n) => n.role === "leader").length, 1);
    const text = await cliOk(["status", ...peers]);
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, 5, "a summary, a header and three rows");
    assert.match(
      lines[0],
      new RegExp(`^leader ${firstLeader}, term \\d+; 3/3 voters up .*; healthy$`),
    );
    assert.doesNotMatch(text, /\(stale\)/);
    for (const line of lines) assert.ok(line.length <= 80, line);

    // leader and peers list agree on the leader.
    assert.equal(await cliOk(["leader", ...peers]), `${firstLeader}\n`);
    const list = await cliJson(["peers", "list", ...peers]);
    assert.equal(list.leader, firstLeader);
    const members = list.members as Member[];
    assert.deepEqual(members.map((m) => m.id).sort(), [...cluster.ids].sort());
    assert.deepEqual(
      members.map((m) => m.role).sort(),
      ["follower", "follower", "leader"],
    );

    // leader transfer to a follower: the leadership moves.
    const target = cluster.ids.find((id) => id !== firstLeader)!;
    assert.equal(await cliOk(["leader", "transfer", target, ...peers]), `${target}\n`);
    assert.equal(await cliOk(["leader", ...peers]), `${target}\n`);

    // A fourth node joins: started with --join, then added; it ends up a voter.
    const [port] = freePorts(1);
    const newId = `127.0.0.1:${port}`;
    joiner = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "main.ts",
        "serve",
        "--data",
        join(joinRoot, "node4"),
        "--id",
        newId,
        "--join",
        cluster.ids.join(","),
        "--election-timeout-ms",
        "500",
      ],
      cwd: ROOT,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Read the node's log as it comes, so that it never blocks on a full pipe.
    joinerLog = new Response(joiner.stderr).text();
    await waitUntil(() => answers(newId), `${newId} to listen`);

    const added = await cliJson(["peers", "add", newId, ...peers, "--timeout-ms", `${WAIT_MS}`]);
    assert.ok((added.voters as string[]).includes(newId), JSON.stringify(added));
    assert.deepEqual(added.learners, []);
    const withNew = await cliJson(["peers", "list", ...peers]);
    const newMember = (withNew.members as Member[]).find((m) => m.id === newId);
    assert.equal(newMember?.role, "follower");

    // A repeat is not an error: it says the change is already in place.
    assert.equal((await cliJson(["peers", "add", newId, ...peers])).already, "a voter");

    const removed = await cliJson(["peers", "remove", newId, ...peers]);
    assert.deepEqual((removed.voters as string[]).sort(), [...cluster.ids].sort());
    assert.equal((await cliJson(["peers", "remove", newId, ...peers])).already, "not a member");
    const afterRemove = await cliJson(["peers", "list", ...peers]);
    assert.equal((afterRemove.members as Member[]).length, 3);

    // snapshot on one node: there are entries to snapshot (elections, conf changes).
    const snapshot = await cliJson(["snapshot", "--peer", target]);
    assert.equal(snapshot.node, target);
    assert.ok((snapshot.snapshotIndex as number) > 0, JSON.stringify(snapshot));

    // peers reset is gone: a usage error naming its replacement, and nothing sent.
    const reset: RunResult = await runMain(["peers", "reset", "--force", cluster.ids.join(",")]);
    assert.equal(reset.code, 2);
    assert.equal(reset.stdout, "");
    assert.match(reset.stderr, /replaced by 'counter recover --data DIR --force-new-cluster'/);
    const after = await cliJson(["status", ...peers]);
    for (const node of after.nodes as { ok: boolean; voters: string[] }[]) {
      assert.ok(node.ok);
      assert.deepEqual([...node.voters].sort(), [...cluster.ids].sort());
    }
  } finally {
    if (joiner !== null) {
      try {
        joiner.kill("SIGKILL");
      } catch {
        // Already exited.
      }
      await joiner.status;
    }
    await joinerLog.catch(() => "");
    await cluster.stop();
    await Deno.remove(joinRoot, { recursive: true });
  }
  console.log(`admin e2e: ${Math.round(performance.now() - startedMs)} ms`);
});
