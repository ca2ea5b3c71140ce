/**
 * Where the CPU of a `counter bench` run goes: microseconds of CPU per operation for the bench
 * client itself and, with `--local`, for each node, from the processes' user + system time in
 * `/proc/PID/stat` (Linux), sampled at the start and at the end of the measured window.
 *
 * The times are in clock ticks (`USER_HZ`, 100 per second on Linux): a process that used less
 * than a tick or two in the window gets a coarse figure, so the split wants a run of a second or
 * more. Where `/proc` cannot be read the split is reported unavailable, with the reason.
 *
 * @module
 */

/** Clock ticks per second of the times in `/proc/PID/stat`: `sysconf(_SC_CLK_TCK)`, 100 on Linux. */
export const CLOCK_TICKS_PER_SEC = 100;

/** A process's user + system CPU time in clock ticks, or why it could not be read. */
export type CpuTicks = { ticks: number } | { unavailable: string };

/**
 * Reads the user + system time of process `pid` ("self": this process) from
 * `/proc/PID/stat`, in clock ticks, all threads included.
 */
export function readCpuTicks(pid: number | "self"): CpuTicks {
  const path = `/proc/${pid}/stat`;
  let stat: string;
  try {
    stat = Deno.readTextFileSync(path);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return { unavailable: `cannot read ${path}: ${why}` };
  }
  return parseStatTicks(stat, path);
}

/**
 * The utime + stime (fields 14 and 15) of a `/proc/PID/stat` line. The command name (field 2)
 * is in parentheses and may hold spaces and parentheses itself, so fields are counted from the
 * last ")".
 */
export function parseStatTicks(stat: string, path = "/proc/PID/stat"): CpuTicks {
  const close = stat.lastIndexOf(")");
  // After ") ": field 3 (state) is at index 0, so field N is at index N - 3.
  const fields = close < 0 ? [] : stat.slice(close + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isSafeInteger(utime) || !Number.isSafeInteger(stime) || utime < 0 || stime < 0) {
    return { unavailable: `${path} has no utime and stime fields` };
  }
  return { ticks: utime + stime };
}

/** A process whose CPU the split measures. */
export interface CpuProcess {
  /** "client", or the node's id (`HOST:PORT`). */
  id: string;
  /** For a node: "leader" or "follower" when the leader is known, else null. */
  role: "client" | "leader" | "follower" | null;
  /** Its process id; null for a node that is not running. */
  pid: number | "self" | null;
}

/** The CPU times of the measured processes at one moment. */
export interface CpuSample {
  /** One reading per process, in the order given. */
  readings: CpuTicks[];
}

/** One process's share of the CPU of the measured window. */
export interface CpuShare {
  /** "client", or the node's id. */
  id: string;
  /** "client", "leader", "follower", or null for a node when the leader is unknown. */
  role: CpuProcess["role"];
  /** Clock ticks of user + system time it used in the window. */
  ticks: number;
  /** Microseconds of CPU per operation completed in the window, to 0.1 µs. */
  usPerOp: number;
}

/**
 * The CPU split of a run: `available` false (with the reason) where it could not be measured,
 * never made-up figures.
 */
export type CpuSplit =
  | {
    available: true;
    /** Operations completed in the window. */
    ops: number;
    /** Clock ticks per second of the `ticks` figures. */
    ticksPerSec: number;
    /** The client first, then each node. */
    processes: CpuShare[];
    /** Sum of `usPerOp` over the processes. */
    totalUsPerOp: number;
  }
  | { available: false; reason: string };

/** Reads every process's CPU time now. `read` defaults to {@linkcode readCpuTicks}. */
export function sampleCpu(
  processes: readonly CpuProcess[],
  read: (pid: number | "self") => CpuTicks = readCpuTicks,
): CpuSample {
  return {
    readings: processes.map((p) =>
      p.pid === null ? { unavailable: `node ${p.id} is not running` } : read(p.pid)
    ),
  };
}

function roundTenth(value: number): number {
  return Math.round(value * 10) / 10;
}

/**
 * The split of the window from `start` to `end` (samples of `processes`, in that order) over
 * `ops` completed operations. Unavailable when any reading failed or nothing completed.
 */
export function cpuSplit(
  processes: readonly CpuProcess[],
  start: CpuSample,
  end: CpuSample,
  ops: number,
): CpuSplit {
  if (ops <= 0) return { available: false, reason: "no operation completed in the window" };
  const shares: CpuShare[] = [];
  for (let i = 0; i < processes.length; i++) {
    const before = start.readings[i];
    const after = end.readings[i];
    if ("unavailable" in before) return { available: false, reason: before.unavailable };
    if ("unavailable" in after) return { available: false, reason: after.unavailable };
    const ticks = after.ticks - before.ticks;
    if (ticks < 0) {
      return { available: false, reason: `${processes[i].id}'s CPU time went backwards` };
    }
    const usPerOp = (ticks * 1_000_000) / CLOCK_TICKS_PER_SEC / ops;
    shares.push({ id: processes[i].id, role: processes[i].role, ticks, usPerOp });
  }
  const total = shares.reduce((sum, share) => sum + share.usPerOp, 0);
  for (const share of shares) share.usPerOp = roundTenth(share.usPerOp);
  return {
    available: true,
    ops,
    ticksPerSec: CLOCK_TICKS_PER_SEC,
    processes: shares,
    totalUsPerOp: roundTenth(total),
  };
}

/**
 * The processes of a run: this one (the client) and, when `nodes` are given (`--local`), each
 * node, labelled by role when `leader` is known.
 */
export function benchProcesses(
  nodes: readonly { id: string; pid: number | null }[],
  leader: string | null,
): CpuProcess[] {
  const known = leader !== null && nodes.some((n) => n.id === leader);
  return [
    { id: "client", role: "client", pid: "self" },
    ...nodes.map((n) => ({
      id: n.id,
      role: known ? (n.id === leader ? "leader" as const : "follower" as const) : null,
      pid: n.pid,
    })),
  ];
}

/** The split as the line the text output prints. */
export function formatCpuSplit(split: CpuSplit): string {
  if (!split.available) return `cpu per op: unavailable (${split.reason})`;
  const parts = split.processes.map((p) => {
    const name = p.role === "client" ? "client" : p.role === null ? p.id : `${p.role} ${p.id}`;
    return `${name} ${p.usPerOp.toFixed(1)} µs`;
  });
  return `cpu per op: ${parts.join(", ")}; total ${split.totalUsPerOp.toFixed(1)} µs` +
    ` (${split.ops} ops, /proc ticks of ${1000 / split.ticksPerSec} ms)`;
}
