/**
 * What is wrong with a group, in one line: which nodes answer, whether the voters that answer
 * make a quorum, and whether the addresses are counter nodes at all. The client commands use it
 * to replace a bare "failed" with the reason (`no leader: 1 of 3 voters reachable (need 2)`),
 * and to fail fast when no address is a reachable counter node.
 *
 * @module
 */

import { RpcClientConnection, RpcError } from "../../transport/mod.ts";
import { type NodeReport, type NodeStatus, parseNodeStatus } from "./status.ts";
import { PEERS_ENV } from "../args.ts";
import type { ClientTls } from "../../transport/tls.ts";
import { authenticate, ClientAuthError } from "../../security/client_auth.ts";
import { hmacKey } from "../../security/tokens.ts";

/** How a probe reaches the nodes: the client's TLS and token, as its requests do. */
export interface ProbeAccess {
  /** Connect with TLS, trusting these CAs. */
  tls?: ClientTls;
  /** Prove this token before asking. */
  token?: Uint8Array;
}

/** How long one probe may take: the connection and the status request each. */
export const PROBE_TIMEOUT_MS = 1000;

/** What probing one address found. */
export type Probe =
  | { node: string; kind: "up"; status: NodeStatus }
  /** Nothing listens there (or the host cannot be reached). */
  | { node: string; kind: "down"; reason: string }
  /** Something answers there, but not the counter protocol. */
  | { node: string; kind: "not-counter"; reason: string }
  /** A counter node that serves another group, or answers with an error. */
  | { node: string; kind: "refused"; reason: string }
  /** It accepted the connection but did not answer in time. */
  | { node: string; kind: "silent"; reason: string };

/** Asks `node` for its status once, within {@linkcode PROBE_TIMEOUT_MS} per step. */
export async function probeNode(
  node: string,
  group: string,
  timeoutMs = PROBE_TIMEOUT_MS,
  access: ProbeAccess = {},
): Promise<Probe> {
  let conn: RpcClientConnection;
  try {
    conn = await RpcClientConnection.connect(node, {
      connectTimeoutMs: timeoutMs,
      tls: access.tls,
    });
  } catch (err) {
    // A TLS mismatch: the node is there, and the request will say what is wrong.
    if (err instanceof RpcError && err.reason === "tls") {
      return { node, kind: "refused", reason: err.message };
    }
    return { node, kind: "down", reason: causeText(err) };
  }
  try {
    if (access.token !== undefined) {
      const key = await hmacKey(access.token);
      await authenticate((req) => conn.call(group, req, timeoutMs), group, key);
    }
    const resp = await conn.call(group, { op: "status" }, timeoutMs);
    if (resp.ok && resp.data !== undefined) {
      try {
        return { node, kind: "up", status: parseNodeStatus(resp.data, node) };
      } catch (err) {
        return { node, kind: "not-counter", reason: (err as Error).message };
      }
    }
    return { node, kind: "refused", reason: resp.error ?? resp.code ?? "refused" };
  } catch (err) {
    if (err instanceof RpcError && err.reason === "timeout") {
      return { node, kind: "silent", reason: `no answer within ${timeoutMs} ms` };
    }
    if (err instanceof ClientAuthError || (err instanceof RpcError && err.reason === "tls")) {
      return { node, kind: "refused", reason: err.message };
    }
    return { node, kind: "not-counter", reason: "it does not speak the counter protocol" };
  } finally {
    await conn.close();
  }
}

/** Probes every node of `peers` at once; never rejects. */
export function probeNodes(
  peers: readonly string[],
  group: string,
  timeoutMs = PROBE_TIMEOUT_MS,
  access: ProbeAccess = {},
): Promise<Probe[]> {
  return Promise.all(peers.map((node) => probeNode(node, group, timeoutMs, access)));
}

/** The operating system's reason for a failed connection, without the address repeated. */
function causeText(err: unknown): string {
  const cause = (err as { cause?: unknown }).cause;
  const source = cause instanceof Error ? cause : err;
  return source instanceof Error ? source.message : String(source);
}

/**
 * The probes that `reports` of `collectStatuses` amount to: an answer is "up", no answer is
 * "down", and an error answer is "refused".
 */
export function probesFromReports(reports: readonly NodeReport[]): Probe[] {
  return reports.map((r): Probe =>
    r.ok
      ? { node: r.node, kind: "up", status: r.status }
      : { node: r.node, kind: r.reachable ? "refused" : "down", reason: r.error }
  );
}

