/**
 * The check a node runs before it bootstraps an empty data dir with `--conf` (etcd's "member
 * already bootstrapped"): it asks every other initial member whether it has ever heard from this
 * node's id. A member that has recorded an incarnation for the id has taken Raft traffic from it,
 * so a node by that id once voted or acknowledged entries; an empty dir under that id would have
 * forgotten them, and must not start. See docs/DESIGN.md, "Reusing a node id with an empty data
 * dir".
 *
 * {@linkcode decideBootstrap} is the pure decision, shared with the simulator;
 * {@linkcode runBootstrapCheck} asks the members and retries until it can decide.
 *
 * @module
 */

import type { Logger } from "../logging/logger.ts";
import type { ClientResponse } from "../transport/mod.ts";
import { replacementCommands } from "./peer_identity.ts";

/** A member's answer to the `identity` request. */
export interface IdentityAnswer {
  /** The member has recorded an incarnation for the asking node's id: it heard from it. */
  heardOf: boolean;
  /** The member's cluster id, or "" when it has none. */
  clusterId: string;
  /** The member's current term. */
  term: number;
  /** The member's last log index. */
  lastIndex: number;
  /** The member holds nothing beyond the bootstrap entry (or is itself waiting to bootstrap). */
  fresh: boolean;
  /**
   * Voters and learners of the member's current configuration. The group may have changed
   * since `--conf` was written: members added later may have heard from this id, so they are
   * asked too. Absent in answers from older nodes.
   */
  members?: string[];
}

/** What an identity answer reads of a data dir (implemented by `DataDir`). */
export interface IdentitySource {
  /** The incarnation recorded for peer `id`, if any. */
  peerIncarnation(id: string): string | undefined;
  /** The data dir's cluster id, or "" while it has none. */
  clusterId(): string;
  /** The state the dir held when the node opened it. */
  recovered(): { hardState: { term: number } };
  /** Index of the last stored entry. */
  lastIndex(): number;
  /** True while the dir holds no state at all. */
  isFresh(): boolean;
}

/** What an identity answer reads of a running Raft node (implemented by `Raft`). */
export interface IdentityRaftView {
  /** Current term. */
  readonly term: number;
  /** Last log index. */
  readonly lastIndex: number;
  /** Current configuration. */
  readonly conf: { readonly voters: readonly string[]; readonly learners: readonly string[] };
}

/**
 * A member's answer to the `identity` request of node `asker`, from its data dir and, once it
 * runs, its Raft node (`raft` is null while the node is starting, perhaps running the same
 * check itself). Pure, so that the simulator answers its probes with it too.
 *
 * @example
 * ```ts
 * import { answerIdentity } from "./bootstrap_check.ts";
 * const dir = {
 *   peerIncarnation: () => undefined, clusterId: () => "0123456789abcdef",
 *   recovered: () => ({ hardState: { term: 0 } }), lastIndex: () => 1, isFresh: () => false,
 * };
 * console.log(answerIdentity("b:1", dir, null).fresh); // true: only the bootstrap entry
 * ```
 */
export function answerIdentity(
  asker: string,
  storage: IdentitySource,
  raft: IdentityRaftView | null,
): IdentityAnswer {
  const term = raft?.term ?? storage.recovered().hardState.term;
  const lastIndex = raft?.lastIndex ?? storage.lastIndex();
  return {
    heardOf: storage.peerIncarnation(asker) !== undefined,
    clusterId: storage.clusterId(),
    term,
    lastIndex,
    // Only the bootstrap entry is no history, whether or not the node is up yet: a member that
    // bootstrapped a moment ago and is still starting must not make the asker wait below a vote
    // floor (if every initial member did, none would ever campaign). Nor may a term without a
    // leader: a member that campaigned alone (without PreVote) holds no more, and if its answer
    // put every other member below a vote floor, none would vote for it. A leader of any term
    // appends an entry (index 2 or later) before it can commit anything, and a member that
    // voted for the asker has its incarnation on record.
    fresh: lastIndex <= 1,
    members: raft === null ? [] : [...raft.conf.voters, ...raft.conf.learners],
  };
}

