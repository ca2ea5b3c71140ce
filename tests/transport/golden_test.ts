/**
 * Golden wire frames: committed hex dumps under snapshots/wire/ that the encoder must reproduce
 * byte for byte and the decoder must read back. A failure here means the wire format changed;
 * if that is intended, regenerate with `UPDATE_GOLDEN=1 deno test -A tests/transport` and
 * document the change in docs/PROTOCOL.md.
 *
 * Bodies with a binary form (hot Raft messages, incr/get requests, their responses) have two
 * files: `NAME.hex`, the binary body the encoders send, and `NAME_msgpack.hex`, the MessagePack
 * body of the same value, which every receiver still accepts. Request and response batches have
 * only the binary form, so only `NAME.hex`.
 */

import assert from "node:assert/strict";
import { EntryType, makeMessage, MessageType } from "../../lib/raft/types.ts";
import {
  decodeBody,
  type DecodedBody,
  encodeHello,
  encodePeerAuth,
  encodePeerHeartbeat,
  encodeRaft,
  encodeRaftMessagePack,
  encodeRequest,
  encodeRequestMessagePack,
  encodeResponse,
  encodeResponseMessagePack,
  encodeSnapshotAck,
  encodeSnapshotChunk,
} from "../../lib/transport/codec.ts";
import {
  encodeRequestBatch,
  encodeRequestBinary,
  encodeResponseBatch,
  encodeResponseBinary,
} from "../../lib/transport/binary_codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";

const GOLDEN_DIR = new URL("../../snapshots/wire/", import.meta.url);
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";
const utf8 = new TextEncoder();

interface GoldenCase {
  name: string;
  description: string;
  body: DecodedBody;
}

/** Which encoding a golden file pins. */
type Form = "binary" | "msgpack";

