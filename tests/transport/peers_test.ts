import assert from "node:assert/strict";
import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import { encodeHello, encodePeerHeartbeat } from "../../lib/transport/codec.ts";
import { HELLO_REPEAT_MS, PeerSender } from "../../lib/transport/peers.ts";
import { TransportServer } from "../../lib/transport/server.ts";
import { captureLogger, freePort, sleep, waitFor } from "./_helpers.ts";

const SELF = "127.0.0.1:1";
const HELLO = () =>
  encodeHello("counter", { from: SELF, incarnation: "0123456789abcdef", clusterId: "" });

function heartbeat(to: string, term: number): Message {
  return makeMessage(MessageType.Heartbeat, { from: SELF, to, term, commit: term });
}

/** A server that records the Raft messages it receives. */
function raftServer(port = 0): { server: TransportServer; received: Message[] } {
  const received: Message[] = [];
  const server = new TransportServer({ hostname: "127.0.0.1", port }, {
    onHello: () => true,
    onRaftMessage: (_group, message) => received.push(message),
    onRequest: (_group, _request, reply) => reply({ ok: false, code: "UNKNOWN_OP" }),
  });
  return { server, received };
}

function transitions(lines: Record<string, unknown>[]): string[] {
  return lines.filter((l) => l.msg === "peer up" || l.msg === "peer down").map((l) =>
    String(l.msg)
  );
}

Deno.test("messages sent before the connection is open are delivered once it is", async () => {
  const { logger, lines } = captureLogger();
  const { server, received } = raftServer();
  const peers = new PeerSender({ hello: HELLO, logger });
  for (let term = 1; term <= 5; term++) {
    assert.equal(peers.send(server.address, "counter", heartbeat(server.address, term)), true);
  }
  await waitFor(() => received.length === 5, 2000, "five messages");
  assert.deepEqual(received.map((m) => m.term), [1, 2, 3, 4, 5]);
  assert.equal(peers.isUp(server.address), true);
  assert.deepEqual(transitions(lines), ["peer up"]);
  const up = lines.find((l) => l.msg === "peer up")!;
  assert.equal(up.level, "info");
  assert.equal(up.peer, server.address);
  await peers.close();
  await server.close();
});

Deno.test("an unreachable peer costs dropped messages and one log line, not an error", async () => {
  const { logger, lines } = captureLogger();
  const address = `127.0.0.1:${freePort()}`;
  const peers = new PeerSender({ hello: HELLO, logger, backoffMsInitial: 20, backoffMsMax: 40 });
  peers.send(address, "counter", heartbeat(address, 1));
  await waitFor(() => transitions(lines).length === 1, 2000, "peer down");
  // Keep sending through several failed reconnects.
  const start = Date.now();
  let dropped = 0;
  while (Date.now() - start < 200) {
    if (!peers.send(address, "counter", heartbeat(address, 2))) dropped++;
    await sleep(5);
  }
  assert.ok(dropped > 0);
  assert.deepEqual(transitions(lines), ["peer down"], "logged once, not per attempt");
  const [stats] = peers.stats();
  assert.equal(stats.id, address);
  assert.equal(stats.up, false);
  assert.ok(stats.dropped >= dropped);
  await peers.close();
});

Deno.test("the sender reconnects after the peer's server restarts", async () => {
  const { logger, lines } = captureLogger();
  let { server, received } = raftServer();
  const address = server.address;
  const port = server.hostPort.port;
  const peers = new PeerSender({ hello: HELLO, logger, backoffMsInitial: 10, backoffMsMax: 100 });
  peers.send(address, "counter", heartbeat(address, 1));
  await waitFor(() => received.length === 1, 2000, "the first message");

  await server.close();
  await waitFor(() => !peers.isUp(address), 2000, "the connection to drop");
  // While the peer is down, sends are dropped or fail to connect.
  for (let i = 0; i < 5; i++) {
    peers.send(address, "counter", heartbeat(address, 2));
    await sleep(10);
  }

  ({ server, received } = raftServer(port));
  // Raft keeps sending; one of these gets through once the backoff allows a reconnect.
  const start = Date.now();
  while (received.length === 0) {
    assert.ok(Date.now() - start < 5000, "reconnected within 5 s");
    peers.send(address, "counter", heartbeat(address, 3));
    await sleep(10);
  }
  assert.equal(received[0].term, 3);
  assert.deepEqual(transitions(lines), ["peer up", "peer down", "peer up"]);
  assert.ok(peers.stats()[0].dropped > 0);
  await peers.close();
  await server.close();
});

