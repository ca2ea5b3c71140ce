/**
 * A multi-group host (lib/counter/host.ts) losing power: its groups' segment tails, written
 * through the host journal and not flushed, are gone, and the next start replays the journal.
 * The crash model is tests/storage/_disk.ts.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { NodeOptions } from "../../lib/counter/node.ts";
import type { Logger } from "../../lib/logging/logger.ts";
import { NodeHost } from "../../lib/counter/host.ts";
import { CounterClient } from "../../lib/client/client.ts";
import { freePorts } from "../../lib/cli/local_cluster.ts";
import { captureLogger } from "../storage/_helpers.ts";
import { JOURNAL_DIR_NAME } from "../../lib/storage/mod.ts";
import { journalFileName } from "../../lib/storage/journal.ts";
import { Disk } from "../storage/_disk.ts";
import { SyncSpy } from "../storage/_sync_spy.ts";
import { GROUPS_FILE_NAME } from "../../lib/storage/layout.ts";

const WAIT_MS = 15_000;

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const item of Deno.readDir(dir)) out.push(item.name);
  return out.sort();
}

/** A one-node host of groups counter and orders on a free port, with data in `root`. */
function twoGroups(root: string, logger: Logger) {
  const id = `127.0.0.1:${freePorts(1)[0]}`;
  return {
    dataDir: root,
    id,
    conf: [id],
    group: "counter",
    groups: ["counter", "orders"],
    electionTimeoutMs: 300,
    heartbeatIntervalMs: 50,
    snapshotIntervalSecs: 0,
    logger,
  } satisfies NodeOptions & { groups: string[] };
}

Deno.test("a host that loses power comes back with every group's value from the journal", async () => {
  using disk = new Disk();
  const root = await Deno.makeTempDir({ prefix: "counter-host-journal-test-" });
  const { logger, lines } = captureLogger();
  const options = twoGroups(root, logger);
  const id = options.id;
  const journalDir = join(root, JOURNAL_DIR_NAME);
  try {
    let host = await NodeHost.start(options);
    const clients = options.groups.map((group) =>
      new CounterClient({ peers: [id], group, timeoutMs: WAIT_MS })
    );
    try {
      for (let i = 0; i < 5; i++) await clients[0].incrementAndGet(1n);
      await Promise.all([1, 2, 3].map(() => clients[1].incrementAndGet(10n)));
      assert.equal((await clients[0].get()).value, 5n);
      assert.equal((await clients[1].get()).value, 30n);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
    const before = await names(journalDir);
    assert.equal(before.length, 1);
    // The increments are not durable in the groups' segments (held by the logs or written
    // without a flush): only the journal holds them durably. The stop below writes and flushes
    // them; the power cut then takes both segments back to what was durable at the cut.
    const kept = await disk.cut(root);
    await host.stop();
    assert.equal(await disk.apply(root, kept, "lose"), 2, "both newest segments lose bytes");

    lines.length = 0;
    host = await NodeHost.start(options);
    const again = options.groups.map((group) =>
      new CounterClient({ peers: [id], group, timeoutMs: WAIT_MS })
    );
    try {
      assert.equal((await again[0].get()).value, 5n);
      assert.equal((await again[1].get()).value, 30n);
      assert.equal((await again[1].incrementAndGet(1n)).value, 31n);
    } finally {
      await Promise.all(again.map((c) => c.close()));
      await host.stop();
    }
    const replayed = lines.filter((l) => l.includes("replayed the host journal"));
    assert.equal(replayed.length, 2, lines.join("\n"));
    // The file read at the start is gone; the one started then is the only one.
    const sequence = Number(before[0].slice(0, 20));
    assert.deepEqual(await names(journalDir), [journalFileName(sequence + 1)]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a host start flushes groups.json and the data root before it acts on them", async () => {
  const root = await Deno.makeTempDir({ prefix: "counter-host-journal-test-" });
  const options = twoGroups(root, captureLogger().logger);
  try {
    await (await NodeHost.start(options)).stop();
    // The process that wrote groups.json may have died before the root's flush: the next start
    // drops journal records of groups the file does not name, so it must be durable first.
    let flushed: string[];
    {
      using spy = new SyncSpy();
      await (await NodeHost.start(options)).stop();
      flushed = [...spy.flushed];
    }
    assert.ok(flushed.includes(join(root, GROUPS_FILE_NAME)), flushed.join(", "));
    assert.ok(flushed.includes(root), flushed.join(", "));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
