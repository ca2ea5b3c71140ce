/**
 * Parses `counter`'s command line into one typed {@linkcode Invocation} per subcommand.
 *
 * Parsing is strict: an unknown flag, a flag without its value, a malformed number or address,
 * a repeated flag and an extra argument are all {@linkcode UsageError}s, because a command line
 * that means something other than what the user typed must not reach a live cluster.
 *
 * `node:util`'s `parseArgs` splits the tokens; this module checks them and builds the options.
 * It reads negative numbers (`counter incr -5`) as arguments, not as flags.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from "../logging/logger.ts";
import { COMMAND_NAMES, type CommandName, UsageError } from "./usage_error.ts";
import {
  parseAddressList,
  parseBoundedInteger,
  parseChoice,
  parseHostPort,
  parseInt64,
} from "./values.ts";

export { COMMAND_NAMES, type CommandName, formatUsageError, UsageError } from "./usage_error.ts";

/** Peers a client command talks to when neither `--peers` nor `COUNTER_PEERS` is given. */
export const DEFAULT_PEERS: readonly string[] = [
  "127.0.0.1:8081",
  "127.0.0.1:8082",
  "127.0.0.1:8083",
];

/** Environment variable read for the peer list when `--peers` is absent. */
export const PEERS_ENV = "COUNTER_PEERS";

/** Environment variable naming the CA file clients trust (`--tls-ca`). */
export const TLS_CA_ENV = "COUNTER_TLS_CA";

/** Environment variable naming the token file clients prove (`--token-file`). */
export const TOKEN_FILE_ENV = "COUNTER_TOKEN_FILE";

/** Default Raft group name, as in SOFAJRaft's counter example. */
export const DEFAULT_GROUP = "counter";

/** Default election timeout. */
export const DEFAULT_ELECTION_TIMEOUT_MS = 1000;

/** Default interval between a leader's heartbeats. */
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 100;

/** Default interval between snapshots. */
export const DEFAULT_SNAPSHOT_INTERVAL_SECS = 3600;

/** Default limit on how long a new node waits for the other initial members before bootstrapping. */
export const DEFAULT_BOOTSTRAP_TIMEOUT_SECS = 300;
/** Default time after which a connection that sends nothing (and awaits nothing) is closed. */
export const DEFAULT_IDLE_TIMEOUT_SECS = 300;

/** Default time within which a frame must arrive whole once its first byte has. */
export const DEFAULT_FRAME_TIMEOUT_SECS = 10;

/**
 * Default number of log entries since the last snapshot that triggers a new one. The counter's
 * snapshot is a few KiB, so snapshotting often is cheap (at 20,000 increments/s, one small atomic
 * write every half second), while every entry not yet covered by a snapshot costs memory (the log
 * keeps it) and restart time (it is replayed). 10,000 keeps both small: under a second of replay
 * and a few MB of memory.
 */
export const DEFAULT_SNAPSHOT_LOG_ENTRIES = 10_000;

/**
 * Default number of entries kept below a snapshot when compacting, so that a follower that lags
 * by less than this catches up from the log rather than by InstallSnapshot.
 */
export const DEFAULT_SNAPSHOT_RETAIN_ENTRIES = 5_000;

/**
 * Default bytes of entry data since the last snapshot that trigger a new one (4 MiB). Increments
 * are batched into entries of up to a few KiB each, so the entry count alone would let the log
 * kept in memory reach tens of MiB under load; this bounds it by size as well.
 */
export const DEFAULT_SNAPSHOT_LOG_BYTES = 4 * 1024 * 1024;

/** Default bytes of entry data kept below a snapshot when compacting (1 MiB). */
export const DEFAULT_SNAPSHOT_RETAIN_BYTES = 1024 * 1024;

/**
 * Default size at which the log rolls to a new segment file (4 MiB, about 45,000 increments).
 * Compaction deletes whole segments, so smaller segments keep less history on disk.
 */
export const DEFAULT_LOG_SEGMENT_BYTES = 4 * 1024 * 1024;

/** Default deadline for one client request, retries included. */
export const DEFAULT_TIMEOUT_MS = 5000;

/** Default first port of `counter demo`'s three nodes. */
export const DEFAULT_BASE_PORT = 8081;

/** Default number of requests `counter bench` sends: SOFAJRaft's counter client sends 1000. */
export const DEFAULT_BENCH_OPS = 1000;

/** Operations `counter bench --mix` can weigh. */
export const BENCH_OP_KINDS = ["incr", "get"] as const;

/** An operation `counter bench` sends: an increment or a read. */
export type BenchOpKind = typeof BENCH_OP_KINDS[number];

/** Percentage of each operation in `counter bench`'s closed loop; they add up to 100. */
export type BenchMix = Record<BenchOpKind, number>;

/** Default `--mix` of `counter bench`: increments only. */
export const DEFAULT_BENCH_MIX: Readonly<BenchMix> = { incr: 100, get: 0 };

/** Read consistency levels of `counter bench --consistency`. */
export const READ_CONSISTENCIES = ["linearizable", "lease", "follower", "stale"] as const;

/** How a read is served: through the leader's ReadIndex, or from any node's local state. */
export type ReadConsistency = typeof READ_CONSISTENCIES[number];

/** Bounds on numeric options; anything outside is a typo rather than a wish. */
export const LIMITS = {
  electionTimeoutMs: { min: 1, max: 600_000 },
  heartbeatIntervalMs: { min: 1, max: 60_000 },
  // 0 turns periodic snapshots off.
  snapshotIntervalSecs: { min: 0, max: 31_536_000 },
  // 0 waits forever.
  bootstrapTimeoutSecs: { min: 0, max: 31_536_000 },
  // 0 turns log-size snapshots off.
  snapshotLogEntries: { min: 0, max: 1_000_000_000 },
  snapshotRetainEntries: { min: 0, max: 1_000_000_000 },
  // 0 turns size-triggered snapshots off.
  snapshotLogBytes: { min: 0, max: 1024 * 1024 * 1024 * 1024 },
  snapshotRetainBytes: { min: 0, max: 1024 * 1024 * 1024 * 1024 },
  logSegmentBytes: { min: 4096, max: 1024 * 1024 * 1024 },
  // 0 turns the idle timeout off.
  idleTimeoutSecs: { min: 0, max: 86_400 },
  frameTimeoutSecs: { min: 1, max: 3600 },
  timeoutMs: { min: 1, max: 3_600_000 },
  // The demo uses three consecutive ports starting here.
  basePort: { min: 1, max: 65_533 },
  ops: { min: 1, max: 10_000_000 },
  // Every increment of the burst is in flight at once, a promise and a frame each; past this
  // many the client's memory, not the cluster, is what gets measured.
  burstOps: { min: 1, max: 100_000 },
  // Closed-loop workers share one client; 10,000 in flight is far past what a group saturates at.
  concurrency: { min: 1, max: 10_000 },
  durationSecs: { min: 1, max: 3600 },
  warmup: { min: 0, max: 1_000_000 },
  groupLength: { min: 1, max: 64 },
  // `bench --groups`: every group is a Raft group on every node; past a few hundred the nodes'
  // ticks and heartbeats, not the client, are what gets measured.
  benchGroups: { min: 1, max: 1024 },
  certsDays: { min: 1, max: 36_500 },
} as const;

