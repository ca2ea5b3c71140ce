/**
 * Shared secrets read from token files (`--cluster-token-file`, `--client-token-file`,
 * `--admin-token-file`, `--token-file`), made into HMAC-SHA-256 keys with Web Crypto, and the
 * few byte helpers the handshakes share. No cryptography of our own: MACs are Web Crypto's.
 *
 * A token file holds the secret as text; surrounding whitespace (a trailing newline) is not part
 * of it. Tokens shorter than {@linkcode TOKEN_BYTES_MIN} bytes are refused: a token is the only
 * thing between a stranger and the group, so it must not be guessable
 * (`openssl rand -hex 32 > FILE` makes a good one).
 *
 * @module
 */

/** Shortest token accepted, in bytes. */
export const TOKEN_BYTES_MIN = 16;

/** Bytes of a nonce used in the handshakes. */
export const NONCE_BYTES = 32;

const encoder = new TextEncoder();

function tokenFromText(path: string, text: string, what: string): Uint8Array {
  const token = encoder.encode(text.trim());
  if (token.length < TOKEN_BYTES_MIN) {
    throw new Error(
      `the ${what} file ${path} holds ${token.length} bytes; a token needs at least ` +
        `${TOKEN_BYTES_MIN} (make one with: openssl rand -hex 32 > ${path})`,
    );
  }
  return token;
}

function readFailure(path: string, what: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot read the ${what} file ${path}: ${reason}`);
}

/** Reads a token file; fails with one clear line naming the file. `what` names the token. */
export async function readTokenFile(path: string, what: string): Promise<Uint8Array> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw readFailure(path, what, error);
  }
  return tokenFromText(path, text, what);
}

/** {@linkcode readTokenFile}, synchronously (for the CLI, which builds its client so). */
export function readTokenFileSync(path: string, what: string): Uint8Array {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    throw readFailure(path, what, error);
  }
  return tokenFromText(path, text, what);
}

/** Makes `token` an HMAC-SHA-256 key that can only sign. */
export function hmacKey(token: Uint8Array): Promise<CryptoKey> {
  return crypto.subtle.importKey(
    "raw",
    token as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
}

/** HMAC-SHA-256 of `message` under `key`, 32 bytes. */
export async function hmac(key: CryptoKey, message: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", key, message as Uint8Array<ArrayBuffer>),
  );
}

/** A fresh random nonce of {@linkcode NONCE_BYTES} bytes. */
export function newNonce(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
}

/**
 * Whether `a` and `b` hold the same bytes, in time that depends only on their lengths (a MAC
 * compared byte by byte with an early exit tells an attacker how much of a guess was right).
 */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/**
 * Concatenates labelled parts into one unambiguous MAC input: each string part is written as
 * its UTF-8 length (2 bytes, big-endian) and bytes, each binary part likewise, so no two
 * different transcripts give the same bytes.
 */
export function transcript(parts: readonly (string | Uint8Array)[]): Uint8Array {
  const encoded = parts.map((p) => typeof p === "string" ? encoder.encode(p) : p);
  let total = 0;
  for (const part of encoded) {
    if (part.length > 0xffff) throw new RangeError("Transcript part longer than 65535 bytes");
    total += 2 + part.length;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of encoded) {
    out[offset] = part.length >> 8;
    out[offset + 1] = part.length & 0xff;
    out.set(part, offset + 2);
    offset += 2 + part.length;
  }
  return out;
}