const CASES: GoldenCase[] = [
  {
    name: "raft_append_entries",
    description: "RAFT App from 10.0.0.1:4000 to 10.0.0.2:4000, term 7, two entries",
    body: {
      kind: "raft",
      group: "counter",
      message: makeMessage(MessageType.App, {
        from: "10.0.0.1:4000",
        to: "10.0.0.2:4000",
        term: 7,
        logTerm: 6,
        index: 41,
        commit: 40,
        entries: [
          { term: 7, index: 42, type: EntryType.Normal, data: new Uint8Array(0) },
          { term: 7, index: 43, type: EntryType.Normal, data: utf8.encode("incr:+5") },
        ],
      }),
    },
  },
  {
    name: "raft_heartbeat",
    description: "RAFT Heartbeat, term 2^40 (a 64-bit integer), commit 44, read context 12",
    body: {
      kind: "raft",
      group: "counter",
      message: makeMessage(MessageType.Heartbeat, {
        from: "10.0.0.1:4000",
        to: "10.0.0.3:4000",
        term: 2 ** 40,
        commit: 44,
        context: 12,
      }),
    },
  },
  {
    name: "raft_heartbeat_resp",
    description: "RAFT HeartbeatResp echoing read context 12, sender's election timeout 100 ticks",
    body: {
      kind: "raft",
      group: "counter",
      message: makeMessage(MessageType.HeartbeatResp, {
        from: "10.0.0.3:4000",
        to: "10.0.0.1:4000",
        term: 2 ** 40,
        context: 12,
        electionTicks: 100,
      }),
    },
  },
  {
    name: "raft_append_resp_reject",
    description: "RAFT AppResp rejecting index 2^47, hint 30 at log term 5",
    body: {
      kind: "raft",
      group: "counter",
      message: makeMessage(MessageType.AppResp, {
        from: "10.0.0.2:4000",
        to: "10.0.0.1:4000",
        term: 7,
        index: 2 ** 47,
        reject: true,
        rejectHint: 30,
        logTerm: 5,
      }),
    },
  },
  {
    name: "raft_snapshot",
    description: "RAFT Snap carrying a snapshot at index 900, term 7, 3 voters, 1 learner",
    body: {
      kind: "raft",
      group: "counter",
      message: makeMessage(MessageType.Snap, {
        from: "10.0.0.1:4000",
        to: "10.0.0.4:4000",
        term: 7,
        index: 900,
        snapshot: {
          index: 900,
          term: 7,
          conf: {
            voters: ["10.0.0.1:4000", "10.0.0.2:4000", "10.0.0.3:4000"],
            learners: ["10.0.0.4:4000"],
          },
          data: new Uint8Array([0xde, 0xad, 0xbe, 0xef]),
        },
      }),
    },
  },
  {
    name: "request_incr",
    description: "REQUEST 17: incr by 5 from client c-1, sequence 3",
    body: {
      kind: "request",
      group: "counter",
      requestId: 17,
      request: { op: "incr", delta: 5n, clientId: "c-1", seq: 3 },
    },
  },
  {
    name: "request_incr_all_fields",
    description: "REQUEST 2^40: incr by -1 for client ü-7, seq 9, acked below 8, pinned cluster",
    body: {
      kind: "request",
      group: "counter",
      requestId: 2 ** 40,
      request: {
        op: "incr",
        delta: -1n,
        clientId: "ü-7",
        seq: 9,
        ackedBelow: 8,
        clusterId: "2c6ee24b09816a6f",
      },
    },
  },
  {
    name: "request_incr_negative_int64",
    description: "REQUEST 18: incr by -(2^63), the smallest int64",
    body: {
      kind: "request",
      group: "counter",
      requestId: 18,
      request: { op: "incr", delta: -(2n ** 63n) },
    },
  },
  {
    name: "request_get",
    description: "REQUEST 19: get with linearizable consistency",
    body: {
      kind: "request",
      group: "counter",
      requestId: 19,
      request: { op: "get", consistency: "linearizable" },
    },
  },
  {
    name: "response_value",
    description: "RESPONSE 17: ok, value 2^53 + 1 (needs int64)",
    body: {
      kind: "response",
      group: "counter",
      requestId: 17,
      response: { ok: true, value: 2n ** 53n + 1n },
    },
  },
  {
    name: "response_get_stale",
    description: "RESPONSE 20: a stale get, value -3, with the leader and data {node}",
    body: {
      kind: "response",
      group: "counter",
      requestId: 20,
      response: { ok: true, value: -3n, leader: "10.0.0.1:4000", data: { node: "10.0.0.2:4000" } },
    },
  },
  {
    name: "response_redirect",
    description: "RESPONSE 17: NOT_LEADER with a redirect to 10.0.0.2:4000",
    body: {
      kind: "response",
      group: "counter",
      requestId: 17,
      response: {
        ok: false,
        error: "Not the leader",
        code: "NOT_LEADER",
        leader: "10.0.0.2:4000",
      },
    },
  },
  {
    name: "response_large_request_id",
    description: "RESPONSE 2^32 + 5: a request id past 32 bits goes out as uint 64 (0xcf)",
    body: {
      kind: "response",
      group: "counter",
      requestId: 2 ** 32 + 5,
      response: { ok: true, value: 1n },
    },
  },
  {
    name: "snapshot_chunk",
    description: "SNAPSHOT_CHUNK: bytes 0..3 of a 4-byte snapshot at index 5000, term 3",
    body: {
      kind: "snapshot_chunk",
      group: "counter",
      chunk: {
        from: "10.0.0.1:4000",
        to: "10.0.0.2:4000",
        term: 3,
        index: 5000,
        snapTerm: 3,
        conf: { voters: ["10.0.0.1:4000", "10.0.0.2:4000"], learners: [] },
        offset: 0,
        totalBytes: 4,
        checksum: 0x12345678,
        data: new Uint8Array([1, 2, 3, 4]),
      },
    },
  },
  {
    name: "snapshot_ack",
    description: "SNAPSHOT_ACK: the follower holds 4 bytes of the snapshot at index 5000",
    body: {
      kind: "snapshot_ack",
      group: "counter",
      ack: { from: "10.0.0.2:4000", to: "10.0.0.1:4000", index: 5000, offset: 4, ok: true },
    },
  },
  {
    name: "peer_auth",
    description: "PEER_AUTH step 2: the acceptor's nonce (0x11 x 32) and MAC (0x22 x 32)",
    body: {
      kind: "peer_auth",
      group: "counter",
      auth: {
        step: 2,
        from: "10.0.0.2:4000",
        to: "10.0.0.1:4000",
        nonce: new Uint8Array(32).fill(0x11),
        mac: new Uint8Array(32).fill(0x22),
      },
    },
  },
  {
    name: "hello",
    description: "HELLO from 10.0.0.1:4000: its incarnation and cluster id",
    body: {
      kind: "hello",
      group: "counter",
      hello: {
        from: "10.0.0.1:4000",
        incarnation: "8f3a5c0e91d2b746",
        clusterId: "2c6ee24b09816a6f",
      },
    },
  },
  {
    name: "hello_no_cluster",
    description: "HELLO from a node that has no cluster id yet (joining, or an upgraded data dir)",
    body: {
      kind: "hello",
      group: "counter",
      hello: { from: "10.0.0.4:4000", incarnation: "00ff00ff00ff00ff", clusterId: "" },
    },
  },
  {
    name: "request_batch",
    description: "REQUEST batch: an incr with its session fields, a linearizable get, a lone incr",
    body: {
      kind: "request_batch",
      group: "counter",
      requestIds: [41, 42, 2 ** 40],
      requests: [
        {
          op: "incr",
          delta: 3n,
          clientId: "c-7",
          seq: 12,
          ackedBelow: 10,
          clusterId: "0123456789abcdef",
        },
        { op: "get", consistency: "linearizable" },
        { op: "incr", delta: -(2n ** 63n) },
      ],
    },
  },
  {
    name: "response_batch",
    description: "RESPONSE batch: a value, a redirect, a stale read with data",
    body: {
      kind: "response_batch",
      group: "counter",
      requestIds: [41, 42, 43],
      responses: [
        { ok: true, value: 15n, clusterId: "0123456789abcdef" },
        { ok: false, code: "NOT_LEADER", error: "not the leader", leader: "10.0.0.2:4000" },
        { ok: true, value: -1n, data: { node: "10.0.0.3:4000" } },
      ],
    },
  },
  {
    name: "peer_heartbeat",
    description: "PEER_HEARTBEAT: node 10.0.0.2:4000 is alive, sent under a group it shares",
    body: {
      kind: "peer_heartbeat",
      group: "counter",
      heartbeat: { from: "10.0.0.2:4000", to: "10.0.0.1:4000" },
    },
  },
];

