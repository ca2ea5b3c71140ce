import assert from "node:assert/strict";
import { Decoder } from "@msgpack/msgpack";
import {
  EntryType,
  makeMessage,
  type Message,
  MessageType,
  type Snapshot,
} from "../../lib/raft/types.ts";
import {
  BodyKind,
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  encodeRaft,
  encodeRaftMessagePack,
  encodeRequest,
  encodeRequestMessagePack,
  encodeResponse,
  encodeResponseMessagePack,
  ERROR_CODES,
} from "../../lib/transport/codec.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

const SNAPSHOT: Snapshot = {
  index: 900,
  term: 7,
  conf: {
    voters: ["10.0.0.1:4000", "10.0.0.2:4000", "10.0.0.3:4000"],
    learners: ["10.0.0.4:4000"],
  },
  data: bytes(0xde, 0xad, 0xbe, 0xef),
};

// One message per type, each with the fields that type uses (see lib/raft/types.ts), plus a
// few extremes: the largest safe integer, empty entries, nil and non-nil snapshots.
function sampleMessages(): Message[] {
  const from = "10.0.0.1:4000";
  const to = "10.0.0.2:4000";
  return [
    makeMessage(MessageType.App, {
      from,
      to,
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      entries: [
        { term: 6, index: 42, type: EntryType.Normal, data: bytes(1, 2, 3) },
        { term: 7, index: 43, type: EntryType.Normal, data: new Uint8Array(0) },
        { term: 7, index: 44, type: EntryType.Config, data: bytes(0x92, 0x90, 0x90) },
      ],
    }),
    makeMessage(MessageType.App, { from, to, term: 7, logTerm: 7, index: 44, commit: 44 }),
    makeMessage(MessageType.AppResp, { from, to, term: 7, index: 44 }),
    makeMessage(MessageType.AppResp, {
      from,
      to,
      term: 7,
      index: 44,
      reject: true,
      rejectHint: 30,
      logTerm: 5,
    }),
    makeMessage(MessageType.Vote, { from, to, term: 8, logTerm: 7, index: 44 }),
    makeMessage(MessageType.VoteResp, { from, to, term: 8, reject: true }),
    makeMessage(MessageType.PreVote, { from, to, term: 9, logTerm: 7, index: 44 }),
    makeMessage(MessageType.PreVoteResp, { from, to, term: 9 }),
    makeMessage(MessageType.Heartbeat, { from, to, term: 7, commit: 44, context: 12 }),
    makeMessage(MessageType.HeartbeatResp, { from, to, term: 7, context: 12, electionTicks: 30 }),
    makeMessage(MessageType.Snap, { from, to, term: 7, index: 900, snapshot: SNAPSHOT }),
    makeMessage(MessageType.Snap, {
      from,
      to,
      term: 7,
      index: 1,
      snapshot: { index: 1, term: 1, conf: { voters: [], learners: [] }, data: new Uint8Array(0) },
    }),
    makeMessage(MessageType.TimeoutNow, { from, to, term: 7 }),
    makeMessage(MessageType.ReadIndex, { from, to, term: 7, context: 99 }),
    makeMessage(MessageType.ReadIndexResp, { from, to, term: 7, index: 44, context: 99 }),
    makeMessage(MessageType.App, {
      from,
      to,
      // The largest terms and indexes the protocol carries are just below 2^48.
      term: 2 ** 48 - 1,
      logTerm: 2 ** 32,
      index: 2 ** 32 - 1,
      commit: 2 ** 40,
      rejectHint: 2 ** 48 - 2,
      context: 2 ** 31,
      entries: [{ term: 2 ** 33, index: 2 ** 48 - 1, type: 0, data: bytes(0) }],
    }),
  ];
}

Deno.test("every Raft message type round-trips, in its own form and as MessagePack", () => {
  const messages = sampleMessages();
  const types = new Set(messages.map((m) => m.type));
  for (const value of Object.values(MessageType)) {
    if (typeof value === "number") assert.ok(types.has(value), `sample of type ${value}`);
  }
  for (const message of messages) {
    for (const encode of [encodeRaft, encodeRaftMessagePack]) {
      const decoded = decodeBody(encode("counter", message));
      assert.deepEqual(decoded, { kind: "raft", group: "counter", message });
    }
  }
});