/** Options of `counter serve`. */
export interface ServeOptions {
  /** Directory holding this node's log, metadata and snapshots (`--data`). */
  dataDir: string;
  /** This node's `HOST:PORT`: its id, the address peers and clients reach it at (`--id`). */
  id: string;
  /** The address to listen on when it is not `id` (`--listen`), such as `0.0.0.0:8081`. */
  listen?: string;
  /** Every member of the group, including `id` (`--conf`). */
  conf: string[];
  /** Raft group name (`--group`). */
  group: string;
  /**
   * The groups to host (`--groups a,b,c`; default: `group` alone), each with its own log, leader
   * and membership under `DATA/groups/NAME/`.
   */
  groups: string[];
  /** Election timeout (`--election-timeout-ms`); always greater than the heartbeat interval. */
  electionTimeoutMs: number;
  /** Leader heartbeat interval (`--heartbeat-interval-ms`). */
  heartbeatIntervalMs: number;
  /** Seconds between snapshots (`--snapshot-interval-secs`); 0 means never. */
  snapshotIntervalSecs: number;
  /** `--join`: members of an existing group this new, empty node will be added to. */
  join?: string[];
  /** Entries since the last snapshot that trigger one (`--snapshot-log-entries`); 0 means never. */
  snapshotLogEntries: number;
  /** Entries kept below a snapshot when compacting (`--snapshot-retain-entries`). */
  snapshotRetainEntries: number;
  /** Entry bytes since the last snapshot that trigger one (`--snapshot-log-bytes`); 0 = never. */
  snapshotLogBytes: number;
  /** Most entry bytes kept below a snapshot when compacting (`--snapshot-retain-bytes`). */
  snapshotRetainBytes: number;
  /** Log segment file size (`--log-segment-bytes`). */
  logSegmentBytes: number;
  /**
   * How long an empty node started with `--conf` waits for every other initial member to say
   * it never heard of this id (`--bootstrap-timeout-secs`); 0 means forever.
   */
  bootstrapTimeoutSecs: number;
  /** Seconds a silent connection stays open (`--idle-timeout-secs`); 0 means forever. */
  idleTimeoutSecs: number;
  /** Seconds a started frame may take to arrive (`--frame-timeout-secs`). */
  frameTimeoutSecs: number;
  /** Lowest level logged (`--log-level`). */
  logLevel: LogLevel;
  /** Log line format (`--log-format`). */
  logFormat: LogFormat;
  /** `--metrics-addr`: where to serve /metrics, /health and /status over HTTP; none if absent. */
  metricsAddr?: string;
  /** `--tls-cert`, `--tls-key`, `--tls-ca`: serve and dial peers with TLS; all three or none. */
  tls?: { certFile: string; keyFile: string; caFile: string };
  /** `--cluster-token-file`: the secret peers prove to one another. */
  clusterTokenFile?: string;
  /** `--client-token-file`: the token clients prove for data and read ops. */
  clientTokenFile?: string;
  /** `--admin-token-file`: the token clients prove for admin ops. */
  adminTokenFile?: string;
}

/** Options shared by the commands that talk to a running group. */
export interface ClientOptions {
  /** Addresses of the group's nodes (`--peers`, else `COUNTER_PEERS`, else the defaults). */
  peers: string[];
  /** Raft group name (`--group`). */
  group: string;
  /** Print one JSON object instead of plain text (`--json`). */
  json: boolean;
  /** Deadline for one request, retries included (`--timeout-ms`). */
  timeoutMs: number;
  /** CA file to trust, connecting with TLS (`--tls-ca`, else `COUNTER_TLS_CA`); plain if absent. */
  tlsCa?: string;
  /** Token file to prove (`--token-file`, else `COUNTER_TOKEN_FILE`); none if absent. */
  tokenFile?: string;
}

/** Options of `counter incr`. */
export interface IncrOptions extends ClientOptions {
  /** Signed amount to add; always within the int64 range. */
  delta: bigint;
}

/** Options of `counter get`. */
/** The accepted `--consistency` values of `counter get`. */
export const GET_CONSISTENCIES = READ_CONSISTENCIES;

/** Options of `counter get`. */
export interface GetOptions extends ClientOptions {
  /** Read consistency (`--consistency`); default linearizable. */
  consistency: (typeof GET_CONSISTENCIES)[number];
}

/** Subcommands of `counter peers`; `list` is the default. */
export const PEERS_ACTIONS = ["list", "add", "remove", "promote"] as const;

/** What `counter peers` does, with the arguments of that subcommand. */
export type PeersAction =
  | { action: "list" }
  /** `learner`: stay a learner instead of being promoted once caught up (`--learner`). */
  | { action: "add"; node: string; learner: boolean }
  | { action: "remove"; node: string }
  | { action: "promote"; node: string };

/** Options of `counter peers`. */
export type PeersOptions = ClientOptions & PeersAction;

/** The subcommands of `counter groups`. */
export const GROUPS_ACTIONS = ["list", "create", "remove"] as const;

/** What `counter groups` does, with the arguments of that subcommand. */
export type GroupsAction =
  | { action: "list" }
  /** `voters`: the new group's members (`--voters`); default: `peers`. */
  | { action: "create"; name: string; voters: string[] }
  | { action: "remove"; name: string };

/** Options of `counter groups`. */
export type GroupsOptions = ClientOptions & GroupsAction;

/**
 * Options of `counter leader`: name the leader, move leadership to `node`, or spread the leaders
 * of every group the nodes serve evenly over the voters (`balance`).
 */
export type LeaderOptions =
  & ClientOptions
  & ({ action: "show" } | { action: "transfer"; node: string } | { action: "balance" });

/** Options of `counter status`. */
export type StatusOptions = ClientOptions;

/** Options of `counter snapshot`. With `peer`, `peers` is `[peer]`. */
export interface SnapshotOptions extends ClientOptions {
  /** The one node to take a snapshot on (`--peer`); undefined: every node of `peers`. */
  peer: string | undefined;
}

