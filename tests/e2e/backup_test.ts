/**
 * End-to-end test of `counter backup`, `counter restore` and `counter inspect` with real
 * `counter serve` processes:
 *
 * 1. a backup of a running 3-node group is a snapshot file whose checksum holds, written once
 *    (an existing --out is refused without --force);
 * 2. restore refuses a damaged file and a non-empty data dir, and seeds three new data dirs;
 * 3. the restored group (new ids) elects a leader, holds the backed-up value and takes new
 *    increments; the client sessions (for exactly-once increments) came along;
 * 4. inspect prints a stopped node's meta, snapshot and log range (text and JSON), says when the
 *    dir is in use, reports a torn log tail with exit 1, and changes nothing on disk.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { freePorts, LocalCluster } from "../../lib/cli/local_cluster.ts";
import { CounterClient } from "../../lib/client/client.ts";
import { decodeSnapshot } from "../../lib/storage/snapshot_store.ts";
import {
  cli,
  dumpClusterLogs,
  dumpLogTails,
  ELECTION_TIMEOUT_MS,
  listFiles,
  ServeProcess,
  WAIT_MS,
  waitForAgreedLeader,
  waitForConvergence,
} from "./_cluster_helpers.ts";

Deno.test("backup a running group, restore it as a new group, inspect the data dirs", async (t) => {
  const cluster = await LocalCluster.start({
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  const root = await Deno.makeTempDir({ prefix: "counter-backup-" });
  const backupPath = join(root, "counter.snap");
  const newIds = freePorts(3).map((port) => `127.0.0.1:${port}`);
  const restored = new Map<string, ServeProcess>();
  const logs = new Map<string, string>();
  const clusterIds = new Map<string, string>();
  try {
    await waitForAgreedLeader(cluster.ids);
    const client = new CounterClient({ peers: cluster.ids, timeoutMs: WAIT_MS });
    try {
      for (let i = 0; i < 30; i++) await client.incrementAndGet(2n);
    } finally {
      await client.close();
    }
    let backupIndex = 0;

    await t.step("backup writes a checksummed snapshot file, once", async () => {
      const result = await cli(["backup", "--peers", cluster.ids.join(","), "--out", backupPath]);
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trimEnd().split("\n");
      assert.match(
        lines[0],
        /^saved snapshot at index \d+ \(term \d+, value 60, \d+ bytes\) from /,
      );
      assert.match(lines[1], /^sha256 [0-9a-f]{64}$/);
      const bytes = await Deno.readFile(backupPath);
      const snapshot = decodeSnapshot(bytes, backupPath);
      backupIndex = snapshot.index;
      assert.deepEqual([...snapshot.conf.voters].sort(), [...cluster.ids].sort());
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
      const hex = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
      assert.equal(lines[1], `sha256 ${hex}`);
      assert.equal((await listFiles(root, ".tmp")).length, 0, "no temp file left");

      const again = await cli(["backup", "--peers", cluster.ids.join(","), "--out", backupPath]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /exists; remove it, choose another --out or add --force/);
      const forced = await cli([
        "backup",
        "--peers",
        cluster.ids.join(","),
        "--out",
        backupPath,
        "--force",
        "--json",
      ]);
      assert.equal(forced.code, 0, forced.stderr);
      const json = JSON.parse(forced.stdout);
      assert.equal(json.value, 60);
      assert.equal(json.file, backupPath);
      backupIndex = json.index;
    });

    await t.step("restore refuses a damaged file and a non-empty dir", async () => {
      const damaged = join(root, "damaged.snap");
      const bytes = await Deno.readFile(backupPath);
      bytes[40] ^= 0x01;
      await Deno.writeFile(damaged, bytes);
      const dir = join(root, "never");
      const bad = await cli([
        "restore",
        "--data",
        dir,
        "--from",
        damaged,
        "--id",
        newIds[0],
        "--conf",
        newIds.join(","),
      ]);
      assert.equal(bad.code, 1);
      assert.match(
        bad.stderr,
        /^counter restore: snapshot file .*damaged\.snap is corrupt: checksum/,
      );
      await assert.rejects(Deno.stat(dir), Deno.errors.NotFound);

      const busy = join(root, "busy");
      await Deno.mkdir(busy);
      await Deno.writeTextFile(join(busy, "something"), "x");
      const full = await cli([
        "restore",
        "--data",
        busy,
        "--from",
        backupPath,
        "--id",
        newIds[0],
        "--conf",
        newIds.join(","),
      ]);
      assert.equal(full.code, 1);
      assert.match(full.stderr, /is not empty: restore only seeds a new node's empty data dir/);
    });

    await t.step("three restored nodes form a new group with the backed-up value", async () => {
      for (const [k, id] of newIds.entries()) {
        const dataDir = join(root, `restored${k + 1}`);
        const result = await cli([
          "restore",
          "--data",
          dataDir,
          "--from",
          backupPath,
          "--id",
          id,
          "--conf",
          newIds.join(","),
        ]);
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stdout, new RegExp(`^restored snapshot at index ${backupIndex} `));
        clusterIds.set(id, /cluster id: ([0-9a-f]{16}) \(new\)/.exec(result.stdout)![1]);
        const logPath = join(root, `restored${k + 1}.log`);
        logs.set(id, logPath);
        restored.set(id, await ServeProcess.spawn({ id, dataDir, logPath, conf: newIds }));
      }
      await waitForAgreedLeader(newIds);
      await waitForConvergence(newIds, 60n);
      const client = new CounterClient({ peers: newIds, timeoutMs: WAIT_MS });
      try {
        assert.equal((await client.incrementAndGet(5n)).value, 65n);
      } finally {
        await client.close();
      }
      await waitForConvergence(newIds, 65n);
    });

    await t.step(
      "inspect shows a node's dir, running or stopped, and changes nothing",
      async () => {
        const id = newIds[0];
        const dataDir = join(root, "restored1");
        const running = await cli(["inspect", "--data", dataDir]);
        assert.equal(running.code, 0, running.stdout + running.stderr);
        assert.match(running.stdout, /^data dir: .* \(in use by a running node, pid \d+: /);

        await restored.get(id)!.stop();
        const text = await cli(["inspect", "--data", dataDir]);
        assert.equal(text.code, 0, text.stdout + text.stderr);
        const lines = text.stdout.trimEnd().split("\n");
        assert.match(lines[0], /\(not in use\)$/);
        assert.match(lines[1], new RegExp(`^meta: node ${id}, group counter, term \\d+, vote `));
        assert.match(
          lines[2],
          /^ {2}incarnation [0-9a-f]{16}, cluster id [0-9a-f]{16}, commit floor \d+, log floor \d+$/,
        );
        assert.match(lines[3], /^ {2}peer incarnations: /);
        assert.match(
          lines[4],
          new RegExp(`^snapshot: index ${backupIndex}, term \\d+, value 60, \\d+ client sessions?`),
        );
        assert.equal(lines[5], `  voters: ${[...newIds].sort().join(",")}`);
        assert.match(
          lines[7],
          new RegExp(`^log: entries ${backupIndex + 1}\\.\\.\\d+ \\(last term`),
        );

        const json = JSON.parse((await cli(["inspect", "--data", dataDir, "--json"])).stdout);
        assert.equal(json.inUse, false);
        assert.equal(json.meta.nodeId, id);
        // Restored from one file with one --conf: one new cluster id, not the backed-up group's.
        assert.equal(json.meta.clusterId, clusterIds.get(id));
        assert.equal(new Set(clusterIds.values()).size, 1);
        assert.equal(json.snapshot.index, backupIndex);
        // The writer of the 30 increments before the backup has its session in the snapshot.
        assert.ok(json.snapshot.sessions >= 1, `sessions: ${json.snapshot.sessions}`);
        assert.equal(json.log.firstIndex, backupIndex + 1);
        assert.ok(json.log.lastIndex > backupIndex);
        assert.deepEqual(json.problems, []);

        // A torn tail: reported (exit 1), not repaired.
        const segments = await listFiles(join(dataDir, "groups", "counter", "log"), ".log");
        const last = join(dataDir, "groups", "counter", "log", segments.at(-1)!);
        const file = await Deno.open(last, { append: true });
        await file.write(new Uint8Array([9, 0, 0, 0, 1, 2]));
        file.close();
        const sizeBefore = (await Deno.stat(last)).size;
        const torn = await cli(["inspect", "--data", dataDir]);
        assert.equal(torn.code, 1);
        assert.match(torn.stdout, /problem: .*6 bytes at byte \d+ are not a good record/);
        assert.equal((await Deno.stat(last)).size, sizeBefore, "inspect wrote nothing");
      },
    );
  } catch (err) {
    await dumpClusterLogs(cluster);
    await dumpLogTails(logs);
    throw err;
  } finally {
    for (const proc of restored.values()) await proc.stop("SIGKILL");
    await cluster.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  }
});
