/**
 * `counter leader`: names the group's leader; `counter leader transfer HOST:PORT` moves the
 * leadership to another voter; `counter leader balance` spreads the leaders of every group the
 * nodes serve evenly over the voters.
 *
 * @module
 */

import type { LeaderOptions } from "../args.ts";
import { type AdminCommandDeps, answerString, BadAnswerError, runAdmin } from "./_admin.ts";
import { connectOptions, EXIT_OK } from "./_client.ts";
import { collectStatuses, type NodeReport } from "./status.ts";
import { blockingProblem, probesFromReports, viewGroup } from "./_diagnosis.ts";
import {
  countsText,
  groupVoters,
  isBalanced,
  type LeaderMove,
  leadersPerNode,
  planBalance,
  surveyLeaders,
} from "./_leaders.ts";
import { errorLine } from "../output.ts";
import { EXIT_FAILED, EXIT_UNKNOWN, outcomeOf } from "./_client.ts";
import type { AdminClientLike, ResolvedAdminDeps } from "./_admin.ts";

/** Pause between two rounds of questions while no leader is known (an election is under way). */
const ROUND_INTERVAL_MS = 100;

/**
 * A round of questions is only started with at least this long left: a round with a few ms left
 * would time out everywhere and report the nodes unreachable rather than why there is no leader.
 */
const ROUND_ANSWER_MS_MIN = 250;

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
 * have heard yet that it was replaced. So is a leader that was asked and did not answer: its
 * followers may not have noticed yet that it is gone (null then: ask again).
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
  if (leader === undefined) return null;
  const own = reports.find((report) => report.node === leader);
  if (own !== undefined && !own.ok) return null;
  return { leader, term };
}

/** Transfers run at once at most; each waits for its target to catch up and take over. */
const TRANSFERS_IN_FLIGHT_MAX = 8;

/** How one planned transfer ended. */
interface MoveResult extends LeaderMove {
  /** "ok", "failed" (certainly not moved) or "unknown" (may still move). */
  outcome: "ok" | "failed" | "unknown";
  /** Why it did not end "ok". */
  error?: string;
}

/** Carries out `moves`, at most {@linkcode TRANSFERS_IN_FLIGHT_MAX} at a time. */
async function transferAll(
  client: AdminClientLike,
  moves: readonly LeaderMove[],
): Promise<MoveResult[]> {
  const results: MoveResult[] = new Array(moves.length);
  let next = 0;
  const worker = async () => {
    while (next < moves.length) {
      const k = next++;
      const move = moves[k];
      try {
        // ---- Call into the service: the group's leader answers once `to` has taken over. ----
        const answer = await client.admin("transfer_leader", { node: move.to }, {
          peer: move.from,
          group: move.group,
        });
        const leader = answerString(answer.data, "leader", answer.leader);
        results[k] = leader === move.to
          ? { ...move, outcome: "ok" }
          : { ...move, outcome: "failed", error: `the leader is ${leader}` };
      } catch (error) {
        results[k] = { ...move, outcome: outcomeOf(error), error: errorLine(error) };
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(TRANSFERS_IN_FLIGHT_MAX, moves.length) }, worker),
  );
  return results;
}

/**
 * `counter leader balance`: asks every node of `peers` for the leaders of its groups, plans the
 * transfers that spread them evenly over each group's voters, carries them out, and prints the
 * leaders per node before and after. Exit 0 when every transfer succeeded, 1 when some failed
 * (or a node did not answer), 3 when some outcome is unknown.
 */
async function balance(
  peers: readonly string[],
  json: boolean,
  client: AdminClientLike,
  io: ResolvedAdminDeps,
): Promise<number> {
  const before = await surveyLeaders(client, peers);
  if (before.answered.length === 0) {
    throw new NoLeaderError(
      `no node answered (${before.failed.map((f) => `${f.node}: ${f.error}`).join("; ")})`,
    );
  }
  const voters = await groupVoters(client, before.groups);
  const nodes = [...new Set([...peers, ...voters.inputs.flatMap((g) => g.voters)])];
  const countsBefore = leadersPerNode(before.groups, nodes);
  const moves = planBalance(voters.inputs);
  if (!json) {
    io.out(
      `before: ${countsText(countsBefore)} (${before.groups.length} groups` +
        `${isBalanced(countsBefore) ? ", balanced" : ""})`,
    );
    for (const f of voters.failed) io.out(`  ${f.group}: left as is (${f.error})`);
    io.out(moves.length === 0 ? "nothing to move" : `moving ${moves.length} leaders`);
  }
  const results = await transferAll(client, moves);
  const after = await surveyLeaders(client, peers);
  const countsAfter = leadersPerNode(after.groups, nodes);
  if (json) {
    io.out(JSON.stringify({
      groups: before.groups.length,
      before: Object.fromEntries(countsBefore),
      after: Object.fromEntries(countsAfter),
      balanced: isBalanced(countsAfter),
      moves: results,
      skipped: voters.failed,
      failedNodes: before.failed,
    }));
  } else {
    for (const r of results) {
      io.out(
        `  ${r.group}: ${r.from} -> ${r.to}` +
          (r.outcome === "ok"
            ? ""
            : ` ${r.outcome === "unknown" ? "unknown" : "failed"}: ${r.error}`),
      );
    }
    io.out(
      `after: ${countsText(countsAfter)}${isBalanced(countsAfter) ? " (balanced)" : ""}`,
    );
  }
  for (const f of before.failed) io.err(`counter leader balance: ${f.node}: ${f.error}`);
  if (results.some((r) => r.outcome === "unknown")) return EXIT_UNKNOWN;
  if (results.some((r) => r.outcome === "failed") || before.failed.length > 0) return EXIT_FAILED;
  return EXIT_OK;
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
  if (options.action === "balance") {
    return await runAdmin(
      "leader balance",
      connectOptions(options),
      deps,
      (client, io) => balance(options.peers, options.json, client, io),
      "outcome unknown: some leadership may still move; see 'counter status'",
      options.json,
    );
  }
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
        if (Date.now() + ROUND_INTERVAL_MS + ROUND_ANSWER_MS_MIN >= deadlineMs) {
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
