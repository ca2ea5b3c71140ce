/**
 * The Raft hard state (term and vote) and the identity of the data dir, in `DIR/raft_meta/meta`.
 *
 * The file is small and rewritten whole with {@linkcode writeFileAtomic}, so after a crash it
 * holds either the previous or the new hard state. Losing it, or reading a wrong one, could make
 * the node vote twice in a term, so a bad checksum is always an error, never a reset.
 *
 * Storing the node id and group stops an operator from starting a node on another node's data,
 * which would silently merge two logs.
 *
 * File layout (all integers little-endian):
 *
 * | offset | bytes | field                                  |
 * | ------ | ----- | -------------------------------------- |
 * | 0      | 4     | magic "CMET"                           |
 * | 4      | 2     | format version, 1                      |
 * | 6      | 2     | reserved, 0                            |
 * | 8      | 8     | term (u64)                             |
 * | 16     | 2+n   | node id: u16 byte length, UTF-8 bytes  |
 * | ...    | 2+n   | group: u16 byte length, UTF-8 bytes    |
 * | ...    | 2+n   | vote: u16 byte length, UTF-8 bytes     |
 * | end-4  | 4     | CRC-32C of every byte before it        |
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { HardState, NodeId } from "../raft/types.ts";
import { checkFramed, getU64, readString, setU64 } from "./_binary.ts";
import { Mutex } from "./_mutex.ts";
import { isTempFileName, writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import { DataDirMismatchError } from "./errors.ts";

/** Name of the meta file inside `DIR/raft_meta/`. */
export const META_FILE_NAME = "meta";

/** Magic bytes "CMET" at the start of a meta file. */
export const META_MAGIC: Uint8Array = new Uint8Array([0x43, 0x4d, 0x45, 0x54]);

/** The meta file format version this build writes and reads. */
export const META_VERSION = 1;

/** Longest node id, group or vote accepted, in UTF-8 bytes; ids are `HOST:PORT` strings. */
export const META_STRING_BYTES_MAX = 1024;

const META_FIXED_BYTES = 16;
const META_CRC_BYTES = 4;
const META_BYTES_MIN = META_FIXED_BYTES + 3 * 2 + META_CRC_BYTES;

const encoder = new TextEncoder();

/** Everything the meta file holds. */
export interface Meta {
  /** The node the data dir belongs to. */
  nodeId: NodeId;
  /** The Raft group the data dir belongs to. */
  group: string;
  /** The latest term and vote. */
  hardState: HardState;
}

/** Encodes `meta` in the meta file format (see the module doc). */
export function encodeMeta(meta: Meta): Uint8Array {
  const { term, vote } = meta.hardState;
  if (!Number.isSafeInteger(term) || term < 0) {
    throw new RangeError(`term ${term} is not a non-negative safe integer`);
  }
  const nodeId = encodeString("node id", meta.nodeId);
  const group = encodeString("group", meta.group);
  const voteBytes = encodeString("vote", vote);
  const size = META_BYTES_MIN + nodeId.length + group.length + voteBytes.length;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(META_MAGIC, 0);
  view.setUint16(4, META_VERSION, true);
  view.setUint16(6, 0, true);
  setU64(view, 8, term);
  let offset = META_FIXED_BYTES;
  for (const field of [nodeId, group, voteBytes]) {
    view.setUint16(offset, field.length, true);
    bytes.set(field, offset + 2);
    offset += 2 + field.length;
  }
  view.setUint32(offset, crc32c(bytes, 0, offset), true);
  return bytes;
}

/**
 * Decodes a meta file's bytes; `path` names the file in errors. Throws
 * {@linkcode StorageCorruptionError} for bad bytes (including a wrong magic) and
 * {@linkcode UnsupportedFormatError} for another format version.
 */
export function decodeMeta(bytes: Uint8Array, path: string): Meta {
  const framed = checkFramed(bytes, path, {
    kind: "meta",
    magic: META_MAGIC,
    version: META_VERSION,
    bytesMin: META_BYTES_MIN,
  });
  const { view, crcOffset, corrupt } = framed;
  // The checksum matched, so anything wrong below is a bug in the writer, still reported.
  const term = getU64(view, 8);
  if (!Number.isSafeInteger(term)) throw corrupt(`term ${term} is not a safe integer`, 8);
  let offset = META_FIXED_BYTES;
  const strings: string[] = [];
  for (const name of ["node id", "group", "vote"]) {
    const { value, next } = readString(framed, offset, name);
    strings.push(value);
    offset = next;
  }
  if (offset !== crcOffset) throw corrupt(`${crcOffset - offset} unexpected bytes`, offset);
  return { nodeId: strings[0], group: strings[1], hardState: { term, vote: strings[2] } };
}

