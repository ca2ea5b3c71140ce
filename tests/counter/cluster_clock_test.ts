/**
 * Cluster time (lib/counter/cluster_clock.ts) and what it protects: client sessions must not
 * expire early because of a leader's wall clock.
 */

import assert from "node:assert/strict";
import { ClusterClock } from "../../lib/counter/cluster_clock.ts";
import { CLIENT_IDLE_EXPIRY_MS, CounterStateMachine } from "../../lib/counter/state_machine.ts";
import type { IncrementCommand } from "../../lib/counter/command.ts";

const HOUR_MS = 60 * 60 * 1000;

/** A monotonic clock the test moves by hand. */
function manualClock(startMs = 1000): { now: () => number; advance: (ms: number) => void } {
  let t = startMs;
  return { now: () => t, advance: (ms) => t += ms };
}

Deno.test("cluster clock: stamps follow the monotonic clock from the newest stamp held", () => {
  const mono = manualClock();
  const clock = new ClusterClock(mono.now);
  clock.observe(5_000);
  assert.equal(clock.stamp(2), 5_000, "the first stamp of a term starts at the newest stamp");
  mono.advance(250);
  assert.equal(clock.stamp(2), 5_250);
  mono.advance(0.4);
  assert.equal(clock.stamp(2), 5_250, "whole milliseconds");
  clock.observe(9_000); // e.g. an entry of another leader, now in this node's log
  assert.equal(clock.stamp(2), 9_000, "never below a stamp seen in the log");
  mono.advance(10);
  assert.equal(clock.stamp(2), 9_000, "the base does not move within a term");
  mono.advance(4_000);
  assert.equal(clock.stamp(2), 9_260);
});

Deno.test("cluster clock: stamps are monotonic across leader changes", () => {
  // Three nodes take turns leading; each notes the stamps of the entries it persists. Their
  // monotonic clocks read wildly different values (they count from each process's start).
  const monos = [manualClock(0), manualClock(7 * HOUR_MS), manualClock(123)];
  const clocks = monos.map((m) => new ClusterClock(m.now));
  const log: number[] = [];
  const elapse = (ms: number) => monos.forEach((m) => m.advance(ms));
  for (let term = 2; term < 20; term++) {
    const leader = term % 3;
    for (let i = 0; i < 5; i++) {
      const stamp = clocks[leader].stamp(term);
      log.push(stamp);
      for (const c of clocks) c.observe(stamp); // replicated to every node
      elapse(100);
    }
    elapse(1_000); // the election
  }
  for (let i = 1; i < log.length; i++) {
    assert.ok(log[i] >= log[i - 1], `stamp ${i} (${log[i]}) is below stamp ${i - 1}`);
  }
  // Cluster time never ran ahead of the real time that passed (18 terms of 1.5 s).
  assert.ok(log[log.length - 1] - log[0] <= 18 * 1_500);
});

Deno.test("cluster clock: a wall-clock step cannot expire a live session (retry answered once)", () => {
  // The leader's wall clock jumps 2 h ahead between a request and its retry. Cluster time only
  // moves with the monotonic clock, so the session is still there and the retry is a duplicate.
  const mono = manualClock();
  const clock = new ClusterClock(mono.now);
  const sm = new CounterStateMachine();
  const incr = (seq: number): IncrementCommand => ({
    delta: 5n,
    proposedAtMs: clock.stamp(3),
    clientId: "c",
    seq,
    ackedBelow: 1,
  });
  assert.deepEqual(sm.apply(incr(1)), { ok: true, value: 5n });
  mono.advance(2_000); // two seconds of real time, whatever the wall clock says
  assert.deepEqual(sm.apply(incr(1)), { ok: true, value: 5n }, "the retry is answered");
  assert.equal(sm.value, 5n, "and not applied twice");
  // The session does expire after an hour of cluster time.
  mono.advance(CLIENT_IDLE_EXPIRY_MS + 1);
  sm.apply({ delta: 0n, proposedAtMs: clock.stamp(3), clientId: "", seq: 0, ackedBelow: 0 });
  assert.equal(sm.sessionCount, 0);
});

Deno.test("state machine: newestActivityMs survives a snapshot, so cluster time continues", () => {
  const sm = new CounterStateMachine();
  sm.apply({ delta: 1n, proposedAtMs: 40_000, clientId: "a", seq: 1, ackedBelow: 1 });
  sm.apply({ delta: 1n, proposedAtMs: 90_000, clientId: "b", seq: 1, ackedBelow: 1 });
  const copy = new CounterStateMachine();
  copy.restore(sm.snapshot());
  assert.equal(copy.newestActivityMs(), 90_000);
  assert.equal(new CounterStateMachine().newestActivityMs(), 0);
});
