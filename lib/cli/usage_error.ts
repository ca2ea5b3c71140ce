/**
 * The error for a command line that cannot be run as written.
 *
 * @module
 */

/**
 * Names of the subcommands, in the order the top-level help lists them: the commands, then the
 * admin commands.
 */
export const COMMAND_NAMES = [
  "serve",
  "incr",
  "get",
  "demo",
  "bench",
  "help",
  "status",
  "leader",
  "peers",
  "groups",
  "snapshot",
  "health",
  "backup",
  "restore",
  "inspect",
  "recover",
  "certs",
] as const;

/** A subcommand name. */
export type CommandName = typeof COMMAND_NAMES[number];

/**
 * A command line that cannot be run as written: an unknown flag, a missing or malformed value,
 * an extra argument. `main.ts` prints it as one line on stderr and exits with status 2.
 *
 * @example Usage
 * ```ts
 * import { formatUsageError, UsageError } from "./usage_error.ts";
 *
 * const line = formatUsageError(new UsageError("unknown option --foo", "incr"));
 * // line === "counter incr: unknown option --foo (see 'counter incr --help')"
 * ```
 */
export class UsageError extends Error {
  /** The subcommand being parsed when the error was found, if any. */
  readonly command: CommandName | undefined;

  /** Creates an error; `message` is one line, in sentence case, without a trailing period. */
  constructor(message: string, command?: CommandName) {
    super(message);
    this.name = "UsageError";
    this.command = command;
  }
}

/** Renders a usage error as the single line `main.ts` prints on stderr. */
export function formatUsageError(error: UsageError): string {
  const prefix = error.command === undefined ? "counter" : `counter ${error.command}`;
  return `${prefix}: ${error.message} (see '${prefix} --help')`;
}