/** Options of `counter health`. */
export type HealthOptions = ClientOptions;

/** Options of `counter backup`. */
export interface BackupOptions extends ClientOptions {
  /** The file to write the snapshot to (`--out`). */
  out: string;
  /** Replace `out` when it exists (`--force`). */
  force: boolean;
}

/** Options of `counter restore`. */
export interface RestoreOptions {
  /** The new node's data dir, absent or empty (`--data`). */
  dataDir: string;
  /** The backup file (`--from`). */
  from: string;
  /** The new node's id (`--id`). */
  id: string;
  /** The new group's members, `id` included (`--conf`). */
  conf: string[];
  /** Raft group name (`--group`). */
  group: string;
  /** Print one JSON object instead of plain text (`--json`). */
  json: boolean;
}

/** Options of `counter inspect`. */
export interface InspectOptions {
  /** The data dir to read (`--data`). */
  dataDir: string;
  /** Print one JSON object instead of plain text (`--json`). */
  json: boolean;
}

/** Options of `counter recover`. */
export interface RecoverOptions {
  /** The stopped node's data dir (`--data`). */
  dataDir: string;
  /** Run without asking for confirmation (`--yes`). */
  yes: boolean;
  /** Print one JSON object (`--json`). */
  json: boolean;
}

/** Options of `counter demo`. */
export interface DemoOptions {
  /** Where the nodes keep their data (`--data`); undefined means a new temporary directory. */
  dataDir: string | undefined;
  /** First of the three consecutive ports the nodes listen on (`--base-port`). */
  basePort: number;
  /** Keep the cluster running after the workload until interrupted (`--keep`). */
  keep: boolean;
}

/**
 * Options of `counter bench`.
 *
 * Without `concurrency` the run is the burst of SOFAJRaft's counter client: `ops` increments
 * with deltas 0 to `ops` - 1, all in flight at once. With it, `concurrency` workers each send one
 * request at a time (a closed loop) until `ops` requests or `durationSecs` seconds.
 */
export interface BenchOptions extends ClientOptions {
  /** Requests to measure (`--ops`); null when the run lasts `durationSecs` instead. */
  ops: number | null;
  /** Seconds to run (`--duration`); null when the run counts `ops` instead. */
  durationSecs: number | null;
  /** Closed-loop workers (`--concurrency`); null for the burst, every increment at once. */
  concurrency: number | null;
  /** Percentage of increments and reads (`--mix`); increments only unless given. */
  mix: BenchMix;
  /** Consistency of the mix's reads (`--consistency`). */
  consistency: ReadConsistency;
  /** Requests sent before measuring, not measured (`--warmup`). */
  warmup: number;
  /** Start a local 3-node cluster for the run, and stop it afterwards (`--local`). */
  local: boolean;
  /** With `local`: the cluster serves TLS and the client connects with it (`--tls`). */
  tls: boolean;
  /**
   * The groups the requests are spread over, round robin (`--groups N`): `group` first, then
   * `groupPrefix` 1 to N-1. Just `[group]` without `--groups`.
   */
  groups: string[];
}

/** Default `--group-prefix` of `counter bench --groups`: groups counter, g1, g2, ... */
export const DEFAULT_BENCH_GROUP_PREFIX = "g";

/** The groups of `counter bench --groups count`: `first`, then `prefix`1 to `prefix`(count-1). */
export function benchGroupNames(first: string, prefix: string, count: number): string[] {
  return [first, ...Array.from({ length: count - 1 }, (_, k) => `${prefix}${k + 1}`)];
}

/** Default validity of the certificates `counter certs` makes, in days. */
export const CERTS_DAYS_DEFAULT = 365;

/** Options of `counter certs`. */
export interface CertsOptions {
  /** Directory the files go to (`--out`). */
  outDir: string;
  /** Hosts the node certificate names (`--hosts`). */
  hosts: string[];
  /** Validity in days (`--days`). */
  days: number;
  /** Overwrite existing files (`--force`). */
  force: boolean;
}

/** What the command line asks for. */
export type Invocation =
  | { command: "help"; topic: CommandName | undefined }
  | { command: "version" }
  | { command: "serve"; options: ServeOptions }
  | { command: "incr"; options: IncrOptions }
  | { command: "get"; options: GetOptions }
  | { command: "demo"; options: DemoOptions }
  | { command: "bench"; options: BenchOptions }
  | { command: "status"; options: StatusOptions }
  | { command: "leader"; options: LeaderOptions }
  | { command: "peers"; options: PeersOptions }
  | { command: "groups"; options: GroupsOptions }
  | { command: "snapshot"; options: SnapshotOptions }
  | { command: "health"; options: HealthOptions }
  | { command: "backup"; options: BackupOptions }
  | { command: "restore"; options: RestoreOptions }
  | { command: "inspect"; options: InspectOptions }
  | { command: "recover"; options: RecoverOptions }
  | { command: "certs"; options: CertsOptions };

/** Options for {@linkcode parseCommandLine}. */
export interface ParseOptions {
  /**
   * Reads an environment variable; default `Deno.env.get`. Only `COUNTER_PEERS`,
   * `COUNTER_TLS_CA` and `COUNTER_TOKEN_FILE` are read.
   */
  env?: (name: string) => string | undefined;
}

type OptionType = "string" | "boolean";
type Spec = Record<string, OptionType>;

interface Scanned {
  strings: Map<string, string>;
  flags: Set<string>;
  positionals: string[];
}

const HELP_OPTION = "help";
// A token that starts like a negative number is an argument, not a flag (`counter incr -5`).
const NEGATIVE_NUMBER_PATTERN = /^-[0-9]/;
const GROUP_PATTERN = /^[A-Za-z0-9._-]+$/;

function isCommandName(text: string): text is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(text);
}

/** True when `--help` or `-h` appears before any `--`. */
function asksForHelp(argv: readonly string[]): boolean {
  for (const token of argv) {
    if (token === "--") return false;
    if (token === "--help" || token === "-h") return true;
  }
  return false;
}

function takesValue(token: string | undefined, spec: Spec): boolean {
  if (token === undefined || !token.startsWith("--") || token.includes("=")) return false;
  return spec[token.slice(2)] === "string";
}

