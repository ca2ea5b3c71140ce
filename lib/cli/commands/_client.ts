/**
 * What the client commands (`incr`, `get`, `bench`) share: the client they talk through, the
 * mapping of errors to exit codes, and where their output goes.
 *
 * @module
 */

import { type Consistency, CounterClient } from "../../client/client.ts";
import { silentLogger } from "../../logging/logger.ts";
import type { ClientOptions } from "../args.ts";
import { type ClientTls, loadClientTlsSync } from "../../transport/tls.ts";
import { readTokenFileSync } from "../../security/tokens.ts";
import {
  errorCode,
  errorLine,
  formatErrorJson,
  printErrorLine,
  printLine,
  type ValueResult,
} from "../output.ts";
import {
  blockingProblem,
  type GroupView,
  noLeaderText,
  PROBE_TIMEOUT_MS,
  type ProbeAccess,
  probeNodes,
  viewGroup,
} from "./_diagnosis.ts";

/** Exit status: success. */
export const EXIT_OK = 0;
/** Exit status: failed, and certainly not applied (also any unexpected error). */
export const EXIT_FAILED = 1;
/** Exit status: the command line cannot be run as written. */
export const EXIT_USAGE = 2;
/** Exit status: sent, but no answer before the deadline; it may or may not have been applied. */
export const EXIT_UNKNOWN = 3;

