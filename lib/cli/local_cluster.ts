/**
 * A cluster of counter nodes running as child processes on 127.0.0.1: what `counter demo`,
 * `counter bench --local` and the end-to-end tests start, kill, pause and restart.
 *
 * Each node's log goes to `<root>/nodeN.log`, so the caller's terminal stays readable.
 *
 * @module
 */

import { join } from "node:path";
import { NODE_V8_FLAGS, selfCommand } from "./self_command.ts";
import { CounterClient } from "../client/client.ts";
import type { ClientTls } from "../transport/tls.ts";
import { authenticate } from "../security/client_auth.ts";
import { hmacKey } from "../security/tokens.ts";
import { RpcClientConnection } from "../transport/client_conn.ts";

/** How long {@linkcode LocalCluster.startNode} waits for a child to listen and answer. */
export const NODE_READY_TIMEOUT_MS = 30_000;

/**
 * A port of a local cluster that something else holds: a process listening there already, or
 * a node that is not the child just started (a cluster already running on those ports). Nothing
 * was sent to it.
 */
export class PortBusyError extends Error {
  /** The busy port. */
  readonly port: number;

  /** `reason` says who holds the port, or what the operating system said. */
  constructor(port: number, reason: string) {
    super(`port ${port} is already in use (${reason})`);
    this.name = "PortBusyError";
    this.port = port;
  }
}

/**
 * Throws {@linkcode PortBusyError} for the first of `ports` that cannot be bound on 127.0.0.1
 * now. Only a quick first check: a port can still be taken between this and a child's bind,
 * which the start of each child checks again.
 */
export function assertPortsFree(ports: readonly number[]): void {
  for (const port of ports) {
    let listener: Deno.TcpListener;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) throw new PortBusyError(port, err.message);
      throw err;
    }
    listener.close();
  }
}

/** Options of {@linkcode LocalCluster.start}. */
export interface LocalClusterOptions {
  /** Number of nodes. Default 3. */
  nodes?: number;
  /** First port; node k listens on basePort + k. Default: free ports chosen by the OS. */
  basePort?: number;
  /** Parent of the nodes' data dirs. Default: a new temp dir, removed by `stop()`. */
  dataRoot?: string;
  /** Raft group id. Default "counter". */
  group?: string;
  /**
   * Several groups for every node to serve (`serve --groups`); the first is the one `statuses`
   * and `waitForLeader` ask about. Default: `group` alone.
   */
  groups?: string[];
  /** Extra `counter serve` options for every node. */
  serveArgs?: string[];
  /** Node log level. Default "info". */
  logLevel?: string;
  /** TLS for the cluster's own status calls, when `serveArgs` make the nodes serve TLS. */
  clientTls?: ClientTls;
  /** Token for the cluster's own status calls, when `serveArgs` ask for tokens. */
  clientToken?: Uint8Array;
  /**
   * The argv prefix that runs `counter` for the nodes (a subcommand follows). Default this
   * program itself ({@linkcode selfCommand}); benchmarks pass another checkout's for a baseline.
   */
  command?: string[];
  /**
   * How long a starting node may take to answer (it answers once every group it hosts is open,
   * which with a thousand new groups takes a while). Default {@linkcode NODE_READY_TIMEOUT_MS}.
   */
  readyTimeoutMs?: number;
}

interface NodeProcess {
  id: string;
  dataDir: string;
  logPath: string;
  child: Deno.ChildProcess | null;
  logDone: Promise<void> | null;
}

/**
 * Appends a child's stdout and stderr, as they come, to `file`, and closes the file once both
 * streams have ended. Resolves then; never rejects.
 */
export function logChildOutput(
  child: Deno.ChildProcess,
  file: Deno.FsFile,
): Promise<void> {
  const sink = new WritableStream<Uint8Array>({
    write: (chunk) => file.write(chunk).then(() => {}),
  });
  const merged = new ReadableStream<Uint8Array>({
    async start(controller) {
      const pump = async (stream: ReadableStream<Uint8Array>) => {
        for await (const chunk of stream) controller.enqueue(chunk);
      };
      await Promise.all([pump(child.stdout), pump(child.stderr)]);
      controller.close();
    },
  });
  return merged.pipeTo(sink).catch(() => {}).finally(() => file.close());
}

