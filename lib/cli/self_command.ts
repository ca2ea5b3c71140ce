/**
 * The command that starts this program again, for commands that run nodes as child processes.
 *
 * @module
 */

import { fileURLToPath } from "node:url";

// This file is lib/cli/self_command.ts, so the entry point is two folders up.
const MAIN_URL = new URL("../../main.ts", import.meta.url);

/** Options for {@linkcode selfCommand}; each defaults to the running process's own value. */
export interface SelfCommandOptions {
  /** Whether this is a `deno compile`d executable; default {@linkcode isCompiled}(). */
  compiled?: boolean;
  /** The executable; default `Deno.execPath()`. */
  execPath?: string;
  /** Path or URL of `main.ts`; default the one beside this module's `lib/`. */
  main?: string;
  /** V8 flags for the child under `deno run` (a compiled executable carries its own). */
  v8Flags?: readonly string[];
}

/**
 * V8 flags for node processes. A 2 MiB young generation (V8's default grows to 16 MiB per
 * semi-space) keeps a node's resident memory near 100 MB after millions of increments, at no
 * measurable cost in throughput: a node's garbage is short-lived and small. `deno task compile`
 * bakes the same flags into the executable.
 */
export const NODE_V8_FLAGS: readonly string[] = ["--max-semi-space-size=2"];

/**
 * True when running as a `deno compile`d executable.
 *
 * `Deno.build.standalone` is the runtime's own answer. `Deno.mainModule` and `import.meta.url`
 * are no help: in a compiled executable they still name a `file:` URL (of the source, or of a
 * virtual `deno-compile-*` folder), and `Deno.execPath()` names the executable in both cases.
 */
export function isCompiled(): boolean {
  return Deno.build.standalone === true;
}

/** The path of `main.ts` (or its URL, when this module was not loaded from a file). */
export function mainModulePath(): string {
  return MAIN_URL.protocol === "file:" ? fileURLToPath(MAIN_URL) : MAIN_URL.href;
}

/**
 * Returns the argv prefix that runs this program again; append a subcommand and its options.
 *
 * Under `deno run` it is `[deno, "run", "-A", <path of main.ts>]` (Deno finds `deno.json` from
 * that path, whatever the working directory); in a `deno compile`d executable it is just the
 * executable, which carries its code and permissions inside.
 *
 * @example Usage
 * ```ts
 * import { selfCommand } from "./self_command.ts";
 *
 * const [command, ...args] = selfCommand();
 * const child = new Deno.Command(command, { args: [...args, "--version"] });
 * ```
 */
export function selfCommand(options: SelfCommandOptions = {}): string[] {
  const execPath = options.execPath ?? Deno.execPath();
  if (options.compiled ?? isCompiled()) return [execPath];
  const v8 = options.v8Flags !== undefined && options.v8Flags.length > 0
    ? [`--v8-flags=${options.v8Flags.join(",")}`]
    : [];
  return [execPath, "run", "-A", ...v8, options.main ?? mainModulePath()];
}
