/**
 * Parsing of the admin commands: `status`, `leader`, `peers` and `snapshot`.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_PEERS,
  formatUsageError,
  parseCommandLine,
  parseLeaderArgs,
  parsePeersArgs,
  parseSnapshotArgs,
  parseStatusArgs,
} from "../../lib/cli/args.ts";
import { assertUsage } from "./_usage.ts";

const noEnv = { env: () => undefined };
const DEFAULTS = { peers: [...DEFAULT_PEERS], group: "counter", json: false, timeoutMs: 5000 };
const A = "127.0.0.1:8081";
const B = "127.0.0.1:8082";
const NEW = "127.0.0.1:8084";

function peers(...argv: string[]) {
  return parsePeersArgs(argv, noEnv);
}

function leader(...argv: string[]) {
  return parseLeaderArgs(argv, noEnv);
}

Deno.test("peers lists by default, and 'peers list' reads the client options", () => {
  assert.deepEqual(peers(), { ...DEFAULTS, action: "list" });
  assert.deepEqual(peers("--json"), { ...DEFAULTS, json: true, action: "list" });
  assert.deepEqual(peers("list", "--peers", `${A},${B}`, "--group", "g", "--timeout-ms", "10"), {
    peers: [A, B],
    group: "g",
    json: false,
    timeoutMs: 10,
    action: "list",
  });
  assertUsage(() => peers("list", "extra"), /unexpected argument "extra"/);
  assertUsage(() => peers("--learner"), /unknown option --learner/);
});

Deno.test("peers add takes one node and --learner", () => {
  assert.deepEqual(peers("add", NEW), { ...DEFAULTS, action: "add", node: NEW, learner: false });
  assert.deepEqual(peers("add", "--learner", NEW, "--json"), {
    ...DEFAULTS,
    json: true,
    action: "add",
    node: NEW,
    learner: true,
  });
  assertUsage(() => peers("add"), /missing HOST:PORT, the node to add/);
  assertUsage(() => peers("add", "localhost"), /invalid address "localhost"/);
  assertUsage(() => peers("add", NEW, A), /unexpected argument "127.0.0.1:8081"/);
  assertUsage(() => peers("add", NEW, "--force"), /unknown option --force/);
});

Deno.test("peers remove and promote take one node and no --learner", () => {
  assert.deepEqual(peers("remove", B), { ...DEFAULTS, action: "remove", node: B });
  assert.deepEqual(peers("promote", NEW), { ...DEFAULTS, action: "promote", node: NEW });
  assertUsage(() => peers("remove"), /missing HOST:PORT, the node to remove/);
  assertUsage(() => peers("promote", NEW, "--learner"), /unknown option --learner/);
  assertUsage(() => peers("promote", "h:0"), /invalid address "h:0"/);
});

Deno.test("an unknown peers subcommand is a usage error that lists the right ones", () => {
  assertUsage(() => peers("join", NEW), /unknown subcommand "join" \(expected list, add,/);
  assertUsage(() => peers("List"), /unknown subcommand "List"/);
});

Deno.test("peers reset is gone: a usage error that names 'counter recover'", () => {
  for (const argv of [["reset"], ["reset", "--force", `${A},${B}`], ["reset", "--help"]]) {
    assertUsage(
      () => peers(...argv),
      /'peers reset' was replaced by 'counter recover --data DIR --force-new-cluster'/,
    );
  }
  assertUsage(() => peers("join", NEW), /\(expected list, add, remove or promote\)/);
});

Deno.test("peers list reads COUNTER_PEERS and rejects a malformed one", () => {
  assertUsage(
    () => parsePeersArgs(["list"], { env: () => "not an address" }),
    /invalid address "not an address" in COUNTER_PEERS/,
  );
});

Deno.test("leader names the leader, and 'leader transfer' takes one node", () => {
  assert.deepEqual(leader(), { ...DEFAULTS, action: "show" });
  assert.deepEqual(leader("--json"), { ...DEFAULTS, json: true, action: "show" });
  assert.deepEqual(leader("transfer", B), { ...DEFAULTS, action: "transfer", node: B });
  assert.deepEqual(leader("transfer", "--json", B).json, true);
  assert.deepEqual(leader("balance"), { ...DEFAULTS, action: "balance" });
  assertUsage(() => leader("transfer"), /missing HOST:PORT, the node to transfer leadership to/);
  assertUsage(() => leader("transfer", B, A), /unexpected argument/);
  assertUsage(() => leader("show"), /unknown subcommand "show" \(expected transfer or balance\)/);
  assertUsage(
    () => leader(B),
    /unknown subcommand "127.0.0.1:8082" \(expected transfer or balance\)/,
  );
  assertUsage(() => leader("--json", "transfer", B), /unexpected argument "transfer"/);
});

Deno.test("status takes the client options and nothing else", () => {
  assert.deepEqual(parseStatusArgs([], noEnv), DEFAULTS);
  assert.deepEqual(parseStatusArgs([], { env: () => `${A},${B}` }).peers, [A, B]);
  assertUsage(() => parseStatusArgs(["all"], noEnv), /unexpected argument "all"/);
  assertUsage(() => parseStatusArgs(["--timeout-ms", "0"], noEnv), /invalid --timeout-ms "0"/);
});

Deno.test("snapshot takes --peer, or else --peers like the other commands", () => {
  assert.deepEqual(parseSnapshotArgs(["--peer", B, "--json"]), {
    ...DEFAULTS,
    peers: [B],
    json: true,
    peer: B,
  });
  assert.deepEqual(parseSnapshotArgs([], noEnv), { ...DEFAULTS, peer: undefined });
  assert.deepEqual(parseSnapshotArgs(["--peers", `${A},${B}`], noEnv).peers, [A, B]);
  assert.deepEqual(parseSnapshotArgs([], { env: () => B }).peers, [B]);
  assertUsage(() => parseSnapshotArgs(["--peer", "x"]), /invalid address "x" in --peer/);
  assertUsage(() => parseSnapshotArgs(["--peer", B, A]), /unexpected argument/);
  assertUsage(
    () => parseSnapshotArgs(["--peer", B, "--peers", A]),
    /--peers is not used here: --peer names the one node/,
  );
});

Deno.test("parseCommandLine dispatches the admin commands and their help", () => {
  assert.equal(parseCommandLine(["status"], noEnv).command, "status");
  assert.equal(parseCommandLine(["leader", "transfer", B], noEnv).command, "leader");
  assert.equal(parseCommandLine(["peers", "add", NEW], noEnv).command, "peers");
  assert.equal(parseCommandLine(["snapshot", "--peer", A], noEnv).command, "snapshot");
  for (const topic of ["status", "leader", "peers", "snapshot"] as const) {
    assert.deepEqual(parseCommandLine(["help", topic], noEnv), { command: "help", topic });
  }
  assert.deepEqual(parseCommandLine(["peers", "reset", "--help"], noEnv), {
    command: "help",
    topic: "peers",
  });
  assert.deepEqual(parseCommandLine(["leader", "transfer", "-h"], noEnv), {
    command: "help",
    topic: "leader",
  });
});

Deno.test("admin usage errors name their command", () => {
  const error = assertUsage(
    () => parseCommandLine(["peers", "add"], noEnv),
    /missing HOST:PORT/,
  );
  assert.equal(
    formatUsageError(error),
    "counter peers: missing HOST:PORT, the node to add (see 'counter peers --help')",
  );
});
