/**
 * Helpers shared by the end-to-end tests that drive real `counter serve` processes: status polls
 * over any set of nodes, the CLI run as a child process, log dumps, a `serve` process started by
 * hand (for `--join` nodes and for starts that are expected to fail), and a background increment
 * load that counts its outcomes.
 *
 * @module
 */

import { fileURLToPath } from "node:url";
import { type LocalCluster, logChildOutput } from "../../lib/cli/local_cluster.ts";
import { type NodeStatus, parseNodeStatus } from "../../lib/cli/commands/status.ts";
import { selfCommand } from "../../lib/cli/self_command.ts";
import { CounterClient, CounterError } from "../../lib/client/client.ts";

/** The project root, where main.ts and deno.json are. */
export const ROOT: string = fileURLToPath(new URL("../../", import.meta.url));

/** Election timeout every test node runs with, to keep failovers quick. */
export const ELECTION_TIMEOUT_MS = 500;

/** Bound on any one wait; generous so that a slow, busy machine does not fail the test. */
export const WAIT_MS = 20_000;

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns something other than undefined; throws after `ms`. */
export async function waitFor<T>(
  probe: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms: number = WAIT_MS,
  describeLast?: () => string,
): Promise<T> {
  const deadline = Date.now() + ms;
  while (true) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const last = describeLast === undefined ? "" : ` (last: ${describeLast()})`;
      throw new Error(`timed out after ${ms} ms waiting for ${what}${last}`);
    }
    await sleep(50);
  }
}

/**
 * Asks node `id` for its status (voters and learners sorted); null when it does not answer in
 * time or answers something that is not a status.
 */
export async function statusOf(id: string, timeoutMs = 1000): Promise<NodeStatus | null> {
  const client = new CounterClient({ peers: [id], timeoutMs, attemptTimeoutMs: timeoutMs });
  try {
    const resp = await client.status(id);
    if (!resp.ok || resp.data === undefined) return null;
    const status = parseNodeStatus(resp.data, id);
    return { ...status, voters: [...status.voters].sort(), learners: [...status.learners].sort() };
  } catch {
    return null;
  } finally {
    await client.close();
  }
}

/** Asks every node of `ids` for its status, in parallel. */
export async function statusesOf(ids: string[]): Promise<Map<string, NodeStatus | null>> {
  const answers = await Promise.all(ids.map((id) => statusOf(id)));
  return new Map(ids.map((id, k) => [id, answers[k]]));
}

/** One line per node, to explain a failed wait. */
export function describeStatuses(statuses: Map<string, NodeStatus | null>): string {
  return [...statuses].map(([id, s]) =>
    s === null
      ? `${id} no answer`
      : `${id} ${s.role} term ${s.term} leader ${s.leader || "-"} commit ${s.commit} ` +
        `applied ${s.applied} last ${s.lastIndex} snap ${s.snapshotIndex} value ${s.value} ` +
        `voters [${s.voters.join(",")}] learners [${s.learners.join(",")}]`
  ).join("; ");
}

/**
 * Fails at once when two nodes report the same applied index with different values: the state
 * machine is deterministic, so that is a divergence no amount of waiting repairs.
 */
export function checkSameAppliedSameValue(statuses: Map<string, NodeStatus | null>): void {
  const byApplied = new Map<number, NodeStatus>();
  for (const s of statuses.values()) {
    if (s === null) continue;
    const other = byApplied.get(s.applied);
    if (other !== undefined && other.value !== s.value) {
      throw new Error(
        `state machines diverged: ${other.id} and ${s.id} both applied up to index ${s.applied} ` +
          `but hold values ${other.value} and ${s.value} (${describeStatuses(statuses)})`,
      );
    }
    byApplied.set(s.applied, s);
  }
}

/**
 * Waits until every node of `ids` answers status with one applied index and one value (`value`,
 * when given); returns them.
 */
export function waitForConvergence(
  ids: string[],
  value?: bigint,
  ms: number = WAIT_MS,
): Promise<{ applied: number; value: bigint }> {
  let last = "";
  return waitFor(
    async () => {
      const statuses = await statusesOf(ids);
      last = describeStatuses(statuses);
      const all = [...statuses.values()];
      checkSameAppliedSameValue(statuses);
      if (all.some((s) => s === null)) return undefined;
      const applied = new Set(all.map((s) => s!.applied));
      const values = new Set(all.map((s) => s!.value));
      if (applied.size !== 1 || values.size !== 1) return undefined;
      if (value !== undefined && !values.has(value)) return undefined;
      return { applied: all[0]!.applied, value: all[0]!.value };
    },
    `${ids.join(",")} at one applied index${value === undefined ? "" : ` and value ${value}`}`,
    ms,
    () => last,
  );
}

