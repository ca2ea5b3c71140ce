/**
 * Cluster configurations: encoding for Config log entries, and the arithmetic of changing one.
 *
 * @module
 */

import type { ConfState, NodeId } from "./types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes a configuration as the data of a Config entry (UTF-8 JSON, sorted members). */
export function encodeConfState(conf: ConfState): Uint8Array {
  const sorted = { voters: [...conf.voters].sort(), learners: [...conf.learners].sort() };
  return encoder.encode(JSON.stringify(sorted));
}

/** Decodes the data of a Config entry; throws on anything that is not a configuration. */
export function decodeConfState(data: Uint8Array): ConfState {
  const parsed = JSON.parse(decoder.decode(data));
  if (
    typeof parsed !== "object" || parsed === null || !isStringArray(parsed.voters) ||
    !isStringArray(parsed.learners)
  ) {
    throw new Error("config entry does not hold a configuration");
  }
  return { voters: parsed.voters, learners: parsed.learners };
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === "string");
}

/** One membership change; the single-server method applies exactly one at a time. */
export type ConfChange =
  | { type: "addVoter"; node: NodeId }
  | { type: "addLearner"; node: NodeId }
  | { type: "promote"; node: NodeId }
  | { type: "remove"; node: NodeId };

/**
 * Applies `change` to `conf`, returning the new configuration, or a string saying why the change
 * is not allowed.
 */
export function applyConfChange(conf: ConfState, change: ConfChange): ConfState | string {
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  const { node } = change;
  switch (change.type) {
    case "addVoter":
      if (voters.has(node)) return `${node} is already a voter`;
      learners.delete(node);
      voters.add(node);
      break;
    case "addLearner":
      if (voters.has(node)) return `${node} is a voter; remove it first to make it a learner`;
      if (learners.has(node)) return `${node} is already a learner`;
      learners.add(node);
      break;
    case "promote":
      if (!learners.has(node)) return `${node} is not a learner`;
      learners.delete(node);
      voters.add(node);
      break;
    case "remove":
      if (!voters.has(node) && !learners.has(node)) return `${node} is not a member`;
      voters.delete(node);
      learners.delete(node);
      if (voters.size === 0) return "cannot remove the last voter";
      break;
  }
  return { voters: [...voters].sort(), learners: [...learners].sort() };
}

/** True when the two configurations have the same members in the same roles. */
export function sameConf(a: ConfState, b: ConfState): boolean {
  return a.voters.join(",") === b.voters.join(",") && a.learners.join(",") === b.learners.join(",");
}
