/**
 * The link emulator's sans-IO core: per-direction loss (independent or Gilbert–Elliott), rate
 * (serialisation with a bounded queue), delay and jitter, and a binary heap of pending deliveries.
 * No sockets or clocks here: the caller passes `now` (milliseconds) and performs the sends, so the
 * behaviour is unit-testable and deterministic for a given seed.
 */

/** Gilbert–Elliott two-state loss: the chain moves per packet; each state has its own loss rate. */
export interface GilbertElliott {
  /** Probability of moving from Good to Bad per packet (0..1). */
  pGoodToBad: number;
  /** Probability of moving from Bad to Good per packet (0..1). */
  pBadToGood: number;
  /** Loss probability in Good (0..1); default 0. */
  lossGood?: number;
  /** Loss probability in Bad (0..1); default 1. */
  lossBad?: number;
}

/** Parameters of one direction of an emulated link. */
export interface LinkParams {
  /** One-way delay in ms (default 0). */
  delayMs?: number;
  /** Uniform jitter: each packet gets delay + U(-jitter, +jitter), never below 0 (default 0). */
  jitterMs?: number;
  /** Independent loss in percent (default 0). Ignored when `gilbert` is set. */
  lossPct?: number;
  /** Bursty loss; overrides lossPct. */
  gilbert?: GilbertElliott;
  /** Serialisation rate in Mbit/s (default: unlimited). */
  rateMbit?: number;
  /** Bound of the rate queue in packets; tail drop beyond it (default 1000). */
  queuePackets?: number;
  /** With jitter, let packets overtake each other (default false: delivery order = arrival order). */
  reorder?: boolean;
  /** false = the link drops everything (link cut / partition). Default true. */
  up?: boolean;
}

/** Counters of one direction. */
export interface DirectionStats {
  received: number;
  delivered: number;
  droppedLoss: number;
  droppedQueue: number;
  droppedDown: number;
}

/** A small seeded PRNG (mulberry32); deterministic per seed. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

/** Validates link parameters; returns a list of problems (empty when valid). */
export function checkParams(p: LinkParams): string[] {
  const bad: string[] = [];
  const num = (k: string, v: unknown, lo: number, hi: number) => {
    if (v === undefined) return;
    if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi)
      bad.push(`${k} must be a number in [${lo}, ${hi}]`);
  };
  num("delayMs", p.delayMs, 0, 60_000);
  num("jitterMs", p.jitterMs, 0, 60_000);
  num("lossPct", p.lossPct, 0, 100);
  num("rateMbit", p.rateMbit, 0.001, 100_000);
  num("queuePackets", p.queuePackets, 1, 1_000_000);
  if (p.gilbert !== undefined) {
    num("gilbert.pGoodToBad", p.gilbert.pGoodToBad, 0, 1);
    num("gilbert.pBadToGood", p.gilbert.pBadToGood, 0, 1);
    num("gilbert.lossGood", p.gilbert.lossGood, 0, 1);
    num("gilbert.lossBad", p.gilbert.lossBad, 0, 1);
  }
  return bad;
}

/** One direction of a link: decides, per arriving packet, whether and when it leaves. */
export class Direction {
  params: LinkParams;
  readonly stats: DirectionStats = {
    received: 0,
    delivered: 0,
    droppedLoss: 0,
    droppedQueue: 0,
    droppedDown: 0,
  };
  private readonly rng: Rng;
  private bad = false;
  /** When the serialiser is free again (ms). */
  private busyUntil = 0;
  /** Departure times of packets still in the rate queue (bounded by queuePackets). */
  private readonly queued: number[] = [];
  private qHead = 0;
  private lastDelivery = 0;

  constructor(params: LinkParams, seed: number) {
    this.params = { ...params };
    this.rng = new Rng(seed);
  }

  /** Merges new parameters (fault injection, loss changes at run time). */
  update(p: LinkParams): void {
    this.params = { ...this.params, ...p };
  }