/**
 * Waits until one node of `ids` (not in `exclude`) says it leads and every other answering node
 * of `ids` names it as leader; returns it.
 */
export function waitForAgreedLeader(
  ids: string[],
  exclude: string[] = [],
  ms: number = WAIT_MS,
): Promise<string> {
  let last = "";
  return waitFor(
    async () => {
      const statuses = await statusesOf(ids);
      last = describeStatuses(statuses);
      const leaders = [...statuses.values()].filter((s) => s !== null && s.role === "leader");
      if (leaders.length !== 1 || exclude.includes(leaders[0]!.id)) return undefined;
      const leader = leaders[0]!;
      for (const s of statuses.values()) {
        if (s !== null && (s.leader !== leader.id || s.term !== leader.term)) return undefined;
      }
      return leader.id;
    },
    `an agreed leader among ${ids.join(",")}${
      exclude.length > 0 ? ` other than ${exclude.join(",")}` : ""
    }`,
    ms,
    () => last,
  );
}

/**
 * Waits until every node of `ids` answers status with one applied index and one value, as
 * {@linkcode waitForConvergence}; returns that value.
 */
export async function convergedValue(ids: string[], ms: number = WAIT_MS): Promise<bigint> {
  return (await waitForConvergence(ids, undefined, ms)).value;
}

/** What a CLI run gave. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `deno run -A main.ts ...args` in the project root. */
export async function cli(args: string[], env?: Record<string, string>): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** Size of `path` in bytes, 0 when it does not exist. */
export async function fileSize(path: string): Promise<number> {
  try {
    return (await Deno.stat(path)).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/** The text of `path` from byte `offset` on ("" when the file does not exist). */
export async function readLogFrom(path: string, offset = 0): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "";
    throw err;
  }
  return new TextDecoder().decode(bytes.subarray(offset));
}

/**
 * Waits until the text of `path` from byte `offset` on matches `pattern` (output reaches a log
 * file through a pipe, a little after the node acted on it); returns that text.
 */
export function waitForLog(path: string, pattern: RegExp, offset = 0): Promise<string> {
  let last = "";
  return waitFor(
    async () => {
      last = await readLogFrom(path, offset);
      return pattern.test(last) ? last : undefined;
    },
    `${pattern} in ${path}`,
    WAIT_MS,
    () => last.split("\n").slice(-5).join("\n"),
  );
}

/** How many lines of `text` contain `needle`. */
export function countLines(text: string, needle: string): number {
  return text.split("\n").filter((line) => line.includes(needle)).length;
}

/** Prints the last lines of each log, to explain a failure. */
export async function dumpLogTails(logs: Map<string, string>, lines = 30): Promise<void> {
  for (const [name, path] of logs) {
    const text = await readLogFrom(path).catch((e) => String(e));
    console.error(`---- ${name} (${path}) ----`);
    console.error(text.split("\n").slice(-lines).join("\n"));
  }
}

/** Prints the last `lines` lines of every node's log of `cluster`, to explain a failure. */
export async function dumpClusterLogs(cluster: LocalCluster, lines = 40): Promise<void> {
  await dumpLogTails(new Map(cluster.ids.map((id) => [id, cluster.logPath(id)])), lines);
}

/** The file names in `dir` that end with `suffix`, sorted (numeric names sort numerically). */
export async function listFiles(dir: string, suffix: string): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (entry.isFile && entry.name.endsWith(suffix)) names.push(entry.name);
  }
  return names.sort();
}

/** Options of {@linkcode ServeProcess.spawn}. */
export interface ServeProcessOptions {
  /** The node's id and listening address. */
  id: string;
  /** Its data dir. */
  dataDir: string;
  /** Where its stdout and stderr go (appended). */
  logPath: string;
  /** `--conf` members (a new group), or... */
  conf?: string[];
  /** ...`--join` members (an existing group). */
  join?: string[];
  /** More `serve` options. */
  args?: string[];
}

/** A `counter serve` process started by hand, its output appended to a log file. */
export class ServeProcess {
  readonly id: string;
  readonly logPath: string;
  readonly #child: Deno.ChildProcess;
  readonly #logDone: Promise<void>;
  #exitCode: number | null = null;
  readonly exited: Promise<number>;

  private constructor(
    id: string,
    logPath: string,
    child: Deno.ChildProcess,
    logDone: Promise<void>,
  ) {
    this.id = id;
    this.logPath = logPath;
    this.#child = child;
    this.#logDone = logDone;
    this.exited = child.status.then((s) => {
      this.#exitCode = s.code;
      return s.code;
    });
  }

