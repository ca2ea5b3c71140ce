/**
 * Where a multi-group node keeps each group's data, and the migration from the single-group
 * layout.
 *
 * A node's data root `DATA` holds:
 *
 * - `DATA/LOCK`: the node's lock (see `dir_lock.ts`), held while a process serves the root;
 * - `DATA/groups/NAME/`: one data dir per hosted group (`log/`, `raft_meta/`, `snapshot/` and
 *   its own `LOCK`, as {@linkcode DataDir} lays it out);
 * - `DATA/groups.json`: the set of hosted groups (see `lib/counter/host.ts`).
 *
 * Before several groups, `DATA` itself was the one group's data dir (`DATA/log`,
 * `DATA/raft_meta`, `DATA/snapshot`). {@linkcode migrateSingleGroupLayout} moves those three
 * into `DATA/groups/NAME/`, NAME being the group the meta file names.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { syncDir } from "./atomic_file.ts";
import { decodeMeta, META_FILE_NAME } from "./meta_store.ts";
import type { Logger } from "../logging/logger.ts";

/** Name of the folder holding one data dir per group. */
export const GROUPS_DIR_NAME = "groups";

/** The subdirectories of a single-group data dir, in the order they are migrated. */
const LEGACY_SUBDIRS = ["log", "snapshot", "raft_meta"] as const;

/** The data dir of `group` under the data root `root`. */
export function groupDataDir(root: string, group: string): string {
  return join(resolve(root), GROUPS_DIR_NAME, group);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** True when `root` holds a single-group data dir (some of `log/`, `raft_meta/`, `snapshot/`). */
export async function hasSingleGroupLayout(root: string): Promise<boolean> {
  for (const name of LEGACY_SUBDIRS) {
    if (await exists(join(resolve(root), name))) return true;
  }
  return false;
}

/**
 * The group a single-group data dir at `root` belongs to: the one its meta file names, or
 * `fallback` when it has no readable meta file (a dir whose migration moved the meta already
 * cannot get here: the meta moves last).
 */
async function legacyGroup(root: string, fallback: string): Promise<string> {
  const metaPath = join(root, "raft_meta", META_FILE_NAME);
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(metaPath);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return fallback;
    throw error;
  }
  return decodeMeta(bytes, metaPath).group;
}

/**
 * Moves a single-group data dir at `root` into `root/groups/NAME/` (NAME from its meta file, else
 * `fallback`), and returns NAME; returns null when there is nothing to migrate. The caller holds
 * the root's lock.
 *
 * Each of `log/`, `snapshot/` and `raft_meta/` (in that order: the meta, which names the group,
 * moves last) is renamed into place, and both directories are fsynced after each rename. A rename
 * is atomic, so a crash at any point leaves each subdirectory wholly at its old place or wholly
 * at its new one, and the next start finishes the migration: it still finds the meta at the old
 * place (hence the group) until everything has moved. Nothing is copied, so nothing can be
 * half-written. A subdirectory present at both places (a non-empty one where the migration would
 * put it) is refused with an error naming both: that is not something a crash leaves behind.
 */
export async function migrateSingleGroupLayout(
  root: string,
  fallback: string,
  logger?: Logger,
): Promise<string | null> {
  const top = resolve(root);
  if (!await hasSingleGroupLayout(top)) return null;
  const group = await legacyGroup(top, fallback);
  const groupsDir = join(top, GROUPS_DIR_NAME);
  const target = join(groupsDir, group);
  if (!await exists(groupsDir)) {
    await Deno.mkdir(groupsDir);
    await syncDir(top);
  }
  if (!await exists(target)) {
    await Deno.mkdir(target);
    await syncDir(groupsDir);
  }
  for (const name of LEGACY_SUBDIRS) {
    const from = join(top, name);
    if (!await exists(from)) continue;
    const to = join(target, name);
    try {
      // Replaces only an empty directory (POSIX rename), never one holding data.
      await Deno.rename(from, to);
    } catch (error) {
      throw new Error(
        `cannot migrate ${from} to ${to}: ${(error as Error).message}; both hold data: ` +
          `move one aside by hand`,
        { cause: error },
      );
    }
    await syncDir(target);
    await syncDir(top);
  }
  logger?.info("moved the single-group data dir into the multi-group layout", {
    from: top,
    to: target,
    group,
  });
  return group;
}

/**
 * The data dir of `group` under `root` for offline tools (`inspect`, `recover`): `root` itself
 * when it is a single-group data dir, `root/groups/GROUP` when it has the multi-group layout (and
 * the only group there when `group` is undefined), else `root` unchanged.
 */
export async function resolveGroupDataDir(root: string, group?: string): Promise<string> {
  const top = resolve(root);
  if (await hasSingleGroupLayout(top)) return top;
  const groupsDir = join(top, GROUPS_DIR_NAME);
  if (!await exists(groupsDir)) return top;
  if (group !== undefined) return join(groupsDir, group);
  const names: string[] = [];
  for await (const entry of Deno.readDir(groupsDir)) {
    if (entry.isDirectory) names.push(entry.name);
  }
  names.sort();
  if (names.length === 1) return join(groupsDir, names[0]);
  if (names.includes("counter")) return join(groupsDir, "counter");
  if (names.length === 0) return top;
  throw new Error(
    `${top} holds several groups (${names.join(", ")}): name one with --group, or give ` +
      `--data ${join(groupsDir, "NAME")}`,
  );
}
