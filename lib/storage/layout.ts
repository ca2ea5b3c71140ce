/**
 * Where a multi-group node keeps each group's data, and the migration from the single-group
 * layout.
 *
 * A node's data root `DATA` holds:
 *
 * - `DATA/LOCK`: the node's lock (see `dir_lock.ts`), held while a process serves the root;
 * - `DATA/groups/NAME/`: one data dir per hosted group (`log/`, `raft_meta/`, `snapshot/` and
 *   its own `LOCK`, as {@linkcode DataDir} lays it out);
 * - `DATA/groups.json`: the set of hosted groups (see `lib/counter/host.ts`);
 * - `DATA/journal/`: the host journal every group appends through (see `journal.ts`).
 *
 * Before several groups, `DATA` itself was the one group's data dir (`DATA/log`,
 * `DATA/raft_meta`, `DATA/snapshot`). {@linkcode migrateSingleGroupLayout} moves those three
 * into `DATA/groups/NAME/`, NAME being the group the meta file names.
 *
 * @module
 */

import { join, resolve } from "node:path";
import { pathExists, syncDir, syncFileAt, writeFileAtomic } from "./atomic_file.ts";
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

/** True when `root` holds a single-group data dir (some of `log/`, `raft_meta/`, `snapshot/`). */
export async function hasSingleGroupLayout(root: string): Promise<boolean> {
  for (const name of LEGACY_SUBDIRS) {
    if (await pathExists(join(resolve(root), name))) return true;
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
  if (!await pathExists(groupsDir)) {
    await Deno.mkdir(groupsDir);
    await syncDir(top);
  }
  if (!await pathExists(target)) {
    await Deno.mkdir(target);
    await syncDir(groupsDir);
  }
  for (const name of LEGACY_SUBDIRS) {
    const from = join(top, name);
    if (!await pathExists(from)) continue;
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
  if (!await pathExists(groupsDir)) return top;
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

/** Name of the file recording the groups a data root hosts. */
export const GROUPS_FILE_NAME = "groups.json";

/** The groups a data root hosts, and those removed from it (not re-created from `--groups`). */
export interface GroupSet {
  /** Hosted groups. */
  groups: string[];
  /** Groups removed with `counter groups remove`. */
  removed: string[];
}

/**
 * Flushes `groups.json` and the data root, so that a group set read at a start (and acted on:
 * journal records of a group not hosted are dropped) is one a power cut keeps, even when the
 * process that wrote it died before the root's flush.
 */
export async function flushGroupSet(root: string): Promise<void> {
  await syncFileAt(join(resolve(root), GROUPS_FILE_NAME));
  await syncDir(resolve(root));
}

/**
 * The group set recorded in `root/groups.json`, or null when there is none yet. A file that is
 * not the expected JSON is an error naming it (it is written atomically, so a crash never leaves
 * half of one).
 */
export async function readGroupSet(
  root: string,
  nameProblem: (name: string) => string | null,
): Promise<GroupSet | null> {
  const path = join(resolve(root), GROUPS_FILE_NAME);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return null;
    throw error;
  }
  const bad = (why: string) => new Error(`${path} is damaged: ${why}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw bad((error as Error).message);
  }
  const record = parsed as { version?: unknown; groups?: unknown; removed?: unknown };
  if (typeof record !== "object" || record === null || record.version !== 1) {
    throw bad("expected {version: 1, groups: [...], removed: [...]}");
  }
  const list = (value: unknown, what: string): string[] => {
    if (!Array.isArray(value) || !value.every((v) => typeof v === "string")) {
      throw bad(`${what} is not a list of names`);
    }
    for (const name of value) {
      const problem = nameProblem(name);
      if (problem !== null) throw bad(problem);
    }
    return [...value];
  };
  return { groups: list(record.groups, "groups"), removed: list(record.removed ?? [], "removed") };
}

/** Durably records `set` in `root/groups.json` (temp file, fsync, rename, dir fsync). */
export async function saveGroupSet(root: string, set: GroupSet): Promise<void> {
  const text = JSON.stringify({
    version: 1,
    groups: [...set.groups].sort(),
    removed: [...set.removed].sort(),
  });
  await writeFileAtomic(join(resolve(root), GROUPS_FILE_NAME), new TextEncoder().encode(text));
}

/** Name of the folder removed groups' data dirs are moved to. */
export const REMOVED_DIR_NAME = "removed";

/**
 * Moves `root/groups/GROUP` aside to `root/removed/GROUP.TIMESTAMP` (renamed, both directories
 * fsynced), so a removed group's data is out of the way but not destroyed; returns the new path,
 * or null when there was no such dir.
 */
export async function moveGroupAside(root: string, group: string): Promise<string | null> {
  const from = groupDataDir(root, group);
  if (!await pathExists(from)) return null;
  const removedDir = join(resolve(root), REMOVED_DIR_NAME);
  if (!await pathExists(removedDir)) {
    await Deno.mkdir(removedDir);
    await syncDir(resolve(root));
  }
  const to = join(removedDir, `${group}.${Date.now()}`);
  await Deno.rename(from, to);
  await syncDir(removedDir);
  await syncDir(join(resolve(root), GROUPS_DIR_NAME));
  return to;
}
