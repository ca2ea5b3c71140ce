/**
 * `counter peers`: lists the group's members, adds, removes and promotes one. (A group that
 * lost its majority for good is recovered with `counter recover`, on a stopped node's data dir.)
 *
 * @module
 */

import type { WireMap } from "../../transport/codec.ts";
import type { PeersOptions } from "../args.ts";
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
  runAdmin,
} from "./_admin.ts";
import { connectOptions, EXIT_OK } from "./_client.ts";
import { collectStatuses } from "./status.ts";

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
  /** True when the member did not answer a status request (`peers list` asks each). */
  down?: true;
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

/** How long `peers list` waits for each member's status. */
const MEMBER_PROBE_TIMEOUT_MS = 1000;

/** The text table of `counter peers list`; a member that did not answer shows STATE `down`. */
export function formatMemberTable(list: MemberList): string[] {
  return formatTable([
    ["ID", "ROLE", "MATCH", "LAG", "STATE"],
    ...list.members.map((m) => [
      m.id,
      m.role,
      String(m.match),
      String(m.lag),
      m.down ? "down" : m.state === "self" ? "-" : m.state,
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

/** Admin operation of each membership change. */
const CHANGE_OPS = { add: "add_peer", remove: "remove_peer", promote: "promote_peer" } as const;

/**
 * Runs `counter peers` and returns the exit status: 0 success, 1 failed, 3 outcome unknown (a
 * change that may still be applied).
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
          // The leader's view says how it replicates, not whether a member is up: ask each.
          const others = list.members.map((m) => m.id).filter((id) => id !== list.leader);
          const reports = await collectStatuses(client, others, MEMBER_PROBE_TIMEOUT_MS);
          const down = new Set(reports.flatMap((r) => !r.ok && !r.reachable ? [r.node] : []));
          for (const m of list.members) if (down.has(m.id)) m.down = true;
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
  }
}
