/**
 * The ways to get a `counter` to type: the `./counter` launcher in the repository root, and the
 * shim `deno install` writes. Both are run from another working directory, for `--help` and for
 * real commands against real nodes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import { goldenPath, ROOT, runProgram } from "./_run.ts";

const LAUNCHER = join(ROOT, "counter");

/** The environment of a child, with `extra` added; PATH keeps `deno` (the running one) first. */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const denoDir = Deno.execPath().replace(/\/[^/]+$/, "");
  return { ...extra, PATH: `${denoDir}:${Deno.env.get("PATH") ?? ""}` };
}

/** Waits until something accepts connections on 127.0.0.1:`port`. */
async function waitUntilListening(port: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

Deno.test({
  name: "'./counter' runs from any directory: --help, and serve plus incr as on the card",
  ignore: Deno.build.os === "windows",
  async fn() {
    const cwd = await Deno.makeTempDir({ prefix: "counter-launcher-" });
    const env = childEnv({ COUNTER_FROM_SOURCE: "1" });
    let serve: Deno.ChildProcess | null = null;
    try {
      const help = await runProgram(LAUNCHER, ["--help"], { cwd, env });
      assert.equal(help.code, 0, help.stderr);
      assert.equal(help.stdout, await Deno.readTextFile(goldenPath(undefined)));

      const [port] = freePorts(1);
      const id = `127.0.0.1:${port}`;
      serve = new Deno.Command(LAUNCHER, {
        args: ["serve", "--data", join(cwd, "server1"), "--id", id, "--conf", id],
        cwd,
        env,
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      // As on the card: the node is up before the client runs.
      await waitUntilListening(port);
      const incr = await runProgram(
        LAUNCHER,
        ["incr", "3", "--peers", id, "--timeout-ms", "20000"],
        {
          cwd,
          env,
        },
      );
      assert.equal(incr.code, 0, incr.stderr);
      assert.equal(incr.stdout, "3\n");
    } finally {
      if (serve !== null) {
        serve.kill("SIGTERM");
        await serve.status;
      }
      await Deno.remove(cwd, { recursive: true });
    }
  },
});

Deno.test({
  name: "the README's 'deno install' command installs a shim that runs real commands",
  ignore: Deno.build.os === "windows",
  async fn() {
    const installRoot = await Deno.makeTempDir({ prefix: "counter-install-" });
    const env = childEnv({ DENO_INSTALL_ROOT: installRoot });
    let cluster: LocalCluster | null = null;
    try {
      // The README's command, as `deno task install` runs it (but without -f: the root is new).
      const install = await runProgram(Deno.execPath(), [
        "install",
        "-g",
        "-A",
        "-n",
        "counter",
        "--config",
        "deno.json",
        "--v8-flags=--max-semi-space-size=2",
        "main.ts",
      ], { env });
      assert.equal(install.code, 0, install.stderr);
      const shim = join(installRoot, "bin", "counter");

      const help = await runProgram(shim, ["--help"], { cwd: installRoot, env });
      assert.equal(help.code, 0, help.stderr);
      assert.equal(help.stdout, await Deno.readTextFile(goldenPath(undefined)));

      // A real command loads the whole client, msgpack included, which a shim installed
      // without --config cannot resolve.
      cluster = await LocalCluster.start({ nodes: 1 });
      await cluster.waitForLeader();
      const incr = await runProgram(
        shim,
        ["incr", "4", "--peers", cluster.ids[0], "--timeout-ms", "20000"],
        { cwd: installRoot, env },
      );
      assert.equal(incr.code, 0, incr.stderr);
      assert.equal(incr.stdout, "4\n");
    } finally {
      await cluster?.stop();
      await Deno.remove(installRoot, { recursive: true });
    }
  },
});
