/**
 * A small structured logger: one line per event, as text or JSON, on stderr.
 *
 * Nodes log meaningful events only (role changes, peers up or down, recovery), never one line
 * per request, so a busy node's log stays small.
 *
 * @module
 */

/** Severity of a log line, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** How a log line is rendered. */
export type LogFormat = "text" | "json";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** The accepted `--log-level` values. */
export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];

/** The accepted `--log-format` values. */
export const LOG_FORMATS: readonly LogFormat[] = ["text", "json"];

/** Extra key/value pairs attached to a log line. */
export type LogFields = Record<string, unknown>;

/** Options for {@linkcode Logger}. */
export interface LoggerOptions {
  /** Lines below this level are dropped. Default "info". */
  level?: LogLevel;
  /** Rendering. Default "text". */
  format?: LogFormat;
  /** Fields added to every line (for example the node id). */
  fields?: LogFields;
  /** Where lines go. Default: stderr. */
  write?: (line: string) => void;
  /** Clock for timestamps. Default: `Date.now`. */
  now?: () => number;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

function renderValue(value: unknown): string {
  if (typeof value === "string") return /[\s"=]/.test(value) ? JSON.stringify(value) : value;
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return JSON.stringify(value.message);
  return JSON.stringify(value) ?? String(value);
}

function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Error) return value.message;
  return value;
}

/** Writes leveled, structured log lines. */
export class Logger {
  #rank: number;
  #format: LogFormat;
  #fields: LogFields;
  #write: (line: string) => void;
  #now: () => number;

  /** Creates a logger; see {@linkcode LoggerOptions}. */
  constructor(options: LoggerOptions = {}) {
    this.#rank = LEVEL_RANK[options.level ?? "info"];
    this.#format = options.format ?? "text";
    this.#fields = options.fields ?? {};
    this.#write = options.write ?? writeStderr;
    this.#now = options.now ?? Date.now;
  }

  /** Returns a logger that adds `fields` to every line. */
  with(fields: LogFields): Logger {
    const child = new Logger({
      format: this.#format,
      fields: { ...this.#fields, ...fields },
      write: this.#write,
      now: this.#now,
    });
    child.#rank = this.#rank;
    return child;
  }

  /** True when lines of `level` are written. */
  enabled(level: LogLevel): boolean {
    return LEVEL_RANK[level] >= this.#rank;
  }

  /** Logs at debug level. */
  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }

  /** Logs at info level. */
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }

  /** Logs at warn level. */
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }

  /** Logs at error level. */
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }

  /** Logs `msg` at `level` with `fields`. */
  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (LEVEL_RANK[level] < this.#rank) return;
    const time = new Date(this.#now()).toISOString();
    const all = { ...this.#fields, ...fields };
    if (this.#format === "json") {
      this.#write(JSON.stringify({ time, level, msg, ...all }, jsonReplacer));
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${msg}`;
    for (const [key, value] of Object.entries(all)) {
      if (value !== undefined) line += ` ${key}=${renderValue(value)}`;
    }
    this.#write(line);
  }
}

/** A logger that drops everything; for tests and library use without logs. */
export const silentLogger: Logger = new Logger({ level: "error", write: () => {} });
