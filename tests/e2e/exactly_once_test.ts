/**
 * End-to-end exactly-once tests: real `counter serve` processes (`LocalCluster`,
 * `--election-timeout-ms 500`), clients streaming increments while the leader is SIGKILLed and
 * restarted and a follower is paused (SIGSTOP) and resumed (SIGCONT); and explicit duplicates,
 * the same (clientId, seq) sent twice through a raw `RpcClientConnection`, across leader changes.
 *
 * How a double count would be detected (first test):
 *
 * 1. Bit budget. The counter starts at 0 on a fresh cluster and every delta is positive. The
 *    unit clients add 1 each; far fewer than 2^20 of them are sent, so their total stays in the
 *    low 20 bits. The power-of-two clients add 2^e for distinct EVEN exponents e in 20..60, each
 *    exponent sent once. So `(final - initial) >> 20` is the sum of the powers applied, and the
 *    low 20 bits count the unit increments applied.
 * 2. Guard bits. Applied once, 2^e sets only bit e. Applied twice it adds 2^(e+1), an ODD bit
 *    that no request uses (three times sets bits e and e+1). So any set odd bit at or above 20 is
 *    a double count, whatever the other outcomes were; the even bits then name exactly the set of
 *    power increments applied, which must contain every acknowledged one and nothing that was not
 *    sent or that failed for certain. The same decoding applies to the value each acknowledged
 *    power increment returned (its own bit must be set in it).
 * 3. Exact accounting. A client whose increment ends with outcome "unknown" sends nothing more
 *    (a new client takes its place), so the nodes still remember its unsettled sequence numbers.
 *    At the end every unknown increment is sent again, raw, with its original (clientId, seq):
 *    the node applies it if it never was, and answers from its session table if it was. After
 *    that every increment sent is applied exactly once or it is a bug, so the counter must equal
 *    initial + sum(acked deltas) + sum(unknown deltas) EXACTLY: a double count makes it larger,
 *    a lost acknowledged increment smaller. (Before the resend the usual bounds are checked:
 *    sum(acked) <= growth <= sum(acked) + sum(unknown).)
 * 4. Every acknowledged value is distinct: with positive deltas each applied increment yields its
 *    own value, so two requests answered with one value would share an application.
 *
 * The test tracks each request's sequence number itself: `CounterClient` numbers a client's
 * increments 1, 2, 3, ... in call order (checked at the start of the test through a raw
 * duplicate), and the client id is passed in `clientId`.
 */

import assert from "node:assert/strict";
import { CounterClient, CounterError } from "../../lib/client.ts";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import {
  type ClientRequest,
  type ClientResponse,
  RpcClientConnection,
} from "../../lib/transport/mod.ts";
import {
  convergedValue,
  dumpClusterLogs,
  ELECTION_TIMEOUT_MS,
  sleep,
  waitFor,
} from "./_cluster_helpers.ts";

const LEADER_WAIT_MS = 15_000;
const CONVERGE_WAIT_MS = 15_000;
/** The unit increments' total stays below 2^UNIT_BITS (asserted); the powers start there. */
const UNIT_BITS = 20n;
const UNIT_MASK = (1n << UNIT_BITS) - 1n;

/**
 * Sends `req` raw to the leader (one `RpcClientConnection` per attempt), following NOT_LEADER
 * and waiting out elections; returns the first answer that is not a redirect. Re-sending an
 * increment here is safe for the very reason under test: it carries its (clientId, seq).
 */
async function rawToLeader(cluster: LocalCluster, req: ClientRequest): Promise<ClientResponse> {
  const deadline = Date.now() + LEADER_WAIT_MS;
  let target = await cluster.waitForLeader(LEADER_WAIT_MS);
  let last = "";
  while (Date.now() < deadline) {
    let resp: ClientResponse | undefined;
    let conn: RpcClientConnection | undefined;
    try {
      conn = await RpcClientConnection.connect(target);
      resp = await conn.call("counter", req, 2000);
    } catch (err) {
      last = `${target}: ${(err as Error).message}`;
    } finally {
      await conn?.close();
    }
    if (resp !== undefined && resp.code !== "NOT_LEADER" && resp.code !== "NO_LEADER") return resp;
    if (resp !== undefined) last = `${target}: ${resp.code} ${resp.error}`;
    await sleep(50);
    target = resp?.leader ?? await cluster.waitForLeader(LEADER_WAIT_MS);
  }
  throw new Error(`no answer from a leader to ${JSON.stringify(req.op)}: ${last}`);
}

