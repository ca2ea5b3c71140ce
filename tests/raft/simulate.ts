/**
 * Replays simulated cluster runs from their seeds.
 *
 * ```sh
 * deno run -A tests/raft/simulate.ts --seed 42 --verbose     # one run, full event trace
 * deno run -A tests/raft/simulate.ts --seeds 1..500 --nodes 5 # a range, one line per seed
 * deno run -A tests/raft/simulate.ts --multi-group --seeds 1..200 # nodes hosting 2 to 5 groups
 * ```
 *
 * Options: `--seed N`, `--seeds A..B`, `--nodes 3|5`, `--events N` (fault-phase events),
 * `--no-snapshots`, `--membership` / `--no-membership`, `--lease-reads` / `--no-lease-reads`,
 * `--pump` / `--no-pump` (node.ts's pumping shell or the plain one), `--disk-faults` /
 * `--no-disk-faults` (wiped dirs, detected data loss, long pauses), `--forced-reset` /
 * `--no-forced-reset` (a majority lost, one survivor forced into a new group), `--quiesce` /
 * `--no-quiesce` (idle groups stop heartbeating; the shell's node liveness wakes them),
 * `--staggered-start` / `--no-staggered-start` (initial members start empty at drawn times and
 * run the bootstrap check; in a multi-group run only with the flag),
 * `--multi-group` (every node hosts 2 to 5 groups, drawn from the seed: node and link faults hit
 * every group, node liveness is the host's), `--groups N` (a multi-group run with N groups),
 * `--mutation NAME` (a deliberately broken shell, to see a check fire), `--verbose` (print every
 * trace line), `--stats` (print counters).
 * Exits with status 1 when any run fails.
 *
 * @module
 */

import { type MultiGroupOptions, simulateGroups } from "./sim/multigroup.ts";
import { type Mutation, type SimResult, simulate } from "./sim/simulation.ts";

const MUTATIONS: readonly Mutation[] = [
  "no-identity-check",
  "wall-clock-stamps",
  "no-vote-floor",
  "send-before-persist",
  "forget-vote-on-crash",
  "corrupt-apply",
  "stale-read",
  "lose-sessions",
  "local-clock-expiry",
  "pump-during-snapshot",
  "late-ready-apply",
  "no-node-liveness",
  "group-liveness",
  "restart-unseen",
  "cross-group-delivery",
  "starting-not-fresh",
];

interface CliArgs {
  seeds: number[];
  base: Omit<MultiGroupOptions, "seed">;
  /** Multi-group runs (`--multi-group` or `--groups N`). */
  multiGroup: boolean;
  verbose: boolean;
  stats: boolean;
}

function usage(message: string): never {
  console.error(`error: ${message}`);
  console.error(
    "usage: deno run -A tests/raft/simulate.ts (--seed N | --seeds A..B) [--nodes 3|5] " +
      "[--events N] [--no-snapshots] [--membership|--no-membership] " +
      "[--lease-reads|--no-lease-reads] [--pump|--no-pump] [--disk-faults|--no-disk-faults] " +
      "[--forced-reset|--no-forced-reset] [--quiesce|--no-quiesce] " +
      "[--staggered-start|--no-staggered-start] [--multi-group] [--groups N] " +
      "[--mutation NAME] [--verbose] " +
      "[--stats]",
  );
  Deno.exit(2);
}

function parseInteger(flag: string, text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) usage(`${flag} needs a non-negative integer`);
  return Number(text);
}

