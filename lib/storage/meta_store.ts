/**
 * The Raft hard state (term and vote), the identity of the data dir and what the node knows it
 * must still hold, in `DIR/raft_meta/meta`.
 *
 * The file is small and rewritten whole with {@linkcode writeFileAtomic}, so after a crash it
 * holds either the previous or the new contents. Losing it, or reading a wrong one, could make
 * the node vote twice in a term, so a bad checksum is always an error, never a reset.
 *
 * Storing the node id and group stops an operator from starting a node on another node's data,
 * which would silently merge two logs. The incarnation, a random 64-bit id drawn when the dir's
 * meta is first written, tells peers this data dir from an earlier, wiped one of the same node
 * id. The commit floor and log floor let recovery notice a log that lost entries (see
 * docs/STORAGE.md, "What recovery does with damage").
 *
 * File layout, version 2 (all integers little-endian):
 *
 * | offset | bytes   | field                                                      |
 * | ------ | ------- | ---------------------------------------------------------- |
 * | 0      | 4       | magic "CMET"                                               |
 * | 4      | 2       | format version, 2                                          |
 * | 6      | 2       | flags: bit 0 = vote floor pending; other bits 0           |
 * | 8      | 8       | term (u64)                                                 |
 * | 16     | 8       | commit floor (u64)                                         |
 * | 24     | 8       | log floor (u64)                                            |
 * | 32     | 8       | incarnation (8 bytes, shown as 16 lowercase hex digits)     |
 * | 40     | 2+n     | node id: u16 byte length, UTF-8 bytes                      |
 * | ...    | 2+n     | group: u16 byte length, UTF-8 bytes                        |
 * | ...    | 2+n     | vote: u16 byte length, UTF-8 bytes                         |
 * | ...    | 2+n     | cluster id: u16 byte length, "" or 16 lowercase hex digits |
 * | ...    | 2       | peer count k (u16), at most 1024                           |
 * | ...    | k × ... | peer: id (u16 byte length, UTF-8 bytes), incarnation (8)   |
 * | end-4  | 4       | CRC-32C of every byte before it                            |
 *
 * Version 1 (still read; the next save writes version 2) had term at 8, then node id, group and
 * vote, then the CRC. Read from version 1, the new fields take their defaults (floors 0, no
 * cluster id, no peers) and a fresh incarnation is drawn.
 *
 * @module
 */

import { dirname, join } from "node:path";
import type { HardState, NodeId } from "../raft/types.ts";
import { checkFramed, type FramedBytes, getU64, readString, setU64 } from "./_binary.ts";
import { Mutex } from "./_mutex.ts";
import { isTempFileName, syncDir, syncFileAt, writeFileAtomic } from "./atomic_file.ts";
import { crc32c } from "./crc32c.ts";
import { DataDirMismatchError } from "./errors.ts";

/** Name of the meta file inside `DIR/raft_meta/`. */
export const META_FILE_NAME = "meta";

/** Magic bytes "CMET" at the start of a meta file. */
export const META_MAGIC: Uint8Array = new Uint8Array([0x43, 0x4d, 0x45, 0x54]);

/** The meta file format version this build writes. */
export const META_VERSION = 2;

/** The oldest meta file format version this build still reads. */
export const META_VERSION_MIN = 1;

/** Longest node id, group or vote accepted, in UTF-8 bytes; ids are `HOST:PORT` strings. */
export const META_STRING_BYTES_MAX = 1024;

/** Most peer incarnations the meta file keeps; more is a bug in the caller. */
export const PEER_INCARNATIONS_MAX = 1024;

const META_V1_FIXED_BYTES = 16;
const META_FIXED_BYTES = 40;
const META_CRC_BYTES = 4;
const META_V1_BYTES_MIN = META_V1_FIXED_BYTES + 3 * 2 + META_CRC_BYTES;
const META_BYTES_MIN = META_FIXED_BYTES + 4 * 2 + 2 + META_CRC_BYTES;
const ID64_BYTES = 8;
const ID64_PATTERN = /^[0-9a-f]{16}$/;

const encoder = new TextEncoder();

