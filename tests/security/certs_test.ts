import assert from "node:assert/strict";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createCertificates, isIpLiteral } from "../../lib/security/certs.ts";

Deno.test("certs: IP literals are told apart from DNS names", () => {
  for (const ip of ["127.0.0.1", "10.0.0.255", "::1", "fe80::1"]) assert.ok(isIpLiteral(ip), ip);
  for (const name of ["localhost", "node-1.example", "999.1.1.1"]) {
    assert.ok(!isIpLiteral(name), name);
  }
});

Deno.test("certs: the node certificate names every host and is signed by the CA", async () => {
  const set = await createCertificates({ hosts: ["127.0.0.1", "localhost"], validDays: 30 });
  const ca = new x509.X509Certificate(set.ca.certPem);
  const node = new x509.X509Certificate(set.node.certPem);
  assert.ok(await node.verify({ publicKey: ca.publicKey, signatureOnly: true }));
  assert.equal(node.issuer, ca.subject);
  const san = node.getExtension(x509.SubjectAlternativeNameExtension);
  assert.ok(san !== null);
  const names = san.names.items.map((n) => `${n.type}:${n.value}`).sort();
  assert.deepEqual(names, ["dns:localhost", "ip:127.0.0.1"]);
  assert.match(set.node.keyPem, /^-----BEGIN PRIVATE KEY-----/);
  const days = (node.notAfter.getTime() - node.notBefore.getTime()) / 86_400_000;
  assert.equal(Math.round(days), 30);
});

Deno.test("certs: bad hosts and validity are refused", async () => {
  await assert.rejects(createCertificates({ hosts: [], validDays: 1 }), RangeError);
  await assert.rejects(createCertificates({ hosts: ["a b"], validDays: 1 }), RangeError);
  await assert.rejects(createCertificates({ hosts: ["127.0.0.1"], validDays: 0 }), RangeError);
});

Deno.test("certs: Deno's own TLS accepts them: a client trusting the CA talks to a server", async () => {
  const set = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: set.node.certPem,
    key: set.node.keyPem,
  });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(5);
    let n = 0;
    while (n < 5) {
      const got = await conn.read(buf.subarray(n));
      if (got === null) break;
      n += got;
    }
    await conn.write(buf.subarray(0, n));
    conn.close();
  })();
  const client = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [set.ca.certPem],
  });
  await client.write(new TextEncoder().encode("hello"));
  const back = new Uint8Array(5);
  let n = 0;
  while (n < 5) {
    const got = await client.read(back.subarray(n));
    if (got === null) break;
    n += got;
  }
  assert.equal(new TextDecoder().decode(back), "hello");
  client.close();
  await served;
  listener.close();
  // A client that does not trust the CA is refused.
  const other = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
  const listener2 = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: other.node.certPem,
    key: other.node.keyPem,
  });
  const port2 = (listener2.addr as Deno.NetAddr).port;
  const accepting = listener2.accept().then((c) =>
    c.handshake().catch(() => {}).finally(() => c.close())
  );
  const stranger = await Deno.connectTls({
    hostname: "127.0.0.1",
    port: port2,
    caCerts: [set.ca.certPem],
  });
  await assert.rejects(stranger.handshake());
  stranger.close();
  await accepting;
  listener2.close();
});
