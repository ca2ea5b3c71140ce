/** The leader's table of waiting proposals (lib/counter/pending_proposals.ts). */

import assert from "node:assert/strict";
import { PendingProposals, replyAll } from "../../lib/counter/pending_proposals.ts";
import type { ClientResponse } from "../../lib/transport/mod.ts";

Deno.test("a proposal at an index already waiting answers the earlier one NOT_APPLIED", () => {
  // Term 2: this node proposes at index 7, loses leadership, and another leader overwrites 7.
  // Term 4: it leads again and proposes a new entry at index 7.
  const answers: [string, ClientResponse][] = [];
  const table = new PendingProposals();
  table.add(7, { term: 2, replies: [(r) => answers.push(["old", r])], deadlineMs: 1 });
  table.add(8, { term: 2, replies: [(r) => answers.push(["other", r])], deadlineMs: 1 });
  assert.equal(answers.length, 0);
  table.add(7, { term: 4, replies: [(r) => answers.push(["new", r])], deadlineMs: 2 });
  assert.equal(answers.length, 1);
  assert.equal(answers[0][0], "old");
  assert.equal(answers[0][1].ok, false);
  assert.equal(answers[0][1].code, "NOT_APPLIED");
  assert.equal(table.get(7)?.term, 4, "the new proposal waits in its place");
  assert.equal(table.size, 2);
  table.get(7)!.replies[0]({ ok: true, value: 1n });
  assert.deepEqual(answers.map(([who]) => who), ["old", "new"], "each client answered once");
});

Deno.test("a replaced batch answers every one of its clients NOT_APPLIED, once", () => {
  const answers: [string, ClientResponse][] = [];
  const batch = ["a", "b", "c"].map((who) => (r: ClientResponse) => answers.push([who, r]));
  const table = new PendingProposals();
  table.add(3, { term: 1, replies: batch, deadlineMs: 1 });
  table.add(3, { term: 2, replies: [(r) => answers.push(["new", r])], deadlineMs: 1 });
  assert.deepEqual(answers.map(([who]) => who), ["a", "b", "c"]);
  assert.ok(answers.every(([, r]) => r.code === "NOT_APPLIED"));
});

Deno.test("requests counts every item of every waiting proposal", () => {
  const noop = () => {};
  const table = new PendingProposals();
  assert.equal(table.requests, 0);
  table.add(1, { term: 1, replies: [noop, noop, noop], deadlineMs: 1 });
  table.add(2, { term: 1, replies: [noop], deadlineMs: 1 });
  assert.equal(table.requests, 4);
  table.add(1, { term: 2, replies: [noop, noop], deadlineMs: 1 });
  assert.equal(table.requests, 3, "a replaced batch no longer counts");
  assert.equal(table.delete(1), true);
  assert.equal(table.delete(1), false);
  assert.equal(table.requests, 1);
  table.set(5, { term: 2, replies: [noop, noop], deadlineMs: 1 });
  assert.equal(table.requests, 3);
  table.clear();
  assert.equal(table.requests, 0);
  assert.equal(table.size, 0);
});

Deno.test("replyAll sends the same answer to each client of a proposal in order", () => {
  const seen: string[] = [];
  replyAll(
    { term: 1, replies: [() => seen.push("x"), () => seen.push("y")], deadlineMs: 0 },
    { ok: false, code: "TIMEOUT", error: "late" },
  );
  assert.deepEqual(seen, ["x", "y"]);
});