/** Everything the meta file holds. */
export interface Meta {
  /** The node the data dir belongs to. */
  nodeId: NodeId;
  /** The Raft group the data dir belongs to. */
  group: string;
  /** The latest term and vote. */
  hardState: HardState;
  /**
   * This data dir's incarnation: 16 lowercase hex digits, drawn at random when the meta file is
   * first written and never changed. "" only when decoded from a version 1 file.
   */
  incarnation: string;
  /** The cluster this dir joined: 16 lowercase hex digits, or "" until it is known. */
  clusterId: string;
  /** An index this node knows is committed and durably in its log or snapshot; 0 if none. */
  commitFloor: number;
  /**
   * An index the log or snapshot durably holds (committed or not): the first index of the
   * newest log segment once it is durable, lowered before the log is cut below it; 0 if none.
   */
  logFloor: number;
  /** Incarnation of every peer this node has heard from, by node id. */
  peerIncarnations: Map<NodeId, string>;
  /**
   * The node started empty with `--join` and its log has not yet passed what its first leader
   * held: it must neither vote nor campaign (`RaftOptions.voteFloor` -1). Flags bit 0.
   */
  voteFloorPending: boolean;
}

/** Bit of the flags field: see {@linkcode Meta.voteFloorPending}. */
const FLAG_VOTE_FLOOR_PENDING = 1;

/** True for a 64-bit id as 16 lowercase hex digits (an incarnation or a cluster id). */
export function isId64(text: string): boolean {
  return ID64_PATTERN.test(text);
}

/** Draws a random 64-bit id (16 lowercase hex digits) from `crypto.getRandomValues`. */
export function randomId64(): string {
  return hexOf(crypto.getRandomValues(new Uint8Array(ID64_BYTES)));
}

/** Encodes `meta` in the current meta file format (see the module doc). */
export function encodeMeta(meta: Meta): Uint8Array {
  const { term, vote } = meta.hardState;
  checkIndex("term", term);
  checkIndex("commit floor", meta.commitFloor);
  checkIndex("log floor", meta.logFloor);
  if (!isId64(meta.incarnation)) {
    throw new RangeError(`incarnation "${meta.incarnation}" is not 16 lowercase hex digits`);
  }
  if (meta.clusterId !== "" && !isId64(meta.clusterId)) {
    throw new RangeError(`cluster id "${meta.clusterId}" is not 16 lowercase hex digits`);
  }
  if (meta.peerIncarnations.size > PEER_INCARNATIONS_MAX) {
    throw new RangeError(
      `${meta.peerIncarnations.size} peer incarnations, more than ${PEER_INCARNATIONS_MAX}`,
    );
  }
  const strings = [
    encodeString("node id", meta.nodeId),
    encodeString("group", meta.group),
    encodeString("vote", vote),
    encodeString("cluster id", meta.clusterId),
  ];
  const peers: [Uint8Array, string][] = [];
  for (const [id, incarnation] of meta.peerIncarnations) {
    if (!isId64(incarnation)) {
      throw new RangeError(`incarnation "${incarnation}" of peer ${id} is not 16 hex digits`);
    }
    peers.push([encodeString("peer id", id), incarnation]);
  }
  let size = META_BYTES_MIN;
  for (const field of strings) size += field.length;
  for (const [id] of peers) size += 2 + id.length + ID64_BYTES;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  bytes.set(META_MAGIC, 0);
  view.setUint16(4, META_VERSION, true);
  view.setUint16(6, meta.voteFloorPending ? FLAG_VOTE_FLOOR_PENDING : 0, true);
  setU64(view, 8, term);
  setU64(view, 16, meta.commitFloor);
  setU64(view, 24, meta.logFloor);
  bytes.set(bytesOfHex(meta.incarnation), 32);
  let offset = META_FIXED_BYTES;
  for (const field of strings) {
    view.setUint16(offset, field.length, true);
    bytes.set(field, offset + 2);
    offset += 2 + field.length;
  }
  view.setUint16(offset, peers.length, true);
  offset += 2;
  for (const [id, incarnation] of peers) {
    view.setUint16(offset, id.length, true);
    bytes.set(id, offset + 2);
    offset += 2 + id.length;
    bytes.set(bytesOfHex(incarnation), offset);
    offset += ID64_BYTES;
  }
  view.setUint32(offset, crc32c(bytes, 0, offset), true);
  return bytes;
}