Deno.test("backoff doubles with jitter from the injected source, up to the maximum", async () => {
  const address = `127.0.0.1:${freePort()}`;
  let draws = 0;
  // Jitter 0 gives half of each delay: 40, 80, 160, 160 (capped) ms give 20, 40, 80, 80 ms.
  const peers = new PeerSender({
    hello: HELLO,
    backoffMsInitial: 40,
    backoffMsMax: 160,
    random: () => {
      draws++;
      return 0;
    },
  });
  const attempts: number[] = [];
  const start = Date.now();
  let accepting = false;
  while (attempts.length < 5 && Date.now() - start < 3000) {
    // Sends are queued while a connection attempt runs and dropped during backoff, so a send
    // accepted after a dropped one marks the start of a new attempt.
    const accepted = peers.send(address, "counter", heartbeat(address, 1));
    if (accepted && !accepting) attempts.push(Date.now() - start);
    accepting = accepted;
    await sleep(2);
  }
  assert.equal(attempts.length, 5);
  const gaps = attempts.slice(1).map((t, i) => t - attempts[i]);
  // A gap is the delay plus connect time and polling: never shorter than the delay.
  assert.ok(gaps[0] >= 20 && gaps[1] >= 40 && gaps[2] >= 80 && gaps[3] >= 80, `gaps ${gaps}`);
  // Without the cap the fourth delay would be 160 ms.
  assert.ok(gaps[3] < 160, `capped at 80 ms, got ${gaps[3]}`);
  assert.ok(draws >= 4);
  await peers.close();
});

Deno.test("the queue while connecting is bounded; overflow is dropped and counted", async () => {
  const { server, received } = raftServer();
  const frameBytesMax = 1024;
  const peers = new PeerSender({
    hello: HELLO,
    frameBytesMax,
    queueBytesMax: 4 * (frameBytesMax + 4),
  });
  // About 920-byte bodies: four fit the queue, a fifth does not. (Not right at a frame: once the
  // connection opens, the hello goes ahead of them into the connection's queue of the same size.)
  const entries = [{ term: 1, index: 1, type: 0, data: new Uint8Array(800) }];
  const big = makeMessage(MessageType.App, { from: SELF, to: server.address, term: 1, entries });
  let queued = 0;
  // All sent in one tick, before the connection can open.
  for (let i = 0; i < 10; i++) if (peers.send(server.address, "counter", big)) queued++;
  assert.equal(queued, 4);
  assert.equal(peers.stats()[0].dropped, 6);
  await waitFor(() => received.length === 4, 2000, "the queued messages");
  await peers.close();
  await server.close();
});

Deno.test("a message larger than a frame is dropped with a warning", async () => {
  const { logger, lines } = captureLogger();
  const peers = new PeerSender({ hello: HELLO, logger, frameBytesMax: 256, queueBytesMax: 1024 });
  const address = `127.0.0.1:${freePort()}`;
  const entries = [{ term: 1, index: 1, type: 0, data: new Uint8Array(300) }];
  const big = makeMessage(MessageType.App, { from: SELF, to: address, term: 1, entries });
  assert.equal(peers.send(address, "counter", big), false);
  assert.ok(
    lines.some((l) => l.level === "warn" && l.msg === "message larger than a frame, dropped"),
  );
  assert.equal(peers.stats()[0].dropped, 1);
  await peers.close();
});

Deno.test("removePeer closes that peer's connection; close() stops everything", async () => {
  const { server, received } = raftServer();
  const peers = new PeerSender({ hello: HELLO });
  peers.send(server.address, "counter", heartbeat(server.address, 1));
  await waitFor(() => received.length === 1, 2000, "a message");
  await waitFor(() => server.connectionCount === 1, 2000, "one connection");
  await peers.removePeer(server.address);
  await waitFor(() => server.connectionCount === 0, 2000, "the connection to close");
  assert.deepEqual(peers.stats(), []);
  await peers.close();
  assert.equal(peers.send(server.address, "counter", heartbeat(server.address, 2)), false);
  await server.close();
});

