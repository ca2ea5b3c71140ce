/** Tests of the host's one ticker for all its groups (lib/counter/group_ticker.ts), by hand. */

import assert from "node:assert/strict";
import { GroupTicker, type TickedGroup } from "../../lib/counter/group_ticker.ts";

class FakeGroup implements TickedGroup {
  ticks: number[] = [];
  slowTicks: number[] = [];
  tick(nowMs: number): void {
    this.ticks.push(nowMs);
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
    slowTicks: 4,
    now: () => {
      reads++;
      return now;
    },
    onTick: (_nowMs, tick) => duties.push(tick),
  });
  const groups = Array.from({ length: 6 }, () => new FakeGroup());
  for (const g of groups) ticker.add(g);
  assert.equal(ticker.size, 6);
  for (let t = 0; t < 8; t++) {
    now = t * 10;
    ticker.runTick();
  }
  assert.equal(reads, 8, "one clock reading per tick, not per group");
  assert.deepEqual(duties, [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const g of groups) assert.deepEqual(g.ticks, [0, 10, 20, 30, 40, 50, 60, 70]);
  // Group k's slow tick comes on ticks k, k + 4, ... (mod 4): two each in 8 ticks, and no tick
  // runs more than two groups' slow ticks.
  assert.deepEqual(groups.map((g) => g.slowTicks), [
    [0, 40],
    [10, 50],
    [20, 60],
    [30, 70],
    [0, 40],
    [10, 50],
  ]);
  assert.equal(ticker.ticks, 8);
});

Deno.test("a removed group is no longer ticked; an added one is from the next tick", () => {
  const ticker = new GroupTicker<FakeGroup>({ tickMs: 10, slowTicks: 1, now: () => 5 });
  const a = new FakeGroup();
  const b = new FakeGroup();
  ticker.add(a);
  ticker.runTick();
  ticker.add(b);
  ticker.delete(a);
  ticker.runTick();
  assert.equal(a.ticks.length, 1);
  assert.equal(b.ticks.length, 1);
  assert.equal(b.slowTicks.length, 1, "slowTicks 1: every tick is slow");
});

Deno.test("start and stop are idempotent and keep the groups", () => {
  const ticker = new GroupTicker<FakeGroup>({ tickMs: 10, slowTicks: 1 });
  ticker.add(new FakeGroup());
  ticker.start();
  ticker.start();
  ticker.stop();
  ticker.stop();
  assert.equal(ticker.size, 1);
});

Deno.test("bad settings are refused", () => {
  assert.throws(() => new GroupTicker({ tickMs: 0, slowTicks: 1 }), RangeError);
  assert.throws(() => new GroupTicker({ tickMs: 10, slowTicks: 0 }), RangeError);
  assert.throws(() => new GroupTicker({ tickMs: 10, slowTicks: 1.5 }), RangeError);
});
