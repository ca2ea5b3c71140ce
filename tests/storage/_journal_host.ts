/**
 * A host's storage for journal tests, without the network: a root's journal and one data dir per
 * group appending through it, started as `NodeHost` starts them (replay, then a new journal file),
 * stopped, or cut off by a simulated power cut or process death (see `_disk.ts`).
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { Logger } from "../../lib/logging/logger.ts";
import { HostJournal } from "../../lib/storage/journal.ts";
import { DataDir, LOG_DIR_NAME } from "../../lib/storage/mod.ts";
import { listNames } from "./_helpers.ts";
import type { CutMode, Disk } from "./_disk.ts";

/** The node every data dir of these tests belongs to. */
export const NODE_ID = "127.0.0.1:7001";

/** The data dir of `group` under the root `root`. */
export function groupDir(root: string, group: string): string {
  return join(root, "groups", group);
}

export interface HostOptions {
  segmentBytesMax?: number;
  rotateBytes?: number;
  logger?: Logger;
  /** The journal's clock (see `HostJournalOptions.now`). */
  now?: () => number;
  /** When given, each replayed log must be flushed whole by `DataDir.open`, before its close. */
  disk?: Disk;
}

/** What `NodeHost` holds: the root's journal and each group's data dir appending through it. */
export interface Host {
  journal: HostJournal;
  dirs: Map<string, DataDir>;
}

/**
 * Starts like `NodeHost`: reads the journal, replays each group's records onto its log (each
 * data dir opened and closed), starts a new journal file, then opens every group with it.
 */
export async function startHost(
  root: string,
  groups: string[],
  options: HostOptions = {},
): Promise<Host> {
  const { segmentBytesMax, rotateBytes, logger, disk, now } = options;
  const journal = await HostJournal.open(root, { logger, rotateBytes, now });
  for (const group of journal.recoveredGroups()) {
    if (!groups.includes(group)) continue;
    const dir = await DataDir.open(groupDir(root, group), {
      nodeId: NODE_ID,
      group,
      logger,
      segmentBytesMax,
      journalRecords: (incarnation) => journal.recoveredRecords(group, incarnation),
    });
    if (disk !== undefined) {
      const logDir = join(groupDir(root, group), LOG_DIR_NAME);
      for (const name of await listNames(logDir)) {
        const path = join(logDir, name);
        const size = (await Deno.stat(path)).size;
        assert.equal(disk.durable(path), size, `${path} flushed by the replay`);
      }
    }
    await dir.close();
  }
  await journal.finishRecovery();
  const dirs = new Map<string, DataDir>();
  for (const group of groups) {
    const dir = await DataDir.open(groupDir(root, group), {
      nodeId: NODE_ID,
      group,
      logger,
      segmentBytesMax,
      journal,
    });
    dirs.set(group, dir);
  }
  return { journal, dirs };
}

/** Closes every data dir, then the journal (a clean stop). */
export async function stopHost(host: Host): Promise<void> {
  for (const dir of host.dirs.values()) await dir.close();
  await host.journal.close();
}

/** Cuts the power under a running host, then lets go of its files (locks, handles). */
export async function crash(disk: Disk, root: string, host: Host, mode: CutMode): Promise<number> {
  // Between flushes and checkpoints: the crash model keeps file contents, not directory entries,
  // so a cut during a rotation (a file created, another deleted) is outside what it can express.
  await host.journal.idle();
  const kept = await disk.cut(root);
  await stopHost(host);
  return await disk.apply(root, kept, mode);
}

/** The host process dies, the machine does not: see {@linkcode Disk.processDied}. */
export async function killHost(disk: Disk, root: string, host: Host): Promise<void> {
  await host.journal.idle();
  const kept = await disk.cut(root);
  await stopHost(host);
  disk.processDied(kept);
}

/**
 * The host process dies after a disk error: every dir and the journal are let go, errors
 * ignored (failed logs and a failed journal may refuse to close). With `model`, the crash model
 * keeps what was written, not the flushes the closes make (see {@linkcode Disk.processDied}).
 */
export async function abandonHost(
  host: Host,
  model?: { disk: Disk; root: string },
): Promise<void> {
  const kept = model === undefined ? null : await model.disk.cut(model.root);
  for (const dir of host.dirs.values()) await dir.close().catch(() => {});
  await host.journal.close().catch(() => {});
  if (kept !== null) model!.disk.processDied(kept);
}
