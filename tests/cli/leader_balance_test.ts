/**
 * `counter leader balance` and the groups part of `counter status`, against a fake client of
 * nodes that serve many groups; and the plan that spreads the leaders.
 */

import assert from "node:assert/strict";
import { parseLeaderArgs, parseStatusArgs } from "../../lib/cli/args.ts";
import { UsageError } from "../../lib/cli/usage_error.ts";
import {
  type BalanceInput,
  isBalanced,
  leadersPerNode,
  planBalance,
} from "../../lib/cli/commands/_leaders.ts";
import { runLeader } from "../../lib/cli/commands/leader.ts";
import { runStatus } from "../../lib/cli/commands/status.ts";
import type { WireMap } from "../../lib/transport/codec.ts";

const A = "127.0.0.1:9001";
const B = "127.0.0.1:9002";
const C = "127.0.0.1:9003";
const NODES = [A, B, C];

function groupsLedBy(leaders: readonly string[]): BalanceInput[] {
  return leaders.map((leader, k) => ({ group: `g${k}`, leader, voters: NODES }));
}

function countsAfter(inputs: readonly BalanceInput[]): Map<string, number> {
  const moves = planBalance(inputs);
  const leaders = new Map(inputs.map((g) => [g.group, g.leader]));
  for (const m of moves) {
    assert.equal(leaders.get(m.group), m.from, "a move starts at the group's leader");
    leaders.set(m.group, m.to);
  }
  assert.equal(new Set(moves.map((m) => m.group)).size, moves.length, "a group moves once");
  return leadersPerNode(
    [...leaders].map(([group, leader]) => ({ group, leader, term: 1 })),
    NODES,
  );
}

Deno.test("planBalance spreads G groups on the same N voters to floor(G/N) or ceil(G/N) each", () => {
  for (const g of [0, 1, 2, 3, 4, 7, 64, 100]) {
    for (const skew of [[A], [A, B], [A, B, C], [B, B, C]]) {
      const inputs = groupsLedBy(Array.from({ length: g }, (_, k) => skew[k % skew.length]));
      const counts = countsAfter(inputs);
      assert.ok(isBalanced(counts), `G=${g} ${skew}: ${[...counts]}`);
      for (const count of counts.values()) {
        assert.ok(count === Math.floor(g / 3) || count === Math.ceil(g / 3));
      }
    }
  }
});

Deno.test("planBalance moves nothing when already balanced, and the fewest groups otherwise", () => {
  assert.deepEqual(planBalance(groupsLedBy([A, B, C, A])), []);
  // 64 groups all on A: 21 or 22 stay, 42 move.
  const moves = planBalance(groupsLedBy(Array(64).fill(A)));
  assert.equal(moves.length, 42);
  assert.ok(moves.every((m) => m.from === A));
});

Deno.test("planBalance only hands a group to its own voters", () => {
  // Two groups on A and B only, two on all three: C can take only groups of the second kind.
  const inputs: BalanceInput[] = [
    { group: "ab1", leader: A, voters: [A, B] },
    { group: "ab2", leader: A, voters: [A, B] },
    { group: "abc1", leader: A, voters: NODES },
    { group: "abc2", leader: A, voters: NODES },
  ];
  const moves = planBalance(inputs);
  for (const m of moves) {
    assert.ok(inputs.find((g) => g.group === m.group)!.voters.includes(m.to));
  }
  assert.ok(isBalanced(countsAfter(inputs)) || countsAfter(inputs).get(C)! >= 1);
});

Deno.test("'leader balance' parses, and takes no positional argument", () => {
  assert.equal(parseLeaderArgs(["balance"]).action, "balance");
  assert.equal(parseLeaderArgs(["balance", "--peers", `${A},${B}`]).peers.length, 2);
  assert.throws(() => parseLeaderArgs(["balance", A]), UsageError);
  assert.throws(() => parseLeaderArgs(["rebalance"]), /expected transfer or balance/);
});

/** Nodes serving `groups`, each group led by `leaders[group]`; transfers move it. */
class FakeHosts {
  readonly transfers: { group: string; to: string; peer?: string }[] = [];
  failTransfer: (group: string) => Error | undefined = () => undefined;

  constructor(readonly leaders: Map<string, string>, readonly down = new Set<string>()) {}

  admin(
    op: string,
    args: WireMap = {},
    options: { peer?: string; group?: string } = {},
  ): Promise<{ data: WireMap; leader: string }> {
    const peer = options.peer!;
    if (this.down.has(peer)) {
      return Promise.reject(Object.assign(new Error(`${peer}: connection refused`), {
        code: "UNAVAILABLE",
        outcome: "failed",
      }));
    }
    const group = options.group ?? "counter";
    if (op === "groups") {
      const groups = [...this.leaders].map(([name, leader]) => ({
        name,
        role: leader === peer ? "leader" : "follower",
        leader,
        term: 3,
      }));
      return Promise.resolve({ data: { node: peer, groups }, leader: peer });
    }
    if (op === "status") {
      return Promise.resolve({
        data: {
          id: peer,
          role: this.leaders.get(group) === peer ? "leader" : "follower",
          term: 3,
          leader: this.leaders.get(group) ?? "",
          commit: 5,
          applied: 5,
          lastIndex: 5,
          snapshotIndex: 0,
          value: "0",
          voters: NODES,
          learners: [],
        },
        leader: peer,
      });
    }
    if (op === "transfer_leader") {
      assert.equal(this.leaders.get(group), peer, "sent to the group's leader");
      this.transfers.push({ group, to: String(args.node), peer });
      const error = this.failTransfer(group);
      if (error !== undefined) return Promise.reject(error);
      this.leaders.set(group, String(args.node));
      return Promise.resolve({ data: { leader: String(args.node) }, leader: String(args.node) });
    }
    return Promise.reject(new Error(`unexpected op ${op}`));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function run(fake: FakeHosts) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    deps: { connect: () => fake, out: (l: string) => out.push(l), err: (l: string) => err.push(l) },
  };
}

