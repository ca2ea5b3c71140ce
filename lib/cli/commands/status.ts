/**
 * `counter status`: asks every node of `--peers` directly for its state and prints one row per
 * node, including the nodes that did not answer. When the nodes serve several groups, it also
 * prints each group's leader and how many groups each node leads.
 *
 * @module
 */

import type { WireMap } from "../../transport/codec.ts";
import type { StatusOptions } from "../args.ts";
import { errorLine } from "../output.ts";
import {
  type AdminClientLike,
  type AdminCommandDeps,
  answerIndex,
  answerInt64,
  answerString,
  answerStringList,
  formatTable,
  jsonSafeInteger,
  runAdmin,
} from "./_admin.ts";
import { connectOptions, EXIT_FAILED, EXIT_OK } from "./_client.ts";
import {
  type GroupView,
  noLeaderText,
  probesFromReports,
  summaryLine,
  viewGroup,
} from "./_diagnosis.ts";
import {
  countsText,
  type GroupLeader,
  isBalanced,
  leadersPerNode,
  type LeaderSurvey,
  surveyLeaders,
} from "./_leaders.ts";

/** One node's state, as its `status` answer reports it. */
export interface NodeStatus {
  /** The node's own id. */
  id: string;
  /** Raft role: leader, follower, candidate or pre-candidate. */
  role: string;
  /** Current term. */
  term: number;
  /** The leader this node knows, or "" when it knows none. */
  leader: string;
  /** Highest log index known to be committed. */
  commit: number;
  /** Highest log index applied to the counter. */
  applied: number;
  /** Index of the last entry in the node's log. */
  lastIndex: number;
  /** Term of that entry (0 when the node does not say). */
  lastTerm: number;
  /** The cluster id of the node's data dir, or "" (none yet, or the node does not say). */
  clusterId: string;
  /** Index of the node's newest snapshot (0: none). */
  snapshotIndex: number;
  /** The counter as this node has applied it: a stale read. */
  value: bigint;
  /** Voting members, as this node knows them. */
  voters: string[];
  /** Non-voting members, as this node knows them. */
  learners: string[];
}

/** What asking one node gave: its status, or why there is none. */
export type NodeReport =
  | { node: string; ok: true; status: NodeStatus }
  | { node: string; ok: false; reachable: boolean; error: string };

/** Error codes that mean the node could not be reached or did not answer in time. */
const NO_ANSWER_CODES = new Set(["UNAVAILABLE", "TIMEOUT"]);

/** Reads a `status` answer from `source`. */
export function parseNodeStatus(data: WireMap, source: string): NodeStatus {
  return {
    id: answerString(data, "id", source),
    role: answerString(data, "role", source),
    term: answerIndex(data, "term", source),
    leader: answerString(data, "leader", source, true),
    commit: answerIndex(data, "commit", source),
    applied: answerIndex(data, "applied", source),
    lastIndex: answerIndex(data, "lastIndex", source),
    lastTerm: data.lastTerm === undefined ? 0 : answerIndex(data, "lastTerm", source),
    clusterId: data.clusterId === undefined ? "" : answerString(data, "clusterId", source, true),
    snapshotIndex: answerIndex(data, "snapshotIndex", source),
    value: answerInt64(data, "value", source),
    voters: answerStringList(data, "voters", source),
    learners: answerStringList(data, "learners", source),
  };
}

/** Thrown when a node has not answered within the caller's time limit. */
class NoAnswerError extends Error {
  readonly code = "TIMEOUT";
}

