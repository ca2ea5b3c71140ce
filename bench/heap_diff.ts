/**
 * Which objects a change added to the V8 heap: compares two heap snapshots (`.heapsnapshot`,
 * as `node:v8`'s `writeHeapSnapshot` or `bench/group_memory.ts --heap-snapshots` write them)
 * by constructor, counting each object's own size (not what it retains).
 *
 *     deno run -A bench/heap_diff.ts BEFORE.heapsnapshot AFTER.heapsnapshot [--per 300] [--top 30]
 *
 * `--per N` divides the differences by N (e.g. the groups added between the two snapshots, times
 * the replicas of each in the process), to read them as bytes per group. `--by-holder` adds to
 * each kind the object and property holding it (`array <- Map.table`), the first one found.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { table } from "./_util.ts";

/** Objects of one kind in a snapshot: how many, and their own bytes in all. */
interface Tally {
  count: number;
  bytes: number;
}

/** Totals by "type:name" (e.g. `object:Histogram`, `array:(object elements)`, `string`). */
async function tallies(path: string, byHolder: boolean): Promise<Map<string, Tally>> {
  const snapshot = JSON.parse(await Deno.readTextFile(path));
  const meta = snapshot.snapshot.meta;
  const fields: string[] = meta.node_fields;
  const types: string[] = meta.node_types[0];
  const stride = fields.length;
  const typeAt = fields.indexOf("type");
  const nameAt = fields.indexOf("name");
  const sizeAt = fields.indexOf("self_size");
  const nodes: number[] = snapshot.nodes;
  const strings: string[] = snapshot.strings;
  const holders = byHolder ? holderNames(snapshot, strings) : null;
  const out = new Map<string, Tally>();
  for (let i = 0; i < nodes.length; i += stride) {
    const type = types[nodes[i + typeAt]];
    // Strings are named by their contents: one bucket for all of them.
    const name = type === "string" || type === "concatenated string" || type === "sliced string"
      ? ""
      : strings[nodes[i + nameAt]];
    let key = name === "" ? type : `${type}:${name.slice(0, 60)}`;
    if (holders !== null) key += ` <- ${holders.get(i / stride) ?? "?"}`;
    const tally = out.get(key) ?? { count: 0, bytes: 0 };
    tally.count++;
    tally.bytes += nodes[i + sizeAt];
    out.set(key, tally);
  }
  return out;
}

/** For each node (by ordinal), "Holder.edge" of the first object found holding it. */
function holderNames(
  // deno-lint-ignore no-explicit-any
  snapshot: any,
  strings: string[],
): Map<number, string> {
  const meta = snapshot.snapshot.meta;
  const nodeFields: string[] = meta.node_fields;
  const edgeFields: string[] = meta.edge_fields;
  const edgeTypes: string[] = meta.edge_types[0];
  const nodes: number[] = snapshot.nodes;
  const edges: number[] = snapshot.edges;
  const stride = nodeFields.length;
  const edgeStride = edgeFields.length;
  const nameAt = nodeFields.indexOf("name");
  const countAt = nodeFields.indexOf("edge_count");
  const typeAt = edgeFields.indexOf("type");
  const edgeNameAt = edgeFields.indexOf("name_or_index");
  const toAt = edgeFields.indexOf("to_node");
  const out = new Map<number, string>();
  let e = 0;
  for (let i = 0; i < nodes.length; i += stride) {
    const holder = strings[nodes[i + nameAt]].slice(0, 40);
    for (let k = 0; k < nodes[i + countAt]; k++, e += edgeStride) {
      const edgeType = edgeTypes[edges[e + typeAt]];
      if (edgeType === "weak") continue;
      const child = edges[e + toAt] / stride;
      if (out.has(child)) continue;
      const edgeName = edgeType === "element" || edgeType === "hidden"
        ? `[${edges[e + edgeNameAt]}]`.replace(/\[\d+\]/, "[i]")
        : String(strings[edges[e + edgeNameAt]]).slice(0, 30);
      out.set(child, `${holder}.${edgeName}`);
    }
  }
  return out;
}

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    per: { type: "string", default: "1" },
    top: { type: "string", default: "30" },
    "by-holder": { type: "boolean", default: false },
  },
});
if (positionals.length !== 2) {
  console.error("usage: heap_diff.ts BEFORE AFTER [--per N] [--top K] [--by-holder]");
  Deno.exit(2);
}
const per = Number(values.per);
const [before, after] = await Promise.all(
  positionals.map((path) => tallies(path, values["by-holder"])),
);
const rows = [...after].map(([key, a]) => {
  const b = before.get(key) ?? { count: 0, bytes: 0 };
  return { key, count: (a.count - b.count) / per, bytes: (a.bytes - b.bytes) / per };
}).sort((x, y) => y.bytes - x.bytes);
const total = rows.reduce((sum, r) => sum + r.bytes, 0);
console.log(
  `heap added: ${(total / 1024).toFixed(1)} KiB${per !== 1 ? ` per unit (1/${per})` : ""}`,
);
console.log(table(
  ["bytes", "objects", "type:constructor"],
  rows.slice(0, Number(values.top)).map((r) => [
    r.bytes.toFixed(0),
    r.count.toFixed(1),
    r.key,
  ]),
));
