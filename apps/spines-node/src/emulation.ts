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
}

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
 */
export class LinkEmulator {
  readonly #host: EmulatorHost;
  readonly #deliver: (from: NodeId, data: Uint8Array) => void;
  readonly #links = new Map<NodeId, LinkState>();

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
      stats: { passed: 0, lost: 0, queueDrops: 0, queuedPackets: 0, queuedBytes: 0 },
    });
  }

  get(from: NodeId): EmulationParams | undefined {
    return this.#links.get(from)?.params;
  }

  stats(from: NodeId): EmulationStats | undefined {
    const l = this.#links.get(from);
    if (l === undefined) return undefined;
    return { ...l.stats, queuedPackets: l.queue.length - l.head, queuedBytes: l.queuedBytes };
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
    if (l.cancel === undefined) l.cancel = this.#host.schedule(at, () => this.#drain(from, l));
  }

  #drain(from: NodeId, l: LinkState): void {
    l.cancel = undefined;
    const now = this.#host.clock.now();
    while (l.head < l.queue.length) {
      const h = l.queue[l.head] as Held;
      if (h.at > now) break;
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
      l.cancel = this.#host.schedule((l.queue[l.head] as Held).at, () => this.#drain(from, l));
    }
  }

  /** Drops every queued packet and every setting. */
  clear(): void {
    for (const l of this.#links.values()) l.cancel?.();
    this.#links.clear();
  }
}
