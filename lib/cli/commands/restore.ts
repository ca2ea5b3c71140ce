/**
 * `counter restore --data DIR --from FILE --id HOST:PORT --conf HOST:PORT,...`: seeds a new
 * node's empty data dir from a backup file, as the first state of a new group.
 *
 * The file's checksum is checked first. The data dir then holds the backup's snapshot (value,
 * client sessions, index and term) with `--conf` as its configuration, an empty log that
 * continues after the snapshot, and the snapshot's term as the node's term, with no vote. Every
 * member of the new group is restored from the same file with the same `--conf`; they then
 * start with `counter serve` and elect a leader in the next term.
 *
 * @module
 */

import { CounterStateMachine } from "../../counter/state_machine.ts";
import { DataDir } from "../../storage/mod.ts";
import { decodeSnapshot } from "../../storage/snapshot_store.ts";
import type { RestoreOptions } from "../args.ts";
import { printLine } from "../output.ts";
import { DEFAULT_GROUP } from "../args.ts";
import { summarizeSnapshot, summaryJson } from "./backup.ts";
import { EXIT_OK } from "./_client.ts";

/** Throws unless `dir` is missing or an empty directory. */
async function checkEmptyDir(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isDirectory) throw new Error(`${dir} is not a directory`);
  for await (const _ of Deno.readDir(dir)) {
    throw new Error(
      `${dir} is not empty: restore only seeds a new node's empty data dir ` +
        "(stop the node and move its data dir away first)",
    );
  }
}

/**
 * The cluster id of a group restored from a backup: the first 16 hex digits of SHA-256 over
 * "restore", the group, the sorted voters and the backup file's SHA-256, one per line. Every
 * member restored from the same file with the same `--conf` gets the same id without talking,
 * and it differs from the backed-up group's own, so the two groups never take each other's
 * messages.
 */
export async function restoredClusterId(
  group: string,
  voters: readonly string[],
  backupSha256: string,
): Promise<string> {
  const text = `restore\n${group}\n${[...new Set(voters)].sort().join(",")}\n${backupSha256}`;
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest).subarray(0, 8), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Runs `counter restore` and returns the exit status: 0 restored, 1 failed (nothing usable was
 * written: a failure after the dir was created leaves a dir `serve` refuses or bootstraps anew).
 *
 * @example Usage
 * ```ts
 * import { parseRestoreArgs } from "../args.ts";
 * import { runRestore } from "./restore.ts";
 *
 * const code = await runRestore(parseRestoreArgs([
 *   "--data", "/tmp/n1", "--from", "/tmp/counter.snap",
 *   "--id", "127.0.0.1:8081", "--conf", "127.0.0.1:8081",
 * ]));
 * ```
 */
export async function runRestore(
  options: RestoreOptions,
  out: (line: string) => void = printLine,
): Promise<number> {
  const bytes = await Deno.readFile(options.from);
  // Checks the magic, version and CRC-32C of the whole file.
  const backup = decodeSnapshot(bytes, options.from);
  // And that the state machine image inside reads back.
  new CounterStateMachine().restore(backup.data);
  const summary = await summarizeSnapshot(backup, bytes);
  await checkEmptyDir(options.dataDir);
  const voters = [...options.conf].sort();
  const clusterId = await restoredClusterId(options.group, voters, summary.sha256);
  const storage = await DataDir.open(options.dataDir, { nodeId: options.id, group: options.group });
  try {
    // As if the new group's leader had sent this snapshot: saved, then an empty log after it.
    await storage.restoreSnapshot({
      index: backup.index,
      term: backup.term,
      conf: { voters, learners: [] },
      data: backup.data,
    });
    // The node must never vote or lead in a term at or below the snapshot's.
    await storage.saveHardState({ term: backup.term, vote: "" });
    await storage.saveClusterId(clusterId);
    // The snapshot is committed state: a later open must refuse a dir that lost it.
    await storage.saveCommitFloor(backup.index);
  } finally {
    await storage.close();
  }
  if (options.json) {
    out(JSON.stringify({
      dataDir: options.dataDir,
      id: options.id,
      group: options.group,
      clusterId,
      ...summaryJson(summary),
      voters,
      learners: [],
    }));
  } else {
    out(
      `restored snapshot at index ${summary.index} (term ${summary.term}, value ${summary.value}) ` +
        `into ${options.dataDir} for ${options.id}`,
    );
    out(`voters: ${voters.join(",")}`);
    out(`cluster id: ${clusterId} (new)`);
    out(
      `next: counter serve --data ${options.dataDir} --id ${options.id} ` +
        `--conf ${voters.join(",")}${
          options.group === DEFAULT_GROUP ? "" : ` --group ${options.group}`
        }`,
    );
  }
  return EXIT_OK;
}
