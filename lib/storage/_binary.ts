/**
 * Little helpers for the binary formats: 64-bit integers as two 32-bit halves (no BigInt on the
 * hot path) and loops that finish partial reads and writes.
 *
 * @module
 */

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
