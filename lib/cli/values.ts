/**
 * Parsers for the values that command-line options take: exact 64-bit integers, bounded whole
 * numbers, `HOST:PORT` addresses and comma-separated address lists.
 *
 * Every parser throws {@linkcode UsageError} with a message naming the option (`what`) and the
 * offending text, so the user sees exactly which part of the command line to fix.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** The smallest signed 64-bit integer, -2^63. */
export const INT64_MIN: bigint = -(2n ** 63n);

/** The largest signed 64-bit integer, 2^63 - 1. */
export const INT64_MAX: bigint = 2n ** 63n - 1n;

/** The largest TCP port number. */
export const PORT_MAX = 65535;

/** Upper bound on the number of addresses in one list; a Raft group this large is a typo. */
export const ADDRESS_LIST_LENGTH_MAX = 64;

const INTEGER_PATTERN = /^[+-]?[0-9]+$/;
const WHOLE_NUMBER_PATTERN = /^[0-9]+$/;
// No leading zero, so that "h:080" and "h:80" cannot name the same node with two ids.
const PORT_PATTERN = /^[1-9][0-9]{0,4}$/;
const HOST_NAME_PATTERN = /^[A-Za-z0-9._-]+$/;
const HOST_IPV6_PATTERN = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

function quote(text: string): string {
  return JSON.stringify(text);
}

/**
 * Parses `text` as a signed 64-bit integer, exactly: no fractions, no exponents, no rounding.
 *
 * @example Usage
 * ```ts
 * import { parseInt64 } from "./values.ts";
 *
 * parseInt64("-9223372036854775808", "DELTA"); // -9223372036854775808n
 * ```
 */
export function parseInt64(text: string, what: string): bigint {
  if (INTEGER_PATTERN.test(text)) {
    const value = BigInt(text);
    if (value >= INT64_MIN && value <= INT64_MAX) return value;
  }
  throw new UsageError(
    `invalid ${what} ${quote(text)}: expected a whole number from ${INT64_MIN} to ${INT64_MAX}`,
  );
}

/** Parses `text` as a whole number in `[min, max]`; both bounds must be safe integers. */
export function parseBoundedInteger(
  text: string,
  what: string,
  bounds: { min: number; max: number },
): number {
  if (!Number.isSafeInteger(bounds.min) || !Number.isSafeInteger(bounds.max)) {
    throw new RangeError("bounds must be safe integers");
  }
  if (WHOLE_NUMBER_PATTERN.test(text)) {
    // Compare as bigint so that a huge input cannot round into range.
    const value = BigInt(text);
    if (value >= BigInt(bounds.min) && value <= BigInt(bounds.max)) return Number(value);
  }
  throw new UsageError(
    `invalid ${what} ${quote(text)}: expected a whole number from ${bounds.min} to ${bounds.max}`,
  );
}

/**
 * Parses and returns a `HOST:PORT` address: a host name or IPv4 address, or an IPv6 address in
 * brackets, then a port from 1 to 65535. The text is returned unchanged, since it is also the
 * node's id.
 *
 * @example Usage
 * ```ts
 * import { parseHostPort } from "./values.ts";
 *
 * parseHostPort("127.0.0.1:8081", "--id"); // "127.0.0.1:8081"
 * ```
 */
export function parseHostPort(text: string, what: string): string {
  const colon = text.lastIndexOf(":");
  if (colon < 0) {
    throw new UsageError(`invalid address ${quote(text)} in ${what}: expected HOST:PORT`);
  }
  const host = text.slice(0, colon);
  const port = text.slice(colon + 1);
  if (host === "") {
    throw new UsageError(`invalid address ${quote(text)} in ${what}: the host is empty`);
  }
  const hostValid = host.startsWith("[") && host.endsWith("]")
    ? HOST_IPV6_PATTERN.test(host.slice(1, -1))
    : HOST_NAME_PATTERN.test(host);
  if (!hostValid) {
    throw new UsageError(
      `invalid address ${quote(text)} in ${what}: bad host ${quote(host)}` +
        " (use a name, an IPv4 address, or an IPv6 address in brackets)",
    );
  }
  if (!PORT_PATTERN.test(port) || Number(port) > PORT_MAX) {
    throw new UsageError(
      `invalid address ${quote(text)} in ${what}: the port must be a number from 1 to ${PORT_MAX}`,
    );
  }
  return text;
}

/** Parses a comma-separated list of distinct `HOST:PORT` addresses. */
export function parseAddressList(text: string, what: string): string[] {
  const items = text.split(",");
  if (items.length > ADDRESS_LIST_LENGTH_MAX) {
    throw new UsageError(`too many addresses in ${what}: at most ${ADDRESS_LIST_LENGTH_MAX}`);
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (item === "") {
      throw new UsageError(
        `empty address in ${what}: expected HOST:PORT,HOST:PORT,... without spaces`,
      );
    }
    parseHostPort(item, what);
    if (seen.has(item)) throw new UsageError(`duplicate address ${quote(item)} in ${what}`);
    seen.add(item);
  }
  return items;
}

/** Checks that `text` is one of `choices`, and returns it typed. */
export function parseChoice<T extends string>(
  text: string,
  what: string,
  choices: readonly T[],
): T {
  const match = choices.find((choice) => choice === text);
  if (match !== undefined) return match;
  const listed = choices.length <= 1
    ? choices.join("")
    : `${choices.slice(0, -1).join(", ")} or ${choices[choices.length - 1]}`;
  throw new UsageError(`invalid ${what} ${quote(text)}: expected ${listed}`);
}
