import assert from "node:assert/strict";
import { Encoder } from "@msgpack/msgpack";
import { makeMessage, MessageType } from "../../lib/raft/types.ts";
import {
  decodeBody,
  encodeHello,
  encodePeerHeartbeat,
  encodeRaft,
  encodeRequest,
  encodeResponse,
  ProtocolError,
} from "../../lib/transport/codec.ts";

const raw = new Encoder({ useBigInt64: true });
const bytes = (...values: number[]) => new Uint8Array(values);

/** A small deterministic PRNG (mulberry32) so any failure replays from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Decodes `body`; returns "ok" or the ProtocolError, and fails on any other throw. */
function outcome(body: Uint8Array, label: string): "ok" | ProtocolError {
  try {
    decodeBody(body);
    return "ok";
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    assert.fail(`${label}: expected ProtocolError, got ${err}`);
  }
}

function assertRejected(body: Uint8Array, label: string, pattern?: RegExp): void {
  const result = outcome(body, label);
  assert.ok(result instanceof ProtocolError, `${label}: should be rejected`);
  if (pattern !== undefined) assert.match(result.message, pattern, label);
}

const RAFT_FIELDS: unknown[] = [
  MessageType.App, // type
  "a:1", // from
  "b:1", // to
  3, // term
  2, // logTerm
  10, // index
  [[3, 11, 0, bytes(1)]], // entries
  9, // commit
  false, // reject
  0, // rejectHint
  0, // context
  null, // snapshot
  0, // electionTicks
];

function raftBody(payload: unknown, overrides: { kind?: unknown; requestId?: unknown } = {}) {
  return raw.encode([overrides.kind ?? 1, "counter", overrides.requestId ?? 0, payload]);
}

function validBodies(): Uint8Array[] {
  return [
    encodeRaft(
      "counter",
      makeMessage(MessageType.App, {
        from: "10.0.0.1:4000",
        to: "10.0.0.2:4000",
        term: 5,
        index: 2 ** 40,
        entries: [
          { term: 5, index: 7, type: 0, data: bytes(1, 2, 3) },
          { term: 5, index: 8, type: 1, data: bytes(4) },
        ],
      }),
    ),
    encodeRaft(
      "counter",
      makeMessage(MessageType.Snap, {
        from: "a:1",
        to: "b:1",
        term: 2,
        snapshot: { index: 5, term: 2, conf: { voters: ["a:1"], learners: [] }, data: bytes(9) },
      }),
    ),
    encodeRequest("counter", 7, { op: "incr", delta: -(2n ** 60n), clientId: "c1", seq: 3 }),
    encodeRequest("counter", 8, { op: "admin", args: { x: [1, { y: "z" }] } }),
    encodeResponse("counter", 7, { ok: false, code: "NOT_LEADER", leader: "b:1", error: "No" }),
    encodeResponse("counter", 9, { ok: true, value: 2n ** 62n, data: { a: 1 } }),
    encodeHello("counter", { from: "a:1", incarnation: "0123456789abcdef", clusterId: "" }),
  ];
}

Deno.test("the well-formed raw Raft body used below is accepted", () => {
  assert.equal(outcome(raftBody(RAFT_FIELDS), "baseline"), "ok");
});

Deno.test("random bytes are rejected with ProtocolError and nothing else", () => {
  const random = prng(20240601);
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    const body = new Uint8Array(Math.floor(random() * 64));
    for (let j = 0; j < body.length; j++) body[j] = Math.floor(random() * 256);
    // Half the samples start like a body, so the walk gets past the first byte.
    if (i % 2 === 0 && body.length > 1) body[0] = 0x94;
    if (outcome(body, `sample ${i}`) === "ok") accepted++;
  }
  assert.equal(accepted, 0);
});

