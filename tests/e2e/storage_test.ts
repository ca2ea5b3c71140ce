/**
 * End-to-end test of issue 9, point 4 on a real `counter serve` process: a node whose newest
 * log segment was deleted while it was stopped refuses to start, with a message naming the
 * missing file, instead of starting without entries it acknowledged.
 *
 * One single-node group with 4 KiB segments keeps it small and fast.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterClient } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { listFiles, readLogFrom, ServeProcess, WAIT_MS } from "./_cluster_helpers.ts";

const SEGMENT_ARGS = ["--log-segment-bytes", "4096"];

Deno.test("a node whose newest log segment was deleted refuses to start, naming the file", async () => {
  const dataRoot = await Deno.makeTempDir({ prefix: "counter_e2e_storage_" });
  const [port] = freePorts(1);
  const id = `127.0.0.1:${port}`;
  const dataDir = join(dataRoot, "node");
  const logPath = join(dataRoot, "node.log");
  const client = new CounterClient({ peers: [id], timeoutMs: WAIT_MS });
  let proc: ServeProcess | null = null;
  try {
    proc = await ServeProcess.spawn({ id, dataDir, logPath, conf: [id], args: SEGMENT_ARGS });
    // About 60 bytes a log record: 400 increments fill several 4 KiB segments.
    let value = 0n;
    for (let i = 0; i < 400; i++) value = (await client.incrementAndGet(1n)).value;
    assert.equal(value, 400n);
    await client.close();
    assert.equal(await proc.stop("SIGTERM"), 0, await readLogFrom(logPath));

    const logDir = join(dataDir, "groups", "counter", "log");
    const segments = await listFiles(logDir, ".log");
    assert.ok(segments.length >= 3, `want several segments: ${segments}`);
    const newest = join(logDir, segments.at(-1)!);
    await Deno.remove(newest);

    const attemptLog = join(dataRoot, "restart.log");
    proc = await ServeProcess.spawn({
      id,
      dataDir,
      logPath: attemptLog,
      conf: [id],
      args: SEGMENT_ARGS,
    });
    const code = await proc.waitExit(WAIT_MS);
    const text = await readLogFrom(attemptLog);
    assert.notEqual(code, null, `the node kept running without its newest segment:\n${text}`);
    assert.equal(code, 1, text);
    assert.ok(text.includes(newest), `the message does not name ${newest}:\n${text}`);
    assert.match(text, /lost log entries/);
    assert.ok(!text.includes("serving"), `the node started serving:\n${text}`);
    console.log(`refused to start: ${text.trim().split("\n").at(-1)}`);
  } finally {
    await client.close();
    await proc?.stop("SIGKILL");
    await Deno.remove(dataRoot, { recursive: true });
  }
});