/** At most this many members are read from one answer (the network may be hostile). */
export const IDENTITY_MEMBERS_MAX = 64;

/** What {@linkcode decideBootstrap} needs besides the answers. */
export interface BootstrapCheckOptions {
  /** This node's id. */
  self: string;
  /** The initial members (`--conf`), this node included. */
  members: readonly string[];
  /** The cluster id this node would bootstrap with. */
  clusterId: string;
  /** How long the check has run. */
  elapsedMs: number;
  /** How long it may run before giving up; 0 means forever. */
  timeoutMs: number;
  /** The data dir, for the commands printed on refusal. */
  dataDir: string;
}

/**
 * The outcome of one round: bootstrap now; refuse to start (`message` says why, on one line);
 * wait for the `missing` members and ask again; or give up because they never answered.
 */
export type BootstrapDecision =
  | { action: "bootstrap" }
  | { action: "refuse"; message: string }
  | { action: "wait"; missing: string[] }
  | { action: "give_up"; missing: string[]; message: string };

/**
 * Decides from the answers gathered so far (by member id) whether this node may bootstrap.
 * Any member that heard of this id refuses it; so does a member of another cluster. The members
 * asked are the initial ones plus every member an answer names (the membership may have changed
 * since `--conf` was written). With every one of them answering no, the node bootstraps;
 * otherwise it waits, up to the timeout.
 *
 * @example
 * ```ts
 * import { decideBootstrap } from "./bootstrap_check.ts";
 * const no = { heardOf: false, clusterId: "", term: 0, lastIndex: 0, fresh: true };
 * const d = decideBootstrap(new Map([["b:1", no]]), {
 *   self: "a:1", members: ["a:1", "b:1", "c:1"], clusterId: "0123456789abcdef",
 *   elapsedMs: 0, timeoutMs: 300_000, dataDir: "/data/a",
 * });
 * console.log(d); // { action: "wait", missing: ["c:1"] }
 * ```
 */
export function decideBootstrap(
  answers: ReadonlyMap<string, IdentityAnswer>,
  options: BootstrapCheckOptions,
): BootstrapDecision {
  const asked = new Set(options.members);
  for (const answer of answers.values()) for (const m of answer.members ?? []) asked.add(m);
  const others = [...asked].filter((m) => m !== options.self).sort();
  const heardBy = others.filter((m) => answers.get(m)?.heardOf === true);
  if (heardBy.length > 0) {
    return {
      action: "refuse",
      message: `${options.self} was a member before and its data dir ${options.dataDir} is ` +
        `empty: its data was lost (${heardBy.join(", ")} heard from it); replace it: ` +
        replacementCommands(options.self, others, options.dataDir),
    };
  }
  const foreign = others.filter((m) => {
    const id = answers.get(m)?.clusterId ?? "";
    return id !== "" && id !== options.clusterId;
  });
  if (foreign.length > 0) {
    const theirs = answers.get(foreign[0])!.clusterId;
    return {
      action: "refuse",
      message: `${foreign.join(", ")} belongs to cluster ${theirs}, not the one --group and ` +
        `--conf make (${options.clusterId}); check --conf, or join the existing group with --join`,
    };
  }
  const missing = others.filter((m) => !answers.has(m));
  if (missing.length === 0) return { action: "bootstrap" };
  if (options.timeoutMs > 0 && options.elapsedMs >= options.timeoutMs) {
    return {
      action: "give_up",
      missing,
      message: `members ${missing.join(", ")} never answered within ` +
        `${Math.round(options.timeoutMs / 1000)} s, so ${options.self} cannot tell whether it ` +
        `was a member before; start them, or raise --bootstrap-timeout-secs (0 waits forever)`,
    };
  }
  return { action: "wait", missing };
}

/**
 * The cluster id of a brand-new group: the first 16 hex digits of SHA-256 over the group, a
 * newline and the sorted initial voters joined by commas. Every initial member computes the same
 * one without talking.
 */