Deno.test("mutated valid bodies decode or give ProtocolError, never anything else", () => {
  const random = prng(7);
  for (const [b, valid] of validBodies().entries()) {
    for (let i = 0; i < 3000; i++) {
      const body = valid.slice();
      const flips = 1 + Math.floor(random() * 3);
      for (let f = 0; f < flips; f++) {
        body[Math.floor(random() * body.length)] = Math.floor(random() * 256);
      }
      outcome(body, `body ${b} mutation ${i}`);
    }
  }
});

Deno.test("every truncation of a valid body is rejected", () => {
  for (const [b, valid] of validBodies().entries()) {
    assert.equal(outcome(valid, `body ${b}`), "ok");
    for (let length = 0; length < valid.length; length++) {
      assertRejected(valid.subarray(0, length), `body ${b} cut to ${length}`);
    }
  }
});

Deno.test("trailing bytes after a valid body are rejected", () => {
  for (const [b, valid] of validBodies().entries()) {
    const body = new Uint8Array(valid.length + 1);
    body.set(valid);
    assertRejected(body, `body ${b}`, /trailing/);
    assertRejected(new Uint8Array([...valid, ...valid]), `body ${b} twice`, /trailing/);
  }
});

Deno.test("the body must be an array of exactly four with a known kind and a group", () => {
  assertRejected(raw.encode({ kind: 1 }), "map body", /array of 4/);
  assertRejected(raw.encode([1, "counter", 0]), "three elements", /array of 4/);
  assertRejected(raw.encode([1, "counter", 0, RAFT_FIELDS, 0]), "five elements", /array of 4/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: 0 }), "kind 0", /Unknown body kind 0/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: 8 }), "raft payload as a heartbeat", /heartbeat/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: 9 }), "kind 9", /Unknown body kind 9/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: 6 }), "raft payload as a hello", /Hello/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: 4 }), "raft payload as a chunk", /Snapshot chunk/);
  assertRejected(raftBody(RAFT_FIELDS, { kind: "raft" }), "string kind", /Unknown body kind/);
  assertRejected(raw.encode([1, "", 0, RAFT_FIELDS]), "empty group", /group/);
  assertRejected(raw.encode([1, 7, 0, RAFT_FIELDS]), "numeric group", /group/);
  assertRejected(raftBody(RAFT_FIELDS, { requestId: 5 }), "raft with an id", /request id/);
  assertRejected(raw.encode([2, "counter", 0, { op: "get" }]), "request id 0", /request id/);
  assertRejected(raw.encode([2, "counter", -1, { op: "get" }]), "negative id", /request id/);
  assertRejected(raw.encode([2, "counter", 1.5, { op: "get" }]), "fractional id", /request id/);
  assertRejected(raw.encode([3, "counter", 0, { ok: true }]), "response id 0", /request id/);
});

Deno.test("a Raft payload must have exactly thirteen fields of the right types", () => {
  assertRejected(raftBody(RAFT_FIELDS.slice(0, 12)), "twelve fields", /13 fields/);
  assertRejected(raftBody([...RAFT_FIELDS, 0]), "fourteen fields", /13 fields/);
  assertRejected(raftBody({ type: 1 }), "map payload", /13 fields/);
  // A wrong value for each field in turn.
  const wrong: unknown[][] = [
    [0, 13, 99, -1, "App", null],
    ["", 5, null, bytes(1)],
    ["", 5, null, ["b:1"]],
    [-1, 1.5, "3", null, 2n ** 53n, true],
    [-1, 0.5, "2", null],
    [-2, 10.25, [], 2n ** 60n],
    [null, {}, [[3, 11, 0]], [[3, 11, 0, bytes(1), 0]], [[3, 0, 0, bytes(1)]], [[
      3,
      11,
      2,
      bytes(1),
    ]]],
    [-9, 9.9, false],
    [0, 1, "false", null],
    [-1, "0"],
    [-1, 1.1, null],
    [false, [], [5, 2, ["a:1"], [], bytes(1), 0], [5, 2, ["a:1"], [], "data"], [
      5,
      2,
      [1],
      [],
      bytes(),
    ]],
    // electionTicks: only a HeartbeatResp carries one (tested below).
    [-1, 1, 1.5, "0", null],
  ];
  for (let field = 0; field < 13; field++) {
    for (const value of wrong[field]) {
      const payload = RAFT_FIELDS.slice();
      payload[field] = value;
      assertRejected(raftBody(payload), `field ${field} = ${String(value)}`);
    }
  }
});