  /** Returns the delivery time for a packet of `size` bytes arriving at `now`, or undefined to drop it. */
  admit(now: number, size: number): number | undefined {
    const p = this.params;
    this.stats.received++;
    if (p.up === false) {
      this.stats.droppedDown++;
      return undefined;
    }
    if (this.lost()) {
      this.stats.droppedLoss++;
      return undefined;
    }
    let depart = now;
    if (p.rateMbit !== undefined && p.rateMbit > 0) {
      while (this.qHead < this.queued.length && (this.queued[this.qHead] as number) <= now) this.qHead++;
      if (this.qHead > 1024 && this.qHead * 2 > this.queued.length) {
        this.queued.splice(0, this.qHead);
        this.qHead = 0;
      }
      if (this.queued.length - this.qHead >= (p.queuePackets ?? 1000)) {
        this.stats.droppedQueue++;
        return undefined;
      }
      const tx = (size * 8) / (p.rateMbit * 1000); // ms
      depart = Math.max(now, this.busyUntil) + tx;
      this.busyUntil = depart;
      this.queued.push(depart);
    }
    let at = depart + (p.delayMs ?? 0);
    const j = p.jitterMs ?? 0;
    if (j > 0) at = Math.max(depart, at + (this.rng.next() * 2 - 1) * j);
    if (p.reorder !== true && at < this.lastDelivery) at = this.lastDelivery;
    this.lastDelivery = at;
    this.stats.delivered++;
    return at;
  }

  private lost(): boolean {
    const p = this.params;
    const g = p.gilbert;
    if (g !== undefined) {
      if (this.bad) {
        if (this.rng.next() < g.pBadToGood) this.bad = false;
      } else if (this.rng.next() < g.pGoodToBad) this.bad = true;
      const loss = this.bad ? (g.lossBad ?? 1) : (g.lossGood ?? 0);
      return loss > 0 && this.rng.next() < loss;
    }
    const pct = p.lossPct ?? 0;
    return pct > 0 && this.rng.next() * 100 < pct;
  }
}

/** A min-heap of timed items, ties broken by insertion order (FIFO). */
export class TimerHeap<T> {
  private readonly at: number[] = [];
  private readonly seq: number[] = [];
  private readonly items: T[] = [];
  private n = 0;
  private counter = 0;
  private readonly capacity: number;
  constructor(capacity = 1_000_000) {
    this.capacity = capacity;
  }

  get size(): number {
    return this.n;
  }
  /** Time of the earliest item, or undefined when empty. */
  peekTime(): number | undefined {
    return this.n === 0 ? undefined : this.at[0];
  }
  /** Adds an item; returns false (and drops it) when the heap is full. */
  push(time: number, item: T): boolean {
    if (this.n >= this.capacity) return false;
    let i = this.n++;
    const s = this.counter++;
    this.at[i] = time;
    this.seq[i] = s;
    this.items[i] = item;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
    return true;
  }
  /** Removes and returns the earliest item. */
  pop(): T | undefined {
    if (this.n === 0) return undefined;
    const top = this.items[0] as T;
    this.n--;
    if (this.n > 0) {
      this.move(this.n, 0);
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < this.n && this.less(l, m)) m = l;
        if (r < this.n && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    (this.items as (T | undefined)[])[this.n] = undefined;
    return top;
  }
  private less(i: number, j: number): boolean {
    const a = this.at[i] as number;
    const b = this.at[j] as number;
    return a < b || (a === b && (this.seq[i] as number) < (this.seq[j] as number));
  }
  private move(from: number, to: number): void {
    this.at[to] = this.at[from] as number;
    this.seq[to] = this.seq[from] as number;
    this.items[to] = this.items[from] as T;
  }
  private swap(i: number, j: number): void {
    const a = this.at[i] as number;
    const s = this.seq[i] as number;
    const it = this.items[i] as T;
    this.move(j, i);
    this.at[j] = a;
    this.seq[j] = s;
    this.items[j] = it;
  }
}
