/**
 * A counter node in this process against a stranger with a raw socket (issue 10, point 4): no
 * message may crash it or get something into its log that it cannot apply, and a log that holds
 * such an entry anyway stops the node with the entry's index.
 *
 * The stranger says hello as B, a member of A's configuration that A has never heard from:
 * without `--cluster-token-file` nothing proves that claim, so A records the stranger's
 * incarnation for B and hears it as B. That is exactly what an attacker can do, and it is what
 * these tests need: the messages reach A's Raft core, not just its codec.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { computeClusterId } from "../../lib/counter/bootstrap_check.ts";
import { IncrementBatch } from "../../lib/counter/command.ts";
import { CounterNode, type NodeOptions } from "../../lib/counter/node.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { Logger } from "../../lib/logging/logger.ts";
import {
  bootstrapState,
  encodeConfState,
  EntryType,
  makeMessage,
  MessageType,
} from "../../lib/raft/mod.ts";
import { DataDir } from "../../lib/storage/mod.ts";
import { RpcClientConnection } from "../../lib/transport/mod.ts";
import {
  closedWithin,
  raftFrame,
  rawPeerSocket,
  rawRaftFrame,
  writeAll,
} from "../transport/_raw_peer.ts";

const GROUP = "counter";
const WAIT_MS = 10_000;

function logged(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: new Logger({ level: "debug", write: (line) => lines.push(line) }), lines };
}

function options(dataDir: string, id: string, conf: string[], logger: Logger): NodeOptions {
  return {
    dataDir,
    id,
    conf,
    group: GROUP,
    electionTimeoutMs: 300,
    heartbeatIntervalMs: 50,
    snapshotIntervalSecs: 0,
    logger,
  };
}

async function status(id: string): Promise<Record<string, unknown>> {
  const conn = await RpcClientConnection.connect(id);
  try {
    const resp = await conn.call(GROUP, { op: "status" }, 2000);
    assert.ok(resp.ok && resp.data !== undefined, `status of ${id}`);
    return resp.data as Record<string, unknown>;
  } finally {
    await conn.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Bootstraps `dataDir` for the group `conf` the way a node does, but without the bootstrap
 * check: a node started on an empty dir would wait for every other member to answer first.
 */
async function bootstrapDir(dataDir: string, id: string, conf: string[]): Promise<void> {
  const storage = await DataDir.open(dataDir, { nodeId: id, group: GROUP });
  await storage.saveClusterId(await computeClusterId(GROUP, conf));
  const initial = bootstrapState({ voters: [...conf].sort(), learners: [] });
  await storage.append(initial.entries);
  await storage.saveHardState(initial.hardState);
  await storage.close();
}

/**
 * Node A of the group [A, B], with B never started: A cannot win an election, so it follows
 * whoever claims to be B and to lead with a higher term, which a stranger can do (see above).
 */
async function withLoneFollower(
  body: (a: CounterNode, b: string, lines: string[]) => Promise<void>,
): Promise<void> {
  const root = await Deno.makeTempDir({ prefix: "counter-hostile-" });
  const [a, b] = freePorts(2).map((port) => `127.0.0.1:${port}`);
  const { logger, lines } = logged();
  await bootstrapDir(join(root, "a"), a, [a, b]);
  const node = await CounterNode.start(options(join(root, "a"), a, [a, b], logger));
  try {
    await body(node, b, lines);
  } finally {
    await node.stop().catch(() => {});
    await Deno.remove(root, { recursive: true });
  }
}

Deno.test("a heartbeat with term 2^53-1 closes the connection and leaves the node serving", async () => {
  await withLoneFollower(async (node, b, lines) => {
    const before = await status(node.id);
    const conn = await rawPeerSocket(node.id, { group: GROUP, from: b });
    const payload = [
      MessageType.Heartbeat,
      b,
      node.id,
      2 ** 53 - 1,
      0,
      0,
      [],
      0,
      false,
      0,
      0,
      null,
      0,
    ];
    await writeAll(conn, rawRaftFrame(GROUP, payload));
    assert.ok(await closedWithin(conn, 5000), "the node closes the connection");
    // Long enough for a campaign and an fsync of whatever the message might have done.
    await sleep(800);
    const after = await status(node.id);
    assert.ok(Number(after.term) < 2 ** 48, `term ${after.term} stays in range`);
    assert.ok(Number(after.term) >= Number(before.term));
    assert.ok(lines.some((l) => /protocol error.*below 2\^48/.test(l)), "logged reason");
    assert.ok(!lines.some((l) => l.includes("fatal")), lines.join("\n"));
  });
});