/**
 * Decodes a meta file's bytes (version 1 or 2); `path` names the file in errors. Throws
 * {@linkcode StorageCorruptionError} for bad bytes (including a wrong magic) and
 * {@linkcode UnsupportedFormatError} for another format version. A version 1 file decodes with
 * incarnation "" and the other new fields at their defaults.
 */
export function decodeMeta(bytes: Uint8Array, path: string): Meta {
  const framed = checkFramed(bytes, path, {
    kind: "meta",
    magic: META_MAGIC,
    version: META_VERSION,
    versionMin: META_VERSION_MIN,
    bytesMin: META_V1_BYTES_MIN,
  });
  const { view, crcOffset, corrupt, version } = framed;
  if (bytes.length < (version === 1 ? META_V1_BYTES_MIN : META_BYTES_MIN)) {
    throw corrupt(`${bytes.length} bytes is too short for format version ${version}`, 0);
  }
  // The checksum matched, so anything wrong below is a bug in the writer, still reported.
  const term = readIndex(framed, 8, "term");
  const meta: Meta = {
    nodeId: "",
    group: "",
    hardState: { term, vote: "" },
    incarnation: "",
    clusterId: "",
    commitFloor: 0,
    logFloor: 0,
    peerIncarnations: new Map(),
    voteFloorPending: false,
  };
  let offset = META_V1_FIXED_BYTES;
  if (version >= 2) {
    const flags = view.getUint16(6, true);
    if ((flags & ~FLAG_VOTE_FLOOR_PENDING) !== 0) throw corrupt(`unknown flags ${flags}`, 6);
    meta.voteFloorPending = (flags & FLAG_VOTE_FLOOR_PENDING) !== 0;
    meta.commitFloor = readIndex(framed, 16, "commit floor");
    meta.logFloor = readIndex(framed, 24, "log floor");
    meta.incarnation = hexOf(bytes.subarray(32, 32 + ID64_BYTES));
    offset = META_FIXED_BYTES;
  }
  const names = version === 1
    ? ["node id", "group", "vote"]
    : ["node id", "group", "vote", "cluster id"];
  const strings: string[] = [];
  for (const name of names) {
    const { value, next } = readString(framed, offset, name);
    strings.push(value);
    offset = next;
  }
  meta.nodeId = strings[0];
  meta.group = strings[1];
  meta.hardState.vote = strings[2];
  if (version >= 2) {
    meta.clusterId = strings[3];
    if (meta.clusterId !== "" && !isId64(meta.clusterId)) {
      throw corrupt(`cluster id "${meta.clusterId}" is not 16 lowercase hex digits`, offset);
    }
    if (offset + 2 > crcOffset) throw corrupt("peer count runs past the end", offset);
    const count = view.getUint16(offset, true);
    if (count > PEER_INCARNATIONS_MAX) {
      throw corrupt(`peer count ${count} is above the maximum ${PEER_INCARNATIONS_MAX}`, offset);
    }
    offset += 2;
    for (let i = 0; i < count; i++) {
      const { value: id, next } = readString(framed, offset, "peer id");
      if (next + ID64_BYTES > crcOffset) throw corrupt("peer incarnation runs past the end", next);
      if (meta.peerIncarnations.has(id)) throw corrupt(`peer ${id} appears twice`, offset);
      meta.peerIncarnations.set(id, hexOf(bytes.subarray(next, next + ID64_BYTES)));
      offset = next + ID64_BYTES;
    }
  }
  if (offset !== crcOffset) throw corrupt(`${crcOffset - offset} unexpected bytes`, offset);
  return meta;
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
  /** True when the file on disk is missing or in an older format than this build writes. */
  #stale: boolean;
  #mutex = new Mutex();

  private constructor(path: string, meta: Meta, exists: boolean, stale: boolean) {
    this.#path = path;
    this.#meta = meta;
    this.#exists = exists;
    this.#stale = stale;
  }

  /**
   * Reads the meta file in `dir` (the data dir's `raft_meta/`), removing temp files a crash
   * left. A missing file reads as term 0, no vote, a new random incarnation; nothing is written
   * until a save. A version 1 file reads with a new random incarnation, which the next save
   * makes permanent. Throws {@linkcode DataDirMismatchError} when the file names another node
   * or group than `options`.
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
      const meta: Meta = {
        nodeId: options.nodeId,
        group: options.group,
        hardState: { term: 0, vote: "" },
        incarnation: randomId64(),
        clusterId: "",
        commitFloor: 0,
        logFloor: 0,
        peerIncarnations: new Map(),
        voteFloorPending: false,
      };
      return new MetaStore(path, meta, false, true);
    }
    const meta = decodeMeta(bytes, path);
    // The file read may be in the page cache only (a process that died between the rename and
    // the directory's flush): a term or vote acted on must be durable, so both are flushed now.
    await syncFileAt(path);
    await syncDir(dir);
    if (meta.nodeId !== options.nodeId || meta.group !== options.group) {
      throw new DataDirMismatchError(
        `data dir ${dirname(dir)} belongs to node ${meta.nodeId} in group ${meta.group}, ` +
          `not node ${options.nodeId} in group ${options.group} (meta file ${path})`,
      );
    }
    const stale = meta.incarnation === "";
    if (stale) meta.incarnation = randomId64();
    return new MetaStore(path, meta, true, stale);
  }

  /** The meta file's path. */
  get path(): string {
    return this.#path;
  }

  /** True when the meta file is on disk (it was there at open, or a save completed). */
  exists(): boolean {
    return this.#exists;
  }

  /**
   * True when the file is missing or in an older format version, so that the incarnation in
   * memory is not yet durable; any save fixes that.
   */
  needsWrite(): boolean {
    return this.#stale;
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

  /** This data dir's incarnation, 16 lowercase hex digits; fixed for the life of the dir. */
  incarnation(): string {
    return this.#meta.incarnation;
  }

  /** The cluster id saved with {@linkcode MetaStore.saveClusterId}, or "". */
  clusterId(): string {
    return this.#meta.clusterId;
  }

  /** The commit floor: see {@linkcode Meta.commitFloor}. */
  commitFloor(): number {
    return this.#meta.commitFloor;
  }

  /** The log floor: see {@linkcode Meta.logFloor}. */
  logFloor(): number {
    return this.#meta.logFloor;
  }

  /** The incarnation last saved for peer `id`, or undefined. */
  peerIncarnation(id: NodeId): string | undefined {
    return this.#meta.peerIncarnations.get(id);
  }

  /**
   * Durably replaces the hard state; resolves once it survives a crash. Saves of every kind run
   * one at a time in call order, so a later save is never overwritten by an earlier one.
   *
   * Refuses a term that goes backwards and a changed vote within a term: both would let the
   * node vote twice in one term, and are bugs in the caller.
   *
   * `commitFloor`, when above the saved one, is raised in the same write (piggybacked: see
   * {@linkcode MetaStore.saveCommitFloor}).
   */
  save(hardState: HardState, commitFloor = 0): Promise<void> {
    return this.#update((meta) => {
      checkIndex("commit floor", commitFloor);
      const previous = meta.hardState;
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
      return {
        ...meta,
        hardState: { term: hardState.term, vote: hardState.vote },
        commitFloor: Math.max(meta.commitFloor, commitFloor),
      };
    }, true);
  }

  /** See {@linkcode Meta.voteFloorPending}. */
  voteFloorPending(): boolean {
    return this.#meta.voteFloorPending;
  }

  /** Durably sets {@linkcode Meta.voteFloorPending}. No write when unchanged. */
  saveVoteFloorPending(pending: boolean): Promise<void> {
    return this.#update((meta) =>
      meta.voteFloorPending === pending ? null : { ...meta, voteFloorPending: pending }
    );
  }

  /** Durably saves the cluster id `id` (16 lowercase hex digits). No write when unchanged. */
  saveClusterId(id: string): Promise<void> {
    return this.#update((meta) => {
      if (!isId64(id)) throw new RangeError(`cluster id "${id}" is not 16 lowercase hex digits`);
      return id === meta.clusterId ? null : { ...meta, clusterId: id };
    });
  }

  /**
   * Durably raises the commit floor to `index`. The floor never goes down: a lower or equal
   * `index` writes nothing.
   */
  saveCommitFloor(index: number): Promise<void> {
    return this.#update((meta) => {
      checkIndex("commit floor", index);
      return index <= meta.commitFloor ? null : { ...meta, commitFloor: index };
    });
  }

  /**
   * Durably sets the log floor to `index` (up or down), raising the commit floor to
   * `commitFloor` in the same write when that is higher. No write when neither changes.
   */
  saveLogFloor(index: number, commitFloor = 0): Promise<void> {
    return this.#update((meta) => {
      checkIndex("log floor", index);
      checkIndex("commit floor", commitFloor);
      if (index === meta.logFloor && commitFloor <= meta.commitFloor) return null;
      return { ...meta, logFloor: index, commitFloor: Math.max(meta.commitFloor, commitFloor) };
    });
  }

  /**
   * Durably records `incarnation` (16 lowercase hex digits) for peer `id`. No write when
   * unchanged; refuses a new peer beyond {@linkcode PEER_INCARNATIONS_MAX}.
   */
  savePeerIncarnation(id: NodeId, incarnation: string): Promise<void> {
    return this.#update((meta) => {
      if (id === "") throw new RangeError("peer id must not be empty");
      encodeString("peer id", id);
      if (!isId64(incarnation)) {
        throw new RangeError(`incarnation "${incarnation}" is not 16 lowercase hex digits`);
      }
      const peers = meta.peerIncarnations;
      if (peers.get(id) === incarnation) return null;
      if (!peers.has(id) && peers.size >= PEER_INCARNATIONS_MAX) {
        throw new RangeError(
          `cannot record the incarnation of peer ${id}: ${PEER_INCARNATIONS_MAX} peers are ` +
            `already recorded`,
        );
      }
      return { ...meta, peerIncarnations: new Map(peers).set(id, incarnation) };
    });
  }

  /** Durably drops the incarnations of peers not in `keep`. No write when none is dropped. */
  forgetPeerIncarnations(keep: ReadonlySet<NodeId>): Promise<void> {
    return this.#update((meta) => {
      const peers = new Map<NodeId, string>();
      for (const [id, incarnation] of meta.peerIncarnations) {
        if (keep.has(id)) peers.set(id, incarnation);
      }
      return peers.size === meta.peerIncarnations.size
        ? null
        : { ...meta, peerIncarnations: peers };
    });
  }

  /**
   * Runs `change` on the current contents under the mutex and durably writes what it returns
   * (nothing when it returns null, unless `always`, or the file still needs its first write).
   */
  #update(change: (meta: Meta) => Meta | null, always = false): Promise<void> {
    return this.#mutex.run(async () => {
      let meta = change(this.#meta);
      if (meta === null) {
        if (!always && !this.#stale) return;
        meta = this.#meta;
      }
      const bytes = encodeMeta(meta);
      // Check the encoding reads back before it replaces the only copy of the hard state.
      if (!sameMeta(decodeMeta(bytes, this.#path), meta)) {
        throw new Error("meta encoding does not round-trip");
      }
      await writeFileAtomic(this.#path, bytes);
      this.#meta = meta;
      this.#exists = true;
      this.#stale = false;
    });
  }
}

function sameMeta(a: Meta, b: Meta): boolean {
  if (
    a.nodeId !== b.nodeId || a.group !== b.group || a.hardState.term !== b.hardState.term ||
    a.hardState.vote !== b.hardState.vote || a.incarnation !== b.incarnation ||
    a.clusterId !== b.clusterId || a.commitFloor !== b.commitFloor || a.logFloor !== b.logFloor ||
    a.peerIncarnations.size !== b.peerIncarnations.size
  ) {
    return false;
  }
  for (const [id, incarnation] of a.peerIncarnations) {
    if (b.peerIncarnations.get(id) !== incarnation) return false;
  }
  return true;
}

function checkIndex(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`${name} ${value} is not a non-negative safe integer`);
  }
}

function readIndex(framed: FramedBytes, offset: number, name: string): number {
  const value = getU64(framed.view, offset);
  if (!Number.isSafeInteger(value)) {
    throw framed.corrupt(`${name} ${value} is not a safe integer`, offset);
  }
  return value;
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

function hexOf(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes) text += byte.toString(16).padStart(2, "0");
  return text;
}

function bytesOfHex(hex: string): Uint8Array {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}
