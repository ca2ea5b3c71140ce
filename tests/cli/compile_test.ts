/**
 * The `deno compile`d executable prints the same help texts as `deno run main.ts`.
 *
 * `deno compile` builds on `denort`, a runtime it downloads unless the environment variable
 * `DENORT_BIN` names a local copy. The test runs when `DENORT_BIN` is set, or when
 * `COUNTER_TEST_COMPILE=1` says that this machine may download denort (CI on GitHub does);
 * otherwise it is registered as ignored and says why.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { compileArgs } from "../../lib/cli/compile.ts";
import { goldenPath, ROOT, runProgram } from "./_run.ts";

const denortBin = Deno.env.get("DENORT_BIN");
const mayDownload = Deno.env.get("COUNTER_TEST_COMPILE") === "1";
const skipReason = denortBin === undefined && !mayDownload
  ? "DENORT_BIN is not set and COUNTER_TEST_COMPILE is not 1, so denort cannot be had here"
  : undefined;

if (skipReason !== undefined) console.log(`compile_test: skipped: ${skipReason}`);

Deno.test({
  name: "the compiled executable prints the golden help texts",
  ignore: skipReason !== undefined,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "counter-compile-" });
    try {
      const binary = join(dir, Deno.build.os === "windows" ? "counter.exe" : "counter");
      // The arguments of `deno task compile`, V8 flags included.
      const compiled = await runProgram(
        Deno.execPath(),
        compileArgs(binary, join(ROOT, "main.ts")),
      );
      assert.equal(compiled.code, 0, `deno compile failed:\n${compiled.stderr}`);

      for (
        const [args, topic] of [[["--help"], undefined], [["incr", "--help"], "incr"]] as const
      ) {
        // Run from elsewhere: the executable must not need the source tree.
        const result = await runProgram(binary, [...args], { cwd: dir });
        assert.equal(result.stderr, "");
        assert.equal(result.code, 0);
        assert.equal(result.stdout, await Deno.readTextFile(goldenPath(topic)));
      }
      const usage = await runProgram(binary, ["incr", "--foo"], { cwd: dir });
      assert.equal(usage.code, 2);
      assert.equal(
        usage.stderr,
        "counter incr: unknown option --foo (see 'counter incr --help')\n",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
