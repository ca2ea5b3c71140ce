/**
 * Tests of `prepareRecovery` (lib/counter/recover.ts): forcing a stopped node's data dir into a
 * new one-node cluster, durably, and refusing what cannot be recovered.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { prepareRecovery, RecoverError } from "../../lib/counter/recover.ts";
import { bootstrapState, decodeConfState, EntryType } from "../../lib/raft/mod.ts";
import { DataDir, isId64 } from "../../lib/storage/mod.ts";
import { tempDir } from "../storage/_helpers.ts";

const ID = "127.0.0.1:8081";
const OTHERS = ["127.0.0.1:8082", "127.0.0.1:8083"];
const GROUP = "g1";

/** A stopped node's data dir: the bootstrap entry, `count` more entries in term 3, term 4. */
async function stoppedNode(path: string, count = 5): Promise<void> {
  const dir = await DataDir.open(path, { nodeId: ID, group: GROUP });
  try {
    const boot = bootstrapState({ voters: [ID, ...OTHERS], learners: [] });
    const more = Array.from({ length: count }, (_, i) => ({
      index: i + 2,
      term: 3,
      type: EntryType.Normal,
      data: new Uint8Array([i]),
    }));
    await dir.append([...boot.entries, ...more]);
    await dir.saveHardState({ term: 4, vote: OTHERS[0] });
    await dir.saveClusterId("0123456789abcdef");
    await dir.savePeerIncarnation(OTHERS[0], "00000000000000b2");
    await dir.savePeerIncarnation(OTHERS[1], "00000000000000c3");
  } finally {
    await dir.close();
  }
}

Deno.test("recover appends a one-voter config in a new term and a new cluster id, durably", async () => {
  await using scratch = await tempDir("recover_test_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const recovery = await prepareRecovery(path);
  const { plan } = recovery;
  try {
    assert.equal(plan.nodeId, ID);
    assert.equal(plan.group, GROUP);
    assert.equal(plan.lastIndex, 6);
    assert.equal(plan.lastTerm, 3);
    assert.equal(plan.entryIndex, 7);
    assert.equal(plan.term, 5);
    assert.deepEqual(plan.conf.voters, [ID, ...OTHERS].sort());
    assert.equal(plan.clusterId, "0123456789abcdef");
    assert.ok(isId64(plan.newClusterId));
    assert.notEqual(plan.newClusterId, plan.clusterId);
    await recovery.apply();
  } finally {
    await recovery.close();
  }
  // What the next `serve` reads back.
  const dir = await DataDir.open(path, { nodeId: ID, group: GROUP });
  try {
    const { hardState, entries } = dir.recovered();
    assert.deepEqual(hardState, { term: 5, vote: "" });
    assert.equal(entries.length, 7);
    const last = entries[6];
    assert.deepEqual([last.index, last.term, last.type], [7, 5, EntryType.Config]);
    assert.deepEqual(decodeConfState(last.data), { voters: [ID], learners: [] });
    assert.equal(dir.clusterId(), plan.newClusterId);
    // The old members come back wiped: their old incarnations must not refuse them.
    assert.equal(dir.peerIncarnation(OTHERS[0]), undefined);
    assert.equal(dir.peerIncarnation(OTHERS[1]), undefined);
  } finally {
    await dir.close();
  }
});

Deno.test("recover run twice moves on again: a term above the first, another cluster id", async () => {
  await using scratch = await tempDir("recover_test_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const first = await prepareRecovery(path);
  await first.apply();
  await first.close();
  const second = await prepareRecovery(path);
  try {
    assert.equal(second.plan.lastIndex, 7);
    assert.equal(second.plan.term, 6);
    assert.deepEqual(second.plan.conf.voters, [ID]);
    assert.notEqual(second.plan.newClusterId, first.plan.newClusterId);
  } finally {
    await second.close();
  }
});

Deno.test("recover refuses a data dir a running node holds, naming its PID, and changes nothing", async () => {
  await using scratch = await tempDir("recover_test_");
  const path = join(scratch.path, "n1");
  await stoppedNode(path);
  const running = await DataDir.open(path, { nodeId: ID, group: GROUP });
  try {
    await assert.rejects(
      prepareRecovery(path),
      (error: Error) => {
        assert.ok(error instanceof RecoverError);
        assert.match(
          error.message,
          new RegExp(`is in use by a running process \\(PID ${Deno.pid}\\): stop node ${ID} first`),
        );
        return true;
      },
    );
  } finally {
    await running.close();
  }
  const dir = await DataDir.open(path, { nodeId: ID, group: GROUP });
  assert.equal(dir.lastIndex(), 6);
  assert.equal(dir.clusterId(), "0123456789abcdef");
  await dir.close();
});

Deno.test("recover refuses a missing dir, a dir that is not a data dir, and an empty data dir", async () => {
  await using scratch = await tempDir("recover_test_");
  const missing = join(scratch.path, "missing");
  await assert.rejects(prepareRecovery(missing), RecoverError, "does not exist");
  // Nothing was created on the way.
  await assert.rejects(Deno.stat(missing), Deno.errors.NotFound);
  const other = join(scratch.path, "other");
  await Deno.mkdir(other);
  await assert.rejects(prepareRecovery(other), RecoverError, "is not a counter data dir");
  const empty = join(scratch.path, "empty");
  await (await DataDir.open(empty, { nodeId: ID, group: GROUP })).close();
  await assert.rejects(prepareRecovery(empty), RecoverError, "nothing to recover");
});
