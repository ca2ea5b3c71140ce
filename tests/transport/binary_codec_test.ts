/**
 * The binary body form of the hot frames (lib/transport/binary_codec.ts, docs/PROTOCOL.md
 * section 2a): round trips at the edges of every field, which values fall back to MessagePack,
 * the byte layout built independently here, and refusal of every malformed or hostile body with
 * a ProtocolError and nothing else.
 */

import assert from "node:assert/strict";
import {
  type Entry,
  EntryType,
  makeMessage,
  type Message,
  MessageType,
} from "../../lib/raft/types.ts";
import {
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  ELECTION_TICKS_WIRE_MAX,
  encodeRaft,
  encodeRequest,
  encodeResponse,
  ENTRIES_PER_MESSAGE_MAX,
  ERROR_CODES,
  ProtocolError,
  RAFT_NUMBER_LIMIT,
} from "../../lib/transport/codec.ts";
import {
  BINARY_DATA_KEYS_MAX,
  BINARY_ERROR_CODES,
  BINARY_MARKER,
  BinaryTag,
} from "../../lib/transport/binary_codec.ts";

const utf8 = new TextEncoder();
const MAX_RAFT = RAFT_NUMBER_LIMIT - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

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

function assertRejected(body: Uint8Array, pattern: RegExp, label = String(pattern)): void {
  const result = outcome(body, label);
  assert.ok(result instanceof ProtocolError, `${label}: should be rejected`);
  assert.match(result.message, pattern, label);
}

function assertBinary(body: Uint8Array, tag: BinaryTag, label: string): void {
  assert.equal(body[0], BINARY_MARKER, `${label}: binary marker`);
  assert.equal(body[1], tag, `${label}: tag`);
}

// ---------------------------------------------------------------------------------------------
// A writer for hand-built bodies, independent of the codec's own.

