/**
 * The admin command modules with a fake client: what they send, what they print, how they exit.
 */

import assert from "node:assert/strict";
import type {
  ClientOptions,
  LeaderOptions,
  PeersOptions,
  SnapshotOptions,
} from "../../lib/cli/args.ts";
import {
  type AdminAnswer,
  type AdminClientLike,
  formatTable,
} from "../../lib/cli/commands/_admin.ts";
import { runLeader } from "../../lib/cli/commands/leader.ts";
import { runPeers } from "../../lib/cli/commands/peers.ts";
import { runSnapshot } from "../../lib/cli/commands/snapshot.ts";
import { runStatus } from "../../lib/cli/commands/status.ts";
import { helpText } from "../../lib/cli/help.ts";
import type { WireMap } from "../../lib/transport/codec.ts";

const A = "127.0.0.1:8081";
const B = "127.0.0.1:8082";
const C = "127.0.0.1:8083";
const NEW = "127.0.0.1:8084";

/** An error shaped like the client's `CounterError`. */
class FakeCounterError extends Error {
  constructor(message: string, readonly code: string, readonly outcome: "failed" | "unknown") {
    super(message);
  }
}

const unreachable = (node: string) =>
  new FakeCounterError(`${node}: connection refused`, "UNAVAILABLE", "failed");

interface Call {
  op: string;
  args: WireMap;
  peer: string | undefined;
}

type Handler = (call: Call) => AdminAnswer | Error;

/** A client that answers each admin call with `handler`, and records the calls. */
class FakeAdminClient implements AdminClientLike {
  calls: Call[] = [];
  closed = false;
  constructor(readonly handler: Handler) {}

