import assert from "node:assert/strict";
import { type PendingRead, ReadOnlyQueue } from "../../lib/raft/read_only.ts";

const VOTERS = ["a", "b", "c", "d", "e"];

/** Majority of the five voters above. */
function majority(acks: Set<string>): boolean {
  return VOTERS.filter((v) => acks.has(v)).length >= 3;
}

function read(requestId: number, index = 10, from = ""): PendingRead {
  return { requestId, index, from };
}

function ids(reads: PendingRead[]): number[] {
  return reads.map((r) => r.requestId);
}

Deno.test("reads wait unsent until a round starts; size counts them all", () => {
  const q = new ReadOnlyQueue();
  assert.equal(q.hasUnsent(), false);
  assert.equal(q.latestRound(), 0);
  q.add(read(1));
  q.add(read(2));
  assert.equal(q.hasUnsent(), true);
  assert.equal(q.size(), 2);
  const seq = q.startRound("a");
  assert.equal(q.hasUnsent(), false);
  assert.equal(q.size(), 2, "started but unconfirmed reads still wait");
  assert.equal(q.latestRound(), seq);
});

Deno.test("many reads share one round and are released together by a quorum of acks", () => {
  const q = new ReadOnlyQueue();
  for (let i = 1; i <= 5; i++) q.add(read(i));
  const seq = q.startRound("a");
  assert.deepEqual(q.ack(seq, "b", majority), [], "leader + b is not a majority of 5");
  assert.deepEqual(ids(q.ack(seq, "c", majority)), [1, 2, 3, 4, 5]);
  assert.equal(q.size(), 0);
  assert.equal(q.latestRound(), 0);
});

Deno.test("the leader's own ack counts towards the round's quorum", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1));
  const seq = q.startRound("a");
  q.ack(seq, "b", majority);
  assert.deepEqual(ids(q.ack(seq, "c", majority)), [1]);
});

Deno.test("acks from the same node are counted once", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1));
  const seq = q.startRound("a");
  q.ack(seq, "b", majority);
  assert.deepEqual(q.ack(seq, "b", majority), []);
  assert.equal(q.size(), 1);
});

Deno.test("a quorum for a later round also confirms every earlier round, oldest first", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1, 10));
  const first = q.startRound("a");
  q.add(read(2, 11));
  q.add(read(3, 11));
  const second = q.startRound("a");
  assert.ok(second > first);
  q.ack(second, "b", majority);
  const released = q.ack(second, "c", majority);
  assert.deepEqual(ids(released), [1, 2, 3]);
  assert.deepEqual(released.map((r) => r.index), [10, 11, 11], "each keeps its own index");
  assert.equal(q.size(), 0);
});

Deno.test("a quorum for an earlier round does not release later rounds", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1));
  const first = q.startRound("a");
  q.add(read(2));
  const second = q.startRound("a");
  q.ack(first, "b", majority);
  assert.deepEqual(ids(q.ack(first, "c", majority)), [1]);
  assert.equal(q.size(), 1);
  assert.equal(q.latestRound(), second);
});

Deno.test("acks for a round already released or never started are ignored", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1));
  const seq = q.startRound("a");
  q.ack(seq, "b", majority);
  q.ack(seq, "c", majority);
  assert.deepEqual(q.ack(seq, "d", majority), []);
  assert.deepEqual(q.ack(seq + 100, "d", majority), []);
  assert.deepEqual(q.ack(0, "d", majority), []);
});

Deno.test("reads that arrive after a round started wait for the next round", () => {
  const q = new ReadOnlyQueue();
  q.add(read(1));
  const seq = q.startRound("a");
  q.add(read(2));
  q.ack(seq, "b", majority);
  assert.deepEqual(ids(q.ack(seq, "c", majority)), [1]);
  assert.equal(q.hasUnsent(), true);
  assert.equal(q.size(), 1);
});

Deno.test("forwarded reads keep who asked", () => {
  const q = new ReadOnlyQueue();
  q.add(read(7, 3, "b"));
  const seq = q.startRound("a");
  q.ack(seq, "b", majority);
  assert.deepEqual(q.ack(seq, "c", majority), [read(7, 3, "b")]);
});

Deno.test("round sequence numbers keep increasing", () => {
  const q = new ReadOnlyQueue();
  const seqs: number[] = [];
  for (let i = 0; i < 5; i++) {
    q.add(read(i));
    seqs.push(q.startRound("a"));
  }
  for (let i = 1; i < seqs.length; i++) assert.ok(seqs[i] > seqs[i - 1]);
  assert.ok(seqs[0] > 0, "0 means no read context");
});

Deno.test("releaseAll and drain empty the queue, sent rounds first then unsent reads", () => {
  for (const method of ["releaseAll", "drain"] as const) {
    const q = new ReadOnlyQueue();
    q.add(read(1));
    q.startRound("a");
    q.add(read(2));
    q.startRound("a");
    q.add(read(3));
    assert.deepEqual(ids(q[method]()), [1, 2, 3], method);
    assert.equal(q.size(), 0);
    assert.equal(q.hasUnsent(), false);
    assert.equal(q.latestRound(), 0);
    assert.deepEqual(q[method](), []);
  }
});
