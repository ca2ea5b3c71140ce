/**
 * End-to-end tests of snapshots, log compaction and InstallSnapshot, on real `counter serve`
 * processes started by `LocalCluster` with a small snapshot threshold and small log segments:
 *
 * 1. a follower that was down through 20,000 increments catches up through InstallSnapshot, and
 *    every node keeps only a few log segments and at most two snapshot files;
 * 2. a follower whose data dir was wiped is replaced under the same id (removed, started empty
 *    with `--join`, added back) and catches up through InstallSnapshot while increments keep
 *    flowing;
 * 3. every node, restarted in turn, recovers its value from its snapshot plus its log tail;
 * 4. a flipped byte in a log record that valid records follow stops the node at start-up with a
 *    message naming the file and the offset, and changes nothing on disk.
 *
 * The steps share one cluster and build on each other; the first failure stops the rest.
 * Durations are printed, never asserted.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { CounterClient } from "../../lib/client/client.ts";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import {
  countLines,
  dumpLogTails,
  ELECTION_TIMEOUT_MS,
  fileSize,
  IncrementLoad,
  listFiles,
  readLogFrom,
  ServeProcess,
  statusesOf,
  WAIT_MS,
  waitForConvergence,
  waitForLog,
} from "./_cluster_helpers.ts";

/**
 * Snapshot every 40 entries, keep 10 below it, 16 KiB segments: many of each, quickly. (The
 * leader proposes the increments of one event-loop turn as one entry, so a round of BATCH
 * concurrent increments is one entry or a few.)
 */
const SNAPSHOT_EVERY = 40;
const SNAPSHOT_ARGS = [
  "--snapshot-log-entries",
  String(SNAPSHOT_EVERY),
  "--snapshot-retain-entries",
  "10",
  "--log-segment-bytes",
  "16384",
];
const SERVE_ARGS = [...SNAPSHOT_ARGS, "--election-timeout-ms", String(ELECTION_TIMEOUT_MS)];

const TOTAL_INCREMENTS = 20_000;
const BATCH = 50;
/** Upper bound on the segments a node keeps: 10 retained + < 80 unsnapshotted entries. */
const SEGMENTS_MAX = 16;

/** Index of the first entry of a segment or snapshot file, from its zero-padded name. */
function fileIndex(name: string): number {
  const index = Number(name.slice(0, name.indexOf(".")));
  assert.ok(Number.isSafeInteger(index), `bad file name ${name}`);
  return index;
}

/** Checks one node's data dir: few log segments, all recent, at most two snapshots. */
async function checkDataDir(
  cluster: LocalCluster,
  id: string,
  minFirstIndex: number,
): Promise<string> {
  const dir = cluster.dataDir(id);
  const segments = await listFiles(join(dir, "groups", "counter", "log"), ".log");
  const snaps = await listFiles(join(dir, "groups", "counter", "snapshot"), ".snap");
  const summary = `${id}: ${segments.length} segments from ${segments[0]}, snapshots [${
    snaps.join(", ")
  }]`;
  assert.ok(segments.length >= 1, summary);
  assert.ok(segments.length <= SEGMENTS_MAX, `too many log segments kept: ${summary}`);
  assert.ok(fileIndex(segments[0]) > minFirstIndex, `the log was not compacted: ${summary}`);
  assert.ok(snaps.length >= 1 && snaps.length <= 2, `expected 1 or 2 snapshots: ${summary}`);
  return summary;
}

/** The record offsets of a log segment (header: 20 bytes; record: u32 length, u32 CRC, payload). */
function recordOffsets(bytes: Uint8Array): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const offsets: number[] = [];
  let offset = 20;
  while (offset + 8 <= bytes.length) {
    const length = view.getUint32(offset, true);
    assert.ok(length >= 17 && offset + 8 + length <= bytes.length, `bad record at ${offset}`);
    offsets.push(offset);
    offset += 8 + length;
  }
  assert.equal(offset, bytes.length, "the segment ends inside a record");
  return offsets;
}

