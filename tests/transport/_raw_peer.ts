/**
 * A stranger with a plain TCP socket: what the attack tests of issue 10 use to talk to a node
 * without any of the project's client or peer code. Every raw peer frame goes through
 * {@linkcode rawPeerSocket}, so a handshake (HELLO, authentication) that peers must send first is
 * added in one place.
 *
 * @module
 */

import { Encoder } from "@msgpack/msgpack";
import { encodeRaft } from "../../lib/transport/codec.ts";
import { encodeFrame } from "../../lib/transport/frame.ts";
import type { Message } from "../../lib/raft/types.ts";

const raw = new Encoder({ useBigInt64: true });

/** Connects to `address` (`HOST:PORT`). */
export function connectTo(address: string): Promise<Deno.TcpConn> {
  const colon = address.lastIndexOf(":");
  return Deno.connect({
    hostname: address.slice(0, colon),
    port: Number(address.slice(colon + 1)),
  });
}

/** Writes all of `bytes`; false when the other side closed first. */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<boolean> {
  try {
    let written = 0;
    while (written < bytes.length) written += await conn.write(bytes.subarray(written));
    return true;
  } catch {
    return false;
  }
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/**
 * Resolves true once the other side closes `conn` (end of stream or reset), false if it is
 * still open after `ms`. Reads and discards whatever arrives meanwhile; closes `conn` either way.
 */
export async function closedWithin(conn: Deno.Conn, ms: number): Promise<boolean> {
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    closeQuietly(conn);
  }, ms);
  const buffer = new Uint8Array(64 * 1024);
  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) return !timedOut;
    }
  } catch {
    return !timedOut;
  } finally {
    clearTimeout(timer);
    if (!timedOut) closeQuietly(conn);
  }
}

/** A frame holding a RAFT body built from raw `payload` fields, bypassing the encoder's checks. */
export function rawRaftFrame(group: string, payload: unknown[]): Uint8Array {
  return encodeFrame(raw.encode([1, group, 0, payload]));
}

/** A frame holding `message`, encoded the way a node encodes it. */
export function raftFrame(group: string, message: Message): Uint8Array {
  return encodeFrame(encodeRaft(group, message));
}

/**
 * Opens a connection to `address` that claims to come from peer `from`, ready for raw peer
 * frames. (Today a node takes RAFT frames on any connection; a handshake goes here.)
 */
export async function rawPeerSocket(address: string, _from: string): Promise<Deno.TcpConn> {
  return await connectTo(address);
}
