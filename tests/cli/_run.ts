/**
 * Helpers for tests that run `counter` as a child process.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { COMMAND_NAMES, type CommandName } from "../../lib/cli/usage_error.ts";

/** The project root (where `main.ts` and `deno.json` are). */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** What a finished child process printed and how it exited. */
export interface RunResult {
  /** Exit status. */
  code: number;
  /** Everything written to stdout. */
  stdout: string;
  /** Everything written to stderr. */
  stderr: string;
}

const decoder = new TextDecoder();

/** Runs `command` with `args` to completion, with no stdin, and collects its output. */
export async function runProgram(
  command: string,
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<RunResult> {
  const output = await new Deno.Command(command, {
    args,
    cwd: options.cwd ?? ROOT,
    env: options.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `deno run -A main.ts ...args` in the project root. */
export function runMain(args: string[]): Promise<RunResult> {
  return runProgram(Deno.execPath(), ["run", "-A", "main.ts", ...args]);
}

/** A help text with a golden file: `undefined` is the top-level help. */
export const HELP_TOPICS: readonly (CommandName | undefined)[] = [undefined, ...COMMAND_NAMES];

/** Path of the golden file of `topic`'s help text. */
export function goldenPath(topic: CommandName | undefined): string {
  return fileURLToPath(new URL(`../../snapshots/cli/${topic ?? "counter"}.txt`, import.meta.url));
}

/** The argv that prints `topic`'s help through `--help`. */
export function helpArgs(topic: CommandName | undefined): string[] {
  return topic === undefined ? ["--help"] : [topic, "--help"];
}
