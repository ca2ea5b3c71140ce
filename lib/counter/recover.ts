/**
 * `counter recover --force-new-cluster` on a stopped node's data dir: etcd's
 * `--force-new-cluster` for a group that lost its majority for good.
 *
 * The node keeps every entry it holds, gets one Config entry naming it as the only voter (see
 * {@linkcode forceNewClusterState}) and a new random cluster id. On its next start it is a
 * one-node group: it elects itself and serves everything it has. The other machines come back
 * empty (`serve --join`, then `peers add`). A member of the old group that was not wiped shows
 * the old cluster id and is refused, so its log, which may hold other entries at the same
 * indexes and terms, never meets this one.
 *
 * The data dir lock proves the node is stopped: a running node holds it, and
 * {@linkcode prepareRecovery} fails with {@linkcode RecoverError} instead of waiting.
 *
 * @module
 */

import { basename, dirname, join, resolve } from "node:path";
import { GROUPS_DIR_NAME } from "../storage/layout.ts";
import {
  type ConfState,
  decodeConfState,
  EntryType,
  type ForcedNewCluster,
  forceNewClusterState,
} from "../raft/mod.ts";
import {
  DataDir,
  DataDirLockedError,
  DirLock,
  HostJournal,
  JOURNAL_DIR_NAME,
  type JournalRecord,
  LOCK_FILE_NAME,
  META_DIR_NAME,
  randomId64,
} from "../storage/mod.ts";
import { pathExists } from "../storage/atomic_file.ts";
import { decodeMeta, META_FILE_NAME } from "../storage/meta_store.ts";
import type { Logger } from "../logging/logger.ts";

/** A data dir that cannot be recovered, with a one-line reason for the operator. */
export class RecoverError extends Error {
  /** Creates the error; `message` is one line. */
  constructor(message: string) {
    super(message);
    this.name = "RecoverError";
  }
}

/** What a recovery will do, shown before it runs. */
export interface RecoveryPlan {
  /** The data dir's absolute path. */
  dataDir: string;
  /** The node the dir belongs to. */
  nodeId: string;
  /** Its group. */
  group: string;
  /** Index of the last entry the node holds (log or snapshot). */
  lastIndex: number;
  /** Term of that entry. */
  lastTerm: number;
  /** The configuration the node holds now. */
  conf: ConfState;
  /** The cluster id the dir has now, or "". */
  clusterId: string;
  /** Index of the forced configuration entry (`lastIndex + 1`). */
  entryIndex: number;
  /** The new term, saved with no vote, and the forced entry's term. */
  term: number;
  /** The new random cluster id. */
  newClusterId: string;
  /**
   * The data root to give `counter serve --data` when it is not `dataDir` (a group's dir under
   * `DATA/groups/`).
   */
  rootDir?: string;
}

/** An open data dir ready to be forced; see {@linkcode prepareRecovery}. */
export interface Recovery {
  /** What {@linkcode Recovery.apply} will do. */
  plan: RecoveryPlan;
  /** Durably applies the plan; see the module doc. Call once. */
  apply(): Promise<void>;
  /** Releases the data dir (and its lock). */
  close(): Promise<void>;
}

/**
 * Opens the stopped node's data dir `dir`, holding its lock until {@linkcode Recovery.close},
 * and works out what forcing it into a new one-node cluster does. Nothing is written yet.
 * Throws {@linkcode RecoverError} when the dir does not exist, is not a data dir, is in use by
 * a running process, or holds nothing to recover.
 *
 * When `dir` is a group's dir under a data root (`DATA/groups/NAME`), the root's host journal
 * may hold the group's newest entries: they are replayed onto its log first (the root's lock is
 * held too, so no running node writes the journal meanwhile).
 */
