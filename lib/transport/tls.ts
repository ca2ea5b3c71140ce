/**
 * TLS settings of a node and of a client, read from PEM files, and the two calls that open a
 * listener or a connection with or without them. Deno's own TLS (rustls) does the work.
 *
 * Connections are opened as TCP first, tuned (no-delay, keep-alive), then upgraded with
 * `Deno.startTls`: a `Deno.TlsConn` has no `setNoDelay`, and without it small frames wait for
 * Nagle's algorithm (about 40 ms each with delayed acknowledgements). Accepted TLS connections
 * cannot be tuned that way (Deno has no server-side upgrade); see docs/SECURITY.md.
 *
 * @module
 */

/** What a node needs to serve TLS: its certificate chain and key, PEM. */
export interface ServerTls {
  /** Certificate chain, PEM. */
  certPem: string;
  /** Private key, PEM. */
  keyPem: string;
}

/** What a connecting side needs: the CA certificates it trusts, PEM. */
export interface ClientTls {
  /** Trusted CA certificates, PEM (one file may hold several). */
  caPems: string[];
}

const CERT_MARKER = /-----BEGIN CERTIFICATE-----/;
const KEY_MARKER = /-----BEGIN (EC |RSA )?PRIVATE KEY-----/;

/**
 * The TLS handshake failed: wrong CA, a certificate that does not name the host, or a node that
 * does not speak TLS. Retrying the same node cannot help.
 */
export class TlsHandshakeError extends Error {
  /** Creates the error for `address`, with the runtime's `reason`. */
  constructor(address: string, reason: string, options?: ErrorOptions) {
    super(`TLS handshake with ${address} failed: ${reason}`, options);
    this.name = "TlsHandshakeError";
  }
}

function checkPem(path: string, text: string, what: string, marker: RegExp): string {
  if (!marker.test(text)) throw new Error(`${path} does not hold a PEM ${what}`);
  return text;
}

function readFailure(path: string, what: string, error: unknown): Error {
  const reason = error instanceof Error ? error.message : String(error);
  return new Error(`cannot read the ${what} file ${path}: ${reason}`);
}

/** Reads a PEM file, failing with one clear line naming the file and what it should hold. */
export async function readPemFile(path: string, what: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw readFailure(path, what, error);
  }
  return checkPem(path, text, what, marker);
}

/** Reads `--tls-cert` and `--tls-key`. */
export async function loadServerTls(certFile: string, keyFile: string): Promise<ServerTls> {
  return {
    certPem: await readPemFile(certFile, "certificate", CERT_MARKER),
    keyPem: await readPemFile(keyFile, "private key", KEY_MARKER),
  };
}

/** Reads `--tls-ca`. */
export async function loadClientTls(caFile: string): Promise<ClientTls> {
  return { caPems: [await readPemFile(caFile, "CA certificate", CERT_MARKER)] };
}

/** Reads `--tls-ca` synchronously (for the CLI, which builds its client synchronously). */
export function loadClientTlsSync(caFile: string): ClientTls {
  let text: string;
  try {
    text = Deno.readTextFileSync(caFile);
  } catch (error) {
    throw readFailure(caFile, "CA certificate", error);
  }
  return { caPems: [checkPem(caFile, text, "CA certificate", CERT_MARKER)] };
}

/** Listens on `hostname:port`, with TLS when `tls` is given. */
export function listen(
  hostname: string,
  port: number,
  tls: ServerTls | undefined,
): Deno.Listener {
  if (tls === undefined) return Deno.listen({ hostname, port });
  return Deno.listenTls({ hostname, port, cert: tls.certPem, key: tls.keyPem });
}

/**
 * Sets no-delay (small frames must not wait for Nagle's algorithm; batching is done by the
 * connection) and keep-alive (lets the OS reap a connection whose peer vanished) where the
 * connection allows it: plain TCP does, an accepted TLS connection does not.
 */
export function tuneSocket(conn: Deno.Conn): void {
  const tcp = conn as Partial<Deno.TcpConn>;
  tcp.setNoDelay?.(true);
  tcp.setKeepAlive?.(true);
}

/**
 * Connects to `hostname:port`, with TLS when `tls` is given; the TLS handshake (certificate and
 * host name checked against the trusted CAs) completes before this resolves, so a wrong CA or
 * host fails here, with a {@linkcode TlsHandshakeError}, not on the first write. `signal`
 * aborts the connection and the handshake.
 */
export async function connect(
  hostname: string,
  port: number,
  tls: ClientTls | undefined,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  const tcp = await Deno.connect({ hostname, port, signal });
  tuneSocket(tcp);
  if (tls === undefined) return tcp;
  let conn: Deno.TlsConn;
  try {
    conn = await Deno.startTls(tcp, { hostname, caCerts: tls.caPems });
  } catch (error) {
    tcp.close();
    throw error;
  }
  const onAbort = () => conn.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    await conn.handshake();
  } catch (error) {
    try {
      conn.close();
    } catch {
      // Closed by the abort.
    }
    if (signal?.aborted) throw signal.reason ?? error;
    const reason = error instanceof Error ? error.message : String(error);
    const hint = /end of file|reset/i.test(reason) ? " (does the node serve TLS?)" : "";
    throw new TlsHandshakeError(`${hostname}:${port}`, reason + hint, { cause: error });
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
  return conn;
}

/**
 * True when `bytes` start like a TLS record (a handshake or an alert, any TLS version): what a
 * TLS node sends to a plain client, or a TLS client to a plain node. No valid frame starts so:
 * its length prefix would announce more than 64 MiB.
 */
export function looksLikeTls(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && (bytes[0] === 0x15 || bytes[0] === 0x16) && bytes[1] === 0x03;
}