Deno.test("snapshots, compaction and InstallSnapshot on a real cluster", async (t) => {
  const startedMs = performance.now();
  const cluster = await LocalCluster.start({ serveArgs: SERVE_ARGS });
  const client = new CounterClient({ peers: cluster.ids, timeoutMs: 15_000 });
  const extraLogs = new Map<string, string>();
  let ok = true;
  let failed = false;
  /** Half the applied index after the first load: every log must be compacted beyond it. */
  let compactedBelow = 0;
  try {
    let leader = await cluster.waitForLeader(WAIT_MS);
    let expected = (await client.get()).value;
    assert.equal(expected, 0n);

    ok = await t.step(
      "a follower down through 20,000 increments catches up by snapshot",
      async () => {
        const follower = cluster.ids.find((id) => id !== leader)!;
        await cluster.signal(follower, "SIGTERM");
        const logOffset = await fileSize(cluster.logPath(follower));
        const live = cluster.ids.filter((id) => id !== follower);

        const loadMs = performance.now();
        const seen = new Set<bigint>();
        for (let sent = 0; sent < TOTAL_INCREMENTS; sent += BATCH) {
          const results = await Promise.all(
            Array.from({ length: BATCH }, () => client.incrementAndGet(1n)),
          );
          for (const r of results) seen.add(r.value);
        }
        // Each increment was applied once: the answers are exactly 1..20,000.
        assert.equal(seen.size, TOTAL_INCREMENTS);
        assert.ok(!seen.has(0n) && seen.has(BigInt(TOTAL_INCREMENTS)));
        expected += BigInt(TOTAL_INCREMENTS);
        console.log(
          `${TOTAL_INCREMENTS} increments with ${follower} down: ` +
            `${(performance.now() - loadMs).toFixed(0)} ms`,
        );

        // The two live nodes snapshotted and compacted many times.
        const { applied } = await waitForConvergence(live, expected);
        // Each round of BATCH concurrent increments takes at least one entry.
        assert.ok(applied >= TOTAL_INCREMENTS / BATCH, `applied ${applied}`);
        compactedBelow = Math.floor(applied / 2);
        leader = await cluster.waitForLeader(WAIT_MS, [follower]);
        const statuses = await statusesOf(live);
        for (const id of live) {
          const s = statuses.get(id)!;
          assert.ok(s !== null, `${id} does not answer`);
          assert.ok(
            s.snapshotIndex >= applied - 2 * SNAPSHOT_EVERY,
            `${id} snapshotIndex ${s.snapshotIndex}, applied ${applied}`,
          );
          const saved = countLines(await readLogFrom(cluster.logPath(id)), "snapshot saved");
          assert.ok(saved >= 5, `${id} logged "snapshot saved" ${saved} times`);
        }

        // The follower comes back: the leader no longer has its missing entries, so it sends a
        // snapshot.
        await cluster.startNode(follower);
        const restartMs = performance.now();
        const caughtUp = await waitForConvergence(cluster.ids, expected);
        await waitForLog(cluster.logPath(follower), /installed snapshot from leader/, logOffset);
        assert.ok(caughtUp.applied >= applied);
        console.log(
          `${follower} caught up to applied index ${caughtUp.applied} by InstallSnapshot in ` +
            `${(performance.now() - restartMs).toFixed(0)} ms`,
        );

        for (const id of cluster.ids) {
          console.log(await checkDataDir(cluster, id, compactedBelow));
        }
      },
    );

    if (!ok) return;
    ok = await t.step(
      "a wiped follower is replaced under the same id while increments flow",
      async () => {
        leader = await cluster.waitForLeader(WAIT_MS);
        const victim = cluster.ids.find((id) => id !== leader)!;
        const base = (await client.get()).value;
        assert.equal(base, expected);
        const load = new IncrementLoad(cluster.ids, { workers: 16, timeoutMs: 10_000 });
        try {
          load.start();
          await load.waitForAcked(200, "before the crash");
          await cluster.kill(victim);
          await Deno.remove(cluster.dataDir(victim), { recursive: true });
          const ackedAtCrash = load.acked;
          await load.waitForAcked(ackedAtCrash + 500, "with the victim down");

          // Its old id cannot simply come back (it would refuse to start: see identity_test.ts);
          // it is replaced: removed, started empty with --join, added back.
          const logOffset = await fileSize(cluster.logPath(victim));
          await client.admin("remove_peer", { node: victim });
          const others = cluster.ids.filter((id) => id !== victim);
          const joiner = await ServeProcess.spawn({
            id: victim,
            dataDir: cluster.dataDir(victim),
            logPath: cluster.logPath(victim),
            join: others,
            args: SNAPSHOT_ARGS,
          });
          const restartMs = performance.now();
          try {
            await waitForLog(cluster.logPath(victim), /empty node waiting/, logOffset);
            await client.admin("add_peer", { node: victim });
            await waitForLog(cluster.logPath(victim), /installed snapshot from leader/, logOffset);
            const installMs = performance.now() - restartMs;
            console.log(
              `wiped ${victim}: installed a snapshot ${installMs.toFixed(0)} ms after start`,
            );
            await load.waitForAcked(load.acked + 500, "after the install");
            await load.stop();
          } finally {
            // Handed back to the cluster for the next steps, with its data.
            await joiner.stop();
            await cluster.startNode(victim);
          }

          const victimLog = await readLogFrom(cluster.logPath(victim), logOffset);
          // It started from nothing and joined: no bootstrap, the leader's snapshot.
          assert.doesNotMatch(victimLog, /bootstrapped a new group/);
          // Increments that ended with outcome unknown may still land: judge once all agree.
          const { value, applied } = await waitForConvergence(cluster.ids);
          const grew = value - base;
          console.log(
            `wiped ${victim}: caught up to applied index ${applied}; load ${load.summary()}; ` +
              `value grew by ${grew}`,
          );
          assert.ok(
            grew >= BigInt(load.acked),
            `lost acknowledged increments: ${grew} < ${load.acked}`,
          );
          assert.ok(
            grew <= BigInt(load.acked + load.unknown),
            `applied more than was sent: ${grew} > ${load.acked} + ${load.unknown}`,
          );
          expected = value;
          assert.equal((await client.get()).value, expected);
          console.log(await checkDataDir(cluster, victim, compactedBelow));
        } finally {
          await load.close();
        }
      },
    );

    if (!ok) return;
    ok = await t.step(
      "each node restarted in turn recovers from snapshot plus log tail",
      async () => {
        // A snapshot on each node, then a tail of entries after it (fewer than the
        // SNAPSHOT_EVERY that would trigger the next snapshot): rounds of a few increments,
        // each round one entry or a few.
        const snapshotIndex = new Map<string, number>();
        for (const id of cluster.ids) {
          const { data } = await client.admin("snapshot", {}, { peer: id });
          snapshotIndex.set(id, data.snapshotIndex as number);
        }
        const TAIL_ROUNDS = 25;
        const PER_ROUND = 10;
        for (let round = 0; round < TAIL_ROUNDS; round++) {
          await Promise.all(Array.from({ length: PER_ROUND }, () => client.incrementAndGet(1n)));
        }
        expected += BigInt(TAIL_ROUNDS * PER_ROUND);
        await waitForConvergence(cluster.ids, expected);

        for (const id of cluster.ids) {
          const logOffset = await fileSize(cluster.logPath(id));
          await cluster.signal(id, "SIGTERM");
          await cluster.startNode(id);
          leader = await cluster.waitForLeader(WAIT_MS);
          await waitForConvergence(cluster.ids, expected);
          const recoveredLine =
            /INFO +recovered node=\S+ term=\d+ (?:vote=\S+ )?snapshotIndex=(\d+) lastIndex=(\d+)/;
          const text = await waitForLog(cluster.logPath(id), recoveredLine, logOffset);
          const m = text.match(recoveredLine);
          assert.ok(m !== null, `no "recovered" line in ${id}'s log:\n${text}`);
          const [recoveredSnapshot, recoveredLast] = [Number(m[1]), Number(m[2])];
          assert.equal(
            recoveredSnapshot,
            snapshotIndex.get(id),
            `${id} recovered another snapshot`,
          );
          assert.ok(
            recoveredLast >= recoveredSnapshot + TAIL_ROUNDS,
            `${id} recovered no log tail: snapshot ${recoveredSnapshot}, last ${recoveredLast}`,
          );
          // A linearizable read through the restarted node's address alone.
          const one = new CounterClient({ peers: [id], timeoutMs: 10_000 });
          try {
            assert.equal((await one.get()).value, expected);
          } finally {
            await one.close();
          }
          console.log(
            `restarted ${id}: recovered snapshot ${recoveredSnapshot} + log to ${recoveredLast}`,
          );
        }
        expected += 1n;
        assert.equal((await client.incrementAndGet(1n)).value, expected);
      },
    );

    if (!ok) return;
    ok = await t.step("a corrupt log record in a node's log stops it at start-up", async () => {
      leader = await cluster.waitForLeader(WAIT_MS);
      const victim = cluster.ids.find((id) => id !== leader)!;
      await cluster.signal(victim, "SIGTERM");
      const logDir = join(cluster.dataDir(victim), "groups", "counter", "log");
      const segments = await listFiles(logDir, ".log");
      assert.ok(segments.length >= 2, `want a segment that is not the last: ${segments}`);
      // The first segment: every record in it is followed by valid ones (the rest of the
      // segment, and the later segments), so damage there cannot pass for a torn write.
      const path = join(logDir, segments[0]);
      const original = await Deno.readFile(path);
      const offsets = recordOffsets(original);
      assert.ok(offsets.length >= 3, `${path} holds ${offsets.length} records`);
      const record = offsets[Math.floor(offsets.length / 2)];
      const recordEnd = record + 8 + new DataView(original.buffer).getUint32(record, true);
      // A byte in the middle of the entry's data (past the 8-byte record header and the 17
      // bytes of type, term and index).
      const flipAt = record + 25 + Math.floor((recordEnd - record - 25) / 2);
      const damaged = original.slice();
      damaged[flipAt] ^= 0xff;
      await Deno.writeFile(path, damaged);
      const sizesBefore = await Promise.all(segments.map((s) => fileSize(join(logDir, s))));

      const attemptLog = join(cluster.dataRoot, "corrupt-start.log");
      extraLogs.set(`${victim} (corrupt start)`, attemptLog);
      const proc = await ServeProcess.spawn({
        id: victim,
        dataDir: cluster.dataDir(victim),
        logPath: attemptLog,
        conf: cluster.ids,
        args: SNAPSHOT_ARGS,
      });
      const code = await proc.waitExit(WAIT_MS);
      const text = await readLogFrom(attemptLog);
      assert.notEqual(code, null, `the node kept running on a corrupt log:\n${text}`);
      assert.equal(code, 1, text);
      assert.ok(
        text.includes(`log segment ${path} is corrupt at byte ${record}`),
        `the message does not name ${path} and offset ${record}:\n${text}`,
      );
      assert.ok(!text.includes("serving"), `the node started serving:\n${text}`);
      console.log(`refused to start: ${text.trim().split("\n").at(-1)}`);

      // Nothing was modified: the damaged file is as written, no segment was cut or removed.
      assert.deepEqual(await Deno.readFile(path), damaged);
      assert.deepEqual(await listFiles(logDir, ".log"), segments);
      assert.deepEqual(
        await Promise.all(segments.map((s) => fileSize(join(logDir, s)))),
        sizesBefore,
      );

      // Repaired, the node starts and catches up.
      await Deno.writeFile(path, original);
      await cluster.startNode(victim);
      await waitForConvergence(cluster.ids, expected);
    });
  } catch (err) {
    failed = true;
    throw err;
  } finally {
    await client.close();
    if (failed || !ok) {
      const logs = new Map(cluster.ids.map((id) => [id, cluster.logPath(id)]));
      for (const [name, path] of extraLogs) logs.set(name, path);
      await dumpLogTails(logs);
    }
    await cluster.stop();
  }
  assert.ok(ok, "a step failed");
  console.log(`snapshot e2e: ${Math.round(performance.now() - startedMs)} ms`);
});
