import {
  CoreDriver,
  type Host,
  type NodeFactory,
  type NodeId,
  type NodeProgram,
} from "@spines-ts/primitives";
import { FrameAuth, type FrameAuthStats, type KeySet } from "@spines-ts/wire/auth";
import { MembershipCore } from "./core.ts";
import type { MembershipConfig, MembershipEvent } from "./types.ts";

export type MembershipHandler = (ev: MembershipEvent, node: MembershipNode) => void;

/** Options of a Host-driven member; `id` comes from the host and `incarnation` from its rng. */
export type MembershipNodeOptions = Omit<MembershipConfig, "id" | "incarnation"> & {
  readonly incarnation?: number;
  /** Join as soon as the node starts (default true). */
  readonly autoJoin?: boolean;
  /** Sends a discovery announcement (a core transmit to `null`, with `announce: true`). */
  readonly onAnnounce?: (data: Uint8Array) => void;
  /**
   * Authenticated packets (docs/security.md): every frame this member sends (announcements too) is
   * signed with `keys.current` and a frame counter, every frame it receives is verified under any key
   * of the set and checked against a replay window per sender incarnation before the core sees it.
   * Unsigned, unknown-key, bad-MAC and replayed frames are dropped and counted (`authStats()`).
   */
  readonly auth?: MembershipAuthOptions;
};

/** The `auth` option of a member. */
export interface MembershipAuthOptions {
  /** The group's keys (`parseKeyFile` from `@spines-ts/wire/auth`). */
  readonly keys: KeySet;
  /**
   * The first frame counter; it must be above every counter this member signed in an earlier run, so
   * shells pass a wall-clock reading in microseconds (`UdpMember` does). Default: the host clock in
   * microseconds (right for the simulator, whose clock only moves forward across restarts).
   */
  readonly counterStart?: number;
  /** Encrypt the body too (ChaCha20-Poly1305, docs/wire.md §1.3); every member must agree. */
  readonly encrypt?: boolean;
}

/**
 * Runs a `MembershipCore` on a `Host` (the simulator's or a real one) with the shared `CoreDriver`
 * (docs/drivers.md): packets in, one scheduled wake-up for the core's next deadline, transmits out,
 * events to `onEvent`.
 */
export class MembershipNode implements NodeProgram {
  readonly core: MembershipCore;
  readonly host: Host;
  readonly #onEvent: MembershipHandler;
  readonly #onAnnounce: ((data: Uint8Array) => void) | undefined;
  readonly #driver: CoreDriver;
  /** Signs what this member sends and checks what it receives; undefined without `auth`. */
  readonly auth: FrameAuth | undefined;
  #stopped = false;
  /** While paused (a simulated GC pause / SIGSTOP), inputs queue and nothing runs. */
  #paused: { from: NodeId; data: Uint8Array }[] | null = null;

  constructor(host: Host, options: MembershipNodeOptions, onEvent: MembershipHandler = () => {}) {
    this.host = host;
    this.#onEvent = onEvent;
    this.#onAnnounce = options.onAnnounce;
    this.auth =
      options.auth === undefined
        ? undefined
        : new FrameAuth(options.auth.keys, {
            counterStart: options.auth.counterStart ?? Math.floor(host.clock.now() * 1000) + 1,
            mode: options.auth.encrypt ? "encrypt" : "mac",
          });
    let inc = options.incarnation ?? host.rng.uint32();
    if (inc === 0) inc = 1;
    const { auth: _auth, ...config } = options;
    this.core = new MembershipCore({ ...config, id: host.id, incarnation: inc });
    this.#driver = new CoreDriver(host, {
      drain: () => this.#drain(),
      nextDeadline: () => this.core.nextDeadline(),
      // A paused process runs nothing: the overdue timer fires on `resume`.
      handleTimeout: (now) => (this.#paused ? false : this.core.handleTimeout(now)),
    });
    if (options.autoJoin ?? true) this.join();
  }

  join(): void {
    this.core.join(this.host.clock.now());
    this.#driver.flush();
  }

  leave(): void {
    this.core.leave(this.host.clock.now());
    this.#driver.flush();
  }

  multicast(payload: Uint8Array): boolean {
    const ok = this.core.multicast(payload, this.host.clock.now());
    this.#driver.flush();
    return ok;
  }

  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    if (this.#paused) {
      if (this.#paused.length < 10_000) this.#paused.push({ from, data });
      return;
    }
    const frame = this.#authentic(data);
    if (frame === undefined) return;
    this.#driver.input((now) => this.core.receive(from, frame, now));
  }

  /** Counters of the authentication layer (undefined without `auth`). */
  authStats(): FrameAuthStats | undefined {
    return this.auth?.stats();
  }

  /**
   * The frame the core may see (decrypted in encrypt mode), or undefined to drop it: with `auth`
   * only a signed, known-key, good-MAC, fresh frame passes.
   */
  #authentic(data: Uint8Array): Uint8Array | undefined {
    if (this.auth === undefined) return data;
    try {
      const r = this.auth.open(data);
      return r.ok ? r.frame : undefined;
    } catch {
      // a malformed header: the core counts it as a bad packet, as it would without auth
      return data;
    }
  }

  #seal(data: Uint8Array): Uint8Array | undefined {
    if (this.auth === undefined) return data;
    try {
      return this.auth.seal(data);
    } catch (e) {
      this.host.log.warn({ err: String(e) }, "membership: cannot sign a frame; dropped");
      return undefined;
    }
  }

  /** Simulates an unresponsive process (GC pause, SIGSTOP): nothing runs until `resume`. */
  pause(): void {
    if (this.#paused === null) this.#paused = [];
  }

  /** Ends a pause: the overdue timer fires first, then the queued packets are read (as an event loop would). */
  resume(): void {
    const q = this.#paused;
    if (q === null) return;
    this.#paused = null;
    if (this.#stopped) return;
    this.#driver.input((now) => this.core.handleTimeout(now));
    for (const p of q) {
      if (this.#stopped) break;
      const frame = this.#authentic(p.data);
      if (frame === undefined) continue;
      this.core.receive(p.from, frame, this.host.clock.now());
    }
    this.#driver.flush();
  }

  stop(): void {
    this.#stopped = true;
    this.#driver.stop();
  }

  /** One drain pass: transmits out (announcements to `onAnnounce`), events to the handler. */
  #drain(): boolean {
    let progress = false;
    for (const t of this.core.takeTransmits()) {
      progress = true;
      const data = this.#seal(t.data);
      if (data === undefined) continue;
      if (t.to !== null) this.host.send(t.to, data);
      else this.#onAnnounce?.(data);
    }
    for (const ev of this.core.takeEvents()) {
      progress = true;
      this.#onEvent(ev, this);
    }
    return progress;
  }
}

/** A `NodeFactory` for the simulator: every (re)start builds a fresh member with a new incarnation. */
export function membershipFactory(options: MembershipNodeOptions, onEvent?: MembershipHandler): NodeFactory {
  return (host) => new MembershipNode(host, options, onEvent);
}