/** Sends `req` raw to node `id` only. */
async function rawTo(id: string, req: ClientRequest): Promise<ClientResponse> {
  const conn = await RpcClientConnection.connect(id);
  try {
    return await conn.call("counter", req, 5000);
  } finally {
    await conn.close();
  }
}

function incrRequest(clientId: string, seq: number, delta: bigint, ackedBelow: number) {
  return { op: "incr", clientId, seq, delta, ackedBelow } satisfies ClientRequest;
}

function okValue(resp: ClientResponse, what: string): bigint {
  assert.equal(resp.ok, true, `${what}: ${resp.code} ${resp.error}`);
  assert.equal(typeof resp.value, "bigint", what);
  return resp.value!;
}

/** One increment as the test saw it. */
interface Sent {
  clientId: string;
  seq: number;
  delta: bigint;
  outcome: "pending" | "acked" | "unknown" | "failed";
  /** The value returned, when acked. */
  value?: bigint;
  error?: string;
}

/**
 * A `CounterClient` whose increments are numbered by the test as the client numbers them. After
 * an unknown outcome it is retired: nothing more is sent through it, so that no later request
 * tells the nodes (through ackedBelow) to forget the unsettled answers.
 */
class TrackedClient {
  readonly id = crypto.randomUUID();
  readonly client: CounterClient;
  retired = false;
  #seq = 0;

  constructor(peers: string[], timeoutMs: number) {
    this.client = new CounterClient({
      peers,
      clientId: this.id,
      timeoutMs,
      attemptTimeoutMs: ELECTION_TIMEOUT_MS / 2,
    });
  }

