/**
 * `HOST:PORT` addresses, the form node ids take. IPv6 hosts are written in brackets:
 * `[::1]:4000`.
 *
 * @module
 */

/** A host and port to connect to or listen on. */
export interface HostPort {
  /** Host name or IP address, without brackets. */
  hostname: string;
  /** TCP port, 0..65535. */
  port: number;
}

/**
 * Splits a `HOST:PORT` address. Throws `TypeError` when it is malformed.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * parseAddress("127.0.0.1:4000"); // { hostname: "127.0.0.1", port: 4000 }
 * parseAddress("[::1]:4000"); // { hostname: "::1", port: 4000 }
 * ```
 */
export function parseAddress(address: string): HostPort {
  const colon = address.lastIndexOf(":");
  if (colon <= 0) throw new TypeError(`Address ${JSON.stringify(address)} is not HOST:PORT`);
  let hostname = address.slice(0, colon);
  const portText = address.slice(colon + 1);
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    hostname = hostname.slice(1, -1);
  } else if (hostname.includes(":")) {
    throw new TypeError(`Address ${JSON.stringify(address)} needs brackets around its IPv6 host`);
  }
  const port = Number(portText);
  if (hostname.length === 0 || !/^\d{1,5}$/.test(portText) || port > 65535) {
    throw new TypeError(`Address ${JSON.stringify(address)} is not HOST:PORT`);
  }
  return { hostname, port };
}

/**
 * Formats a host and port as `HOST:PORT`, bracketing IPv6 hosts.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./address.ts";
 * formatAddress({ hostname: "::1", port: 4000 }); // "[::1]:4000"
 * ```
 */
export function formatAddress(addr: HostPort): string {
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
