import assert from "node:assert/strict";
import {
  DEFAULT_PEERS,
  formatUsageError,
  type Invocation,
  parseBenchArgs,
  parseCommandLine,
  parseDemoArgs,
  parseGetArgs,
  parseIncrArgs,
  parseServeArgs,
  UsageError,
} from "../../lib/cli/args.ts";
import { INT64_MAX, INT64_MIN } from "../../lib/cli/values.ts";
import { assertUsage } from "./_usage.ts";

const noEnv = { env: () => undefined };
const SERVE_REQUIRED = ["--data", "/d", "--id", "h:1", "--conf", "h:1,h:2,h:3"];

function incr(...argv: string[]) {
  return parseIncrArgs(argv, noEnv);
}

Deno.test("incr reads a negative delta written as a flag-like argument", () => {
  assert.equal(incr("-5").delta, -5n);
  assert.equal(incr("--json", "-5").delta, -5n);
  assert.equal(incr("-5", "--json").delta, -5n);
  assert.equal(incr("--group", "g", "-5").delta, -5n);
});

Deno.test("incr reads a negative delta after --", () => {
  assert.equal(incr("--", "-5").delta, -5n);
  assert.equal(incr("--json", "--", "-9223372036854775808").delta, INT64_MIN);
});

Deno.test("incr reads positive deltas, with or without a plus sign", () => {
  assert.equal(incr("5").delta, 5n);
  assert.equal(incr("+5").delta, 5n);
  assert.equal(incr("0").delta, 0n);
  assert.equal(incr("-0").delta, 0n);
});

Deno.test("incr parses the int64 bounds exactly", () => {
  assert.equal(incr("9223372036854775807").delta, INT64_MAX);
  assert.equal(incr("-9223372036854775808").delta, INT64_MIN);
  assert.equal(incr("9223372036854775806").delta, INT64_MAX - 1n);
  assert.equal(incr("-9223372036854775807").delta, INT64_MIN + 1n);
});

Deno.test("incr rejects deltas just outside the int64 range", () => {
  assertUsage(() => incr("9223372036854775808"), /invalid DELTA "9223372036854775808"/);
  assertUsage(() => incr("-9223372036854775809"), /invalid DELTA "-9223372036854775809"/);
  assertUsage(() => incr("99999999999999999999999"), /invalid DELTA/);
});

Deno.test("incr rejects deltas that are not whole numbers", () => {
  for (
    const text of ["1.5", "1e3", "-1.5", "-1e3", "0x10", "abc", " 5", "5 ", "", "--5", "1_000"]
  ) {
    assertUsage(() => incr("--", text), /invalid DELTA/);
  }
  assertUsage(() => incr("1e3"), /invalid DELTA "1e3"/);
  assertUsage(() => incr("-1.5"), /invalid DELTA "-1.5"/);
});

Deno.test("incr needs exactly one DELTA", () => {
  assertUsage(() => incr(), /missing DELTA/);
  assertUsage(() => incr("--json"), /missing DELTA/);
  assertUsage(() => incr("1", "2"), /unexpected argument "2"/);
  assertUsage(() => incr("1", "-2"), /unexpected argument "-2"/);
  assertUsage(() => incr("--", "1", "-2"), /unexpected argument "-2"/);
});

Deno.test("client commands have the documented defaults", () => {
  assert.deepEqual(parseGetArgs([], noEnv), {
    peers: [...DEFAULT_PEERS],
    group: "counter",
    json: false,
    timeoutMs: 5000,
    consistency: "linearizable",
  });
  assert.deepEqual(incr("1"), {
    peers: ["127.0.0.1:8081", "127.0.0.1:8082", "127.0.0.1:8083"],
    group: "counter",
    json: false,
    timeoutMs: 5000,
    delta: 1n,
  });
});

Deno.test("client commands read every option", () => {
  assert.deepEqual(
    parseGetArgs(["--peers", "a:1,b:2", "--group", "g-1", "--json", "--timeout-ms", "250"], noEnv),
    {
      peers: ["a:1", "b:2"],
      group: "g-1",
      json: true,
      timeoutMs: 250,
      consistency: "linearizable",
    },
  );
  for (const level of ["linearizable", "lease", "follower", "stale"]) {
    assert.equal(parseGetArgs(["--consistency", level], noEnv).consistency, level);
  }
  assertUsage(() => parseGetArgs(["--consistency", "eventual"], noEnv), /--consistency/);
  assert.deepEqual(parseGetArgs(["--peers=a:1", "--timeout-ms=7"], noEnv).peers, ["a:1"]);
});

