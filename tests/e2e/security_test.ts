/**
 * End-to-end: a three-node group with TLS, a cluster token, a client token and an admin token,
 * as real `counter serve` processes, driven through the CLI. One cluster serves every check, so
 * the file stays fast.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import { createCertificates } from "../../lib/security/certs.ts";
import { encodeHello, encodePeerAuth, encodeRaft } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import { EntryType, makeMessage, MessageType } from "../../lib/raft/types.ts";
import { CounterStateMachine } from "../../lib/counter/state_machine.ts";
import { cli, dumpClusterLogs, sleep } from "./_cluster_helpers.ts";

const enc = new TextEncoder();

/** Writes `frames` on a TLS connection that trusts `caPem`; resolves once the node closed it. */
async function strangerSends(id: string, caPem: string, frames: Uint8Array[]): Promise<void> {
  const [hostname, port] = id.split(":");
  const conn = await Deno.connectTls({ hostname, port: Number(port), caCerts: [caPem] });
  try {
    for (const frame of frames) await conn.write(frame);
    const timer = setTimeout(() => conn.close(), 5000);
    const buf = new Uint8Array(1024);
    let closedByNode = false;
    try {
      // The node may send its challenge first; then it closes the connection.
      while ((await conn.read(buf)) !== null) { /* drain */ }
      closedByNode = true;
    } catch {
      closedByNode = true;
    } finally {
      clearTimeout(timer);
    }
    assert.ok(closedByNode, "the node closes the stranger's connection");
  } finally {
    try {
      conn.close();
    } catch {
      // Already closed.
    }
  }
}

