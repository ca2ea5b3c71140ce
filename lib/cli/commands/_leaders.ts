/**
 * The leaders of every group the nodes serve (`counter serve --groups`), how many each node
 * holds, and the plan that spreads them evenly: what `counter leader balance` and `counter
 * status` share.
 *
 * With G groups whose leaders may be any of the same N voters, an even spread gives every voter
 * ⌊G/N⌋ or ⌈G/N⌉ leaders. Leadership moves with the `transfer_leader` op of each group.
 *
 * @module
 */

import { errorLine } from "../output.ts";
import type { AdminClientLike } from "./_admin.ts";
import { type GroupRow, parseGroups } from "./groups.ts";
import { parseNodeStatus } from "./status.ts";

/** One group's leader, as the nodes in its latest term report it. */
export interface GroupLeader {
  /** The group's name. */
  group: string;
  /** Its leader, or null when no answering node in the latest term knows one. */
  leader: string | null;
  /** The highest term any answering node reports for the group. */
  term: number;
}

/** What asking every node for its groups gave. */
export interface LeaderSurvey {
  /** Every group some node serves, sorted by name. */
  groups: GroupLeader[];
  /** The nodes that answered, in the order asked. */
  answered: string[];
  /** The nodes that did not, with why. */
  failed: { node: string; error: string }[];
}

/**
 * Asks every node of `peers` which groups it serves, with its role, leader and term in each
 * (the host's `groups` op), and names each group's leader: the node that says it leads in the
 * group's highest term, else the leader the nodes in that term name. Never rejects.
 */
export async function surveyLeaders(
  client: AdminClientLike,
  peers: readonly string[],
): Promise<LeaderSurvey> {
  const answers = await Promise.all(peers.map(async (node) => {
    try {
      // ---- Call into the service: one node, no redirects. ----
      const { data } = await client.admin("groups", {}, { peer: node });
      return { node, rows: parseGroups(data, node) };
    } catch (error) {
      let message = errorLine(error);
      if (message.startsWith(`${node}: `)) message = message.slice(node.length + 2);
      return { node, error: message };
    }
  }));
  const byGroup = new Map<string, { node: string; row: GroupRow }[]>();
  for (const answer of answers) {
    for (const row of answer.rows ?? []) {
      const seen = byGroup.get(row.name) ?? [];
      seen.push({ node: answer.node, row });
      byGroup.set(row.name, seen);
    }
  }
  const groups = [...byGroup.keys()].sort().map((group): GroupLeader => {
    const seen = byGroup.get(group)!;
    const term = Math.max(...seen.map((s) => s.row.term));
    const latest = seen.filter((s) => s.row.term === term);
    const self = latest.find((s) => s.row.role === "leader");
    const named = latest.find((s) => s.row.leader !== "");
    return { group, leader: self?.node ?? named?.row.leader ?? null, term };
  });
  return {
    groups,
    answered: answers.flatMap((a) => a.rows === undefined ? [] : [a.node]),
    failed: answers.flatMap((a) => a.error === undefined ? [] : [{ node: a.node, error: a.error }]),
  };
}

/** How many of `groups` each of `nodes` leads (0 for those leading none), in `nodes` order. */
export function leadersPerNode(
  groups: readonly GroupLeader[],
  nodes: readonly string[],
): Map<string, number> {
  const counts = new Map<string, number>(nodes.map((node) => [node, 0]));
  for (const { leader } of groups) {
    if (leader !== null) counts.set(leader, (counts.get(leader) ?? 0) + 1);
  }
  return counts;
}

/** True when no node leads two or more groups more than another: ⌊G/N⌋ or ⌈G/N⌉ each. */
export function isBalanced(counts: ReadonlyMap<string, number>): boolean {
  if (counts.size === 0) return true;
  const values = [...counts.values()];
  return Math.max(...values) - Math.min(...values) <= 1;
}

/** `counts` as one line: `A 22, B 21, C 21`. */
export function countsText(counts: ReadonlyMap<string, number>): string {
  return [...counts].map(([node, count]) => `${node} ${count}`).join(", ");
}

/** A group whose leadership can move: its leader now and its voters. */
export interface BalanceInput {
  /** The group's name. */
  group: string;
  /** Its leader now. */
  leader: string;
  /** Its voting members (the leader among them); only these can lead it. */
  voters: readonly string[];
}

/** One leadership transfer of a plan. */
export interface LeaderMove {
  /** The group. */
  group: string;
  /** Its leader now. */
  from: string;
  /** The voter to hand leadership to. */
  to: string;
}

/**
 * The transfers that spread the leaders of `groups` over their voters as evenly as their
 * voters allow: while some node leads at least two more groups than a voter of one of them, one
 * such group moves to its least loaded voter. Each move lowers the sum of squared counts, so the
 * plan ends; with every group on the same N voters it ends at ⌊G/N⌋ or ⌈G/N⌉ leaders each. A
 * group moves at most once. Pure: the caller carries the moves out.
 */
export function planBalance(groups: readonly BalanceInput[]): LeaderMove[] {
  const counts = new Map<string, number>();
  for (const g of groups) for (const voter of g.voters) counts.set(voter, 0);
  const ledBy = new Map<string, BalanceInput[]>();
  for (const g of groups) {
    counts.set(g.leader, (counts.get(g.leader) ?? 0) + 1);
    ledBy.set(g.leader, [...(ledBy.get(g.leader) ?? []), g]);
  }
  const moves: LeaderMove[] = [];
  // Each move lowers the sum of squares by at least 2; this bound is never reached.
  for (let round = 0; round < groups.length; round++) {
    const donors = [...counts.keys()].sort((a, b) => counts.get(b)! - counts.get(a)!);
    let move: { g: BalanceInput; to: string } | null = null;
    for (const from of donors) {
      const load = counts.get(from)!;
      for (const g of ledBy.get(from) ?? []) {
        let to: string | null = null;
        for (const voter of g.voters) {
          if (voter === from || counts.get(voter)! > load - 2) continue;
          if (to === null || counts.get(voter)! < counts.get(to)!) to = voter;
        }
        if (to !== null) {
          move = { g, to };
          break;
        }
      }
      if (move !== null) break;
    }
    if (move === null) break;
    const { g, to } = move;
    ledBy.set(g.leader, ledBy.get(g.leader)!.filter((x) => x !== g));
    counts.set(g.leader, counts.get(g.leader)! - 1);
    counts.set(to, counts.get(to)! + 1);
    moves.push({ group: g.group, from: g.leader, to });
  }
  return moves;
}

/**
 * The voters of each group that has a leader, asked of that leader (the group's `status`);
 * a group whose leader does not answer is left out, with why.
 */
export async function groupVoters(
  client: AdminClientLike,
  groups: readonly GroupLeader[],
): Promise<{ inputs: BalanceInput[]; failed: { group: string; error: string }[] }> {
  const inputs: BalanceInput[] = [];
  const failed: { group: string; error: string }[] = [];
  await Promise.all(groups.map(async ({ group, leader }) => {
    if (leader === null) {
      failed.push({ group, error: "no leader" });
      return;
    }
    try {
      // ---- Call into the service: the group's leader, no redirects. ----
      const { data } = await client.admin("status", {}, { peer: leader, group });
      inputs.push({ group, leader, voters: parseNodeStatus(data, leader).voters });
    } catch (error) {
      failed.push({ group, error: errorLine(error) });
    }
  }));
  const byName = (a: { group: string }, b: { group: string }) => a.group < b.group ? -1 : 1;
  return { inputs: inputs.sort(byName), failed: failed.sort(byName) };
}
