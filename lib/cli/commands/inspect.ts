/**
 * `counter inspect --data DIR`: prints what a node's data dir holds (meta, snapshots, log
 * range), offline and read-only, as `etcdutl` does for etcd. It takes no lock and writes
 * nothing, so it may also look at the dir of a running node; it then says so, since the figures
 * move while it reads.
 *
 * @module
 */

import { resolveGroupDataDir } from "../../storage/layout.ts";
import { JOURNAL_DIR_NAME } from "../../storage/journal.ts";
import { basename, join, resolve } from "node:path";
import {
  inspectDataDir,
  journalRecordBytes,
  type SnapshotFileReport,
} from "../../storage/inspect.ts";
import type { InspectOptions } from "../args.ts";
import { printLine } from "../output.ts";
import { type BackupSummary, summarizeSnapshot, summaryJson } from "./backup.ts";
import { EXIT_FAILED, EXIT_OK } from "./_client.ts";

/**
 * Runs `counter inspect` and returns the exit status: 0 when every file read back intact, 1
 * when the meta file is missing or any file is damaged (the report is printed either way).
 *
 * @example Usage
 * ```ts
 * import { parseInspectArgs } from "../args.ts";
 * import { runInspect } from "./inspect.ts";
 *
 * const code = await runInspect(parseInspectArgs(["--data", "/tmp/n1"]));
 * ```
 */
export async function runInspect(
  options: InspectOptions,
  out: (line: string) => void = printLine,
): Promise<number> {
  // A data root with the multi-group layout: the group's own dir under DATA/groups/.
  const report = await inspectDataDir(await resolveGroupDataDir(options.dataDir));
  const journalBytes = await journalRecordBytes(resolve(options.dataDir));
  const newest = report.snapshots.find((s) => s.snapshot !== null);
  let summary: BackupSummary | null = null;
  let summaryProblem: string | undefined;
  if (newest !== undefined) {
    try {
      summary = await summarizeSnapshot(newest.snapshot!, newest.fileBytes!);
    } catch (error) {
      summaryProblem = `state machine image does not read back: ${(error as Error).message}`;
    }
  }
  const segments = report.segments;
  const intact = segments.filter((s) => s.firstIndex > 0);
  const firstIndex = intact[0]?.firstIndex ?? 0;
  const lastSegment = intact.at(-1);
  const lastIndex = lastSegment?.lastIndex ?? 0;
  const problems = [
    ...(report.metaProblem !== undefined ? [report.metaProblem] : []),
    ...(summaryProblem !== undefined ? [summaryProblem] : []),
    ...report.snapshots.flatMap((s) => s.problem !== undefined ? [s.problem] : []),
    ...segments.flatMap((s) => s.problem !== undefined ? [`${s.path}: ${s.problem}`] : []),
  ];
  if (options.json) {
    out(JSON.stringify({
      dir: report.dir,
      inUse: report.locked,
      ...(report.lockPid !== undefined ? { pid: report.lockPid } : {}),
      meta: report.meta === null ? null : {
        nodeId: report.meta.nodeId,
        group: report.meta.group,
        term: report.meta.hardState.term,
        vote: report.meta.hardState.vote,
        incarnation: report.meta.incarnation,
        clusterId: report.meta.clusterId,
        commitFloor: report.meta.commitFloor,
        logFloor: report.meta.logFloor,
        peerIncarnations: Object.fromEntries(report.meta.peerIncarnations),
      },
      snapshot: summary === null ? null : { file: newest!.path, ...summaryJson(summary) },
      snapshotFiles: report.snapshots.map(snapshotFileJson),
      log: {
        firstIndex,
        lastIndex,
        lastTerm: lastSegment?.lastTerm ?? 0,
        segments: segments.map((s) => ({
          file: s.path,
          bytes: s.bytes,
          firstIndex: s.firstIndex,
          lastIndex: s.lastIndex,
          entries: s.entries,
          ...(s.problem !== undefined ? { problem: s.problem } : {}),
        })),
      },
      journalBytes,
      problems,
    }));
    return problems.length === 0 ? EXIT_OK : EXIT_FAILED;
  }
  out(
    `data dir: ${report.dir}` +
      (report.locked
        ? ` (in use by a running node${
          report.lockPid !== undefined ? `, pid ${report.lockPid}` : ""
        }: figures may change while read)`
        : " (not in use)"),
  );
  if (report.meta !== null) {
    const m = report.meta;
    out(
      `meta: node ${m.nodeId}, group ${m.group}, term ${m.hardState.term}, ` +
        `vote ${m.hardState.vote || "(none)"}`,
    );
    out(
      `  incarnation ${m.incarnation || "(none)"}, cluster id ${m.clusterId || "(none)"}, ` +
        `commit floor ${m.commitFloor}, log floor ${m.logFloor}`,
    );
    const peers = [...m.peerIncarnations].map(([id, inc]) => `${id}=${inc}`);
    out(`  peer incarnations: ${peers.join(",") || "(none)"}`);
  } else {
    out(`meta: ${report.metaProblem}`);
  }
  if (summary !== null) {
    out(
      `snapshot: index ${summary.index}, term ${summary.term}, value ${summary.value}, ` +
        `${plural(summary.sessions, "client session")}, ${summary.bytes} bytes ` +
        `(${basename(newest!.path)})`,
    );
    out(`  voters: ${summary.voters.join(",") || "(none)"}`);
    out(`  learners: ${summary.learners.join(",") || "(none)"}`);
  } else {
    out(`snapshot: ${summaryProblem ?? "(none)"}`);
  }
  if (intact.length === 0) {
    out(`log: empty (${plural(segments.length, "segment")})`);
  } else if (lastIndex < firstIndex) {
    out(`log: no entries, the next is ${firstIndex} (${plural(segments.length, "segment")})`);
  } else {
    out(
      `log: entries ${firstIndex}..${lastIndex} (last term ${lastSegment!.lastTerm}) in ` +
        plural(segments.length, "segment"),
    );
  }
  for (const s of segments) {
    out(
      `  ${basename(s.path)}  ${s.firstIndex}..${s.lastIndex}  ${s.entries} entries  ` +
        `${s.bytes} bytes`,
    );
  }
  if (journalBytes > 0) {
    const journalDir = join(resolve(options.dataDir), JOURNAL_DIR_NAME);
    out(
      `journal: ${journalBytes} bytes of appends in ${journalDir}, ` +
        `replayed onto the groups' logs at the next start: the log above may lack its newest ` +
        `entries, and a bad record at its end may be what the journal replaces`,
    );
  }
  for (const problem of problems) out(`problem: ${problem}`);
  return problems.length === 0 ? EXIT_OK : EXIT_FAILED;
}

function snapshotFileJson(s: SnapshotFileReport): Record<string, unknown> {
  return {
    file: s.path,
    bytes: s.bytes,
    ok: s.snapshot !== null,
    ...(s.snapshot !== null ? { index: s.snapshot.index, term: s.snapshot.term } : {}),
    ...(s.problem !== undefined ? { problem: s.problem } : {}),
  };
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
