/**
 * `counter leader`: names the group's leader; `counter leader transfer HOST:PORT` moves the
 * leadership to another voter.
 *
 * @module
 */

import type { LeaderOptions } from "../args.ts";
import { type AdminCommandDeps, answerString, BadAnswerError, runAdmin } from "./_admin.ts";
import { connectOptions, EXIT_OK } from "./_client.ts";
import { collectStatuses, type NodeReport } from "./status.ts";
import { blockingProblem, probesFromReports, viewGroup } from "./_diagnosis.ts";

/** Pause between two rounds of questions while no leader is known (an election is under way). */
const ROUND_INTERVAL_MS = 100;

/** The leader the nodes agree on. */
export interface AgreedLeader {
  /** The leader's id. */
  leader: string;
  /** The term it leads in: the highest any answering node is in. */
  term: number;
}

/** Why no leader could be named: nobody answered, or no leader is known in the latest term. */
class NoLeaderError extends Error {
  readonly code = "NO_LEADER";
  readonly outcome = "failed";
}

/**
 * The leader named by the answering nodes that are in the highest term any of them reports, or
 * null when none of those knows a leader yet. A leader of an older term is ignored: it may not
 * have heard yet that it was replaced.
 *
 * @throws {Error} when no node answered, or when two nodes name different leaders for the same
 * term, which Raft rules out.
 */
export function agreedLeader(reports: readonly NodeReport[]): AgreedLeader | null {
  const statuses = reports.flatMap((report) => report.ok ? [report.status] : []);
  if (statuses.length === 0) {
    const problem = blockingProblem(viewGroup(probesFromReports(reports)));
    const reasons = reports.map((report) => report.ok ? "" : `${report.node}: ${report.error}`);
    throw new NoLeaderError(problem ?? `no node answered (${reasons.join("; ")})`);
  }
  const term = Math.max(...statuses.map((status) => status.term));
  const named = new Map<string, string[]>();
  for (const status of statuses) {
    if (status.term !== term || status.leader === "") continue;
    named.set(status.leader, [...(named.get(status.leader) ?? []), status.id]);
  }
  if (named.size > 1) {
    const claims = [...named].map(([leader, ids]) => `${leader} by ${ids.join(",")}`);
    throw new Error(`nodes in term ${term} name different leaders: ${claims.join("; ")}`);
  }
  const [leader] = named.keys();
  return leader === undefined ? null : { leader, term };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Runs `counter leader` or `counter leader transfer` and returns the exit status: 0 success,
 * 1 failed, 3 outcome unknown (a transfer that may still happen).
 *
 * @example Usage
 * ```ts
 * import { parseLeaderArgs } from "../args.ts";
 * import { runLeader } from "./leader.ts";
 *
 * const code = await runLeader(parseLeaderArgs(["transfer", "127.0.0.1:8082"]));
 * ```
 */
export async function runLeader(
  options: LeaderOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  if (options.action === "transfer") {
    const target = options.node;
    return await runAdmin(
      "leader transfer",
      connectOptions(options),
      deps,
      async (client, io) => {
        // ---- Call into the service: the leader answers once `target` has taken over. ----
        const answer = await client.admin("transfer_leader", { node: target });
        const leader = answerString(answer.data, "leader", answer.leader);
        if (leader !== target) {
          throw new BadAnswerError(answer.leader, `the leader is ${leader}, not ${target}`);
        }
        io.out(options.json ? JSON.stringify({ leader }) : leader);
        return EXIT_OK;
      },
      "outcome unknown: leadership may still move; see 'counter leader'",
      options.json,
    );
  }
  return await runAdmin(
    "leader",
    connectOptions(options),
    deps,
    async (client, io) => {
      const deadlineMs = Date.now() + options.timeoutMs;
      for (;;) {
        const remainingMs = Math.max(1, deadlineMs - Date.now());
        const reports = await collectStatuses(client, options.peers, remainingMs);
        const agreed = agreedLeader(reports);
        if (agreed !== null) {
          io.out(options.json ? JSON.stringify(agreed) : agreed.leader);
          return EXIT_OK;
        }
        if (Date.now() + ROUND_INTERVAL_MS >= deadlineMs) {
          // Whether an election can succeed at all: only with a quorum of voters up.
          const view = viewGroup(probesFromReports(reports));
          throw new NoLeaderError(
            blockingProblem(view) ??
              `no leader known within ${options.timeoutMs} ms: ${view.votersUp.length} of ` +
                `${view.voters.length} voters reachable (need ${view.quorum}); an election may ` +
                `be under way`,
          );
        }
        await sleep(ROUND_INTERVAL_MS);
      }
    },
    undefined,
    options.json,
  );
}
