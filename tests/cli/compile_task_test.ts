/**
 * `deno task compile` (lib/cli/compile.ts) refuses a `DENORT_BIN` that cannot be denort, with
 * the reason, before `deno compile` embeds it.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { denortProblem } from "../../lib/cli/compile.ts";
import { runProgram } from "./_run.ts";

/** The first bytes of an executable of this machine, as `denortProblem` reads them. */
function hostHeader(): Uint8Array {
  const header = new Uint8Array(64);
  const view = new DataView(header.buffer);
  if (Deno.build.os === "darwin") {
    view.setUint32(0, 0xfeedfacf, true);
    view.setUint32(4, Deno.build.arch === "aarch64" ? 0x0100000c : 0x01000007, true);
  } else {
    view.setUint32(0, 0x7f454c46);
    header[5] = 1; // little-endian
    view.setUint16(18, Deno.build.arch === "aarch64" ? 0xb7 : 0x3e, true);
  }
  return header;
}

Deno.test({
  name: "denortProblem names what is wrong with a file that cannot be denort",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "counter-denort-" });
    try {
      assert.equal(await denortProblem(join(dir, "missing")), "no such file");
      assert.equal(await denortProblem(dir), "not a file");

      const script = join(dir, "denort");
      await Deno.writeTextFile(script, "#!/usr/bin/env node\nrequire('./deno');\n");
      assert.equal(await denortProblem(script), "not executable");
      await Deno.chmod(script, 0o755);
      assert.match((await denortProblem(script))!, /^not an executable binary/);

      const tiny = join(dir, "denort-tiny");
      await Deno.writeFile(tiny, hostHeader(), { mode: 0o755 });
      assert.match((await denortProblem(tiny))!, /too small to be denort/);

      const other = hostHeader();
      if (Deno.build.os === "linux") {
        new DataView(other.buffer).setUint16(18, Deno.build.arch === "aarch64" ? 0x3e : 0xb7, true);
        const foreign = join(dir, "denort-foreign");
        await Deno.writeFile(foreign, other, { mode: 0o755 });
        assert.match((await denortProblem(foreign))!, /^built for \S+, but this machine is /);
      }

      // The deno CLI, by name and (under another name) by what it prints for --version.
      const named = join(dir, "deno");
      await Deno.symlink(Deno.execPath(), named);
      assert.match((await denortProblem(named))!, /deno CLI, not denort/);
      const renamed = join(dir, "denort-renamed");
      await Deno.symlink(Deno.execPath(), renamed);
      assert.match((await denortProblem(renamed))!, /^that is the deno CLI \(it prints 'deno \d/);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("'deno task compile' with a bad DENORT_BIN refuses in one line and exits 1", async () => {
  const result = await runProgram(Deno.execPath(), ["task", "-q", "compile"], {
    env: { DENORT_BIN: "/nonexistent/denort" },
  });
  assert.equal(result.code, 1, result.stderr);
  assert.equal(result.stdout, "");
  const lines = result.stderr.trimEnd().split("\n");
  assert.equal(lines.length, 1, result.stderr);
  assert.match(
    lines[0],
    /^deno task compile: DENORT_BIN=\/nonexistent\/denort is not a denort binary: no such file\. /,
  );
});
