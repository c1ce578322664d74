import type { Cancel, Host, NodeFactory, NodeId, NodeProgram } from "@spines-ts/primitives";
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
};

/**
 * Runs a `MembershipCore` on a `Host` (the simulator's or a real one): packets in, one scheduled
 * wake-up for the core's next deadline, transmits out, events to `onEvent`.
 */
export class MembershipNode implements NodeProgram {
  readonly core: MembershipCore;
  readonly host: Host;
  readonly #onEvent: MembershipHandler;
  readonly #onAnnounce: ((data: Uint8Array) => void) | undefined;
  #cancel: Cancel | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #stopped = false;
  #flushing = false;
  #again = false;
  /** While paused (a simulated GC pause / SIGSTOP), inputs queue and nothing runs. */
  #paused: { from: NodeId; data: Uint8Array }[] | null = null;

  constructor(host: Host, options: MembershipNodeOptions, onEvent: MembershipHandler = () => {}) {
    this.host = host;
    this.#onEvent = onEvent;
    this.#onAnnounce = options.onAnnounce;
    let inc = options.incarnation ?? host.rng.uint32();
    if (inc === 0) inc = 1;
    this.core = new MembershipCore({ ...options, id: host.id, incarnation: inc });
    if (options.autoJoin ?? true) this.join();
  }

  join(): void {
    this.core.join(this.host.clock.now());
    this.#flush();
  }

  leave(): void {
    this.core.leave(this.host.clock.now());
    this.#flush();
  }

  multicast(payload: Uint8Array): boolean {
    const ok = this.core.multicast(payload, this.host.clock.now());
    this.#flush();
    return ok;
  }

  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    if (this.#paused) {
      if (this.#paused.length < 10_000) this.#paused.push({ from, data });
      return;
    }
    this.core.receive(from, data, this.host.clock.now());
    this.#flush();
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
    this.#fire();
    for (const p of q) {
      if (this.#stopped) break;
      this.core.receive(p.from, p.data, this.host.clock.now());
    }
    this.#flush();
  }

  stop(): void {
    this.#stopped = true;
    this.#cancel?.();
  }

  #fire(): void {
    if (this.#stopped || this.#paused) return;
    this.#armedAt = Number.POSITIVE_INFINITY;
    this.#cancel = undefined;
    this.core.handleTimeout(this.host.clock.now());
    this.#flush();
  }

  #flush(): void {
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#again = false;
        for (const t of this.core.drainTransmits()) {
          if (t.to !== null) this.host.send(t.to, t.data);
          else this.#onAnnounce?.(t.data);
        }
        for (const ev of this.core.drainEvents()) this.#onEvent(ev, this);
      } while (this.#again);
    } finally {
      this.#flushing = false;
    }
    if (this.#stopped) return;
    const d = this.core.nextDeadline();
    if (d === undefined) {
      this.#cancel?.();
      this.#cancel = undefined;
      this.#armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    const at = Math.max(d, this.host.clock.now());
    if (at === this.#armedAt) return;
    this.#cancel?.();
    this.#armedAt = at;
    this.#cancel = this.host.schedule(at, () => this.#fire());
  }
}

/** A `NodeFactory` for the simulator: every (re)start builds a fresh member with a new incarnation. */
export function membershipFactory(options: MembershipNodeOptions, onEvent?: MembershipHandler): NodeFactory {
  return (host) => new MembershipNode(host, options, onEvent);
}
