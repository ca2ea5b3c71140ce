/**
 * `counter demo`: starts a local 3-node cluster as child processes and runs the workload of
 * SOFAJRaft's counter example against it.
 *
 * @module
 */

import { CounterClient } from "../../client/client.ts";
import { silentLogger } from "../../logging/logger.ts";
import { DEFAULT_GROUP, type DemoOptions } from "../args.ts";
import { LocalCluster, PortBusyError } from "../local_cluster.ts";
import { errorLine, printErrorLine, printLine } from "../output.ts";
import { EXIT_FAILED, EXIT_OK } from "./_client.ts";

/** Nodes in the demo cluster. */
export const DEMO_NODE_COUNT = 3;

/** Increments in the demo workload: SOFAJRaft's counter client sends 1000, all in flight. */
export const DEMO_OPS = 1000;

/** Increments sent after the leader is killed. */
export const FAILOVER_OPS = 100;

const LEADER_TIMEOUT_MS = 30_000;
const CATCH_UP_TIMEOUT_MS = 30_000;

/** A demo step whose result was wrong; the demo exits 1 with this message. */
class DemoFailure extends Error {}

function failIfAnyRejected(results: PromiseSettledResult<unknown>[], what: string): void {
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length === 0) return;
  throw new DemoFailure(
    `${failures.length} of ${results.length} ${what} failed, the first: ${
      errorLine(failures[0].reason)
    }`,
  );
}

/** Waits until every running node reports `value` at the same applied index. */
async function waitForCatchUp(
  cluster: LocalCluster,
  restarted: string,
  value: bigint,
): Promise<{ applied: number; value: string }> {
  const deadline = Date.now() + CATCH_UP_TIMEOUT_MS;
  let last = "no status yet";
  while (Date.now() < deadline) {
    const statuses = [...(await cluster.statuses()).values()];
    const answered = statuses.filter((s) => s !== null);
    const applied = new Set(answered.map((s) => s.applied));
    const values = new Set(answered.map((s) => s.value));
    if (
      answered.length === statuses.length && applied.size === 1 && values.size === 1 &&
      values.has(value.toString())
    ) {
      return { applied: answered[0].applied as number, value: value.toString() };
    }
    last = answered.map((s) => `${s.id}: applied ${s.applied} value ${s.value}`).join("; ");
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new DemoFailure(
    `${restarted} did not catch up within ${CATCH_UP_TIMEOUT_MS} ms (${last})`,
  );
}
const REQUEST_TIMEOUT_MS = 10_000;

function waitForStopSignal(): Promise<void> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handler = () => {
      for (const signal of signals) Deno.removeSignalListener(signal, handler);
      resolve();
    };
    for (const signal of signals) Deno.addSignalListener(signal, handler);
  });
}

/**
 * Runs `counter demo` and returns the exit status: 0 when every increment of the workload was
 * acknowledged and the final value adds up, 1 otherwise.
 *
 * @example Usage
 * ```ts
 * import { parseDemoArgs } from "../args.ts";
 * import { runDemo } from "./demo.ts";
 *
 * const code = await runDemo(parseDemoArgs(["--base-port", "9081"]));
 * ```
 */
