/**
 * Issue 9, point 4: a data dir whose log lost entries the node had written refuses to open,
 * naming the file, and no ordinary crash makes it refuse falsely.
 *
 * The crash tests stop the storage at its n-th durable step (a file created, renamed or
 * removed, a file truncated), for every n, by making that step and every later one throw, as
 * if the process died there; then they reopen the dir. Each step before the crash completed,
 * and every storage step flushes before the next, so the files are what a real crash at that
 * point would leave.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Snapshot } from "../../lib/raft/types.ts";
import { DataDir, StorageCorruptionError } from "../../lib/storage/mod.ts";
import {
  RECORD_HEADER_BYTES,
  RECORD_PAYLOAD_FIXED_BYTES,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from "../../lib/storage/log_store.ts";
import { listNames, makeEntries, plain, tempDir } from "./_helpers.ts";

const options = { nodeId: "127.0.0.1:7001", group: "g1" };
const RECORD_BYTES_16 = RECORD_HEADER_BYTES + RECORD_PAYLOAD_FIXED_BYTES + 16;
/** Four 16-byte entries a segment. */
const segmentBytesMax = SEGMENT_HEADER_BYTES + 4 * RECORD_BYTES_16;

function makeSnapshot(index: number, term: number): Snapshot {
  return {
    index,
    term,
    conf: { voters: [options.nodeId], learners: [] },
    data: new Uint8Array([index & 0xff, term & 0xff]),
  };
}

function open(path: string): Promise<DataDir> {
  return DataDir.open(path, { ...options, segmentBytesMax });
}

async function assertRefuses(path: string, pattern: RegExp, filePath: string): Promise<void> {
  await assert.rejects(open(path), (error: Error) => {
    assert.ok(error instanceof StorageCorruptionError, String(error));
    assert.match(error.message, pattern);
    assert.ok(error.message.includes(filePath), error.message);
    assert.equal(error.path, filePath);
    return true;
  });
}

Deno.test("a deleted newest segment is refused at once, naming the file (log floor)", async () => {
  await using scratch = await tempDir();
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 10));
  assert.equal(dir.commitFloor(), 0);
  await dir.close();
  const logDir = join(scratch.path, "log");
  assert.deepEqual(await listNames(logDir), [1, 5, 9].map(segmentFileName));
  const newest = join(logDir, segmentFileName(9));
  await Deno.remove(newest);
  await assertRefuses(scratch.path, /lost log entries: log segment .* is missing/, newest);
  // The two newest gone: the floor still names the newest one the node wrote.
  await Deno.remove(join(logDir, segmentFileName(5)));
  await assertRefuses(scratch.path, /is missing, but the node wrote entry 9/, newest);
});

Deno.test("a log cut below the commit floor is refused, naming the log dir", async () => {
  await using scratch = await tempDir();
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 7));
  await dir.saveCommitFloor(7);
  await assert.rejects(dir.saveCommitFloor(8), /past the last index held here, 7/);
  await dir.close();
  // Cut the newest segment (entries 5..7) back to its header: a torn-looking tail at EOF...
  const newest = join(scratch.path, "log", segmentFileName(5));
  const bytes = await Deno.readFile(newest);
  await Deno.writeFile(newest, bytes.subarray(0, SEGMENT_HEADER_BYTES + RECORD_BYTES_16 + 3));
  // ...which the log alone would accept, ending at 5; the log floor (5) is still held.
  await assertRefuses(
    scratch.path,
    /entries 6\.\.7 are committed and were durable here .* ends at index 5/,
    join(scratch.path, "log"),
  );
});

Deno.test("all log segments deleted is refused when the snapshot does not cover the floors", async () => {
  await using scratch = await tempDir();
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 10));
  await dir.saveSnapshot(makeSnapshot(6, 1));
  await dir.saveCommitFloor(8);
  await dir.close();
  for (const name of await listNames(join(scratch.path, "log"))) {
    await Deno.remove(join(scratch.path, "log", name));
  }
  await assertRefuses(
    scratch.path,
    /\(no segment\) and the snapshot at 6/,
    join(scratch.path, "log", segmentFileName(9)),
  );
});

Deno.test("a snapshot below the commit floor is never installed", async () => {
  await using scratch = await tempDir();
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 10));
  await dir.saveCommitFloor(8);
  await assert.rejects(dir.restoreSnapshot(makeSnapshot(7, 2)), /index 8 is committed/);
  await dir.restoreSnapshot(makeSnapshot(8, 2));
  await dir.append(makeEntries(9, 2, 2));
  await dir.close();
  const again = await open(scratch.path);
  assert.equal(again.recovered().snapshot?.index, 8);
  assert.deepEqual(plain(again.recovered().entries), plain(makeEntries(9, 2, 2)));
  await again.close();
});

