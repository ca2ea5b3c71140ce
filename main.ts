/**
 * `counter`: a Raft-replicated 64-bit counter service, as one executable.
 *
 * Parses the command line, then hands the typed options to the subcommand's module in
 * `lib/cli/commands/`. A usage error prints one line on stderr and exits with status 2; any
 * other unexpected error prints one line and exits with status 1.
 *
 * @example Usage
 * ```sh
 * deno run -A main.ts incr 5
 * ```
 *
 * @module
 */

import denoConfig from "./deno.json" with { type: "json" };
import { formatUsageError, type Invocation, parseCommandLine, UsageError } from "./lib/cli/args.ts";
import { helpText } from "./lib/cli/help.ts";
import {
  errorCode,
  errorLine,
  formatErrorJson,
  printErrorLine,
  printLine,
} from "./lib/cli/output.ts";

/** The program's version, from `deno.json`. */
export const VERSION: string = denoConfig.version;

/** Exit status of a command line that cannot be run as written. */
export const EXIT_USAGE = 2;

/** Exit status of an unexpected error. */
export const EXIT_ERROR = 1;

/** Runs `invocation`; command modules are loaded only when needed, so help never loads Raft. */
async function dispatch(invocation: Invocation): Promise<number> {
  switch (invocation.command) {
    case "help":
      // The texts end with a newline already.
      printLine(helpText(invocation.topic).replace(/\n$/, ""));
      return 0;
    case "version":
      printLine(`counter ${VERSION}`);
      return 0;
    case "serve": {
      const { runServe } = await import("./lib/cli/commands/serve.ts");
      return await runServe(invocation.options);
    }
    case "incr": {
      const { runIncr } = await import("./lib/cli/commands/incr.ts");
      return await runIncr(invocation.options);
    }
    case "get": {
      const { runGet } = await import("./lib/cli/commands/get.ts");
      return await runGet(invocation.options);
    }
    case "demo": {
      const { runDemo } = await import("./lib/cli/commands/demo.ts");
      return await runDemo(invocation.options);
    }
    case "bench": {
      const { runBench } = await import("./lib/cli/commands/bench.ts");
      return await runBench(invocation.options);
    }
    case "status": {
      const { runStatus } = await import("./lib/cli/commands/status.ts");
      return await runStatus(invocation.options);
    }
    case "leader": {
      const { runLeader } = await import("./lib/cli/commands/leader.ts");
      return await runLeader(invocation.options);
    }
    case "peers": {
      const { runPeers } = await import("./lib/cli/commands/peers.ts");
      return await runPeers(invocation.options);
    }
    case "groups": {
      const { runGroups } = await import("./lib/cli/commands/groups.ts");
      return await runGroups(invocation.options);
    }
    case "snapshot": {
      const { runSnapshot } = await import("./lib/cli/commands/snapshot.ts");
      return await runSnapshot(invocation.options);
    }
    case "health": {
      const { runHealth } = await import("./lib/cli/commands/health.ts");
      return await runHealth(invocation.options);
    }
    case "backup": {
      const { runBackup } = await import("./lib/cli/commands/backup.ts");
      return await runBackup(invocation.options);
    }
    case "restore": {
      const { runRestore } = await import("./lib/cli/commands/restore.ts");
      return await runRestore(invocation.options);
    }
    case "inspect": {
      const { runInspect } = await import("./lib/cli/commands/inspect.ts");
      return await runInspect(invocation.options);
    }
    case "recover": {
      const { runRecover } = await import("./lib/cli/commands/recover.ts");
      return await runRecover(invocation.options);
    }
    case "certs": {
      const { runCerts } = await import("./lib/cli/commands/certs.ts");
      return await runCerts(invocation.options);
    }
  }
}

/** True when `--json` is among `args` (before any `--`): errors are then JSON too. */
function wantsJson(args: readonly string[]): boolean {
  const end = args.indexOf("--");
  return (end < 0 ? args : args.slice(0, end)).includes("--json");
}

/**
 * Runs the program with `args` (without the program name) and resolves with its exit status.
 *
 * @example Usage
 * ```ts
 * import { main } from "./main.ts";
 *
 * const code = await main(["--version"]); // prints "counter 0.1.0", resolves with 0
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    printErrorLine(
      wantsJson(args)
        ? formatErrorJson(error.command ?? "", formatUsageError(error), EXIT_USAGE, "USAGE")
        : formatUsageError(error),
    );
    return EXIT_USAGE;
  }
  try {
    return await dispatch(invocation);
  } catch (error) {
    const prefix = invocation.command === "version" ? "counter" : `counter ${invocation.command}`;
    printErrorLine(
      wantsJson(args)
        ? formatErrorJson(invocation.command, errorLine(error), EXIT_ERROR, errorCode(error))
        : `${prefix}: ${errorLine(error)}`,
    );
    return EXIT_ERROR;
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
