import assert from "node:assert/strict";
import { encodeConfState, EntryType } from "../../lib/raft/mod.ts";
import {
  BATCH_ITEMS_MAX,
  encodeIncrement,
  IncrementBatch,
  OP_INCREMENT_BATCH,
} from "../../lib/counter/command.ts";
import { CounterStateMachine } from "../../lib/counter/state_machine.ts";
import {
  CLIENT_ID_BYTES_MAX,
  confProblem,
  entryProblem,
  snapshotProblem,
} from "../../lib/counter/entry_check.ts";

const normal = (data: Uint8Array) => ({ term: 1, index: 2, type: EntryType.Normal, data });
const config = (data: Uint8Array) => ({ term: 1, index: 2, type: EntryType.Config, data });
const increment = (clientId = "c", seq = 1) =>
  encodeIncrement({ delta: 5n, proposedAtMs: 1, clientId, seq, ackedBelow: 0 });

Deno.test("well-formed entries pass: no-op, increments, configurations", () => {
  assert.equal(entryProblem(normal(new Uint8Array(0))), null);
  assert.equal(entryProblem(normal(increment())), null);
  assert.equal(entryProblem(normal(increment("x".repeat(256)))), null);
  const conf = encodeConfState({ voters: ["127.0.0.1:1", "127.0.0.1:2"], learners: ["h:3"] });
  assert.equal(entryProblem(config(conf)), null);
});

Deno.test("a poison entry and other malformed Normal entries are refused", () => {
  assert.match(entryProblem(normal(new Uint8Array([0xff])))!, /not an increment/);
  assert.match(entryProblem(normal(increment().subarray(0, 20)))!, /not an increment/);
  const badUtf8 = new Uint8Array([...increment(""), 0xc3, 0x28]);
  assert.notEqual(entryProblem(normal(badUtf8)), null);
  const longId = increment("é".repeat(CLIENT_ID_BYTES_MAX));
  assert.match(entryProblem(normal(longId))!, /client id longer/);
  const bigSeq = increment();
  new DataView(bigSeq.buffer).setBigUint64(17, 2n ** 60n);
  assert.match(entryProblem(normal(bigSeq))!, /beyond 2\^53/);
});

const batch = (...clientIds: string[]) => {
  const b = new IncrementBatch();
  clientIds.forEach((clientId, i) => b.add({ delta: 1n, clientId, seq: i + 1, ackedBelow: 0 }));
  return b.encode(1);
};

Deno.test("well-formed batches pass", () => {
  assert.equal(entryProblem(normal(batch("a", "b", "", "x".repeat(256)))), null);
  const full = new IncrementBatch();
  for (let i = 0; i < BATCH_ITEMS_MAX; i++) {
    full.add({ delta: 1n, clientId: "c", seq: i + 1, ackedBelow: 0 });
  }
  assert.equal(entryProblem(normal(full.encode(1))), null);
});

Deno.test("malformed batches are refused with the reason", () => {
  const good = batch("a", "b");
  assert.equal(good[0], OP_INCREMENT_BATCH);
  const withCount = (n: number) => {
    const d = good.slice();
    new DataView(d.buffer).setUint16(9, n);
    return d;
  };
  assert.match(entryProblem(normal(good.subarray(0, good.length - 1)))!, /truncated/);
  assert.match(entryProblem(normal(Uint8Array.of(...good, 7)))!, /after its last item/);
  assert.match(entryProblem(normal(withCount(0)))!, /0 items/);
  assert.match(entryProblem(normal(withCount(0xffff)))!, /65535 items/);
  const bigSeq = good.slice();
  new DataView(bigSeq.buffer).setBigUint64(11 + 8, 2n ** 60n);
  assert.match(entryProblem(normal(bigSeq))!, /beyond 2\^53/);
  const longId = good.slice();
  new DataView(longId.buffer).setUint16(11 + 24, 2000);
  assert.match(entryProblem(normal(longId))!, /client id of 2000 bytes/);
  const badUtf8 = good.slice();
  badUtf8[11 + 26] = 0xff;
  assert.match(entryProblem(normal(badUtf8))!, /not UTF-8/);
});

Deno.test("malformed Config entries are refused", () => {
  const utf8 = new TextEncoder();
  for (
    const text of [
      "",
      "{",
      "null",
      '{"voters":[],"learners":[]}',
      '{"voters":["a:1","a:1"],"learners":[]}',
      '{"voters":["a:1"],"learners":["a:1"]}',
      '{"voters":["no-port"],"learners":[]}',
      '{"voters":[1],"learners":[]}',
    ]
  ) {
    assert.notEqual(entryProblem(config(utf8.encode(text))), null, text);
  }
  assert.equal(
    entryProblem({ term: 1, index: 1, type: 7 as EntryType, data: new Uint8Array() })
      ?.startsWith("unknown entry type"),
    true,
  );
});

Deno.test("snapshots must restore and carry a usable configuration", () => {
  const sm = new CounterStateMachine();
  sm.applyEntry(increment());
  const conf = { voters: ["127.0.0.1:1"], learners: [] };
  assert.equal(snapshotProblem(sm.snapshot(), conf), null);
  assert.match(snapshotProblem(new Uint8Array([0xff]), conf)!, /snapshot data/);
  assert.match(snapshotProblem(sm.snapshot(), { voters: [], learners: [] })!, /without voters/);
  assert.equal(confProblem({ voters: ["[::1]:4000"], learners: [] }), null);
});