  /** Sends one increment, records it in `log`, and settles it there. */
  async incr(delta: bigint, log: Sent[]): Promise<Sent> {
    assert.ok(!this.retired, "a retired client must send nothing more");
    const sent: Sent = { clientId: this.id, seq: ++this.#seq, delta, outcome: "pending" };
    log.push(sent);
    try {
      sent.value = (await this.client.incrementAndGet(delta)).value;
      sent.outcome = "acked";
    } catch (err) {
      if (!(err instanceof CounterError)) throw err;
      sent.error = `${err.code}: ${err.message}`.slice(0, 200);
      sent.outcome = err.outcome;
      if (err.outcome === "unknown") this.retired = true;
    }
    return sent;
  }
}

function sum(sents: Sent[]): bigint {
  return sents.reduce((total, s) => total + s.delta, 0n);
}

Deno.test("exactly once: clients stream increments through a leader crash and a follower pause", async () => {
  const cluster = await LocalCluster.start({
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  const clients: TrackedClient[] = [];
  const newClient = (timeoutMs: number) => {
    const c = new TrackedClient(cluster.ids, timeoutMs);
    clients.push(c);
    return c;
  };
  const reader = new CounterClient({ peers: cluster.ids, timeoutMs: 10_000 });
  let running = true;
  let workers: Promise<void>[] = [];
  const bursts: Promise<Sent>[] = [];
  let failed = true;
  try {
    const startedMs = performance.now();
    let leader = await cluster.waitForLeader(LEADER_WAIT_MS);
    const initial = (await reader.get()).value;
    assert.equal(initial, 0n, "a fresh cluster starts at 0");

    // The test numbers requests as CounterClient does: check it with a raw duplicate. The probe
    // adds 2^20, the lowest power; the power clients below use 2^22 and up.
    const probeLog: Sent[] = [];
    {
      const probe = newClient(5000);
      const first = await probe.incr(1n << UNIT_BITS, probeLog);
      assert.equal(first.outcome, "acked", first.error);
      const again = await rawToLeader(cluster, incrRequest(probe.id, 1, 1n << UNIT_BITS, 1));
      assert.equal(okValue(again, "raw duplicate of the probe"), first.value);
      assert.equal((await reader.get()).value, first.value, "the duplicate was applied again");
    }

    // ---- Unit clients: 4 sessions at a time, 6 requests in flight each, delta 1. ----
    // Slots 0-1 give up after one election timeout (so the crash leaves unknown outcomes); slots
    // 2-3 keep retrying for 8 s (so requests caught by the crash are retried at the next leader
    // with the same seq, and acknowledged there: the case where a double count would happen).
    const SLOTS = 4;
    const PER_SLOT = 6;
    const slotTimeoutMs = (slot: number) => slot < 2 ? ELECTION_TIMEOUT_MS : 8000;
    const slots = Array.from({ length: SLOTS }, (_, k) => newClient(slotTimeoutMs(k)));
    const unitLogs: Sent[][] = Array.from({ length: SLOTS }, () => []);
    const ackedUnits = () => unitLogs.flat().filter((s) => s.outcome === "acked").length;
    const worker = async (slot: number) => {
      while (running) {
        if (slots[slot].retired) slots[slot] = newClient(slotTimeoutMs(slot));
        await slots[slot].incr(1n, unitLogs[slot]);
      }
    };
    workers = Array.from({ length: SLOTS * PER_SLOT }, (_, k) => worker(k % SLOTS));

    // ---- Power-of-two clients: each exponent once; each burst through a fresh session. ----
    const powerLog: Sent[] = [];
    const burst = (exponents: number[], timeoutMs: number) => {
      const c = newClient(timeoutMs);
      for (const e of exponents) bursts.push(c.incr(1n << BigInt(e), powerLog));
    };
    const evens = (from: number, to: number) =>
      Array.from({ length: (to - from) / 2 + 1 }, (_, k) => from + 2 * k);

    await waitFor(() => ackedUnits() >= 200 ? true : undefined, "the load to start", 15_000);

    // ---- (a) Twice: SIGKILL the leader with increments in flight, then restart it. ----
    // Round 1: the powers sent just before the kill retry for 8 s, so those caught by the crash
    // are retried at the next leader; those sent just after give up after one election timeout.
    // Round 2 the other way round, so that some end with outcome unknown.
    const kills: string[] = [];
    let lastKilled = "";
    const rounds = [
      { before: evens(22, 26), beforeMs: 8000, after: evens(28, 30), afterMs: ELECTION_TIMEOUT_MS },
      { before: evens(32, 36), beforeMs: ELECTION_TIMEOUT_MS, after: evens(38, 40), afterMs: 8000 },
    ];
    for (const { before, beforeMs, after, afterMs } of rounds) {
      burst(before, beforeMs);
      await sleep(2);
      const killed = lastKilled = leader;
      await cluster.kill(killed);
      const killedAtMs = performance.now();
      burst(after, afterMs);
      const ackedAtKill = ackedUnits();
      leader = await cluster.waitForLeader(LEADER_WAIT_MS, [killed]);
      kills.push(`${killed} (next leader after ${(performance.now() - killedAtMs).toFixed(0)} ms)`);
      await cluster.startNode(killed);
      await waitFor(
        () => ackedUnits() >= ackedAtKill + 300 ? true : undefined,
        "increments after the failover",
        15_000,
      );
    }

    // ---- (b) Pause a follower (not the restarted one) for 2 s, then resume it. ----
    leader = await cluster.waitForLeader(LEADER_WAIT_MS);
    const paused = cluster.ids.find((id) => id !== leader && id !== lastKilled) ??
      cluster.ids.find((id) => id !== leader)!;
    burst(evens(42, 50), 8000);
    await cluster.signal(paused, "SIGSTOP");
    try {
      burst(evens(52, 60), 2 * ELECTION_TIMEOUT_MS);
      await sleep(2000);
    } finally {
      await cluster.signal(paused, "SIGCONT");
    }
    const ackedAtResume = ackedUnits();
    await waitFor(
      () => ackedUnits() >= ackedAtResume + 100 ? true : undefined,
      "increments after the pause",
      15_000,
    );
    running = false;
    await Promise.all(workers);
    await Promise.all(bursts);

    // ---- Judge. First let every node apply whatever is still in flight. ----
    await cluster.waitForLeader(LEADER_WAIT_MS);
    const final = (await reader.get()).value;
    assert.equal(await convergedValue(cluster.ids, CONVERGE_WAIT_MS), final);
    const units = unitLogs.flat();
    const all = [...probeLog, ...units, ...powerLog];
    const by = (sents: Sent[], outcome: Sent["outcome"]) =>
      sents.filter((s) => s.outcome === outcome);
    assert.deepEqual(by(all, "pending"), []);
    const perSlot = unitLogs.map((log, k) =>
      `slot ${k}: acked ${by(log, "acked").length}, unknown ${by(log, "unknown").length}, ` +
      `failed ${by(log, "failed").length}`
    );
    console.log(
      `killed leaders ${kills.join(", ")}; ${paused} paused ` +
        `2 s; ${clients.length} sessions; ${perSlot.join("; ")}; powers: ` +
        `acked ${by(powerLog, "acked").length}, unknown ${by(powerLog, "unknown").length}, ` +
        `failed ${by(powerLog, "failed").length}; final ${final}`,
    );
    const firstErrors = all.filter((s) => s.error !== undefined).slice(0, 3).map((s) => s.error);
    if (firstErrors.length > 0) console.log(`first errors: ${firstErrors.join(" | ")}`);

    // The unit increments cannot reach the power bits.
    assert.ok(BigInt(units.length) < 1n << UNIT_BITS, `${units.length} unit increments`);

    // Bounds: everything acknowledged is in; nothing beyond what may have been applied.
    const grew = final - initial;
    const unitsApplied = grew & UNIT_MASK;
    const ackedUnitCount = BigInt(by(units, "acked").length);
    const unknownUnitCount = BigInt(by(units, "unknown").length);
    assert.ok(
      unitsApplied >= ackedUnitCount,
      `lost acknowledged unit increments: ${unitsApplied} < ${ackedUnitCount}`,
    );
    assert.ok(
      unitsApplied <= ackedUnitCount + unknownUnitCount,
      `unit increments counted twice: ${unitsApplied} > ${ackedUnitCount} + ${unknownUnitCount}`,
    );
    assert.ok(grew >= sum(by(all, "acked")), "lost acknowledged increments");
    assert.ok(grew <= sum(by(all, "acked")) + sum(by(all, "unknown")), "applied more than sent");

    // Decode the power increments applied; an odd bit is a double count (see the header).
    const powers = [...probeLog, ...powerLog];
    const decode = (grown: bigint, what: string): Set<number> => {
      const bits = new Set<number>();
      for (let e = Number(UNIT_BITS); e < 63; e++) {
        if ((grown >> BigInt(e)) & 1n) bits.add(e);
      }
      const odd = [...bits].filter((e) => e % 2 === 1);
      assert.deepEqual(odd, [], `${what}: a power of two was counted twice (odd bits ${odd})`);
      return bits;
    };
    const applied = decode(grew, "final value");
    const exponent = (s: Sent) => s.delta.toString(2).length - 1;
    for (const s of powers) {
      const e = exponent(s);
      if (s.outcome === "acked") {
        assert.ok(applied.has(e), `acknowledged 2^${e} is not in the counter`);
        // The value it returned includes itself, and only powers that are in the final value.
        const seen = decode(s.value! - initial, `value returned for 2^${e}`);
        assert.ok(seen.has(e), `2^${e} answered ${s.value}, which does not include it`);
        for (const other of seen) assert.ok(applied.has(other), `2^${other} came and went`);
      }
      if (s.outcome === "failed") {
        assert.ok(!applied.has(e), `2^${e} failed for certain, yet it was applied`);
      }
    }
    const sentExponents = new Set(powers.map(exponent));
    for (const e of applied) assert.ok(sentExponents.has(e), `2^${e} was never sent`);

    // Every acknowledged value is distinct.
    const ackedValues = by(all, "acked").map((s) => s.value!);
    assert.equal(new Set(ackedValues).size, ackedValues.length, "two requests got one value");
    for (const v of ackedValues) assert.ok(v > initial && v <= final, `acked value ${v}`);

    // Duplicates of acknowledged power increments (their sessions sent nothing after them, so
    // the answers are remembered) get their original values and change nothing.
    for (const s of by(powerLog, "acked")) {
      const resp = await rawToLeader(cluster, incrRequest(s.clientId, s.seq, s.delta, 1));
      assert.equal(okValue(resp, `duplicate of 2^${exponent(s)}`), s.value);
    }
    assert.equal((await reader.get()).value, final, "a duplicate changed the counter");

    // Resolve every unknown outcome by sending it again with its (clientId, seq).
    const unknown = by(all, "unknown");
    const oldestUnknown = new Map<string, number>();
    for (const s of unknown) {
      oldestUnknown.set(s.clientId, Math.min(s.seq, oldestUnknown.get(s.clientId) ?? s.seq));
    }
    let alreadyApplied = 0;
    for (const s of unknown) {
      const resp = await rawToLeader(
        cluster,
        incrRequest(s.clientId, s.seq, s.delta, oldestUnknown.get(s.clientId)!),
      );
      const value = okValue(resp, `resolving ${s.clientId}/${s.seq}`);
      if (value <= final) alreadyApplied++;
      if (s.delta > 1n) {
        const e = exponent(s);
        assert.ok(decode(value - initial, `resolved 2^${e}`).has(e));
        assert.equal(applied.has(e), value <= final, `2^${e}: applied before the resend?`);
      }
    }
    const resolved = (await reader.get()).value;
    console.log(
      `${unknown.length} unknown outcomes resolved: ${alreadyApplied} had been applied, ` +
        `${unknown.length - alreadyApplied} had not; ${
          (performance.now() - startedMs).toFixed(0)
        } ms in all`,
    );
    // Exactly once: every acknowledged and every unknown increment counted once, no more.
    assert.equal(resolved - initial, sum(by(all, "acked")) + sum(unknown));
    assert.equal(await convergedValue(cluster.ids, CONVERGE_WAIT_MS), resolved);
    failed = false;
  } finally {
    running = false;
    await Promise.allSettled(workers);
    await Promise.allSettled(bursts);
    await Promise.allSettled([reader.close(), ...clients.map((c) => c.client.close())]);
    if (failed) await dumpClusterLogs(cluster);
    await cluster.stop();
  }
});

Deno.test("exactly once: an explicit duplicate returns the first answer, also at a new leader", async () => {
  // Snapshots compact the whole log, so the restarted node's sessions come from its snapshot.
  const cluster = await LocalCluster.start({
    serveArgs: [
      "--election-timeout-ms",
      String(ELECTION_TIMEOUT_MS),
      "--snapshot-retain-entries",
      "0",
    ],
  });
  const client = new CounterClient({ peers: cluster.ids, timeoutMs: 10_000 });
  let failed = true;
  try {
    const first = await cluster.waitForLeader(LEADER_WAIT_MS);
    const initial = (await client.get()).value;
    const id = crypto.randomUUID();

    // Sent twice to one leader: one answer, one change.
    const v1 = okValue(await rawTo(first, incrRequest(id, 1, 7n, 1)), "seq 1");
    assert.equal(v1, initial + 7n);
    assert.equal(okValue(await rawTo(first, incrRequest(id, 1, 7n, 1)), "seq 1 again"), v1);
    assert.equal((await client.get()).value, v1);
    // After other increments, the duplicate still gets its own first answer, not the value now.
    const other = (await client.incrementAndGet(100n)).value;
    assert.equal(other, v1 + 100n);
    assert.equal(okValue(await rawTo(first, incrRequest(id, 1, 7n, 1)), "seq 1, later"), v1);
    // The same seq with another delta is still the same request.
    assert.equal(okValue(await rawTo(first, incrRequest(id, 1, 99n, 1)), "seq 1, delta 99"), v1);
    assert.equal((await client.get()).value, other);

    // Sent once, then the leader dies; sent again to the new leader.
    const v2 = okValue(await rawTo(first, incrRequest(id, 2, 11n, 1)), "seq 2");
    assert.equal(v2, other + 11n);
    for (const node of cluster.ids) {
      const { data } = await client.admin("snapshot", {}, { peer: node });
      assert.ok(Number(data.snapshotIndex) > 0, `${node} snapshot`);
    }
    await cluster.kill(first);
    const second = await cluster.waitForLeader(LEADER_WAIT_MS, [first]);
    assert.equal(okValue(await rawTo(second, incrRequest(id, 2, 11n, 1)), "seq 2 at new"), v2);
    assert.equal(okValue(await rawTo(second, incrRequest(id, 1, 7n, 1)), "seq 1 at new"), v1);
    assert.equal((await client.get()).value, v2, "a duplicate changed the counter");

    // The crashed node restarts from its snapshot and becomes leader again: its session table,
    // restored from disk, still knows both requests.
    await cluster.startNode(first);
    assert.equal(await convergedValue(cluster.ids, CONVERGE_WAIT_MS), v2);
    const status = (await cluster.statuses()).get(first)!;
    assert.ok(Number(status.snapshotIndex) > 0, "the restarted node has a snapshot");
    const { leader: after } = await client.admin("transfer_leader", { node: first });
    assert.equal(after, first);
    assert.equal(await cluster.waitForLeader(LEADER_WAIT_MS), first);
    assert.equal(okValue(await rawTo(first, incrRequest(id, 2, 11n, 1)), "seq 2, restarted"), v2);
    assert.equal(okValue(await rawTo(first, incrRequest(id, 1, 7n, 1)), "seq 1, restarted"), v1);
    assert.equal((await client.get()).value, v2, "a duplicate changed the counter");

    // A new request counts once; with ackedBelow 3 the answers below it may be forgotten, and a
    // request below it is refused, not applied.
    const v3 = okValue(await rawTo(first, incrRequest(id, 3, 13n, 3)), "seq 3");
    assert.equal(v3, v2 + 13n);
    assert.equal(okValue(await rawTo(first, incrRequest(id, 3, 13n, 3)), "seq 3 again"), v3);
    const stale = await rawTo(first, incrRequest(id, 1, 7n, 1));
    assert.equal(stale.ok, false);
    assert.equal(stale.code, "STALE_REQUEST");
    assert.equal((await client.get()).value, v3);
    assert.equal(await convergedValue(cluster.ids, CONVERGE_WAIT_MS), v3);
    failed = false;
  } finally {
    await client.close();
    if (failed) await dumpClusterLogs(cluster);
    await cluster.stop();
  }
});