/** Splits `argv` with `parseArgs`, then enforces what `parseArgs` in loose mode lets through. */
function scan(argv: readonly string[], spec: Spec): Scanned {
  const args = argv.slice();
  for (let i = 0; i < args.length && args[i] !== "--"; i++) {
    // Any non-dash text works as a stand-in; the real text is read back through the index.
    if (NEGATIVE_NUMBER_PATTERN.test(args[i]) && !takesValue(args[i - 1], spec)) args[i] = "0";
  }
  const options: Record<string, { type: OptionType; short?: string }> = {};
  for (const [name, type] of Object.entries(spec)) options[name] = { type };
  options[HELP_OPTION] = { type: "boolean", short: "h" };

  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const scanned: Scanned = { strings: new Map(), flags: new Set(), positionals: [] };
  for (const token of tokens) {
    if (token.kind === "option-terminator") continue;
    if (token.kind === "positional") {
      scanned.positionals.push(argv[token.index]);
      continue;
    }
    const type = spec[token.name];
    if (type === undefined) throw new UsageError(`unknown option ${token.rawName}`);
    if (scanned.strings.has(token.name) || scanned.flags.has(token.name)) {
      throw new UsageError(`option ${token.rawName} is given more than once`);
    }
    if (type === "boolean") {
      if (token.value !== undefined) throw new UsageError(`option ${token.rawName} takes no value`);
      scanned.flags.add(token.name);
      continue;
    }
    const value = token.value;
    const missing = value === undefined || value === "" ||
      (!token.inlineValue && value.startsWith("-") && !NEGATIVE_NUMBER_PATTERN.test(value));
    if (missing) throw new UsageError(`option ${token.rawName} needs a value`);
    scanned.strings.set(token.name, value);
  }
  return scanned;
}

function expectPositionals(scanned: Scanned, max: number): void {
  if (scanned.positionals.length > max) {
    throw new UsageError(`unexpected argument ${JSON.stringify(scanned.positionals[max])}`);
  }
}

function required(scanned: Scanned, name: string): string {
  const value = scanned.strings.get(name);
  if (value === undefined) throw new UsageError(`missing required option --${name}`);
  return value;
}

function integerOption(
  scanned: Scanned,
  name: string,
  fallback: number,
  bounds: { min: number; max: number },
): number {
  const text = scanned.strings.get(name);
  return text === undefined ? fallback : parseBoundedInteger(text, `--${name}`, bounds);
}

function groupOption(scanned: Scanned): string {
  return checkGroupName(scanned.strings.get("group") ?? DEFAULT_GROUP, "--group");
}

/** `group` when it can name a group (and a directory under `DATA/groups/`), else a usage error. */
export function checkGroupName(group: string, what: string): string {
  const { min, max } = LIMITS.groupLength;
  if (
    !GROUP_PATTERN.test(group) || group.length < min || group.length > max || group === "." ||
    group === ".."
  ) {
    throw new UsageError(
      `invalid ${what} ${
        JSON.stringify(group)
      }: expected ${min} to ${max} letters, digits, '.', '_' or '-' (not . or ..)`,
    );
  }
  return group;
}

/** `--groups a,b,c`: distinct valid names, at least one; else `[group]`. */
function groupsOption(scanned: Scanned, group: string): string[] {
  const text = scanned.strings.get("groups");
  if (text === undefined) return [group];
  const names = text.split(",").map((name) => name.trim());
  if (names.length === 0 || names.some((name) => name === "")) {
    throw new UsageError(
      `invalid --groups ${JSON.stringify(text)}: expected names separated by commas`,
    );
  }
  for (const name of names) checkGroupName(name, "group name in --groups");
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw new UsageError(`--groups names ${name} twice`);
    seen.add(name);
  }
  return names;
}

function peersOption(scanned: Scanned, env: (name: string) => string | undefined): string[] {
  const flag = scanned.strings.get("peers");
  if (flag !== undefined) return parseAddressList(flag, "--peers");
  const fromEnv = env(PEERS_ENV);
  if (fromEnv !== undefined && fromEnv !== "") return parseAddressList(fromEnv, PEERS_ENV);
  return [...DEFAULT_PEERS];
}

const CLIENT_SPEC: Spec = {
  peers: "string",
  group: "string",
  json: "boolean",
  "timeout-ms": "string",
  "tls-ca": "string",
  "token-file": "string",
};

/** `--NAME`, else the environment variable `envName` when set and not empty. */
function fileOption(
  scanned: Scanned,
  name: string,
  env: (name: string) => string | undefined,
  envName: string,
): string | undefined {
  const flag = scanned.strings.get(name);
  if (flag !== undefined) return flag;
  const fromEnv = env(envName);
  return fromEnv === undefined || fromEnv === "" ? undefined : fromEnv;
}

/** The TLS and token options every client command shares. */
function securityOptions(
  scanned: Scanned,
  env: (name: string) => string | undefined,
): { tlsCa?: string; tokenFile?: string } {
  const tlsCa = fileOption(scanned, "tls-ca", env, TLS_CA_ENV);
  const tokenFile = fileOption(scanned, "token-file", env, TOKEN_FILE_ENV);
  return {
    ...(tlsCa !== undefined ? { tlsCa } : {}),
    ...(tokenFile !== undefined ? { tokenFile } : {}),
  };
}

function clientOptions(scanned: Scanned, env: (name: string) => string | undefined): ClientOptions {
  return {
    peers: peersOption(scanned, env),
    group: groupOption(scanned),
    json: scanned.flags.has("json"),
    timeoutMs: integerOption(scanned, "timeout-ms", DEFAULT_TIMEOUT_MS, LIMITS.timeoutMs),
    ...securityOptions(scanned, env),
  };
}