export async function runDemo(options: DemoOptions): Promise<number> {
  // A temporary data root is removed after a successful run only: after a failure, the node
  // logs in it are what explains the failure.
  const dataRoot = options.dataDir ?? await Deno.makeTempDir({ prefix: "counter-demo-" });
  let succeeded = false;
  let keptRunning = false;
  let cluster: LocalCluster;
  try {
    // ---- Call into the service: the nodes, as child processes (lib/cli/local_cluster.ts). ----
    cluster = await LocalCluster.start({
      nodes: DEMO_NODE_COUNT,
      basePort: options.basePort,
      dataRoot,
      group: DEFAULT_GROUP,
    });
  } catch (error) {
    if (options.dataDir === undefined) await Deno.remove(dataRoot, { recursive: true });
    if (!(error instanceof PortBusyError)) throw error;
    // Nothing was sent anywhere: the demo never runs its workload against a cluster it did not
    // start itself.
    printErrorLine(
      `counter demo: ${error.message}; is a cluster already running there? ` +
        `Pick other ports with --base-port (the demo uses ${options.basePort} to ` +
        `${options.basePort + DEMO_NODE_COUNT - 1})`,
    );
    return EXIT_FAILED;
  }
  const logs = cluster.ids.map((id) => cluster.logPath(id)).join(", ");
  const client = new CounterClient({
    peers: [...cluster.ids],
    group: DEFAULT_GROUP,
    timeoutMs: REQUEST_TIMEOUT_MS,
    logger: silentLogger,
  });
  try {
    printLine(`started ${DEMO_NODE_COUNT} nodes: ${cluster.ids.join(", ")}`);
    printLine(`data in ${cluster.dataRoot}; node logs in ${logs}`);
    const leader = await cluster.waitForLeader(LEADER_TIMEOUT_MS);
    const before = (await client.get()).value;
    printLine(`leader ${leader}, value ${before}`);

    // SOFAJRaft's counter client: incrementAndGet(i) for i in 0..n-1, all in flight at once.
    // Stage 1: SOFAJRaft's counter client, incrementAndGet(i) for i in 0..999, all in flight.
    let expected = before + BigInt((DEMO_OPS * (DEMO_OPS - 1)) / 2);
    const startMs = performance.now();
    const burst = await Promise.allSettled(
      Array.from({ length: DEMO_OPS }, (_, i) => client.incrementAndGet(BigInt(i))),
    );
    const costMs = performance.now() - startMs;
    printLine(`${DEMO_OPS} ops, cost: ${costMs.toFixed(0)} ms`);
    failIfAnyRejected(burst, "increments of the burst");
    let now = await client.get();
    printLine(`value ${now.value} (grew by ${now.value - before}), leader ${now.leader}`);
    if (now.value !== expected) throw new DemoFailure(`value ${now.value}, expected ${expected}`);

    // Stage 2: crash the leader; the others elect a new one while increments keep coming.
    const killed = now.leader;
    await cluster.kill(killed);
    const killedAtMs = performance.now();
    printLine(`killed the leader ${killed} with SIGKILL`);
    // Fired at once: the client retries them until the new leader takes them.
    const morePending = Promise.allSettled(
      Array.from({ length: FAILOVER_OPS }, () => client.incrementAndGet(1n)),
    );
    const newLeader = await cluster.waitForLeader(LEADER_TIMEOUT_MS, [killed]);
    printLine(
      `new leader ${newLeader} after ${(performance.now() - killedAtMs).toFixed(0)} ms`,
    );
    const more = await morePending;
    failIfAnyRejected(more, "increments after the failover");
    expected += BigInt(FAILOVER_OPS);
    now = await client.get();
    printLine(`${FAILOVER_OPS} more increments through ${now.leader}: value ${now.value}`);
    if (now.value !== expected) throw new DemoFailure(`value ${now.value}, expected ${expected}`);

    // Stage 3: restart the crashed node; it recovers from its data dir and catches up.
    await cluster.startNode(killed);
    printLine(`restarted ${killed}`);
    const caughtUp = await waitForCatchUp(cluster, killed, expected);
    printLine(
      `${killed} caught up: applied index ${caughtUp.applied}, value ${caughtUp.value}, ` +
        `the same on every node`,
    );
    succeeded = true;
    if (options.keep) {
      printLine(`cluster running; try: counter get --peers ${cluster.ids.join(",")}`);
      printLine("press Ctrl-C to stop it");
      await waitForStopSignal();
      printLine("stopping the cluster");
      keptRunning = true;
    }
    return EXIT_OK;
  } catch (error) {
    if (!(error instanceof DemoFailure)) throw error;
    printErrorLine(`counter demo: ${error.message}`);
    return EXIT_FAILED;
  } finally {
    await client.close();
    await cluster.stop();
    if (keptRunning) printLine(`stopped ${DEMO_NODE_COUNT} nodes`);
    if (options.dataDir === undefined) {
      if (succeeded) await Deno.remove(dataRoot, { recursive: true });
      else printErrorLine(`counter demo: data and node logs kept in ${dataRoot}`);
    }
  }
}
