/**
 * Staggered initial starts in the simulator: the initial members start with empty data dirs at
 * times drawn from the seed, run the bootstrap check against each other (answered by the real
 * `answerIdentity`), may take a while from bootstrapping to running Raft, and the group must then
 * elect a leader within `STAGGER_ELECTIONS` election timeouts. `SIM_STAGGERED_SEEDS` (default 60)
 * sets how many seeds the sweep here runs; the main sweep (simulation_test.ts) draws the fault in
 * 30% of its seeds. Multi-group runs stagger their nodes' processes only when asked
 * (`--multi-group --staggered-start`), as here: every group of a node runs its own check.
 */

import assert from "node:assert/strict";
import { Check } from "./sim/checker.ts";
import { simulateGroups } from "./sim/multigroup.ts";
import { type SimResult, simulate } from "./sim/simulation.ts";

const SEEDS = Number(Deno.env.get("SIM_STAGGERED_SEEDS") ?? "60");

function describe(r: SimResult): string {
  const f = r.failure!;
  return [`seed ${r.seed}: ${f.message}`, ...f.recent.map((l) => `  ${l}`), f.replay].join("\n");
}

Deno.test(`simulation: ${SEEDS} seeds of staggered initial starts elect and keep every check`, () => {
  const failures: SimResult[] = [];
  let bootstraps = 0;
  let belowFloor = 0;
  let answersWhileStarting = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const result = simulate({ seed, staggeredStart: true });
    if (result.failure !== null) failures.push(result);
    bootstraps += result.stats.staggeredBootstraps;
    belowFloor += result.stats.bootstrapsBelowVoteFloor;
    answersWhileStarting += result.stats.answersWhileStarting;
  }
  console.log(
    `${SEEDS} staggered seeds: ${bootstraps} members bootstrapped after their check, ` +
      `${belowFloor} of them below a vote floor, ${answersWhileStarting} identity answers from ` +
      `members still starting`,
  );
  assert.equal(failures.length, 0, failures.slice(0, 2).map(describe).join("\n\n"));
  // What the fault is about must have happened.
  assert.ok(bootstraps > 0 && answersWhileStarting > 0 && belowFloor > 0);
});

// The old identity answer ("not fresh" from a member that bootstrapped but is still starting):
// the members that asked it then started below a vote floor and the group never elected. Seed 5:
// n2, n1, n3 start 141, 248 and 311 ms in; n3 bootstraps last, and n2 and n1 ask it while it is
// still starting.
Deno.test("simulation: staggered seed 5 never elects with the old identity answer", () => {
  const broken = simulate({ seed: 5, staggeredStart: true, mutation: "starting-not-fresh" });
  assert.equal(broken.failure?.check, Check.liveness);
  assert.match(broken.failure!.message, /no leader .* \(staggered start\)/);
  assert.match(broken.failure!.message, /floor -1/);
  assert.match(
    broken.failure!.replay,
    /--seed 5 .*--mutation starting-not-fresh .*--staggered-start/,
  );
  const fixed = simulate({ seed: 5, staggeredStart: true });
  assert.equal(fixed.failure, null, fixed.failure === null ? "" : describe(fixed));
  assert.ok(fixed.stats.answersWhileStarting > 0);
});

Deno.test('simulation: a shell that does "starting-not-fresh" fails the liveness check', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const result = simulate({ seed, staggeredStart: true, mutation: "starting-not-fresh" });
    if (result.failure === null) continue;
    assert.equal(result.failure.check, Check.liveness, describe(result));
    return;
  }
  assert.fail("no seed in 1..20 caught the mutation starting-not-fresh");
});

// Found by the staggered starts: the identity answer counted a term past 1 as history, so without
// PreVote a member that had bootstrapped and campaigned alone put every member that asked it below
// a vote floor, and none would vote for it (the group never elected). Both seeds run without
// PreVote (which the node shell always enables, so production was not hit).
for (const seed of [109, 132]) {
  Deno.test(`simulation: staggered seed ${seed} without PreVote elects a leader`, () => {
    const result = simulate({ seed, staggeredStart: true });
    assert.equal(result.params.preVote, false);
    assert.equal(result.failure, null, result.failure === null ? "" : describe(result));
  });
}

Deno.test("simulation: nodes hosting several groups, started staggered, elect in every group", () => {
  let bootstraps = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const result = simulateGroups({ seed, staggeredStart: true });
    assert.equal(result.failure, null, result.failure === null ? "" : describe(result));
    bootstraps += result.stats.staggeredBootstraps;
  }
  assert.ok(bootstraps > 0);
});

// The bug as it was first seen: many groups per node, nodes started apart, the old answer from a
// group that had bootstrapped but was still starting; seed 5 (4 groups on 3 nodes) never elects.
Deno.test("simulation: staggered multi-group seed 5 never elects with the old identity answer", () => {
  const broken = simulateGroups({ seed: 5, staggeredStart: true, mutation: "starting-not-fresh" });
  assert.equal(broken.failure?.check, Check.liveness);
  assert.match(broken.failure!.replay, /--groups 4 .*--mutation starting-not-fresh/);
  assert.equal(simulateGroups({ seed: 5, staggeredStart: true }).failure, null);
});