// The body as the encoders send it, or forced to MessagePack.
function encodeBody(body: DecodedBody, form: Form | "default"): Uint8Array {
  const msgpack = form === "msgpack";
  switch (body.kind) {
    case "raft":
      return (msgpack ? encodeRaftMessagePack : encodeRaft)(body.group, body.message);
    case "request":
      return (msgpack ? encodeRequestMessagePack : encodeRequest)(
        body.group,
        body.requestId,
        body.request,
      );
    case "response":
      return (msgpack ? encodeResponseMessagePack : encodeResponse)(
        body.group,
        body.requestId,
        body.response,
      );
    case "snapshot_chunk":
      return encodeSnapshotChunk(body.group, body.chunk);
    case "snapshot_ack":
      return encodeSnapshotAck(body.group, body.ack);
    case "peer_auth":
      return encodePeerAuth(body.group, body.auth);
    case "hello":
      return encodeHello(body.group, body.hello);
    case "request_batch":
      return encodeRequestBatch(
        body.requests.map((r, i) => encodeRequestBinary(body.group, body.requestIds[i], r)!),
        body.requests.length,
      );
    case "response_batch":
      return encodeResponseBatch(
        body.responses.map((r, i) => encodeResponseBinary(body.group, body.requestIds[i], r)!),
        body.responses.length,
      );
    case "peer_heartbeat":
      return encodePeerHeartbeat(body.group, body.heartbeat);
  }
}

