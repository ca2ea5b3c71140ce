/** The leader's table of waiting proposals (lib/counter/pending_proposals.ts). */

import assert from "node:assert/strict";
import { PendingProposals } from "../../lib/counter/pending_proposals.ts";
import type { ClientResponse } from "../../lib/transport/mod.ts";

Deno.test("a proposal at an index already waiting answers the earlier one NOT_APPLIED", () => {
  // Term 2: this node proposes at index 7, loses leadership, and another leader overwrites 7.
  // Term 4: it leads again and proposes a new entry at index 7.
  const answers: [string, ClientResponse][] = [];
  const table = new PendingProposals();
  table.add(7, { term: 2, reply: (r) => answers.push(["old", r]), deadlineMs: 1 });
  table.add(8, { term: 2, reply: (r) => answers.push(["other", r]), deadlineMs: 1 });
  assert.equal(answers.length, 0);
  table.add(7, { term: 4, reply: (r) => answers.push(["new", r]), deadlineMs: 2 });
  assert.equal(answers.length, 1);
  assert.equal(answers[0][0], "old");
  assert.equal(answers[0][1].ok, false);
  assert.equal(answers[0][1].code, "NOT_APPLIED");
  assert.equal(table.get(7)?.term, 4, "the new proposal waits in its place");
  assert.equal(table.size, 2);
  table.get(7)!.reply({ ok: true, value: 1n });
  assert.deepEqual(answers.map(([who]) => who), ["old", "new"], "each client answered once");
});
