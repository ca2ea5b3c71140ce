/**
 * The help texts, as printed by the program, against the golden files in `snapshots/cli/`.
 * Run with `UPDATE_GOLDEN=1` to rewrite the golden files from the program's output.
 */

import assert from "node:assert/strict";
import { helpText } from "../../lib/cli/help.ts";
import { goldenPath, HELP_TOPICS, helpArgs, runMain } from "./_run.ts";

const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

for (const topic of HELP_TOPICS) {
  const args = helpArgs(topic);
  Deno.test(`'counter ${args.join(" ")}' prints the golden help text`, async () => {
    const result = await runMain(args);
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    if (UPDATE) await Deno.writeTextFile(goldenPath(topic), result.stdout);
    assert.equal(result.stdout, await Deno.readTextFile(goldenPath(topic)));
  });
}

Deno.test("'counter help COMMAND' prints the same text as 'counter COMMAND --help'", async () => {
  const result = await runMain(["help", "incr"]);
  assert.equal(result.code, 0);
  assert.equal(result.stdout, helpText("incr"));
  assert.equal((await runMain(["help"])).stdout, helpText());
  assert.equal((await runMain(["-h"])).stdout, helpText());
});

Deno.test("every help text has a usage line and an example, and fits in 80 columns", () => {
  for (const topic of HELP_TOPICS) {
    const text = helpText(topic);
    assert.match(text, /^(Usage: counter|counter: )/);
    assert.match(text, /\nExamples?:\n {2}counter /);
    assert.ok(text.endsWith("\n") && !text.endsWith("\n\n"), "ends with one newline");
    for (const line of text.split("\n")) {
      assert.ok(line.length <= 80, `line longer than 80 columns: ${line}`);
      assert.equal(line, line.trimEnd(), `trailing space: ${JSON.stringify(line)}`);
    }
  }
});

Deno.test("client commands' help lists the exit codes", () => {
  for (const topic of ["incr", "get", "bench"] as const) {
    const text = helpText(topic);
    for (const code of ["0", "1", "2", "3"]) assert.match(text, new RegExp(`\n {2}${code} {2}`));
    assert.match(text, /may or may not have been applied/);
  }
});
