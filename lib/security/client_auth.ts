/**
 * Client roles: which token a request needs, and the per-connection challenge that proves a
 * client holds one without sending it.
 *
 * A node may have a client token (`serve --client-token-file`) and an admin token
 * (`--admin-token-file`). A client proves it holds one on each new connection with the `auth`
 * op, twice:
 *
 * ```
 * {op: "auth"}                               -> {required, nonce: Ns}      (fresh per connection)
 * {op: "auth", args: {nonce: Nc, proof: P}}  -> {role: "client" | "admin"} or UNAUTHENTICATED
 *   where P = HMAC-SHA-256(token, "counter client auth v1" | "client" | group | Ns | Nc)
 * ```
 *
 * The connection then holds that role (the admin token implies client rights). Requests a
 * connection's role does not cover are answered `UNAUTHENTICATED` (no role yet) or
 * `PERMISSION_DENIED` (a client role asking for an admin op), before the node sees them.
 *
 * Which ops need which role is {@linkcode accessFor}: data and read ops need the client token,
 * membership, leader transfer, snapshots and backups the admin token, and ops this table does not
 * know the admin token too (default deny). A role whose token is not configured is not asked
 * for: without tokens everything is open; with only an admin token, client ops are open; with
 * only a client token, it also covers admin ops.
 *
 * @module
 */

import type { ClientRequest, ClientResponse, WireMap } from "../transport/codec.ts";
import { equalBytes, hmac, hmacKey, newNonce, NONCE_BYTES, transcript } from "./tokens.ts";

/** A connection's role once it proved a token. */
export type Role = "client" | "admin";

/** What an op needs: nothing, the client token, or the admin token. */
export type Access = "open" | Role;

const LABEL = "counter client auth v1";

const OP_ACCESS: Readonly<Record<string, Access>> = {
  // The handshake itself, and the identity probe nodes send one another before bootstrapping.
  auth: "open",
  identity: "open",
  incr: "client",
  get: "client",
  status: "client",
  peers: "client",
  add_peer: "admin",
  remove_peer: "admin",
  promote_peer: "admin",
  transfer_leader: "admin",
  snapshot: "admin",
  backup: "admin",
  groups: "client",
  create_group: "admin",
  remove_group: "admin",
};

/** What `op` needs, before the node's configuration is taken into account. */
export function accessFor(op: string): Access {
  return Object.hasOwn(OP_ACCESS, op) ? OP_ACCESS[op] : "admin";
}

/** Per-connection state of the client handshake; the transport keeps one per connection. */
export interface ClientSession {
  /** The role proved on this connection, or null. */
  role: Role | null;
  /** The nonce this node sent and has not yet seen a proof for; single use. */
  nonce: Uint8Array | null;
}

/** A new connection's session: no role, no nonce. */
export function newSession(): ClientSession {
  return { role: null, nonce: null };
}

/** The proof a client sends for `group`, the node's nonce and its own, under `token`'s key. */
export function clientProof(
  key: CryptoKey,
  group: string,
  serverNonce: Uint8Array,
  clientNonce: Uint8Array,
): Promise<Uint8Array> {
  return hmac(key, transcript([LABEL, "client", group, serverNonce, clientNonce]));
}

/** The node's side: its tokens' keys, and the checks on each request. */
export class ClientAuthenticator {
  readonly #accepts: (group: string) => boolean;
  readonly #clientKey: CryptoKey | null;
  readonly #adminKey: CryptoKey | null;

  private constructor(
    accepts: (group: string) => boolean,
    clientKey: CryptoKey | null,
    adminKey: CryptoKey | null,
  ) {
    this.#accepts = accepts;
    this.#clientKey = clientKey;
    this.#adminKey = adminKey;
  }

  /**
   * Makes the authenticator of a node of `group` (a name, or a predicate taking every group the
   * node hosts: a proof is good for the group its request names) from the tokens' bytes.
   */
  static async create(
    group: string | ((group: string) => boolean),
    tokens: { client?: Uint8Array; admin?: Uint8Array },
  ): Promise<ClientAuthenticator> {
    return new ClientAuthenticator(
      typeof group === "string" ? (g) => g === group : group,
      tokens.client === undefined ? null : await hmacKey(tokens.client),
      tokens.admin === undefined ? null : await hmacKey(tokens.admin),
    );
  }

  /** True when some token is configured, i.e. some op needs a proof. */
  get required(): boolean {
    return this.#clientKey !== null || this.#adminKey !== null;
  }

