/**
 * `counter peers`: lists the group's members, adds, removes and promotes one, and, as a last
 * resort, resets the membership of a group that lost its majority for good.
 *
 * @module
 */

import type { WireMap } from "../../transport/codec.ts";
import type { PeersOptions } from "../args.ts";
import { errorLine } from "../output.ts";
import {
  type AdminCommandDeps,
  answerAsMap,
  answerConfiguration,
  answerIndex,
  answerString,
  BadAnswerError,
  type Configuration,
  formatConfiguration,
  formatTable,
  resolveAdminDeps,
  runAdmin,
} from "./_admin.ts";
import {
  connectOptions,
  EXIT_FAILED,
  EXIT_OK,
  EXIT_UNKNOWN,
  EXIT_USAGE,
  type Outcome,
  outcomeOf,
} from "./_client.ts";

/** One member, as the leader sees it. */
export interface Member {
  /** The member's id. */
  id: string;
  /** "leader", "follower" (a voter) or "learner". */
  role: string;
  /** Highest log index known to be replicated on the member. */
  match: number;
  /** Entries the member is behind the leader's log. */
  lag: number;
  /** How the leader replicates to it: "probe", "replicate", "snapshot"; "self" for the leader. */
  state: string;
}

/** The `peers` answer: the members, from the leader's view. */
export interface MemberList {
  /** The leader that answered. */
  leader: string;
  /** Its term. */
  term: number;
  /** Voters first, then learners. */
  members: Member[];
}

/** Upper bound on the members of one answer; a larger group is a broken answer. */
const MEMBERS_MAX = 1024;

/** Reads a `peers` answer from `source`. */
export function parseMemberList(data: WireMap, source: string): MemberList {
  const members = data.members;
  if (!Array.isArray(members) || members.length > MEMBERS_MAX) {
    throw new BadAnswerError(source, `members is not a list of at most ${MEMBERS_MAX}`);
  }
  return {
    leader: answerString(data, "leader", source),
    term: answerIndex(data, "term", source),
    members: members.map((item, k) => {
      const member = answerAsMap(item, `members[${k}]`, source);
      return {
        id: answerString(member, "id", source),
        role: answerString(member, "role", source),
        match: answerIndex(member, "match", source),
        lag: answerIndex(member, "lag", source),
        state: answerString(member, "state", source),
      };
    }),
  };
}

/** The text table of `counter peers list`. */
export function formatMemberTable(list: MemberList): string[] {
  return formatTable([
    ["ID", "ROLE", "MATCH", "LAG", "STATE"],
    ...list.members.map((m) => [
      m.id,
      m.role,
      String(m.match),
      String(m.lag),
      m.state === "self" ? "-" : m.state,
    ]),
  ]);
}

/**
 * What makes `action` on `node` a no-op in `list`: "a voter", "a learner" or "not a member";
 * null when the change is still to be made. `add --learner` of a voter is not a demotion.
 */
export function alreadyDone(
  action: "add" | "remove" | "promote",
  node: string,
  list: MemberList,
  learner: boolean,
): string | null {
  const member = list.members.find((m) => m.id === node);
  const isVoter = member !== undefined && member.role !== "learner";
  switch (action) {
    case "add":
      if (isVoter) return "a voter";
      return learner && member !== undefined ? "a learner" : null;
    case "promote":
      return isVoter ? "a voter" : null;
    case "remove":
      return member === undefined ? "not a member" : null;
  }
}

/** The voters and learners of `list`. */
function configurationOf(list: MemberList): Configuration {
  return {
    voters: list.members.filter((m) => m.role !== "learner").map((m) => m.id),
    learners: list.members.filter((m) => m.role === "learner").map((m) => m.id),
  };
}

/** What a forced reset did on one node. */
export type ResetReport =
  | { node: string; ok: true; conf: Configuration }
  | { node: string; ok: false; outcome: Outcome; error: string };

/** Why `counter peers reset` refuses to run without `--force`; printed on stderr. */
export const RESET_REFUSAL: readonly string[] = [
  "counter peers reset: refusing to run without --force, because:",
  "  - it replaces each listed node's membership without consensus;",
  "  - acknowledged increments that only the lost nodes held may be lost;",
  "  - it is only for a group whose majority is gone for good: while a majority",
  "    is up, or can be brought back, use 'counter peers remove' instead;",
  "  - run it on every surviving node with the same HOST:PORT,... list, and never",
  "    restart a lost node with its old data.",
];

/** The text of `counter peers reset`: one row per node. */
export function formatResetText(reports: readonly ResetReport[]): string[] {
  return formatTable(
    reports.map((report) =>
      report.ok
        ? [report.node, "reset", `voters: ${report.conf.voters.join(",")}`]
        : [report.node, report.outcome === "unknown" ? "unknown" : "failed", report.error]
    ),
  );
}

