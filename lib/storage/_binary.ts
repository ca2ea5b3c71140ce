/**
 * Little helpers for the binary formats: 64-bit integers as two 32-bit halves (no BigInt on the
 * hot path), loops that finish partial reads and writes, and the checks shared by the files
 * framed as magic, version, payload and trailing CRC-32C (meta and snapshot files).
 *
 * @module
 */

import { crc32c } from "./crc32c.ts";
import { StorageCorruptionError, UnsupportedFormatError } from "./errors.ts";

const TWO_POW_32 = 2 ** 32;

/** Writes `value`, a non-negative safe integer, as an unsigned 64-bit little-endian integer. */
export function setU64(view: DataView, offset: number, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new RangeError(`value ${value} is not a non-negative safe integer`);
  }
  view.setUint32(offset, value >>> 0, true);
  view.setUint32(offset + 4, Math.floor(value / TWO_POW_32), true);
}

/**
 * Reads an unsigned 64-bit little-endian integer. Values above `Number.MAX_SAFE_INTEGER` come
 * back rounded; callers decoding untrusted bytes check `Number.isSafeInteger` on the result.
 */
export function getU64(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true) * TWO_POW_32 + view.getUint32(offset, true);
}

/** Writes all of `bytes` at the file's position; `FsFile.write` may write fewer bytes. */
export async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await file.write(bytes.subarray(written));
  }
}

/**
 * Writes all of `bytes` at the file's position with synchronous writes on the calling thread;
 * `FsFile.writeSync` may write fewer bytes. Into the page cache this is a copy, cheaper than
 * the async write's hop to a blocking thread and back; the caller still flushes it.
 */
export function writeAllSync(file: Deno.FsFile, bytes: Uint8Array): void {
  let written = 0;
  while (written < bytes.length) {
    written += file.writeSync(bytes.subarray(written));
  }
}

/**
 * Reads exactly `length` bytes from `position`; fails when the file ends first, because the
 * callers only read ranges they already validated.
 */
export async function readExact(
  file: Deno.FsFile,
  position: number,
  length: number,
): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  await file.seek(position, Deno.SeekMode.Start);
  let read = 0;
  while (read < length) {
    const n = await file.read(bytes.subarray(read));
    if (n === null) {
      throw new Error(`file ended at byte ${position + read} while reading ${length} bytes`);
    }
    read += n;
  }
  return bytes;
}

/** True for a string of ASCII decimal digits only. */
export function isDigits(text: string): boolean {
  return /^[0-9]+$/.test(text);
}

/** Formats a 32-bit checksum as 8 hex digits, for error messages. */
export function hex32(value: number): string {
  return (value >>> 0).toString(16).padStart(8, "0");
}

/** Builds the error for bad bytes at `offset`; the message says why. */
export type CorruptionFactory = (why: string, offset: number) => StorageCorruptionError;

/**
 * A file format framed like the meta and snapshot files: 4 bytes of magic, a u16 format version
 * at byte 4, and a CRC-32C of every byte before it in the last 4 bytes.
 */
export interface FramedFormat {
  /** What the file is called in errors: "meta", "snapshot". */
  kind: string;
  /** The 4 magic bytes the file starts with (ASCII, named in errors). */
  magic: Uint8Array;
  /** The newest format version this build reads. */
  version: number;
  /** The oldest format version this build still reads; `version` when omitted. */
  versionMin?: number;
  /** The size of the smallest valid file, trailing checksum included. */
  bytesMin: number;
}

/** What {@linkcode checkFramed} hands back for decoding the rest of an intact file. */
export interface FramedBytes {
  /** The whole file. */
  bytes: Uint8Array;
  /** A view over exactly `bytes`. */
  view: DataView;
  /** Offset of the trailing checksum: the end of the payload. */
  crcOffset: number;
  /** The file's format version (within the versions the caller reads). */
  version: number;
  /** Makes the {@linkcode StorageCorruptionError} for this file. */
  corrupt: CorruptionFactory;
}

const FRAMED_CRC_BYTES = 4;

/**
 * Checks the frame of a file in `format` read from `path`: size, magic, checksum, then version
 * (after the checksum: every version ends in a CRC of all bytes before it, so a flipped version
 * bit reads as damage, and only an intact file as another version). Throws
 * {@linkcode StorageCorruptionError} for bad bytes and {@linkcode UnsupportedFormatError} for
 * another format version.
 */
export function checkFramed(bytes: Uint8Array, path: string, format: FramedFormat): FramedBytes {
  const { kind, magic, version: expected, bytesMin } = format;
  const versionMin = format.versionMin ?? expected;
  const corrupt: CorruptionFactory = (why, offset) =>
    new StorageCorruptionError(
      `${kind} file ${path} is corrupt: ${why} at byte ${offset}`,
      path,
      offset,
    );
  if (bytes.length < bytesMin) {
    throw corrupt(`${bytes.length} bytes is shorter than the minimum ${bytesMin}`, 0);
  }
  for (let i = 0; i < magic.length; i++) {
    if (bytes[i] !== magic[i]) {
      throw corrupt(`the file does not start with magic "${String.fromCharCode(...magic)}"`, i);
    }
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const crcOffset = bytes.length - FRAMED_CRC_BYTES;
  const crcStored = view.getUint32(crcOffset, true);
  const crcComputed = crc32c(bytes, 0, crcOffset);
  if (crcStored !== crcComputed) {
    throw corrupt(
      `checksum 0x${hex32(crcStored)} does not match computed 0x${hex32(crcComputed)}`,
      crcOffset,
    );
  }
  const version = view.getUint16(4, true);
  if (version < versionMin || version > expected) {
    const reads = versionMin === expected
      ? `version ${expected}`
      : `versions ${versionMin}..${expected}`;
    throw new UnsupportedFormatError(
      `${kind} file ${path} has format version ${version}, this build reads ${reads}`,
      path,
    );
  }
  return { bytes, view, crcOffset, corrupt, version };
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads the string `name` stored at `offset` as a u16 byte length and UTF-8 bytes, all before
 * the checksum; returns it and the offset after it.
 */
export function readString(
  framed: FramedBytes,
  offset: number,
  name: string,
): { value: string; next: number } {
  const { bytes, view, crcOffset: end, corrupt } = framed;
  if (offset + 2 > end) throw corrupt(`${name} length runs past the end`, offset);
  const length = view.getUint16(offset, true);
  if (offset + 2 + length > end) throw corrupt(`${name} runs past the end`, offset);
  let value: string;
  try {
    value = utf8.decode(bytes.subarray(offset + 2, offset + 2 + length));
  } catch {
    throw corrupt(`${name} is not valid UTF-8`, offset + 2);
  }
  return { value, next: offset + 2 + length };
}