/** Parses the arguments of `counter serve` (after the word `serve`). */
export function parseServeArgs(argv: readonly string[]): ServeOptions {
  const scanned = scan(argv, {
    data: "string",
    id: "string",
    listen: "string",
    conf: "string",
    group: "string",
    groups: "string",
    "election-timeout-ms": "string",
    "heartbeat-interval-ms": "string",
    "snapshot-interval-secs": "string",
    "snapshot-log-entries": "string",
    join: "string",
    "snapshot-retain-entries": "string",
    "snapshot-log-bytes": "string",
    "snapshot-retain-bytes": "string",
    "log-segment-bytes": "string",
    "bootstrap-timeout-secs": "string",
    "idle-timeout-secs": "string",
    "frame-timeout-secs": "string",
    "log-level": "string",
    "log-format": "string",
    "metrics-addr": "string",
    "tls-cert": "string",
    "tls-key": "string",
    "tls-ca": "string",
    "cluster-token-file": "string",
    "client-token-file": "string",
    "admin-token-file": "string",
  });
  expectPositionals(scanned, 0);
  const dataDir = required(scanned, "data");
  const tlsNames = ["tls-cert", "tls-key", "tls-ca"];
  const tlsGiven = tlsNames.filter((name) => scanned.strings.has(name));
  if (tlsGiven.length > 0 && tlsGiven.length < tlsNames.length) {
    const missing = tlsNames.filter((name) => !scanned.strings.has(name));
    throw new UsageError(
      `TLS needs --tls-cert, --tls-key and --tls-ca together; missing --${missing.join(", --")}`,
    );
  }
  const tls = tlsGiven.length === 0 ? undefined : {
    certFile: scanned.strings.get("tls-cert")!,
    keyFile: scanned.strings.get("tls-key")!,
    caFile: scanned.strings.get("tls-ca")!,
  };
  const clusterTokenFile = scanned.strings.get("cluster-token-file");
  const clientTokenFile = scanned.strings.get("client-token-file");
  const adminTokenFile = scanned.strings.get("admin-token-file");
  const metricsText = scanned.strings.get("metrics-addr");
  const metricsAddr = metricsText === undefined
    ? undefined
    : parseHostPort(metricsText, "--metrics-addr");
  const id = parseHostPort(required(scanned, "id"), "--id");
  const listenText = scanned.strings.get("listen");
  const listen = listenText === undefined ? undefined : parseHostPort(listenText, "--listen");
  const joinText = scanned.strings.get("join");
  const confText = scanned.strings.get("conf");
  if (joinText !== undefined && confText !== undefined) {
    throw new UsageError("give either --conf (a new group) or --join (an existing one), not both");
  }
  let conf: string[] = [];
  let join: string[] | undefined;
  if (joinText !== undefined) {
    join = parseAddressList(joinText, "--join");
  } else {
    conf = parseAddressList(required(scanned, "conf"), "--conf");
    if (!conf.includes(id)) {
      throw new UsageError(`--conf must include this node's --id ${id}`);
    }
  }
  const electionTimeoutMs = integerOption(
    scanned,
    "election-timeout-ms",
    DEFAULT_ELECTION_TIMEOUT_MS,
    LIMITS.electionTimeoutMs,
  );
  const heartbeatIntervalMs = integerOption(
    scanned,
    "heartbeat-interval-ms",
    DEFAULT_HEARTBEAT_INTERVAL_MS,
    LIMITS.heartbeatIntervalMs,
  );
  // Followers would time out between two heartbeats and start needless elections.
  if (electionTimeoutMs <= heartbeatIntervalMs) {
    throw new UsageError(
      `--election-timeout-ms (${electionTimeoutMs}) must be greater than` +
        ` --heartbeat-interval-ms (${heartbeatIntervalMs})`,
    );
  }
  const logLevel = scanned.strings.get("log-level");
  const logFormat = scanned.strings.get("log-format");
  const group = groupOption(scanned);
  return {
    dataDir,
    id,
    ...(listen !== undefined ? { listen } : {}),
    conf,
    ...(join !== undefined ? { join } : {}),
    group,
    groups: groupsOption(scanned, group),
    electionTimeoutMs,
    heartbeatIntervalMs,
    snapshotIntervalSecs: integerOption(
      scanned,
      "snapshot-interval-secs",
      DEFAULT_SNAPSHOT_INTERVAL_SECS,
      LIMITS.snapshotIntervalSecs,
    ),
    snapshotLogEntries: integerOption(
      scanned,
      "snapshot-log-entries",
      DEFAULT_SNAPSHOT_LOG_ENTRIES,
      LIMITS.snapshotLogEntries,
    ),
    snapshotRetainEntries: integerOption(
      scanned,
      "snapshot-retain-entries",
      DEFAULT_SNAPSHOT_RETAIN_ENTRIES,
      LIMITS.snapshotRetainEntries,
    ),
    snapshotLogBytes: integerOption(
      scanned,
      "snapshot-log-bytes",
      DEFAULT_SNAPSHOT_LOG_BYTES,
      LIMITS.snapshotLogBytes,
    ),
    snapshotRetainBytes: integerOption(
      scanned,
      "snapshot-retain-bytes",
      DEFAULT_SNAPSHOT_RETAIN_BYTES,
      LIMITS.snapshotRetainBytes,
    ),
    logSegmentBytes: integerOption(
      scanned,
      "log-segment-bytes",
      DEFAULT_LOG_SEGMENT_BYTES,
      LIMITS.logSegmentBytes,
    ),
    bootstrapTimeoutSecs: integerOption(
      scanned,
      "bootstrap-timeout-secs",
      DEFAULT_BOOTSTRAP_TIMEOUT_SECS,
      LIMITS.bootstrapTimeoutSecs,
    ),
    idleTimeoutSecs: integerOption(
      scanned,
      "idle-timeout-secs",
      DEFAULT_IDLE_TIMEOUT_SECS,
      LIMITS.idleTimeoutSecs,
    ),
    frameTimeoutSecs: integerOption(
      scanned,
      "frame-timeout-secs",
      DEFAULT_FRAME_TIMEOUT_SECS,
      LIMITS.frameTimeoutSecs,
    ),
    logLevel: logLevel === undefined ? "info" : parseChoice(logLevel, "--log-level", LOG_LEVELS),
    logFormat: logFormat === undefined
      ? "text"
      : parseChoice(logFormat, "--log-format", LOG_FORMATS),
    ...(metricsAddr !== undefined ? { metricsAddr } : {}),
    ...(tls !== undefined ? { tls } : {}),
    ...(clusterTokenFile !== undefined ? { clusterTokenFile } : {}),
    ...(clientTokenFile !== undefined ? { clientTokenFile } : {}),
    ...(adminTokenFile !== undefined ? { adminTokenFile } : {}),
  };
}

/** Parses the arguments of `counter incr` (after the word `incr`). */
export function parseIncrArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): IncrOptions {
  const scanned = scan(argv, CLIENT_SPEC);
  expectPositionals(scanned, 1);
  const text = scanned.positionals[0];
  if (text === undefined) throw new UsageError("missing DELTA, the whole number to add");
  const delta = parseInt64(text, "DELTA");
  return { ...clientOptions(scanned, options.env ?? Deno.env.get), delta };
}

/** Parses the arguments of `counter get` (after the word `get`). */
export function parseGetArgs(argv: readonly string[], options: ParseOptions = {}): GetOptions {
  const scanned = scan(argv, { ...CLIENT_SPEC, consistency: "string" });
  expectPositionals(scanned, 0);
  const consistency = scanned.strings.get("consistency");
  return {
    ...clientOptions(scanned, options.env ?? Deno.env.get),
    consistency: consistency === undefined
      ? "linearizable"
      : parseChoice(consistency, "--consistency", GET_CONSISTENCIES),
  };
}

/**
 * Splits off a subcommand word: the first token, unless it is missing or looks like a flag, in
 * which case the subcommand is `fallback` (when there is one).
 */