Deno.test("a MessagePack Raft payload is the documented field array", () => {
  const message = sampleMessages()[0];
  const raw = new Decoder({ useBigInt64: true }).decode(encodeRaftMessagePack("counter", message));
  assert.deepEqual(raw, [
    BodyKind.Raft,
    "counter",
    0,
    [
      MessageType.App,
      "10.0.0.1:4000",
      "10.0.0.2:4000",
      7,
      6,
      41,
      [[6, 42, 0, bytes(1, 2, 3)], [7, 43, 0, new Uint8Array(0)], [
        7,
        44,
        1,
        bytes(0x92, 0x90, 0x90),
      ]],
      40,
      false,
      0,
      0,
      null,
      0,
    ],
  ]);
  const snap = sampleMessages()[10];
  const rawSnap = new Decoder().decode(encodeRaft("counter", snap)) as unknown[][];
  assert.deepEqual(rawSnap[3][11], [
    900,
    7,
    SNAPSHOT.conf.voters,
    SNAPSHOT.conf.learners,
    SNAPSHOT.data,
  ]);
});

Deno.test("decoded entry and snapshot data do not share the receive buffer", () => {
  for (const encode of [encodeRaft, encodeRaftMessagePack]) {
    const body = encode("counter", sampleMessages()[0]);
    const decoded = decodeBody(body);
    assert.equal(decoded.kind, "raft");
    if (decoded.kind !== "raft") return;
    body.fill(0);
    assert.deepEqual(decoded.message.entries[0].data, bytes(1, 2, 3));
    assert.deepEqual(decoded.message.entries[2].data, bytes(0x92, 0x90, 0x90));
  }
  const snapBody = encodeRaft("counter", sampleMessages()[10]);
  const snap = decodeBody(snapBody);
  snapBody.fill(0);
  assert.ok(snap.kind === "raft" && snap.message.snapshot !== null);
  assert.deepEqual(snap.message.snapshot.data, SNAPSHOT.data);
});

Deno.test("request round trips keep every field, with int64 deltas exact", () => {
  const requests: ClientRequest[] = [
    { op: "incr", delta: 1n, clientId: "client-1", seq: 1 },
    { op: "incr", delta: 3n, clientId: "client-1", seq: 10, ackedBelow: 7 },
    { op: "incr", delta: -1n },
    { op: "incr", delta: 2n ** 63n - 1n, clientId: "c", seq: Number.MAX_SAFE_INTEGER },
    { op: "incr", delta: -(2n ** 63n) },
    { op: "incr", delta: 2n ** 53n + 1n },
    { op: "incr", delta: -(2n ** 53n) - 3n },
    { op: "incr", delta: 2n ** 32n },
    { op: "incr", delta: -(2n ** 31n) - 1n },
    { op: "incr", delta: 0n },
    { op: "get" },
    { op: "get", consistency: "linearizable" },
    { op: "status" },
    { op: "add-node", args: { id: "10.0.0.4:4000", learner: true, nested: { list: [1, "x"] } } },
    { op: "no-such-op" },
  ];
  for (const [i, request] of requests.entries()) {
    const requestId = i + 1;
    for (const encode of [encodeRequest, encodeRequestMessagePack]) {
      assert.deepEqual(decodeBody(encode("counter", requestId, request)), {
        kind: "request",
        group: "counter",
        requestId,
        request,
      });
    }
  }
});

