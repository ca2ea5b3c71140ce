import assert from "node:assert/strict";
import { PeerAuthenticator, PeerAuthError } from "../../lib/security/peer_auth.ts";

const enc = new TextEncoder();
const TOKEN = enc.encode("cluster-secret-0123456789abcdef");
const A = "127.0.0.1:4001";
const B = "127.0.0.1:4002";

async function pair(tokenA = TOKEN, tokenB = TOKEN, groupA = "counter", groupB = "counter") {
  return {
    dialer: await PeerAuthenticator.create(tokenA, groupA, A),
    acceptor: await PeerAuthenticator.create(tokenB, groupB, B),
  };
}

Deno.test("peer auth: the same token on both sides completes the handshake", async () => {
  const { dialer, acceptor } = await pair();
  const { step: s1, state: d } = dialer.dialerStart(B);
  const { step: s2, state: a } = await acceptor.acceptorChallenge("counter", s1);
  const s3 = await dialer.dialerFinish(d, "counter", s2);
  assert.ok(acceptor.acceptorVerify(a, "counter", s3));
  assert.equal(a.dialer, A);
  // The token itself is in no step.
  for (const step of [s1, s2, s3]) {
    const bytes = [...step.nonce, ...step.mac].join(",");
    assert.ok(!bytes.includes([...TOKEN].join(",")));
  }
});

Deno.test("peer auth: a wrong token fails on both sides", async () => {
  const { dialer, acceptor } = await pair(TOKEN, enc.encode("another-secret-0123456789abcdef"));
  const { step: s1, state: d } = dialer.dialerStart(B);
  const { step: s2, state: a } = await acceptor.acceptorChallenge("counter", s1);
  // The dialer refuses an acceptor that cannot prove the token ...
  await assert.rejects(dialer.dialerFinish(d, "counter", s2), PeerAuthError);
  // ... and a dialer without the right token cannot make a proof the acceptor takes.
  const honest = await PeerAuthenticator.create(TOKEN, "counter", B);
  const { step: h2 } = await honest.acceptorChallenge("counter", s1);
  const forged = await dialer.dialerFinish(d, "counter", h2);
  assert.ok(!acceptor.acceptorVerify(a, "counter", forged));
});

Deno.test("peer auth: another group's node fails even with the same token", async () => {
  const { dialer, acceptor } = await pair(TOKEN, TOKEN, "counter", "other");
  const { step: s1, state: d } = dialer.dialerStart(B);
  await assert.rejects(acceptor.acceptorChallenge("counter", s1), /group counter/);
  // An acceptor of "other" answering as if for "other": the dialer's MAC check fails.
  const { step: s2 } = await acceptor.acceptorChallenge("other", s1);
  await assert.rejects(dialer.dialerFinish(d, "other", s2), /group other/);
  await assert.rejects(dialer.dialerFinish(d, "counter", s2), /proof is wrong/);
});

Deno.test("peer auth: a recorded proof replayed on a new connection is refused", async () => {
  const { dialer, acceptor } = await pair();
  const { step: s1, state: d } = dialer.dialerStart(B);
  const { step: s2 } = await acceptor.acceptorChallenge("counter", s1);
  const s3 = await dialer.dialerFinish(d, "counter", s2);
  // The attacker replays steps 1 and 3; the acceptor's fresh nonce makes the old proof useless.
  const { state: again } = await acceptor.acceptorChallenge("counter", s1);
  assert.ok(!acceptor.acceptorVerify(again, "counter", s3));
  // A recorded challenge replayed to a dialer with a fresh nonce is refused too.
  const { state: d2 } = dialer.dialerStart(B);
  await assert.rejects(dialer.dialerFinish(d2, "counter", s2), /proof is wrong/);
});

Deno.test("peer auth: the acceptor's MAC reflected back as the dialer's proof is refused", async () => {
  const { dialer, acceptor } = await pair();
  const { step: s1 } = dialer.dialerStart(B);
  const { step: s2, state: a } = await acceptor.acceptorChallenge("counter", s1);
  const reflected = { ...s2, step: 3 as const, from: A, to: B, nonce: new Uint8Array(0) };
  assert.ok(!acceptor.acceptorVerify(a, "counter", reflected));
});

Deno.test("peer auth: steps for another node or from the acceptor's own id are refused", async () => {
  const { dialer, acceptor } = await pair();
  const { step: toOther } = dialer.dialerStart("127.0.0.1:9999");
  await assert.rejects(acceptor.acceptorChallenge("counter", toOther), /addressed to/);
  const self = await PeerAuthenticator.create(TOKEN, "counter", B);
  const { step: fromSelf } = self.dialerStart(B);
  await assert.rejects(acceptor.acceptorChallenge("counter", fromSelf), /own id/);
  // A proof naming another dialer than the opening did.
  const { step: s1, state: d } = dialer.dialerStart(B);
  const { step: s2, state: a } = await acceptor.acceptorChallenge("counter", s1);
  const s3 = await dialer.dialerFinish(d, "counter", s2);
  assert.ok(!acceptor.acceptorVerify(a, "counter", { ...s3, from: "127.0.0.1:1" }));
});
