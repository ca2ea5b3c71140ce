/**
 * End-to-end tests of the read consistency levels: real `counter serve` processes
 * (`LocalCluster`, `--election-timeout-ms 500`), concurrent writers and readers, and a leader
 * SIGKILLed (then restarted) in the middle of each level's run.
 *
 * What is checked, with every delta +1 so that the counter only grows:
 *
 * - `linearizable`, `lease`, `follower`: a read that STARTS after an increment was acknowledged
 *   returns at least that increment's value (times are taken before sending the read and after
 *   receiving the acknowledgement, so the comparison is conservative). Likewise a read that
 *   starts after another read returned sees at least that read's value.
 * - Every level, `stale` included: a read returns at most the value after every increment
 *   *sent* before the read returned. (Not "at most the largest acknowledged value": a node may
 *   apply an increment, and answer a read with it, before the writer has received its
 *   acknowledgement, so that bound would fail on correct behaviour.) A stale read from a node
 *   that ran throughout the step never goes backwards in real time.
 * - `counter get --consistency stale` labels its answer: `N (stale, from HOST:PORT)`.
 */

import assert from "node:assert/strict";
import { type Consistency, CounterClient, CounterError } from "../../lib/client.ts";
import { LocalCluster } from "../../lib/cli/local_cluster.ts";
import {
  cli,
  convergedValue,
  dumpClusterLogs,
  ELECTION_TIMEOUT_MS,
  sleep,
  waitFor,
} from "./_cluster_helpers.ts";

const LEADER_WAIT_MS = 15_000;
const CONVERGE_WAIT_MS = 15_000;
const WRITERS = 4;
const READERS = 4;

/** An acknowledged increment: its value, and when the writer had the answer. */
interface Ack {
  atMs: number;
  value: bigint;
}

/** A successful read. */
interface Read {
  startMs: number;
  endMs: number;
  value: bigint;
  node: string;
  /** Upper bound: the value after every increment sent before the read returned. */
  bound: bigint;
}

/**
 * Largest `value` among `events` (sorted by `time`) strictly before `t`, or `floor` if none:
 * a prefix maximum and a binary search.
 */