/** The part of `CounterClient` the commands use; tests pass a fake. */
export interface CounterClientLike {
  /** Adds `delta`; resolves with the new value. */
  incrementAndGet(delta: bigint): Promise<ValueResult>;
  /** Resolves with the current value, read with `consistency` (default linearizable). */
  get(options?: { consistency?: Consistency }): Promise<ValueResult & { node?: string }>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** What a client command passes to {@linkcode ClientCommandDeps.connect}. */
export interface ConnectOptions {
  /** Addresses of the group's nodes. */
  peers: string[];
  /** Raft group name. */
  group: string;
  /** Deadline of one request, retries included. */
  timeoutMs: number;
  /** Connect with TLS, trusting these CAs. */
  tls?: ClientTls;
  /** Token to prove on each connection. */
  token?: Uint8Array;
}

/** Replaceable effects of a client command; every field defaults to the real thing. */
export interface ClientCommandDeps {
  /** Creates the client. */
  connect?: (options: ConnectOptions) => CounterClientLike;
  /** Prints one line of output. */
  out?: (line: string) => void;
  /** Prints one line of error. */
  err?: (line: string) => void;
  /**
   * Probes the group, to explain a failure or to fail fast when no address is a counter node.
   * Default: real probes when `connect` is the real client too, else none.
   */
  diagnose?:
    | ((peers: readonly string[], group: string, access: ProbeAccess) => Promise<GroupView>)
    | null;
}

/** {@linkcode ClientCommandDeps} with every field filled in. */
export type ResolvedDeps = Required<ClientCommandDeps>;

/** Pause between probes of a group none of whose nodes answers yet. */
const PROBE_RETRY_MS = 200;

/** Codes after which a request found no leader to take it, so a diagnosis can say why. */
const LEADERLESS_CODES = new Set(["UNAVAILABLE", "TIMEOUT", "NO_LEADER", "NOT_LEADER", "CLOSED"]);

/** Fills in the defaults of `deps`. */
export function resolveDeps(deps: ClientCommandDeps = {}): ResolvedDeps {
  return {
    // ---- Call into the service: the client library (lib/client/client.ts). ----
    // Client logs would break the one-line error contract, so the client stays silent.
    connect: deps.connect ??
      ((options) => new CounterClient({ ...options, logger: silentLogger })),
    out: deps.out ?? printLine,
    err: deps.err ?? printErrorLine,
    diagnose: deps.diagnose !== undefined
      ? deps.diagnose
      : deps.connect === undefined
      ? async (peers, group, access) =>
        viewGroup(await probeNodes(peers, group, PROBE_TIMEOUT_MS, access))
      : null,
  };
}

/** How a failed request ended, as far as the client can tell. */
export type Outcome = "failed" | "unknown";

/**
 * The outcome carried by a `CounterError` (its `outcome` field), or "failed" for any other error:
 * an error raised before anything was sent cannot have been applied.
 */
export function outcomeOf(error: unknown): Outcome {
  // Duck-typed rather than `instanceof CounterError`, so fakes in tests need no real client.
  const outcome = (error as { outcome?: unknown } | null)?.outcome;
  return outcome === "unknown" ? "unknown" : "failed";
}

/** The exit status for a request that threw `error`. */
export function exitCodeFor(error: unknown): number {
  return outcomeOf(error) === "unknown" ? EXIT_UNKNOWN : EXIT_FAILED;
}

/**
 * Builds the connect options of a client command from its parsed options, reading the CA and
 * token files they name. Throws one clear line when a file cannot be read or is malformed.
 */
export function connectOptions(options: ClientOptions): ConnectOptions {
  return {
    peers: [...options.peers],
    group: options.group,
    timeoutMs: options.timeoutMs,
    ...(options.tlsCa !== undefined ? { tls: loadClientTlsSync(options.tlsCa) } : {}),
    ...(options.tokenFile !== undefined
      ? { token: readTokenFileSync(options.tokenFile, "token") }
      : {}),
  };
}

/**
 * Runs `request` on a new client, prints its result with `render`, closes the client, and
 * returns the exit status. Errors are printed as one line prefixed with `counter COMMAND:`.
 */
export async function runRequest(
  command: "incr" | "get",
  options: ClientOptions,
  deps: ClientCommandDeps,
  request: (client: CounterClientLike) => Promise<ValueResult>,
  render: (result: ValueResult) => string,
): Promise<number> {
  const { connect, out, err, diagnose } = resolveDeps(deps);
  const connectWith = connectOptions(options);
  const access: ProbeAccess = { tls: connectWith.tls, token: connectWith.token };
  const client = connect(connectWith);
  // Alongside the request: when no address is a counter node that answers, there is nothing to
  // wait for, so the command fails now instead of retrying until its deadline.
  // A node that is only starting gets about a second to bind its port.
  let early: string | null = null;
  let settled = false;
  const probing = (async () => {
    if (diagnose === null) return;
    const giveUpAtMs = Date.now() + PROBE_TIMEOUT_MS;
    for (;;) {
      const view = await diagnose(options.peers, options.group, access);
      if (settled || view.probes.some((p) => p.kind === "up")) return;
      const problem = blockingProblem(view);
      if (problem === null) return;
      if (Date.now() >= giveUpAtMs) {
        early = problem;
        return await client.close();
      }
      await new Promise((resolve) => setTimeout(resolve, PROBE_RETRY_MS));
    }
  })().catch(() => {});
  try {
    const result = await request(client);
    settled = true;
    out(render(result));
    return EXIT_OK;
  } catch (error) {
    settled = true;
    await probing;
    let reason = early ?? errorLine(error);
    const code = (error as { code?: unknown } | null)?.code;
    if (early === null && diagnose !== null && LEADERLESS_CODES.has(String(code))) {
      // Say why no leader took the request: too few voters up, nothing there at all, or an
      // election under way; not the last node's connection error.
      const view = await diagnose(options.peers, options.group, access).catch(() => null);
      if (view !== null && view.leader === null) reason = noLeaderText(view);
    }
    if (command === "incr" && outcomeOf(error) === "unknown") {
      reason += " (outcome unknown: the increment may or may not have been applied)";
    }
    const exit = exitCodeFor(error);
    err(
      options.json
        ? formatErrorJson(command, reason, exit, early !== null ? "UNAVAILABLE" : errorCode(error))
        : `counter ${command}: ${reason}`,
    );
    return exit;
  } finally {
    await probing;
    await client.close();
  }
}