function subcommand<T extends string>(
  argv: readonly string[],
  choices: readonly T[],
  fallback: T | undefined,
): { name: T; rest: readonly string[] } {
  const first = argv[0];
  if (fallback !== undefined && (first === undefined || first.startsWith("-"))) {
    return { name: fallback, rest: argv };
  }
  const name = choices.find((choice) => choice === first);
  if (name === undefined) {
    const expected = choices.length === 1
      ? `expected ${choices[0]}`
      : `expected ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`;
    throw new UsageError(
      first === undefined
        ? `missing subcommand (${expected})`
        : `unknown subcommand ${JSON.stringify(first)} (${expected})`,
    );
  }
  return { name, rest: argv.slice(1) };
}

/** The one `HOST:PORT` argument of a subcommand that acts on a node. */
function nodeArgument(scanned: Scanned, purpose: string): string {
  expectPositionals(scanned, 1);
  const text = scanned.positionals[0];
  if (text === undefined) throw new UsageError(`missing HOST:PORT, the node to ${purpose}`);
  return parseHostPort(text, "the node argument");
}

/**
 * Client options of a command that names the nodes it talks to itself, so that `--peers` would
 * mean nothing; it is refused rather than silently ignored.
 */
function directClientOptions(
  scanned: Scanned,
  peers: string[],
  why: string,
  env: (name: string) => string | undefined,
): ClientOptions {
  if (scanned.strings.has("peers")) throw new UsageError(`--peers is not used here: ${why}`);
  return {
    peers,
    group: groupOption(scanned),
    json: scanned.flags.has("json"),
    timeoutMs: integerOption(scanned, "timeout-ms", DEFAULT_TIMEOUT_MS, LIMITS.timeoutMs),
    ...securityOptions(scanned, env),
  };
}

/** Parses the arguments of `counter peers` (after the word `peers`). */
export function parsePeersArgs(argv: readonly string[], options: ParseOptions = {}): PeersOptions {
  const env = options.env ?? Deno.env.get;
  if (argv[0] === "reset") {
    // The old network reset made survivors diverge; it is gone, and says where it went.
    throw new UsageError(
      "'peers reset' was replaced by 'counter recover --data DIR --force-new-cluster', run on " +
        "one stopped survivor's data dir (see 'counter recover --help')",
    );
  }
  const { name, rest } = subcommand(argv, PEERS_ACTIONS, "list");
  switch (name) {
    case "list": {
      const scanned = scan(rest, CLIENT_SPEC);
      expectPositionals(scanned, 0);
      return { ...clientOptions(scanned, env), action: name };
    }
    case "add": {
      const scanned = scan(rest, { ...CLIENT_SPEC, learner: "boolean" });
      const node = nodeArgument(scanned, "add");
      return {
        ...clientOptions(scanned, env),
        action: name,
        node,
        learner: scanned.flags.has("learner"),
      };
    }
    case "remove":
    case "promote": {
      const scanned = scan(rest, CLIENT_SPEC);
      const node = nodeArgument(scanned, name);
      return { ...clientOptions(scanned, env), action: name, node };
    }
  }
}

/** Parses the arguments of `counter groups` (after the word `groups`). */
export function parseGroupsArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): GroupsOptions {
  const env = options.env ?? Deno.env.get;
  const { name, rest } = subcommand(argv, GROUPS_ACTIONS, "list");
  switch (name) {
    case "list": {
      const scanned = scan(rest, CLIENT_SPEC);
      expectPositionals(scanned, 0);
      return { ...clientOptions(scanned, env), action: name };
    }
    case "create": {
      const scanned = scan(rest, { ...CLIENT_SPEC, voters: "string" });
      if (scanned.positionals.length === 0) throw new UsageError("missing the group's NAME");
      expectPositionals(scanned, 1);
      const group = checkGroupName(scanned.positionals[0], "group name");
      const client = clientOptions(scanned, env);
      const votersText = scanned.strings.get("voters");
      const voters = votersText === undefined
        ? client.peers
        : parseAddressList(votersText, "--voters");
      return { ...client, action: name, name: group, voters };
    }
    case "remove": {
      const scanned = scan(rest, CLIENT_SPEC);
      if (scanned.positionals.length === 0) throw new UsageError("missing the group's NAME");
      expectPositionals(scanned, 1);
      const group = checkGroupName(scanned.positionals[0], "group name");
      return { ...clientOptions(scanned, env), action: name, name: group };
    }
  }
}

/** Parses the arguments of `counter leader` (after the word `leader`). */
export function parseLeaderArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): LeaderOptions {
  const env = options.env ?? Deno.env.get;
  const first = argv[0];
  if (first === undefined || first.startsWith("-")) {
    const scanned = scan(argv, CLIENT_SPEC);
    expectPositionals(scanned, 0);
    return { ...clientOptions(scanned, env), action: "show" };
  }
  const { name, rest } = subcommand(argv, ["transfer", "balance"] as const, undefined);
  const scanned = scan(rest, CLIENT_SPEC);
  if (name === "balance") {
    expectPositionals(scanned, 0);
    return { ...clientOptions(scanned, env), action: "balance" };
  }
  const node = nodeArgument(scanned, "transfer leadership to");
  return { ...clientOptions(scanned, env), action: "transfer", node };
}

/** Parses the arguments of `counter status` (after the word `status`). */
export function parseStatusArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): StatusOptions {
  const scanned = scan(argv, CLIENT_SPEC);
  expectPositionals(scanned, 0);
  return clientOptions(scanned, options.env ?? Deno.env.get);
}

/** Parses the arguments of `counter snapshot` (after the word `snapshot`). */
export function parseSnapshotArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): SnapshotOptions {
  const scanned = scan(argv, { ...CLIENT_SPEC, peer: "string" });
  expectPositionals(scanned, 0);
  const peerText = scanned.strings.get("peer");
  if (peerText === undefined) {
    return { ...clientOptions(scanned, options.env ?? Deno.env.get), peer: undefined };
  }
  const peer = parseHostPort(peerText, "--peer");
  const why = "--peer names the one node to take a snapshot on";
  return { ...directClientOptions(scanned, [peer], why, options.env ?? Deno.env.get), peer };
}

/** Parses the arguments of `counter health` (after the word `health`). */
export function parseHealthArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): HealthOptions {
  const scanned = scan(argv, CLIENT_SPEC);
  expectPositionals(scanned, 0);
  return clientOptions(scanned, options.env ?? Deno.env.get);
}

/** Parses the arguments of `counter backup` (after the word `backup`). */
export function parseBackupArgs(
  argv: readonly string[],
  options: ParseOptions = {},
): BackupOptions {
  const scanned = scan(argv, { ...CLIENT_SPEC, out: "string", force: "boolean" });
  expectPositionals(scanned, 0);
  const out = required(scanned, "out");
  return {
    ...clientOptions(scanned, options.env ?? Deno.env.get),
    out,
    force: scanned.flags.has("force"),
  };
}

