import assert from "node:assert/strict";
import { isAbsolute } from "node:path";
import { isCompiled, mainModulePath, selfCommand } from "../../lib/cli/self_command.ts";
import { ROOT, runProgram } from "./_run.ts";

Deno.test("under deno run or deno test, the program is not compiled", () => {
  assert.equal(isCompiled(), false);
  assert.equal(Deno.build.standalone, false);
});

Deno.test("under deno, selfCommand is deno run -A with the absolute path of main.ts", async () => {
  const command = selfCommand();
  assert.deepEqual(command, [Deno.execPath(), "run", "-A", mainModulePath()]);
  assert.ok(isAbsolute(command[3]));
  assert.equal(command[3], `${ROOT}main.ts`);
  assert.ok((await Deno.stat(command[3])).isFile);
});

Deno.test("in a compiled executable, selfCommand is the executable alone", () => {
  assert.deepEqual(selfCommand({ compiled: true, execPath: "/opt/bin/counter" }), [
    "/opt/bin/counter",
  ]);
  assert.deepEqual(selfCommand({ compiled: false, execPath: "/d", main: "/m.ts" }), [
    "/d",
    "run",
    "-A",
    "/m.ts",
  ]);
});

Deno.test("selfCommand re-runs this program from any working directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "counter-self-command-" });
  try {
    const [command, ...args] = selfCommand();
    const result = await runProgram(command, [...args, "--version"], { cwd: dir });
    assert.equal(result.stderr, "");
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^counter \d+\.\d+\.\d+\n$/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