/** Returns `count` TCP ports on 127.0.0.1 that were free a moment ago. */
export function freePorts(count: number): number[] {
  const listeners = Array.from(
    { length: count },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

/** What one status request to a starting node gave. */
type StatusAnswer =
  | { kind: "ready"; pid: number | undefined; members: string[] }
  | { kind: "foreign"; reason: string }
  | { kind: "waiting"; reason: string };

/** Asks `id` for its status once, briefly. */
async function statusOnce(
  id: string,
  group: string,
  access: { tls?: ClientTls; token?: Uint8Array },
): Promise<StatusAnswer> {
  let conn: RpcClientConnection;
  try {
    conn = await RpcClientConnection.connect(id, { connectTimeoutMs: 500, tls: access.tls });
  } catch (err) {
    return { kind: "waiting", reason: (err as Error).message };
  }
  try {
    if (access.token !== undefined) {
      const key = await hmacKey(access.token);
      await authenticate((req) => conn.call(group, req, 1000), group, key);
    }
    const resp = await conn.call(group, { op: "status" }, 1000);
    if (resp.ok && resp.data !== undefined) {
      const data = resp.data as Record<string, unknown>;
      const pid = typeof data.pid === "number" ? data.pid : undefined;
      const members = [data.voters, data.learners].flatMap((list) =>
        Array.isArray(list) ? list.filter((m): m is string => typeof m === "string") : []
      );
      return { kind: "ready", pid, members };
    }
    // Our own child answers "node is starting" until it has opened its data dir.
    if (resp.code === "SHUTTING_DOWN") return { kind: "waiting", reason: resp.error ?? "" };
    return { kind: "foreign", reason: `a node there answers ${resp.code}: ${resp.error}` };
  } catch (err) {
    // Something that accepts connections but does not speak the protocol.
    return { kind: "waiting", reason: (err as Error).message };
  } finally {
    await conn.close();
  }
}

function portOf(id: string): number {
  return Number(id.slice(id.lastIndexOf(":") + 1));
}

/** The last non-empty line of the file at `path`, or a note that there is none. */
async function lastLogLine(path: string): Promise<string> {
  const text = await Deno.readTextFile(path).catch(() => "");
  const lines = text.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  return lines.at(-1) ?? "no output";
}

/** A running local cluster. */
export class LocalCluster {
  /** The nodes' ids (HOST:PORT), in start order. */
  readonly ids: string[];
  /** Where the data dirs and logs are. */
  readonly dataRoot: string;
  readonly #nodes: Map<string, NodeProcess>;
  readonly #group: string;
  /** Every group the nodes serve, `#group` first. */
  readonly groups: readonly string[];
  readonly #serveArgs: string[];
  readonly #command: string[];
  readonly #ownsRoot: boolean;
  readonly #logLevel: string;
  readonly #readyTimeoutMs: number;
  readonly #clientTls: ClientTls | undefined;
  readonly #clientToken: Uint8Array | undefined;

  private constructor(
    ids: string[],
    dataRoot: string,
    ownsRoot: boolean,
    options: LocalClusterOptions,
  ) {
    this.ids = ids;
    this.dataRoot = dataRoot;
    this.#ownsRoot = ownsRoot;
    const groups = options.groups !== undefined && options.groups.length > 0
      ? [...options.groups]
      : [options.group ?? "counter"];
    this.#group = groups[0];
    this.#readyTimeoutMs = options.readyTimeoutMs ?? NODE_READY_TIMEOUT_MS;
    this.groups = groups;
    this.#serveArgs = options.serveArgs ?? [];
    this.#command = options.command ?? selfCommand({ v8Flags: NODE_V8_FLAGS });
    this.#logLevel = options.logLevel ?? "info";
    this.#clientTls = options.clientTls;
    this.#clientToken = options.clientToken;
    this.#nodes = new Map(ids.map((id, k) => [id, {
      id,
      dataDir: join(dataRoot, `node${k + 1}`),
      logPath: join(dataRoot, `node${k + 1}.log`),
      child: null,
      logDone: null,
    }]));
  }

  /**
   * Starts every node, and resolves once each one is listening and answers as the child just
   * started, a member of this cluster (it does not wait for a leader; see `waitForLeader`).
   * Before anything is sent to any of them: a busy port throws {@linkcode PortBusyError}, a
   * child that cannot start throws with its reason, and every child started is stopped again.
   */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const n = options.nodes ?? 3;
    const ports = options.basePort !== undefined
      ? Array.from({ length: n }, (_, k) => options.basePort! + k)
      : freePorts(n);
    assertPortsFree(ports);
    const ids = ports.map((p) => `127.0.0.1:${p}`);
    const ownsRoot = options.dataRoot === undefined;
    const root = options.dataRoot ?? await Deno.makeTempDir({ prefix: "counter-cluster-" });
    const cluster = new LocalCluster(ids, root, ownsRoot, options);
    try {
      for (const id of ids) await cluster.#spawn(id);
      const ready = await Promise.allSettled(ids.map((id) => cluster.#waitReady(id, true)));
      // A busy port explains the others' failures (they cannot find a quorum's members); first.
      const failures = ready.flatMap((r) => r.status === "rejected" ? [r.reason] : []);
      const busy = failures.find((f) => f instanceof PortBusyError);
      if (failures.length > 0) throw busy ?? failures[0];
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  /** The log file of node `id`. */
  logPath(id: string): string {
    return this.#node(id).logPath;
  }

  /** The data dir of node `id`. */
  dataDir(id: string): string {
    return this.#node(id).dataDir;
  }

  /** The process id of node `id`, or null when it is not running. */
  pid(id: string): number | null {
    return this.#node(id).child?.pid ?? null;
  }

  /** True while node `id`'s process runs. */
  isRunning(id: string): boolean {
    return this.#node(id).child !== null;
  }

  /**
   * Starts (or restarts) node `id`'s process, and resolves once it listens and answers as this
   * very child; throws (and leaves it stopped) when it exits first or another process answers.
   */
  async startNode(id: string): Promise<void> {
    await this.#spawn(id);
    try {
      await this.#waitReady(id, false);
    } catch (err) {
      await this.kill(id);
      throw err;
    }
  }

  async #spawn(id: string): Promise<void> {
    const node = this.#node(id);
    if (node.child !== null) throw new Error(`node ${id} is already running`);
    await Deno.mkdir(node.dataDir, { recursive: true });
    const [command, ...prefix] = this.#command;
    const child = new Deno.Command(command, {
      args: [
        ...prefix,
        "serve",
        "--data",
        node.dataDir,
        "--id",
        id,
        "--conf",
        this.ids.join(","),
        "--group",
        this.#group,
        ...(this.groups.length > 1 ? ["--groups", this.groups.join(",")] : []),
        "--log-level",
        this.#logLevel,
        ...this.#serveArgs,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    node.logDone = logChildOutput(
      child,
      await Deno.open(node.logPath, { append: true, create: true }),
    );
    node.child = child;
  }

  /** Sends `signal` to node `id` and, unless it is SIGSTOP/SIGCONT, waits for it to exit. */
  async signal(id: string, signal: Deno.Signal): Promise<void> {
    const node = this.#node(id);
    const child = node.child;
    if (child === null) return;
    child.kill(signal);
    if (signal === "SIGSTOP" || signal === "SIGCONT") return;
    await this.#reap(node);
  }

  /** Kills node `id` with SIGKILL (a crash) and waits for it to be gone. */
  kill(id: string): Promise<void> {
    return this.signal(id, "SIGKILL");
  }

  /**
   * Waits until node `id`'s child answers a status request that names its own process id and,
   * when the cluster is `fresh`, this cluster's members. The port may answer before the child has bound it only if another
   * process holds it: that is a {@linkcode PortBusyError}, found before anything else is sent.
   */
  async #waitReady(
    id: string,
    fresh: boolean,
    timeoutMs = this.#readyTimeoutMs,
  ): Promise<void> {
    const node = this.#node(id);
    const child = node.child;
    if (child === null) throw new Error(`node ${id} is not running`);
    let exited = false;
    child.status.then(() => exited = true, () => exited = true);
    const deadline = Date.now() + timeoutMs;
    let last = "no answer";
    while (Date.now() < deadline) {
      if (exited) {
        await this.#reap(node);
        const reason = await lastLogLine(node.logPath);
        if (/cannot listen on .*in use/i.test(reason)) {
          throw new PortBusyError(portOf(id), reason.replace(/^.*cannot listen on /, ""));
        }
        throw new Error(`node ${id} exited at start: ${reason} (see ${node.logPath})`);
      }
      const answer = await statusOnce(id, this.#group, {
        tls: this.#clientTls,
        token: this.#clientToken,
      });
      if (answer.kind === "ready") {
        if (answer.pid !== child.pid) {
          throw new PortBusyError(
            portOf(id),
            `another counter node answers there${answer.pid ? ` (pid ${answer.pid})` : ""}`,
          );
        }
        // A new cluster's members are its nodes; a restarted node's group may have changed
        // since (membership changes, recovery), and the process id is what identifies it then.
        const voters = new Set(answer.members);
        if (fresh && (voters.size !== this.ids.length || !this.ids.every((m) => voters.has(m)))) {
          throw new Error(
            `node ${id} is not a member of this cluster: its members are ` +
              `${answer.members.join(",")}, not ${this.ids.join(",")} (see ${node.dataDir})`,
          );
        }
        return;
      }
      if (answer.kind === "foreign") throw new PortBusyError(portOf(id), answer.reason);
      last = answer.reason;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`node ${id} did not answer within ${timeoutMs} ms (${last})`);
  }

  async #reap(node: NodeProcess): Promise<void> {
    const child = node.child;
    if (child === null) return;
    await child.status;
    await node.logDone;
    node.child = null;
    node.logDone = null;
  }

  /** Asks every node for its status; null where a node does not answer. */
  async statuses(timeoutMs = 1000): Promise<Map<string, Record<string, unknown> | null>> {
    const out = new Map<string, Record<string, unknown> | null>();
    await Promise.all(this.ids.map(async (id) => {
      if (!this.isRunning(id)) {
        out.set(id, null);
        return;
      }
      const client = this.#clientOf(id, timeoutMs);
      try {
        const resp = await client.status(id);
        out.set(id, resp.ok && resp.data ? resp.data as Record<string, unknown> : null);
      } catch {
        out.set(id, null);
      } finally {
        await client.close();
      }
    }));
    return out;
  }

  /** A client of node `id` alone, with the cluster's group, TLS and token. */
  #clientOf(id: string, timeoutMs: number): CounterClient {
    return new CounterClient({
      peers: [id],
      group: this.#group,
      timeoutMs,
      tls: this.#clientTls,
      token: this.#clientToken,
    });
  }

  /** Waits until some running node is leader and says so; returns its id. */
  async waitForLeader(timeoutMs = 30_000, exclude: string[] = []): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const [id, s] of await this.statuses()) {
        if (s !== null && s.role === "leader" && !exclude.includes(id)) return id;
      }
      for (const node of this.#nodes.values()) {
        if (node.child !== null) {
          const exited = await Promise.race([
            node.child.status.then(() => true),
            new Promise<boolean>((r) => setTimeout(() => r(false), 0)),
          ]);
          if (exited) throw new Error(`node ${node.id} exited; see ${node.logPath}`);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  /**
   * The leader of each group as the running nodes report it (the host's `groups` op, one call per
   * node): a group is in the map once some node says it leads it. With several nodes claiming a
   * group (an old leader not yet told), the one in the highest term wins.
   */
  async groupLeaders(timeoutMs = 1000): Promise<Map<string, string>> {
    const best = new Map<string, { leader: string; term: number }>();
    await Promise.all(this.ids.map(async (id) => {
      if (!this.isRunning(id)) return;
      const client = this.#clientOf(id, timeoutMs);
      try {
        const { data } = await client.admin("groups", {}, { peer: id });
        const list = Array.isArray(data.groups) ? data.groups : [];
        for (const item of list) {
          const g = item as Record<string, unknown>;
          if (g.role !== "leader" || typeof g.name !== "string") continue;
          const term = typeof g.term === "number" ? g.term : 0;
          const known = best.get(g.name);
          if (known === undefined || known.term < term) best.set(g.name, { leader: id, term });
        }
      } catch {
        // A node that does not answer leads nothing we can see.
      } finally {
        await client.close();
      }
    }));
    return new Map([...best].map(([group, { leader }]) => [group, leader]));
  }

  /** Waits until every group of {@linkcode groups} has a leader; returns them by group. */
  async waitForLeaders(timeoutMs = 30_000): Promise<Map<string, string>> {
    const deadline = Date.now() + timeoutMs;
    let leaders = new Map<string, string>();
    while (Date.now() < deadline) {
      leaders = await this.groupLeaders();
      if (this.groups.every((g) => leaders.has(g))) return leaders;
      await new Promise((r) => setTimeout(r, 100));
    }
    const missing = this.groups.filter((g) => !leaders.has(g));
    throw new Error(
      `no leader within ${timeoutMs} ms in ${missing.length} of ${this.groups.length} groups ` +
        `(${missing.slice(0, 5).join(", ")}${missing.length > 5 ? ", ..." : ""})`,
    );
  }

  /** Stops every node with SIGTERM (SIGKILL after `graceMs`), and removes a temp data root. */
  async stop(graceMs = 10_000): Promise<void> {
    await Promise.all([...this.#nodes.values()].map(async (node) => {
      const child = node.child;
      if (child === null) return;
      try {
        child.kill("SIGCONT");
        child.kill("SIGTERM");
      } catch {
        // Already exited.
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = await Promise.race([
        child.status.then(() => false),
        new Promise<boolean>((r) => timer = setTimeout(() => r(true), graceMs)),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        try {
          child.kill("SIGKILL");
        } catch {
          // Already exited.
        }
      }
      await this.#reap(node);
    }));
    if (this.#ownsRoot) await Deno.remove(this.dataRoot, { recursive: true }).catch(() => {});
  }

  #node(id: string): NodeProcess {
    const node = this.#nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id} in this cluster`);
    return node;
  }
}
