/**
 * Before and after in one session: runs bench/figures.ts against a baseline checkout's
 * `counter` and against this one, alternating, and prints the median (range) of each figure.
 *
 *     git worktree add /tmp/base <commit>
 *     deno run -A bench/compare.ts --base /tmp/base [--rounds 5] [--ops 60000]
 *
 * Each round starts a fresh cluster for each side (figures.ts). Alternating keeps a burst of
 * outside load from landing on one side only; the load average before each run is printed.
 * Check /proc/loadavg first: nothing else may run while this measures.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fmtSummary, table } from "./_util.ts";

const { values } = parseArgs({
  options: {
    base: { type: "string" },
    rounds: { type: "string", default: "5" },
    ops: { type: "string", default: "60000" },
    "get-ops": { type: "string", default: "200000" },
  },
});
if (values.base === undefined) {
  console.error("usage: deno run -A bench/compare.ts --base DIR [--rounds N] [--ops N]");
  Deno.exit(2);
}

const figures = new URL("./figures.ts", import.meta.url).pathname;
const sides: [string, string | undefined][] = [
  ["base", join(values.base, "main.ts")],
  ["this", undefined],
];

// deno-lint-ignore no-explicit-any
type Figures = any;
const runs: Record<string, Figures[]> = { base: [], this: [] };

for (let round = 0; round < Number(values.rounds); round++) {
  // Alternate which side goes first, so neither always runs on a machine just warmed up.
  const order = round % 2 === 0 ? sides : [...sides].reverse();
  for (const [name, main] of order) {
    const args = ["run", "-A", figures, "--ops", values.ops!, "--get-ops", values["get-ops"]!];
    if (main !== undefined) args.push("--main", main);
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) throw new Error(`figures.ts failed for ${name}: ${text}`);
    const f = JSON.parse(text.split("\n").at(-1)!);
    runs[name].push(f);
    console.error(`[compare] round ${round + 1} ${name}: ${text}`);
  }
}

const pick: [string, (f: Figures) => number, number][] = [
  ["incr/s at 64", (f) => f.incr64.opsPerSec, 0],
  ["incr p99 ms at 64", (f) => f.incr64.p99Ms, 1],
  ["incr/s at 256", (f) => f.incr256.opsPerSec, 0],
  ["incr p99 ms at 256", (f) => f.incr256.p99Ms, 1],
  ["CPU µs/incr at 256, all 4", (f) => f.incr256.cpuUsPerOp.total, 1],
  ["  client", (f) => f.incr256.cpuUsPerOp.client, 1],
  ["  leader", (f) => f.incr256.cpuUsPerOp.leader, 1],
  ["  follower (each)", (f) => f.incr256.cpuUsPerOp.followers[0], 1],
  ["  follower (each)", (f) => f.incr256.cpuUsPerOp.followers[1], 1],
  ["lin. gets/s at 256", (f) => f.get256.opsPerSec, 0],
  ["seed burst ms, warm", (f) => f.seedBurstWarmMs, 0],
];
const rows = pick.map(([label, get, digits]) => [
  label,
  fmtSummary(runs.base.map(get), digits),
  fmtSummary(runs.this.map(get), digits),
]);
console.log(
  `median (range) of ${values.rounds} alternating rounds; base = ${values.base}; ` +
    `load before each run: base ${runs.base.map((f) => f.load).join(" ")}; ` +
    `this ${runs.this.map((f) => f.load).join(" ")}`,
);
console.log(table(["figure", "base", "this"], rows));
