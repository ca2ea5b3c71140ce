/**
 * What the client commands say when the group cannot serve, against real node processes:
 * one voter of three up, no cluster at all, and an address that is not a counter node.
 */

import assert from "node:assert/strict";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import { runMain } from "./_run.ts";

Deno.test("with 1 of 3 voters up, incr, leader and status say there is no quorum", async () => {
  const cluster = await LocalCluster.start({ serveArgs: ["--election-timeout-ms", "300"] });
  try {
    const leader0 = await cluster.waitForLeader();
    // The survivor is a follower: a leader cut off from its quorum would take the increment
    // and leave its outcome unknown (exit 3), which is right but not what this test is about.
    const survivor = cluster.ids.find((id) => id !== leader0)!;
    const dead = cluster.ids.filter((id) => id !== survivor);
    for (const id of dead) await cluster.kill(id);
    const peers = ["--peers", cluster.ids.join(","), "--timeout-ms", "1500"];

    const incr = await runMain(["incr", "1", ...peers]);
    assert.equal(incr.code, 1, incr.stderr);
    assert.equal(incr.stderr, "counter incr: no leader: 1 of 3 voters reachable (need 2)\n");

    const leader = await runMain(["leader", ...peers]);
    assert.equal(leader.code, 1, leader.stderr);
    assert.equal(leader.stderr, "counter leader: no leader: 1 of 3 voters reachable (need 2)\n");

    const status = await runMain(["status", ...peers]);
    assert.equal(status.code, 1, status.stderr);
    const lines = status.stdout.trimEnd().split("\n");
    assert.match(
      lines[0],
      /^leader none, term \d+; 1\/3 voters up \(need 2\); unavailable: no quorum$/,
    );
    for (const id of dead) assert.ok(lines.some((l) => l.startsWith(`${id}  down`)), status.stdout);
    assert.ok(lines.some((l) => l.startsWith(survivor)), status.stdout);
    assert.equal(status.stderr, "counter status: no leader: 1 of 3 voters reachable (need 2)\n");
  } finally {
    await cluster.stop();
  }
});

Deno.test("no cluster at all: incr fails at once with a hint about --peers", async () => {
  const ids = freePorts(3).map((port) => `127.0.0.1:${port}`);
  const startMs = performance.now();
  // A long deadline: the command must not wait for it.
  const r = await runMain(["incr", "1", "--peers", ids.join(","), "--timeout-ms", "60000"]);
  const elapsedMs = performance.now() - startMs;
  assert.equal(r.code, 1);
  assert.equal(
    r.stderr,
    `counter incr: no counter node reachable at ${ids.join(", ")} (Connection refused ` +
      "(os error 111)); is the cluster running? Name its nodes with --peers or COUNTER_PEERS\n",
  );
  // Not a performance bound: only that the 60 s deadline was not waited out.
  assert.ok(elapsedMs < 30_000, `took ${elapsedMs} ms`);
});

Deno.test("an address that does not speak the protocol: 'not a counter node', exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const id = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const serving = (async () => {
    for await (const conn of listener) {
      await conn.write(new TextEncoder().encode("HTTP/1.1 400 Bad Request\r\n\r\n")).catch(
        () => {},
      );
      conn.close();
    }
  })().catch(() => {});
  try {
    const r = await runMain(["get", "--peers", id, "--timeout-ms", "60000"]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `counter get: ${id}: not a counter node; check --peers or COUNTER_PEERS\n`,
    );
  } finally {
    listener.close();
    await serving;
  }
});

Deno.test("an address that takes the connection and says nothing: fails fast, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const id = `127.0.0.1:${(listener.addr as Deno.NetAddr).port}`;
  const held: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) held.push(conn); // accepts, never answers
  })().catch(() => {});
  try {
    const started = performance.now();
    const r = await runMain(["get", "--peers", id, "--timeout-ms", "60000"]);
    const elapsedMs = performance.now() - started;
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^counter get: ${id}: no answer within \\d+ ms: not a counter node, or not ` +
          `responding; check --peers or COUNTER_PEERS\\n$`,
      ),
    );
    // Not a performance bound: only that the 60 s deadline was not waited out.
    assert.ok(elapsedMs < 30_000, `took ${elapsedMs} ms`);
  } finally {
    listener.close();
    for (const conn of held) conn.close();
    await serving;
  }
});
