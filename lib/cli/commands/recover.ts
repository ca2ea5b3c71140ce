/**
 * `counter recover --data DIR --force-new-cluster [--yes]`: forces one stopped survivor of a
 * group that lost its majority for good into a new one-node group (etcd's
 * `--force-new-cluster`). A local action on the data dir: nothing goes over the network.
 *
 * Without `--yes` it prints what it will do and asks for confirmation on a terminal; it refuses
 * when stdin is not one.
 *
 * @module
 */

import { resolve } from "node:path";
import { resolveGroupDataDir } from "../../storage/layout.ts";
import type { RecoverOptions } from "../args.ts";
import { errorLine } from "../output.ts";
import { prepareRecovery, RecoverError, type RecoveryPlan } from "../../counter/recover.ts";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "./_client.ts";

/** What `counter recover` uses from its surroundings; tests pass fakes. */
export interface RecoverDeps {
  /** Prints one line on stdout. */
  out?: (line: string) => void;
  /** Prints one line on stderr. */
  err?: (line: string) => void;
  /** True when stdin is a terminal an operator can answer on. */
  isTerminal?: () => boolean;
  /** Shows `prompt` and reads one line of the answer; null at end of input. */
  ask?: (prompt: string) => Promise<string | null>;
}

/** The answer that confirms the recovery at the prompt. */
export const CONFIRMATION = "yes";

/** Lines describing `plan`, printed before asking. */
export function formatPlan(plan: RecoveryPlan): string[] {
  const members = (list: string[]) => list.length === 0 ? "(none)" : list.join(",");
  return [
    `counter recover will force node ${plan.nodeId} (group ${plan.group}) into a new one-node ` +
    `cluster:`,
    `  data dir        ${plan.dataDir}`,
    `  last entry      index ${plan.lastIndex}, term ${plan.lastTerm}`,
    `  members now     voters ${members(plan.conf.voters)}; learners ${
      members(plan.conf.learners)
    }`,
    `  appends         a configuration naming only ${plan.nodeId}, at index ${plan.entryIndex}, ` +
    `term ${plan.term}`,
    `  cluster id      ${plan.newClusterId} (was ${plan.clusterId || "none"})`,
    "WARNING: increments that only the lost members held are gone for good, and entries this",
    "node holds that the old group never committed will be committed. Run this on ONE survivor",
    "only: the one with the highest last term, then the highest last index. Every other member",
    "must have its data dir wiped and be added back with 'counter serve --join' and",
    "'counter peers add'; one that is not wiped belongs to the old cluster id and is refused.",
  ];
}

/** Lines printed once the recovery is done: what happened, and the next steps. */
export function formatDone(plan: RecoveryPlan): string[] {
  return [
    `recovered: ${plan.nodeId} is now the only voter of cluster ${plan.newClusterId} ` +
    `(entry ${plan.entryIndex}, term ${plan.term})`,
    `next: start it: counter serve --data ${
      plan.rootDir ?? plan.dataDir
    } --id ${plan.nodeId} --conf ` +
    `${plan.nodeId} --group ${plan.group}`,
    `then, for each other machine: wipe its data dir, run counter serve --data DIR --id HOST:PORT ` +
    `--group ${plan.group} --join ${plan.nodeId}, and counter peers add HOST:PORT --peers ` +
    `${plan.nodeId} --group ${plan.group}`,
  ];
}

/** The one JSON line of `counter recover --json`. */
export function formatDoneJson(plan: RecoveryPlan): string {
  return JSON.stringify({
    node: plan.nodeId,
    group: plan.group,
    dataDir: plan.dataDir,
    lastIndex: plan.lastIndex,
    lastTerm: plan.lastTerm,
    index: plan.entryIndex,
    term: plan.term,
    clusterId: plan.newClusterId,
    previousClusterId: plan.clusterId,
    voters: [plan.nodeId],
  });
}

/**
 * Runs `counter recover` and returns the exit status: 0 recovered, 1 failed or declined at the
 * prompt (nothing changed), 2 confirmation needed but stdin is not a terminal (nothing changed).
 *
 * @example Usage
 * ```ts
 * import { parseRecoverArgs } from "../args.ts";
 * import { runRecover } from "./recover.ts";
 *
 * const code = await runRecover(
 *   parseRecoverArgs(["--data", "/var/lib/counter/n1", "--force-new-cluster", "--yes"]),
 * );
 * ```
 */
export async function runRecover(options: RecoverOptions, deps: RecoverDeps = {}): Promise<number> {
  const out = deps.out ?? console.log;
  const err = deps.err ?? console.error;
  const isTerminal = deps.isTerminal ?? (() => Deno.stdin.isTerminal());
  const ask = deps.ask ?? askOnStdin;
  let recovery;
  try {
    // A data root with the multi-group layout: the group's own dir under DATA/groups/.
    const dir = await resolveGroupDataDir(options.dataDir);
    recovery = await prepareRecovery(dir);
    if (dir !== resolve(options.dataDir)) recovery.plan.rootDir = resolve(options.dataDir);
  } catch (error) {
    err(`counter recover: ${error instanceof RecoverError ? error.message : errorLine(error)}`);
    return EXIT_FAILED;
  }
  try {
    const { plan } = recovery;
    if (!options.yes) {
      // The plan goes to stderr so that stdout carries only the result (one JSON line with --json).
      for (const line of formatPlan(plan)) err(line);
      if (!isTerminal()) {
        err(
          "counter recover: refusing to run without --yes: stdin is not a terminal to confirm " +
            "on; nothing changed",
        );
        return EXIT_USAGE;
      }
      const answer = await ask(`Type '${CONFIRMATION}' to force ${plan.nodeId} now: `);
      if (answer?.trim() !== CONFIRMATION) {
        err("counter recover: not confirmed; nothing changed");
        return EXIT_FAILED;
      }
    }
    await recovery.apply();
    if (options.json) out(formatDoneJson(plan));
    else for (const line of formatDone(plan)) out(line);
    return EXIT_OK;
  } catch (error) {
    err(`counter recover: ${errorLine(error)}`);
    return EXIT_FAILED;
  } finally {
    await recovery.close();
  }
}

/** Writes `prompt` on stderr and reads one line from stdin; null at end of input. */
async function askOnStdin(prompt: string): Promise<string | null> {
  await Deno.stderr.write(new TextEncoder().encode(prompt));
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(1024);
  let line = "";
  while (true) {
    const n = await Deno.stdin.read(buffer);
    if (n === null) return line === "" ? null : line;
    line += decoder.decode(buffer.subarray(0, n), { stream: true });
    const end = line.indexOf("\n");
    if (end >= 0) return line.slice(0, end);
  }
}
