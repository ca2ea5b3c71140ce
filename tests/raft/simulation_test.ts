/**
 * The deterministic cluster simulator, run over many seeds: every safety check after every event,
 * then liveness once faults stop. `SIM_SEEDS` (default 1000) sets how many seeds, `SIM_SEED_FIRST`
 * (default 1) where they start. A failure names the seed, the broken property, the last events,
 * and the command that replays it.
 *
 * Seeds run either lib/counter/node.ts's pumping shell or the plain one, and the real counter
 * state machine with retrying clients: the run also checks that both shells, session expiry, and
 * duplicates answered by nodes restored from snapshots actually occurred. In half the seeds idle
 * groups quiesce: the run checks that groups went quiet, that the shell's node liveness woke quiet
 * followers of unreachable leaders, and that groups settled at the end went quiet when left idle.
 */

import assert from "node:assert/strict";
import { Check, type CheckName } from "./sim/checker.ts";
import { type Mutation, type SimResult, type SimStats, simulate } from "./sim/simulation.ts";

const SEEDS = envInteger("SIM_SEEDS", 1000);
const SEED_FIRST = envInteger("SIM_SEED_FIRST", 1);
/** Failures described in full in the assertion message; the rest are listed by seed. */
const FAILURES_DESCRIBED = 3;

function envInteger(name: string, fallback: number): number {
  const text = Deno.env.get(name);
  if (text === undefined || text === "") return fallback;
  if (!/^\d+$/.test(text)) throw new Error(`${name} must be a non-negative integer, not "${text}"`);
  return Number(text);
}

function describeFailure(r: SimResult): string {
  const f = r.failure!;
  return [
    `seed ${r.seed} (${r.nodes} nodes${r.params.membership ? ", membership changes" : ""}): ` +
    f.message,
    "last events:",
    ...f.recent.map((line) => `  ${line}`),
    `replay: ${f.replay}`,
  ].join("\n");
}