/** Parses the arguments of `counter restore` (after the word `restore`). */
export function parseRestoreArgs(argv: readonly string[]): RestoreOptions {
  const scanned = scan(argv, {
    data: "string",
    from: "string",
    id: "string",
    conf: "string",
    group: "string",
    json: "boolean",
  });
  expectPositionals(scanned, 0);
  const dataDir = required(scanned, "data");
  const from = required(scanned, "from");
  const id = parseHostPort(required(scanned, "id"), "--id");
  const conf = parseAddressList(required(scanned, "conf"), "--conf");
  if (!conf.includes(id)) throw new UsageError(`--conf must include this node's --id ${id}`);
  return { dataDir, from, id, conf, group: groupOption(scanned), json: scanned.flags.has("json") };
}

/** Parses the arguments of `counter inspect` (after the word `inspect`). */
export function parseInspectArgs(argv: readonly string[]): InspectOptions {
  const scanned = scan(argv, { data: "string", json: "boolean" });
  expectPositionals(scanned, 0);
  return { dataDir: required(scanned, "data"), json: scanned.flags.has("json") };
}

/** Parses the arguments of `counter certs` (after the word `certs`). */
export function parseCertsArgs(argv: readonly string[]): CertsOptions {
  const scanned = scan(argv, { out: "string", hosts: "string", days: "string", force: "boolean" });
  expectPositionals(scanned, 0);
  const outDir = required(scanned, "out");
  const hosts = required(scanned, "hosts").split(",").map((h) => h.trim());
  const bad = hosts.find((h) => !/^[A-Za-z0-9.:_-]+$/.test(h));
  if (bad !== undefined) {
    throw new UsageError(`invalid --hosts entry ${JSON.stringify(bad)}: expected a host or IP`);
  }
  return {
    outDir,
    hosts,
    days: integerOption(scanned, "days", CERTS_DAYS_DEFAULT, LIMITS.certsDays),
    force: scanned.flags.has("force"),
  };
}

/** Parses the arguments of `counter recover` (after the word `recover`). */
export function parseRecoverArgs(argv: readonly string[]): RecoverOptions {
  const scanned = scan(argv, {
    data: "string",
    "force-new-cluster": "boolean",
    yes: "boolean",
    json: "boolean",
  });
  expectPositionals(scanned, 0);
  const dataDir = required(scanned, "data");
  if (!scanned.flags.has("force-new-cluster")) {
    // The one recovery there is; the flag makes the operator say what it does.
    throw new UsageError(
      "missing --force-new-cluster (recover forces this node into a new one-node group)",
    );
  }
  return { dataDir, yes: scanned.flags.has("yes"), json: scanned.flags.has("json") };
}

/** Parses the arguments of `counter demo` (after the word `demo`). */
export function parseDemoArgs(argv: readonly string[]): DemoOptions {
  const scanned = scan(argv, { data: "string", "base-port": "string", keep: "boolean" });
  expectPositionals(scanned, 0);
  return {
    dataDir: scanned.strings.get("data"),
    basePort: integerOption(scanned, "base-port", DEFAULT_BASE_PORT, LIMITS.basePort),
    keep: scanned.flags.has("keep"),
  };
}

const MIX_ITEM_PATTERN = /^([a-z]+)=([0-9]{1,3})$/;

/**
 * Parses a `--mix` such as `incr=90,get=10`: percentages of each operation, adding up to 100.
 * An operation left out gets 0.
 *
 * @example Usage
 * ```ts
 * import { parseBenchMix } from "./args.ts";
 *
 * parseBenchMix("get=100"); // { incr: 0, get: 100 }
 * ```
 */
export function parseBenchMix(text: string): BenchMix {
  const mix: BenchMix = { incr: 0, get: 0 };
  const seen = new Set<string>();
  const expected = `expected OP=PERCENT,... with OP one of ${BENCH_OP_KINDS.join(", ")}`;
  for (const item of text.split(",")) {
    const match = MIX_ITEM_PATTERN.exec(item);
    if (match === null) {
      throw new UsageError(`invalid --mix ${JSON.stringify(text)}: ${expected}`);
    }
    const [, name, percent] = match;
    const kind = BENCH_OP_KINDS.find((k) => k === name);
    if (kind === undefined) {
      throw new UsageError(
        `invalid --mix ${JSON.stringify(text)}: unknown operation ${JSON.stringify(name)}` +
          ` (expected ${BENCH_OP_KINDS.join(" or ")})`,
      );
    }
    if (seen.has(kind)) {
      throw new UsageError(`invalid --mix ${JSON.stringify(text)}: ${kind} is given twice`);
    }
    seen.add(kind);
    mix[kind] = Number(percent);
  }
  const total = BENCH_OP_KINDS.reduce((sum, kind) => sum + mix[kind], 0);
  if (total !== 100) {
    throw new UsageError(
      `invalid --mix ${JSON.stringify(text)}: the percentages add up to ${total}, not 100`,
    );
  }
  return mix;
}

/** Flags that only mean something in the closed loop, which `--concurrency` selects. */
const CLOSED_LOOP_FLAGS = ["duration", "mix", "consistency"] as const;