/** The one JSON line of `counter peers reset --json`. */
export function formatResetJson(
  voters: readonly string[],
  reports: readonly ResetReport[],
): string {
  const nodes = reports.map((report) =>
    report.ok
      ? { node: report.node, ok: true, voters: report.conf.voters }
      : { node: report.node, ok: false, outcome: report.outcome, error: report.error }
  );
  return JSON.stringify({ voters, nodes });
}

async function runReset(
  options: PeersOptions & { action: "reset" },
  deps: AdminCommandDeps,
): Promise<number> {
  if (!options.force) {
    const { err } = resolveAdminDeps(deps);
    for (const line of RESET_REFUSAL) err(line);
    return EXIT_USAGE;
  }
  return await runAdmin(
    "peers reset",
    connectOptions(options),
    deps,
    async (client, io) => {
      const args = { voters: options.voters, force: true };
      // Each node is told on its own: without a majority there is no leader to go through.
      const reports = await Promise.all(options.voters.map(async (node): Promise<ResetReport> => {
        try {
          // ---- Call into the service: one node, no redirects. ----
          const { data } = await client.admin("reset_peers", args, { peer: node });
          return { node, ok: true, conf: answerConfiguration(data, node) };
        } catch (error) {
          let message = errorLine(error);
          if (message.startsWith(`${node}: `)) message = message.slice(node.length + 2);
          return { node, ok: false, outcome: outcomeOf(error), error: message };
        }
      }));
      if (options.json) io.out(formatResetJson(options.voters, reports));
      else for (const line of formatResetText(reports)) io.out(line);
      if (reports.some((report) => !report.ok && report.outcome === "unknown")) return EXIT_UNKNOWN;
      return reports.every((report) => report.ok) ? EXIT_OK : EXIT_FAILED;
    },
    undefined,
    options.json,
  );
}

/** Admin operation of each membership change. */
const CHANGE_OPS = { add: "add_peer", remove: "remove_peer", promote: "promote_peer" } as const;

/**
 * Runs `counter peers` and returns the exit status: 0 success, 1 failed, 2 a reset without
 * `--force`, 3 outcome unknown (a change that may still be applied).
 *
 * @example Usage
 * ```ts
 * import { parsePeersArgs } from "../args.ts";
 * import { runPeers } from "./peers.ts";
 *
 * const code = await runPeers(parsePeersArgs(["add", "127.0.0.1:8084"]));
 * ```
 */
export async function runPeers(
  options: PeersOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  switch (options.action) {
    case "list":
      return await runAdmin(
        "peers list",
        connectOptions(options),
        deps,
        async (client, io) => {
          // ---- Call into the service: the leader answers, after redirects. ----
          const { data, leader } = await client.admin("peers");
          const list = parseMemberList(data, leader);
          if (options.json) io.out(JSON.stringify(list));
          else for (const line of formatMemberTable(list)) io.out(line);
          return EXIT_OK;
        },
        undefined,
        options.json,
      );
    case "add":
    case "remove":
    case "promote": {
      const op = CHANGE_OPS[options.action];
      const args: WireMap = { node: options.node };
      if (options.action === "add" && options.learner) args.learner = true;
      return await runAdmin(
        `peers ${options.action}`,
        connectOptions(options),
        deps,
        async (client, io) => {
          // A repeat of a change that is already in place succeeds, and says so: scripts and
          // operators may run `peers add` twice. The check and the change are not atomic; a
          // change that races with another one is refused by the leader.
          const current = await client.admin("peers");
          const list = parseMemberList(current.data, current.leader);
          const already = alreadyDone(options.action, options.node, list, args.learner === true);
          if (already !== null) {
            const conf = configurationOf(list);
            if (options.json) {
              io.out(JSON.stringify({ ...conf, leader: list.leader, already }));
            } else {
              io.out(`${options.node} is already ${already}`);
              for (const line of formatConfiguration(conf)) io.out(line);
            }
            return EXIT_OK;
          }
          // ---- Call into the service: the leader answers once the change is committed. ----
          const { data, leader } = await client.admin(op, args);
          const conf = answerConfiguration(data, leader);
          if (options.json) io.out(JSON.stringify({ ...conf, leader }));
          else for (const line of formatConfiguration(conf)) io.out(line);
          return EXIT_OK;
        },
        "outcome unknown: the change may or may not have been applied; see 'counter peers list'",
        options.json,
      );
    }
    case "reset":
      return await runReset(options, deps);
  }
}
