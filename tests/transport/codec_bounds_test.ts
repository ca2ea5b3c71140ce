/**
 * Field bounds and decoded-size bounds of the codec (issue 10, points 4 to 6): terms and indexes
 * beyond what a node can store, App messages with more entries than a leader ever sends, bodies
 * that would decode into far more objects than their bytes, and 64-bit request ids.
 */

import assert from "node:assert/strict";
import { Encoder } from "@msgpack/msgpack";
import { makeMessage, MessageType } from "../../lib/raft/types.ts";
import {
  decodeBody,
  encodeRaft,
  encodeRequestMessagePack,
  encodeResponseMessagePack,
  encodeSnapshotAck,
  encodeSnapshotChunk,
  ENTRIES_PER_MESSAGE_MAX,
  ProtocolError,
  RAFT_NUMBER_LIMIT,
} from "../../lib/transport/codec.ts";

const raw = new Encoder({ useBigInt64: true });

function raftFields(overrides: Record<number, unknown>): unknown[] {
  const fields: unknown[] = [
    MessageType.Heartbeat,
    "127.0.0.1:1",
    "127.0.0.1:2",
    3,
    0,
    0,
    [],
    0,
    false,
    0,
    0,
    null,
    0, // electionTicks: 0 in every type but HeartbeatResp
  ];
  for (const [at, value] of Object.entries(overrides)) fields[Number(at)] = value;
  return fields;
}

function rejected(body: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeBody(body), (err) => err instanceof ProtocolError, String(pattern));
  try {
    decodeBody(body);
  } catch (err) {
    assert.match((err as Error).message, pattern);
  }
}

Deno.test("a heartbeat with term 2^53-1 is a malformed frame, not a value to persist", () => {
  // The attack of issue 10: a safe integer, so it passed the old check, and the node crashed at
  // its next meta save (term + 1 is not safe) on every restart.
  const body = raw.encode([1, "counter", 0, raftFields({ 3: 2 ** 53 - 1 })]);
  rejected(body, /term is not a non-negative integer below 2\^48/);
});

Deno.test("every Raft term and index field is bounded below 2^48", () => {
  const limit = RAFT_NUMBER_LIMIT;
  // term, logTerm, index, commit, rejectHint, context.
  for (const field of [3, 4, 5, 7, 9, 10]) {
    rejected(raw.encode([1, "g", 0, raftFields({ [field]: limit })]), /below 2\^48/);
    const ok = decodeBody(raw.encode([1, "g", 0, raftFields({ [field]: limit - 1 })]));
    assert.equal(ok.kind, "raft");
  }
  // Entry term and index.
  const entry = (term: number, index: number) => [[term, index, 0, new Uint8Array(0)]];
  rejected(raw.encode([1, "g", 0, raftFields({ 0: 3, 6: entry(limit, 1) })]), /entry term/);
  rejected(raw.encode([1, "g", 0, raftFields({ 0: 3, 6: entry(1, limit) })]), /entry index/);
  // Snapshot index and term.
  const snap = (index: number, term: number) => [index, term, ["a:1"], [], new Uint8Array(0)];
  rejected(raw.encode([1, "g", 0, raftFields({ 0: 7, 11: snap(limit, 1) })]), /snapshot index/);
  rejected(raw.encode([1, "g", 0, raftFields({ 0: 7, 11: snap(1, limit) })]), /snapshot term/);
});

Deno.test("snapshot chunks and acks bound their terms and indexes too", () => {
  const chunk = (term: number, index: number, snapTerm: number) =>
    raw.encode([4, "g", 0, [
      "a:1",
      "b:1",
      term,
      index,
      snapTerm,
      ["a:1"],
      [],
      0,
      1,
      0,
      new Uint8Array(1),
    ]]);
  assert.equal(decodeBody(chunk(1, 2, 1)).kind, "snapshot_chunk");
  rejected(chunk(2 ** 53 - 1, 2, 1), /term/);
  rejected(chunk(1, RAFT_NUMBER_LIMIT, 1), /index/);
  rejected(chunk(1, 2, RAFT_NUMBER_LIMIT), /snapTerm/);
  rejected(raw.encode([5, "g", 0, ["a:1", "b:1", RAFT_NUMBER_LIMIT, 0, true]]), /index/);
});