export async function prepareRecovery(dir: string, logger?: Logger): Promise<Recovery> {
  const root = resolve(dir);
  const metaPath = join(root, META_DIR_NAME, META_FILE_NAME);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(metaPath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    const exists = await Deno.stat(root).then(() => true, () => false);
    throw new RecoverError(
      exists
        ? `${root} is not a counter data dir (no ${metaPath}); nothing to recover`
        : `data dir ${root} does not exist`,
    );
  }
  // The dir's own node id and group: the operator names only the dir.
  const meta = decodeMeta(bytes, metaPath);
  // A group's dir (`DATA/groups/NAME`) has its data root two levels up.
  const dataRoot = basename(dirname(root)) === GROUPS_DIR_NAME ? dirname(dirname(root)) : undefined;
  const inUse = async (locked: string) => {
    const pid = await lockHolder(locked);
    return new RecoverError(
      `data dir ${locked} is in use by a running process${pid === "" ? "" : ` (PID ${pid})`}: ` +
        `stop node ${meta.nodeId} first; recover runs only on a stopped node's data dir`,
    );
  };
  let rootLock: DirLock | null = null;
  let journalRecords: ((incarnation: string) => JournalRecord[]) | undefined;
  let storage: DataDir;
  try {
    if (dataRoot !== undefined && await pathExists(join(dataRoot, JOURNAL_DIR_NAME))) {
      try {
        rootLock = DirLock.acquire(dataRoot);
      } catch (error) {
        if (error instanceof DataDirLockedError) throw await inUse(dataRoot);
        throw error;
      }
      const journal = await HostJournal.open(dataRoot, { logger });
      journalRecords = (incarnation) => journal.recoveredRecords(meta.group, incarnation);
      // Read only: the files stay for the node's next start, whose replay finds them applied.
      await journal.close();
    }
    try {
      storage = await DataDir.open(root, {
        nodeId: meta.nodeId,
        group: meta.group,
        logger,
        journalRecords,
      });
    } catch (error) {
      if (!(error instanceof DataDirLockedError)) throw error;
      throw await inUse(root);
    }
  } catch (error) {
    rootLock?.release();
    throw error;
  }
  const closeAll = async () => {
    try {
      await storage.close();
    } finally {
      rootLock?.release();
    }
  };
  try {
    if (storage.isFresh()) {
      throw new RecoverError(
        `data dir ${root} of node ${meta.nodeId} holds no log entry and no snapshot; ` +
          `nothing to recover`,
      );
    }
    const recovered = storage.recovered();
    const forced = forceNewClusterState(recovered, meta.nodeId);
    const plan: RecoveryPlan = {
      dataDir: root,
      nodeId: meta.nodeId,
      group: meta.group,
      lastIndex: forced.lastIndex,
      lastTerm: forced.lastTerm,
      conf: latestConf(recovered.entries, recovered.snapshot?.conf),
      clusterId: storage.clusterId(),
      entryIndex: forced.entry.index,
      term: forced.entry.term,
      newClusterId: randomId64(),
    };
    return {
      plan,
      apply: () => applyForced(storage, plan, forced),
      close: closeAll,
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/**
 * Writes the forced state, each step durable before the next. The cluster id changes first:
 * if the process dies before the entry is appended, the node still holds the old
 * configuration but is fenced off from the old members, and running recover again finishes
 * the job (it picks a term above the one saved here).
 */
async function applyForced(
  storage: DataDir,
  plan: RecoveryPlan,
  forced: ForcedNewCluster,
): Promise<void> {
  await storage.saveClusterId(plan.newClusterId);
  await storage.saveHardState(forced.state.hardState);
  // The old members come back wiped, with new incarnations: forget the ones they had.
  await storage.forgetPeerIncarnations(new Set([plan.nodeId]));
  await storage.append([forced.entry]);
}

/** The configuration in force at the end of `entries` (else the snapshot's). */
function latestConf(
  entries: readonly { type: EntryType; data: Uint8Array }[],
  snapshotConf: ConfState | undefined,
): ConfState {
  for (let i = entries.length - 1; i >= 0; i--) {
    if (entries[i].type === EntryType.Config) return decodeConfState(entries[i].data);
  }
  return snapshotConf ?? { voters: [], learners: [] };
}

/** The PID written in the lock file by the process holding it, or "". */
async function lockHolder(root: string): Promise<string> {
  try {
    const text = await Deno.readTextFile(join(root, LOCK_FILE_NAME));
    return /^\d+$/.test(text.trim()) ? text.trim() : "";
  } catch {
    return "";
  }
}
