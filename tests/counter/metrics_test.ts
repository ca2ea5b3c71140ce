/** The health verdict shared by `/health` and `counter health`. */

import assert from "node:assert/strict";
import { HEALTH_APPLY_LAG_MAX, judgeHealth } from "../../lib/counter/metrics.ts";

const base = { role: "follower", term: 4, leader: "127.0.0.1:1", commit: 100, applied: 100 };

Deno.test("healthy with a known leader and applied at commit", () => {
  const h = judgeHealth(base);
  assert.equal(h.healthy, true);
  assert.equal(h.reason, "leader 127.0.0.1:1, term 4, applied 100 of commit 100");
});

Deno.test("unhealthy without a leader, saying so in one line", () => {
  const h = judgeHealth({ ...base, leader: "", role: "candidate" });
  assert.equal(h.healthy, false);
  assert.equal(h.reason, "no leader known (candidate in term 4)");
});

Deno.test("unhealthy when applied trails commit by more than the bound, healthy at the bound", () => {
  const behind = { ...base, commit: 100 + HEALTH_APPLY_LAG_MAX, applied: 100 };
  assert.equal(judgeHealth(behind).healthy, true);
  const tooFar = { ...behind, commit: behind.commit + 1 };
  const h = judgeHealth(tooFar);
  assert.equal(h.healthy, false);
  assert.match(h.reason, /applied index 100 is 1001 entries behind commit 1101/);
  assert.equal(judgeHealth(tooFar, 2000).healthy, true);
});
