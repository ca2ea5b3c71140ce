/**
 * Helpers shared by the scripts in bench/: load average, percentiles, medians, tables.
 *
 * @module
 */

/** The 1-, 5- and 15-minute load averages, as `uptime` prints them ("2.10, 1.95, 1.80"). */
export async function loadAverage(): Promise<string> {
  try {
    const text = await Deno.readTextFile("/proc/loadavg");
    return text.split(" ").slice(0, 3).join(", ");
  } catch {
    return "n/a";
  }
}

/** The q-quantile (0..1) of ascending `sorted`, nearest rank. */
export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/** Median and range of `xs`. */
export function summary(xs: number[]): { median: number; min: number; max: number } {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const median = n === 0 ? NaN : n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  return { median, min: s[0], max: s[n - 1] };
}

/**
 * Formats "median (min-max)" with `digits` decimals. Missing values (null, undefined, NaN: a
 * figure an older checkout does not report) are skipped; with none present, prints "n/a".
 */
export function fmtSummary(xs: (number | null | undefined)[], digits = 0): string {
  const present = xs.filter((x): x is number => typeof x === "number" && !Number.isNaN(x));
  if (present.length === 0) return "n/a";
  const { median, min, max } = summary(present);
  return `${median.toFixed(digits)} (${min.toFixed(digits)}-${max.toFixed(digits)})`;
}

/** A plain-text table: a header row and rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/** The resident set size of `pid` in bytes (VmRSS of /proc/PID/status), or null. */
export async function residentBytes(pid: number): Promise<number | null> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    return m === null ? null : Number(m[1]) * 1024;
  } catch {
    return null;
  }
}

/** Total size in bytes of the files under `path` (like `du -sb`: apparent sizes). */
export async function duBytes(path: string): Promise<number> {
  const cmd = new Deno.Command("du", { args: ["-sb", path], stdout: "piped", stderr: "null" });
  const { stdout } = await cmd.output();
  return Number(new TextDecoder().decode(stdout).split(/\s/)[0]);
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * The commit of the code being measured (`git rev-parse --short HEAD`), with "+dirty" when
 * main.ts or lib/ has uncommitted changes; "unknown" without git. Nodes load the code when they
 * start, so scripts print this at their start and end.
 */
export async function codeVersion(): Promise<string> {
  const root = new URL("..", import.meta.url).pathname;
  const git = async (args: string[]) => {
    const out = await new Deno.Command("git", {
      args: ["-C", root, ...args],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    if (!out.success) throw new Error("git failed");
    return new TextDecoder().decode(out.stdout).trim();
  };
  try {
    const head = await git(["rev-parse", "--short", "HEAD"]);
    const dirty = await git(["status", "--porcelain", "--", "main.ts", "lib"]);
    return dirty === "" ? head : `${head}+dirty`;
  } catch {
    return "unknown";
  }
}
