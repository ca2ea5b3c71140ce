import assert from "node:assert/strict";
import {
  type HelloContext,
  type IdentityStore,
  judgeHello,
  PEER_WARN_INTERVAL_MS,
  PeerGate,
} from "../../lib/counter/peer_identity.ts";
import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import { encodeHello, encodeRaft, type Hello } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import { TransportServer } from "../../lib/transport/server.ts";
import { captureLogger, readUntilClosed, waitFor, writeAll } from "../transport/_helpers.ts";

const A = "127.0.0.1:7001";
const B = "127.0.0.1:7002";
const C = "127.0.0.1:7003";
const CLUSTER = "0123456789abcdef";
const INC_B = "bbbbbbbbbbbbbbbb";
const INC_B2 = "bbbbbbbbbbbbbbb2";

const CTX: HelloContext = {
  self: A,
  group: "counter",
  clusterId: CLUSTER,
  members: new Set([A, B, C]),
  recorded: undefined,
};

function hello(overrides: Partial<Hello> = {}): Hello {
  return { from: B, incarnation: INC_B, clusterId: CLUSTER, ...overrides };
}

Deno.test("judgeHello: a member never heard of is recorded; the same incarnation is accepted", () => {
  assert.deepEqual(judgeHello(hello(), "counter", CTX), { verdict: "record" });
  assert.deepEqual(judgeHello(hello(), "counter", { ...CTX, recorded: INC_B }), {
    verdict: "accept",
  });
});

Deno.test("judgeHello: another incarnation under a recorded id is refused", () => {
  assert.deepEqual(
    judgeHello(hello({ incarnation: INC_B2 }), "counter", { ...CTX, recorded: INC_B }),
    {
      verdict: "refuse",
      reason: "incarnation",
    },
  );
});

Deno.test("judgeHello: a new dir replaces the record of a learner whose addition never committed", () => {
  const changed = hello({ incarnation: INC_B2 });
  // B is a learner of the latest configuration only: settled are A and C.
  const unsettled = { ...CTX, recorded: INC_B, settled: new Set([A, C]) };
  assert.deepEqual(judgeHello(changed, "counter", unsettled), { verdict: "record" });
  // A committed member, or a voter of the latest configuration, is bound to its record.
  const settled = { ...CTX, recorded: INC_B, settled: new Set([A, B, C]) };
  assert.deepEqual(judgeHello(changed, "counter", settled), {
    verdict: "refuse",
    reason: "incarnation",
  });
  // Without a configuration nothing is settled, and every record binds.
  assert.deepEqual(judgeHello(changed, "counter", { ...CTX, recorded: INC_B, settled: null }), {
    verdict: "refuse",
    reason: "incarnation",
  });
});

Deno.test("judgeHello: another cluster is refused only when both sides know theirs", () => {
  const other = hello({ clusterId: "ffffffffffffffff" });
  assert.deepEqual(judgeHello(other, "counter", CTX), { verdict: "refuse", reason: "cluster" });
  assert.deepEqual(judgeHello(other, "counter", { ...CTX, clusterId: "" }), { verdict: "record" });
  assert.deepEqual(judgeHello(hello({ clusterId: "" }), "counter", CTX), { verdict: "record" });
});

Deno.test("judgeHello: non-members, this node's own id and other groups are refused", () => {
  const stranger = hello({ from: "127.0.0.1:7999" });
  assert.deepEqual(judgeHello(stranger, "counter", CTX), { verdict: "refuse", reason: "member" });
  // A node that has no configuration yet (started with --join) cannot tell members apart.
  assert.deepEqual(judgeHello(stranger, "counter", { ...CTX, members: null }), {
    verdict: "record",
  });
  assert.deepEqual(judgeHello(hello({ from: A }), "counter", CTX), {
    verdict: "refuse",
    reason: "self",
  });
  assert.deepEqual(judgeHello(hello(), "other", CTX), { verdict: "refuse", reason: "group" });
});

/** An in-memory store whose saves resolve when the test says so. */
class StubStore implements IdentityStore {
  peers = new Map<string, string>();
  cluster = CLUSTER;
  pendingSaves: Array<() => void> = [];
  incarnation(): string {
    return "aaaaaaaaaaaaaaaa";
  }
  clusterId(): string {
    return this.cluster;
  }
  saveClusterId(id: string): Promise<void> {
    this.cluster = id;
    return Promise.resolve();
  }
  peerIncarnation(id: string): string | undefined {
    return this.peers.get(id);
  }
  savePeerIncarnation(id: string, incarnation: string): Promise<void> {
    return new Promise((resolve) => {
      this.pendingSaves.push(() => {
        this.peers.set(id, incarnation);
        resolve();
      });
    });
  }
  forgetPeerIncarnations(keep: ReadonlySet<string>): void {
    for (const id of [...this.peers.keys()]) if (!keep.has(id)) this.peers.delete(id);
  }
}

function gate(store: StubStore, nowMs: { value: number } = { value: 0 }) {
  const { logger, lines } = captureLogger();
  const g = new PeerGate({
    self: A,
    group: "counter",
    store,
    members: () => new Set([A, B, C]),
    logger,
    now: () => nowMs.value,
  });
  return { g, lines };
}