/** Parses the arguments of `counter bench` (after the word `bench`). */
export function parseBenchArgs(argv: readonly string[], options: ParseOptions = {}): BenchOptions {
  const scanned = scan(argv, {
    ...CLIENT_SPEC,
    ops: "string",
    duration: "string",
    concurrency: "string",
    mix: "string",
    consistency: "string",
    warmup: "string",
    local: "boolean",
    tls: "boolean",
    groups: "string",
    "group-prefix": "string",
  });
  expectPositionals(scanned, 0);
  const local = scanned.flags.has("local");
  const tls = scanned.flags.has("tls");
  if (tls && !local) {
    throw new UsageError("--tls needs --local (against running nodes, give --tls-ca FILE)");
  }
  // The cluster --local starts has its own addresses; a --peers beside it would be ignored.
  if (local && scanned.strings.has("peers")) {
    throw new UsageError("--peers and --local cannot be used together");
  }
  if (scanned.strings.has("ops") && scanned.strings.has("duration")) {
    throw new UsageError("--ops and --duration cannot be used together: give one of them");
  }
  const concurrencyText = scanned.strings.get("concurrency");
  const client = clientOptions(scanned, options.env ?? Deno.env.get);
  const groups = benchGroupsOption(scanned, client.group);
  if (concurrencyText === undefined) {
    const flag = CLOSED_LOOP_FLAGS.find((name) => scanned.strings.has(name));
    if (flag !== undefined) {
      throw new UsageError(
        `--${flag} needs --concurrency (without it, every increment is sent at once)`,
      );
    }
    return {
      ...client,
      ops: integerOption(scanned, "ops", DEFAULT_BENCH_OPS, LIMITS.burstOps),
      durationSecs: null,
      concurrency: null,
      mix: { ...DEFAULT_BENCH_MIX },
      consistency: "linearizable",
      // Bursts of the same size as the measured one, so that the client's code is warm too.
      warmup: integerOption(scanned, "warmup", 0, LIMITS.warmup),
      local,
      tls,
      groups,
    };
  }
  const concurrency = parseBoundedInteger(concurrencyText, "--concurrency", LIMITS.concurrency);
  const durationText = scanned.strings.get("duration");
  const durationSecs = durationText === undefined
    ? null
    : parseBoundedInteger(durationText, "--duration", LIMITS.durationSecs);
  const ops = durationSecs === null
    ? integerOption(scanned, "ops", DEFAULT_BENCH_OPS, LIMITS.ops)
    : null;
  // Workers beyond the number of requests would never send one.
  if (ops !== null && concurrency > ops) {
    throw new UsageError(`--concurrency (${concurrency}) must not exceed --ops (${ops})`);
  }
  const mixText = scanned.strings.get("mix");
  const consistencyText = scanned.strings.get("consistency");
  const mix = mixText === undefined ? { ...DEFAULT_BENCH_MIX } : parseBenchMix(mixText);
  if (consistencyText !== undefined && mix.get === 0) {
    throw new UsageError("--consistency needs reads in --mix (for example --mix incr=90,get=10)");
  }
  return {
    ...client,
    ops,
    durationSecs,
    concurrency,
    mix,
    consistency: consistencyText === undefined
      ? "linearizable"
      : parseChoice(consistencyText, "--consistency", READ_CONSISTENCIES),
    warmup: integerOption(scanned, "warmup", 0, LIMITS.warmup),
    local,
    tls,
    groups,
  };
}

/** `--groups N` and `--group-prefix P` of `counter bench`: the group names, `group` first. */
function benchGroupsOption(scanned: Scanned, group: string): string[] {
  const prefix = scanned.strings.get("group-prefix");
  const count = integerOption(scanned, "groups", 1, LIMITS.benchGroups);
  if (prefix !== undefined && !scanned.strings.has("groups")) {
    throw new UsageError("--group-prefix needs --groups N");
  }
  const names = benchGroupNames(group, prefix ?? DEFAULT_BENCH_GROUP_PREFIX, count);
  for (const name of names.slice(1)) checkGroupName(name, "--group-prefix, numbered,");
  if (new Set(names).size !== names.length) {
    throw new UsageError(`--groups: --group ${group} is also one of the numbered groups`);
  }
  return names;
}

function parseHelpArgs(argv: readonly string[]): Invocation {
  const scanned = scan(argv, {});
  expectPositionals(scanned, 1);
  const topic = scanned.positionals[0];
  if (topic === undefined) return { command: "help", topic: undefined };
  if (!isCommandName(topic)) throw new UsageError(`unknown command ${JSON.stringify(topic)}`);
  return { command: "help", topic };
}

/** What asks for the version: `--version`, `-V` and `version`. */
const VERSION_WORDS: ReadonlySet<string> = new Set(["--version", "-V", "version"]);

function parseTopLevel(argv: readonly string[]): Invocation {
  // Plain `counter` prints the usage, like `counter --help`.
  if (argv.length === 0) return { command: "help", topic: undefined };
  const first = argv[0];
  if (argv.length === 1 && VERSION_WORDS.has(first)) return { command: "version" };
  if (argv.length === 1 && (first === "--help" || first === "-h")) {
    return { command: "help", topic: undefined };
  }
  if (first.startsWith("-")) {
    throw new UsageError(
      VERSION_WORDS.has(first) || first === "--help" || first === "-h"
        ? `unexpected argument ${JSON.stringify(argv[1])}`
        : `unknown option ${first.split("=")[0]}`,
    );
  }
  throw new UsageError(`unknown command ${JSON.stringify(first)}`);
}

/**
 * Parses a whole command line (without the program name) into an {@linkcode Invocation}.
 *
 * `--help` or `-h` anywhere before `--` asks for the subcommand's help, whatever else is there.
 *
 * @example Usage
 * ```ts
 * import { parseCommandLine } from "./args.ts";
 *
 * const invocation = parseCommandLine(["incr", "-5", "--json"], { env: () => undefined });
 * // { command: "incr", options: { delta: -5n, json: true, peers: [...], ... } }
 * ```
 *
 * @throws {UsageError} when the command line cannot be run as written.
 */
export function parseCommandLine(argv: readonly string[], options: ParseOptions = {}): Invocation {
  const name = argv[0];
  if (name === undefined || !isCommandName(name)) return parseTopLevel(argv);
  const rest = argv.slice(1);
  try {
    if (name !== "help" && asksForHelp(rest)) return { command: "help", topic: name };
    switch (name) {
      case "serve":
        return { command: name, options: parseServeArgs(rest) };
      case "incr":
        return { command: name, options: parseIncrArgs(rest, options) };
      case "get":
        return { command: name, options: parseGetArgs(rest, options) };
      case "demo":
        return { command: name, options: parseDemoArgs(rest) };
      case "bench":
        return { command: name, options: parseBenchArgs(rest, options) };
      case "status":
        return { command: name, options: parseStatusArgs(rest, options) };
      case "leader":
        return { command: name, options: parseLeaderArgs(rest, options) };
      case "peers":
        return { command: name, options: parsePeersArgs(rest, options) };
      case "groups":
        return { command: name, options: parseGroupsArgs(rest, options) };
      case "snapshot":
        return { command: name, options: parseSnapshotArgs(rest, options) };
      case "health":
        return { command: name, options: parseHealthArgs(rest, options) };
      case "backup":
        return { command: name, options: parseBackupArgs(rest, options) };
      case "restore":
        return { command: name, options: parseRestoreArgs(rest) };
      case "inspect":
        return { command: name, options: parseInspectArgs(rest) };
      case "recover":
        return { command: name, options: parseRecoverArgs(rest) };
      case "certs":
        return { command: name, options: parseCertsArgs(rest) };
      case "help":
        return asksForHelp(rest) ? { command: "help", topic: "help" } : parseHelpArgs(rest);
    }
  } catch (error) {
    if (error instanceof UsageError && error.command === undefined) {
      throw new UsageError(error.message, name);
    }
    throw error;
  }
}
