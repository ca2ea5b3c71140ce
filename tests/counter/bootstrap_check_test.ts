import assert from "node:assert/strict";
import {
  type BootstrapCheckOptions,
  computeClusterId,
  decideBootstrap,
  type IdentityAnswer,
  parseIdentityAnswer,
  runBootstrapCheck,
} from "../../lib/counter/bootstrap_check.ts";
import { silentLogger } from "../../lib/logging/logger.ts";

const A = "127.0.0.1:7001";
const B = "127.0.0.1:7002";
const C = "127.0.0.1:7003";
const CLUSTER = "0123456789abcdef";
const OPTIONS: BootstrapCheckOptions = {
  self: A,
  members: [A, B, C],
  clusterId: CLUSTER,
  elapsedMs: 0,
  timeoutMs: 300_000,
  dataDir: "/data/a",
};
const WAITING: IdentityAnswer = {
  heardOf: false,
  clusterId: "",
  term: 0,
  lastIndex: 0,
  fresh: true,
};
const RUNNING: IdentityAnswer = {
  heardOf: false,
  clusterId: CLUSTER,
  term: 3,
  lastIndex: 120,
  fresh: false,
};

Deno.test("every other member has heard of nobody: bootstrap", () => {
  const answers = new Map([[B, WAITING], [C, WAITING]]);
  assert.deepEqual(decideBootstrap(answers, OPTIONS), { action: "bootstrap" });
});

Deno.test("members already running that never heard from this id let it bootstrap", () => {
  // B was slow to start: A and C formed the group meanwhile, but nobody has heard from B.
  const answers = new Map([[A, RUNNING], [C, RUNNING]]);
  assert.deepEqual(decideBootstrap(answers, { ...OPTIONS, self: B }), { action: "bootstrap" });
});

Deno.test("a single member that heard of this id refuses it, with the commands on one line", () => {
  const answers = new Map([[B, { ...RUNNING, heardOf: true }]]);
  const d = decideBootstrap(answers, OPTIONS);
  assert.equal(d.action, "refuse");
  if (d.action !== "refuse") return;
  assert.ok(!d.message.includes("\n"));
  assert.match(d.message, new RegExp(`${B} heard from it`));
  for (
    const command of [
      `counter peers remove ${A} --peers ${B},${C}`,
      "wipe /data/a",
      `counter serve --data /data/a --id ${A} --join ${B},${C}`,
      `counter peers add ${A} --peers ${B},${C}`,
    ]
  ) assert.ok(d.message.includes(command), `${command} in ${d.message}`);
});

Deno.test("members named by an answer are asked too; one of them that heard of this id refuses it", () => {
  const D = "127.0.0.1:7004";
  const withD: IdentityAnswer = { ...RUNNING, members: [B, C, D] };
  const answers = new Map<string, IdentityAnswer>([[B, withD], [C, RUNNING]]);
  assert.deepEqual(decideBootstrap(answers, OPTIONS), { action: "wait", missing: [D] });
  answers.set(D, { ...RUNNING, heardOf: true });
  const d = decideBootstrap(answers, OPTIONS);
  assert.equal(d.action, "refuse");
  answers.set(D, RUNNING);
  assert.deepEqual(decideBootstrap(answers, OPTIONS), { action: "bootstrap" });
});

Deno.test("heard-of wins even while other members are missing", () => {
  const answers = new Map([[C, { ...RUNNING, heardOf: true }]]);
  assert.equal(decideBootstrap(answers, OPTIONS).action, "refuse");
});

Deno.test("a member of another cluster refuses the bootstrap", () => {
  const answers = new Map([[B, { ...RUNNING, clusterId: "ffffffffffffffff" }], [C, WAITING]]);
  const d = decideBootstrap(answers, OPTIONS);
  assert.equal(d.action, "refuse");
  if (d.action === "refuse") assert.match(d.message, /belongs to cluster ffffffffffffffff/);
});

