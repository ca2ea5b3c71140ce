/**
 * The command modules with a fake client and a fake node: output, exit codes, signals.
 */

import assert from "node:assert/strict";
import { DEFAULT_PEERS, type IncrOptions, type ServeOptions } from "../../lib/cli/args.ts";
import type { CounterClientLike } from "../../lib/cli/commands/_client.ts";
import { runGet } from "../../lib/cli/commands/get.ts";
import { runIncr } from "../../lib/cli/commands/incr.ts";
import { runServe } from "../../lib/cli/commands/serve.ts";
import type { NodeOptions } from "../../lib/counter/node.ts";

const LEADER = "127.0.0.1:8082";

/** An error shaped like the client's `CounterError`. */
class FakeCounterError extends Error {
  code: string;
  outcome: "failed" | "unknown";
  constructor(message: string, outcome: "failed" | "unknown") {
    super(message);
    this.code = outcome === "unknown" ? "timeout" : "no_leader";
    this.outcome = outcome;
  }
}

/** A client that keeps the value in memory, and fails as `failWith` says for each call. */
class FakeClient implements CounterClientLike {
  value = 0n;
  calls = 0;
  closed = false;
  connectOptions: unknown;
  failWith: (call: number) => Error | undefined = () => undefined;

  incrementAndGet(delta: bigint) {
    const error = this.failWith(this.calls++);
    if (error !== undefined) return Promise.reject(error);
    this.value += delta;
    return Promise.resolve({ value: this.value, leader: LEADER });
  }

  get() {
    const error = this.failWith(this.calls++);
    if (error !== undefined) return Promise.reject(error);
    return Promise.resolve({ value: this.value, leader: LEADER });
  }

  close() {
    this.closed = true;
    return Promise.resolve();
  }
}

function harness(client: FakeClient) {
  const out: string[] = [];
  const err: string[] = [];
  const deps = {
    connect: (options: unknown) => {
      client.connectOptions = options;
      return client;
    },
    out: (line: string) => out.push(line),
    err: (line: string) => err.push(line),
  };
  return { out, err, deps };
}

const CLIENT = { peers: [...DEFAULT_PEERS], group: "counter", json: false, timeoutMs: 5000 };

function incrOptions(delta: bigint, json = false): IncrOptions {
  return { ...CLIENT, json, delta };
}

Deno.test("incr prints the new value and exits 0", async () => {
  const client = new FakeClient();
  client.value = 10n;
  const { out, err, deps } = harness(client);
  assert.equal(await runIncr(incrOptions(-3n), deps), 0);
  assert.deepEqual(out, ["7"]);
  assert.deepEqual(err, []);
  assert.ok(client.closed);
  assert.deepEqual(client.connectOptions, {
    peers: [...DEFAULT_PEERS],
    group: "counter",
    timeoutMs: 5000,
  });
});

Deno.test("incr --json prints one JSON line, with a string beyond 2^53-1", async () => {
  const client = new FakeClient();
  const { out, deps } = harness(client);
  assert.equal(await runIncr(incrOptions(5n, true), deps), 0);
  assert.equal(await runIncr(incrOptions(2n ** 62n, true), deps), 0);
  assert.deepEqual(out, [
    '{"value":5,"leader":"127.0.0.1:8082"}',
    '{"value":"4611686018427387909","leader":"127.0.0.1:8082"}',
  ]);
});

Deno.test("incr exits 1 when the increment certainly failed", async () => {
  const client = new FakeClient();
  client.failWith = () => new FakeCounterError("no leader among 3 peers", "failed");
  const { out, err, deps } = harness(client);
  assert.equal(await runIncr(incrOptions(1n), deps), 1);
  assert.deepEqual(out, []);
  assert.deepEqual(err, ["counter incr: no leader among 3 peers"]);
  assert.ok(client.closed);
});

Deno.test("incr exits 3 when the outcome is unknown, and says so", async () => {
  const client = new FakeClient();
  client.failWith = () => new FakeCounterError("no answer within 5000 ms", "unknown");
  const { err, deps } = harness(client);
  assert.equal(await runIncr(incrOptions(1n), deps), 3);
  assert.deepEqual(err, [
    "counter incr: no answer within 5000 ms" +
    " (outcome unknown: the increment may or may not have been applied)",
  ]);
});

Deno.test("any other error exits 1 with its first line", async () => {
  const client = new FakeClient();
  client.failWith = () => new TypeError("boom\nstack");
  const { err, deps } = harness(client);
  assert.equal(await runGet({ ...CLIENT, consistency: "linearizable" }, deps), 1);
  assert.deepEqual(err, ["counter get: boom"]);
});

Deno.test("get prints the value, and exits 3 on an unknown outcome", async () => {
  const client = new FakeClient();
  client.value = -42n;
  const { out, err, deps } = harness(client);
  assert.equal(await runGet({ ...CLIENT, json: true, consistency: "linearizable" }, deps), 0);
  assert.deepEqual(out, ['{"value":-42,"leader":"127.0.0.1:8082"}']);
  client.failWith = () => new FakeCounterError("no answer", "unknown");
  assert.equal(await runGet({ ...CLIENT, consistency: "linearizable" }, deps), 3);
  assert.deepEqual(err, ["counter get: no answer"]);
});

const SERVE: ServeOptions = {
  dataDir: "/nonexistent/counter-test",
  id: "127.0.0.1:8081",
  conf: ["127.0.0.1:8081"],
  group: "counter",
  groups: ["counter"],
  electionTimeoutMs: 1000,
  heartbeatIntervalMs: 100,
  snapshotIntervalSecs: 3600,
  snapshotLogEntries: 10_000,
  snapshotRetainEntries: 5_000,
  snapshotLogBytes: 4 * 1024 * 1024,
  snapshotRetainBytes: 1024 * 1024,
  logSegmentBytes: 4 * 1024 * 1024,
  bootstrapTimeoutSecs: 300,
  idleTimeoutSecs: 300,
  frameTimeoutSecs: 10,
  logLevel: "info",
  logFormat: "json",
};

