/**
 * The server's HELLO gate: peer bodies (RAFT, snapshot chunks and acks) reach the handler only
 * from a connection whose hello the handler accepted, and only from the node that hello named.
 */

import assert from "node:assert/strict";
import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import {
  encodeHello,
  encodePeerHeartbeat,
  encodeRaft,
  encodeRequest,
  encodeSnapshotAck,
  type Hello,
} from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import { HELD_BODIES_MAX, type HelloVerdict, TransportServer } from "../../lib/transport/server.ts";
import { captureLogger, readUntilClosed, sleep, waitFor, writeAll } from "./_helpers.ts";

const LOCAL = { hostname: "127.0.0.1", port: 0 };
const PEER = "10.0.0.2:4000";
const SELF = "10.0.0.1:4000";
const HELLO: Hello = { from: PEER, incarnation: "0123456789abcdef", clusterId: "" };

function heartbeat(term: number, from = PEER): Message {
  return makeMessage(MessageType.Heartbeat, { from, to: SELF, term });
}

function frames(...bodies: Uint8Array[]): Uint8Array {
  return new Uint8Array(bodies.flatMap((body) => [...encodeFrame(body)]));
}

/** A server whose hello verdict is `onHello`; it records hellos and Raft messages. */
function gatedServer(onHello?: (hello: Hello) => HelloVerdict) {
  const { logger, lines } = captureLogger();
  const hellos: Hello[] = [];
  const raft: Message[] = [];
  const acks: number[] = [];
  const server = new TransportServer(LOCAL, {
    onHello: onHello === undefined ? undefined : (_group, hello) => {
      hellos.push(hello);
      return onHello(hello);
    },
    onRaftMessage: (_group, message) => raft.push(message),
    onSnapshotAck: (_group, ack) => acks.push(ack.offset),
    onRequest: (_group, _request, reply) => reply({ ok: true }),
  }, { logger });
  return { server, hellos, raft, acks, lines };
}

async function connect(server: TransportServer): Promise<Deno.TcpConn> {
  return await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
}

Deno.test("a Raft body before any hello closes the connection and reaches nobody", async () => {
  const { server, raft, lines } = gatedServer(() => true);
  const conn = await connect(server);
  await writeAll(conn, frames(encodeRaft("counter", heartbeat(1))));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(raft, []);
  const warn = lines.find((l) => l.msg === "protocol error, closing connection");
  assert.match(String(warn?.reason), /before any hello/);
  await server.close();
});

Deno.test("a snapshot ack before any hello closes the connection", async () => {
  const { server, acks } = gatedServer(() => true);
  const conn = await connect(server);
  const ack = { from: PEER, to: SELF, index: 5, offset: 4, ok: true };
  await writeAll(conn, frames(encodeSnapshotAck("counter", ack)));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(acks, []);
  await server.close();
});

Deno.test("an accepted hello lets the peer's bodies through, in order", async () => {
  const { server, raft, hellos, acks } = gatedServer(() => true);
  const conn = await connect(server);
  const ack = { from: PEER, to: SELF, index: 5, offset: 4, ok: true };
  await writeAll(
    conn,
    frames(
      encodeHello("counter", HELLO),
      encodeRaft("counter", heartbeat(1)),
      encodeSnapshotAck("counter", ack),
      encodeRaft("counter", heartbeat(2)),
    ),
  );
  await waitFor(() => raft.length === 2 && acks.length === 1, 2000, "the bodies");
  assert.deepEqual(hellos, [HELLO]);
  assert.deepEqual(raft.map((m) => m.term), [1, 2]);
  conn.close();
  await server.close();
});

Deno.test("a refused hello closes the connection; nothing it carried is delivered", async () => {
  const { server, raft, hellos } = gatedServer(() => false);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(encodeHello("counter", HELLO), encodeRaft("counter", heartbeat(1))),
  );
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.equal(hellos.length, 1);
  assert.deepEqual(raft, []);
  await server.close();
});

Deno.test("without an onHello handler every hello is refused", async () => {
  const { server, raft } = gatedServer(undefined);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(encodeHello("counter", HELLO), encodeRaft("counter", heartbeat(1))),
  );
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(raft, []);
  await server.close();
});

Deno.test("bodies wait while the hello is decided, then go through in order", async () => {
  let accept!: (ok: boolean) => void;
  const decided = new Promise<boolean>((resolve) => accept = resolve);
  const { server, raft } = gatedServer(() => decided);
  const conn = await connect(server);
  await writeAll(conn, frames(encodeHello("counter", HELLO)));
  for (let term = 1; term <= 3; term++) {
    await writeAll(conn, frames(encodeRaft("counter", heartbeat(term))));
  }
  await sleep(100);
  assert.equal(raft.length, 0, "nothing is delivered before the hello is accepted");
  accept(true);
  await waitFor(() => raft.length === 3, 2000, "the held messages");
  assert.deepEqual(raft.map((m) => m.term), [1, 2, 3]);
  await writeAll(conn, frames(encodeRaft("counter", heartbeat(4))));
  await waitFor(() => raft.length === 4, 2000, "a later message");
  conn.close();
  await server.close();
});

Deno.test("held bodies are bounded and dropped when the hello is refused later", async () => {
  let accept!: (ok: boolean) => void;
  const decided = new Promise<boolean>((resolve) => accept = resolve);
  const { server, raft } = gatedServer(() => decided);
  const conn = await connect(server);
  const many = [];
  for (let term = 1; term <= HELD_BODIES_MAX + 10; term++) {
    many.push(encodeRaft("counter", heartbeat(term)));
  }
  await writeAll(conn, frames(encodeHello("counter", HELLO), ...many));
  await sleep(100);
  accept(false);
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(raft, []);
  await server.close();
});

