import { makeMessage, MessageType } from "../../lib/raft/types.ts";
import {
  decodeBody,
  encodeRaft,
  encodeRequest,
  encodeResponse,
} from "../../lib/transport/codec.ts";
import { encodeFrame, FrameDecoder } from "../../lib/transport/frame.ts";

// A leader's typical batch: 64 increments of 16 bytes each.
const app = makeMessage(MessageType.App, {
  from: "10.0.0.1:4000",
  to: "10.0.0.2:4000",
  term: 12,
  logTerm: 12,
  index: 100_000,
  commit: 99_990,
  entries: Array.from({ length: 64 }, (_, i) => ({
    term: 12,
    index: 100_001 + i,
    type: 0,
    data: new Uint8Array(16).fill(i),
  })),
});
const heartbeat = makeMessage(MessageType.Heartbeat, {
  from: "10.0.0.1:4000",
  to: "10.0.0.2:4000",
  term: 12,
  commit: 99_990,
  context: 7,
});

Deno.bench("App with 64 entries of 16 bytes: encode + decode", { group: "raft" }, () => {
  decodeBody(encodeRaft("counter", app));
});

Deno.bench("App with 64 entries of 16 bytes: encode", { group: "raft" }, () => {
  encodeRaft("counter", app);
});

const appBody = encodeRaft("counter", app);
Deno.bench("App with 64 entries of 16 bytes: decode", { group: "raft" }, () => {
  decodeBody(appBody);
});

Deno.bench("Heartbeat: encode + decode", { group: "raft" }, () => {
  decodeBody(encodeRaft("counter", heartbeat));
});

let requestId = 0;
Deno.bench("incr request + response: encode + decode both", { group: "client" }, () => {
  requestId++;
  const request = decodeBody(
    encodeRequest("counter", requestId, { op: "incr", delta: 1n, clientId: "c-1", seq: requestId }),
  );
  if (request.kind !== "request") throw new Error("Expected a request");
  decodeBody(encodeResponse("counter", request.requestId, { ok: true, value: 123_456_789n }));
});

// 100 heartbeat frames in one chunk, as a busy read returns them.
const chunk = (() => {
  const frames = Array.from({ length: 100 }, () => encodeFrame(encodeRaft("counter", heartbeat)));
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
  let offset = 0;
  for (const f of frames) {
    out.set(f, offset);
    offset += f.length;
  }
  return out;
})();
Deno.bench("100 heartbeat frames in one chunk: frame + decode", { group: "frame" }, () => {
  const decoder = new FrameDecoder();
  for (const body of decoder.push(chunk)) decodeBody(body);
});
