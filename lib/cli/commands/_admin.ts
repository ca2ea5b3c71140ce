/**
 * What the admin commands (`status`, `leader`, `peers`, `snapshot`) share: the client they talk
 * through, the checks on the nodes' answers, the exit status of an error, and how they print
 * tables and JSON.
 *
 * An answer's `data` is whatever the node sent; every field is checked before use, so that a
 * node of another version yields one clear error rather than `undefined` in a table.
 *
 * @module
 */

import { CounterClient } from "../../client/client.ts";
import { silentLogger } from "../../logging/logger.ts";
import type { WireMap, WireValue } from "../../transport/codec.ts";
import {
  errorCode,
  errorLine,
  formatErrorJson,
  JSON_SAFE_INTEGER_MAX,
  printErrorLine,
  printLine,
} from "../output.ts";
import { INT64_MAX, INT64_MIN } from "../values.ts";
import { type ConnectOptions, exitCodeFor, outcomeOf } from "./_client.ts";

/** An admin answer: the response's `data`, and the node that answered (or the leader it named). */
export interface AdminAnswer {
  /** The response's `data` map. */
  data: WireMap;
  /** The leader the answer names, else the node that answered. */
  leader: string;
}

/** The part of `CounterClient` the admin commands use; tests pass a fake. */
export interface AdminClientLike {
  /**
   * Sends admin operation `op` with `args`: to `options.peer` alone when given, else to the
   * leader, following redirects; in `options.group` when given, else the client's group. Rejects
   * with an error whose `outcome` is "failed" or "unknown".
   */
  admin(
    op: string,
    args?: WireMap,
    options?: { peer?: string; group?: string },
  ): Promise<AdminAnswer>;
  /** Releases connections. */
  close(): Promise<void>;
}

/** Replaceable effects of an admin command; every field defaults to the real thing. */
export interface AdminCommandDeps {
  /** Creates the client. */
  connect?: (options: ConnectOptions) => AdminClientLike;
  /** Prints one line of output. */
  out?: (line: string) => void;
  /** Prints one line of error. */
  err?: (line: string) => void;
}

/** {@linkcode AdminCommandDeps} with every field filled in. */
export type ResolvedAdminDeps = Required<AdminCommandDeps>;

/** Fills in the defaults of `deps`. */
export function resolveAdminDeps(deps: AdminCommandDeps = {}): ResolvedAdminDeps {
  return {
    // ---- Call into the service: the client library (lib/client/client.ts). ----
    // Client logs would break the one-line error contract, so the client stays silent.
    connect: deps.connect ??
      ((options) => new CounterClient({ ...options, logger: silentLogger })),
    out: deps.out ?? printLine,
    err: deps.err ?? printErrorLine,
  };
}

/**
 * Runs `body` with a new client and closes the client afterwards. An error `body` throws is
 * printed as one line, `counter COMMAND: message`, followed by `unknownHint` in parentheses when
 * its outcome is unknown (with `json`, as one JSON object instead); the exit status is then 1
 * (failed) or 3 (outcome unknown).
 */
export async function runAdmin(
  command: string,
  connect: ConnectOptions,
  deps: AdminCommandDeps,
  body: (client: AdminClientLike, io: ResolvedAdminDeps) => Promise<number>,
  unknownHint?: string,
  json = false,
): Promise<number> {
  const io = resolveAdminDeps(deps);
  const client = io.connect(connect);
  try {
    return await body(client, io);
  } catch (error) {
    let reason = errorLine(error);
    if (unknownHint !== undefined && outcomeOf(error) === "unknown") reason += ` (${unknownHint})`;
    const exit = exitCodeFor(error);
    io.err(
      json
        ? formatErrorJson(command, reason, exit, errorCode(error))
        : `counter ${command}: ${reason}`,
    );
    return exit;
  } finally {
    await client.close();
  }
}

/** A node's answer that does not have the shape this program expects. */
export class BadAnswerError extends Error {
  /** Creates the error; `source` names the node or operation the answer came from. */
  constructor(source: string, problem: string) {
    super(`unexpected answer from ${source}: ${problem}`);
    this.name = "BadAnswerError";
  }
}

