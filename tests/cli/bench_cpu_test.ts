/** The CPU split of `counter bench` (lib/cli/bench/cpu.ts): reading /proc, and the arithmetic. */

import assert from "node:assert/strict";
import {
  benchProcesses,
  cpuSplit,
  parseStatTicks,
  readCpuTicks,
  sampleCpu,
} from "../../lib/cli/bench/cpu.ts";

// A real line's shape, with a command name that holds a space and a ") ".
const STAT = "4242 (deno ) x) S 1 4242 4242 0 -1 4194560 9153 0 0 0 713 58 0 0 20 0 12 0 " +
  "1234 1000000 12000 18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0";

Deno.test("parseStatTicks adds utime and stime, counting fields from the last ')'", () => {
  assert.deepEqual(parseStatTicks(STAT), { ticks: 713 + 58 });
  assert.deepEqual(parseStatTicks("garbage", "/proc/1/stat"), {
    unavailable: "/proc/1/stat has no utime and stime fields",
  });
  assert.deepEqual(parseStatTicks("1 (x) S 1 2", "/proc/1/stat"), {
    unavailable: "/proc/1/stat has no utime and stime fields",
  });
});

Deno.test("readCpuTicks reads this process on Linux, and says why it cannot elsewhere", () => {
  const self = readCpuTicks("self");
  if (Deno.build.os === "linux") {
    // Starting Deno alone takes well over one 10 ms tick.
    assert.ok("ticks" in self && self.ticks > 0, JSON.stringify(self));
  } else {
    assert.ok("unavailable" in self);
  }
  const gone = readCpuTicks(2 ** 31 - 1);
  assert.ok("unavailable" in gone && gone.unavailable.startsWith("cannot read /proc/"));
});

Deno.test("cpuSplit divides each process's ticks by the ops of the window", () => {
  const processes = benchProcesses([{ id: "a:1", pid: 10 }, { id: "b:2", pid: 20 }], "b:2");
  const start = { readings: [{ ticks: 100 }, { ticks: 50 }, { ticks: 7 }] };
  const end = { readings: [{ ticks: 103 }, { ticks: 50 }, { ticks: 9 }] };
  assert.deepEqual(cpuSplit(processes, start, end, 3000), {
    available: true,
    ops: 3000,
    ticksPerSec: 100,
    processes: [
      { id: "client", role: "client", ticks: 3, usPerOp: 10 },
      { id: "a:1", role: "follower", ticks: 0, usPerOp: 0 },
      { id: "b:2", role: "leader", ticks: 2, usPerOp: 6.7 },
    ],
    totalUsPerOp: 16.7,
  });
});

Deno.test("nodes are labelled by id when the leader is unknown", () => {
  const processes = benchProcesses([{ id: "a:1", pid: 10 }], null);
  assert.deepEqual(processes.map((p) => p.role), ["client", null]);
  assert.deepEqual(benchProcesses([{ id: "a:1", pid: 10 }], "elsewhere:1")[1].role, null);
});

Deno.test("cpuSplit is unavailable without ops, with a failed reading, or a clock going back", () => {
  const processes = benchProcesses([{ id: "a:1", pid: null }], null);
  const ok = { readings: [{ ticks: 1 }, { ticks: 1 }] };
  assert.deepEqual(cpuSplit(processes, ok, ok, 0), {
    available: false,
    reason: "no operation completed in the window",
  });
  const sample = sampleCpu(processes, () => ({ ticks: 5 }));
  assert.deepEqual(sample.readings[1], { unavailable: "node a:1 is not running" });
  assert.deepEqual(cpuSplit(processes, ok, sample, 10), {
    available: false,
    reason: "node a:1 is not running",
  });
  const back = { readings: [{ ticks: 0 }, { ticks: 1 }] };
  assert.deepEqual(cpuSplit(processes, ok, back, 10), {
    available: false,
    reason: "client's CPU time went backwards",
  });
});