Deno.test("cutting a suffix and installing a snapshot lower the log floor first", async () => {
  await using scratch = await tempDir();
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 20));
  // A new leader replaces entries 6.. (segments 9, 13, 17 go).
  await dir.append(makeEntries(6, 1, 2));
  await dir.close();
  let again = await open(scratch.path);
  assert.equal(again.lastIndex(), 6);
  // A snapshot at 4 with another term than the log's: the whole log goes.
  await again.append(makeEntries(7, 14, 2));
  await again.restoreSnapshot(makeSnapshot(4, 3));
  await again.close();
  again = await open(scratch.path);
  assert.equal(again.lastIndex(), 4);
  assert.equal(again.recovered().snapshot?.index, 4);
  await again.close();
});

Deno.test("the commit floor rides on hard state saves, new segments, flushes and close", async () => {
  await using scratch = await tempDir();
  const metaPath = join(scratch.path, "raft_meta", "meta");
  const dir = await open(scratch.path);
  await dir.append(makeEntries(1, 3));
  // Noting is memory only.
  dir.noteCommitIndex(10);
  const before = await Deno.readFile(metaPath);
  assert.equal(dir.commitFloor(), 0);
  // Capped by what the log holds (3), raised with the hard state.
  await dir.saveHardState({ term: 1, vote: "" });
  assert.equal(dir.commitFloor(), 3);
  // A new segment (at 5) raises it with the log floor: entry 5 is durable then, 6 not yet.
  await dir.append(makeEntries(4, 2));
  assert.equal(dir.commitFloor(), 5);
  // The timer's flush writes only when the floor moved.
  await dir.append(makeEntries(6, 2));
  await dir.flushCommitFloor();
  assert.equal(dir.commitFloor(), 7);
  const stat = await Deno.stat(metaPath);
  await dir.flushCommitFloor();
  // A write would have renamed a new file (a new inode) over the old one.
  assert.equal((await Deno.stat(metaPath)).ino, stat.ino);
  // Close flushes what is left.
  dir.noteCommitIndex(8);
  await dir.append(makeEntries(8, 1));
  await dir.close();
  assert.notDeepEqual(await Deno.readFile(metaPath), before);
  const again = await open(scratch.path);
  assert.equal(again.commitFloor(), 8);
  // A lower commit index noted later never lowers it.
  again.noteCommitIndex(2);
  await again.flushCommitFloor();
  assert.equal(again.commitFloor(), 8);
  await again.close();
});

/** Thrown by a storage step after the simulated crash. */
class Crash extends Error {}

interface FaultPatch {
  /** Whether the crash happened. */
  crashed(): boolean;
  /** Puts the real functions back. */
  restore(): void;
}

/** Makes the `crashAt`-th durable storage step (counting from 0) and every later one throw. */
function crashAtStep(crashAt: number): FaultPatch {
  const real = {
    open: Deno.open,
    rename: Deno.rename,
    remove: Deno.remove,
    truncate: Deno.FsFile.prototype.truncate,
  };
  let steps = 0;
  let dead = false;
  const step = () => {
    if (dead || steps++ === crashAt) {
      dead = true;
      throw new Crash(`simulated crash at step ${crashAt}`);
    }
  };
  const patched = Deno as unknown as Record<string, unknown>;
  patched.open = async (path: string | URL, openOptions?: Deno.OpenOptions) => {
    if (openOptions?.createNew) {
      if (dead) throw new Crash("after the crash");
      // The crash lands right after the file is created, before anything is written to it.
      const file = await real.open(path, openOptions);
      if (steps++ === crashAt) {
        dead = true;
        file.close();
        throw new Crash(`simulated crash at step ${crashAt}`);
      }
      return file;
    }
    if (dead && (openOptions?.write || openOptions?.append)) throw new Crash("after the crash");
    return real.open(path, openOptions);
  };
  patched.rename = (from: string, to: string) => (step(), real.rename(from, to));
  patched.remove = (path: string, removeOptions?: Deno.RemoveOptions) => (
    step(), real.remove(path, removeOptions)
  );
  Deno.FsFile.prototype.truncate = function (this: Deno.FsFile, length?: number) {
    step();
    return real.truncate.call(this, length);
  };
  return {
    crashed: () => dead,
    restore() {
      patched.open = real.open;
      patched.rename = real.rename;
      patched.remove = real.remove;
      Deno.FsFile.prototype.truncate = real.truncate;
    },
  };
}

/**
 * For every crash point of `action` (run on a dir prepared by `setup`), reopens the dir twice
 * (the first open may repair) and runs `check`. Returns the number of crash points.
 */
