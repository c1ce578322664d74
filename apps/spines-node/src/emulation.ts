import type { Cancel, Clock, NodeId, Rng } from "@spines-ts/primitives";
import { type EmulationParams, isEmulationActive } from "./emulation-params.ts";

export const DEFAULT_EMULATION_QUEUE_BYTES = 1 << 20;
/** Hard bound on packets held per link, whatever `queueBytes` says. */
export const MAX_EMULATION_QUEUE_PACKETS = 65_536;

export interface EmulationStats {
  passed: number;
  lost: number;
  queueDrops: number;
  queuedPackets: number;
  queuedBytes: number;
  /** Mean of (release time − due time) over the packets held, ms: the emulation's own delay error. */
  releaseErrorMs: number;
}

/** Largest timer lead the emulation learns (ms). */
const MAX_LEAD_MS = 2;
/** Weight of one timer's observed lateness in the learned lead. */
const LEAD_GAIN = 1 / 32;

interface Held {
  at: number;
  data: Uint8Array;
}

interface LinkState {
  params: EmulationParams;
  lastLost: boolean;
  nextDeparture: number;
  lastDelivery: number;
  queue: Held[];
  head: number;
  queuedBytes: number;
  cancel: Cancel | undefined;
  /** When the pending timer was asked to fire (ms). */
  wakeAt: number;
  errorSum: number;
  errorCount: number;
  stats: EmulationStats;
}

/** What the emulator needs from its host: time, randomness and the shared timer queue. */
export interface EmulatorHost {
  readonly clock: Clock;
  readonly rng: Rng;
  schedule(at: number, fn: () => void): Cancel;
}

/**
 * Per-neighbour link emulation applied on receive, before any protocol processing, as Spines'
 * `setlink` does: loss (independent or bursty, a two-state Gilbert model whose average stays
 * `lossPct`), a bandwidth bottleneck with a bounded queue, delay and jitter. Packets leave in
 * arrival order; each link uses at most one pending timer on the host's timer queue.
 *
 * Timers fire late: a host timer with millisecond granularity (setTimeout) wakes 0.6-0.7 ms after
 * its deadline on average, which on a 4-hop path added 2.6 ms to every message the emulation was
 * meant to delay by exactly 40 ms (issue 10). The emulator learns its timers' mean lateness and
 * asks to be woken that much before a packet is due, releasing what is due within that lead: the
 * release times then scatter around the due time (the spread of timer wake-ups) instead of
 * landing after it. `releaseErrorMs` reports the mean error that is left.
 */
export class LinkEmulator {
  readonly #host: EmulatorHost;
  readonly #deliver: (from: NodeId, data: Uint8Array) => void;
  readonly #links = new Map<NodeId, LinkState>();
  /** Learned mean lateness of the host's timers (ms), used as the wake-up lead. */
  #lead = 0;

  constructor(host: EmulatorHost, deliver: (from: NodeId, data: Uint8Array) => void) {
    this.#host = host;
    this.#deliver = deliver;
  }

