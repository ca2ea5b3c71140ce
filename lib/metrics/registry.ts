/**
 * A small metrics registry: counters, gauges and fixed-bucket histograms, written out in the
 * Prometheus text exposition format (version 0.0.4).
 *
 * The hot path is cheap: a counter or gauge is one number; a labelled series is created once
 * (by {@linkcode Family.labels}) and kept by the caller, so recording into it allocates nothing;
 * a histogram observation is a short linear scan over at most a few dozen fixed bounds. Values
 * that already live elsewhere (a Raft index, the RSS) are read only when scraped, through
 * {@linkcode Registry.onCollect}.
 *
 * @example Usage
 * ```ts
 * import { Registry } from "./registry.ts";
 *
 * const registry = new Registry();
 * const requests = registry.counter("app_requests_total", "Requests handled.", ["kind"]);
 * const incr = requests.labels("incr");
 * incr.inc();
 * registry.expose(); // "# HELP app_requests_total Requests handled.\n# TYPE ..."
 * ```
 *
 * @module
 */

/** Metric names: what Prometheus accepts. */
const METRIC_NAME_PATTERN = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Label names: what Prometheus accepts, minus the reserved `__` prefix. */
const LABEL_NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Request latencies in seconds: 100 µs to 10 s. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** A value that only goes up. */
export class Counter {
  /** The current value. */
  value = 0;

  /** Adds `amount` (default 1); a negative amount is a bug and is refused. */
  inc(amount = 1): void {
    if (!(amount >= 0)) throw new RangeError(`counter increment ${amount} is negative`);
    this.value += amount;
  }
}

/** A value that goes up and down. */
export class Gauge {
  /** The current value. */
  value = 0;

  /** Sets the value. */
  set(value: number): void {
    this.value = value;
  }

  /** Adds `amount` (default 1). */
  inc(amount = 1): void {
    this.value += amount;
  }

  /** Subtracts `amount` (default 1). */
  dec(amount = 1): void {
    this.value -= amount;
  }
}

/** Counts of observations into fixed buckets, with their sum. */
export class Histogram {
  /** Upper bounds of the buckets, ascending; `+Inf` is implicit. */
  readonly bounds: readonly number[];
  /** Observations per bucket (not cumulative); the last slot is the `+Inf` bucket. */
  readonly counts: Float64Array;
  /** Sum of every observation. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** Creates a histogram with the given ascending, finite upper bounds. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one observation. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }
}

/** The kinds of metric, as the exposition's `# TYPE` line names them. */
export type MetricType = "counter" | "gauge" | "histogram";

type Series = Counter | Gauge | Histogram;

/** One metric name with its help, type and label names; its series are keyed by label values. */
export class Family<T extends Series> {
  /** The metric name. */
  readonly name: string;
  /** The `# HELP` text. */
  readonly help: string;
  /** The metric type. */
  readonly type: MetricType;
  /** The label names, in the order `labels()` takes their values. */
  readonly labelNames: readonly string[];
  readonly #make: () => T;
  readonly #series = new Map<string, { values: string[]; series: T }>();

  /** Use {@linkcode Registry.counter} and its siblings instead. */
  constructor(
    name: string,
    help: string,
    type: MetricType,
    labelNames: readonly string[],
    make: () => T,
  ) {
    if (!METRIC_NAME_PATTERN.test(name)) throw new RangeError(`bad metric name ${name}`);
    for (const label of labelNames) {
      if (!LABEL_NAME_PATTERN.test(label) || label.startsWith("__") || label === "le") {
        throw new RangeError(`bad label name ${label} on ${name}`);
      }
    }
    this.name = name;
    this.help = help;
    this.type = type;
    this.labelNames = labelNames;
    this.#make = make;
  }

  /**
   * The series with these label values (one per label name), created on first use. Keep the
   * result: looking it up allocates, recording into it does not.
   */
  labels(...values: string[]): T {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(
        `${this.name} takes ${this.labelNames.length} label values, not ${values.length}`,
      );
    }
    const key = values.join("\u0000");
    let entry = this.#series.get(key);
    if (entry === undefined) {
      entry = { values, series: this.#make() };
      this.#series.set(key, entry);
    }
    return entry.series;
  }

  /** Drops every series (for gauges rebuilt at each scrape, such as per-peer values). */
  clear(): void {
    this.#series.clear();
  }

  /** Appends this family's lines of the exposition to `out`. */
  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`);
    out.push(`# TYPE ${this.name} ${this.type}`);
    for (const { values, series } of this.#series.values()) {
      const pairs = this.labelNames.map((name, i) => `${name}="${escapeLabel(values[i])}"`);
      if (series instanceof Histogram) {
        let cumulative = 0;
        for (let i = 0; i <= series.bounds.length; i++) {
          cumulative += series.counts[i];
          const le = i < series.bounds.length ? formatNumber(series.bounds[i]) : "+Inf";
          out.push(`${this.name}_bucket{${[...pairs, `le="${le}"`].join(",")}} ${cumulative}`);
        }
        const labels = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
        out.push(`${this.name}_sum${labels} ${formatNumber(series.sum)}`);
        out.push(`${this.name}_count${labels} ${series.count}`);
      } else {
        const labels = pairs.length > 0 ? `{${pairs.join(",")}}` : "";
        out.push(`${this.name}${labels} ${formatNumber(series.value)}`);
      }
    }
  }
}

/** A set of metric families, exposed together. */
export class Registry {
  readonly #families = new Map<string, Family<Series>>();
  readonly #collectors: Array<() => void> = [];

  /** Registers a counter family; `name` should end in `_total`. */
  counter(name: string, help: string, labelNames: readonly string[] = []): Family<Counter> {
    return this.#add(new Family(name, help, "counter", labelNames, () => new Counter()));
  }

  /** Registers a gauge family. */
  gauge(name: string, help: string, labelNames: readonly string[] = []): Family<Gauge> {
    return this.#add(new Family(name, help, "gauge", labelNames, () => new Gauge()));
  }

  /** Registers a histogram family with fixed, ascending `bounds`. */
  histogram(
    name: string,
    help: string,
    bounds: readonly number[],
    labelNames: readonly string[] = [],
  ): Family<Histogram> {
    for (let i = 0; i < bounds.length; i++) {
      if (!Number.isFinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
        throw new RangeError(`histogram ${name} bounds must be finite and ascending`);
      }
    }
    return this.#add(new Family(name, help, "histogram", labelNames, () => new Histogram(bounds)));
  }

  /** Adds a function run at the start of every {@linkcode Registry.expose}, to update gauges. */
  onCollect(collect: () => void): void {
    this.#collectors.push(collect);
  }

  /** Runs the collectors and returns the whole exposition, ending with a newline. */
  expose(): string {
    for (const collect of this.#collectors) collect();
    const out: string[] = [];
    for (const family of this.#families.values()) family.write(out);
    return out.join("\n") + "\n";
  }

  #add<T extends Series>(family: Family<T>): Family<T> {
    if (this.#families.has(family.name)) {
      throw new RangeError(`metric ${family.name} is registered twice`);
    }
    this.#families.set(family.name, family as unknown as Family<Series>);
    return family;
  }
}

/** The content type of the text exposition format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

function escapeLabel(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}