export async function computeClusterId(group: string, voters: readonly string[]): Promise<string> {
  const text = `${group}\n${[...new Set(voters)].sort().join(",")}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest).subarray(0, 8)]
    .map((b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Reads an `identity` response; null when it is a failure or malformed (the member counts as
 * not having answered).
 */
export function parseIdentityAnswer(response: ClientResponse): IdentityAnswer | null {
  if (!response.ok || response.data === undefined) return null;
  const d = response.data;
  if (
    typeof d.heardOf !== "boolean" || typeof d.clusterId !== "string" ||
    typeof d.fresh !== "boolean" || !isCount(d.term) || !isCount(d.lastIndex)
  ) return null;
  let members: string[] | undefined;
  if (d.members !== undefined) {
    if (
      !Array.isArray(d.members) || d.members.length > IDENTITY_MEMBERS_MAX ||
      !d.members.every((m) => typeof m === "string" && m !== "" && m.length <= 300)
    ) return null;
    members = d.members as string[];
  }
  return {
    heardOf: d.heardOf,
    clusterId: d.clusterId,
    term: Number(d.term),
    lastIndex: Number(d.lastIndex),
    fresh: d.fresh,
    ...(members === undefined ? {} : { members }),
  };
}

function isCount(v: unknown): boolean {
  return (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) ||
    (typeof v === "bigint" && v >= 0n);
}

/** Delay between rounds of the check. */
export const BOOTSTRAP_RETRY_MS = 500;
/** The members still missing are logged at most this often. */
export const BOOTSTRAP_LOG_INTERVAL_MS = 5000;

/** Options for {@linkcode runBootstrapCheck}. */
export interface RunBootstrapCheckOptions extends Omit<BootstrapCheckOptions, "elapsedMs"> {
  /** Asks one member; resolves null when it did not answer (unreachable, timeout, malformed). */
  ask: (member: string) => Promise<IdentityAnswer | null>;
  /** Where progress goes. */
  logger: Logger;
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: () => number;
  /** Waits `ms`. Default a timer. */
  sleep?: (ms: number) => Promise<void>;
  /** Stops the check early (the node is shutting down): it then resolves as a give-up. */
  signal?: AbortSignal;
}

/**
 * Asks every other member until {@linkcode decideBootstrap} can decide, every
 * {@linkcode BOOTSTRAP_RETRY_MS}, logging who is missing every
 * {@linkcode BOOTSTRAP_LOG_INTERVAL_MS}. Resolves with `bootstrap`, `refuse` or `give_up`.
 */
export async function runBootstrapCheck(
  options: RunBootstrapCheckOptions,
): Promise<Exclude<BootstrapDecision, { action: "wait" }>> {
  const now = options.now ?? (() => performance.now());
  const sleep = options.sleep ??
    ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const startMs = now();
  let loggedAtMs = -Infinity;
  const answers = new Map<string, IdentityAnswer>();
  let missing = [...new Set(options.members)].filter((m) => m !== options.self);
  while (true) {
    // A member that answered is not asked again: this node sends nothing else meanwhile, so
    // nobody can hear of it between two rounds.
    const results = await Promise.all(missing.map((m) => options.ask(m)));
    results.forEach((answer, i) => {
      if (answer !== null) answers.set(missing[i], answer);
    });
    const decision = decideBootstrap(answers, { ...options, elapsedMs: now() - startMs });
    if (decision.action !== "wait") return decision;
    missing = decision.missing;
    if (options.signal?.aborted) {
      return { action: "give_up", missing, message: "stopped while checking the members" };
    }
    if (now() - loggedAtMs >= BOOTSTRAP_LOG_INTERVAL_MS) {
      loggedAtMs = now();
      options.logger.info("waiting for the other initial members before bootstrapping", {
        missing: missing.join(","),
        waitedSecs: Math.round((now() - startMs) / 1000),
      });
    }
    await sleep(BOOTSTRAP_RETRY_MS);
  }
}