Deno.test("close() during a connection attempt waits for it and leaves nothing open", async () => {
  const { server } = raftServer();
  const peers = new PeerSender({ hello: HELLO });
  peers.send(server.address, "counter", heartbeat(server.address, 1));
  await peers.close();
  await server.close();
});

Deno.test("several groups share one connection, each announced by its own hello", async () => {
  const got: string[] = [];
  const hellos: string[] = [];
  const server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
    onHello: (group) => {
      hellos.push(group);
      return true;
    },
    onRaftMessage: (group, message) => got.push(`${group}:${message.term}`),
    onRequest: (_group, _request, reply) => reply({ ok: false, code: "UNKNOWN_OP" }),
  });
  let nowMs = 0;
  const peers = new PeerSender({
    now: () => nowMs,
    hello: (group) =>
      group === "off"
        ? null
        : encodeHello(group, { from: SELF, incarnation: "0123456789abcdef", clusterId: "" }),
  });
  peers.send(server.address, "a", heartbeat(server.address, 1));
  peers.send(server.address, "b", heartbeat(server.address, 2));
  await waitFor(() => got.length === 2, 2000, "two messages");
  // A group with no hello (not running on this side) is dropped, not sent bare.
  assert.equal(peers.send(server.address, "off", heartbeat(server.address, 9)), false);
  peers.send(server.address, "a", heartbeat(server.address, 3));
  await waitFor(() => got.length === 3, 2000, "a third message");
  assert.deepEqual(got, ["a:1", "b:2", "a:3"]);
  assert.deepEqual(hellos, ["a", "b"]);
  assert.equal(server.connectionCount, 1);
  // After HELLO_REPEAT_MS the next body of a group goes with its hello again.
  nowMs += HELLO_REPEAT_MS;
  peers.send(server.address, "b", heartbeat(server.address, 4));
  await waitFor(() => got.length === 4, 2000, "a fourth message");
  assert.deepEqual(hellos, ["a", "b", "b"]);
  await peers.close();
  await server.close();
});

Deno.test("node heartbeats go only to peers sent nothing since the last round, under their last group", async () => {
  const beats: string[] = [];
  const got: string[] = [];
  const server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
    onHello: () => true,
    onRaftMessage: (group, message) => got.push(`${group}:${message.term}`),
    onPeerHeartbeat: (group, hb) => beats.push(`${group}:${hb.from}->${hb.to}`),
    onRequest: (_group, _request, reply) => reply({ ok: false, code: "UNKNOWN_OP" }),
  });
  const up: string[] = [];
  const peers = new PeerSender({
    hello: (group) =>
      encodeHello(group, { from: SELF, incarnation: "0123456789abcdef", clusterId: "" }),
    onPeerUp: (peer) => up.push(peer),
  });
  const to = server.address;
  const beat = (peer: string, group: string) =>
    encodePeerHeartbeat(group, { from: SELF, to: peer });
  assert.equal(peers.beatIdlePeers(beat), 0, "no peer was ever sent anything");
  peers.send(to, "a", heartbeat(to, 1));
  peers.send(to, "b", heartbeat(to, 2));
  assert.equal(peers.beatIdlePeers(beat), 0, "the peer was sent bodies since the last round");
  assert.equal(peers.beatIdlePeers(beat), 1, "nothing since: one heartbeat");
  assert.equal(peers.beatIdlePeers(beat), 1, "a heartbeat is no traffic for the next round");
  await waitFor(() => got.length === 2 && beats.length === 2, 2000, "bodies and heartbeats");
  assert.deepEqual(beats, [`b:${SELF}->${to}`, `b:${SELF}->${to}`]);
  assert.deepEqual(up, [to], "one connection came up");
  const stats = peers.stats()[0];
  assert.equal(stats.sent, 2);
  assert.equal(stats.heartbeats, 2);
  await peers.close();
  await server.close();
});