async function everyCrashPoint(
  setup: (dir: DataDir) => Promise<void>,
  action: (dir: DataDir) => Promise<void>,
  check: (dir: DataDir, crashed: boolean) => Promise<void>,
): Promise<number> {
  for (let crashAt = 0;; crashAt++) {
    await using scratch = await tempDir();
    const dir = await open(scratch.path);
    await setup(dir);
    const faults = crashAtStep(crashAt);
    try {
      await action(dir);
    } catch (error) {
      if (!(error instanceof Crash) && !(error instanceof Error && error.cause instanceof Crash)) {
        throw error;
      }
    } finally {
      faults.restore();
    }
    await dir.close();
    for (let reopen = 0; reopen < 2; reopen++) {
      const again = await open(scratch.path).catch((error) => {
        throw new Error(`crash at step ${crashAt}, open ${reopen}: ${error}`, { cause: error });
      });
      try {
        await check(again, faults.crashed());
      } finally {
        await again.close();
      }
    }
    if (!faults.crashed()) return crashAt;
  }
}

/** Checks the log holds `expected`'s entries from its first index to its last. */
async function assertPrefixOf(dir: DataDir, expected: ReturnType<typeof makeEntries>) {
  const first = Math.max(dir.firstIndex(), (dir.recovered().snapshot?.index ?? 0) + 1);
  const held = await dir.entries(first, dir.lastIndex() + 1);
  assert.deepEqual(
    plain(held),
    plain(expected.filter((e) => e.index >= first).slice(0, held.length)),
  );
}

Deno.test("crash points: appends that start new segments never cause a false refusal", async () => {
  const entries = makeEntries(1, 14);
  const points = await everyCrashPoint(
    async (dir) => {
      await dir.append(entries.slice(0, 6));
      await dir.saveCommitFloor(6);
    },
    async (dir) => {
      await dir.append(entries.slice(6, 7));
      await dir.append(entries.slice(7, 14));
      await dir.saveCommitFloor(14);
    },
    async (dir, crashed) => {
      assert.ok(dir.lastIndex() >= 6);
      if (!crashed) assert.equal(dir.lastIndex(), 14);
      await assertPrefixOf(dir, entries);
    },
  );
  assert.ok(points >= 6, `${points} crash points`);
});

Deno.test("crash points: cutting a suffix across segments never causes a false refusal", async () => {
  const replaced = [...makeEntries(1, 5), ...makeEntries(6, 3, 2)];
  const points = await everyCrashPoint(
    async (dir) => {
      await dir.append(makeEntries(1, 20));
      await dir.saveCommitFloor(5);
    },
    (dir) => dir.append(makeEntries(6, 3, 2)),
    async (dir, crashed) => {
      assert.ok(dir.lastIndex() >= 5);
      const held = await dir.entries(1, dir.lastIndex() + 1);
      // Either the old log, a prefix of it, or the new one: never a mix with a hole.
      const old = plain(makeEntries(1, 20)).slice(0, held.length);
      const now = plain(replaced).slice(0, held.length);
      assert.ok(
        JSON.stringify(plain(held)) === JSON.stringify(old) ||
          JSON.stringify(plain(held)) === JSON.stringify(now),
      );
      if (!crashed) assert.deepEqual(plain(held), plain(replaced));
    },
  );
  assert.ok(points >= 4, `${points} crash points`);
});

Deno.test("crash points: installing a snapshot over a longer conflicting log never causes a false refusal", async () => {
  const points = await everyCrashPoint(
    async (dir) => {
      await dir.append(makeEntries(1, 20));
      await dir.saveCommitFloor(5);
    },
    async (dir) => {
      await dir.restoreSnapshot(makeSnapshot(10, 2));
      await dir.append(makeEntries(11, 6, 2));
    },
    async (dir, crashed) => {
      const snapshot = dir.recovered().snapshot;
      if (snapshot === null) {
        assert.ok(dir.lastIndex() >= 5);
        await assertPrefixOf(dir, makeEntries(1, 20));
      } else {
        assert.equal(snapshot.index, 10);
        await assertPrefixOf(dir, makeEntries(1, 20, 2));
      }
      if (!crashed) assert.equal(dir.lastIndex(), 16);
    },
  );
  assert.ok(points >= 6, `${points} crash points`);
});

Deno.test("crash points: compaction never causes a false refusal", async () => {
  const points = await everyCrashPoint(
    async (dir) => {
      await dir.append(makeEntries(1, 20));
      await dir.saveSnapshot(makeSnapshot(15, 1));
      await dir.saveCommitFloor(20);
    },
    (dir) => dir.compactTo(15),
    async (dir, crashed) => {
      assert.equal(dir.lastIndex(), 20);
      await assertPrefixOf(dir, makeEntries(1, 20));
      if (!crashed) assert.equal(dir.firstIndex(), 13);
    },
  );
  assert.ok(points >= 3, `${points} crash points`);
});
