import assert from "node:assert/strict";
import { join } from "node:path";
import type { Snapshot } from "../../lib/raft/types.ts";
import {
  DataDir,
  DataDirLockedError,
  DataDirMismatchError,
  LogStore,
  MetaStore,
  SnapshotStore,
  StorageCorruptionError,
} from "../../lib/storage/mod.ts";
import { segmentFileName } from "../../lib/storage/log_store.ts";
import { snapshotFileName } from "../../lib/storage/snapshot_store.ts";
import { captureLogger, listNames, makeEntries, plain, tempDir } from "./_helpers.ts";
import { SyncSpy } from "./_sync_spy.ts";

const options = { nodeId: "127.0.0.1:7001", group: "g1" };

function makeSnapshot(index: number, term: number): Snapshot {
  return {
    index,
    term,
    conf: { voters: ["127.0.0.1:7001"], learners: [] },
    data: new Uint8Array([index & 0xff, term & 0xff]),
  };
}

function plainRecovered(dir: DataDir) {
  const { hardState, snapshot, entries } = dir.recovered();
  return {
    hardState,
    snapshot: snapshot === null ? null : { ...snapshot, data: [...snapshot.data] },
    entries: plain(entries),
  };
}

Deno.test("a fresh dir is created, bound to its node and reported fresh", async () => {
  await using scratch = await tempDir();
  const path = join(scratch.path, "a", "b");
  const dir = await DataDir.open(path, options);
  assert.equal(dir.path, path);
  assert.equal(dir.isFresh(), true);
  assert.deepEqual(plainRecovered(dir), {
    hardState: { term: 0, vote: "" },
    snapshot: null,
    entries: [],
  });
  assert.equal(dir.firstIndex(), 1);
  assert.equal(dir.lastIndex(), 0);
  assert.deepEqual(await listNames(path), ["LOCK", "log", "raft_meta", "snapshot"]);
  assert.deepEqual(await listNames(join(path, "raft_meta")), ["meta"]);
  await dir.close();
  await dir.close();

  const again = await DataDir.open(path, options);
  assert.equal(again.isFresh(), true);
  await again.close();
  await assert.rejects(DataDir.open(path, { ...options, nodeId: "127.0.0.1:7002" }), (e: Error) => {
    assert.ok(e instanceof DataDirMismatchError);
    assert.match(
      e.message,
      /belongs to node 127\.0\.0\.1:7001 in group g1, not node 127\.0\.0\.1:7002/,
    );
    return true;
  });
  // The refused open released the lock again.
  const third = await DataDir.open(path, options);
  await third.close();
});

Deno.test("entries and hard state survive a reopen", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, { ...options, segmentBytesMax: 200 });
  await dir.saveHardState({ term: 2, vote: options.nodeId });
  const entries = makeEntries(1, 20, 2);
  await Promise.all([
    dir.append(entries.slice(0, 10)),
    dir.saveHardState({ term: 2, vote: options.nodeId }),
  ]);
  await dir.append(entries.slice(10));
  assert.equal(dir.isFresh(), false);
  assert.deepEqual(plain(await dir.entries(5, 8)), plain(entries.slice(4, 7)));
  await dir.close();
  await assert.rejects(dir.append(makeEntries(21, 1, 2)), /is closed/);

  const reopened = await DataDir.open(scratch.path, { ...options, segmentBytesMax: 200 });
  assert.equal(reopened.isFresh(), false);
  assert.deepEqual(plainRecovered(reopened), {
    hardState: { term: 2, vote: options.nodeId },
    snapshot: null,
    entries: plain(entries),
  });
  await reopened.close();
});

Deno.test("a second open of a dir in use fails at once, in this process and in another", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, options);
  await assert.rejects(DataDir.open(scratch.path, options), DataDirLockedError);

  const modUrl = new URL("../../lib/storage/mod.ts", import.meta.url).href;
  const script = join(scratch.path, "child.ts");
  await Deno.writeTextFile(
    script,
    `import { DataDir } from ${JSON.stringify(modUrl)};
try {
  const dir = await DataDir.open(Deno.args[0], { nodeId: "127.0.0.1:7001", group: "g1" });
  await dir.close();
  console.log("opened");
} catch (error) {
  console.log(error.message);
  Deno.exit(3);
}`,
  );
  const run = async () => {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-config", script, scratch.path],
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: output.code, out: new TextDecoder().decode(output.stdout).trim() };
  };
  const lockPath = join(scratch.path, "LOCK");
  assert.deepEqual(await run(), {
    code: 3,
    out: `data dir ${scratch.path} is in use by another process (lock file ${lockPath})`,
  });
  await dir.close();
  assert.deepEqual(await run(), { code: 0, out: "opened" });
});