Deno.test("response round trips keep every field, with int64 values exact", () => {
  const responses: ClientResponse[] = [
    { ok: true, value: 42n },
    { ok: true, value: 2n ** 63n - 1n },
    { ok: true, value: -(2n ** 63n) },
    { ok: true, value: 9_007_199_254_740_993n },
    { ok: true, value: -5n },
    { ok: true, data: { role: "leader", term: 7, peers: ["a:1", "b:2"], big: 2n ** 60n } },
    { ok: false, code: "NOT_LEADER", error: "Not the leader", leader: "10.0.0.2:4000" },
    { ok: false, code: "OVERFLOW", error: "Counter would overflow", value: 2n ** 63n - 1n },
    ...ERROR_CODES.map((code): ClientResponse => ({ ok: false, code })),
  ];
  for (const [i, response] of responses.entries()) {
    for (const encode of [encodeResponse, encodeResponseMessagePack]) {
      assert.deepEqual(decodeBody(encode("counter", i + 1, response)), {
        kind: "response",
        group: "counter",
        requestId: i + 1,
        response,
      });
    }
  }
});

Deno.test("small int64 values use compact MessagePack encodings and still decode as bigint", () => {
  // [3, "counter", 1, {ok: true, value: 5}] with 5 as a fixint, not a 9-byte int64.
  const body = encodeResponseMessagePack("counter", 1, { ok: true, value: 5n });
  const text = (t: string) => [0xa0 + t.length, ...new TextEncoder().encode(t)];
  assert.deepEqual(
    body,
    bytes(0x94, 3, ...text("counter"), 1, 0x82, ...text("ok"), 0xc3, ...text("value"), 0x05),
  );
  const decoded = decodeBody(body);
  assert.ok(decoded.kind === "response");
  assert.equal(decoded.response.value, 5n);
});

Deno.test("large numbers in terms and indexes go out as integers, never floats", () => {
  const message = makeMessage(MessageType.Heartbeat, {
    from: "a:1",
    to: "b:1",
    term: 2 ** 40,
    commit: 2 ** 32,
  });
  const body = encodeRaftMessagePack("g", message);
  assert.ok(!body.includes(0xcb), "no float64 marker");
  assert.deepEqual(decodeBody(body), { kind: "raft", group: "g", message });
});

Deno.test("both encoders refuse values the protocol cannot carry", () => {
  const encoders = [
    [encodeRaft, encodeRequest, encodeResponse],
    [encodeRaftMessagePack, encodeRequestMessagePack, encodeResponseMessagePack],
  ] as const;
  for (const [raft, request, response] of encoders) {
    const ok = makeMessage(MessageType.App, { from: "a:1", to: "b:1", term: 1 });
    assert.throws(() => raft("", ok), TypeError);
    assert.throws(() => raft("g", { ...ok, type: 99 as MessageType }), TypeError);
    assert.throws(() => raft("g", { ...ok, term: -1 }), RangeError);
    assert.throws(() => raft("g", { ...ok, index: 1.5 }), RangeError);
    assert.throws(() => raft("g", { ...ok, commit: 2 ** 53 }), RangeError);
    assert.throws(() => raft("g", { ...ok, from: "" }), TypeError);
    assert.throws(
      () => raft("g", { ...ok, entries: [{ term: 1, index: 0, type: 0, data: bytes() }] }),
      RangeError,
    );
    assert.throws(
      () =>
        raft("g", {
          ...ok,
          entries: [{ term: 1, index: 1, type: 5 as EntryType, data: bytes() }],
        }),
      TypeError,
    );
    assert.throws(() => request("g", 0, { op: "get" }), RangeError);
    assert.throws(() => request("g", 1, { op: "" }), TypeError);
    assert.throws(() => request("g", 1, { op: "incr", delta: 2n ** 63n }), RangeError);
    assert.throws(() => request("g", 1, { op: "incr", delta: 1 as unknown as bigint }));
    assert.throws(
      () => request("g", 1, { op: "get", extra: 1 } as unknown as ClientRequest),
      TypeError,
    );
    assert.throws(
      () => request("g", 1, { op: "x", args: { when: new Date() as never } }),
      TypeError,
    );
    assert.throws(() => response("g", 1, { ok: false }), TypeError);
    assert.throws(() => response("g", 1, { ok: true, code: "TIMEOUT" }), TypeError);
    assert.throws(
      () => response("g", 1, { ok: false, code: "NOPE" as unknown as "TIMEOUT" }),
      TypeError,
    );
    assert.throws(() => response("g", 1, { ok: true, value: -(2n ** 63n) - 1n }), RangeError);
  }
});