function toHexText(c: GoldenCase, form: Form, frame: Uint8Array): string {
  const what = form === "binary" ? "binary body (0xc1, tag)" : "MessagePack body";
  const lines = [
    `# ${c.description}`,
    `# One frame: 4-byte big-endian length (${frame.length - 4}), then the ${what}.`,
    `# Generated by tests/transport/golden_test.ts with UPDATE_GOLDEN=1; do not edit.`,
  ];
  for (let i = 0; i < frame.length; i += 16) {
    lines.push(
      [...frame.subarray(i, i + 16)].map((b) => b.toString(16).padStart(2, "0")).join(" "),
    );
  }
  return lines.join("\n") + "\n";
}

function fromHexText(text: string): Uint8Array {
  const hex = text.split("\n").filter((line) => !line.startsWith("#")).join("").replace(/\s+/g, "");
  assert.match(hex, /^([0-9a-f]{2})*$/, "golden file holds hex pairs");
  return new Uint8Array(hex.match(/../g)!.map((pair) => parseInt(pair, 16)));
}

// Bodies the encoders send in binary: the hot Raft types without a snapshot, incr/get requests
// without args, responses whose data is a few strings. Stated here independently of the codec so
// a change of which kinds go binary shows up as a failure.
function hasBinaryForm(body: DecodedBody): boolean {
  switch (body.kind) {
    case "raft":
      return [
        MessageType.App,
        MessageType.AppResp,
        MessageType.Heartbeat,
        MessageType.HeartbeatResp,
      ]
        .includes(body.message.type) && body.message.snapshot === null;
    case "request":
      return ["incr", "get"].includes(body.request.op) && body.request.args === undefined;
    case "response":
      return body.response.data === undefined ||
        Object.values(body.response.data).every((v) => typeof v === "string");
    case "request_batch":
    case "response_batch":
      return true;
    default:
      return false;
  }
}

const isBatch = (body: DecodedBody) =>
  body.kind === "request_batch" || body.kind === "response_batch";

const FILES: { c: GoldenCase; form: Form; file: string }[] = CASES.flatMap((c) =>
  isBatch(c.body) ? [{ c, form: "binary" as const, file: c.name }] : hasBinaryForm(c.body)
    ? [
      { c, form: "binary" as const, file: c.name },
      { c, form: "msgpack" as const, file: `${c.name}_msgpack` },
    ]
    : [{ c, form: "msgpack" as const, file: c.name }]
);

for (const { c, form, file } of FILES) {
  Deno.test(`golden frame ${file} matches the committed bytes`, async () => {
    const path = new URL(`${file}.hex`, GOLDEN_DIR);
    // The encoders send binary exactly for the hot bodies, MessagePack for the rest.
    const sent = encodeBody(c.body, "default");
    assert.equal(sent[0] === 0xc1, hasBinaryForm(c.body), `${file}: form sent`);
    const frame = encodeFrame(form === "binary" ? sent : encodeBody(c.body, "msgpack"));
    if (!hasBinaryForm(c.body)) assert.deepEqual(sent, frame.subarray(4));
    if (UPDATE) {
      await Deno.mkdir(GOLDEN_DIR, { recursive: true });
      await Deno.writeTextFile(path, toHexText(c, form, frame));
    }
    const golden = fromHexText(await Deno.readTextFile(path));
    assert.deepEqual(frame, golden, `${c.name}: encoder output differs from ${path.pathname}`);
    // And the committed bytes still decode to the same value.
    const length = new DataView(golden.buffer).getUint32(0);
    assert.equal(length, golden.length - 4);
    assert.deepEqual(decodeBody(golden.subarray(4)), c.body);
  });
}
