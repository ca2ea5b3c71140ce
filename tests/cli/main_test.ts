import assert from "node:assert/strict";
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
      [[], "counter: missing command (see 'counter --help')"],
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

Deno.test("--version prints the version from deno.json", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../../deno.json", import.meta.url)));
  const result = await runMain(["--version"]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, `counter ${config.version}\n`);
  assert.equal(result.stderr, "");
});