Deno.test("electionTicks: required (1..1,000,000) in a HeartbeatResp, 0 in every other kind", () => {
  const heartbeatResp = (ticks: unknown) => {
    const payload = RAFT_FIELDS.slice();
    payload[0] = MessageType.HeartbeatResp;
    payload[6] = [];
    payload[12] = ticks;
    return raftBody(payload);
  };
  assert.equal(outcome(heartbeatResp(1), "1 tick"), "ok");
  assert.equal(outcome(heartbeatResp(1_000_000), "1,000,000 ticks"), "ok");
  assertRejected(heartbeatResp(0), "no promise", /electionTicks 0 is outside/);
  assertRejected(heartbeatResp(1_000_001), "too long", /electionTicks 1000001 is outside/);
  assertRejected(heartbeatResp(2 ** 40), "absurd", /electionTicks/);
  const app = RAFT_FIELDS.slice();
  app[12] = 5;
  assertRejected(raftBody(app), "App with electionTicks", /other than HeartbeatResp/);
});

Deno.test("unknown Raft message types are rejected by number", () => {
  for (const type of [0, 13, 14, 100, 255, 65535]) {
    const payload = RAFT_FIELDS.slice();
    payload[0] = type;
    assertRejected(raftBody(payload), `type ${type}`, new RegExp(`type ${type}`));
  }
});

Deno.test("requests with unknown fields or wrongly typed known fields are rejected", () => {
  const request = (payload: unknown) => raw.encode([2, "counter", 1, payload]);
  assertRejected(request(["get"]), "array payload", /not a map/);
  assertRejected(request({}), "no op", /op/);
  assertRejected(request({ op: "" }), "empty op", /op/);
  assertRejected(request({ op: 1 }), "numeric op", /op/);
  assertRejected(request({ op: "get", extra: 1 }), "extra field", /unknown field "extra"/);
  assertRejected(request({ op: "incr", delta: "1" }), "string delta", /delta/);
  assertRejected(request({ op: "incr", delta: 1.5 }), "fractional delta", /delta/);
  assertRejected(request({ op: "incr", delta: null }), "nil delta", /delta/);
  assertRejected(request({ op: "incr", delta: 2n ** 63n }), "delta above int64", /delta/);
  assertRejected(request({ op: "incr", clientId: 5 }), "numeric client id", /clientId/);
  assertRejected(request({ op: "incr", seq: -1 }), "negative seq", /seq/);
  assertRejected(request({ op: "incr", seq: 2n ** 60n }), "seq beyond 2^53", /seq/);
  assertRejected(request({ op: "incr", ackedBelow: "7" }), "string ackedBelow", /ackedBelow/);
  assertRejected(request({ op: "get", consistency: true }), "boolean consistency", /consist/);
  assertRejected(request({ op: "x", args: [1] }), "array args", /args/);
  assertRejected(request({ op: "x", args: bytes(1) }), "binary args", /args/);
  // Unknown ops are data, not errors: the service answers them.
  assert.equal(outcome(request({ op: "frobnicate", args: { a: 1 } }), "unknown op"), "ok");
});