/** The group as the probes show it. */
export interface GroupView {
  /** The voters, as the answering node in the highest term knows them; else the probed list. */
  voters: string[];
  /** Voters that answered. */
  votersUp: string[];
  /** Voters needed for a quorum. */
  quorum: number;
  /** The leader the answering nodes of the highest term name, if it answered too. */
  leader: string | null;
  /** The highest term seen (0 when no node answered). */
  term: number;
  /** Every probe. */
  probes: Probe[];
}

/** Sums up `probes`. */
export function viewGroup(probes: readonly Probe[]): GroupView {
  const up = probes.flatMap((p) => p.kind === "up" ? [p.status] : []);
  const term = up.length === 0 ? 0 : Math.max(...up.map((s) => s.term));
  const newest = up.find((s) => s.term === term);
  const voters = newest?.voters ?? probes.map((p) => p.node);
  const upIds = new Set(up.map((s) => s.id));
  const votersUp = voters.filter((v) => upIds.has(v));
  const named = up.find((s) => s.term === term && s.leader !== "")?.leader ?? null;
  const leader = named !== null && upIds.has(named) ? named : null;
  return {
    voters,
    votersUp,
    quorum: Math.floor(voters.length / 2) + 1,
    leader,
    term,
    probes: [...probes],
  };
}

/**
 * Why no request can get through, when the probes say so: no address is a reachable counter
 * node, or the voters that answer are too few. Null when a leader is up, or may soon be.
 */
export function blockingProblem(view: GroupView): string | null {
  const { probes } = view;
  if (probes.some((p) => p.kind === "up")) {
    if (view.votersUp.length >= view.quorum) return null;
    return quorumText(view);
  }
  if (probes.some((p) => p.kind === "refused")) {
    // A counter node answers, if only to refuse: let the request run its course.
    return null;
  }
  const foreign = probes.filter((p) => p.kind === "not-counter");
  const silent = probes.filter((p) => p.kind === "silent");
  if (silent.length > 0 && foreign.length === 0) {
    // Something took the connection and said nothing for the whole probe: not a counter node,
    // or one that is stopped; waiting the request's whole deadline would not tell more.
    const down = probes.filter((p) => p.kind === "down").map((p) => p.node);
    return `${silent.map((p) => p.node).join(", ")}: ${silent[0].reason}: not a counter node, ` +
      `or not responding` + (down.length > 0 ? `; nothing listens at ${down.join(", ")}` : "") +
      `; check --peers or ${PEERS_ENV}`;
  }
  if (foreign.length > 0) {
    const down = probes.filter((p) => p.kind === "down").map((p) => p.node);
    return `${foreign.map((p) => p.node).join(", ")}: not a counter node` +
      (down.length > 0 ? `; nothing listens at ${down.join(", ")}` : "") +
      `; check --peers or ${PEERS_ENV}`;
  }
  const reasons = [...new Set(probes.map((p) => p.kind === "down" ? p.reason : ""))];
  const why = reasons.length === 1 && reasons[0] !== "" ? ` (${reasons[0]})` : "";
  return `no counter node reachable at ${probes.map((p) => p.node).join(", ")}${why}` + peersHint();
}

/** The hint that ends a "nothing here" message. */
function peersHint(): string {
  return `; is the cluster running? Name its nodes with --peers or ${PEERS_ENV}`;
}

function quorumText(view: GroupView): string {
  return `no leader: ${view.votersUp.length} of ${view.voters.length} voters reachable ` +
    `(need ${view.quorum})`;
}

/**
 * The one line that says why a request found no leader: {@linkcode blockingProblem}, or else
 * that an election may be under way.
 */
export function noLeaderText(view: GroupView): string {
  const problem = blockingProblem(view);
  if (problem !== null) return problem;
  if (view.leader !== null) return `the leader is ${view.leader} (term ${view.term})`;
  return `no leader yet: ${view.votersUp.length} of ${view.voters.length} voters reachable ` +
    `(need ${view.quorum}); an election may be under way`;
}

/** One summary line: leader, quorum and health, as `counter status` prints it first. */
export function summaryLine(view: GroupView): string {
  const leader = view.leader === null ? "leader none" : `leader ${view.leader}`;
  const quorum = `${view.votersUp.length}/${view.voters.length} voters up (need ${view.quorum})`;
  const healthy = view.leader !== null && view.votersUp.length >= view.quorum;
  const down = view.probes.length - view.probes.filter((p) => p.kind === "up").length;
  const health = healthy
    ? (down === 0 ? "healthy" : `degraded: ${down} down`)
    : view.votersUp.length < view.quorum
    ? "unavailable: no quorum"
    : "unavailable: no leader";
  return `${leader}, term ${view.term}; ${quorum}; ${health}`;
}
