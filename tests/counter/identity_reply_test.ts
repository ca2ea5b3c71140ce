import assert from "node:assert/strict";
import { identityReply } from "../../lib/counter/node.ts";
import type { DataDir } from "../../lib/storage/mod.ts";

/** The parts of a data dir `identityReply` reads, while the node is still starting. */
function starting(term: number, lastIndex: number): DataDir {
  return {
    peerIncarnation: () => undefined,
    clusterId: () => "0123456789abcdef",
    recovered: () => ({ hardState: { term, vote: "" }, snapshot: null, entries: [] }),
    lastIndex: () => lastIndex,
    isFresh: () => false,
  } as unknown as DataDir;
}

const REQUEST = { op: "identity", args: { id: "127.0.0.1:7002", incarnation: "00000000000000aa" } };

Deno.test("a member that just bootstrapped and is still starting answers fresh", () => {
  // Its dir holds the bootstrap entry (not an empty dir any more), and no history: an asker
  // must not wait below a vote floor because of it (all initial members would, and none would
  // campaign: seen as a group that never elected a leader when members start seconds apart).
  const resp = identityReply(REQUEST, starting(1, 1), null);
  assert.equal(resp.ok, true);
  assert.equal(resp.data?.fresh, true);
});

Deno.test("a starting member with entries beyond the bootstrap entry answers not fresh", () => {
  assert.equal(identityReply(REQUEST, starting(1, 5), null).data?.fresh, false);
  assert.equal(identityReply(REQUEST, starting(3, 2), null).data?.fresh, false);
});

Deno.test("a member that campaigned but holds only the bootstrap entry answers fresh", () => {
  // Terms without a leader are no history: a member that campaigned alone without PreVote must
  // not put the others below a vote floor, or none of them would vote for it (found by the
  // simulator's staggered starts, seed 109 without PreVote).
  assert.equal(identityReply(REQUEST, starting(3, 1), null).data?.fresh, true);
});
