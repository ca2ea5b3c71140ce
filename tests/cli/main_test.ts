import assert from "node:assert/strict";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { runMain } from "./_run.ts";

Deno.test("an unknown flag exits 2 with one line on stderr and nothing on stdout", async () => {
  const result = await runMain(["incr", "5", "--foo"]);
  assert.equal(result.code, 2);
  assert.equal(result.stdout, "");
  assert.equal(result.stderr, "counter incr: unknown option --foo (see 'counter incr --help')\n");
});

Deno.test("top-level usage errors exit 2 with one line on stderr", async () => {
  for (
    const [args, line] of [
      [["nope"], `counter: unknown command "nope" (see 'counter --help')`],
      [["get", "--peers", "h:0"], "counter get: invalid address"],
    ] as const
  ) {
    const result = await runMain([...args]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(result.stderr.split("\n").length, 2, `one line: ${result.stderr}`);
    assert.ok(result.stderr.startsWith(line), result.stderr);
  }
});

Deno.test("--version, -V and 'version' print the version from deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  for (const word of ["--version", "-V", "version"]) {
    const result = await runMain([word]);
    assert.equal(result.code, 0);
    assert.equal(result.stdout, `counter ${config.version}\n`);
    assert.equal(result.stderr, "");
  }
});

Deno.test("plain 'counter' prints the usage and exits 0", async () => {
  const result = await runMain([]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, (await runMain(["--help"])).stdout);
  assert.equal(result.stderr, "");
});

Deno.test("under --json, errors are one JSON object on stderr", async () => {
  const usage = await runMain(["incr", "--json", "--foo"]);
  assert.equal(usage.code, 2);
  assert.equal(usage.stdout, "");
  assert.deepEqual(JSON.parse(usage.stderr), {
    command: "incr",
    error: "counter incr: unknown option --foo (see 'counter incr --help')",
    code: "USAGE",
    exitCode: 2,
  });
  const [port] = freePorts(1);
  const failed = await runMain(["get", "--json", "--peers", `127.0.0.1:${port}`]);
  assert.equal(failed.code, 1);
  assert.equal(failed.stdout, "");
  const error = JSON.parse(failed.stderr);
  assert.equal(error.command, "get");
  assert.equal(error.code, "UNAVAILABLE");
  assert.equal(error.exitCode, 1);
  assert.match(error.error, /^no counter node reachable at /);
});
