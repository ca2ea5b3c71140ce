/**
 * Quick-start certificates for `counter certs`: one certificate authority and one certificate per
 * node, made with `@peculiar/x509` on Web Crypto (no cryptography of our own). The node
 * certificates name every given host as a subject alternative name (IP addresses as IP SANs, the
 * rest as DNS names) and serve both as server and client certificates, so one file pair per node
 * is enough for peers and clients alike.
 *
 * Keys are ECDSA P-256 (what rustls, Deno's TLS, accepts and what makes small certificates),
 * exported as PKCS#8 PEM.
 *
 * @example
 * ```ts
 * import { createCertificates } from "./certs.ts";
 * const { ca, nodes } = await createCertificates({ hosts: ["127.0.0.1"], validDays: 365 });
 * console.log(ca.certPem.startsWith("-----BEGIN CERTIFICATE-----"), nodes.length);
 * ```
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(crypto);

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A certificate and its private key, PEM-encoded. */
export interface CertifiedKey {
  /** The certificate, PEM. */
  certPem: string;
  /** The PKCS#8 private key, PEM. Keep it secret (files are written 0600). */
  keyPem: string;
}

/** A node's certificate, with the host names it is valid for. */
export interface NodeCertificate extends CertifiedKey {
  /** The hosts (IP addresses or DNS names) in its subject alternative names. */
  hosts: string[];
}

/** Options for {@linkcode createCertificates}. */
export interface CertificateOptions {
  /** Hosts the node certificate is valid for; at least one. */
  hosts: string[];
  /** Days the certificates stay valid, from now. */
  validDays: number;
  /** Clock for `notBefore`; default `new Date()`. Injected for tests. */
  now?: Date;
}

/** The result of {@linkcode createCertificates}. */
export interface CertificateSet {
  /** The certificate authority that signed the node certificate. */
  ca: CertifiedKey;
  /** The node certificate (one for all hosts: every node of a quick start shares it). */
  node: NodeCertificate;
}

/** True when `host` is an IPv4 or IPv6 literal (then it goes in an IP SAN). */
export function isIpLiteral(host: string): boolean {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(host)) {
    return host.split(".").every((part) => Number(part) <= 255);
  }
  return host.includes(":") && /^[0-9a-fA-F:.]+$/.test(host);
}

/**
 * Creates a CA and a node certificate valid for every host in `options.hosts`. Throws a
 * `RangeError` for an empty or malformed host list or a non-positive validity.
 */
export async function createCertificates(options: CertificateOptions): Promise<CertificateSet> {
  const hosts = [...new Set(options.hosts.map((h) => h.trim()))];
  if (hosts.length === 0 || hosts.some((h) => h === "" || /[\s,/]/.test(h))) {
    throw new RangeError(`hosts must be a non-empty list of IP addresses or DNS names`);
  }
  if (!Number.isInteger(options.validDays) || options.validDays < 1) {
    throw new RangeError(`validity must be a whole number of days, at least 1`);
  }
  const notBefore = options.now ?? new Date();
  // Clocks of the machines that check it may run a little behind the one that made it.
  notBefore.setTime(notBefore.getTime() - 60 * 60 * 1000);
  const notAfter = new Date(notBefore.getTime() + options.validDays * 86_400_000);

  const caKeys = await generateKeys();
  const caName = "CN=counter quick-start CA";
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: caName,
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const nodeKeys = await generateKeys();
  const sans = hosts.map((h) => ({ type: isIpLiteral(h) ? "ip" : "dns", value: h }) as const);
  const nodeCert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${hosts[0]}`,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingKey: caKeys.privateKey,
    publicKey: nodeKeys.publicKey,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(sans, false),
      await x509.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });

  return {
    ca: { certPem: caCert.toString("pem"), keyPem: await keyPem(caKeys.privateKey) },
    node: {
      certPem: nodeCert.toString("pem"),
      keyPem: await keyPem(nodeKeys.privateKey),
      hosts,
    },
  };
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey("pkcs8", key);
  return x509.PemConverter.encode(der, "PRIVATE KEY");
}

/** A positive 64-bit serial number in hex (RFC 5280: unique per CA, at most 20 bytes). */
function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  bytes[0] &= 0x7f;
  bytes[0] |= 0x01;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
