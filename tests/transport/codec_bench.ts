/**
 * Micro-benchmarks of the body codec: each hot message in its MessagePack form (the baseline,
 * what every body used before the binary codec) next to the binary form the encoders now send.
 * Run with `deno bench tests/transport/codec_bench.ts`.
 */

import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import {
  type ClientRequest,
  type ClientResponse,
  decodeBody,
  encodeRaft,
  encodeRaftMessagePack,
  encodeRequest,
  encodeRequestMessagePack,
  encodeResponse,
  encodeResponseMessagePack,
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
const appResp = makeMessage(MessageType.AppResp, {
  from: "10.0.0.2:4000",
  to: "10.0.0.1:4000",
  term: 12,
  index: 100_064,
});
const heartbeat = makeMessage(MessageType.Heartbeat, {
  from: "10.0.0.1:4000",
  to: "10.0.0.2:4000",
  term: 12,
  commit: 99_990,
  context: 7,
});
const incr: ClientRequest = { op: "incr", delta: 1n, clientId: "c-1", seq: 1234, ackedBelow: 1200 };
const incrResponse: ClientResponse = { ok: true, value: 123_456_789n };

type RaftEncoder = (group: string, message: Message) => Uint8Array;
const FORMS: [string, RaftEncoder, typeof encodeRequest, typeof encodeResponse][] = [
  ["MessagePack", encodeRaftMessagePack, encodeRequestMessagePack, encodeResponseMessagePack],
  ["binary", encodeRaft, encodeRequest, encodeResponse],
];

for (const [form, raft, request, response] of FORMS) {
  const baseline = form === "MessagePack";
  Deno.bench(`${form}: App with 64 entries of 16 bytes, encode + decode`, {
    group: "app",
    baseline,
  }, () => {
    decodeBody(raft("counter", app));
  });
  Deno.bench(`${form}: App with 64 entries, encode`, { group: "app encode", baseline }, () => {
    raft("counter", app);
  });
  const appBody = raft("counter", app);
  Deno.bench(`${form}: App with 64 entries, decode`, { group: "app decode", baseline }, () => {
    decodeBody(appBody);
  });
  Deno.bench(`${form}: AppResp, encode + decode`, { group: "appresp", baseline }, () => {
    decodeBody(raft("counter", appResp));
  });
  Deno.bench(`${form}: Heartbeat, encode + decode`, { group: "heartbeat", baseline }, () => {
    decodeBody(raft("counter", heartbeat));
  });
  let requestId = 0;
  Deno.bench(`${form}: incr request, encode + decode`, { group: "incr", baseline }, () => {
    decodeBody(request("counter", ++requestId, incr));
  });
  Deno.bench(`${form}: incr response, encode + decode`, { group: "response", baseline }, () => {
    decodeBody(response("counter", 17, incrResponse));
  });

  // 100 heartbeat frames in one chunk, as a busy read returns them.
  const chunk = (() => {
    const frames = Array.from({ length: 100 }, () => encodeFrame(raft("counter", heartbeat)));
    const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0));
    let offset = 0;
    for (const f of frames) {
      out.set(f, offset);
      offset += f.length;
    }
    return out;
  })();
  Deno.bench(`${form}: 100 heartbeat frames in one chunk, frame + decode`, {
    group: "frame",
    baseline,
  }, () => {
    const decoder = new FrameDecoder();
    for (const body of decoder.push(chunk)) decodeBody(body);
  });
}

// The string cache of the binary decoder: one client (its id hits the cache), 1000 clients (a
// UUID client id per request that misses it, and may evict the group name).
const oneClient = encodeRequest("counter", 1, { ...incr, clientId: crypto.randomUUID() });
const manyClients = Array.from(
  { length: 1000 },
  (_, i) => encodeRequest("counter", i + 1, { ...incr, clientId: crypto.randomUUID() }),
);
let next = 0;
Deno.bench("binary: incr request decode, one client", { group: "client ids" }, () => {
  decodeBody(oneClient);
});
Deno.bench("binary: incr request decode, 1000 clients", { group: "client ids" }, () => {
  decodeBody(manyClients[next]);
  next = (next + 1) % manyClients.length;
});