  /** The role `op` needs on this node, given which tokens it has; "open" needs none. */
  needs(op: string): Access {
    const access = accessFor(op);
    if (access === "admin") {
      if (this.#adminKey !== null) return "admin";
      return this.#clientKey !== null ? "client" : "open";
    }
    if (access === "client") return this.#clientKey !== null ? "client" : "open";
    return "open";
  }

  /**
   * The refusal of `request` on a connection in `session`, or null when it may go on. Never
   * called for `auth` itself (see {@linkcode answerAuth}).
   */
  check(session: ClientSession, request: ClientRequest): ClientResponse | null {
    const needs = this.needs(request.op);
    if (needs === "open" || session.role === "admin") return null;
    if (needs === "client" && session.role === "client") return null;
    if (session.role === null) {
      return {
        ok: false,
        code: "UNAUTHENTICATED",
        error: `"${request.op}" needs the ${needs} token: give --token-file FILE ` +
          `(or COUNTER_TOKEN_FILE)`,
      };
    }
    return {
      ok: false,
      code: "PERMISSION_DENIED",
      error: `"${request.op}" needs the admin token; this connection proved the client token`,
    };
  }

  /** Answers an `auth` request on a connection in `session` (see the module doc). */
  async answerAuth(
    session: ClientSession,
    group: string,
    request: ClientRequest,
  ): Promise<ClientResponse> {
    const args = request.args ?? {};
    if (args.proof === undefined) {
      if (!this.required) return { ok: true, data: { required: false } };
      session.nonce = newNonce();
      return { ok: true, data: { required: true, nonce: session.nonce } };
    }
    const serverNonce = session.nonce;
    // Single use: a failed proof needs a fresh nonce.
    session.nonce = null;
    const { nonce, proof } = args;
    if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) {
      return badRequest(`auth args.nonce must be ${NONCE_BYTES} bytes`);
    }
    if (!(proof instanceof Uint8Array)) return badRequest("auth args.proof must be binary");
    if (serverNonce === null) {
      return {
        ok: false,
        code: "UNAUTHENTICATED",
        error: "auth proof without a nonce: ask for one first",
      };
    }
    if (this.#accepts(group)) {
      for (const [role, key] of [["admin", this.#adminKey], ["client", this.#clientKey]] as const) {
        if (key === null) continue;
        const expected = await clientProof(key, group, serverNonce, nonce);
        if (equalBytes(expected, proof)) {
          session.role = role;
          return { ok: true, data: { role } };
        }
      }
    }
    return {
      ok: false,
      code: "UNAUTHENTICATED",
      error: "the token is wrong (check --token-file)",
    };
  }
}

function badRequest(error: string): ClientResponse {
  return { ok: false, code: "BAD_REQUEST", error };
}

/** How a client sends one request on its connection; see {@linkcode authenticate}. */
export type CallFn = (request: ClientRequest) => Promise<ClientResponse>;

/**
 * The client's side of the handshake on one new connection: asks for a nonce, sends its proof.
 * Resolves with the role the node granted, or "open" when the node asks for no token. Rejects
 * with {@linkcode ClientAuthError} when the node refuses the proof.
 */
export async function authenticate(
  call: CallFn,
  group: string,
  key: CryptoKey,
): Promise<Role | "open"> {
  const first = await call({ op: "auth" });
  // A node from before roles does not know the op: it asks for nothing.
  if (!first.ok && first.code === "UNKNOWN_OP") return "open";
  if (!first.ok) throw new ClientAuthError(first.code ?? "UNAUTHENTICATED", first.error ?? "");
  const data: WireMap = first.data ?? {};
  if (data.required === false) return "open";
  const serverNonce = data.nonce;
  if (!(serverNonce instanceof Uint8Array) || serverNonce.length !== NONCE_BYTES) {
    throw new ClientAuthError("BAD_RESPONSE", "the node's auth nonce is malformed");
  }
  const clientNonce = newNonce();
  const proof = await clientProof(key, group, serverNonce, clientNonce);
  const second = await call({ op: "auth", args: { nonce: clientNonce, proof } });
  if (!second.ok) {
    throw new ClientAuthError(second.code ?? "UNAUTHENTICATED", second.error ?? "refused");
  }
  const role = second.data?.role;
  if (role !== "client" && role !== "admin") {
    throw new ClientAuthError("BAD_RESPONSE", "the node granted no known role");
  }
  return role;
}

/** The node refused this client's token. */
export class ClientAuthError extends Error {
  /** The node's code, usually `UNAUTHENTICATED`. */
  readonly code: string;

  /** Creates the error. */
  constructor(code: string, message: string) {
    super(message);
    this.name = "ClientAuthError";
    this.code = code;
  }
}