/** `promise`, or a {@linkcode NoAnswerError} if it has not settled after `timeoutMs`. */
async function within<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new NoAnswerError(`no answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Asks every node of `peers` for its status at once; never rejects. A node that has not answered
 * after `timeoutMs` (default: as long as the client waits) is reported as unreachable. A node's
 * error message loses the `HOST:PORT: ` prefix the client puts on it, since the report names the
 * node anyway.
 */
export async function collectStatuses(
  client: AdminClientLike,
  peers: readonly string[],
  timeoutMs?: number,
): Promise<NodeReport[]> {
  return await Promise.all(peers.map(async (node): Promise<NodeReport> => {
    try {
      // ---- Call into the service: one node, no redirects. ----
      const asked = client.admin("status", {}, { peer: node });
      // An abandoned call ends when the caller closes the client.
      asked.catch(() => {});
      const { data } = timeoutMs === undefined ? await asked : await within(asked, timeoutMs);
      return { node, ok: true, status: parseNodeStatus(data, node) };
    } catch (error) {
      const code = (error as { code?: unknown } | null)?.code;
      const reachable = typeof code !== "string" || !NO_ANSWER_CODES.has(code);
      let message = errorLine(error);
      if (message.startsWith(`${node}: `)) message = message.slice(node.length + 2);
      return { node, ok: false, reachable, error: message };
    }
  }));
}

/** Longest reason shown in a row of a node that did not answer, so rows fit 80 columns. */
const ROW_REASON_CHARS_MAX = 40;

/**
 * The text of `counter status`: a summary line (leader, quorum, health), then one row per node,
 * unanswered nodes included (as `down`, or `failed` when they answered with an error). A node's
 * VALUE is its own applied state; the leader's is current, and a node behind the leader's commit
 * index is marked `(behind)`.
 */
export function formatStatusText(reports: readonly NodeReport[]): string[] {
  const view = viewGroup(probesFromReports(reports));
  const leaderCommit = reports.find((r) => r.ok && r.status.id === view.leader);
  const commit = leaderCommit?.ok ? leaderCommit.status.commit : null;
  const rows: string[][] = [
    ["NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAST", "SNAP", "VALUE"],
  ];
  for (const report of reports) {
    if (!report.ok) {
      const reason = report.error.length > ROW_REASON_CHARS_MAX
        ? `${report.error.slice(0, ROW_REASON_CHARS_MAX - 3)}...`
        : report.error;
      rows.push([report.node, report.reachable ? "failed" : "down", `(${reason})`]);
      continue;
    }
    const s = report.status;
    const behind = commit !== null && s.id !== view.leader && s.applied < commit;
    rows.push([
      s.id,
      s.role,
      String(s.term),
      String(s.commit),
      String(s.applied),
      String(s.lastIndex),
      String(s.snapshotIndex),
      `${s.value}${behind ? " (behind)" : ""}`,
    ]);
  }
  return [summaryLine(view), ...formatTable(rows)];
}

/**
 * The lines about the groups, when the nodes serve more than one: how many groups each node
 * leads, whether that is balanced (⌊G/N⌋ or ⌈G/N⌉ each), and each group's leader and term.
 */
export function formatGroupsText(
  groups: readonly GroupLeader[],
  nodes: readonly string[],
): string[] {
  const counts = leadersPerNode(groups, nodes);
  const leaderless = groups.filter((g) => g.leader === null).length;
  const rows: string[][] = [["GROUP", "LEADER", "TERM"]];
  for (const g of groups) rows.push([g.group, g.leader ?? "-", String(g.term)]);
  return [
    `${groups.length} groups; leaders per node: ${countsText(counts)}` +
    `${isBalanced(counts) ? " (balanced)" : " (unbalanced: see 'counter leader balance')"}` +
    (leaderless > 0 ? `; ${leaderless} without a leader` : ""),
    ...formatTable(rows),
  ];
}

/** The groups' part of `counter status --json`, or nothing for a node of one group. */
function groupsJson(
  survey: LeaderSurvey | null,
  nodes: readonly string[],
): Record<string, unknown> {
  if (survey === null || survey.groups.length <= 1) return {};
  const counts = leadersPerNode(survey.groups, nodes);
  return {
    groups: survey.groups,
    leadersPerNode: Object.fromEntries(counts),
    balanced: isBalanced(counts),
  };
}

/** The one JSON line of `counter status --json`. */
export function formatStatusJson(
  reports: readonly NodeReport[],
  survey: LeaderSurvey | null = null,
): string {
  const nodes = reports.map((report) => {
    if (!report.ok) {
      return { node: report.node, ok: false, reachable: report.reachable, error: report.error };
    }
    const s = report.status;
    return {
      node: report.node,
      ok: true,
      id: s.id,
      role: s.role,
      term: s.term,
      leader: s.leader,
      commit: s.commit,
      applied: s.applied,
      lastIndex: s.lastIndex,
      lastTerm: s.lastTerm,
      snapshotIndex: s.snapshotIndex,
      value: jsonSafeInteger(s.value),
      clusterId: s.clusterId,
      voters: s.voters,
      learners: s.learners,
    };
  });
  const view = viewGroup(probesFromReports(reports));
  return JSON.stringify({
    leader: view.leader,
    term: view.term,
    votersUp: view.votersUp.length,
    voters: view.voters.length,
    quorum: view.quorum,
    healthy: isHealthy(view),
    nodes,
    ...groupsJson(survey, reports.map((r) => r.node)),
  });
}

/** True when a leader answers and a quorum of voters is up. */
function isHealthy(view: GroupView): boolean {
  return view.leader !== null && view.votersUp.length >= view.quorum;
}

/**
 * Runs `counter status` and returns the exit status: 0 when a leader answers and a quorum of
 * voters is up (some nodes may be down), 1 otherwise, with the reason on stderr (text output).
 *
 * @example Usage
 * ```ts
 * import { parseStatusArgs } from "../args.ts";
 * import { runStatus } from "./status.ts";
 *
 * const code = await runStatus(parseStatusArgs(["--json"]));
 * ```
 */
export async function runStatus(
  options: StatusOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  return await runAdmin(
    "status",
    connectOptions(options),
    deps,
    async (client, io) => {
      const [reports, survey] = await Promise.all([
        collectStatuses(client, options.peers),
        // Nodes of one group, and nodes from before groups, answer with one group or none.
        surveyLeaders(client, options.peers),
      ]);
      if (options.json) io.out(formatStatusJson(reports, survey));
      else {
        for (const line of formatStatusText(reports)) io.out(line);
        if (survey.groups.length > 1) {
          for (const line of formatGroupsText(survey.groups, options.peers)) io.out(line);
        }
      }
      const view = viewGroup(probesFromReports(reports));
      if (isHealthy(view)) return EXIT_OK;
      if (!options.json) io.err(`counter status: ${noLeaderText(view)}`);
      return EXIT_FAILED;
    },
    undefined,
    options.json,
  );
}