const PEERS = ["--peers", NODES.join(",")];

Deno.test("'leader balance' moves leaders until each node leads 21 or 22 of 64, printing before and after", async () => {
  const leaders = new Map(Array.from({ length: 64 }, (_, k) => [`g${k}`, k < 60 ? A : B]));
  const fake = new FakeHosts(leaders);
  const { out, err, deps } = run(fake);
  assert.equal(await runLeader(parseLeaderArgs(["balance", ...PEERS]), deps), 0, err.join("\n"));
  assert.deepEqual(err, []);
  assert.equal(out[0], `before: ${A} 60, ${B} 4, ${C} 0 (64 groups)`);
  assert.equal(out[1], "moving 38 leaders");
  assert.equal(fake.transfers.length, 38);
  assert.match(out[2], /^ {2}g\d+: 127\.0\.0\.1:9001 -> 127\.0\.0\.1:900[23]$/);
  assert.equal(out.at(-1), `after: ${A} 22, ${B} 21, ${C} 21 (balanced)`);
  // Again: nothing to move.
  const again = run(fake);
  assert.equal(await runLeader(parseLeaderArgs(["balance", ...PEERS]), again.deps), 0);
  assert.deepEqual(again.out, [
    `before: ${A} 22, ${B} 21, ${C} 21 (64 groups, balanced)`,
    "nothing to move",
    `after: ${A} 22, ${B} 21, ${C} 21 (balanced)`,
  ]);
});

Deno.test("'leader balance --json' reports the moves; a refused transfer exits 1, an unknown one 3", async () => {
  const leaders = new Map(Array.from({ length: 6 }, (_, k) => [`g${k}`, A]));
  const fake = new FakeHosts(leaders);
  fake.failTransfer = (group) =>
    group === "g0"
      ? Object.assign(new Error("refused"), { code: "REFUSED", outcome: "failed" })
      : undefined;
  const { out, deps } = run(fake);
  assert.equal(await runLeader(parseLeaderArgs(["balance", ...PEERS, "--json"]), deps), 1);
  const report = JSON.parse(out[0]);
  assert.equal(report.groups, 6);
  assert.deepEqual(report.before, { [A]: 6, [B]: 0, [C]: 0 });
  assert.equal(report.moves.length, 4);
  assert.equal(report.moves.filter((m: { outcome: string }) => m.outcome === "failed").length, 1);
  assert.equal(report.balanced, false);

  const unknown = new FakeHosts(new Map([["g0", A], ["g1", A]]));
  unknown.failTransfer = () =>
    Object.assign(new Error("no answer"), { code: "TIMEOUT", outcome: "unknown" });
  assert.equal(await runLeader(parseLeaderArgs(["balance", ...PEERS]), run(unknown).deps), 3);
});

Deno.test("'status' shows each group's leader and the leaders per node when nodes serve several groups", async () => {
  const leaders = new Map([["counter", A], ["g1", A], ["g2", B]]);
  const fake = new FakeHosts(leaders);
  const { out, err, deps } = run(fake);
  assert.equal(await runStatus(parseStatusArgs(PEERS), deps), 0, err.join("\n"));
  const at = out.findIndex((l) => l.startsWith("3 groups"));
  assert.ok(at > 0, out.join("\n"));
  assert.equal(
    out[at],
    `3 groups; leaders per node: ${A} 2, ${B} 1, ${C} 0 (unbalanced: see 'counter leader balance')`,
  );
  assert.match(out[at + 1], /^GROUP +LEADER +TERM$/);
  assert.match(out[at + 2], /^counter +127\.0\.0\.1:9001 +3$/);
  assert.match(out[at + 4], /^g2 +127\.0\.0\.1:9002 +3$/);

  const json = run(fake);
  assert.equal(await runStatus(parseStatusArgs([...PEERS, "--json"]), json.deps), 0);
  const status = JSON.parse(json.out[0]);
  assert.deepEqual(status.leadersPerNode, { [A]: 2, [B]: 1, [C]: 0 });
  assert.equal(status.balanced, false);
  assert.deepEqual(status.groups[2], { group: "g2", leader: B, term: 3 });
});

Deno.test("'status' of nodes of one group prints no groups part", async () => {
  const fake = new FakeHosts(new Map([["counter", A]]));
  const { out, deps } = run(fake);
  assert.equal(await runStatus(parseStatusArgs(PEERS), deps), 0);
  assert.equal(out.length, 5, out.join("\n"));
  const json = run(fake);
  await runStatus(parseStatusArgs([...PEERS, "--json"]), json.deps);
  assert.equal(JSON.parse(json.out[0]).groups, undefined);
});

Deno.test("'leader balance' with a node down still balances over the nodes that answer, and exits 1", async () => {
  const leaders = new Map(Array.from({ length: 6 }, (_, k) => [`g${k}`, A]));
  const fake = new FakeHosts(leaders, new Set([C]));
  const { out, err, deps } = run(fake);
  // The plan may pick C (a voter of every group): its transfers fail, as the leader would say.
  fake.failTransfer = () => undefined;
  const code = await runLeader(parseLeaderArgs(["balance", ...PEERS]), deps);
  assert.equal(code, 1);
  assert.ok(err.some((l) => l.startsWith(`counter leader balance: ${C}: `)), err.join("\n"));
  assert.match(out.at(-1)!, /^after: /);
});
