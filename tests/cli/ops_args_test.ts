/**
 * Parsing of the operator commands `health`, `backup`, `restore` and `inspect`, and of
 * `serve --metrics-addr`.
 */

import assert from "node:assert/strict";
import {
  DEFAULT_PEERS,
  formatUsageError,
  parseBackupArgs,
  parseCommandLine,
  parseHealthArgs,
  parseInspectArgs,
  parseRestoreArgs,
  parseServeArgs,
} from "../../lib/cli/args.ts";
import { assertUsage } from "./_usage.ts";

const noEnv = { env: () => undefined };
const DEFAULTS = { peers: [...DEFAULT_PEERS], group: "counter", json: false, timeoutMs: 5000 };
const A = "127.0.0.1:8081";
const B = "127.0.0.1:8082";

Deno.test("health takes the client options", () => {
  assert.deepEqual(parseHealthArgs([], noEnv), DEFAULTS);
  assert.deepEqual(parseHealthArgs(["--peers", `${A},${B}`, "--json"], noEnv), {
    ...DEFAULTS,
    peers: [A, B],
    json: true,
  });
  assertUsage(() => parseHealthArgs(["extra"], noEnv), /unexpected argument "extra"/);
});

Deno.test("backup needs --out and takes --force", () => {
  assert.deepEqual(parseBackupArgs(["--out", "b.snap"], noEnv), {
    ...DEFAULTS,
    out: "b.snap",
    force: false,
  });
  assert.equal(parseBackupArgs(["--out", "b.snap", "--force"], noEnv).force, true);
  assertUsage(() => parseBackupArgs([], noEnv), /missing required option --out/);
});

Deno.test("restore needs --data, --from, --id and a --conf that includes --id", () => {
  const argv = ["--data", "/d", "--from", "b.snap", "--id", A, "--conf", `${A},${B}`];
  assert.deepEqual(parseRestoreArgs(argv), {
    dataDir: "/d",
    from: "b.snap",
    id: A,
    conf: [A, B],
    group: "counter",
    json: false,
  });
  assertUsage(() => parseRestoreArgs(argv.slice(2)), /missing required option --data/);
  assertUsage(
    () => parseRestoreArgs(["--data", "/d", "--from", "f", "--id", A, "--conf", B]),
    /--conf must include this node's --id 127\.0\.0\.1:8081/,
  );
  assertUsage(
    () => parseRestoreArgs(["--data", "/d", "--from", "f", "--id", "nope", "--conf", B]),
    /invalid address "nope" in --id/,
  );
});

Deno.test("inspect needs --data and takes --json", () => {
  assert.deepEqual(parseInspectArgs(["--data", "/d"]), { dataDir: "/d", json: false });
  assert.deepEqual(parseInspectArgs(["--data", "/d", "--json"]), { dataDir: "/d", json: true });
  assertUsage(() => parseInspectArgs([]), /missing required option --data/);
  assertUsage(() => parseInspectArgs(["--data", "/d", "--peers", A]), /unknown option --peers/);
});

Deno.test("serve --metrics-addr takes a HOST:PORT", () => {
  const base = ["--data", "/d", "--id", A, "--conf", A];
  assert.equal(parseServeArgs(base).metricsAddr, undefined);
  assert.equal(
    parseServeArgs([...base, "--metrics-addr", "127.0.0.1:9100"]).metricsAddr,
    "127.0.0.1:9100",
  );
  assertUsage(
    () => parseServeArgs([...base, "--metrics-addr", "9100"]),
    /invalid address "9100" in --metrics-addr/,
  );
});

Deno.test("the command line routes the new commands, and names them in usage errors", () => {
  assert.equal(parseCommandLine(["health"], noEnv).command, "health");
  assert.equal(parseCommandLine(["inspect", "--data", "/d"], noEnv).command, "inspect");
  let caught: unknown;
  try {
    parseCommandLine(["backup"], noEnv);
  } catch (error) {
    caught = error;
  }
  assert.match(formatUsageError(caught as never), /^counter backup: missing required option --out/);
});
