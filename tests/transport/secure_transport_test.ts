/**
 * The transport with the security switches, over real sockets: the peer handshake between a
 * PeerSender and a TransportServer, client roles at the server, and TLS between them.
 */

import assert from "node:assert/strict";
import { makeMessage, type Message, MessageType } from "../../lib/raft/types.ts";
import { encodeHello } from "../../lib/transport/codec.ts";
import { PeerSender } from "../../lib/transport/peers.ts";
import { TransportServer } from "../../lib/transport/server.ts";
import { RpcClientConnection, RpcError } from "../../lib/transport/client_conn.ts";
import { PeerAuthenticator } from "../../lib/security/peer_auth.ts";
import { ClientAuthenticator } from "../../lib/security/client_auth.ts";
import { createCertificates } from "../../lib/security/certs.ts";
import { captureLogger, sleep } from "./_helpers.ts";

const enc = new TextEncoder();
const TOKEN = enc.encode("cluster-secret-0123456789abcdef");
const GROUP = "counter";

/** A server that accepts every hello and records Raft messages, with the given options. */
function peerServer(
  self: (port: number) => string,
  options: ConstructorParameters<typeof TransportServer>[2],
) {
  const raft: Message[] = [];
  const server = new TransportServer({ hostname: "127.0.0.1", port: 0 }, {
    onHello: () => true,
    onRaftMessage: (_group, message) => raft.push(message),
    onRequest: (_group, _request, reply) => reply({ ok: true, value: 42n }),
  }, options);
  return { server, raft, id: self(server.hostPort.port) };
}

async function sendHeartbeat(
  sender: PeerSender,
  from: string,
  to: string,
): Promise<void> {
  const message = makeMessage(MessageType.Heartbeat, { from, to, term: 3 });
  sender.send(to, GROUP, message);
  await sleep(0);
}

Deno.test("peer handshake over TCP: the same token delivers, another token delivers nothing", async () => {
  const FROM = "127.0.0.1:1";
  for (const [senderToken, delivered] of [[TOKEN, true], [enc.encode("x".repeat(32)), false]]) {
    const { logger, lines } = captureLogger();
    // The acceptor's id is its real address, which the dialer names as `to`.
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const to = `127.0.0.1:${port}`;
    const raft: Message[] = [];
    const server = new TransportServer({ hostname: "127.0.0.1", port }, {
      onHello: () => true,
      onRaftMessage: (_group, message) => raft.push(message),
      onRequest: (_group, _request, reply) => reply({ ok: true }),
    }, { logger, peerAuth: await PeerAuthenticator.create(TOKEN, GROUP, to) });
    const sender = new PeerSender({
      logger,
      peerAuth: await PeerAuthenticator.create(senderToken as Uint8Array, GROUP, FROM),
      hello: () =>
        encodeHello(GROUP, { from: FROM, incarnation: "0123456789abcdef", clusterId: "" }),
    });
    try {
      if (delivered) {
        for (let i = 0; i < 50 && raft.length === 0; i++) {
          await sendHeartbeat(sender, FROM, to);
          await sleep(100);
        }
        assert.equal(raft[0].from, FROM);
      } else {
        for (let i = 0; i < 5; i++) {
          await sendHeartbeat(sender, FROM, to);
          await sleep(100);
        }
        assert.deepEqual(raft, []);
        assert.ok(lines.some((l) => l.msg === "peer failed the handshake"), JSON.stringify(lines));
      }
    } finally {
      await sender.close();
      await server.close();
    }
  }
});

Deno.test("TLS: a client trusting the CA is served; a plain client or another CA fails as tls", async () => {
  const set = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
  const other = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
  const { logger } = captureLogger();
  const clientAuth = await ClientAuthenticator.create(GROUP, {});
  const { server } = peerServer((p) => `127.0.0.1:${p}`, {
    logger,
    tls: { certPem: set.node.certPem, keyPem: set.node.keyPem },
    clientAuth,
  });
  const address = server.address;
  try {
    const good = await RpcClientConnection.connect(address, { tls: { caPems: [set.ca.certPem] } });
    try {
      const response = await good.call(GROUP, { op: "get" }, 2000);
      assert.equal(response.value, 42n);
    } finally {
      await good.close();
    }
    await assert.rejects(
      RpcClientConnection.connect(address, { tls: { caPems: [other.ca.certPem] } }),
      (err: unknown) => err instanceof RpcError && err.reason === "tls" && !err.sent,
    );
    const plain = await RpcClientConnection.connect(address);
    try {
      await assert.rejects(
        plain.call(GROUP, { op: "get" }, 2000),
        (err: unknown) =>
          err instanceof RpcError && err.reason === "tls" && /serves TLS/.test(err.message),
      );
    } finally {
      await plain.close();
    }
  } finally {
    await server.close();
  }
});