Deno.test("saveSnapshot, compactTo and reopen give the snapshot and the entries after it", async () => {
  await using scratch = await tempDir();
  const open = () => DataDir.open(scratch.path, { ...options, segmentBytesMax: 150 });
  const dir = await open();
  await dir.append([...makeEntries(1, 10, 1), ...makeEntries(11, 10, 2)]);
  await assert.rejects(dir.compactTo(5), /the newest snapshot covers up to 0/);
  await assert.rejects(dir.saveSnapshot(makeSnapshot(12, 1)), /has term 1, the log has term 2/);
  await assert.rejects(dir.saveSnapshot(makeSnapshot(21, 2)), /past the last log index 20/);
  await dir.saveSnapshot(makeSnapshot(12, 2));
  await assert.rejects(
    dir.saveSnapshot(makeSnapshot(11, 2)),
    /older than the saved snapshot at 12/,
  );
  await assert.rejects(dir.append(makeEntries(12, 1, 2)), /the snapshot covers up to 12/);
  await dir.compactTo(12);
  assert.ok(dir.firstIndex() > 1 && dir.firstIndex() <= 13, `first index ${dir.firstIndex()}`);
  await dir.append(makeEntries(21, 2, 3));
  await dir.close();

  const reopened = await open();
  assert.deepEqual(plainRecovered(reopened), {
    hardState: { term: 0, vote: "" },
    snapshot: { ...makeSnapshot(12, 2), data: [12, 2] },
    entries: plain([...makeEntries(13, 8, 2), ...makeEntries(21, 2, 3)]),
  });
  assert.equal(reopened.isFresh(), false);
  await reopened.close();
});

Deno.test("restoreSnapshot discards the log and the next append follows the snapshot", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, { ...options, segmentBytesMax: 150 });
  await dir.append(makeEntries(1, 10, 1));
  await dir.restoreSnapshot(makeSnapshot(50, 4));
  assert.equal(dir.firstIndex(), 51);
  assert.equal(dir.lastIndex(), 50);
  await assert.rejects(dir.append(makeEntries(52, 1, 4)), /would leave a gap/);
  await dir.append(makeEntries(51, 3, 4));
  await dir.close();

  const reopened = await DataDir.open(scratch.path, options);
  assert.deepEqual(plainRecovered(reopened), {
    hardState: { term: 0, vote: "" },
    snapshot: { ...makeSnapshot(50, 4), data: [50, 4] },
    entries: plain(makeEntries(51, 3, 4)),
  });
  await reopened.close();
});

/** Lays out a dir as a crash would leave it: meta, a snapshot, and the log `build` writes. */
async function crashedDir(
  path: string,
  snapshot: Snapshot | null,
  build: (log: LogStore) => Promise<void>,
): Promise<void> {
  const dir = await DataDir.open(path, options);
  await dir.close();
  if (snapshot !== null) {
    await (await SnapshotStore.open(join(path, "snapshot"))).save(snapshot);
  }
  const log = await LogStore.open(join(path, "log"), { segmentBytesMax: 150 });
  await build(log);
  await log.close();
}

Deno.test("a log with another term at the snapshot's index is stale and discarded", async () => {
  await using scratch = await tempDir();
  // A crash in restoreSnapshot after the snapshot was saved, before the old log went.
  await crashedDir(scratch.path, makeSnapshot(8, 3), (log) => log.append(makeEntries(1, 12, 1)));
  const { logger, lines } = captureLogger();
  const dir = await DataDir.open(scratch.path, { ...options, logger });
  assert.deepEqual(plain(dir.recovered().entries), []);
  assert.equal(dir.firstIndex(), 9);
  assert.ok(lines.some((line) => line.includes("discarding a log that does not continue")));
  assert.deepEqual(await listNames(join(scratch.path, "log")), [segmentFileName(9)]);
  await dir.append(makeEntries(9, 1, 3));
  await dir.close();
});

Deno.test("a log ending before the snapshot's index is stale and discarded", async () => {
  await using scratch = await tempDir();
  await crashedDir(scratch.path, makeSnapshot(30, 3), (log) => log.append(makeEntries(1, 12, 1)));
  const dir = await DataDir.open(scratch.path, options);
  assert.deepEqual(dir.recovered().entries, []);
  assert.equal(dir.firstIndex(), 31);
  assert.equal(dir.lastIndex(), 30);
  await dir.close();
});

Deno.test("a log that continues the snapshot is kept, entries start after the snapshot", async () => {
  await using scratch = await tempDir();
  await crashedDir(
    scratch.path,
    makeSnapshot(8, 1),
    (log) => log.append([...makeEntries(1, 8, 1), ...makeEntries(9, 4, 2)]),
  );
  const dir = await DataDir.open(scratch.path, options);
  assert.deepEqual(plain(dir.recovered().entries), plain(makeEntries(9, 4, 2)));
  assert.equal(dir.firstIndex(), 1);
  await dir.close();
});

Deno.test("entries missing between the snapshot and the log are a loud error", async () => {
  await using scratch = await tempDir();
  await crashedDir(scratch.path, makeSnapshot(8, 1), async (log) => {
    await log.reset(20);
    await log.append(makeEntries(20, 2, 1));
  });
  await assert.rejects(DataDir.open(scratch.path, options), (error: Error) => {
    assert.ok(error instanceof StorageCorruptionError);
    assert.match(
      error.message,
      /missing log entries 9\.\.19: the log starts at index 20 but the snapshot ends at 8/,
    );
    return true;
  });
  // The failed open released the lock and left the files alone.
  assert.deepEqual(await listNames(join(scratch.path, "log")), [segmentFileName(20)]);
});