  /** Starts `counter serve` with the given options. */
  static async spawn(options: ServeProcessOptions): Promise<ServeProcess> {
    const membership = options.join !== undefined
      ? ["--join", options.join.join(",")]
      : ["--conf", (options.conf ?? []).join(",")];
    const [command, ...prefix] = selfCommand();
    const file = await Deno.open(options.logPath, { append: true, create: true });
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args: [
          ...prefix,
          "serve",
          "--data",
          options.dataDir,
          "--id",
          options.id,
          ...membership,
          "--election-timeout-ms",
          String(ELECTION_TIMEOUT_MS),
          ...(options.args ?? []),
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (err) {
      file.close();
      throw err;
    }
    const logDone = logChildOutput(child, file);
    return new ServeProcess(options.id, options.logPath, child, logDone);
  }

  /** True until the process has exited. */
  get running(): boolean {
    return this.#exitCode === null;
  }

  /** Waits for the process to exit (and its log to be written); returns its exit code. */
  async wait(): Promise<number> {
    const code = await this.exited;
    await this.#logDone;
    return code;
  }

  /**
   * Waits at most `ms` for the process to exit by itself; kills it (SIGKILL) and returns null if
   * it is still running then.
   */
  async waitExit(ms: number): Promise<number | null> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => timer = setTimeout(() => r(true), ms)),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      await this.stop("SIGKILL");
      return null;
    }
    return await this.wait();
  }

  /** Sends `signal` and waits for the exit; returns the exit code. Harmless once exited. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    if (this.running) {
      try {
        this.#child.kill(signal);
      } catch {
        // Already exited.
      }
    }
    return await this.wait();
  }
}

/** True once node `id` answers a status request. */
export async function answers(id: string): Promise<boolean> {
  return (await statusOf(id, 500)) !== null;
}

/** Options of {@linkcode IncrementLoad}. */
export interface IncrementLoadOptions {
  /** Increments in flight at once. Default 16. */
  workers?: number;
  /** The client's deadline per increment, retries included. Default 5000 ms. */
  timeoutMs?: number;
  /** The client's deadline per attempt. Default 1000 ms. */
  attemptTimeoutMs?: number;
}

/**
 * A background load: `workers` loops, each sending increments of 1 one after the other through
 * one shared `CounterClient`, counting the acknowledged ones, those with unknown outcome, and
 * those that certainly failed.
 */
export class IncrementLoad {
  /** The client the load uses. */
  readonly client: CounterClient;
  /** Increments answered with a value. */
  acked = 0;
  /** Increments whose outcome is unknown (may or may not have been applied). */
  unknown = 0;
  /** Increments that certainly were not applied. */
  failed = 0;
  /** The first few errors, for the report. */
  readonly failures: string[] = [];
  readonly #workers: number;
  #running = false;
  #loops: Promise<void>[] = [];

  /** Creates the load (not started) against `peers`. */
  constructor(peers: string[], options: IncrementLoadOptions = {}) {
    this.#workers = options.workers ?? 16;
    this.client = new CounterClient({
      peers,
      timeoutMs: options.timeoutMs ?? 5000,
      attemptTimeoutMs: options.attemptTimeoutMs ?? 1000,
    });
  }

  /** Starts the worker loops. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loops = Array.from({ length: this.#workers }, () => this.#loop());
  }

  async #loop(): Promise<void> {
    while (this.#running) {
      try {
        await this.client.incrementAndGet(1n);
        this.acked++;
      } catch (err) {
        if (err instanceof CounterError && err.outcome === "unknown") this.unknown++;
        else this.failed++;
        if (this.failures.length < 5) this.failures.push(String(err).slice(0, 200));
        await sleep(20);
      }
    }
  }

  /** Waits until at least `count` increments are acknowledged. */
  waitForAcked(count: number, what: string, ms: number = WAIT_MS): Promise<true> {
    return waitFor(
      () => this.acked >= count ? true : undefined,
      `${count} acknowledged increments (${what})`,
      ms,
      () => this.summary(),
    );
  }

  /** Stops the loops and waits for the increments in flight to settle. */
  async stop(): Promise<void> {
    this.#running = false;
    await Promise.allSettled(this.#loops);
    this.#loops = [];
  }

  /** Stops the loops and closes the client. */
  async close(): Promise<void> {
    await this.stop();
    await this.client.close();
  }

  /** The counts, for messages. */
  summary(): string {
    return `acked ${this.acked}, unknown ${this.unknown}, failed ${this.failed}` +
      (this.failures.length > 0 ? `; first errors: ${this.failures.join(" | ")}` : "");
  }
}