function maxBefore<E>(
  events: E[],
  time: (e: E) => number,
  value: (e: E) => bigint,
  floor: bigint,
): (t: number) => bigint {
  const sorted = [...events].sort((a, b) => time(a) - time(b));
  const times = sorted.map(time);
  const prefix: bigint[] = [];
  let most = floor;
  for (const e of sorted) {
    if (value(e) > most) most = value(e);
    prefix.push(most);
  }
  return (t: number) => {
    let lo = 0;
    let hi = times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (times[mid] < t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? floor : prefix[lo - 1];
  };
}

/** The stale reads the CLI printed during a step, with their bounds. */
interface CliRead {
  line: string;
  value: bigint;
  node: string;
  bound: bigint;
}

/**
 * Runs writers and readers of `consistency` while the leader is killed and restarted, then
 * checks the reads. Returns a one-line summary.
 */
async function runLevel(cluster: LocalCluster, consistency: Consistency): Promise<string> {
  const startedMs = performance.now();
  const options = { peers: cluster.ids, timeoutMs: 10_000, attemptTimeoutMs: 250 };
  const writer = new CounterClient(options);
  const reader = new CounterClient(options);
  const acks: Ack[] = [];
  const reads: Read[] = [];
  const cliReads: CliRead[] = [];
  let writeErrors = 0;
  let readErrors = 0;
  let sent = 0;
  let running = true;
  let loops: Promise<void>[] = [];
  try {
    const killed = await cluster.waitForLeader(LEADER_WAIT_MS);
    // Earlier steps are settled: everything they sent is in this value, or never will be.
    const base = (await writer.get()).value;
    const write = async () => {
      while (running) {
        sent++;
        try {
          const { value } = await writer.incrementAndGet(1n);
          acks.push({ atMs: performance.now(), value });
        } catch (err) {
          if (!(err instanceof CounterError)) throw err;
          writeErrors++;
        }
      }
    };
    const read = async () => {
      while (running) {
        const startMs = performance.now();
        try {
          const { value, node } = await reader.get({ consistency });
          reads.push({
            startMs,
            endMs: performance.now(),
            value,
            node,
            bound: base + BigInt(sent),
          });
        } catch (err) {
          if (!(err instanceof CounterError)) throw err;
          readErrors++;
          await sleep(10);
        }
      }
    };
    const staleCli = async () => {
      const r = await cli(["get", "--consistency", "stale", "--peers", cluster.ids.join(",")]);
      const bound = base + BigInt(sent);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      const m = r.stdout.match(/^(\d+) \(stale, from (127\.0\.0\.1:\d+)\)\n$/);
      assert.ok(m !== null, `unlabelled stale read: ${JSON.stringify(r.stdout)}`);
      cliReads.push({ line: r.stdout.trimEnd(), value: BigInt(m[1]), node: m[2], bound });
    };
    loops = [
      ...Array.from({ length: WRITERS }, write),
      ...Array.from({ length: READERS }, read),
    ];

    await waitFor(
      () => acks.length >= 100 && reads.length >= 50 ? true : undefined,
      "writes and reads to start",
      15_000,
    );
    if (consistency === "stale") await staleCli();

    // Kill the leader mid-run; restart it once another node leads.
    await cluster.kill(killed);
    const killedAtMs = performance.now();
    const [leader] = await Promise.all([
      cluster.waitForLeader(LEADER_WAIT_MS, [killed]),
      consistency === "stale" ? staleCli() : Promise.resolve(),
    ]);
    const electedAtMs = performance.now();
    await cluster.startNode(killed);
    await waitFor(
      () => {
        const acksAfter = acks.filter((a) => a.atMs > electedAtMs).length;
        const readsAfter = reads.filter((r) => r.startMs > electedAtMs).length;
        return acksAfter >= 150 && readsAfter >= 50 ? true : undefined;
      },
      "writes and reads at the new leader",
      15_000,
    );
    if (consistency === "stale") await staleCli();
    running = false;
    await Promise.all(loops);
    const final = await convergedValue(cluster.ids, CONVERGE_WAIT_MS);

    // ---- Checks. ----
    assert.ok(reads.length > 0);
    for (const r of [...reads, ...cliReads]) {
      assert.ok(r.value <= r.bound, `${consistency} read ${r.value} > ${r.bound}, the most sent`);
      assert.ok(r.value >= 0n && r.value <= final, `${consistency} read ${r.value}`);
    }
    for (const c of cliReads) assert.ok(cluster.ids.includes(c.node), c.line);
    let violations: string[] = [];
    if (consistency !== "stale") {
      // Real-time order: after an acknowledgement, and after another read.
      const ackedBefore = maxBefore(acks, (a) => a.atMs, (a) => a.value, base);
      const readBefore = maxBefore(reads, (r) => r.endMs, (r) => r.value, base);
      for (const r of reads) {
        const acked = ackedBefore(r.startMs);
        const seen = readBefore(r.startMs);
        if (r.value < acked || r.value < seen) {
          violations.push(
            `read from ${r.node} started at ${(r.startMs - killedAtMs).toFixed(1)} ms after ` +
              `the kill returned ${r.value}, but ${acked} was acknowledged and ${seen} read before`,
          );
        }
      }
    } else {
      // A node that ran throughout never goes back.
      for (const node of cluster.ids.filter((id) => id !== killed)) {
        const mine = reads.filter((r) => r.node === node);
        const before = maxBefore(mine, (r) => r.endMs, (r) => r.value, 0n);
        violations = violations.concat(
          mine.filter((r) => r.value < before(r.startMs)).map((r) =>
            `stale read from ${node} went back to ${r.value} (had ${before(r.startMs)})`
          ),
        );
      }
    }
    assert.deepEqual(violations.slice(0, 5), [], `${violations.length} violations`);
    const nodes = new Set(reads.map((r) => r.node));
    if (consistency === "follower" || consistency === "stale") {
      // These reads go to any node, not only the leader.
      assert.ok(nodes.size >= 2, `${consistency} reads answered only by ${[...nodes]}`);
    }
    return `${consistency}: killed ${killed}, ${leader} led after ` +
      `${(electedAtMs - killedAtMs).toFixed(0)} ms; ${acks.length} acks, ${writeErrors} write ` +
      `errors, ${reads.length} reads (${readErrors} errors) answered by ${nodes.size} nodes` +
      (cliReads.length > 0 ? `; CLI: ${cliReads.map((c) => c.line).join(" | ")}` : "") +
      `; ${(performance.now() - startedMs).toFixed(0)} ms`;
  } finally {
    running = false;
    await Promise.allSettled(loops);
    await Promise.allSettled([writer.close(), reader.close()]);
  }
}

Deno.test("read consistency levels under a leader change", async (t) => {
  const cluster = await LocalCluster.start({
    serveArgs: ["--election-timeout-ms", String(ELECTION_TIMEOUT_MS)],
  });
  let ok = true;
  try {
    for (const consistency of ["linearizable", "lease", "follower", "stale"] as const) {
      let summary = "";
      ok = await t.step(consistency, async () => {
        summary = await runLevel(cluster, consistency);
      });
      if (!ok) break;
      console.log(summary);
    }
  } finally {
    if (!ok) await dumpClusterLogs(cluster);
    await cluster.stop();
  }
});