Deno.test("a log that does not start at 1 without a snapshot is a loud error", async () => {
  await using scratch = await tempDir();
  await crashedDir(scratch.path, null, (log) => log.reset(5));
  await assert.rejects(DataDir.open(scratch.path, options), /there is no snapshot/);
});

Deno.test("a corrupt newest snapshot falls back to the previous one when the log covers it", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, options);
  await dir.append(makeEntries(1, 20, 1));
  await dir.saveSnapshot(makeSnapshot(5, 1));
  await dir.saveSnapshot(makeSnapshot(10, 1));
  await dir.close();
  await Deno.writeFile(join(scratch.path, "snapshot", snapshotFileName(10)), new Uint8Array(7));

  const { logger, lines } = captureLogger();
  const reopened = await DataDir.open(scratch.path, { ...options, logger });
  assert.equal(reopened.recovered().snapshot?.index, 5);
  assert.deepEqual(plain(reopened.recovered().entries), plain(makeEntries(6, 15, 1)));
  assert.ok(lines.some((line) => line.includes("snapshot file is corrupt")));
  await reopened.close();
});

Deno.test("a lost meta file with a log present is a loud error, not a fresh start", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, options);
  await dir.append(makeEntries(1, 2, 1));
  await dir.saveHardState({ term: 1, vote: options.nodeId });
  await dir.close();
  await Deno.remove(join(scratch.path, "raft_meta", "meta"));
  await assert.rejects(
    DataDir.open(scratch.path, options),
    /has log or snapshot files but no meta file/,
  );
  // The meta store itself still opens, empty: the refusal is DataDir's.
  const meta = await MetaStore.open(join(scratch.path, "raft_meta"), options);
  assert.equal(meta.exists(), false);
});

Deno.test("DataDir forwards the version 2 meta fields and keeps them across a reopen", async () => {
  await using scratch = await tempDir();
  const dir = await DataDir.open(scratch.path, options);
  const incarnation = dir.incarnation();
  assert.match(incarnation, /^[0-9a-f]{16}$/);
  assert.equal(dir.clusterId(), "");
  assert.equal(dir.commitFloor(), 0);
  await dir.saveClusterId("0123456789abcdef");
  await dir.append(makeEntries(1, 3, 1));
  await dir.saveCommitFloor(2);
  await dir.savePeerIncarnation("h:2", "0000000000000002");
  await dir.savePeerIncarnation("h:3", "0000000000000003");
  await dir.forgetPeerIncarnations(new Set(["h:3"]));
  await dir.close();
  const again = await DataDir.open(scratch.path, options);
  assert.equal(again.incarnation(), incarnation);
  assert.equal(again.clusterId(), "0123456789abcdef");
  assert.equal(again.commitFloor(), 2);
  assert.equal(again.peerIncarnation("h:2"), undefined);
  assert.equal(again.peerIncarnation("h:3"), "0000000000000003");
  await again.close();
  await assert.rejects(again.saveCommitFloor(3), /is closed/);
});

Deno.test("a dir with a version 1 meta file gets a permanent incarnation at open", async () => {
  await using scratch = await tempDir();
  const golden = await Deno.readFile(new URL("../../snapshots/storage/meta_v1", import.meta.url));
  const identity = { nodeId: "127.0.0.1:7001", group: "main" };
  await Deno.mkdir(join(scratch.path, "raft_meta"));
  await Deno.writeFile(join(scratch.path, "raft_meta", "meta"), golden);
  const dir = await DataDir.open(scratch.path, identity);
  assert.deepEqual(dir.recovered().hardState, { term: 2, vote: "127.0.0.1:7002" });
  const incarnation = dir.incarnation();
  await dir.close();
  const bytes = await Deno.readFile(join(scratch.path, "raft_meta", "meta"));
  assert.equal(new DataView(bytes.buffer).getUint16(4, true), 2);
  const again = await DataDir.open(scratch.path, identity);
  assert.equal(again.incarnation(), incarnation);
  await again.close();
});

Deno.test("an open flushes what it found before acting on it: dirs, meta, newest segment", async () => {
  await using tmp = await tempDir();
  const root = join(tmp.path, "groups", "g1");
  const dir = await DataDir.open(root, options);
  await dir.append(makeEntries(1, 3, 1));
  await dir.saveHardState({ term: 1, vote: options.nodeId });
  await dir.close();
  // A process that wrote these may have died before any directory or file flush reached the
  // disk: a second open finds them all the same, and must make them durable first.
  using spy = new SyncSpy();
  const again = await DataDir.open(root, options);
  await again.close();
  for (
    const path of [
      join(tmp.path, "groups"),
      root,
      join(root, "raft_meta", "meta"),
      join(root, "raft_meta"),
      join(root, "log", segmentFileName(1)),
      join(root, "log"),
    ]
  ) assert.ok(spy.flushed.includes(path), `${path} flushed at open (${spy.flushed.join(", ")})`);
});
