import assert from "node:assert/strict";
import {
  accessFor,
  authenticate,
  ClientAuthenticator,
  ClientAuthError,
  newSession,
} from "../../lib/security/client_auth.ts";
import { hmacKey, readTokenFile, TOKEN_BYTES_MIN } from "../../lib/security/tokens.ts";
import type { ClientRequest, ClientResponse } from "../../lib/transport/codec.ts";

const enc = new TextEncoder();
const CLIENT = enc.encode("client-token-0123456789abcdef");
const ADMIN = enc.encode("admin-token-0123456789abcdef");

/** A connection to `auth`: every request is answered by it, in one session. */
function connection(auth: ClientAuthenticator) {
  const session = newSession();
  const call = (req: ClientRequest): Promise<ClientResponse> =>
    req.op === "auth"
      ? auth.answerAuth(session, "counter", req)
      : Promise.resolve(auth.check(session, req) ?? { ok: true });
  return { session, call };
}

Deno.test("client auth: ops map to roles, unknown ops need the admin token", () => {
  assert.equal(accessFor("incr"), "client");
  assert.equal(accessFor("get"), "client");
  assert.equal(accessFor("status"), "client");
  assert.equal(accessFor("add_peer"), "admin");
  assert.equal(accessFor("transfer_leader"), "admin");
  assert.equal(accessFor("backup"), "admin");
  assert.equal(accessFor("snapshot"), "admin");
  assert.equal(accessFor("something_new"), "admin");
  assert.equal(accessFor("auth"), "open");
});

Deno.test("client auth: without a proof, UNAUTHENTICATED; the client token cannot run admin ops", async () => {
  const auth = await ClientAuthenticator.create("counter", { client: CLIENT, admin: ADMIN });
  const anon = connection(auth);
  assert.equal((await anon.call({ op: "incr" })).code, "UNAUTHENTICATED");
  const client = connection(auth);
  assert.equal(await authenticate(client.call, "counter", await hmacKey(CLIENT)), "client");
  assert.equal((await client.call({ op: "incr" })).ok, true);
  const denied = await client.call({ op: "add_peer" });
  assert.equal(denied.code, "PERMISSION_DENIED");
  const admin = connection(auth);
  assert.equal(await authenticate(admin.call, "counter", await hmacKey(ADMIN)), "admin");
  assert.equal((await admin.call({ op: "add_peer" })).ok, true);
  assert.equal(
    (await admin.call({ op: "incr" })).ok,
    true,
    "the admin token implies client rights",
  );
});

Deno.test("client auth: a wrong token, a replayed proof, a wrong group are refused", async () => {
  const auth = await ClientAuthenticator.create("counter", { client: CLIENT });
  const wrong = connection(auth);
  await assert.rejects(
    authenticate(wrong.call, "counter", await hmacKey(ADMIN)),
    (err: unknown) => err instanceof ClientAuthError && err.code === "UNAUTHENTICATED",
  );
  assert.equal(wrong.session.role, null);
  // Record a good exchange, then replay its proof: the nonce was single use.
  const good = connection(auth);
  const requests: ClientRequest[] = [];
  await authenticate(
    (req) => {
      requests.push(req);
      return good.call(req);
    },
    "counter",
    await hmacKey(CLIENT),
  );
  const replayed = connection(auth);
  await replayed.call({ op: "auth" }); // a fresh nonce for this connection
  assert.equal((await replayed.call(requests[1])).code, "UNAUTHENTICATED");
  assert.equal((await good.call(requests[1])).code, "UNAUTHENTICATED", "no second use");
  // A proof made for another group does not hold for this one.
  const other = connection(auth);
  await assert.rejects(authenticate(other.call, "other", await hmacKey(CLIENT)), ClientAuthError);
});

Deno.test("client auth: without tokens everything is open and auth says so", async () => {
  const auth = await ClientAuthenticator.create("counter", {});
  const conn = connection(auth);
  assert.equal((await conn.call({ op: "add_peer" })).ok, true);
  assert.equal(await authenticate(conn.call, "counter", await hmacKey(CLIENT)), "open");
});

Deno.test("tokens: a short or missing token file is one clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/short`, "abc\n");
    await assert.rejects(readTokenFile(`${dir}/short`, "client token"), /at least 16/);
    await assert.rejects(readTokenFile(`${dir}/none`, "client token"), /cannot read the client/);
    await Deno.writeTextFile(`${dir}/ok`, "x".repeat(TOKEN_BYTES_MIN) + "\n");
    assert.equal((await readTokenFile(`${dir}/ok`, "client token")).length, TOKEN_BYTES_MIN);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