Deno.test("PeerGate accepts a new peer only once its incarnation is durable", async () => {
  const store = new StubStore();
  const { g } = gate(store);
  const verdict = g.onHello("counter", hello());
  assert.ok(verdict instanceof Promise);
  let settled = false;
  verdict.then(() => settled = true);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(settled, false, "not accepted before the save resolves");
  // A second connection from the same data dir waits for the same save.
  const second = g.onHello("counter", hello());
  assert.ok(second instanceof Promise);
  // Another data dir under the same id meanwhile is refused.
  assert.equal(g.onHello("counter", hello({ incarnation: INC_B2 })), false);
  assert.equal(store.pendingSaves.length, 1);
  store.pendingSaves[0]();
  assert.equal(await verdict, true);
  assert.equal(await second, true);
  assert.equal(store.peers.get(B), INC_B);
  assert.equal(g.onHello("counter", hello()), true);
  assert.equal(g.clusterIdOf(B), CLUSTER);
});

Deno.test("PeerGate warns about a changed incarnation once a minute, with the commands", () => {
  const store = new StubStore();
  store.peers.set(B, INC_B);
  const nowMs = { value: 0 };
  const { g, lines } = gate(store, nowMs);
  const warnings = () => lines.filter((l) => l.level === "warn");
  assert.equal(g.onHello("counter", hello({ incarnation: INC_B2 })), false);
  assert.equal(g.onHello("counter", hello({ incarnation: INC_B2 })), false);
  assert.equal(warnings().length, 1);
  const msg = String(warnings()[0].msg);
  assert.ok(!msg.includes("\n"));
  assert.match(
    msg,
    new RegExp(
      `^${B} came back with a different data dir \\(incarnation ${INC_B2}, was ${INC_B}\\): its data was lost; replace it: `,
    ),
  );
  assert.ok(msg.includes(`counter peers remove ${B} --peers ${A},${C}`), msg);
  assert.ok(msg.includes(`counter peers add ${B} --peers ${A},${C}`), msg);
  nowMs.value += PEER_WARN_INTERVAL_MS;
  assert.equal(g.onHello("counter", hello({ incarnation: INC_B2 })), false);
  assert.equal(warnings().length, 2);
  // The record is untouched.
  assert.equal(store.peers.get(B), INC_B);
});

Deno.test("PeerGate warns once per peer about another cluster", () => {
  const store = new StubStore();
  const { g, lines } = gate(store);
  for (let i = 0; i < 3; i++) {
    assert.equal(g.onHello("counter", hello({ clusterId: "ffffffffffffffff" })), false);
  }
  const warns = lines.filter((l) => l.level === "warn");
  assert.equal(warns.length, 1);
  assert.equal(
    warns[0].msg,
    `peer ${B} belongs to cluster ffffffffffffffff, not ours (${CLUSTER})`,
  );
});

Deno.test("after a removal forgets a peer, its new incarnation is recorded afresh", async () => {
  const store = new StubStore();
  store.peers.set(B, INC_B);
  const { g } = gate(store);
  assert.equal(g.onHello("counter", hello({ incarnation: INC_B2 })), false);
  store.forgetPeerIncarnations(new Set([A, C]));
  const verdict = g.onHello("counter", hello({ incarnation: INC_B2 }));
  assert.ok(verdict instanceof Promise);
  store.pendingSaves[0]();
  assert.equal(await verdict, true);
  assert.equal(store.peers.get(B), INC_B2);
});

/** A server gated by a PeerGate over `store`; records the Raft messages that get through. */
function gatedNode(store: StubStore) {
  const { logger, lines } = captureLogger();
  const gate = new PeerGate({
    self: A,
    group: "counter",
    store,
    members: () => new Set([A, B, C]),
    logger,
  });
  const raft: Message[] = [];
  const server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
    onHello: (group, h) => gate.onHello(group, h),
    onRaftMessage: (_group, m) => raft.push(m),
    onRequest: (_group, _req, reply) => reply({ ok: true }),
  }, { logger });
  return { server, raft, lines };
}

async function knock(server: TransportServer, h: Hello): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
  const heartbeat = makeMessage(MessageType.Heartbeat, { from: h.from, to: A, term: 1 });
  await writeAll(
    conn,
    new Uint8Array([
      ...encodeFrame(encodeHello("counter", h)),
      ...encodeFrame(encodeRaft("counter", heartbeat)),
    ]),
  );
  return (await readUntilClosed(conn, 2000)).length;
}

Deno.test("over TCP: another cluster, another incarnation or a non-member is shut out", async () => {
  const store = new StubStore();
  store.peers.set(B, INC_B);
  const { server, raft, lines } = gatedNode(store);
  try {
    assert.equal(await knock(server, hello({ clusterId: "ffffffffffffffff" })), 0);
    assert.equal(await knock(server, hello({ incarnation: INC_B2 })), 0);
    assert.equal(await knock(server, hello({ from: "127.0.0.1:7999" })), 0);
    assert.equal(raft.length, 0, "nothing from a refused connection reaches the core");
    const warns = lines.filter((l) => l.level === "warn").map((l) => String(l.msg));
    assert.equal(warns.length, 2);
    assert.match(warns[0], /belongs to cluster ffffffffffffffff/);
    assert.match(warns[1], /came back with a different data dir/);
    // The recorded incarnation gets through.
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.hostPort.port });
    const heartbeat = makeMessage(MessageType.Heartbeat, { from: B, to: A, term: 1 });
    await writeAll(
      conn,
      new Uint8Array([
        ...encodeFrame(encodeHello("counter", hello())),
        ...encodeFrame(encodeRaft("counter", heartbeat)),
      ]),
    );
    await waitFor(() => raft.length === 1, 2000, "the heartbeat");
    conn.close();
  } finally {
    await server.close();
  }
});