Deno.test("missing members mean waiting, then giving up at the timeout; 0 waits forever", () => {
  const answers = new Map([[B, WAITING]]);
  assert.deepEqual(decideBootstrap(answers, OPTIONS), { action: "wait", missing: [C] });
  const late = decideBootstrap(answers, { ...OPTIONS, elapsedMs: 300_000 });
  assert.equal(late.action, "give_up");
  if (late.action === "give_up") {
    assert.deepEqual(late.missing, [C]);
    assert.match(late.message, new RegExp(`${C} never answered`));
  }
  const forever = decideBootstrap(answers, { ...OPTIONS, timeoutMs: 0, elapsedMs: 1e9 });
  assert.equal(forever.action, "wait");
});

Deno.test("a one-node group bootstraps without asking anyone", () => {
  assert.deepEqual(decideBootstrap(new Map(), { ...OPTIONS, members: [A] }), {
    action: "bootstrap",
  });
});

Deno.test("the cluster id is the first 16 hex digits of SHA-256, whatever the --conf order", async () => {
  const id = await computeClusterId("counter", [C, A, B]);
  assert.match(id, /^[0-9a-f]{16}$/);
  assert.equal(await computeClusterId("counter", [A, B, C]), id);
  assert.notEqual(await computeClusterId("other", [A, B, C]), id);
  assert.notEqual(await computeClusterId("counter", [A, B]), id);
  // Pinned: every member of a mixed-version group must compute the same id.
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`counter\n${A},${B},${C}`),
  );
  const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(id, hex.slice(0, 16));
});

Deno.test("an identity answer's members are read when well formed and bounded", () => {
  const data = { heardOf: false, clusterId: CLUSTER, term: 1, lastIndex: 5, fresh: false };
  assert.deepEqual(parseIdentityAnswer({ ok: true, data: { ...data, members: [B] } })?.members, [
    B,
  ]);
  assert.equal(parseIdentityAnswer({ ok: true, data })?.members, undefined);
  for (const members of [[1], [""], "x", Array(65).fill(B)]) {
    assert.equal(parseIdentityAnswer({ ok: true, data: { ...data, members } }), null);
  }
});

Deno.test("identity answers are parsed strictly; anything else counts as no answer", () => {
  const data = { heardOf: true, clusterId: CLUSTER, term: 2, lastIndex: 9, fresh: false };
  assert.deepEqual(parseIdentityAnswer({ ok: true, data }), data);
  assert.equal(parseIdentityAnswer({ ok: false, code: "UNKNOWN_OP", error: "x" }), null);
  assert.equal(parseIdentityAnswer({ ok: true }), null);
  assert.equal(parseIdentityAnswer({ ok: true, data: { ...data, heardOf: "yes" } }), null);
  assert.equal(parseIdentityAnswer({ ok: true, data: { ...data, term: -1 } }), null);
});

Deno.test("the check asks again only the missing members, until every one has answered", async () => {
  let clockMs = 0;
  const rounds: string[][] = [[]];
  const decision = await runBootstrapCheck({
    ...OPTIONS,
    logger: silentLogger,
    now: () => clockMs,
    sleep: (ms) => {
      clockMs += ms;
      rounds.push([]);
      return Promise.resolve();
    },
    ask: (member) => {
      rounds.at(-1)!.push(member);
      // B answers at once; C comes up in the third round.
      return Promise.resolve(member === B || rounds.length >= 3 ? WAITING : null);
    },
  });
  assert.deepEqual(decision, { action: "bootstrap" });
  assert.deepEqual(rounds, [[B, C], [C], [C]]);
});

Deno.test("the check gives up at the timeout, naming who never answered", async () => {
  let clockMs = 0;
  const decision = await runBootstrapCheck({
    ...OPTIONS,
    timeoutMs: 2000,
    logger: silentLogger,
    now: () => clockMs,
    sleep: (ms) => {
      clockMs += ms;
      return Promise.resolve();
    },
    ask: (member) => Promise.resolve(member === B ? WAITING : null),
  });
  assert.equal(decision.action, "give_up");
  if (decision.action === "give_up") assert.deepEqual(decision.missing, [C]);
  assert.ok(clockMs >= 2000 && clockMs <= 3000);
});
