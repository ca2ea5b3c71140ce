/**
 * Before and after in one session: runs bench/figures.ts against one or more other checkouts'
 * `counter` and against this one, in turn, and prints the median (range) of each figure.
 *
 *     git worktree add --detach /tmp/base <commit>
 *     deno run -A bench/compare.ts --base /tmp/base [--base LABEL=DIR ...] [--rounds 5]
 *         [--ops 60000]
 *
 * Several `--base` options measure each change on its own: give the checkouts in the order the
 * changes landed.
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
    base: { type: "string", multiple: true },
    rounds: { type: "string", default: "5" },
    ops: { type: "string", default: "60000" },
    "get-ops": { type: "string", default: "200000" },
  },
});
if (values.base === undefined || values.base.length === 0) {
  console.error(
    "usage: deno run -A bench/compare.ts --base [LABEL=]DIR ... [--rounds N] [--ops N]",
  );
  Deno.exit(2);
}

const figures = new URL("./figures.ts", import.meta.url).pathname;
const sides: [string, string | undefined][] = [
  ...values.base.map((b, i): [string, string] => {
    const eq = b.indexOf("=");
    const label = eq > 0 ? b.slice(0, eq) : values.base!.length === 1 ? "base" : `base${i + 1}`;
    return [label, join(eq > 0 ? b.slice(eq + 1) : b, "main.ts")];
  }),
  ["this", undefined],
];

// deno-lint-ignore no-explicit-any
type Figures = any;
const runs: Record<string, Figures[]> = Object.fromEntries(sides.map(([name]) => [name, []]));

for (let round = 0; round < Number(values.rounds); round++) {
  // Alternate the order, so no side always runs on a machine just warmed up.
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

const pick: [string, (f: Figures) => number | null | undefined, number][] = [
  ["incr/s at 64", (f) => f.incr64.opsPerSec, 0],
  ["incr p99 ms at 64", (f) => f.incr64.p99Ms, 1],
  ["incr/s at 256", (f) => f.incr256.opsPerSec, 0],
  ["incr p99 ms at 256", (f) => f.incr256.p99Ms, 1],
  ["CPU µs/incr at 256, all 4", (f) => f.incr256.cpuUsPerOp?.total, 1],
  ["  client", (f) => f.incr256.cpuUsPerOp?.client, 1],
  ["  leader", (f) => f.incr256.cpuUsPerOp?.leader, 1],
  ["  follower (each)", (f) => f.incr256.cpuUsPerOp?.followers?.[0], 1],
  ["  follower (each)", (f) => f.incr256.cpuUsPerOp?.followers?.[1], 1],
  ["lin. gets/s at 256", (f) => f.get256.opsPerSec, 0],
  ["seed burst ms, warm", (f) => f.seedBurstWarmMs, 0],
  ["seed burst ms, warm client", (f) => f.seedBurstWarmClientMs, 0],
];
const rows = pick.map(([label, get, digits]) => [
  label,
  ...sides.map(([name]) => fmtSummary(runs[name].map(get), digits)),
]);
console.log(
  `median (range) of ${values.rounds} rounds in alternating order; ` +
    sides.map(([name, main]) => `${name} = ${main ?? "this checkout"}`).join("; "),
);
for (const [name] of sides) {
  console.log(`load before each ${name} run: ${runs[name].map((f) => f.load).join(" | ")}`);
}
console.log(table(["figure", ...sides.map(([name]) => name)], rows));