Deno.test("responses with unknown fields or wrongly typed known fields are rejected", () => {
  const response = (payload: unknown) => raw.encode([3, "counter", 1, payload]);
  assertRejected(response({}), "no ok", /ok/);
  assertRejected(response({ ok: 1 }), "numeric ok", /ok/);
  assertRejected(response({ ok: true, extra: 1 }), "extra field", /unknown field/);
  assertRejected(response({ ok: true, value: "1" }), "string value", /value/);
  assertRejected(response({ ok: true, value: 2n ** 64n - 1n }), "uint64 value", /value/);
  assertRejected(response({ ok: false, code: "NOPE" }), "unknown code", /code/);
  assertRejected(response({ ok: false, code: 3 }), "numeric code", /code/);
  assertRejected(response({ ok: false }), "failure without code", /code/);
  assertRejected(response({ ok: true, code: "TIMEOUT" }), "success with code", /code/);
  assertRejected(response({ ok: false, code: "TIMEOUT", error: 5 }), "numeric error", /error/);
  assertRejected(
    response({ ok: false, code: "NOT_LEADER", leader: 5 }),
    "numeric leader",
    /leader/,
  );
  assertRejected(response({ ok: true, data: [1] }), "array data", /data/);
});

Deno.test("structural limits are enforced before the decoder allocates", () => {
  // An array header announcing 65535 elements with no elements behind it.
  assertRejected(bytes(0x94, 1, 0xa1, 0x67, 0, 0xdc, 0xff, 0xff), "lying array", /Truncated/);
  // A map announcing 2^32-1 entries.
  assertRejected(bytes(0xdf, 0xff, 0xff, 0xff, 0xff), "lying map", /Map of|Truncated/);
  // A string header announcing 4 GiB.
  assertRejected(bytes(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61), "huge string", /String of/);
  // Nesting 1000 levels deep in 1000 bytes.
  assertRejected(new Uint8Array(1000).fill(0x91), "deep nesting", /Nesting/);
  // An array with more elements than the limit, even if the bytes are there.
  const many = new Uint8Array(5 + 1024 * 1024 + 1);
  many.set([0xdd, 0x00, 0x10, 0x00, 0x01]);
  assertRejected(many, "array over the limit", /Array of/);
});

Deno.test("extension types, the reserved byte and non-string map keys are rejected", () => {
  const ext = [0xd4, 0x01, 0x00];
  assertRejected(bytes(0x94, 1, 0xa1, 0x67, 0, ...ext), "fixext", /extension/);
  assertRejected(bytes(0x94, 1, 0xa1, 0x67, 0, 0xc7, 0x01, 0x05, 0x00), "ext 8", /extension/);
  // Timestamp extension (-1), which the library would turn into a Date.
  assertRejected(bytes(0x94, 1, 0xa1, 0x67, 0, 0xd6, 0xff, 0, 0, 0, 0), "timestamp", /extension/);
  assertRejected(bytes(0x94, 1, 0xa1, 0x67, 0, 0xc1), "reserved 0xc1", /0xc1/);
  assertRejected(
    bytes(0x94, 2, 0xa1, 0x67, 1, 0x81, 0x01, 0xa3, 0x67, 0x65, 0x74),
    "int key",
    /key/,
  );
  assertRejected(
    bytes(0x94, 2, 0xa1, 0x67, 1, 0x81, 0xc4, 0x02, 0x6f, 0x70, 0xa3, 0x67, 0x65, 0x74),
    "binary key",
    /key/,
  );
  // {"__proto__": 1}: refused by the decoder, still reported as a ProtocolError.
  const proto = new TextEncoder().encode("__proto__");
  assertRejected(
    bytes(0x94, 2, 0xa1, 0x67, 1, 0x81, 0xa0 + proto.length, ...proto, 0x01),
    "__proto__ key",
  );
});

