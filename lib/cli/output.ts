/**
 * How client commands render results and errors.
 *
 * @module
 */

/** The largest magnitude a JSON number carries exactly in every common parser: 2^53 - 1. */
export const JSON_SAFE_INTEGER_MAX: bigint = 2n ** 53n - 1n;

/** A counter value together with the node that answered as leader. */
export interface ValueResult {
  /** The counter's value. */
  value: bigint;
  /** `HOST:PORT` of the leader that answered. */
  leader: string;
}

/**
 * Renders `value` as JSON: a number when every JSON parser reads it back exactly, else a string,
 * so that no consumer silently rounds a large counter.
 */
export function jsonInteger(value: bigint): string {
  const magnitude = value < 0n ? -value : value;
  return magnitude <= JSON_SAFE_INTEGER_MAX ? value.toString() : JSON.stringify(value.toString());
}

/**
 * Renders the one line that `counter incr` and `counter get` print, without a newline.
 *
 * @example Usage
 * ```ts
 * import { formatValueLine } from "./output.ts";
 *
 * formatValueLine({ value: 7n, leader: "127.0.0.1:8081" }, true);
 * // '{"value":7,"leader":"127.0.0.1:8081"}'
 * ```
 */
export function formatValueLine(result: ValueResult, json: boolean): string {
  if (!json) return result.value.toString();
  return `{"value":${jsonInteger(result.value)},"leader":${JSON.stringify(result.leader)}}`;
}

/**
 * The error line of `counter COMMAND` under `--json`: one JSON object (on stderr, like the text
 * form), in the one spacing style of every JSON line this program prints (none).
 */
export function formatErrorJson(
  command: string,
  message: string,
  exitCode: number,
  code?: string,
): string {
  return JSON.stringify({ command, error: message, ...(code ? { code } : {}), exitCode });
}

/** The machine-readable code an error carries (`CounterError.code`), if any. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * The first line of an error's message, so that an error is always reported on one line. An
 * address prefix (`HOST:PORT: `) that the line already carries is not repeated inside it, as in
 * `127.0.0.1:1: Node could not be reached (127.0.0.1:1: Connection refused)`.
 */
export function errorLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const line = withoutRepeatedAddresses(text.split("\n", 1)[0].trim());
  return line === "" ? (error instanceof Error ? error.name : "unknown error") : line;
}

/** `line` with every `HOST:PORT: ` prefix after the first of the same address removed. */
function withoutRepeatedAddresses(line: string): string {
  const seen = new Set<string>();
  return line.replace(/(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5}): /g, (match) => {
    if (seen.has(match)) return "";
    seen.add(match);
    return match;
  });
}

const encoder = new TextEncoder();

/** Writes `line` and a newline to stdout, completely, before returning. */
export function printLine(line: string): void {
  writeAll(Deno.stdout, encoder.encode(line + "\n"));
}

/** Writes `line` and a newline to stderr, completely, before returning. */
export function printErrorLine(line: string): void {
  writeAll(Deno.stderr, encoder.encode(line + "\n"));
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, bytes: Uint8Array): void {
  let offset = 0;
  while (offset < bytes.length) offset += stream.writeSync(bytes.subarray(offset));
}