/** A fake node, and a fake signal registry that lets the test deliver signals. */
function serveHarness() {
  const handlers = new Map<Deno.Signal, Set<() => void>>();
  const logs: string[] = [];
  const exits: number[] = [];
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => resolveClosed = resolve);
  const node = {
    options: undefined as NodeOptions | undefined,
    stops: 0,
    closed,
    stop() {
      this.stops++;
      resolveClosed();
      return closed;
    },
  };
  let started!: () => void;
  const startedPromise = new Promise<void>((resolve) => started = resolve);
  const deps = {
    startNode: (options: NodeOptions) => {
      node.options = options;
      started();
      return Promise.resolve(node);
    },
    writeLog: (line: string) => logs.push(line),
    addSignalListener: (signal: Deno.Signal, handler: () => void) => {
      if (!handlers.has(signal)) handlers.set(signal, new Set());
      handlers.get(signal)!.add(handler);
    },
    removeSignalListener: (signal: Deno.Signal, handler: () => void) => {
      handlers.get(signal)?.delete(handler);
    },
    exit: (code: number) => void exits.push(code),
  };
  const signal = (name: Deno.Signal) => {
    for (const handler of handlers.get(name) ?? []) handler();
  };
  const listenerCount = () => [...handlers.values()].reduce((n, set) => n + set.size, 0);
  return { deps, node, logs, exits, signal, started: startedPromise, listenerCount, resolveClosed };
}

Deno.test("serve passes its options to the node and stops it on SIGTERM", async () => {
  const h = serveHarness();
  const running = runServe(SERVE, h.deps);
  await h.started;
  assert.equal(h.listenerCount(), 2);
  const options = h.node.options!;
  assert.deepEqual({ ...options, logger: undefined }, {
    dataDir: "/nonexistent/counter-test",
    id: "127.0.0.1:8081",
    conf: ["127.0.0.1:8081"],
    group: "counter",
    groups: ["counter"],
    electionTimeoutMs: 1000,
    heartbeatIntervalMs: 100,
    snapshotIntervalSecs: 3600,
    snapshotLogEntries: 10_000,
    snapshotRetainEntries: 5_000,
    snapshotLogBytes: 4 * 1024 * 1024,
    snapshotRetainBytes: 1024 * 1024,
    logSegmentBytes: 4 * 1024 * 1024,
    bootstrapTimeoutSecs: 300,
    idleTimeoutMs: 300_000,
    frameTimeoutMs: 10_000,
    logger: undefined,
    security: {},
  });
  // The effective configuration, defaults included, is logged once before the node starts, and
  // without tokens one warning for clients and one for peers.
  assert.equal(h.logs.length, 3);
  const start = JSON.parse(h.logs[0]);
  const warnings = h.logs.map((line) => JSON.parse(line)).filter((l) => l.level === "warn");
  assert.equal(warnings.length, 2);
  assert.match(warnings[0].msg, /port is open to anyone/);
  assert.match(warnings[1].msg, /peers are unauthenticated/);
  assert.match(start.msg ?? start.message, /^starting counter \d+\.\d+\.\d+$/);
  assert.equal(start.node, "127.0.0.1:8081");
  assert.equal(start.electionTimeoutMs, 1000);
  assert.equal(start.snapshotLogEntries, 10_000);
  assert.equal(start.conf, "127.0.0.1:8081");
  options.logger.info("hello");
  assert.equal(JSON.parse(h.logs[3]).node, "127.0.0.1:8081");
  h.signal("SIGTERM");
  assert.equal(await running, 0);
  assert.equal(h.node.stops, 1);
  assert.equal(h.listenerCount(), 0, "signal listeners are removed");
  assert.deepEqual(h.exits, []);
});

Deno.test("serve exits at once on a second signal", async () => {
  const h = serveHarness();
  // A node whose graceful stop hangs until the test lets it finish.
  let finishStop!: () => void;
  h.node.stop = function () {
    this.stops++;
    return new Promise<void>((resolve) => finishStop = resolve);
  };
  const running = runServe(SERVE, h.deps);
  await h.started;
  // Let runServe take the started node in hand (the files it reads first make it asynchronous).
  await new Promise((resolve) => setTimeout(resolve, 0));
  h.signal("SIGINT");
  assert.deepEqual(h.exits, []);
  h.signal("SIGINT");
  assert.deepEqual(h.exits, [1]);
  assert.equal(h.node.stops, 1);
  // The fake exit does not end the process: let the stop finish so that runServe returns.
  finishStop();
  h.resolveClosed();
  assert.equal(await running, 0);
  assert.equal(h.listenerCount(), 0);
});

Deno.test("serve stops a node that a signal interrupted while it was starting", async () => {
  const h = serveHarness();
  const startNode = h.deps.startNode;
  h.deps.startNode = (options) => {
    h.signal("SIGTERM");
    return startNode(options);
  };
  assert.equal(await runServe(SERVE, h.deps), 0);
  assert.equal(h.node.stops, 1);
});

Deno.test("serve fails when the node stops by itself", async () => {
  const h = serveHarness();
  const running = runServe(SERVE, h.deps);
  await h.started;
  h.resolveClosed();
  await assert.rejects(running, /the node stopped without being asked to/);
  assert.equal(h.listenerCount(), 0);
});