Deno.test("e2e security: TLS, peer handshake and client roles on a real group", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "counter-security-" });
  const certs = join(dir, "certs");
  const files = {
    ca: join(certs, "ca.crt"),
    cert: join(certs, "node.crt"),
    key: join(certs, "node.key"),
    cluster: join(dir, "cluster.token"),
    client: join(dir, "client.token"),
    admin: join(dir, "admin.token"),
  };
  let cluster: LocalCluster | null = null;
  try {
    await t.step(
      "counter certs writes the files, keys 0600, and refuses to overwrite",
      async () => {
        const r = await cli(["certs", "--out", certs, "--hosts", "127.0.0.1,localhost"]);
        assert.equal(r.code, 0, r.stderr);
        for (const name of ["ca.crt", "ca.key", "node.crt", "node.key"]) {
          const info = await Deno.stat(join(certs, name));
          if (name.endsWith(".key")) assert.equal(info.mode! & 0o777, 0o600, name);
        }
        const again = await cli(["certs", "--out", certs, "--hosts", "127.0.0.1"]);
        assert.equal(again.code, 1);
        assert.match(again.stderr, /^counter certs: .*already exist; give --force to overwrite\n$/);
      },
    );

    await Deno.writeTextFile(files.cluster, "cluster-secret-0123456789abcdef\n");
    await Deno.writeTextFile(files.client, "client-secret-0123456789abcdef\n");
    await Deno.writeTextFile(files.admin, "admin-secret-0123456789abcdef\n");
    const caPem = await Deno.readTextFile(files.ca);
    cluster = await LocalCluster.start({
      nodes: 3,
      serveArgs: [
        "--tls-cert",
        files.cert,
        "--tls-key",
        files.key,
        "--tls-ca",
        files.ca,
        "--cluster-token-file",
        files.cluster,
        "--client-token-file",
        files.client,
        "--admin-token-file",
        files.admin,
        // Long: a step checks that forged messages leave the term alone, and a loaded machine
        // that stalls a node past a short timeout would start a real election meanwhile.
        "--election-timeout-ms",
        "2000",
      ],
      clientTls: { caPems: [caPem] },
      clientToken: enc.encode("admin-secret-0123456789abcdef"),
    });
    const running = cluster;
    const leader = await running.waitForLeader(20_000);
    const peers = ["--peers", running.ids.join(",")];
    const asClient = [...peers, "--tls-ca", files.ca, "--token-file", files.client];

    await t.step("a client with --tls-ca and the client token increments and reads", async () => {
      const incr = await cli(["incr", "5", ...asClient]);
      assert.equal(incr.code, 0, incr.stderr);
      assert.equal(incr.stdout.trim(), "5");
      const get = await cli(["get", ...peers], {
        COUNTER_TLS_CA: files.ca,
        COUNTER_TOKEN_FILE: files.client,
      });
      assert.equal(get.code, 0, get.stderr);
      assert.equal(get.stdout.trim(), "5");
    });

    await t.step(
      "a plain client, or one trusting another CA, fails at once with one line",
      async () => {
        const started = Date.now();
        const plain = await cli(["incr", "1", ...peers, "--token-file", files.client]);
        assert.equal(plain.code, 1);
        assert.match(plain.stderr, /^counter incr: .*serves TLS; give --tls-ca FILE[^\n]*\n$/);
        const other = await createCertificates({ hosts: ["127.0.0.1"], validDays: 1 });
        const otherCa = join(dir, "other-ca.crt");
        await Deno.writeTextFile(otherCa, other.ca.certPem);
        const wrong = await cli([
          "incr",
          "1",
          ...peers,
          "--tls-ca",
          otherCa,
          "--token-file",
          files.client,
        ]);
        assert.equal(wrong.code, 1);
        assert.match(wrong.stderr, /^counter incr: TLS handshake with .* failed: [^\n]*\n$/);
        // Well under the 5 s deadline a retrying client would use up.
        console.log(`two TLS mismatches reported in ${Date.now() - started} ms`);
      },
    );

    await t.step(
      "without a token: UNAUTHENTICATED; the client token cannot add peers",
      async () => {
        const anon = await cli(["incr", "1", ...peers, "--tls-ca", files.ca]);
        assert.equal(anon.code, 1);
        assert.match(anon.stderr, /^counter incr: .*needs the client token[^\n]*\n$/);
        const stranger = "127.0.0.1:1";
        const denied = await cli(["peers", "add", stranger, "--learner", ...asClient]);
        assert.equal(denied.code, 1);
        assert.match(denied.stderr, /^counter peers add: .*needs the admin token[^\n]*\n$/);
        const list = await cli(["peers", "list", "--json", ...asClient]);
        assert.equal(list.code, 0, list.stderr);
        assert.ok(!list.stdout.includes(stranger), "nothing changed");
        const value = await cli(["get", ...asClient]);
        assert.equal(value.stdout.trim(), "5", "the refused increment changed nothing");
        const asAdmin = [...peers, "--tls-ca", files.ca, "--token-file", files.admin];
        const added = await cli(["peers", "add", stranger, "--learner", ...asAdmin]);
        assert.equal(added.code, 0, added.stderr);
        assert.match(added.stdout, /127\.0\.0\.1:1/);
        const removed = await cli(["peers", "remove", stranger, ...asAdmin]);
        assert.equal(removed.code, 0, removed.stderr);
      },
    );

    await t.step("a stranger without the cluster token cannot inject a Raft message", async () => {
      const before = (await running.statuses()).get(leader)!;
      const term = Number(before.term);
      const forged = makeMessage(MessageType.Heartbeat, {
        from: running.ids.find((id) => id !== leader)!,
        to: leader,
        term: term + 1000,
      });
      // The stranger knows what a member's hello says (its incarnation and cluster id, as one
      // could learn them from plain traffic or a copied data dir): only the token is missing.
      const inspected = await cli(["inspect", "--data", running.dataDir(forged.from), "--json"]);
      const meta = JSON.parse(inspected.stdout).meta;
      const hello = encodeHello("counter", {
        from: forged.from,
        incarnation: meta.incarnation,
        clusterId: meta.clusterId,
      });
      // Straight in, with a hello, as a node without a token would: each attack of issue 10 in
      // turn (a heartbeat 1000 terms ahead, a fake snapshot setting the counter to -42, a fake
      // append that would truncate the log, forced votes of a leadership transfer, a sender
      // that is not a member), at the leader and at a follower.
      const fakeState = new CounterStateMachine();
      fakeState.apply({ delta: -42n, proposedAtMs: 0, clientId: "", seq: 0, ackedBelow: 0 });
      const attacks = (to: string) => [
        { ...forged, to },
        makeMessage(MessageType.Snap, {
          from: forged.from,
          to,
          term: term + 1,
          snapshot: {
            index: 1_000_000,
            term: term + 1,
            conf: { voters: [...running.ids].sort(), learners: [] },
            data: fakeState.snapshot(),
          },
        }),
        makeMessage(MessageType.App, {
          from: forged.from,
          to,
          term: term + 1,
          index: 1,
          logTerm: 1,
          entries: [{ index: 2, term: term + 1, type: EntryType.Normal, data: new Uint8Array(0) }],
          commit: 2,
        }),
        makeMessage(MessageType.Vote, {
          from: forged.from,
          to,
          term: term + 1,
          index: 1_000_000,
          logTerm: term + 1,
          context: 1,
        }),
        makeMessage(MessageType.Heartbeat, { from: "127.0.0.1:9", to, term: term + 5 }),
      ];
      const follower = running.ids.find((id) => id !== leader && id !== forged.from)!;
      for (const target of [leader, follower]) {
        for (const attack of attacks(target)) {
          await strangerSends(target, caPem, [
            encodeFrame(hello),
            encodeFrame(encodeRaft("counter", attack)),
          ]);
        }
      }
      // Through the handshake, with a made-up proof.
      await strangerSends(leader, caPem, [
        encodeFrame(encodePeerAuth("counter", {
          step: 1,
          from: forged.from,
          to: leader,
          nonce: new Uint8Array(32).fill(7),
          mac: new Uint8Array(0),
        })),
        encodeFrame(encodePeerAuth("counter", {
          step: 3,
          from: forged.from,
          to: leader,
          nonce: new Uint8Array(0),
          mac: new Uint8Array(32).fill(9),
        })),
        encodeFrame(encodeRaft("counter", forged)),
      ]);
      await sleep(300);
      const after = (await running.statuses()).get(leader)!;
      assert.equal(Number(after.term), term, "the group's term did not move");
      assert.equal(after.role, "leader");
      for (const [id, status] of await running.statuses()) {
        assert.equal(String(status?.value), "5", `${id} kept every acknowledged increment`);
      }
      const log = await Deno.readTextFile(running.logPath(leader));
      assert.match(log, /unauthenticated connection|failed the handshake/);
      const incr = await cli(["incr", "1", ...asClient]);
      assert.equal(incr.code, 0, incr.stderr);
      assert.equal(incr.stdout.trim(), "6");
    });
  } catch (error) {
    if (cluster !== null) await dumpClusterLogs(cluster);
    throw error;
  } finally {
    await cluster?.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