Deno.test("peers come from --peers, else COUNTER_PEERS, else the defaults", () => {
  const env = (name: string) => name === "COUNTER_PEERS" ? "e:1,e:2" : undefined;
  assert.deepEqual(parseGetArgs([], { env }).peers, ["e:1", "e:2"]);
  assert.deepEqual(parseGetArgs(["--peers", "f:1"], { env }).peers, ["f:1"]);
  assert.deepEqual(parseBenchArgs([], { env }).peers, ["e:1", "e:2"]);
  assert.deepEqual(parseIncrArgs(["1"], { env }).peers, ["e:1", "e:2"]);
  assert.deepEqual(parseGetArgs([], { env: () => "" }).peers, [...DEFAULT_PEERS]);
});

Deno.test("an invalid COUNTER_PEERS is a usage error that names it", () => {
  assertUsage(() => parseGetArgs([], { env: () => "e:1,,e:2" }), /empty address in COUNTER_PEERS/);
  assertUsage(() => parseGetArgs([], { env: () => "e" }), /invalid address "e" in COUNTER_PEERS/);
  // --peers wins, so a bad COUNTER_PEERS does not matter then.
  assert.deepEqual(parseGetArgs(["--peers", "a:1"], { env: () => "bad" }).peers, ["a:1"]);
});

Deno.test("parseCommandLine reads COUNTER_PEERS from the environment by default", () => {
  const saved = Deno.env.get("COUNTER_PEERS");
  Deno.env.set("COUNTER_PEERS", "127.0.0.9:9000");
  try {
    const invocation = parseCommandLine(["get"]);
    assert.equal(invocation.command, "get");
    assert.deepEqual(invocation.command === "get" && invocation.options.peers, ["127.0.0.9:9000"]);
  } finally {
    if (saved === undefined) Deno.env.delete("COUNTER_PEERS");
    else Deno.env.set("COUNTER_PEERS", saved);
  }
});

Deno.test("unknown options are usage errors", () => {
  assertUsage(() => incr("1", "--foo"), /^unknown option --foo$/);
  assertUsage(() => incr("1", "--foo=bar"), /^unknown option --foo$/);
  assertUsage(() => incr("1", "-x"), /^unknown option -x$/);
  assertUsage(() => parseGetArgs(["--no-json"], noEnv), /^unknown option --no-json$/);
  assertUsage(() => parseGetArgs(["--data", "x"], noEnv), /^unknown option --data$/);
  assertUsage(() => parseDemoArgs(["--peers", "a:1"]), /^unknown option --peers$/);
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--json"]), /^unknown option --json$/);
});

Deno.test("options that need a value must have one", () => {
  assertUsage(() => parseGetArgs(["--peers"], noEnv), /^option --peers needs a value$/);
  assertUsage(() => parseGetArgs(["--peers="], noEnv), /^option --peers needs a value$/);
  assertUsage(
    () => parseGetArgs(["--peers", "--json"], noEnv),
    /^option --peers needs a value$/,
  );
  assertUsage(
    () => parseServeArgs(["--data", "--id", "h:1", "--conf", "h:1"]),
    /^option --data needs a value$/,
  );
});

Deno.test("flags take no value and no option is given twice", () => {
  assertUsage(() => parseGetArgs(["--json=yes"], noEnv), /^option --json takes no value$/);
  assertUsage(() => parseGetArgs(["--json", "--json"], noEnv), /given more than once/);
  assertUsage(
    () => parseGetArgs(["--group", "a", "--group=b"], noEnv),
    /^option --group is given more than once$/,
  );
});

Deno.test("numbers outside their bounds or malformed are usage errors", () => {
  assertUsage(() => parseGetArgs(["--timeout-ms", "0"], noEnv), /invalid --timeout-ms "0"/);
  assertUsage(() => parseGetArgs(["--timeout-ms", "-5"], noEnv), /invalid --timeout-ms "-5"/);
  assertUsage(() => parseGetArgs(["--timeout-ms", "1.5"], noEnv), /invalid --timeout-ms "1.5"/);
  assertUsage(() => parseGetArgs(["--timeout-ms", "1e3"], noEnv), /invalid --timeout-ms/);
  assertUsage(() => parseGetArgs(["--timeout-ms", "abc"], noEnv), /invalid --timeout-ms/);
  assertUsage(
    () => parseGetArgs(["--timeout-ms", "99999999999999999999"], noEnv),
    /invalid --timeout-ms/,
  );
  assertUsage(() => parseBenchArgs(["--ops", "0"], noEnv), /invalid --ops "0"/);
  assertUsage(() => parseDemoArgs(["--base-port", "65534"]), /invalid --base-port "65534"/);
  assert.equal(parseDemoArgs(["--base-port", "65533"]).basePort, 65533);
});

