/**
 * `LocalCluster` (what `counter demo`, `counter bench --local` and the end-to-end tests start)
 * never sends anything to a cluster it did not start: every child must listen and answer as
 * itself first.
 */

import assert from "node:assert/strict";
import { CounterClient } from "../../lib/client/client.ts";
import { LocalCluster, PortBusyError } from "../../lib/cli/local_cluster.ts";
import { runMain } from "./_run.ts";

/** A listener on a free port that counts the connections it accepts, until closed. */
function countingListener(): { port: number; accepted: () => number; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let accepted = 0;
  (async () => {
    for await (const conn of listener) {
      accepted++;
      conn.close();
    }
  })().catch(() => {});
  return {
    port: (listener.addr as Deno.NetAddr).port,
    accepted: () => accepted,
    close: () => listener.close(),
  };
}

Deno.test("'counter demo' on a busy port refuses in one line, starts nothing and sends nothing", async () => {
  const busy = countingListener();
  try {
    const r = await runMain(["demo", "--base-port", String(busy.port)]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(r.stdout, "", "nothing started");
    const lines = r.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`^counter demo: port ${busy.port} is already in use `));
    assert.match(lines[0], /--base-port/);
    assert.equal(busy.accepted(), 0, "the demo connected to the busy port");
  } finally {
    busy.close();
  }
});

Deno.test("a cluster on ports a running cluster holds refuses; the running one is untouched", async () => {
  const running = await LocalCluster.start({ nodes: 1 });
  const client = new CounterClient({ peers: running.ids, timeoutMs: 20_000 });
  try {
    await running.waitForLeader();
    await client.incrementAndGet(5n);
    const port = Number(running.ids[0].split(":")[1]);
    await assert.rejects(
      LocalCluster.start({ nodes: 1, basePort: port }),
      (err: unknown) => err instanceof PortBusyError && err.port === port,
    );
    assert.equal((await client.get()).value, 5n);
  } finally {
    await client.close();
    await running.stop();
  }
});

Deno.test("a restarted node whose port was taken meanwhile fails to start with PortBusyError", async () => {
  const cluster = await LocalCluster.start({ nodes: 1 });
  const id = cluster.ids[0];
  let squatter: Deno.TcpListener | null = null;
  try {
    await cluster.kill(id);
    squatter = Deno.listen({ hostname: "127.0.0.1", port: Number(id.split(":")[1]) });
    await assert.rejects(
      cluster.startNode(id),
      (err: unknown) => {
        assert.ok(err instanceof PortBusyError, String(err));
        assert.match(err.message, /cannot|in use/);
        return true;
      },
    );
    assert.equal(cluster.isRunning(id), false);
  } finally {
    squatter?.close();
    await cluster.stop();
  }
});

Deno.test("a child that cannot start fails the start with its own reason", async () => {
  await assert.rejects(
    // 192.0.2.0/24 is reserved for documentation: never an address of this machine.
    LocalCluster.start({ nodes: 1, serveArgs: ["--listen", "192.0.2.1:9"] }),
    /exited at start: .*cannot listen on 192\.0\.2\.1:9/,
  );
});