function parseArgs(argv: string[]): CliArgs {
  const out: CliArgs = { seeds: [], base: {}, multiGroup: false, verbose: false, stats: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    switch (flag) {
      case "--seed":
        out.seeds = [parseInteger(flag, argv[++i])];
        break;
      case "--seeds": {
        const m = /^(\d+)\.\.(\d+)$/.exec(argv[++i] ?? "");
        if (m === null) usage("--seeds needs a range A..B");
        const lo = Number(m[1]);
        const hi = Number(m[2]);
        if (hi < lo) usage("--seeds range is empty");
        out.seeds = [];
        for (let s = lo; s <= hi; s++) out.seeds.push(s);
        break;
      }
      case "--nodes": {
        const n = parseInteger(flag, argv[++i]);
        if (n !== 3 && n !== 5) usage("--nodes must be 3 or 5");
        out.base.nodes = n;
        break;
      }
      case "--events":
        out.base.events = parseInteger(flag, argv[++i]);
        break;
      case "--no-snapshots":
        out.base.snapshots = false;
        break;
      case "--membership":
        out.base.membership = true;
        break;
      case "--no-membership":
        out.base.membership = false;
        break;
      case "--mutation": {
        const name = argv[++i] as Mutation;
        if (!MUTATIONS.includes(name)) usage(`--mutation must be one of ${MUTATIONS.join(", ")}`);
        out.base.mutation = name;
        break;
      }
      case "--lease-reads":
        out.base.leaseReads = true;
        break;
      case "--no-lease-reads":
        out.base.leaseReads = false;
        break;
      case "--pump":
        out.base.pump = true;
        break;
      case "--no-pump":
        out.base.pump = false;
        break;
      case "--disk-faults":
        out.base.diskFaults = true;
        break;
      case "--no-disk-faults":
        out.base.diskFaults = false;
        break;
      case "--forced-reset":
        out.base.forcedReset = true;
        break;
      case "--no-forced-reset":
        out.base.forcedReset = false;
        break;
      case "--quiesce":
        out.base.quiesce = true;
        break;
      case "--no-quiesce":
        out.base.quiesce = false;
        break;
      case "--staggered-start":
        out.base.staggeredStart = true;
        break;
      case "--no-staggered-start":
        out.base.staggeredStart = false;
        break;
      case "--multi-group":
        out.multiGroup = true;
        break;
      case "--groups": {
        const g = parseInteger(flag, argv[++i]);
        if (g < 2 || g > 5) usage("--groups must be 2 to 5");
        out.base.groups = g;
        out.multiGroup = true;
        break;
      }
      case "--verbose":
        out.verbose = true;
        break;
      case "--stats":
        out.stats = true;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (out.seeds.length === 0) usage("give --seed N or --seeds A..B");
  return out;
}

function main(): void {
  const args = parseArgs(Deno.args);
  let failures = 0;
  const batched = { seeds: 0, batches: 0, increments: 0, repeats: 0 };
  const started = performance.now();
  for (const seed of args.seeds) {
    const options = {
      ...args.base,
      seed,
      trace: args.verbose ? (line: string) => console.log(line) : undefined,
    };
    const multi = args.multiGroup ? simulateGroups(options) : null;
    const result: SimResult = multi ?? simulate(options);
    const s = result.stats;
    if (s.batches > 0) batched.seeds++;
    batched.batches += s.batches;
    batched.increments += s.batchedIncrements;
    batched.repeats += s.batchRepeats;
    const status = result.failure === null ? "ok" : `FAILED (${result.failure.check})`;
    console.log(
      `seed ${seed} nodes ${result.nodes}${multi === null ? "" : ` groups ${multi.groups}`}` +
        `${result.params.membership ? " +membership" : ""}` +
        `${result.params.pump ? " +pump" : ""}${result.params.diskFaults ? " +disk" : ""}${
          result.params.forcedReset ? " +reset" : ""
        }${result.params.quiesce ? " +quiesce" : ""}${
          result.params.staggeredStart ? " +staggered" : ""
        }: ` +
        `${status}; ${s.events} events, ${result.simMs.toFixed(0)} ms simulated, ` +
        `${s.elections} elections, final index ${s.finalIndex}${
          s.batches > 0 ? `, ${s.batchedIncrements} increments in ${s.batches} batches` : ""
        }, trace ${result.traceHash}`,
    );
    if (args.stats) console.log(JSON.stringify(multi === null ? s : { ...s, host: multi.host }));
    if (result.failure !== null) {
      failures++;
      const f = result.failure;
      console.log(`  ${f.message}`);
      if (!args.verbose) {
        console.log("  last events:");
        for (const line of f.recent) console.log(`    ${line}`);
      }
      console.log(`  replay: ${f.replay}`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${args.seeds.length - failures}/${args.seeds.length} seeds ok in ${seconds}s; ` +
      `${batched.seeds} seeds with batch entries: ${batched.increments} increments in ` +
      `${batched.batches} batches, ${batched.repeats} requests repeated inside a batch and ` +
      `answered as the first`,
  );
  if (failures > 0) Deno.exit(1);
}

if (import.meta.main) main();
