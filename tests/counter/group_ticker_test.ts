/** Tests of the host's one ticker for all its groups (lib/counter/group_ticker.ts), by hand. */

import assert from "node:assert/strict";
import { GroupTicker, type TickedGroup } from "../../lib/counter/group_ticker.ts";

class FakeGroup implements TickedGroup {
  ticks: number[] = [];
  slowTicks: number[] = [];
  awake = true;
  tick(nowMs: number): boolean {
    this.ticks.push(nowMs);
    return this.awake;
  }
  slowTick(nowMs: number): void {
    this.slowTicks.push(nowMs);
  }
}

Deno.test("every group ticks every tick with one clock reading; slow ticks spread over the period", () => {
  let now = 0;
  let reads = 0;
  const duties: number[] = [];
  const ticker = new GroupTicker<FakeGroup>({
    tickMs: 10,
    slowMs: 40,
    now: () => {
      reads++;
      return now;
    },
    onTick: (nowMs) => duties.push(nowMs),
  });
  const groups = Array.from({ length: 6 }, () => new FakeGroup());
  for (const g of groups) ticker.add(g);
  assert.equal(ticker.size, 6);
  const readsBefore = reads;
  for (let t = 0; t < 9; t++) {
    now = t * 10;
    ticker.runTick();
  }
  assert.equal(reads - readsBefore, 9, "one clock reading per tick, not per group");
  assert.deepEqual(duties, [0, 10, 20, 30, 40, 50, 60, 70, 80]);
  for (const g of groups) assert.deepEqual(g.ticks, [0, 10, 20, 30, 40, 50, 60, 70, 80]);
  // 6 groups, one slow tick each per 40 ms: 1.5 per 10 ms tick, round-robin; 80 ms after the
  // first tick every group has had exactly two.
  assert.deepEqual(groups.map((g) => g.slowTicks.length), [2, 2, 2, 2, 2, 2]);
  assert.deepEqual(groups[0].slowTicks, [10, 50]);
  assert.deepEqual(groups[1].slowTicks, [20, 60]);
  assert.equal(ticker.ticks, 9);
});

Deno.test("a long pause owes at most one round of slow ticks", () => {
  let now = 0;
  const ticker = new GroupTicker<FakeGroup>({ tickMs: 10, slowMs: 1000, now: () => now });
  const groups = [new FakeGroup(), new FakeGroup()];
  for (const g of groups) ticker.add(g);
  ticker.runTick();
  now = 60_000;
  ticker.runTick();
  assert.deepEqual(groups.map((g) => g.slowTicks), [[60_000], [60_000]]);
});

Deno.test("the ticker knows when every group is quiet; hurry() wakes it", () => {
  const ticker = new GroupTicker<FakeGroup>({
    tickMs: 10,
    idleTickMs: 100,
    slowMs: 1000,
    now: () => 0,
  });
  const a = new FakeGroup();
  const b = new FakeGroup();
  ticker.add(a);
  ticker.add(b);
  ticker.runTick();
  assert.equal(ticker.idle, false);
  a.awake = false;
  ticker.runTick();
  assert.equal(ticker.idle, false, "b is still awake");
  b.awake = false;
  ticker.runTick();
  assert.equal(ticker.idle, true);
  ticker.hurry();
  assert.equal(ticker.idle, false);
});

Deno.test("a removed group is no longer ticked; an added one is from the next tick", () => {
  let now = 0;
  const ticker = new GroupTicker<FakeGroup>({ tickMs: 10, slowMs: 10, now: () => now });
  const a = new FakeGroup();
  const b = new FakeGroup();
  ticker.add(a);
  ticker.runTick();
  ticker.add(b);
  ticker.delete(a);
  now = 10;
  ticker.runTick();
  assert.equal(a.ticks.length, 1);
  assert.equal(b.ticks.length, 1);
  assert.deepEqual(b.slowTicks, [10], "slowMs 10: each group once per 10 ms");
});

Deno.test("start and stop are idempotent and keep the groups", () => {
  const ticker = new GroupTicker<FakeGroup>({ tickMs: 10, slowMs: 1000 });
  ticker.add(new FakeGroup());
  ticker.start();
  ticker.start();
  ticker.stop();
  ticker.stop();
  assert.equal(ticker.size, 1);
});

Deno.test("bad settings are refused", () => {
  assert.throws(() => new GroupTicker({ tickMs: 0, slowMs: 1 }), RangeError);
  assert.throws(() => new GroupTicker({ tickMs: 10, slowMs: 0 }), RangeError);
  assert.throws(() => new GroupTicker({ tickMs: 10, idleTickMs: 5, slowMs: 1 }), RangeError);
});