Deno.test("an append carrying a poison entry is dropped whole, with a warning", async () => {
  await withLoneFollower(async (node, b, lines) => {
    const before = await status(node.id);
    const term = Number(before.term) + 10;
    const lastIndex = Number(before.lastIndex);
    const append = (data: Uint8Array) =>
      makeMessage(MessageType.App, {
        from: b,
        to: node.id,
        term,
        logTerm: 1,
        index: lastIndex,
        commit: lastIndex + 1,
        entries: [{ term, index: lastIndex + 1, type: EntryType.Normal, data }],
      });
    const conn = await rawPeerSocket(node.id, { group: GROUP, from: b });
    try {
      await writeAll(conn, raftFrame(GROUP, append(new Uint8Array([0xff]))));
      await sleep(800);
      const after = await status(node.id);
      assert.equal(after.lastIndex, lastIndex, "the poison entry was not stored");
      assert.ok(Number(after.term) < term, "nothing of the message was taken, not even its term");
      assert.ok(lines.some((l) => l.includes("malformed entry")), "logged the drop");
      assert.ok(!lines.some((l) => l.includes("fatal")), lines.join("\n"));
      // The same append with a well-formed entry is taken: the drop was for the entry alone.
      await writeAll(conn, raftFrame(GROUP, append(new Uint8Array(0))));
      const deadline = Date.now() + WAIT_MS;
      while (Number((await status(node.id)).applied) < lastIndex + 1) {
        assert.ok(Date.now() < deadline, "the well-formed append is applied");
        await sleep(50);
      }
    } finally {
      conn.close();
    }
  });
});

Deno.test("an append carrying a malformed increment batch is dropped; a valid batch applies", async () => {
  await withLoneFollower(async (node, b, lines) => {
    const before = await status(node.id);
    const term = Number(before.term) + 10;
    const lastIndex = Number(before.lastIndex);
    const append = (data: Uint8Array) =>
      makeMessage(MessageType.App, {
        from: b,
        to: node.id,
        term,
        logTerm: 1,
        index: lastIndex,
        commit: lastIndex + 1,
        entries: [{ term, index: lastIndex + 1, type: EntryType.Normal, data }],
      });
    const batch = new IncrementBatch();
    for (let i = 1; i <= 3; i++) batch.add({ delta: 10n, clientId: "h", seq: i, ackedBelow: 1 });
    const good = batch.encode(1);
    // The count says 4 items, the data holds 3: a follower that trusted it would read past them.
    const lying = good.slice();
    new DataView(lying.buffer).setUint16(9, 4);
    const conn = await rawPeerSocket(node.id, { group: GROUP, from: b });
    try {
      await writeAll(conn, raftFrame(GROUP, append(lying)));
      await sleep(800);
      const after = await status(node.id);
      assert.equal(after.lastIndex, lastIndex, "the malformed batch was not stored");
      assert.ok(lines.some((l) => l.includes("malformed entry")), "logged the drop");
      assert.ok(!lines.some((l) => l.includes("fatal")), lines.join("\n"));
      await writeAll(conn, raftFrame(GROUP, append(good)));
      const deadline = Date.now() + WAIT_MS;
      while (Number((await status(node.id)).applied) < lastIndex + 1) {
        assert.ok(Date.now() < deadline, "the well-formed batch is applied");
        await sleep(50);
      }
      assert.equal((await status(node.id)).value, "30", "every item of the batch applied");
    } finally {
      conn.close();
    }
  });
});

Deno.test("a committed entry the node cannot apply stops it with the entry's index", async () => {
  const root = await Deno.makeTempDir({ prefix: "counter-hostile-" });
  const [a] = freePorts(1).map((port) => `127.0.0.1:${port}`);
  const dataDir = join(root, "a");
  try {
    // A log damaged in a way its checksums cannot see: a poison entry at index 2.
    const storage = await DataDir.open(dataDir, { nodeId: a, group: GROUP });
    await storage.append([
      {
        term: 1,
        index: 1,
        type: EntryType.Config,
        data: encodeConfState({ voters: [a], learners: [] }),
      },
      { term: 1, index: 2, type: EntryType.Normal, data: new Uint8Array([0xff]) },
    ]);
    await storage.saveHardState({ term: 1, vote: a });
    await storage.close();
    const { logger, lines } = logged();
    const node = await CounterNode.start(options(dataDir, a, [a], logger));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      node.closed.then(() => "stopped cleanly", (err: Error) => err.message),
      new Promise((resolve) => timer = setTimeout(() => resolve("still running"), WAIT_MS)),
    ]);
    clearTimeout(timer);
    await node.stop().catch(() => {});
    assert.match(String(outcome), /cannot apply committed entry 2 \(term 1\)/);
    assert.ok(lines.some((l) => l.includes("cannot apply committed entry 2")), "logged");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
