/**
 * Authenticated packets for an overlay node (docs/security.md): one `FrameAuth` sits at the boundary
 * between the node and its `Host`, so everything the node sends (links, routing, sessions, goodbyes)
 * is signed and everything it receives is verified, with a replay window per sender incarnation,
 * before the plane decodes it. The same composition runs in netsim and in the daemon.
 */
import type { Cancel, Clock, Host, Logger, NodeId, Rng } from "@spines-ts/primitives";
import { FrameAuth, type FrameAuthStats, type KeySet } from "@spines-ts/wire/auth";
import type { OwningHost } from "./plane.ts";

/** The `auth` option of an overlay node. */
export interface OverlayAuthOptions {
  /** The overlay's keys (`parseKeyFile` from `@spines-ts/wire/auth`). */
  readonly keys: KeySet;
  /**
   * The first frame counter: above every counter an earlier run of this node signed. The daemon
   * passes the wall clock in microseconds; the default, the host clock in microseconds, suits netsim
   * (whose clock never goes back across restarts).
   */
  readonly counterStart?: number;
  /** Encrypt the body too (ChaCha20-Poly1305, docs/wire.md §1.3); every node must agree. */
  readonly encrypt?: boolean;
}

/**
 * A `Host` that signs every datagram on its way out (`send`, and `sendOwned` when the inner host has
 * it), and forwards everything else to the inner host. `peer` (an endpoint lookup, for logs) is
 * passed through when the inner host has one.
 */
export class SigningHost implements OwningHost {
  readonly id: NodeId;
  readonly clock: Clock;
  readonly rng: Rng;
  readonly log: Logger;
  readonly inner: Host;
  readonly auth: FrameAuth;
  /** Frames the signer refused (a malformed or already signed frame: a bug, never a peer's doing). */
  signErrors = 0;
  readonly #owning: ((to: NodeId, data: Uint8Array) => void) | undefined;

  constructor(inner: Host, auth: FrameAuth) {
    this.inner = inner;
    this.auth = auth;
    this.id = inner.id;
    this.clock = inner.clock;
    this.rng = inner.rng;
    this.log = inner.log;
    const owning = (inner as Partial<OwningHost>).sendOwned;
    this.#owning = typeof owning === "function" ? owning.bind(inner) : undefined;
  }

  #seal(data: Uint8Array): Uint8Array | undefined {
    try {
      return this.auth.seal(data);
    } catch (e) {
      if (this.signErrors++ === 0)
        this.log.error({ err: String(e) }, "overlay: cannot sign a frame; dropped");
      return undefined;
    }
  }

  send(to: NodeId, data: Uint8Array): void {
    const sealed = this.#seal(data);
    if (sealed === undefined) return;
    // the sealed frame is a fresh array nobody else holds: an owning host may keep it as it is
    if (this.#owning) this.#owning(to, sealed);
    else this.inner.send(to, sealed);
  }

  sendOwned(to: NodeId, data: Uint8Array): void {
    this.send(to, data);
  }

  schedule(at: number, fn: () => void): Cancel {
    return this.inner.schedule(at, fn);
  }

  peer(id: NodeId): { address: string; port: number } | undefined {
    return (this.inner as { peer?: (id: NodeId) => { address: string; port: number } | undefined }).peer?.(
      id,
    );
  }
}

/** Builds the `FrameAuth` of a node on `host` from its `auth` option. */
export function overlayFrameAuth(host: Host, opts: OverlayAuthOptions): FrameAuth {
  return new FrameAuth(opts.keys, {
    counterStart: opts.counterStart ?? Math.floor(host.clock.now() * 1000) + 1,
    mode: opts.encrypt ? "encrypt" : "mac",
  });
}

export type { FrameAuthStats };
