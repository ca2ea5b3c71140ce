/**
 * A stranger with a plain TCP socket: what the attack tests of issue 10 use to talk to a node
 * without any of the project's client or peer code. Every raw peer connection is opened by
 * {@linkcode rawPeerSocket}, which sends the HELLO that peers must send first (and would send any
 * later handshake, such as authentication), so that is done in one place.
 *
 * @module
 */

import { Encoder } from "@msgpack/msgpack";
import { encodeHello, encodeRaft } from "../../lib/transport/codec.ts";
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
 * The data dir incarnation a raw peer shows when it is given none: a made-up one. A node takes it
 * from a member it has never heard from (and records it); one that recorded another incarnation
 * for that id refuses it.
 */
export const RAW_PEER_INCARNATION = "00000000deadbeef";

/** Who a raw peer says it is in its HELLO; see {@linkcode rawPeerSocket}. */
export interface RawHello {
  /** The group the hello is for. */
  group: string;
  /** The node id it claims. */
  from: string;
  /** The data dir incarnation it shows. Default {@linkcode RAW_PEER_INCARNATION}. */
  incarnation?: string;
  /** The cluster id it shows; "" (the default) is accepted by any cluster. */
  clusterId?: string;
}

/** A frame holding the HELLO a peer sends first on each connection. */
export function helloFrame(hello: RawHello): Uint8Array {
  return encodeFrame(encodeHello(hello.group, {
    from: hello.from,
    incarnation: hello.incarnation ?? RAW_PEER_INCARNATION,
    clusterId: hello.clusterId ?? "",
  }));
}

/**
 * Opens a connection to `address` that claims to come from peer `hello.from`, ready for raw peer
 * frames: it has sent the HELLO that a node needs before any RAFT or snapshot body. It does not
 * wait for the verdict: a node holds the bodies that follow until it decides, and closes the
 * connection if it refuses.
 *
 * Without `--cluster-token-file` nothing proves the claim: anyone who can reach the port can say
 * hello as any member of the node's configuration, and is heard as that member if the node has
 * not recorded another incarnation for it (or if the hello shows the recorded one, which travels
 * in clear text in every HELLO that member sends).
 */
export async function rawPeerSocket(address: string, hello: RawHello): Promise<Deno.TcpConn> {
  const conn = await connectTo(address);
  if (!await writeAll(conn, helloFrame(hello))) {
    throw new Error(`${address} closed the connection before the hello was sent`);
  }
  return conn;
}