/** `data[key]` as a string; `allowEmpty` lets "" through (a node that knows no leader). */
export function answerString(
  data: WireMap,
  key: string,
  source: string,
  allowEmpty = false,
): string {
  const value = data[key];
  if (typeof value !== "string" || (!allowEmpty && value === "")) {
    throw new BadAnswerError(source, `${key} is not a ${allowEmpty ? "" : "non-empty "}string`);
  }
  return value;
}

/**
 * `data[key]` as a log index or term: a non-negative safe integer. The codec hands integers of
 * 2^32 and above over as bigints; they are fine as long as they fit.
 */
export function answerIndex(data: WireMap, key: string, source: string): number {
  const value: WireValue | undefined = data[key];
  if (typeof value === "number" && Number.isSafeInteger(value) && value >= 0) return value;
  if (typeof value === "bigint" && value >= 0n && value <= JSON_SAFE_INTEGER_MAX) {
    return Number(value);
  }
  throw new BadAnswerError(source, `${key} is not a non-negative integer`);
}

/** `data[key]` as a list of strings (node ids). */
export function answerStringList(data: WireMap, key: string, source: string): string[] {
  const value = data[key];
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw new BadAnswerError(source, `${key} is not a list of strings`);
  }
  return value as string[];
}

/** `value`, a part of an answer called `what`, as a map. */
export function answerAsMap(value: WireValue | undefined, what: string, source: string): WireMap {
  if (
    typeof value !== "object" || value === null || Array.isArray(value) ||
    value instanceof Uint8Array
  ) {
    throw new BadAnswerError(source, `${what} is not a map`);
  }
  return value as WireMap;
}

/** `data[key]` as a signed 64-bit integer, sent as a decimal string (the counter's value). */
export function answerInt64(data: WireMap, key: string, source: string): bigint {
  const value = data[key];
  if (typeof value === "string" && /^-?[0-9]{1,19}$/.test(value)) {
    const parsed = BigInt(value);
    if (parsed >= INT64_MIN && parsed <= INT64_MAX) return parsed;
  }
  throw new BadAnswerError(source, `${key} is not a 64-bit integer in a string`);
}

/** A configuration, as the membership-changing operations answer it. */
export interface Configuration {
  /** Members that vote. */
  voters: string[];
  /** Members that receive the log but do not vote. */
  learners: string[];
}

/** Reads the `{voters, learners}` answer of a membership change. */
export function answerConfiguration(data: WireMap, source: string): Configuration {
  return {
    voters: answerStringList(data, "voters", source),
    learners: answerStringList(data, "learners", source),
  };
}

/**
 * `value` for `JSON.stringify`: a number when every JSON parser reads it back exactly, else a
 * decimal string (as `jsonInteger` in `output.ts`).
 */
export function jsonSafeInteger(value: bigint): number | string {
  const magnitude = value < 0n ? -value : value;
  return magnitude <= JSON_SAFE_INTEGER_MAX ? Number(value) : value.toString();
}

/**
 * Lays `rows` out as a table: every column as wide as its widest cell, two spaces apart. A row's
 * last cell is never padded and does not widen its column, so a row may end early with a note
 * (such as why a node did not answer). No line has trailing spaces.
 *
 * @example Usage
 * ```ts
 * import { formatTable } from "./_admin.ts";
 *
 * formatTable([["ID", "ROLE"], ["127.0.0.1:8081", "leader"]]);
 * // ["ID              ROLE", "127.0.0.1:8081  leader"]
 * ```
 */
export function formatTable(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    for (let column = 0; column < row.length - 1; column++) {
      widths[column] = Math.max(widths[column] ?? 0, row[column].length);
    }
  }
  return rows.map((row) =>
    row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column]))
      .join("  ")
      .trimEnd()
  );
}

/** The configuration as two lines, each list comma-separated as `--peers` takes it. */
export function formatConfiguration(conf: Configuration): string[] {
  return [
    `voters: ${conf.voters.join(",") || "(none)"}`,
    `learners: ${conf.learners.join(",") || "(none)"}`,
  ];
}
