/**
 * The HTTP endpoint of `counter serve --metrics-addr HOST:PORT`: `/metrics` (Prometheus text
 * exposition), `/health` (200 or 503 with a one-line reason) and `/status` (JSON).
 *
 * It is bound before the node starts, so a busy port fails the start before anything is written
 * to the data dir; until the node is running every path answers 503 "node is starting".
 *
 * @module
 */

import { EXPOSITION_CONTENT_TYPE } from "./registry.ts";

/** What the endpoint serves; set once the node runs. */
export interface MetricsTarget {
  /** The exposition text. */
  metricsText(): string;
  /** Healthy or not, with a one-line reason. */
  health(): { healthy: boolean; reason: string };
  /** The node's status, as JSON-ready data. */
  status(): Record<string, unknown>;
}

/** A running metrics endpoint. */
export interface MetricsServer {
  /** The bound address, `HOST:PORT`. */
  readonly address: string;
  /** Serves `target` from now on (until then: 503 "node is starting"). */
  setTarget(target: MetricsTarget | null): void;
  /** Stops serving; resolves once the port is closed. */
  close(): Promise<void>;
}

/**
 * Listens on `hostname:port` (port 0 picks a free one). Throws with `cannot listen on HOST:PORT`
 * when the port cannot be bound.
 *
 * @example Usage
 * ```ts ignore
 * import { startMetricsServer } from "./http.ts";
 *
 * const server = startMetricsServer("127.0.0.1", 9101);
 * server.setTarget(node);
 * await server.close();
 * ```
 */
export function startMetricsServer(hostname: string, port: number): MetricsServer {
  let target: MetricsTarget | null = null;
  const abort = new AbortController();
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname,
      port,
      signal: abort.signal,
      onListen: () => {},
      onError: (error) => text(500, `internal error: ${firstLine(error)}`),
    }, (request) => handle(request, target));
  } catch (error) {
    throw new Error(`cannot listen on ${hostname}:${port} for metrics: ${firstLine(error)}`);
  }
  const address = `${server.addr.hostname}:${server.addr.port}`;
  return {
    address,
    setTarget(next) {
      target = next;
    },
    async close() {
      abort.abort();
      await server.finished;
    },
  };
}

function handle(request: Request, target: MetricsTarget | null): Response {
  const path = new URL(request.url).pathname;
  if (path !== "/metrics" && path !== "/health" && path !== "/status") {
    return text(404, "not found: try /metrics, /health or /status");
  }
  if (request.method !== "GET" && request.method !== "HEAD") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { "content-type": "text/plain; charset=utf-8", allow: "GET, HEAD" },
    });
  }
  if (target === null) return text(503, "node is starting");
  switch (path) {
    case "/metrics":
      return new Response(target.metricsText(), {
        headers: { "content-type": EXPOSITION_CONTENT_TYPE },
      });
    case "/health": {
      const health = target.health();
      return text(
        health.healthy ? 200 : 503,
        `${health.healthy ? "healthy" : "unhealthy"}: ${health.reason}`,
      );
    }
    default:
      return new Response(JSON.stringify(target.status()) + "\n", {
        headers: { "content-type": "application/json" },
      });
  }
}

function text(status: number, line: string): Response {
  return new Response(line + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0];
}
