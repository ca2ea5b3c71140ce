/**
 * `counter serve`: runs one node of a counter group until SIGINT or SIGTERM.
 *
 * @module
 */

import type { NodeOptions, NodeSecurity } from "../../counter/node.ts";
import { type NodeHost, startHost } from "../../counter/host.ts";
import { Logger } from "../../logging/logger.ts";
import type { ServeOptions } from "../args.ts";
import denoConfig from "../../../deno.json" with { type: "json" };
import { type MetricsServer, type MetricsTarget, startMetricsServer } from "../../metrics/http.ts";
import { parseAddress } from "../../transport/address.ts";
import { jsonSafeInteger } from "./_admin.ts";
import { loadClientTls, loadServerTls } from "../../transport/tls.ts";
import { readTokenFile } from "../../security/tokens.ts";

/**
 * Reads the TLS and token files `options` name (each failure is one line naming the file), and
 * warns once for each door left open: no client token (anyone who reaches the port may read and
 * change the counter and the membership), no cluster token (anyone may speak Raft to the node).
 */
export async function loadSecurity(
  options: ServeOptions,
  logger: Logger,
): Promise<NodeSecurity> {
  const security: NodeSecurity = {};
  if (options.tls !== undefined) {
    security.tls = {
      server: await loadServerTls(options.tls.certFile, options.tls.keyFile),
      client: await loadClientTls(options.tls.caFile),
    };
  }
  if (options.clusterTokenFile !== undefined) {
    security.clusterToken = await readTokenFile(options.clusterTokenFile, "cluster token");
  }
  if (options.clientTokenFile !== undefined) {
    security.clientToken = await readTokenFile(options.clientTokenFile, "client token");
  }
  if (options.adminTokenFile !== undefined) {
    security.adminToken = await readTokenFile(options.adminTokenFile, "admin token");
  }
  if (security.clientToken === undefined && security.adminToken === undefined) {
    logger.warn(
      "no --client-token-file or --admin-token-file: the port is open to anyone, who may " +
        "read and change the counter and the membership",
    );
  }
  if (security.clusterToken === undefined) {
    logger.warn(
      "no --cluster-token-file: peers are unauthenticated, anyone who reaches the port may " +
        "send Raft messages",
    );
  }
  return security;
}

/** The signals that stop a node gracefully. */
export const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** The part of a running node that `runServe` uses; tests pass a fake. */
export type NodeHandle = Pick<NodeHost, "stop" | "closed">;

/** Replaceable effects of `runServe`; every field defaults to the real thing. */
export interface ServeDeps {
  /** Starts the node (the host of every group in `options.groups`). */
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

  let metrics: MetricsServer | undefined;
  try {
    if (options.metricsAddr !== undefined) {
      // Bound before the node starts: a busy port must fail the start before the data dir is
      // touched.
      const { hostname, port } = parseAddress(options.metricsAddr);
      metrics = startMetricsServer(hostname, port);
      logger.info("serving metrics", {
        url: `http://${options.metricsAddr}/metrics`,
        health: "/health",
        status: "/status",
      });
    }
    const nodeOptions: NodeOptions = {
      dataDir: options.dataDir,
      id: options.id,
      ...(options.listen !== undefined ? { listen: options.listen } : {}),
      conf: [...options.conf],
      ...(options.join !== undefined ? { join: [...options.join] } : {}),
      group: options.group,
      groups: [...options.groups],
      electionTimeoutMs: options.electionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      snapshotIntervalSecs: options.snapshotIntervalSecs,
      snapshotLogEntries: options.snapshotLogEntries,
      snapshotRetainEntries: options.snapshotRetainEntries,
      snapshotLogBytes: options.snapshotLogBytes,
      snapshotRetainBytes: options.snapshotRetainBytes,
      logSegmentBytes: options.logSegmentBytes,
      bootstrapTimeoutSecs: options.bootstrapTimeoutSecs,
      idleTimeoutMs: options.idleTimeoutSecs * 1000,
      frameTimeoutMs: options.frameTimeoutSecs * 1000,
      logger,
    };
    // Once, before anything else: what runs, and with which settings, defaults included.
    logger.info(`starting counter ${denoConfig.version}`, {
      pid: Deno.pid,
      deno: Deno.version.deno,
      data: options.dataDir,
      listen: options.listen ?? options.id,
      groups: options.groups.join(","),
      conf: options.join === undefined ? options.conf.join(",") : undefined,
      join: options.join?.join(","),
      electionTimeoutMs: options.electionTimeoutMs,
      heartbeatIntervalMs: options.heartbeatIntervalMs,
      snapshotIntervalSecs: options.snapshotIntervalSecs,
      snapshotLogEntries: options.snapshotLogEntries,
      snapshotRetainEntries: options.snapshotRetainEntries,
      snapshotLogBytes: options.snapshotLogBytes,
      snapshotRetainBytes: options.snapshotRetainBytes,
      logSegmentBytes: options.logSegmentBytes,
      metricsAddr: options.metricsAddr,
      logLevel: options.logLevel,
      tls: options.tls !== undefined,
      clusterToken: options.clusterTokenFile !== undefined,
      clientToken: options.clientTokenFile !== undefined,
      adminToken: options.adminTokenFile !== undefined,
    });
    nodeOptions.security = await loadSecurity(options, logger);
    // ---- Call into the service: the node (lib/counter/node.ts). ----
    node = await (deps.startNode ?? startHost)(nodeOptions);
    if (metrics !== undefined && isMetricsTarget(node)) {
      const target = node;
      metrics.setTarget({
        metricsText: () => target.metricsText(),
        health: () => target.health(),
        // As `counter status --json` prints it: the value as a number when JSON holds it exactly.
        status: () => {
          const status = target.status();
          const value = BigInt(String(status.value));
          return { ...status, value: jsonSafeInteger(value) };
        },
      });
    }
    if (signalled !== undefined) stop();
    await node.closed;
    await stopping;
  } finally {
    for (const { signal, handler } of handlers) removeSignalListener(signal, handler);
    await metrics?.close();
  }
  if (signalled === undefined) throw new Error("the node stopped without being asked to");
  logger.info("stopped");
  return 0;
}

/** True when `node` can feed the metrics endpoint (a real node; test fakes may not). */
function isMetricsTarget(node: NodeHandle): node is NodeHandle & MetricsTarget {
  const candidate = node as Partial<MetricsTarget>;
  return typeof candidate.metricsText === "function" && typeof candidate.health === "function" &&
    typeof candidate.status === "function";
}
