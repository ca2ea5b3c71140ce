/**
 * TLS settings of a node and of a client, read from PEM files, and the two calls that open a
 * listener or a connection with or without them. Deno's own TLS (rustls) does the work.
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

/** Reads a PEM file, failing with one clear line naming the file and what it should hold. */
export async function readPemFile(path: string, what: string, marker: RegExp): Promise<string> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot read the ${what} file ${path}: ${reason}`);
  }
  if (!marker.test(text)) {
    throw new Error(`${path} does not hold a PEM ${what}`);
  }
  return text;
}

/** Reads `--tls-cert` and `--tls-key`. */
export async function loadServerTls(certFile: string, keyFile: string): Promise<ServerTls> {
  return {
    certPem: await readPemFile(certFile, "certificate", /-----BEGIN CERTIFICATE-----/),
    keyPem: await readPemFile(keyFile, "private key", /-----BEGIN (EC |RSA )?PRIVATE KEY-----/),
  };
}

/** Reads `--tls-ca`. */
export async function loadClientTls(caFile: string): Promise<ClientTls> {
  return { caPems: [await readPemFile(caFile, "CA certificate", /-----BEGIN CERTIFICATE-----/)] };
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
 * Connects to `hostname:port`, with TLS when `tls` is given; the TLS handshake (certificate and
 * host name checked against the trusted CAs) completes before this resolves, so a wrong CA or
 * host fails here, not on the first write.
 */
export async function connect(
  hostname: string,
  port: number,
  tls: ClientTls | undefined,
  signal?: AbortSignal,
): Promise<Deno.Conn> {
  if (tls === undefined) return await Deno.connect({ hostname, port, signal });
  const conn = await Deno.connectTls({ hostname, port, caCerts: tls.caPems });
  try {
    await conn.handshake();
  } catch (error) {
    conn.close();
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`TLS handshake with ${hostname}:${port} failed: ${reason}`);
  }
  return conn;
}
