/**
 * `counter demo`: starts a local 3-node cluster as child processes and runs the workload of
 * SOFAJRaft's counter example against it.
 *
 * @module
 */

import { CounterClient } from "../../client/client.ts";
import { silentLogger } from "../../logging/logger.ts";
import { DEFAULT_GROUP, type DemoOptions } from "../args.ts";
import { LocalCluster } from "../local_cluster.ts";
import { errorLine, printErrorLine, printLine } from "../output.ts";
import { EXIT_FAILED, EXIT_OK } from "./_client.ts";

/** Nodes in the demo cluster. */
export const DEMO_NODE_COUNT = 3;

/** Increments in the demo workload: SOFAJRaft's counter client sends 1000, all in flight. */
export const DEMO_OPS = 1000;

const LEADER_TIMEOUT_MS = 30_000;
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
    throw error;
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
    const startMs = performance.now();
    const results = await Promise.allSettled(
      Array.from({ length: DEMO_OPS }, (_, i) => client.incrementAndGet(BigInt(i))),
    );
    const costMs = performance.now() - startMs;
    const failures = results.filter((result) => result.status === "rejected");
    printLine(`${DEMO_OPS} ops, cost ${costMs.toFixed(0)} ms`);

    const after = await client.get();
    const expected = before + BigInt((DEMO_OPS * (DEMO_OPS - 1)) / 2);
    printLine(`value ${after.value} (leader ${after.leader}), expected ${expected}`);
    if (failures.length > 0) {
      const first = (failures[0] as PromiseRejectedResult).reason;
      printErrorLine(
        `counter demo: ${failures.length} of ${DEMO_OPS} increments failed, the first: ${
          errorLine(first)
        }`,
      );
      return EXIT_FAILED;
    }
    if (after.value !== expected) {
      printErrorLine(`counter demo: value ${after.value} differs from expected ${expected}`);
      return EXIT_FAILED;
    }

    succeeded = true;
    if (options.keep) {
      printLine(`cluster running; try: counter get --peers ${cluster.ids.join(",")}`);
      printLine("press Ctrl-C to stop it");
      await waitForStopSignal();
    }
    return EXIT_OK;
  } finally {
    await client.close();
    await cluster.stop();
    if (options.dataDir === undefined) {
      if (succeeded) await Deno.remove(dataRoot, { recursive: true });
      else printErrorLine(`counter demo: data and node logs kept in ${dataRoot}`);
    }
  }
}
