/**
 * `counter serve`: runs one node of a counter group until SIGINT or SIGTERM.
 *
 * @module
 */

import { type CounterNode, type NodeOptions, startNode } from "../../counter/node.ts";
import { Logger } from "../../logging/logger.ts";
import type { ServeOptions } from "../args.ts";

/** The signals that stop a node gracefully. */
export const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** The part of a running node that `runServe` uses; tests pass a fake. */
export type NodeHandle = Pick<CounterNode, "stop" | "closed">;

/** Replaceable effects of `runServe`; every field defaults to the real thing. */
export interface ServeDeps {
  /** Starts the node. */
  startNode?: (options: NodeOptions) => Promise<NodeHandle>;
  /** Where log lines go; default stderr. */
  writeLog?: (line: string) => void;
  /** Registers a signal handler. */
  addSignalListener?: (signal: Deno.Signal, handler: () => void) => void;
  /** Removes a signal handler. */
  removeSignalListener?: (signal: Deno.Signal, handler: () => void) => void;
  /** Ends the process at once; used on a second signal, when a graceful stop hangs. */
  exit?: (code: number) => void;
}

/**
 * Runs `counter serve`: starts the node, and on the first SIGINT or SIGTERM stops it gracefully.
 * A second signal exits at once with status 1. Resolves with 0 once the node has stopped after a
 * signal; a node that stops by itself, or fails, is an error (status 1).
 *
 * @example Usage
 * ```ts
 * import { parseServeArgs } from "../args.ts";
 * import { runServe } from "./serve.ts";
 *
 * const code = await runServe(parseServeArgs([
 *   "--data", "/tmp/n1", "--id", "127.0.0.1:8081", "--conf", "127.0.0.1:8081",
 * ]));
 * ```
 */
export async function runServe(options: ServeOptions, deps: ServeDeps = {}): Promise<number> {
  const addSignalListener = deps.addSignalListener ?? Deno.addSignalListener;
  const removeSignalListener = deps.removeSignalListener ?? Deno.removeSignalListener;
  const exit = deps.exit ?? Deno.exit;
  const logger = new Logger({
    level: options.logLevel,
    format: options.logFormat,
    fields: { node: options.id },
    write: deps.writeLog,
  });

  let node: NodeHandle | undefined;
  let signalled: Deno.Signal | undefined;
  let stopping: Promise<void> | undefined;

  function stop(): void {
    // A signal that arrives while the node is starting is acted on once it has started.
    if (node === undefined || stopping !== undefined) return;
    stopping = node.stop().catch((error) => logger.error("stop failed", { error }));
  }

  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      if (signalled !== undefined) {
        logger.warn("second signal, exiting without a graceful stop", { signal });
        exit(1);
        return;
      }
      signalled = signal;
      logger.info("stopping", { signal });
      stop();
    };
    addSignalListener(signal, handler);
    return { signal, handler };
  });

  try {
    const nodeOptions: NodeOptions = {
      dataDir: options.dataDir,
      id: options.id,
      conf: [...options.conf],
      ...(options.join !== undefined ? { join: [...options.join] } : {}),
      group: options.group,
      electionTimeoutMs: options.electionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      snapshotIntervalSecs: options.snapshotIntervalSecs,
      snapshotLogEntries: options.snapshotLogEntries,
      snapshotRetainEntries: options.snapshotRetainEntries,
      logSegmentBytes: options.logSegmentBytes,
      idleTimeoutMs: options.idleTimeoutSecs * 1000,
      frameTimeoutMs: options.frameTimeoutSecs * 1000,
      logger,
    };
    // ---- Call into the service: the node (lib/counter/node.ts). ----
    node = await (deps.startNode ?? startNode)(nodeOptions);
    if (signalled !== undefined) stop();
    await node.closed;
    await stopping;
  } finally {
    for (const { signal, handler } of handlers) removeSignalListener(signal, handler);
  }
  if (signalled === undefined) throw new Error("the node stopped without being asked to");
  logger.info("stopped");
  return 0;
}