Deno.test("the encoder refuses the same out-of-range terms and indexes", () => {
  const hb = makeMessage(MessageType.Heartbeat, { from: "a:1", to: "b:1", term: 1 });
  assert.throws(() => encodeRaft("g", { ...hb, term: RAFT_NUMBER_LIMIT }), RangeError);
  assert.throws(() => encodeRaft("g", { ...hb, commit: 2 ** 53 - 1 }), RangeError);
  assert.throws(
    () =>
      encodeRaft("g", {
        ...hb,
        type: MessageType.App,
        entries: [{ term: 1, index: RAFT_NUMBER_LIMIT, type: 0, data: new Uint8Array(0) }],
      }),
    RangeError,
  );
  const chunk = {
    from: "a:1",
    to: "b:1",
    term: RAFT_NUMBER_LIMIT,
    index: 1,
    snapTerm: 1,
    conf: { voters: ["a:1"], learners: [] },
    offset: 0,
    totalBytes: 1,
    checksum: 0,
    data: new Uint8Array(1),
  };
  assert.throws(() => encodeSnapshotChunk("g", chunk), RangeError);
  assert.throws(
    () => encodeSnapshotAck("g", { from: "a", to: "b", index: 2 ** 53 - 1, offset: 0, ok: true }),
    RangeError,
  );
});

/** A raw App body of `count` empty entries, built by hand (the encoder refuses too many). */
function appOfEmptyEntries(count: number): Uint8Array {
  // The body is written piece by piece around the entries array (the 7th of the 13 payload
  // fields) so its header can announce `count`. Each empty entry is 94 01 01 00 c4 00 (term 1, index 1,
  // Normal, empty bin).
  const entry = [0x94, 0x01, 0x01, 0x00, 0xc4, 0x00];
  const before = raw.encode([
    MessageType.App,
    "127.0.0.1:1",
    "127.0.0.1:2",
    3,
    0,
    0,
  ]).subarray(1); // the fields without their array header
  const after = raw.encode([0, false, 0, 0, null, 0]).subarray(1);
  const envelope = raw.encode([1, "g", 0]).subarray(1);
  // 0x9d: a fixarray of 13 elements.
  const parts: number[] = [0x94, ...envelope, 0x9d, ...before];
  parts.push(0xdd, count >>> 24, (count >>> 16) & 0xff, (count >>> 8) & 0xff, count & 0xff);
  const out = new Uint8Array(parts.length + count * entry.length + after.length);
  out.set(parts);
  let at = parts.length;
  for (let i = 0; i < count; i++, at += entry.length) out.set(entry, at);
  out.set(after, at);
  return out;
}

Deno.test("an App with 699k empty entries in 4 MiB is refused before anything is built", () => {
  const body = appOfEmptyEntries(699_000);
  assert.ok(body.length <= 4 * 1024 * 1024, `body of ${body.length} bytes fits a frame`);
  rejected(body, /Array of 699000 elements exceeds the limit of 65536/);
});

Deno.test("an App with the most entries allowed still decodes", () => {
  const body = appOfEmptyEntries(ENTRIES_PER_MESSAGE_MAX);
  const decoded = decodeBody(body);
  assert.equal(decoded.kind, "raft");
  if (decoded.kind === "raft") assert.equal(decoded.message.entries.length, 65_536);
  rejected(appOfEmptyEntries(ENTRIES_PER_MESSAGE_MAX + 1), /exceeds the limit of 65536/);
});

Deno.test("nested arrays cannot multiply decoded values past the per-body bound", () => {
  // 64 arrays of 60,000 zeros: every array is under the length limit and the body is under
  // 4 MiB, but it would decode into 3.8 million array slots.
  const inner = new Array(60_000).fill(0);
  const args = { a: new Array(64).fill(inner) };
  const body = raw.encode([2, "g", 1, { op: "status", args }]);
  assert.ok(body.length < 4 * 1024 * 1024);
  rejected(body, /More than \d+ MessagePack values in one body/);
});

Deno.test("MessagePack request ids of 2^32 and more travel as uint 64, never as float 64", () => {
  for (const requestId of [2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
    const request = encodeRequestMessagePack("g", requestId, { op: "get" });
    const response = encodeResponseMessagePack("g", requestId, { ok: true, value: 1n });
    for (const body of [request, response]) {
      // Byte 0 is the array header, byte 1 the kind, bytes 2..3 the group "g", byte 4 starts
      // the request id.
      assert.notEqual(body[4], 0xcb, `request id ${requestId} written as a float`);
      if (requestId >= 2 ** 32) assert.equal(body[4], 0xcf, "uint 64 marker");
      const decoded = decodeBody(body);
      assert.ok(decoded.kind === "request" || decoded.kind === "response");
      assert.equal(decoded.requestId, requestId);
    }
  }
});