Deno.test("bad HOST:PORT values are usage errors", () => {
  const cases: [string, RegExp][] = [
    ["h:0", /the port must be a number from 1 to 65535/],
    ["h:65536", /the port must be a number from 1 to 65535/],
    ["h:08081", /the port must be/],
    ["h:-1", /the port must be/],
    ["h:abc", /the port must be/],
    ["h:", /the port must be/],
    [":8081", /the host is empty/],
    ["h", /expected HOST:PORT/],
    ["h h:1", /bad host "h h"/],
    ["::1:8081", /bad host "::1"/],
    ["[]:8081", /bad host "\[\]"/],
  ];
  for (const [text, pattern] of cases) {
    assertUsage(() => parseGetArgs(["--peers", text], noEnv), pattern);
  }
  assertUsage(() => parseGetArgs(["--peers", "a:1,"], noEnv), /empty address in --peers/);
  assertUsage(() => parseGetArgs(["--peers", "a:1, b:2"], noEnv), /bad host " b"/);
  assertUsage(() => parseGetArgs(["--peers", "a:1,a:1"], noEnv), /duplicate address "a:1"/);
});

Deno.test("good HOST:PORT values are accepted unchanged", () => {
  const peers = "127.0.0.1:1,localhost:65535,node-1.example.com:8081,[::1]:8081,[fe80::1%eth0]:9";
  assert.deepEqual(parseGetArgs(["--peers", peers], noEnv).peers, peers.split(","));
});

Deno.test("serve needs --data, --id and --conf", () => {
  assertUsage(() => parseServeArgs([]), /^missing required option --data$/);
  assertUsage(
    () => parseServeArgs(["--data", "/d", "--conf", "h:1"]),
    /^missing required option --id$/,
  );
  assertUsage(
    () => parseServeArgs(["--data", "/d", "--id", "h:1"]),
    /^missing required option --conf$/,
  );
  assertUsage(
    () => parseServeArgs(["--data", "/d", "--id", "h:1", "--conf", "h:2,h:3"]),
    /^--conf must include this node's --id h:1$/,
  );
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "extra"]), /unexpected argument "extra"/);
});

Deno.test("serve has the documented defaults", () => {
  assert.deepEqual(parseServeArgs(SERVE_REQUIRED), {
    dataDir: "/d",
    id: "h:1",
    conf: ["h:1", "h:2", "h:3"],
    group: "counter",
    groups: ["counter"],
    electionTimeoutMs: 1000,
    heartbeatIntervalMs: 100,
    snapshotIntervalSecs: 3600,
    snapshotLogEntries: 10_000,
    snapshotRetainEntries: 5_000,
    snapshotLogBytes: 4 * 1024 * 1024,
    snapshotRetainBytes: 1024 * 1024,
    logSegmentBytes: 4 * 1024 * 1024,
    bootstrapTimeoutSecs: 300,
    idleTimeoutSecs: 300,
    frameTimeoutSecs: 10,
    logLevel: "info",
    logFormat: "text",
  });
});

Deno.test("serve takes the connection timeouts, 0 turning the idle one off", () => {
  const options = parseServeArgs([
    ...SERVE_REQUIRED,
    "--idle-timeout-secs",
    "0",
    "--frame-timeout-secs",
    "2",
  ]);
  assert.equal(options.idleTimeoutSecs, 0);
  assert.equal(options.frameTimeoutSecs, 2);
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--frame-timeout-secs", "0"]),
    /--frame-timeout-secs/,
  );
});

Deno.test("serve reads every option", () => {
  const options = parseServeArgs([
    ...SERVE_REQUIRED,
    "--group=g",
    "--election-timeout-ms",
    "300",
    "--heartbeat-interval-ms",
    "50",
    "--snapshot-interval-secs",
    "60",
    "--log-level",
    "debug",
    "--log-format",
    "json",
  ]);
  assert.equal(options.group, "g");
  assert.equal(options.electionTimeoutMs, 300);
  assert.equal(options.heartbeatIntervalMs, 50);
  assert.equal(options.snapshotIntervalSecs, 60);
  assert.equal(options.logLevel, "debug");
  assert.equal(options.logFormat, "json");
  assert.equal(
    parseServeArgs([...SERVE_REQUIRED, "--listen", "0.0.0.0:9000"]).listen,
    "0.0.0.0:9000",
  );
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--listen", "nowhere"]), /--listen/);
  const never = parseServeArgs([...SERVE_REQUIRED, "--snapshot-interval-secs", "0"]);
  assert.equal(never.snapshotIntervalSecs, 0, "0 turns periodic snapshots off");
});