Deno.test("a Raft body from another node than the hello's closes the connection", async () => {
  const { server, raft } = gatedServer(() => true);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(
      encodeHello("counter", HELLO),
      encodeRaft("counter", heartbeat(1)),
      encodeRaft("counter", heartbeat(2, "10.0.0.3:4000")),
      encodeRaft("counter", heartbeat(3)),
    ),
  );
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(raft.map((m) => m.term), [1]);
  await server.close();
});

Deno.test("a Raft body for another group than the hello's closes the connection", async () => {
  const { server, raft } = gatedServer(() => true);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(encodeHello("counter", HELLO), encodeRaft("other", heartbeat(1))),
  );
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(raft, []);
  await server.close();
});

Deno.test("a second hello for one group is judged again; the connection stays", async () => {
  const { server, hellos, raft } = gatedServer(() => true);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(
      encodeHello("counter", HELLO),
      encodeHello("counter", HELLO),
      encodeRaft("counter", heartbeat(1)),
    ),
  );
  await waitFor(() => raft.length === 1, 2000, "the heartbeat");
  assert.equal(hellos.length, 2);
  conn.close();
  await server.close();
});

Deno.test("a hello from another node on the same connection closes it", async () => {
  const { server, hellos } = gatedServer(() => true);
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(
      encodeHello("counter", HELLO),
      encodeHello("orders", { ...HELLO, from: "10.0.0.3:4000" }),
    ),
  );
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.equal(hellos.length, 1);
  await server.close();
});

Deno.test("one connection carries several groups, each after its own hello", async () => {
  const groups: string[] = [];
  const { logger } = captureLogger();
  const server = new TransportServer(LOCAL, {
    onHello: () => true,
    onRaftMessage: (group, message) => groups.push(`${group}:${message.term}`),
    onRequest: (_group, _request, reply) => reply({ ok: true }),
  }, { logger });
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(
      encodeHello("a", HELLO),
      encodeRaft("a", heartbeat(1)),
      encodeHello("b", HELLO),
      encodeRaft("b", heartbeat(2)),
      encodeRaft("a", heartbeat(3)),
    ),
  );
  await waitFor(() => groups.length === 3, 2000, "three messages");
  assert.deepEqual(groups, ["a:1", "b:2", "a:3"]);
  assert.equal(server.peerConnectionCount, 1);
  // A group that never said hello on this connection is a protocol error, as before.
  await writeAll(conn, frames(encodeRaft("c", heartbeat(4))));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(groups, ["a:1", "b:2", "a:3"]);
  await server.close();
});

Deno.test("a refused group's bodies are dropped while an accepted group keeps the connection", async () => {
  const groups: string[] = [];
  let acceptB = false;
  const server = new TransportServer(LOCAL, {
    onHello: (group) => group === "a" || acceptB,
    onRaftMessage: (group, message) => groups.push(`${group}:${message.term}`),
    onRequest: (_group, _request, reply) => reply({ ok: true }),
  });
  const conn = await connect(server);
  await writeAll(
    conn,
    frames(
      encodeHello("a", HELLO),
      encodeHello("b", HELLO),
      encodeRaft("b", heartbeat(1)),
      encodeRaft("a", heartbeat(2)),
    ),
  );
  await waitFor(() => groups.length === 1, 2000, "group a's message");
  assert.deepEqual(groups, ["a:2"]);
  // The dialer repeats b's hello later; once accepted, b's bodies flow on the same connection.
  acceptB = true;
  await writeAll(conn, frames(encodeHello("b", HELLO), encodeRaft("b", heartbeat(3))));
  await waitFor(() => groups.length === 2, 2000, "group b's message");
  assert.deepEqual(groups, ["a:2", "b:3"]);
  conn.close();
  await server.close();
});

Deno.test("client requests need no hello", async () => {
  const { server } = gatedServer(() => false);
  const conn = await connect(server);
  await writeAll(conn, frames(encodeRequest("counter", 1, { op: "get" })));
  const buffer = new Uint8Array(256);
  const n = await conn.read(buffer);
  assert.ok(n !== null && n > 0, "the request was answered");
  conn.close();
  await server.close();
});

Deno.test("a node heartbeat passes the hello gate like any peer body", async () => {
  const beats: string[] = [];
  const { logger } = captureLogger();
  const server = new TransportServer(LOCAL, {
    onHello: () => true,
    onRaftMessage: () => {},
    onPeerHeartbeat: (group, hb) => beats.push(`${group}:${hb.from}`),
    onRequest: (_group, _request, reply) => reply({ ok: true }),
  }, { logger });
  const beat = (from: string) => encodePeerHeartbeat("counter", { from, to: SELF });
  // Before any hello: the connection is closed, nothing delivered.
  const early = await connect(server);
  await writeAll(early, frames(beat(PEER)));
  assert.equal((await readUntilClosed(early, 2000)).length, 0);
  // After the hello: delivered; one naming another sender closes the connection.
  const conn = await connect(server);
  await writeAll(conn, frames(encodeHello("counter", HELLO), beat(PEER), beat("10.0.0.3:4000")));
  assert.equal((await readUntilClosed(conn, 2000)).length, 0);
  assert.deepEqual(beats, [`counter:${PEER}`]);
  await server.close();
});