Deno.test("strings must be valid UTF-8; valid non-ASCII text round-trips", () => {
  // [2, "g", 1, {"op": <bad>}] with an overlong encoding, a lone continuation byte, a truncated
  // sequence and an encoded surrogate.
  for (const bad of [[0xc0, 0x80], [0x80], [0x61, 0xe2, 0x82], [0xed, 0xa0, 0x80]]) {
    const body = bytes(0x94, 2, 0xa1, 0x67, 1, 0x81, 0xa2, 0x6f, 0x70, 0xa0 + bad.length, ...bad);
    assertRejected(body, `op bytes ${bad}`, /UTF-8/);
  }
  // The same in a map key and in the group.
  assertRejected(bytes(0x94, 2, 0xa1, 0x67, 1, 0x81, 0xa1, 0xff, 0xa1, 0x61), "key", /UTF-8/);
  assertRejected(
    bytes(0x94, 2, 0xa1, 0xfe, 1, 0x81, 0xa2, 0x6f, 0x70, 0xa1, 0x61),
    "group",
    /UTF-8/,
  );
  const text = "h\u00e9llo \u{1F600} \u65e5\u672c";
  const decoded = decodeBody(encodeRequest(text, 1, { op: text, clientId: text }));
  assert.deepEqual(decoded, {
    kind: "request",
    group: text,
    requestId: 1,
    request: { op: text, clientId: text },
  });
});

Deno.test("a node heartbeat must be exactly two ids, with request id 0", () => {
  const beat = (payload: unknown, requestId: unknown = 0) =>
    raw.encode([8, "counter", requestId, payload]);
  assert.deepEqual(decodeBody(beat(["a:1", "b:2"])), {
    kind: "peer_heartbeat",
    group: "counter",
    heartbeat: { from: "a:1", to: "b:2" },
  });
  assertRejected(beat(["a:1", "b:2"], 1), "heartbeat with an id", /request id/);
  assertRejected(beat(["a:1"]), "one field", /array of 2/);
  assertRejected(beat(["a:1", "b:2", "c:3"]), "three fields", /array of 2/);
  assertRejected(beat({ from: "a:1", to: "b:2" }), "map payload", /array of 2/);
  assertRejected(beat(["", "b:2"]), "empty from", /from/);
  assertRejected(beat(["a:1", 7]), "numeric to", /to/);
  assertRejected(beat(["a:1", "x".repeat(70_000)]), "a 70,000-byte id", /./);
  assert.throws(() => encodePeerHeartbeat("counter", { from: "", to: "b:2" }));
});

Deno.test("a hello must be exactly three fields: an id and two 16-hex-digit identities", () => {
  const INC = "0123456789abcdef";
  const hello = (payload: unknown, requestId: unknown = 0) =>
    raw.encode([6, "counter", requestId, payload]);
  assert.deepEqual(decodeBody(hello(["a:1", INC, ""])), {
    kind: "hello",
    group: "counter",
    hello: { from: "a:1", incarnation: INC, clusterId: "" },
  });
  assert.equal(outcome(hello(["a:1", INC, "fedcba9876543210"]), "cluster id"), "ok");
  assertRejected(hello(["a:1", INC, ""], 1), "hello with an id", /request id/);
  assertRejected(hello(["a:1", INC]), "two fields", /array of 3/);
  assertRejected(hello(["a:1", INC, "", ""]), "four fields", /array of 3/);
  assertRejected(hello({ from: "a:1" }), "map payload", /array of 3/);
  assertRejected(hello(["", INC, ""]), "empty from", /from/);
  assertRejected(hello([1, INC, ""]), "numeric from", /from/);
  assertRejected(hello(["a:1", "0123456789ABCDEF", ""]), "upper-case hex", /incarnation/);
  assertRejected(hello(["a:1", "0123456789abcde", ""]), "15 digits", /incarnation/);
  assertRejected(hello(["a:1", "", ""]), "empty incarnation", /incarnation/);
  assertRejected(hello(["a:1", 12345, ""]), "numeric incarnation", /incarnation/);
  assertRejected(hello(["a:1", INC, "xyz"]), "bad cluster id", /clusterId/);
  assertRejected(hello(["a:1", INC, null]), "nil cluster id", /clusterId/);
  assert.throws(
    () => encodeHello("counter", { from: "a:1", incarnation: "nothex", clusterId: "" }),
    TypeError,
  );
  assert.throws(
    () => encodeHello("counter", { from: "a:1", incarnation: INC, clusterId: "short" }),
    TypeError,
  );
  assert.throws(() => encodeHello("counter", { from: "", incarnation: INC, clusterId: "" }));
});