/** Options for {@linkcode MetaStore.open}. */
export interface MetaStoreOptions {
  /** The node opening the data dir. */
  nodeId: NodeId;
  /** The group the node serves. */
  group: string;
}

/** The meta file of one data dir; see the module doc. */
export class MetaStore {
  #path: string;
  #meta: Meta;
  #exists: boolean;
  #mutex = new Mutex();

  private constructor(path: string, meta: Meta, exists: boolean) {
    this.#path = path;
    this.#meta = meta;
    this.#exists = exists;
  }

  /**
   * Reads the meta file in `dir` (the data dir's `raft_meta/`), removing temp files a crash
   * left. A missing file reads as term 0, no vote; nothing is written until
   * {@linkcode MetaStore.save}. Throws {@linkcode DataDirMismatchError} when the file names
   * another node or group than `options`.
   */
  static async open(dir: string, options: MetaStoreOptions): Promise<MetaStore> {
    encodeString("node id", options.nodeId);
    encodeString("group", options.group);
    if (options.nodeId === "" || options.group === "") {
      throw new RangeError("node id and group must not be empty");
    }
    for await (const item of Deno.readDir(dir)) {
      if (item.isFile && isTempFileName(item.name)) await Deno.remove(join(dir, item.name));
    }
    const path = join(dir, META_FILE_NAME);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      const meta = {
        nodeId: options.nodeId,
        group: options.group,
        hardState: { term: 0, vote: "" },
      };
      return new MetaStore(path, meta, false);
    }
    const meta = decodeMeta(bytes, path);
    if (meta.nodeId !== options.nodeId || meta.group !== options.group) {
      throw new DataDirMismatchError(
        `data dir ${dirname(dir)} belongs to node ${meta.nodeId} in group ${meta.group}, ` +
          `not node ${options.nodeId} in group ${options.group} (meta file ${path})`,
      );
    }
    return new MetaStore(path, meta, true);
  }

  /** The meta file's path. */
  get path(): string {
    return this.#path;
  }

  /** True when the meta file is on disk (it was there at open, or a save completed). */
  exists(): boolean {
    return this.#exists;
  }

  /** The node id this dir belongs to. */
  nodeId(): NodeId {
    return this.#meta.nodeId;
  }

  /** The group this dir belongs to. */
  group(): string {
    return this.#meta.group;
  }

  /** The latest saved hard state (term 0, no vote when none was ever saved). */
  hardState(): HardState {
    return { ...this.#meta.hardState };
  }

  /**
   * Durably replaces the hard state; resolves once it survives a crash. Saves run one at a
   * time in call order, so a later save is never overwritten by an earlier one.
   *
   * Refuses a term that goes backwards and a changed vote within a term: both would let the
   * node vote twice in one term, and are bugs in the caller.
   */
  save(hardState: HardState): Promise<void> {
    return this.#mutex.run(async () => {
      const previous = this.#meta.hardState;
      if (hardState.term < previous.term) {
        throw new RangeError(
          `refusing to save term ${hardState.term}: term ${previous.term} is already saved`,
        );
      }
      if (
        hardState.term === previous.term && previous.vote !== "" &&
        hardState.vote !== previous.vote
      ) {
        throw new RangeError(
          `refusing to change the vote in term ${hardState.term} from ${previous.vote} to ` +
            `${hardState.vote || "none"}`,
        );
      }
      const meta = { ...this.#meta, hardState: { term: hardState.term, vote: hardState.vote } };
      const bytes = encodeMeta(meta);
      // Check the encoding reads back before it replaces the only copy of the hard state.
      const check = decodeMeta(bytes, this.#path);
      if (
        check.hardState.term !== meta.hardState.term || check.hardState.vote !== meta.hardState.vote
      ) {
        throw new Error("meta encoding does not round-trip");
      }
      await writeFileAtomic(this.#path, bytes);
      this.#meta = meta;
      this.#exists = true;
    });
  }
}

function encodeString(name: string, value: string): Uint8Array {
  const bytes = encoder.encode(value);
  if (bytes.length > META_STRING_BYTES_MAX) {
    throw new RangeError(
      `${name} is ${bytes.length} bytes, longer than the maximum ${META_STRING_BYTES_MAX}`,
    );
  }
  return bytes;
}