Deno.test("serve takes --bootstrap-timeout-secs, 0 meaning forever", () => {
  assert.equal(
    parseServeArgs([...SERVE_REQUIRED, "--bootstrap-timeout-secs", "20"]).bootstrapTimeoutSecs,
    20,
  );
  assert.equal(
    parseServeArgs([...SERVE_REQUIRED, "--bootstrap-timeout-secs", "0"]).bootstrapTimeoutSecs,
    0,
  );
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--bootstrap-timeout-secs", "-1"]),
    /bootstrap-timeout-secs/,
  );
});

Deno.test("serve wants an election timeout greater than the heartbeat interval", () => {
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--election-timeout-ms", "100"]),
    /^--election-timeout-ms \(100\) must be greater than --heartbeat-interval-ms \(100\)$/,
  );
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--heartbeat-interval-ms", "2000"]),
    /must be greater than --heartbeat-interval-ms \(2000\)/,
  );
  assert.equal(
    parseServeArgs([...SERVE_REQUIRED, "--election-timeout-ms", "101"]).electionTimeoutMs,
    101,
  );
});

Deno.test("serve checks the log level, log format and group", () => {
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--log-level", "trace"]),
    /^invalid --log-level "trace": expected debug, info, warn or error$/,
  );
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--log-format", "xml"]),
    /^invalid --log-format "xml": expected text or json$/,
  );
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--group", "a b"]), /invalid --group/);
  assertUsage(() => parseGetArgs(["--group", "x".repeat(65)], noEnv), /invalid --group/);
});

Deno.test("demo has the documented defaults and reads its options", () => {
  assert.deepEqual(parseDemoArgs([]), { dataDir: undefined, basePort: 8081, keep: false });
  assert.deepEqual(parseDemoArgs(["--data", "/tmp/d", "--base-port", "9000", "--keep"]), {
    dataDir: "/tmp/d",
    basePort: 9000,
    keep: true,
  });
});

Deno.test("parseCommandLine dispatches on the subcommand", () => {
  const cases: [string[], Invocation["command"]][] = [
    [["serve", ...SERVE_REQUIRED], "serve"],
    [["incr", "1"], "incr"],
    [["get"], "get"],
    [["demo"], "demo"],
    [["bench"], "bench"],
    [["help"], "help"],
    [["--version"], "version"],
  ];
  for (const [argv, command] of cases) {
    assert.equal(parseCommandLine(argv, noEnv).command, command);
  }
  const invocation = parseCommandLine(["incr", "-7", "--json"], noEnv);
  assert.ok(invocation.command === "incr");
  assert.equal(invocation.options.delta, -7n);
  assert.equal(invocation.options.json, true);
});

Deno.test("help is asked for in every documented way", () => {
  const help = (topic?: string) => ({ command: "help", topic });
  assert.deepEqual(parseCommandLine(["--help"], noEnv), help());
  assert.deepEqual(parseCommandLine(["-h"], noEnv), help());
  assert.deepEqual(parseCommandLine(["help"], noEnv), help());
  assert.deepEqual(parseCommandLine(["help", "incr"], noEnv), help("incr"));
  assert.deepEqual(parseCommandLine(["help", "--help"], noEnv), help("help"));
  assert.deepEqual(parseCommandLine(["incr", "--help"], noEnv), help("incr"));
  assert.deepEqual(parseCommandLine(["serve", "-h"], noEnv), help("serve"));
  // Help wins over whatever else is wrong on the line.
  assert.deepEqual(parseCommandLine(["get", "--foo", "-h", "x"], noEnv), help("get"));
  // After --, "--help" is an argument.
  assertUsage(() => parseCommandLine(["incr", "--", "--help"], noEnv), /invalid DELTA "--help"/);
});

Deno.test("plain 'counter' asks for the usage; -V and 'version' for the version", () => {
  assert.deepEqual(parseCommandLine([], noEnv), { command: "help", topic: undefined });
  for (const word of ["--version", "-V", "version"]) {
    assert.deepEqual(parseCommandLine([word], noEnv), { command: "version" });
  }
});

