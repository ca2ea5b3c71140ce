/**
 * `counter groups`: lists, creates and removes the groups the nodes serve, asking each node
 * directly (the set of groups is each node's, not a group's replicated state).
 *
 * @module
 */

import type { GroupsOptions } from "../args.ts";
import { errorLine } from "../output.ts";
import type { WireMap } from "../../transport/codec.ts";
import {
  type AdminClientLike,
  type AdminCommandDeps,
  answerAsMap,
  answerIndex,
  answerString,
  BadAnswerError,
  formatTable,
  runAdmin,
} from "./_admin.ts";
import { connectOptions, EXIT_FAILED, EXIT_OK, EXIT_UNKNOWN, outcomeOf } from "./_client.ts";

/** One node's answer, or why it gave none. */
type Report<T> = { node: string; ok: true; value: T } | {
  node: string;
  ok: false;
  error: string;
  unknown: boolean;
};

/** One group as a node serves it. */
interface GroupRow {
  name: string;
  role: string;
  leader: string;
  term: number;
}

/** Asks every node of `nodes` with `ask`, at once; each answers for itself. */
async function askEach<T>(
  nodes: readonly string[],
  ask: (node: string) => Promise<T>,
): Promise<Report<T>[]> {
  return await Promise.all(nodes.map(async (node): Promise<Report<T>> => {
    try {
      return { node, ok: true, value: await ask(node) };
    } catch (error) {
      let message = errorLine(error);
      if (message.startsWith(`${node}: `)) message = message.slice(node.length + 2);
      return { node, ok: false, error: message, unknown: outcomeOf(error) === "unknown" };
    }
  }));
}

function exitOf(reports: Report<unknown>[]): number {
  if (reports.some((r) => !r.ok && r.unknown)) return EXIT_UNKNOWN;
  return reports.some((r) => !r.ok) ? EXIT_FAILED : EXIT_OK;
}

function parseGroups(data: WireMap, node: string): GroupRow[] {
  const list = data.groups;
  if (!Array.isArray(list)) throw new BadAnswerError(node, "groups is not a list");
  return list.map((item) => {
    const g = answerAsMap(item, "a group", node);
    return {
      name: answerString(g, "name", node),
      role: answerString(g, "role", node),
      leader: answerString(g, "leader", node, true),
      term: answerIndex(g, "term", node),
    };
  });
}

async function list(
  options: GroupsOptions,
  client: AdminClientLike,
  out: (line: string) => void,
): Promise<number> {
  const reports = await askEach(options.peers, async (node) => {
    const { data } = await client.admin("groups", {}, { peer: node });
    return parseGroups(data, node);
  });
  if (options.json) {
    out(JSON.stringify({
      nodes: reports.map((r) =>
        r.ok ? { node: r.node, groups: r.value } : { node: r.node, error: r.error }
      ),
    }));
  } else {
    const rows: string[][] = [["NODE", "GROUP", "ROLE", "LEADER", "TERM"]];
    for (const r of reports) {
      if (!r.ok) rows.push([r.node, `failed (${r.error})`]);
      else {
        for (const g of r.value) {
          rows.push([r.node, g.name, g.role, g.leader || "-", String(g.term)]);
        }
      }
    }
    for (const line of formatTable(rows)) out(line);
  }
  return exitOf(reports);
}

async function change(
  options: GroupsOptions & { action: "create" | "remove" },
  client: AdminClientLike,
  out: (line: string) => void,
): Promise<number> {
  const create = options.action === "create";
  const nodes = create ? options.voters : options.peers;
  const reports = await askEach(nodes, async (node) => {
    const { data } = create
      ? await client.admin("create_group", { name: options.name, voters: options.voters }, {
        peer: node,
      })
      : await client.admin("remove_group", { name: options.name }, { peer: node });
    const done = data[create ? "created" : "removed"];
    if (typeof done !== "boolean") {
      throw new BadAnswerError(node, `${create ? "created" : "removed"} is not a boolean`);
    }
    return done;
  });
  if (options.json) {
    out(JSON.stringify({
      group: options.name,
      action: options.action,
      nodes: reports.map((r) =>
        r.ok ? { node: r.node, changed: r.value } : { node: r.node, error: r.error }
      ),
    }));
  } else {
    const verb = create ? "created" : "removed";
    const already = create ? "already served" : "not served";
    const rows = reports.map((r) =>
      r.ok ? [r.node, r.value ? verb : already] : [r.node, `failed (${r.error})`]
    );
    for (const line of formatTable([["NODE", `GROUP ${options.name}`], ...rows])) out(line);
  }
  return exitOf(reports);
}

/**
 * Runs `counter groups` and returns the exit status: 0 success on every node, 1 failed on some,
 * 3 outcome unknown on some.
 *
 * @example Usage
 * ```ts
 * import { parseGroupsArgs } from "../args.ts";
 * import { runGroups } from "./groups.ts";
 *
 * const code = await runGroups(parseGroupsArgs(["create", "orders"]));
 * ```
 */
export async function runGroups(
  options: GroupsOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  return await runAdmin(
    "groups",
    connectOptions(options),
    deps,
    async (client, io) => {
      if (options.action === "list") return await list(options, client, io.out);
      return await change(options, client, io.out);
    },
    "outcome unknown: some node may still make the change",
    options.json,
  );
}
