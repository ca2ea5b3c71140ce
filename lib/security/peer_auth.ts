/**
 * Peer authentication: a mutual challenge-response over a cluster token shared by the members
 * (`serve --cluster-token-file`), run as the first exchange on every peer connection. The
 * token never crosses the wire; each side proves it holds it with an HMAC-SHA-256 (Web Crypto)
 * over a transcript of both node ids, the group name and a fresh nonce from each side:
 *
 * ```
 * dialer  -> acceptor  step 1: from=D, to=A, nonce Nd
 * acceptor -> dialer   step 2: from=A, to=D, nonce Na, mac HMAC(K, "acceptor"|group|D|A|Nd|Na)
 * dialer  -> acceptor  step 3: from=D, to=A,           mac HMAC(K, "dialer"|group|D|A|Nd|Na)
 * ```
 *
 * The dialer checks the acceptor's MAC before it sends anything else; the acceptor takes no
 * peer body on the connection before it checked the dialer's. Each MAC covers the other side's
 * fresh nonce, so a recorded handshake replays nowhere; the role label keeps a side's MAC from
 * being reflected back as the other's; the group and both ids are bound, so a proof for one
 * group or one pair of nodes is worth nothing for another.
 *
 * This module is the handshake's logic only; the transport (server.ts, peers.ts) carries the
 * steps as PEER_AUTH bodies (docs/PROTOCOL.md).
 *
 * @module
 */

import type { PeerAuth } from "../transport/codec.ts";
import { equalBytes, hmac, hmacKey, newNonce, transcript } from "./tokens.ts";

const LABEL = "counter peer auth v1";

/** What a dialer keeps between step 1 and step 2. */
export interface DialerHandshake {
  /** The peer dialled. */
  to: string;
  /** The nonce sent in step 1. */
  nonce: Uint8Array;
}

/** What an acceptor keeps between step 2 and step 3. */
export interface AcceptorHandshake {
  /** The dialer, as its step 1 named it. */
  dialer: string;
  /** The group its step 1 named; step 3 must name the same. */
  group: string;
  /** The MAC step 3 must carry. */
  expectedMac: Uint8Array;
}

/** A handshake step was refused; the message says why, for the log. */
export class PeerAuthError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "PeerAuthError";
  }
}

/** One node's side of the peer handshake: its id, its group, and the cluster token's key. */
export class PeerAuthenticator {
  readonly #key: CryptoKey;
  readonly #group: string;
  readonly #self: string;
  readonly #accepts: (group: string) => boolean;

  private constructor(
    key: CryptoKey,
    group: string,
    self: string,
    accepts: (group: string) => boolean,
  ) {
    this.#key = key;
    this.#group = group;
    this.#self = self;
    this.#accepts = accepts;
  }

  /**
   * Makes the authenticator of node `self` from the cluster token's bytes. It dials with
   * `group`'s name in the transcript, and accepts handshakes for `group` or, with `accepts`, for
   * every group that predicate takes (a node hosting several groups on one port with one cluster
   * token: a connection carries all of them, so any hosted name binds it).
   */
  static async create(
    token: Uint8Array,
    group: string,
    self: string,
    accepts?: (group: string) => boolean,
  ): Promise<PeerAuthenticator> {
    return new PeerAuthenticator(
      await hmacKey(token),
      group,
      self,
      accepts ?? ((g) => g === group),
    );
  }

  /** This node's id. */
  get self(): string {
    return this.#self;
  }

  /** The group the handshakes are bound to. */
  get group(): string {
    return this.#group;
  }

  /** Dialer, step 1: what to send to `to`, and what to keep for step 2. */
  dialerStart(to: string): { step: PeerAuth; state: DialerHandshake } {
    const nonce = newNonce();
    return {
      step: { step: 1, from: this.#self, to, nonce, mac: new Uint8Array(0) },
      state: { to, nonce },
    };
  }

  /**
   * Dialer, steps 2 to 3: checks the acceptor's challenge (sent for `group`) and returns step 3.
   * Throws {@linkcode PeerAuthError} when the acceptor did not prove it holds the token.
   */
  async dialerFinish(
    state: DialerHandshake,
    group: string,
    challenge: PeerAuth,
  ): Promise<PeerAuth> {
    if (challenge.step !== 2) {
      throw new PeerAuthError(`expected step 2, got step ${challenge.step}`);
    }
    if (group !== this.#group) throw new PeerAuthError(`challenge for group ${group}`);
    if (challenge.from !== state.to || challenge.to !== this.#self) {
      throw new PeerAuthError(`challenge from ${challenge.from} to ${challenge.to}`);
    }
    const expected = await this.#mac(
      "acceptor",
      group,
      this.#self,
      state.to,
      state.nonce,
      challenge.nonce,
    );
    if (!equalBytes(expected, challenge.mac)) {
      throw new PeerAuthError("the peer's proof is wrong (another cluster token or group)");
    }
    const mac = await this.#mac(
      "dialer",
      group,
      this.#self,
      state.to,
      state.nonce,
      challenge.nonce,
    );
    return { step: 3, from: this.#self, to: state.to, nonce: new Uint8Array(0), mac };
  }

  /**
   * Acceptor, steps 1 to 2: checks the dialer's opening (sent for `group`) and returns the
   * challenge to send and what to keep for step 3. Throws {@linkcode PeerAuthError} for an
   * opening that is not for this node.
   */
  async acceptorChallenge(
    group: string,
    opening: PeerAuth,
  ): Promise<{ step: PeerAuth; state: AcceptorHandshake }> {
    if (opening.step !== 1) throw new PeerAuthError(`expected step 1, got step ${opening.step}`);
    if (!this.#accepts(group)) throw new PeerAuthError(`opening for group ${group}`);
    if (opening.to !== this.#self) throw new PeerAuthError(`opening addressed to ${opening.to}`);
    if (opening.from === this.#self) throw new PeerAuthError("opening from this node's own id");
    const nonce = newNonce();
    const dialer = opening.from;
    const [mac, expectedMac] = await Promise.all([
      this.#mac("acceptor", group, dialer, this.#self, opening.nonce, nonce),
      this.#mac("dialer", group, dialer, this.#self, opening.nonce, nonce),
    ]);
    return {
      step: { step: 2, from: this.#self, to: dialer, nonce, mac },
      state: { dialer, group, expectedMac },
    };
  }

  /**
   * Acceptor, step 3: whether the dialer's proof is right. Synchronous (the expected MAC was
   * computed with the challenge), so no body can slip in between the proof and its check.
   */
  acceptorVerify(state: AcceptorHandshake, group: string, proof: PeerAuth): boolean {
    return proof.step === 3 && group === state.group && proof.from === state.dialer &&
      proof.to === this.#self && equalBytes(proof.mac, state.expectedMac);
  }

  #mac(
    role: "dialer" | "acceptor",
    group: string,
    dialer: string,
    acceptor: string,
    dialerNonce: Uint8Array,
    acceptorNonce: Uint8Array,
  ): Promise<Uint8Array> {
    const message = transcript([
      LABEL,
      role,
      group,
      dialer,
      acceptor,
      dialerNonce,
      acceptorNonce,
    ]);
    return hmac(this.#key, message);
  }
}
