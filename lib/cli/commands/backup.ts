/**
 * `counter backup --out FILE`: fetches a consistent snapshot of the group from its leader and
 * writes it to FILE, atomically.
 *
 * The leader first confirms it still leads and waits until its applied state holds every
 * increment acknowledged before the request (a linearizable read), then encodes that state
 * (value, client sessions, configuration, index and term) in the snapshot file format, whose
 * CRC-32C covers every byte. The file is read out in chunks from that one node, checked whole
 * against its checksum, and written with temp file, fsync, rename and directory fsync.
 *
 * @module
 */

import { CounterStateMachine } from "../../counter/state_machine.ts";
import type { Snapshot } from "../../raft/types.ts";
import { pathExists, writeFileAtomic } from "../../storage/atomic_file.ts";
import { decodeSnapshot } from "../../storage/snapshot_store.ts";
import type { BackupOptions } from "../args.ts";
import {
  type AdminCommandDeps,
  answerIndex,
  answerString,
  BadAnswerError,
  jsonSafeInteger,
  runAdmin,
} from "./_admin.ts";
import { connectOptions, EXIT_OK } from "./_client.ts";

/** What a backup file holds, as `backup`, `restore` and `inspect` describe it. */
export interface BackupSummary {
  /** Log index the snapshot covers. */
  index: number;
  /** Term of the entry at that index. */
  term: number;
  /** The configuration at that index. */
  voters: string[];
  /** Learners at that index. */
  learners: string[];
  /** The counter's value. */
  value: bigint;
  /** Client sessions (for exactly-once increments) the snapshot carries. */
  sessions: number;
  /** Size of the whole file, in bytes. */
  bytes: number;
  /** SHA-256 of the whole file, hex. */
  sha256: string;
}

/** Summarizes a decoded snapshot file image; throws when the state machine data is bad. */
export async function summarizeSnapshot(
  snapshot: Snapshot,
  fileBytes: Uint8Array,
): Promise<BackupSummary> {
  const sm = new CounterStateMachine();
  sm.restore(snapshot.data);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", fileBytes as Uint8Array<ArrayBuffer>),
  );
  return {
    index: snapshot.index,
    term: snapshot.term,
    voters: [...snapshot.conf.voters],
    learners: [...snapshot.conf.learners],
    value: sm.value,
    sessions: sm.sessionCount,
    bytes: fileBytes.length,
    sha256: Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

/** A summary as JSON-ready data. */
export function summaryJson(summary: BackupSummary): Record<string, unknown> {
  return { ...summary, value: jsonSafeInteger(summary.value) };
}

/**
 * Runs `counter backup` and returns the exit status: 0 written, 1 failed, 3 outcome unknown (no
 * answer in time; nothing was written).
 *
 * @example Usage
 * ```ts
 * import { parseBackupArgs } from "../args.ts";
 * import { runBackup } from "./backup.ts";
 *
 * const code = await runBackup(parseBackupArgs(["--out", "/tmp/counter.snap"]));
 * ```
 */
export async function runBackup(
  options: BackupOptions,
  deps: AdminCommandDeps = {},
): Promise<number> {
  return await runAdmin("backup", connectOptions(options), deps, async (client, io) => {
    if (!options.force && await pathExists(options.out)) {
      throw new Error(`${options.out} exists; remove it, choose another --out or add --force`);
    }
    // ---- Call into the service: the leader, following redirects. ----
    const first = await client.admin("backup", { offset: 0 });
    const node = answerString(first.data, "node", "backup");
    const id = answerIndex(first.data, "id", node);
    const totalBytes = answerIndex(first.data, "totalBytes", node);
    const bytes = new Uint8Array(totalBytes);
    let received = 0;
    let data = first.data;
    while (true) {
      const offset = answerIndex(data, "offset", node);
      const chunk = data.chunk;
      if (!(chunk instanceof Uint8Array) || offset !== received) {
        throw new BadAnswerError(node, `expected a chunk at offset ${received}`);
      }
      if (chunk.length === 0 && received < totalBytes) {
        throw new BadAnswerError(node, `empty chunk at offset ${received} of ${totalBytes}`);
      }
      if (received + chunk.length > totalBytes) {
        throw new BadAnswerError(node, `chunks run past the ${totalBytes} bytes announced`);
      }
      bytes.set(chunk, received);
      received += chunk.length;
      if (received === totalBytes) break;
      // ---- Call into the service: the same node, which holds the image. ----
      data = (await client.admin("backup", { id, offset: received }, { peer: node })).data;
    }
    // The file's own CRC-32C covers every byte: check it before anything is written.
    const snapshot = decodeSnapshot(bytes, `the backup from ${node}`);
    const summary = await summarizeSnapshot(snapshot, bytes);
    await writeFileAtomic(options.out, bytes);
    if (options.json) {
      io.out(JSON.stringify({ file: options.out, node, ...summaryJson(summary) }));
    } else {
      io.out(
        `saved snapshot at index ${summary.index} (term ${summary.term}, value ${summary.value}, ` +
          `${summary.bytes} bytes) from ${node} to ${options.out}`,
      );
      io.out(`sha256 ${summary.sha256}`);
    }
    return EXIT_OK;
  }, "nothing was written");
}