class Builder {
  #bytes: number[] = [];
  u8(n: number): this {
    this.#bytes.push(n & 0xff);
    return this;
  }
  u16(n: number): this {
    return this.u8(n >>> 8).u8(n);
  }
  u32(n: number): this {
    return this.u16(Math.floor(n / 0x10000)).u16(n % 0x10000);
  }
  u64(n: number | bigint): this {
    const v = BigInt.asUintN(64, BigInt(n));
    return this.u32(Number(v >> 32n)).u32(Number(v & 0xffff_ffffn));
  }
  raw(bytes: ArrayLike<number>): this {
    for (let i = 0; i < bytes.length; i++) this.u8(bytes[i]);
    return this;
  }
  str(s: string | Uint8Array): this {
    const bytes = typeof s === "string" ? utf8.encode(s) : s;
    return this.u16(bytes.length).raw(bytes);
  }
  build(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

interface RaftFields {
  tag: number;
  group: string | Uint8Array;
  type: number;
  from: string | Uint8Array;
  to: string | Uint8Array;
  term: number | bigint;
  logTerm: number | bigint;
  index: number | bigint;
  commit: number | bigint;
  rejectHint: number | bigint;
  context: number | bigint;
  electionTicks: number;
  flags: number;
  entryCount?: number;
  entries: { term: number | bigint; index: number | bigint; type: number; data: Uint8Array }[];
}

const RAFT_DEFAULTS: RaftFields = {
  tag: BinaryTag.Raft,
  group: "counter",
  type: MessageType.App,
  from: "a:1",
  to: "b:1",
  term: 3,
  logTerm: 2,
  index: 10,
  commit: 9,
  rejectHint: 0,
  context: 0,
  electionTicks: 0,
  flags: 0,
  entries: [{ term: 3, index: 11, type: 0, data: new Uint8Array([1, 2]) }],
};

/** The documented RAFT layout, field by field. */
function raftBinary(overrides: Partial<RaftFields> = {}): Uint8Array {
  const f = { ...RAFT_DEFAULTS, ...overrides };
  const b = new Builder().u8(BINARY_MARKER).u8(f.tag).str(f.group).u8(f.type).str(f.from)
    .str(f.to).u64(f.term).u64(f.logTerm).u64(f.index).u64(f.commit).u64(f.rejectHint)
    .u64(f.context).u32(f.electionTicks).u8(f.flags).u32(f.entryCount ?? f.entries.length);
  for (const e of f.entries) {
    b.u64(e.term).u64(e.index).u8(e.type).u32(e.data.length).raw(e.data);
  }
  return b.build();
}

interface RequestFields {
  group: string | Uint8Array;
  requestId: number | bigint;
  op: number;
  flags?: number;
  delta?: bigint;
  clientId?: string | Uint8Array;
  seq?: number | bigint;
  ackedBelow?: number | bigint;
  consistency?: string | Uint8Array;
  clusterId?: string | Uint8Array;
}

/** The documented REQUEST layout; flags follow the fields given unless set. */
function requestBinary(f: RequestFields): Uint8Array {
  const present = [f.delta, f.clientId, f.seq, f.ackedBelow, f.consistency, f.clusterId];
  const flags = f.flags ?? present.reduce<number>((n, v, i) => v === undefined ? n : n | 1 << i, 0);
  const b = new Builder().u8(BINARY_MARKER).u8(BinaryTag.Request).str(f.group).u64(f.requestId)
    .u8(f.op).u8(flags);
  if (f.delta !== undefined) b.u64(f.delta);
  if (f.clientId !== undefined) b.str(f.clientId);
  if (f.seq !== undefined) b.u64(f.seq);
  if (f.ackedBelow !== undefined) b.u64(f.ackedBelow);
  if (f.consistency !== undefined) b.str(f.consistency);
  if (f.clusterId !== undefined) b.str(f.clusterId);
  return b.build();
}

interface ResponseFields {
  group: string;
  requestId: number | bigint;
  ok: boolean;
  flags?: number;
  value?: bigint;
  error?: string | Uint8Array;
  code?: number;
  leader?: string | Uint8Array;
  data?: [string | Uint8Array, string | Uint8Array][];
  dataCount?: number;
  clusterId?: string | Uint8Array;
}

/** The documented RESPONSE layout; flags follow the fields given unless set. */
function responseBinary(f: ResponseFields): Uint8Array {
  const present = [f.value, f.error, f.code, f.leader, f.data, f.clusterId];
  const flags = f.flags ??
    present.reduce<number>((n, v, i) => v === undefined ? n : n | 1 << (i + 1), f.ok ? 1 : 0);
  const b = new Builder().u8(BINARY_MARKER).u8(BinaryTag.Response).str(f.group).u64(f.requestId)
    .u8(flags);
  if (f.value !== undefined) b.u64(f.value);
  if (f.error !== undefined) b.str(f.error);
  if (f.code !== undefined) b.u8(f.code);
  if (f.leader !== undefined) b.str(f.leader);
  if (f.data !== undefined) {
    b.u8(f.dataCount ?? f.data.length);
    for (const [key, value] of f.data) b.str(key).str(value);
  }
  if (f.clusterId !== undefined) b.str(f.clusterId);
  return b.build();
}

// ---------------------------------------------------------------------------------------------
// Layout

Deno.test("binary bodies follow the documented byte layout exactly", () => {
  const message = makeMessage(MessageType.App, {
    from: "a:1",
    to: "b:1",
    term: 3,
    logTerm: 2,
    index: 10,
    commit: 9,
    entries: [{ term: 3, index: 11, type: EntryType.Normal, data: new Uint8Array([1, 2]) }],
  });
  assert.deepEqual(encodeRaft("counter", message), raftBinary());
  const hbResp = makeMessage(MessageType.HeartbeatResp, {
    from: "b:1",
    to: "a:1",
    term: 2 ** 47 + 5,
    index: 77,
    context: 12,
    reject: true,
    electionTicks: 300,
  });
  assert.deepEqual(
    encodeRaft("g", hbResp),
    raftBinary({
      group: "g",
      type: MessageType.HeartbeatResp,
      from: "b:1",
      to: "a:1",
      term: 2 ** 47 + 5,
      logTerm: 0,
      index: 77,
      commit: 0,
      context: 12,
      electionTicks: 300,
      flags: 1,
      entries: [],
    }),
  );
  assert.deepEqual(
    encodeRequest("counter", 2 ** 40 + 1, {
      op: "incr",
      delta: -2n,
      clientId: "c-1",
      seq: 5,
      ackedBelow: 4,
      clusterId: "x",
    }),
    requestBinary({
      group: "counter",
      requestId: 2 ** 40 + 1,
      op: 1,
      delta: -2n,
      clientId: "c-1",
      seq: 5,
      ackedBelow: 4,
      clusterId: "x",
    }),
  );
  assert.deepEqual(
    encodeRequest("counter", 3, { op: "get", consistency: "lease" }),
    requestBinary({ group: "counter", requestId: 3, op: 2, consistency: "lease" }),
  );
  assert.deepEqual(
    encodeResponse("counter", 3, {
      ok: false,
      value: INT64_MIN,
      error: "e",
      code: "NOT_LEADER",
      leader: "b:1",
      data: { node: "a:1", x: "" },
      clusterId: "c",
    }),
    responseBinary({
      group: "counter",
      requestId: 3,
      ok: false,
      value: INT64_MIN,
      error: "e",
      code: 1,
      leader: "b:1",
      data: [["node", "a:1"], ["x", ""]],
      clusterId: "c",
    }),
  );
});

Deno.test("the binary error code numbers cover every error code once, and are fixed", () => {
  assert.equal(BINARY_ERROR_CODES[0], null);
  assert.deepEqual([...BINARY_ERROR_CODES.slice(1)].sort(), [...ERROR_CODES].sort());
  // The wire numbers of the first codes, as documented; never renumbered.
  assert.equal(BINARY_ERROR_CODES.indexOf("NOT_LEADER"), 1);
  assert.equal(BINARY_ERROR_CODES.indexOf("INTERNAL"), 16);
  for (const code of ERROR_CODES) {
    const body = encodeResponse("g", 1, { ok: false, code });
    assert.equal(body[body.length - 1], BINARY_ERROR_CODES.indexOf(code), code);
  }
});

// ---------------------------------------------------------------------------------------------
// Round trips

const LONG_ASCII = "x".repeat(0xffff);
// 65,535 bytes of 3-byte characters: 21,845 of them.
const LONG_CJK = "中".repeat(0xffff / 3);

function edgeMessages(): Message[] {
  const from = "10.0.0.1:4000";
  const to = "10.0.0.2:4000";
  const entry = (term: number, index: number, type: EntryType, data: Uint8Array): Entry => ({
    term,
    index,
    type,
    data,
  });
  return [
    makeMessage(MessageType.App, { from, to, term: 0 }),
    makeMessage(MessageType.App, {
      from,
      to,
      term: MAX_RAFT,
      logTerm: MAX_RAFT,
      index: MAX_RAFT,
      commit: MAX_RAFT,
      rejectHint: MAX_RAFT,
      context: MAX_RAFT,
      entries: [
        entry(MAX_RAFT, MAX_RAFT, EntryType.Normal, new Uint8Array(0)),
        entry(0, 1, EntryType.Config, new Uint8Array([0xc1, 0xff, 0])),
        entry(2 ** 32, 2 ** 32 + 1, EntryType.Normal, new Uint8Array(70_000).fill(7)),
      ],
    }),
    makeMessage(MessageType.App, {
      from,
      to,
      term: 5,
      index: 99,
      entries: Array.from(
        { length: 1000 },
        (_, i) => entry(5, 100 + i, EntryType.Normal, new Uint8Array(i % 17).fill(i & 0xff)),
      ),
    }),
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
    makeMessage(MessageType.Heartbeat, { from, to, term: 2 ** 40, commit: 2 ** 47, context: 1 }),
    makeMessage(MessageType.HeartbeatResp, { from, to, term: 1, context: 1, electionTicks: 1 }),
    makeMessage(MessageType.HeartbeatResp, {
      from,
      to,
      term: 1,
      index: 9,
      reject: true,
      electionTicks: ELECTION_TICKS_WIRE_MAX,
    }),
    // Non-ASCII ids: 2-, 3- and 4-byte UTF-8, and the longest strings the form carries.
    makeMessage(MessageType.Heartbeat, { from: "nœud-1:4000", to: "节点🦀:4000", term: 1 }),
    makeMessage(MessageType.Heartbeat, { from: LONG_ASCII, to: LONG_CJK, term: 1 }),
  ];
}

Deno.test("every hot Raft message shape round-trips in binary at the edges of its fields", () => {
  for (const [i, message] of edgeMessages().entries()) {
    for (const group of ["counter", "g", "grüppe", LONG_ASCII]) {
      const body = encodeRaft(group, message);
      assertBinary(body, BinaryTag.Raft, `message ${i}`);
      assert.deepEqual(decodeBody(body), { kind: "raft", group, message }, `message ${i}`);
    }
  }
});

Deno.test("an App with the most entries allowed round-trips in binary; one more is refused", () => {
  const entries: Entry[] = Array.from(
    { length: ENTRIES_PER_MESSAGE_MAX },
    (_, i) => ({ term: 1, index: i + 1, type: EntryType.Normal, data: new Uint8Array(0) }),
  );
  const message = makeMessage(MessageType.App, { from: "a:1", to: "b:1", term: 1, entries });
  const body = encodeRaft("g", message);
  assertBinary(body, BinaryTag.Raft, "max entries");
  assert.deepEqual(decodeBody(body), { kind: "raft", group: "g", message });
  assert.throws(
    () => encodeRaft("g", { ...message, entries: [...entries, entries[0]] }),
    RangeError,
  );
  const tooMany = raftBinary({
    entries: Array.from({ length: ENTRIES_PER_MESSAGE_MAX + 1 }, () => ({
      term: 1,
      index: 1,
      type: 0,
      data: new Uint8Array(0),
    })),
  });
  assertRejected(tooMany, /More than 65536 entries/);
});

Deno.test("incr and get requests round-trip in binary with every field at its edges", () => {
  const requests: ClientRequest[] = [
    { op: "incr", delta: 0n },
    { op: "incr", delta: 1n, clientId: "c-1", seq: 1 },
    { op: "incr", delta: INT64_MAX, clientId: "", seq: 0, ackedBelow: 0 },
    { op: "incr", delta: INT64_MIN, clientId: "c", seq: Number.MAX_SAFE_INTEGER },
    { op: "incr", delta: -1n, ackedBelow: Number.MAX_SAFE_INTEGER, clusterId: "" },
    { op: "incr", delta: 2n ** 53n + 1n, clientId: "клиент-🦀", seq: 2 ** 32, clusterId: "ab" },
    { op: "incr", clientId: LONG_ASCII, clusterId: LONG_CJK },
    { op: "incr" },
    { op: "get" },
    { op: "get", consistency: "linearizable", clusterId: "2c6ee24b09816a6f" },
    { op: "get", consistency: "" },
    // Fields of the other op are the service's business, not the codec's: they travel too.
    { op: "get", delta: 5n, seq: 3 },
  ];
  for (const [i, request] of requests.entries()) {
    for (const requestId of [1, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const body = encodeRequest("counter", requestId, request);
      assertBinary(body, BinaryTag.Request, `request ${i}`);
      assert.deepEqual(decodeBody(body), {
        kind: "request",
        group: "counter",
        requestId,
        request,
      });
    }
  }
});

Deno.test("responses round-trip in binary with every field at its edges", () => {
  const responses: ClientResponse[] = [
    { ok: true },
    { ok: true, value: 0n },
    { ok: true, value: INT64_MAX },
    { ok: true, value: INT64_MIN, leader: "10.0.0.1:4000" },
    { ok: true, value: -3n, leader: "b:1", data: { node: "a:1" } },
    { ok: true, data: {} },
    {
      ok: true,
      data: Object.fromEntries(
        Array.from({ length: BINARY_DATA_KEYS_MAX }, (_, i) => [`k${i}`, "v".repeat(i)]),
      ),
    },
    { ok: true, data: { "": "", "ключ": "значение" } },
    { ok: false, code: "OVERFLOW", error: "Counter would overflow", value: INT64_MAX },
    { ok: false, code: "NOT_LEADER", error: "", leader: "" },
    { ok: false, code: "WRONG_CLUSTER", clusterId: "2c6ee24b09816a6f" },
    { ok: false, code: "INTERNAL", error: LONG_CJK, leader: LONG_ASCII },
    ...ERROR_CODES.map((code): ClientResponse => ({ ok: false, code, error: `über ${code}` })),
  ];
  for (const [i, response] of responses.entries()) {
    const body = encodeResponse("counter", 17, response);
    assertBinary(body, BinaryTag.Response, `response ${i}`);
    assert.deepEqual(decodeBody(body), {
      kind: "response",
      group: "counter",
      requestId: 17,
      response,
    });
  }
});

Deno.test("values the binary form does not carry go as MessagePack and still round-trip", () => {
  const tooLong = "y".repeat(0x10000);
  const hb = makeMessage(MessageType.Heartbeat, { from: "a:1", to: "b:1", term: 1 });
  const snapshot = {
    index: 1,
    term: 1,
    conf: { voters: ["a:1"], learners: [] },
    data: utf8.encode("s"),
  };
  const raft: [string, Message][] = [
    ["vote", makeMessage(MessageType.Vote, { from: "a:1", to: "b:1", term: 1 })],
    ["snap", makeMessage(MessageType.Snap, { from: "a:1", to: "b:1", term: 1, snapshot })],
    ["App with a snapshot", { ...hb, type: MessageType.App, snapshot }],
    ["from over 65,535 bytes", { ...hb, from: tooLong }],
    ["to over 65,535 bytes (2-byte chars)", { ...hb, to: "é".repeat(0x8000) }],
  ];
  for (const [label, message] of raft) {
    const body = encodeRaft("g", message);
    assert.notEqual(body[0], BINARY_MARKER, label);
    assert.deepEqual(decodeBody(body), { kind: "raft", group: "g", message }, label);
  }
  const longGroup = encodeRaft(tooLong, hb);
  assert.notEqual(longGroup[0], BINARY_MARKER);
  assert.deepEqual(decodeBody(longGroup), { kind: "raft", group: tooLong, message: hb });

  const requests: ClientRequest[] = [
    { op: "status" },
    { op: "incr", delta: 1n, args: {} },
    { op: "INCR", delta: 1n },
    { op: "incr", clientId: tooLong },
  ];
  for (const request of requests) {
    const body = encodeRequest("g", 1, request);
    assert.notEqual(body[0], BINARY_MARKER, request.op);
    assert.deepEqual(decodeBody(body), { kind: "request", group: "g", requestId: 1, request });
  }
  const responses: ClientResponse[] = [
    { ok: true, data: { term: 7 } },
    { ok: true, data: { list: ["a"] } },
    {
      ok: true,
      data: Object.fromEntries(
        Array.from({ length: BINARY_DATA_KEYS_MAX + 1 }, (_, i) => [`k${i}`, "v"]),
      ),
    },
    { ok: false, code: "INTERNAL", error: tooLong },
  ];
  for (const response of responses) {
    const body = encodeResponse("g", 1, response);
    assert.notEqual(body[0], BINARY_MARKER);
    assert.deepEqual(decodeBody(body), { kind: "response", group: "g", requestId: 1, response });
  }
});

Deno.test("encoded bodies keep their bytes, whatever is encoded after them", () => {
  // Bodies share slabs: thousands of them span several, and none is written over.
  const bodies: [Uint8Array, Uint8Array][] = [];
  for (let i = 1; i <= 5000; i++) {
    const body = encodeRequest("g", i, {
      op: "incr",
      delta: BigInt(-i),
      clientId: `c${i}`,
      seq: i,
    });
    bodies.push([body, body.slice()]);
  }
  for (const [body, copy] of bodies) assert.deepEqual(body, copy);
  const first = encodeRequest("g", 1, { op: "incr", delta: 1n, clientId: "c", seq: 1 });
  const copy = first.slice();
  // A large App grows the scratch buffer past what is kept; later bodies must not alias.
  const big = makeMessage(MessageType.App, {
    from: "a:1",
    to: "b:1",
    term: 1,
    entries: [{ term: 1, index: 1, type: 0, data: new Uint8Array(3 * 1024 * 1024).fill(9) }],
  });
  const bigBody = encodeRaft("g", big);
  encodeRequest("g", 2, { op: "get" });
  encodeRaft("g", big);
  assert.deepEqual(first, copy);
  for (const [body, copy] of bodies) assert.deepEqual(body, copy);
  const decoded = decodeBody(bigBody);
  assert.ok(decoded.kind === "raft");
  assert.equal(decoded.message.entries[0].data.length, 3 * 1024 * 1024);
  assert.deepEqual(decodeBody(first), decodeBody(copy));
});

Deno.test("a failed encode leaves the encoder usable and emits nothing half-written", () => {
  const hb = makeMessage(MessageType.Heartbeat, { from: "a:1", to: "b:1", term: 1 });
  assert.throws(() => encodeRaft("g", { ...hb, commit: RAFT_NUMBER_LIMIT }), RangeError);
  assert.throws(() => encodeRequest("g", 1, { op: "incr", seq: -1 }), RangeError);
  assert.throws(
    () => encodeResponse("g", 1, { ok: true, value: 1 as unknown as bigint }),
    RangeError,
  );
  assert.throws(
    () => encodeRequest("g", 1, { op: "incr", clientId: 5 as unknown as string }),
    TypeError,
  );
  assert.throws(
    () => encodeResponse("g", 1, { ok: true, leader: null as unknown as string }),
    TypeError,
  );
  assert.throws(() => encodeRaft("g", { ...hb, reject: 1 as unknown as boolean }), TypeError);
  assert.throws(() => encodeRaft("g", { ...hb, electionTicks: 3 }), RangeError);
  assert.throws(
    () => encodeRaft("g", { ...hb, type: MessageType.HeartbeatResp, electionTicks: 0 }),
    RangeError,
  );
  assert.deepEqual(decodeBody(encodeRaft("g", hb)), { kind: "raft", group: "g", message: hb });
});

// ---------------------------------------------------------------------------------------------
// Refusals

function validBinaryBodies(): Uint8Array[] {
  return [
    raftBinary(),
    // Several entries with data: a cut inside a later entry's header comes after the up-front
    // size check of the whole count.
    raftBinary({
      entries: [1, 2, 3].map((i) => ({ term: 3, index: 10 + i, type: 0, data: new Uint8Array(i) })),
    }),
    encodeRaft(
      "counter",
      makeMessage(MessageType.HeartbeatResp, {
        from: "nœud:1",
        to: "b:1",
        term: 9,
        electionTicks: 100,
      }),
    ),
    encodeRequest("counter", 7, {
      op: "incr",
      delta: -5n,
      clientId: "c1",
      seq: 3,
      ackedBelow: 2,
      clusterId: "x",
    }),
    encodeRequest("counter", 8, { op: "get", consistency: "stale" }),
    encodeResponse("counter", 7, {
      ok: false,
      code: "NOT_LEADER",
      leader: "b:1",
      error: "No",
      clusterId: "z",
    }),
    encodeResponse("counter", 9, { ok: true, value: 2n ** 62n, data: { node: "a:1" } }),
  ];
}

Deno.test("the sample binary bodies used below are valid and binary", () => {
  for (const [i, body] of validBinaryBodies().entries()) {
    assert.equal(body[0], BINARY_MARKER);
    assert.equal(outcome(body, `body ${i}`), "ok");
  }
});

Deno.test("every truncation of a valid binary body is rejected", () => {
  for (const [b, valid] of validBinaryBodies().entries()) {
    for (let length = 1; length < valid.length; length++) {
      assertRejected(
        valid.subarray(0, length),
        /ends inside|ends before its tag/,
        `body ${b} at ${length}`,
      );
    }
  }
});

Deno.test("bytes after a valid binary body are rejected", () => {
  for (const [b, valid] of validBinaryBodies().entries()) {
    for (const extra of [[0], [0, 0, 0, 0], [...valid]]) {
      assertRejected(new Uint8Array([...valid, ...extra]), /trailing bytes/, `body ${b}`);
    }
  }
});

Deno.test("an unknown tag, or a marker without one, is rejected", () => {
  assertRejected(new Uint8Array([BINARY_MARKER]), /0xc1\) ends before its tag/);
  for (const tag of [0x00, 0x06, 0x07, 0x81, 0xff]) {
    const body = raftBinary({ tag });
    assertRejected(body, new RegExp(`Unknown binary body tag ${tag}`));
  }
});

Deno.test("Raft types without a binary form are refused in binary", () => {
  for (const type of [0, 3, 4, 5, 6, 9, 10, 11, 12, 13, 255]) {
    assertRejected(raftBinary({ type, entries: [] }), /has no binary form/, `type ${type}`);
  }
});

Deno.test("terms and indexes of 2^48 or more are refused; 2^48 - 1 is accepted", () => {
  const fields = ["term", "logTerm", "index", "commit", "rejectHint", "context"] as const;
  for (const field of fields) {
    for (const bad of [RAFT_NUMBER_LIMIT, 2 ** 53, 2n ** 64n - 1n]) {
      assertRejected(raftBinary({ [field]: bad }), new RegExp(`${field} is not .* below 2\\^48`));
    }
    assert.equal(outcome(raftBinary({ [field]: MAX_RAFT }), field), "ok");
  }
  const entry = { term: 1, index: 1, type: 0, data: new Uint8Array(0) };
  assertRejected(raftBinary({ entries: [{ ...entry, term: RAFT_NUMBER_LIMIT }] }), /entry term/);
  assertRejected(raftBinary({ entries: [{ ...entry, index: RAFT_NUMBER_LIMIT }] }), /entry index/);
  assertRejected(raftBinary({ entries: [{ ...entry, index: 0 }] }), /index 0/);
  assertRejected(raftBinary({ entries: [{ ...entry, type: 2 }] }), /unknown type 2/);
});

Deno.test("electionTicks, flags and ids are checked as in the MessagePack form", () => {
  const hbResp = { type: MessageType.HeartbeatResp, entries: [] };
  assertRejected(raftBinary({ ...hbResp, electionTicks: 0 }), /outside 1\.\.1000000/);
  assertRejected(
    raftBinary({ ...hbResp, electionTicks: ELECTION_TICKS_WIRE_MAX + 1 }),
    /outside 1\.\.1000000/,
  );
  assert.equal(outcome(raftBinary({ ...hbResp, electionTicks: 1 }), "ticks 1"), "ok");
  assertRejected(raftBinary({ electionTicks: 1 }), /other than HeartbeatResp/);
  for (const flags of [2, 0x80, 0xff]) assertRejected(raftBinary({ flags }), /unknown bits/);
  assertRejected(raftBinary({ group: "" }), /group is not a non-empty string/);
  assertRejected(raftBinary({ from: "" }), /from is not a non-empty string/);
  assertRejected(raftBinary({ to: "" }), /to is not a non-empty string/);
});

Deno.test("entry counts and lengths beyond the body are refused before any allocation", () => {
  // Announces 65,536 entries but holds one: refused by size, not by running out mid-way.
  assertRejected(raftBinary({ entryCount: ENTRIES_PER_MESSAGE_MAX }), /ends inside entries/);
  assertRejected(raftBinary({ entryCount: 0xffff_ffff }), /More than 65536 entries/);
  assertRejected(raftBinary({ entryCount: 2 }), /ends inside/);
  const huge = raftBinary();
  // The data length of the only entry (the u32 before its 2 data bytes): 4 GiB - 1.
  huge.set([0xff, 0xff, 0xff, 0xff], huge.length - 6);
  assertRejected(huge, /ends inside entry data/);
  // A string length beyond the body.
  const body = raftBinary();
  body.set([0xff, 0xff], 2);
  assertRejected(body, /ends inside group/);
});

Deno.test("invalid UTF-8 in any string field is refused", () => {
  const bad = [
    new Uint8Array([0xff]),
    new Uint8Array([0x61, 0xc3]), // a lead byte without its continuation
    new Uint8Array([0xed, 0xa0, 0x80]), // an encoded surrogate
    new Uint8Array([0xc0, 0xaf]), // overlong
    new Uint8Array([0x80]),
  ];
  for (const s of bad) {
    assertRejected(raftBinary({ group: s }), /group is not valid UTF-8/);
    assertRejected(raftBinary({ from: s }), /from is not valid UTF-8/);
    assertRejected(raftBinary({ to: s }), /to is not valid UTF-8/);
    const req = { group: "g", requestId: 1, op: 1 };
    assertRejected(requestBinary({ ...req, group: s }), /group is not valid UTF-8/);
    assertRejected(requestBinary({ ...req, clientId: s }), /clientId is not valid UTF-8/);
    assertRejected(requestBinary({ ...req, consistency: s }), /consistency is not valid UTF-8/);
    assertRejected(requestBinary({ ...req, clusterId: s }), /clusterId is not valid UTF-8/);
    const resp = { group: "g", requestId: 1, ok: true };
    assertRejected(responseBinary({ ...resp, error: s }), /error is not valid UTF-8/);
    assertRejected(responseBinary({ ...resp, leader: s }), /leader is not valid UTF-8/);
    assertRejected(responseBinary({ ...resp, clusterId: s }), /clusterId is not valid UTF-8/);
    assertRejected(responseBinary({ ...resp, data: [[s, "v"]] }), /data key is not valid UTF-8/);
    assertRejected(responseBinary({ ...resp, data: [["k", s]] }), /data value is not valid/);
  }
  // A long string takes the decoder's path, not the short-ASCII one: still checked.
  const long = new Uint8Array(200).fill(0x61);
  long[150] = 0xfe;
  assertRejected(raftBinary({ from: long }), /from is not valid UTF-8/);
});

Deno.test("binary requests: ops, flags, request ids and integers out of range are refused", () => {
  const ok = { group: "g", requestId: 1, op: 1 };
  assert.equal(outcome(requestBinary(ok), "baseline"), "ok");
  for (const op of [0, 3, 255]) {
    assertRejected(requestBinary({ ...ok, op }), /Unknown binary request op/);
  }
  for (const flags of [0x40, 0x80]) assertRejected(requestBinary({ ...ok, flags }), /unknown bits/);
  assertRejected(requestBinary({ ...ok, requestId: 0 }), /request id is not a positive integer/);
  assertRejected(
    requestBinary({ ...ok, requestId: 2 ** 53 }),
    /requestId is not a non-negative safe/,
  );
  assertRejected(requestBinary({ ...ok, seq: 2 ** 53 }), /seq is not a non-negative safe integer/);
  assertRejected(requestBinary({ ...ok, ackedBelow: 2n ** 64n - 1n }), /ackedBelow is not/);
  assert.equal(outcome(requestBinary({ ...ok, seq: Number.MAX_SAFE_INTEGER }), "max seq"), "ok");
  assertRejected(requestBinary({ ...ok, group: "" }), /group is not a non-empty string/);
  // A flag announcing a field that is missing.
  assertRejected(requestBinary({ ...ok, flags: 1 }), /ends inside delta/);
});

Deno.test("binary responses: codes, flags, data and the ok/code rule are checked", () => {
  const ok = { group: "g", requestId: 1, ok: true };
  assert.equal(outcome(responseBinary(ok), "baseline"), "ok");
  assertRejected(responseBinary({ ...ok, flags: 0x81 }), /unknown bits/);
  assertRejected(responseBinary({ ...ok, requestId: 0 }), /request id is not a positive integer/);
  assertRejected(responseBinary({ ...ok, code: 1 }), /carries a code when ok is true/);
  assertRejected(responseBinary({ ...ok, ok: false }), /none when ok is false/);
  for (const code of [0, BINARY_ERROR_CODES.length, 255]) {
    assertRejected(responseBinary({ ...ok, ok: false, code }), /is not a known error code/);
  }
  assertRejected(
    responseBinary({ ...ok, data: [], dataCount: BINARY_DATA_KEYS_MAX + 1 }),
    /more than 8 keys/,
  );
  assertRejected(responseBinary({ ...ok, data: [["a", "1"], ["a", "2"]] }), /key "a" is refused/);
  assertRejected(responseBinary({ ...ok, data: [["__proto__", "x"]] }), /"__proto__" is refused/);
  assertRejected(responseBinary({ ...ok, data: [["a", "1"]], dataCount: 2 }), /ends inside data/);
});

Deno.test("random bytes after the marker give ProtocolError and nothing else", () => {
  const random = prng(0xc1c1);
  let accepted = 0;
  for (let i = 0; i < 30_000; i++) {
    const body = new Uint8Array(1 + Math.floor(random() * 96));
    for (let j = 1; j < body.length; j++) body[j] = Math.floor(random() * 256);
    body[0] = BINARY_MARKER;
    // Most samples get a known tag and a short group so the decoder gets past the header.
    if (body.length > 5 && i % 4 !== 0) {
      body[1] = 1 + (i % 3);
      body.set([0, 1, 0x67], 2);
    }
    if (outcome(body, `sample ${i}`) === "ok") accepted++;
  }
  // A handful of random bodies may happen to be valid; what matters is that nothing else throws.
  assert.ok(accepted < 300, `${accepted} random bodies accepted`);
});

Deno.test("mutated valid binary bodies decode or give ProtocolError, never anything else", () => {
  const random = prng(12);
  for (const [b, valid] of validBinaryBodies().entries()) {
    for (let i = 0; i < 5000; i++) {
      const body = valid.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        // Keep the marker so the mutation exercises the binary decoder.
        body[1 + Math.floor(random() * (body.length - 1))] = Math.floor(random() * 256);
      }
      outcome(body, `body ${b} mutation ${i}`);
    }
  }
});

Deno.test("the string cache decodes every client id right, however many there are", () => {
  const ids = Array.from({ length: 300 }, (_, i) => `client-${i}-${"x".repeat(i % 40)}`);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < ids.length; i++) {
      const bytes = encodeRequest("counter", i + 1, { op: "incr", delta: 1n, clientId: ids[i] });
      const body = decodeBody(bytes);
      assert.equal(body.kind, "request");
      if (body.kind !== "request") continue;
      assert.equal(body.group, "counter");
      assert.equal(body.request.clientId, ids[i]);
    }
  }
});
