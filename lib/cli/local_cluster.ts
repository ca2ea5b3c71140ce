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
  /** Extra `counter serve` options for every node. */
  serveArgs?: string[];
  /** Node log level. Default "info". */
  logLevel?: string;
  /** TLS for the cluster's own status calls, when `serveArgs` make the nodes serve TLS. */
  clientTls?: ClientTls;
  /** Token for the cluster's own status calls, when `serveArgs` ask for tokens. */
  clientToken?: Uint8Array;
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

/** A running local cluster. */
export class LocalCluster {
  /** The nodes' ids (HOST:PORT), in start order. */
  readonly ids: string[];
  /** Where the data dirs and logs are. */
  readonly dataRoot: string;
  readonly #nodes: Map<string, NodeProcess>;
  readonly #group: string;
  readonly #serveArgs: string[];
  readonly #ownsRoot: boolean;
  readonly #logLevel: string;
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
    this.#group = options.group ?? "counter";
    this.#serveArgs = options.serveArgs ?? [];
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

  /** Starts every node (it does not wait for a leader; see `waitForLeader`). */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const n = options.nodes ?? 3;
    const ports = options.basePort !== undefined
      ? Array.from({ length: n }, (_, k) => options.basePort! + k)
      : freePorts(n);
    const ids = ports.map((p) => `127.0.0.1:${p}`);
    const ownsRoot = options.dataRoot === undefined;
    const root = options.dataRoot ?? await Deno.makeTempDir({ prefix: "counter-cluster-" });
    const cluster = new LocalCluster(ids, root, ownsRoot, options);
    for (const id of ids) await cluster.startNode(id);
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

  /** Starts (or restarts) node `id`'s process. */
  async startNode(id: string): Promise<void> {
    const node = this.#node(id);
    if (node.child !== null) throw new Error(`node ${id} is already running`);
    await Deno.mkdir(node.dataDir, { recursive: true });
    const [command, ...prefix] = selfCommand({ v8Flags: NODE_V8_FLAGS });
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
      const client = new CounterClient({
        peers: [id],
        group: this.#group,
        timeoutMs,
        tls: this.#clientTls,
        token: this.#clientToken,
      });
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