  admin(op: string, args: WireMap = {}, options: { peer?: string } = {}) {
    const call = { op, args, peer: options.peer };
    this.calls.push(call);
    const answer = this.handler(call);
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  }

  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

function harness(handler: Handler) {
  const client = new FakeAdminClient(handler);
  const out: string[] = [];
  const err: string[] = [];
  let connected: unknown;
  const deps = {
    connect: (options: unknown) => {
      connected = options;
      return client;
    },
    out: (line: string) => out.push(line),
    err: (line: string) => err.push(line),
  };
  return { client, out, err, deps, connected: () => connected };
}

const CLIENT: ClientOptions = { peers: [A, B, C], group: "counter", json: false, timeoutMs: 5000 };

/** A `status` answer of node `id`. */
function status(id: string, fields: Partial<Record<string, WireMap[string]>> = {}): AdminAnswer {
  return {
    leader: id,
    data: {
      id,
      role: id === A ? "leader" : "follower",
      term: 3,
      leader: A,
      commit: 120,
      applied: 118,
      lastIndex: 121,
      snapshotIndex: 100,
      value: "1000",
      voters: [A, B, C],
      learners: [],
      ...fields,
    } as WireMap,
  };
}

Deno.test("formatTable aligns columns, and a row's last cell neither pads nor widens", () => {
  assert.deepEqual(
    formatTable([
      ["ID", "ROLE", "LAG"],
      ["127.0.0.1:8081", "leader", "0"],
      ["h:1", "unreachable (a long reason that is not a column)"],
      ["h:2", "", ""],
    ]),
    [
      "ID              ROLE    LAG",
      "127.0.0.1:8081  leader  0",
      "h:1             unreachable (a long reason that is not a column)",
      "h:2",
    ],
  );
});

Deno.test("status asks each node directly and shows unreachable ones", async () => {
  const h = harness(({ peer }) => peer === C ? unreachable(C) : status(peer!));
  assert.equal(await runStatus(CLIENT, h.deps), 0);
  assert.deepEqual(h.client.calls, [
    { op: "status", args: {}, peer: A },
    { op: "status", args: {}, peer: B },
    { op: "status", args: {}, peer: C },
    // Which groups each node serves, for the groups part (none here: one group).
    { op: "groups", args: {}, peer: A },
    { op: "groups", args: {}, peer: B },
    { op: "groups", args: {}, peer: C },
  ]);
  assert.deepEqual(h.out, [
    "leader 127.0.0.1:8081, term 3; 2/3 voters up (need 2); degraded: 1 down",
    "NODE            ROLE      TERM  COMMIT  APPLIED  LAST  SNAP  VALUE",
    "127.0.0.1:8081  leader    3     120     118      121   100   1000",
    "127.0.0.1:8082  follower  3     120     118      121   100   1000 (behind)",
    "127.0.0.1:8083  down      (connection refused)",
  ]);
  assert.deepEqual(h.err, []);
  assert.ok(h.client.closed);
  assert.deepEqual(h.connected(), { peers: [A, B, C], group: "counter", timeoutMs: 5000 });
});

Deno.test("status --json: one line, large values as strings, failures with their reason", async () => {
  const h = harness(({ peer }) => {
    if (peer === A) {
      return status(A, {
        value: "-9223372036854775808",
        lastIndex: 2n ** 40n,
        lastTerm: 3,
        clusterId: "0123456789abcdef",
      });
    }
    if (peer === B) return new FakeCounterError("unknown group", "UNKNOWN_GROUP", "failed");
    return unreachable(C);
  });
  // One voter of three up: no quorum, so the group is not healthy.
  assert.equal(await runStatus({ ...CLIENT, json: true }, h.deps), 1);
  assert.equal(h.out.length, 1);
  assert.deepEqual(h.err, [], "--json: the JSON says it all");
  const { nodes, ...summary } = JSON.parse(h.out[0]);
  assert.deepEqual(summary, {
    leader: A,
    term: 3,
    votersUp: 1,
    voters: 3,
    quorum: 2,
    healthy: false,
  });
  assert.equal(nodes.length, 3);
  assert.equal(nodes[0].value, "-9223372036854775808");
  assert.equal(nodes[0].lastIndex, 2 ** 40);
  assert.equal(nodes[0].role, "leader");
  assert.equal(nodes[0].lastTerm, 3);
  assert.equal(nodes[0].clusterId, "0123456789abcdef");
  assert.deepEqual(nodes[1], { node: B, ok: false, reachable: true, error: "unknown group" });
  assert.deepEqual(nodes[2], {
    node: C,
    ok: false,
    reachable: false,
    error: "connection refused",
  });
});

Deno.test("status shows a malformed answer as a failed node", async () => {
  const h = harness(({ peer }) => status(peer!, peer === B ? { term: "three" } : {}));
  assert.equal(await runStatus(CLIENT, h.deps), 0);
  assert.equal(h.out[3], "127.0.0.1:8082  failed    (unexpected answer from 127.0.0.1:8082...)");
});

Deno.test("status exits 1 when no node answers", async () => {
  const h = harness(({ peer }) => unreachable(peer!));
  assert.equal(await runStatus(CLIENT, h.deps), 1);
  assert.equal(h.out.length, 5);
  assert.equal(h.out[0], "leader none, term 0; 0/3 voters up (need 2); unavailable: no quorum");
  assert.deepEqual(h.err, [
    "counter status: no counter node reachable at 127.0.0.1:8081, 127.0.0.1:8082, " +
    "127.0.0.1:8083 (connection refused); is the cluster running? Name its nodes with --peers " +
    "or COUNTER_PEERS",
  ]);
});

Deno.test("status with 1 of 3 voters up prints the summary first and exits 1", async () => {
  const h = harness(({ peer }) =>
    peer === B ? status(B, { leader: "", role: "candidate", term: 5 }) : unreachable(peer!)
  );
  assert.equal(await runStatus(CLIENT, h.deps), 1);
  assert.equal(h.out[0], "leader none, term 5; 1/3 voters up (need 2); unavailable: no quorum");
  assert.equal(h.out[4], "127.0.0.1:8083  down       (connection refused)");
  assert.deepEqual(h.err, ["counter status: no leader: 1 of 3 voters reachable (need 2)"]);
  for (const line of h.out) assert.ok(line.length <= 80, line);
});

function leaderOptions(fields: Partial<LeaderOptions> = {}): LeaderOptions {
  return { ...CLIENT, action: "show", ...fields } as LeaderOptions;
}

Deno.test("leader prints the leader named in the latest term", async () => {
  // B was cut off in term 2 and still thinks it leads; A and C moved on to term 3.
  const h = harness(({ peer }) =>
    peer === B ? status(B, { term: 2, leader: B, role: "leader" }) : status(peer!)
  );
  assert.equal(await runLeader(leaderOptions(), h.deps), 0);
  assert.deepEqual(h.out, [A]);
  const j = harness(({ peer }) => peer === C ? unreachable(C) : status(peer!));
  assert.equal(await runLeader(leaderOptions({ json: true }), j.deps), 0);
  assert.deepEqual(j.out, [`{"leader":"${A}","term":3}`]);
  assert.ok(j.client.closed);
});

Deno.test("leader does not name a leader that does not answer; it asks again", async () => {
  // A is gone; B and C have not noticed yet, then start an election and name C.
  let rounds = 0;
  const h = harness(({ peer }) => {
    if (peer === B) rounds++;
    if (peer === A) return unreachable(A);
    return rounds < 3 ? status(peer!) : status(peer!, { term: 4, leader: C });
  });
  assert.equal(await runLeader(leaderOptions(), h.deps), 0);
  assert.deepEqual(h.out, [C]);
  assert.equal(rounds, 3);
  // Never noticed within the deadline: no leader, with the reason.
  const stuck = harness(({ peer }) => peer === A ? unreachable(A) : status(peer!));
  assert.equal(await runLeader(leaderOptions({ timeoutMs: 50 }), stuck.deps), 1);
  assert.deepEqual(stuck.out, []);
  assert.match(
    stuck.err[0],
    /^counter leader: no leader known within 50 ms: 2 of 3 voters reachable/,
  );
});

Deno.test("leader asks again while an election is under way", async () => {
  let rounds = 0;
  const h = harness(({ peer }) => {
    if (peer === A) rounds++;
    return rounds < 3 ? status(peer!, { leader: "" }) : status(peer!);
  });
  assert.equal(await runLeader(leaderOptions(), h.deps), 0);
  assert.deepEqual(h.out, [A]);
  assert.equal(rounds, 3);
});

Deno.test("leader exits 1 when no leader is known by the deadline, or no node answers", async () => {
  const h = harness(({ peer }) => status(peer!, { leader: "", role: "candidate" }));
  assert.equal(await runLeader(leaderOptions({ timeoutMs: 50 }), h.deps), 1);
  assert.deepEqual(h.out, []);
  assert.deepEqual(h.err, [
    "counter leader: no leader known within 50 ms: 3 of 3 voters reachable (need 2); an " +
    "election may be under way",
  ]);
  const d = harness(({ peer }) => unreachable(peer!));
  assert.equal(await runLeader(leaderOptions(), d.deps), 1);
  assert.match(d.err[0], /^counter leader: no counter node reachable at 127\.0\.0\.1:8081, /);
  assert.match(d.err[0], /--peers or COUNTER_PEERS$/);
  // One voter of three: no election can succeed, and the message does not say one may.
  const one = harness(({ peer }) =>
    peer === A ? status(A, { leader: "", role: "candidate" }) : unreachable(peer!)
  );
  assert.equal(await runLeader(leaderOptions({ timeoutMs: 50 }), one.deps), 1);
  assert.deepEqual(one.err, ["counter leader: no leader: 1 of 3 voters reachable (need 2)"]);
});

Deno.test("leader fails loudly when two nodes name different leaders in one term", async () => {
  const h = harness(({ peer }) => status(peer!, { leader: peer === C ? C : A }));
  assert.equal(await runLeader(leaderOptions(), h.deps), 1);
  assert.match(h.err[0], /nodes in term 3 name different leaders/);
});

Deno.test("leader transfer goes to the leader and prints the new one", async () => {
  const h = harness(() => ({ leader: B, data: { leader: B } }));
  assert.equal(await runLeader(leaderOptions({ action: "transfer", node: B }), h.deps), 0);
  assert.deepEqual(h.client.calls, [{ op: "transfer_leader", args: { node: B }, peer: undefined }]);
  assert.deepEqual(h.out, [B]);
  const j = harness(() => ({ leader: B, data: { leader: B } }));
  assert.equal(
    await runLeader(leaderOptions({ action: "transfer", node: B, json: true }), j.deps),
    0,
  );
  assert.deepEqual(j.out, [`{"leader":"${B}"}`]);
});

Deno.test("leader transfer exits 1 when refused and 3 when the outcome is unknown", async () => {
  const refused = harness(() => new FakeCounterError(`${NEW} is not a voter`, "REFUSED", "failed"));
  const transfer = leaderOptions({ action: "transfer", node: NEW });
  assert.equal(await runLeader(transfer, refused.deps), 1);
  assert.deepEqual(refused.err, [`counter leader transfer: ${NEW} is not a voter`]);
  const unknown = harness(() => new FakeCounterError("no answer", "TIMEOUT", "unknown"));
  assert.equal(await runLeader(transfer, unknown.deps), 3);
  assert.deepEqual(unknown.err, [
    "counter leader transfer: no answer" +
    " (outcome unknown: leadership may still move; see 'counter leader')",
  ]);
  const other = harness(() => ({ leader: A, data: { leader: A } }));
  assert.equal(await runLeader(transfer, other.deps), 1);
  assert.match(other.err[0], /the leader is 127\.0\.0\.1:8081, not 127\.0\.0\.1:8084/);
});

function peersOptions(fields: Record<string, unknown>): PeersOptions {
  return { ...CLIENT, ...fields } as PeersOptions;
}

const MEMBERS: AdminAnswer = {
  leader: A,
  data: {
    leader: A,
    term: 3,
    members: [
      { id: A, role: "leader", match: 121, lag: 0, state: "self" },
      { id: B, role: "follower", match: 121, lag: 0, state: "replicate" },
      { id: C, role: "follower", match: 90, lag: 31, state: "probe" },
      { id: NEW, role: "learner", match: 5n, lag: 116, state: "snapshot" },
    ],
  },
};

Deno.test("peers list prints the leader's view as a table, or as JSON", async () => {
  const h = harness(({ op, peer }) =>
    op === "peers" ? MEMBERS : peer === C ? unreachable(C) : status(peer!)
  );
  assert.equal(await runPeers(peersOptions({ action: "list" }), h.deps), 0);
  assert.deepEqual(h.client.calls, [
    { op: "peers", args: {}, peer: undefined },
    { op: "status", args: {}, peer: B },
    { op: "status", args: {}, peer: C },
    { op: "status", args: {}, peer: NEW },
  ]);
  assert.deepEqual(h.out, [
    "ID              ROLE      MATCH  LAG  STATE",
    "127.0.0.1:8081  leader    121    0    -",
    "127.0.0.1:8082  follower  121    0    replicate",
    "127.0.0.1:8083  follower  90     31   down",
    "127.0.0.1:8084  learner   5      116  snapshot",
  ]);
  const j = harness(() => MEMBERS);
  assert.equal(await runPeers(peersOptions({ action: "list", json: true }), j.deps), 0);
  const list = JSON.parse(j.out[0]);
  assert.equal(list.leader, A);
  assert.deepEqual(list.members[3], {
    id: NEW,
    role: "learner",
    match: 5,
    lag: 116,
    state: "snapshot",
  });
});

Deno.test("peers list fails on a malformed answer", async () => {
  const h = harness(() => ({ leader: A, data: { leader: A, term: 3, members: [{ id: A }] } }));
  assert.equal(await runPeers(peersOptions({ action: "list" }), h.deps), 1);
  assert.deepEqual(h.err, [
    "counter peers list: unexpected answer from 127.0.0.1:8081: role is not a non-empty string",
  ]);
});

const CONF_AFTER_ADD: AdminAnswer = { leader: A, data: { voters: [A, B, C, NEW], learners: [] } };

/** The `peers` answer with members `ids` (voters) and `learners`. */
function membersAnswer(ids: string[], learners: string[] = []): AdminAnswer {
  const member = (id: string, role: string) => ({ id, role, match: 1, lag: 0, state: "self" });
  return {
    leader: A,
    data: {
      leader: A,
      term: 3,
      members: [
        ...ids.map((id) => member(id, id === A ? "leader" : "follower")),
        ...learners.map((id) => member(id, "learner")),
      ],
    },
  };
}

/** A handler that answers `peers` with `members` and any other op with `answer`. */
function withMembers(members: AdminAnswer, answer: AdminAnswer | Error): Handler {
  return ({ op }) => op === "peers" ? members : answer;
}

const PEERS_CALL = { op: "peers", args: {}, peer: undefined };

Deno.test("peers add sends add_peer, with learner only when asked, and prints the conf", async () => {
  const h = harness(withMembers(membersAnswer([A, B, C]), CONF_AFTER_ADD));
  assert.equal(
    await runPeers(peersOptions({ action: "add", node: NEW, learner: false }), h.deps),
    0,
  );
  assert.deepEqual(h.client.calls, [
    PEERS_CALL,
    { op: "add_peer", args: { node: NEW }, peer: undefined },
  ]);
  assert.deepEqual(h.out, [`voters: ${A},${B},${C},${NEW}`, "learners: (none)"]);

  const l = harness(
    withMembers(membersAnswer([A, B, C]), {
      leader: A,
      data: { voters: [A, B, C], learners: [NEW] },
    }),
  );
  const learner = peersOptions({ action: "add", node: NEW, learner: true, json: true });
  assert.equal(await runPeers(learner, l.deps), 0);
  assert.deepEqual(l.client.calls[1].args, { node: NEW, learner: true });
  assert.deepEqual(JSON.parse(l.out[0]), { voters: [A, B, C], learners: [NEW], leader: A });
});

Deno.test("peers remove and promote send their ops", async () => {
  for (const [action, op] of [["remove", "remove_peer"], ["promote", "promote_peer"]]) {
    const h = harness(withMembers(membersAnswer([A, B, C], [NEW]), CONF_AFTER_ADD));
    assert.equal(await runPeers(peersOptions({ action, node: NEW }), h.deps), 0);
    assert.deepEqual(h.client.calls, [PEERS_CALL, { op, args: { node: NEW }, peer: undefined }]);
    assert.equal(h.out.length, 2);
  }
});

Deno.test("a repeated add, remove or promote succeeds with 'already ...' and changes nothing", async () => {
  const cases: [Record<string, unknown>, AdminAnswer, string][] = [
    [{ action: "add", node: NEW, learner: false }, membersAnswer([A, B, C, NEW]), "a voter"],
    [{ action: "add", node: NEW, learner: true }, membersAnswer([A, B, C], [NEW]), "a learner"],
    [{ action: "promote", node: NEW }, membersAnswer([A, B, C, NEW]), "a voter"],
    [{ action: "remove", node: NEW }, membersAnswer([A, B, C]), "not a member"],
  ];
  for (const [fields, members, already] of cases) {
    const h = harness(withMembers(members, new Error("no change may be sent")));
    assert.equal(await runPeers(peersOptions(fields), h.deps), 0, h.err.join("\n"));
    assert.deepEqual(h.client.calls, [PEERS_CALL], "only the list was asked for");
    assert.equal(h.out[0], `${NEW} is already ${already}`);
    assert.match(h.out[1], /^voters: /);
    const j = harness(withMembers(members, new Error("no change may be sent")));
    assert.equal(await runPeers(peersOptions({ ...fields, json: true }), j.deps), 0);
    assert.equal(JSON.parse(j.out[0]).already, already);
  }
});

Deno.test("a membership change exits 1 when refused and 3 when the outcome is unknown", async () => {
  const remove = peersOptions({ action: "remove", node: NEW });
  const refused = harness(
    withMembers(
      membersAnswer([A, B, C, NEW]),
      new FakeCounterError(`${NEW} cannot be removed now`, "REFUSED", "failed"),
    ),
  );
  assert.equal(await runPeers(remove, refused.deps), 1);
  assert.deepEqual(refused.err, [`counter peers remove: ${NEW} cannot be removed now`]);
  const unknown = harness(
    withMembers(
      membersAnswer([A, B, C, NEW]),
      new FakeCounterError("no answer", "TIMEOUT", "unknown"),
    ),
  );
  assert.equal(await runPeers(remove, unknown.deps), 3);
  assert.deepEqual(unknown.err, [
    "counter peers remove: no answer (outcome unknown: the change may or may not have been" +
    " applied; see 'counter peers list')",
  ]);
});

Deno.test("snapshot asks the one node and prints the index", async () => {
  const options: SnapshotOptions = { ...CLIENT, peers: [B], peer: B };
  const h = harness(() => ({ leader: B, data: { snapshotIndex: 4_294_967_296n } }));
  assert.equal(await runSnapshot(options, h.deps), 0);
  assert.deepEqual(h.client.calls, [{ op: "snapshot", args: {}, peer: B }]);
  assert.deepEqual(h.out, ["4294967296"]);
  const j = harness(() => ({ leader: B, data: { snapshotIndex: 7 } }));
  assert.equal(await runSnapshot({ ...options, json: true }, j.deps), 0);
  assert.deepEqual(j.out, [`{"node":"${B}","snapshotIndex":7}`]);
});

Deno.test("snapshot exits 1 on failure and 3 on an unknown outcome", async () => {
  const options: SnapshotOptions = { ...CLIENT, peers: [B], peer: B };
  const failed = harness(() =>
    new FakeCounterError("snapshot failed: disk full", "INTERNAL", "failed")
  );
  assert.equal(await runSnapshot(options, failed.deps), 1);
  assert.deepEqual(failed.err, ["counter snapshot: snapshot failed: disk full"]);
  const unknown = harness(() => new FakeCounterError("no answer", "TIMEOUT", "unknown"));
  assert.equal(await runSnapshot(options, unknown.deps), 3);
  assert.match(unknown.err[0], /the node may still write the snapshot/);
});

Deno.test("the admin help texts list their subcommands, examples and exit codes", () => {
  const top = helpText();
  for (const name of ["status", "leader", "peers", "snapshot", "recover"] as const) {
    assert.match(top, new RegExp(`\n {2}${name} +\\S`));
    const text = helpText(name);
    assert.match(text, new RegExp(`^Usage: counter ${name}`));
    assert.match(text, /\nExit codes:\n {2}0 {2}/);
  }
  for (const sub of ["list", "add", "remove", "promote"]) {
    assert.match(helpText("peers"), new RegExp(`\n {2}${sub} +\\S`));
  }
  assert.doesNotMatch(helpText("peers"), /peers reset/);
  assert.match(helpText("peers"), /'counter recover'/);
  assert.match(
    helpText("recover"),
    /counter recover --data \/var\/lib\/counter\/n1 --force-new-cluster/,
  );
  assert.match(helpText("leader"), /counter leader transfer 127\.0\.0\.1:8082/);
});

Deno.test("snapshot without --peer asks every node of --peers, one row each", async () => {
  const h = harness(({ peer }) =>
    peer === B ? unreachable(B) : { leader: A, data: { snapshotIndex: peer === A ? 120 : 90 } }
  );
  assert.equal(await runSnapshot({ ...CLIENT, peer: undefined }, h.deps), 1);
  assert.deepEqual(h.client.calls.map((c) => [c.op, c.peer]), [
    ["snapshot", A],
    ["snapshot", B],
    ["snapshot", C],
  ]);
  assert.deepEqual(h.out, [
    "NODE            INDEX",
    "127.0.0.1:8081  120",
    "127.0.0.1:8082  failed (connection refused)",
    "127.0.0.1:8083  90",
  ]);
  const j = harness(({ peer }) => ({ leader: A, data: { snapshotIndex: peer === A ? 120 : 90 } }));
  assert.equal(await runSnapshot({ ...CLIENT, json: true, peer: undefined }, j.deps), 0);
  assert.deepEqual(JSON.parse(j.out[0]), {
    nodes: [
      { node: A, snapshotIndex: 120 },
      { node: B, snapshotIndex: 90 },
      { node: C, snapshotIndex: 90 },
    ],
  });
});