  /** Sets (or with `undefined` or all-zero params, clears) the emulation on the link from `from`. */
  set(from: NodeId, params: EmulationParams | undefined): void {
    const cur = this.#links.get(from);
    if (params === undefined || !isEmulationActive(params)) {
      if (cur !== undefined) {
        // Let what is already queued go out at once, in order.
        cur.cancel?.();
        cur.cancel = undefined;
        this.#links.delete(from);
        for (let i = cur.head; i < cur.queue.length; i++) this.#deliver(from, (cur.queue[i] as Held).data);
      }
      return;
    }
    if (cur !== undefined) {
      cur.params = { ...params };
      return;
    }
    this.#links.set(from, {
      params: { ...params },
      lastLost: false,
      nextDeparture: 0,
      lastDelivery: 0,
      queue: [],
      head: 0,
      queuedBytes: 0,
      cancel: undefined,
      wakeAt: 0,
      errorSum: 0,
      errorCount: 0,
      stats: { passed: 0, lost: 0, queueDrops: 0, queuedPackets: 0, queuedBytes: 0, releaseErrorMs: 0 },
    });
  }

  get(from: NodeId): EmulationParams | undefined {
    return this.#links.get(from)?.params;
  }

  stats(from: NodeId): EmulationStats | undefined {
    const l = this.#links.get(from);
    if (l === undefined) return undefined;
    return {
      ...l.stats,
      queuedPackets: l.queue.length - l.head,
      queuedBytes: l.queuedBytes,
      releaseErrorMs: l.errorCount === 0 ? 0 : l.errorSum / l.errorCount,
    };
  }

  /** Every link with emulation set. */
  links(): NodeId[] {
    return [...this.#links.keys()];
  }

  receive(from: NodeId, data: Uint8Array): void {
    const l = this.#links.get(from);
    if (l === undefined) {
      this.#deliver(from, data);
      return;
    }
    const rng = this.#host.rng;
    const p = Math.min(1, (l.params.lossPct ?? 0) / 100);
    const b = Math.min(1, (l.params.burstPct ?? 0) / 100);
    if (p > 0) {
      let lost: boolean;
      if (b > 0 && p < 1) {
        lost = l.lastLost ? rng.chance(b) : rng.chance(Math.min(1, (p * (1 - b)) / (1 - p)));
      } else lost = rng.chance(p) || p >= 1;
      l.lastLost = lost;
      if (lost) {
        l.stats.lost++;
        return;
      }
    }
    const now = this.#host.clock.now();
    const limit = l.params.queueBytes ?? DEFAULT_EMULATION_QUEUE_BYTES;
    if (l.queuedBytes + data.length > limit || l.queue.length - l.head >= MAX_EMULATION_QUEUE_PACKETS) {
      l.stats.queueDrops++;
      return;
    }
    let departure = now;
    const kbps = l.params.bandwidthKbps ?? 0;
    if (kbps > 0) {
      // kbit/s is bits per millisecond.
      departure = Math.max(now, l.nextDeparture) + (data.length * 8) / kbps;
      l.nextDeparture = departure;
    }
    let at = departure + (l.params.delayMs ?? 0) + (l.params.jitterMs ?? 0) * rng.next();
    if (at < l.lastDelivery) at = l.lastDelivery;
    l.lastDelivery = at;
    if (at <= now && l.head === l.queue.length) {
      l.stats.passed++;
      this.#deliver(from, data);
      return;
    }
    l.queue.push({ at, data });
    l.queuedBytes += data.length;
    if (l.cancel === undefined) this.#arm(from, l, at);
  }

  /** The learned timer lead (ms): how early the emulator asks to be woken. */
  get lead(): number {
    return this.#lead;
  }

  #arm(from: NodeId, l: LinkState, at: number): void {
    l.wakeAt = at - this.#lead;
    l.cancel = this.#host.schedule(l.wakeAt, () => this.#drain(from, l));
  }

  #drain(from: NodeId, l: LinkState): void {
    l.cancel = undefined;
    const now = this.#host.clock.now();
    // Learn how late this timer woke (bounded, so one stall cannot make the emulation early).
    const late = Math.min(MAX_LEAD_MS, Math.max(0, now - l.wakeAt));
    this.#lead = Math.min(MAX_LEAD_MS, this.#lead + LEAD_GAIN * (late - this.#lead));
    const until = now + this.#lead;
    while (l.head < l.queue.length) {
      const h = l.queue[l.head] as Held;
      if (h.at > until) break;
      l.errorSum += now - h.at;
      l.errorCount++;
      l.queue[l.head] = undefined as unknown as Held;
      l.head++;
      l.queuedBytes -= h.data.length;
      l.stats.passed++;
      this.#deliver(from, h.data);
      if (this.#links.get(from) !== l) return; // cleared from inside a delivery
    }
    if (l.head === l.queue.length) {
      l.queue.length = 0;
      l.head = 0;
    } else {
      if (l.head > 1024 && l.head * 2 > l.queue.length) {
        l.queue = l.queue.slice(l.head);
        l.head = 0;
      }
      this.#arm(from, l, (l.queue[l.head] as Held).at);
    }
  }

  /** Drops every queued packet and every setting. */
  clear(): void {
    for (const l of this.#links.values()) l.cancel?.();
    this.#links.clear();
  }
}