Deno.test("top-level mistakes are usage errors without a subcommand", () => {
  const cases: [string[], RegExp][] = [
    [["-V", "x"], /^unexpected argument "x"$/],
    [["frobnicate"], /^unknown command "frobnicate"$/],
    [["--foo"], /^unknown option --foo$/],
    [["--foo=1"], /^unknown option --foo$/],
    [["--version", "x"], /^unexpected argument "x"$/],
    [["--help", "incr"], /^unexpected argument "incr"$/],
  ];
  for (const [argv, pattern] of cases) {
    const error = assertUsage(() => parseCommandLine(argv, noEnv), pattern);
    assert.equal(error.command, undefined);
  }
  const error = assertUsage(() => parseCommandLine(["help", "nope"], noEnv), /unknown command/);
  assert.equal(error.command, "help");
});

Deno.test("usage errors carry their subcommand and render as one line", () => {
  const error = assertUsage(() => parseCommandLine(["incr", "--foo"], noEnv), /unknown option/);
  assert.equal(error.command, "incr");
  assert.equal(
    formatUsageError(error),
    "counter incr: unknown option --foo (see 'counter incr --help')",
  );
  assert.equal(
    formatUsageError(new UsageError("missing command")),
    "counter: missing command (see 'counter --help')",
  );
});

Deno.test("serve takes TLS files all together, and token files", () => {
  const tls = ["--tls-cert", "n.crt", "--tls-key", "n.key", "--tls-ca", "ca.crt"];
  const options = parseServeArgs([
    ...SERVE_REQUIRED,
    ...tls,
    "--cluster-token-file",
    "c.token",
    "--client-token-file",
    "u.token",
    "--admin-token-file",
    "a.token",
  ]);
  assert.deepEqual(options.tls, { certFile: "n.crt", keyFile: "n.key", caFile: "ca.crt" });
  assert.equal(options.clusterTokenFile, "c.token");
  assert.equal(options.clientTokenFile, "u.token");
  assert.equal(options.adminTokenFile, "a.token");
  assert.equal(parseServeArgs(SERVE_REQUIRED).tls, undefined);
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--tls-cert", "n.crt"]),
    /^TLS needs --tls-cert, --tls-key and --tls-ca together; missing --tls-key, --tls-ca$/,
  );
});

Deno.test("client commands take --tls-ca and --token-file, else COUNTER_TLS_CA and COUNTER_TOKEN_FILE", () => {
  const flags = parseCommandLine(["incr", "1", "--tls-ca", "ca.crt", "--token-file", "t"], noEnv);
  assert.ok(flags.command === "incr");
  assert.equal(flags.options.tlsCa, "ca.crt");
  assert.equal(flags.options.tokenFile, "t");
  const env: Record<string, string> = { COUNTER_TLS_CA: "env.crt", COUNTER_TOKEN_FILE: "env.t" };
  const fromEnv = parseCommandLine(["peers", "add", "h:9"], { env: (name) => env[name] });
  assert.ok(fromEnv.command === "peers");
  assert.equal(fromEnv.options.tlsCa, "env.crt");
  assert.equal(fromEnv.options.tokenFile, "env.t");
  const plain = parseCommandLine(["get"], noEnv);
  assert.ok(plain.command === "get");
  assert.equal(plain.options.tlsCa, undefined);
});

Deno.test("certs needs --out and --hosts", () => {
  const invocation = parseCommandLine(["certs", "--out", "d", "--hosts", "127.0.0.1,db.local"]);
  assert.ok(invocation.command === "certs");
  assert.deepEqual(invocation.options, {
    outDir: "d",
    hosts: ["127.0.0.1", "db.local"],
    days: 365,
    force: false,
  });
  assertUsage(() => parseCommandLine(["certs", "--out", "d"]), /missing required option --hosts/);
  assertUsage(
    () => parseCommandLine(["certs", "--out", "d", "--hosts", "a b"]),
    /invalid --hosts entry/,
  );
});

Deno.test("serve --groups takes distinct valid names; the default is --group alone", () => {
  assert.deepEqual(parseServeArgs([...SERVE_REQUIRED, "--groups", "counter,orders,views"]).groups, [
    "counter",
    "orders",
    "views",
  ]);
  assert.deepEqual(parseServeArgs([...SERVE_REQUIRED, "--group", "g1"]).groups, ["g1"]);
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--groups", "a,,b"]),
    /^invalid --groups "a,,b"/,
  );
  assertUsage(
    () => parseServeArgs([...SERVE_REQUIRED, "--groups", "a,b/c"]),
    /^invalid group name in --groups "b\/c"/,
  );
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--groups", "a,.."]), /not \. or \.\./);
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--groups", "a,b,a"]), /names a twice/);
  assertUsage(() => parseServeArgs([...SERVE_REQUIRED, "--group", "."]), /^invalid --group "\."/);
});