Deno.test(`simulation: ${SEEDS} seeds of 3- and 5-node clusters keep every check`, () => {
  const started = performance.now();
  const failures: SimResult[] = [];
  const totals: Partial<Record<keyof SimStats, number>> = {};
  const shells = { pump: 0, plain: 0 };
  let quiesceSeeds = 0;
  let staggeredSeeds = 0;
  for (let seed = SEED_FIRST; seed < SEED_FIRST + SEEDS; seed++) {
    const result = simulate({ seed, nodes: seed % 2 === 0 ? 3 : 5 });
    if (result.failure !== null) failures.push(result);
    shells[result.params.pump ? "pump" : "plain"]++;
    if (result.params.quiesce) quiesceSeeds++;
    if (result.params.staggeredStart) staggeredSeeds++;
    for (const [key, value] of Object.entries(result.stats) as [keyof SimStats, number][]) {
      totals[key] = (totals[key] ?? 0) + value;
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${SEEDS} seeds in ${seconds}s: ${totals.events} events, ${totals.elections} elections, ` +
      `${totals.crashes} crashes (${totals.tornWrites} torn writes), ${totals.partitions} ` +
      `partitions, ${totals.snapshotsInstalled} snapshots installed, ${totals.confChanges} ` +
      `membership changes, ${totals.acked} increments acknowledged, ${totals.reads} reads; ` +
      `${shells.pump} seeds with the pump (${totals.appliedEarly} entries applied before the ` +
      `node's write, ${totals.pumpedMessages} messages pumped), ${shells.plain} without; ` +
      `${totals.requests} client requests, ${totals.retries} retries, ${totals.duplicatesSent} ` +
      `deliberate duplicates, ${totals.duplicateAnswers} duplicate entries answered ` +
      `(${totals.duplicateAnswersAfterRestore} by nodes restored from a snapshot), ` +
      `${totals.staleAnswers} stale, ${totals.sessionsExpired} sessions expired, ` +
      `${totals.bytesCompared} state machines compared byte for byte; ${totals.wipes} data ` +
      `dirs wiped, ${totals.losses} disks that lost data, ${totals.startsRefused} starts ` +
      `refused, ${totals.replacements} nodes replaced, ${totals.bootstrapsAfterWipe} wiped ` +
      `nodes bootstrapped, ${totals.identityDrops} messages of unknown incarnations dropped, ` +
      `${totals.pauses} process pauses, ${totals.clockJumps} wall-clock jumps, ` +
      `${totals.forcedResets} majorities lost and groups forced from a survivor; ` +
      `${totals.batchedIncrements} increments proposed in ${totals.batches} batch proposals, ` +
      `${totals.batchRepeats} requests repeated inside a batch entry; ` +
      `${quiesceSeeds} seeds with quiescence: ${totals.quiescences} groups quiesced, ` +
      `${totals.quietTicks} quiet node ticks, ${totals.livenessWakes} quiet nodes woken by ` +
      `node liveness, ${totals.quietAtEnd} settled groups quiet when left idle; ` +
      `${staggeredSeeds} seeds with staggered initial starts: ${totals.staggeredBootstraps} ` +
      `members bootstrapped after their check (${totals.bootstrapsBelowVoteFloor} below a vote ` +
      `floor), ${totals.answersWhileStarting} identity answers from members still starting`,
  );
  // What the checks are about must have happened (the counts are in the thousands at 1000 seeds).
  if (SEEDS >= 200) {
    assert.ok(shells.pump > 0 && shells.plain > 0, "both shells ran");
    for (
      const key of [
        "appliedEarly",
        "pumpedMessages",
        "retries",
        "duplicateAnswers",
        "duplicateAnswersAfterRestore",
        "staleAnswers",
        "sessionsExpired",
        "bytesCompared",
        "wipes",
        "losses",
        "startsRefused",
        "replacements",
        "identityDrops",
        "pauses",
        "clockJumps",
        "forcedResets",
        "batches",
        "batchRepeats",
        "quiescences",
        "quietTicks",
        "livenessWakes",
        "staggeredBootstraps",
        "answersWhileStarting",
      ] as const
    ) {
      assert.ok((totals[key] ?? 0) > 0, `no seed had any ${key}`);
    }
    // A settled group left idle goes quiet unless a member is still catching up or cannot run
    // (refused to start): that is rare.
    assert.ok(
      (totals.quietAtEnd ?? 0) >= 0.9 * quiesceSeeds,
      `only ${totals.quietAtEnd} of ${quiesceSeeds} settled groups went quiet when idle`,
    );
  }
  if (failures.length > 0) {
    const described = failures.slice(0, FAILURES_DESCRIBED).map(describeFailure);
    const others = failures.slice(FAILURES_DESCRIBED).map((r) => `${r.seed} (${r.failure!.check})`);
    assert.fail(
      `${failures.length} of ${SEEDS} seeds failed.\n\n${described.join("\n\n")}` +
        (others.length > 0 ? `\n\nother failing seeds: ${others.join(", ")}` : ""),
    );
  }
});

Deno.test("simulation: the same seed replays the same run, other seeds differ", () => {
  const traces: string[][] = [[], []];
  const runs = traces.map((lines) =>
    simulate({ seed: 4242, nodes: 5, membership: true, trace: (line) => lines.push(line) })
  );
  assert.equal(runs[0].failure, null);
  assert.equal(runs[0].traceHash, runs[1].traceHash);
  assert.deepEqual(runs[0].stats, runs[1].stats);
  assert.deepEqual(traces[0], traces[1]);
  assert.ok(traces[0].length > 1000, "the trace covers the whole run");
  const hashes = new Set<string>();
  for (let seed = 1; seed <= 5; seed++) hashes.add(simulate({ seed, events: 500 }).traceHash);
  assert.equal(hashes.size, 5);
});

// Seeds that failed an offline sweep (issue 9), each for a reason now fixed; the runs that found
// them used these options (and no quiescence, which came later and would change the runs).
const REGRESSION_SEEDS: [number, boolean, string][] = [
  // A former leader's self-removal, left uncommitted in the longest log, made the group a
  // two-voter one; a disk lost then is a majority loss (the fault model no longer calls it one
  // node's loss).
  [109255, false, "uncommitted two-voter configuration"],
  [115133, false, "uncommitted two-voter configuration"],
  // The probe asked only the --conf members, who had forgotten the wiped id after installing
  // snapshots; the member added later had not, and refused it forever.
  [200175, false, "probe asks the current members"],
  // A learner whose addition never committed came back with a new dir and was refused forever.
  [210188, true, "unsettled learner replaced"],
];

for (const [seed, forcedReset, what] of REGRESSION_SEEDS) {
  Deno.test(`simulation: seed ${seed} with disk faults stays green (${what})`, () => {
    const result = simulate({ seed, nodes: 3, diskFaults: true, forcedReset, quiesce: false });
    assert.equal(result.failure, null, result.failure === null ? "" : describeFailure(result));
  });
}

// Quiesce seeds that fail the liveness check when the shell's node liveness does not wake a quiet
// leader whose member came back: a restarted learner (which never campaigns) waits forever for the
// heartbeats of a leader that went quiet while it was down.
for (const [seed, nodes] of [[1216, 3], [2739, 5]]) {
  Deno.test(`simulation: quiesce seed ${seed} wakes a quiet leader for a restarted learner`, () => {
    const result = simulate({ seed, nodes, quiesce: true });
    assert.equal(result.failure, null, result.failure === null ? "" : describeFailure(result));
    assert.ok(result.stats.livenessWakes > 0);
  });
}

// A deliberately broken shell must be caught: proof that the checks are not vacuous.
const MUTANTS: [Mutation, CheckName | CheckName[], number][] = [
  ["send-before-persist", Check.durability, 20],
  ["corrupt-apply", Check.stateMachineSafety, 20],
  ["stale-read", Check.linearizability, 20],
  ["forget-vote-on-crash", Check.electionSafety, 1000],
  ["lose-sessions", Check.exactlyOnce, 20],
  ["local-clock-expiry", Check.exactlyOnce, 20],
  ["pump-during-snapshot", Check.stateMachineSafety, 200],
  ["late-ready-apply", Check.stateMachineSafety, 20],
  // A wiped node that bootstraps again without asking its peers votes twice in a term or holds
  // less than it acknowledged (issue 9): caught with wiped data dirs in the fault model.
  [
    "no-identity-check",
    [Check.electionSafety, Check.leaderCompleteness, Check.logMatching],
    200,
  ],
  // Leaders stamping increments with wall clocks that jump expire live sessions, and a retry is
  // applied twice (issue 9): cluster time must not notice the jumps.
  ["wall-clock-stamps", Check.exactlyOnce, 200],
  // Without node liveness a quiet follower of a leader that is gone for good (a disk lost, the
  // operator unable to replace it without a leader) waits forever: quiescence needs the host.
  ["no-node-liveness", Check.liveness, 300],
];

for (const [mutation, expected, seedsMax] of MUTANTS) {
  const checks = typeof expected === "string" ? [expected] : expected;
  const name = checks.join(" or ");
  Deno.test(`simulation: a shell that does "${mutation}" fails the ${name} check`, () => {
    // The identity mutation needs the faults it is about.
    const diskFaults = mutation === "no-identity-check" || mutation === "wall-clock-stamps" ||
        mutation === "no-vote-floor" || mutation === "no-node-liveness"
      ? true
      : undefined;
    const quiesce = mutation === "no-node-liveness" ? true : undefined;
    for (let seed = 1; seed <= seedsMax; seed++) {
      const result = simulate({ seed, mutation, diskFaults, quiesce });
      if (result.failure === null) continue;
      // A broken identity check may first show as a group that cannot recover (a node refused
      // forever); the proof wanted is a broken safety property, so look further.
      if (mutation === "no-identity-check" && result.failure.check === Check.liveness) continue;
      assert.ok(checks.includes(result.failure.check), describeFailure(result));
      assert.match(result.failure.replay, new RegExp(`--seed ${seed} .*--mutation ${mutation}`));
      // The failure replays exactly.
      const again = simulate({ seed, mutation, diskFaults, quiesce });
      assert.equal(again.failure?.message, result.failure.message);
      assert.equal(again.traceHash, result.traceHash);
      return;
    }
    assert.fail(`no seed in 1..${seedsMax} caught the mutation ${mutation}`);
  });
}

Deno.test("simulation: the replay CLI runs a seed range and reports each seed", async () => {
  const cli = new URL("./simulate.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", cli, "--seeds", "3..4", "--events", "300", "--nodes", "3"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
  assert.match(text, /^seed 3 nodes 3.*: ok;/m);
  assert.match(text, /^seed 4 nodes 3.*: ok;/m);
  assert.match(text, /2\/2 seeds ok/);
});
