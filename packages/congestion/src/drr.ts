import { Deque } from "@spines-ts/primitives";

/** A flow's identity on a link: any string or number (e.g. "src:port>dst:port"). */
export type FlowKey = string | number;

export interface DrrOptions {
  /** Bytes a flow may send per round. Default 1,500 (about one packet). */
  readonly quantum?: number;
  /** Most packets queued across all flows. Default 4,096. */
  readonly maxPackets?: number;
  /** Most bytes queued across all flows. Default 4 MiB. */
  readonly maxBytes?: number;
  /** Most packets one flow may queue. Default maxPackets / 4 (at least 1). */
  readonly maxPacketsPerFlow?: number;
  /** Most flows with queued packets at once. Default 1,024. */
  readonly maxFlows?: number;
}

/** A queued packet; `dequeue` hands this same record out (no second object per packet). */
interface Entry<T> {
  readonly key: FlowKey;
  readonly item: T;
  readonly bytes: number;
}

interface Flow<T> {
  key: FlowKey;
  readonly items: Deque<Entry<T>>;
  bytes: number;
  deficit: number;
}

/**
 * Flow records kept for reuse after their flow's queue emptied. A link carrying one bulk flow
 * empties and refills its queue with nearly every packet, and a fresh record and ring buffer each
 * time was a transit daemon's allocation per packet (issue 10). Bounded: at most this many idle
 * flows stay in the map under their key (so a flow that comes back costs no Map delete and set:
 * a Map emptied and refilled rehashes, about 150 bytes per packet), and as many records spare.
 */
const SPARE_FLOWS = 4;

/** Why `enqueue` refused a packet. */
export const DrrRefusal = {
  TotalPackets: "total-packets",
  TotalBytes: "total-bytes",
  FlowPackets: "flow-packets",
  Flows: "flows",
} as const;
export type DrrRefusal = (typeof DrrRefusal)[keyof typeof DrrRefusal];

function posInt(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < 1)
    throw new RangeError(`DrrScheduler: ${name} must be an integer >= 1, got ${v}`);
  return v;
}

/**
 * Deficit round robin (Shreedhar & Varghese, 1995) across the flows sharing a link: every backlogged
 * flow gets the same byte share whatever its packet sizes, so no flow can starve another. Every
 * queue is bounded: total packets and bytes, packets per flow, and number of flows.
 */
export class DrrScheduler<T> {
  readonly quantum: number;
  readonly maxPackets: number;
  readonly maxBytes: number;
  readonly maxPacketsPerFlow: number;
  readonly maxFlows: number;
  readonly #flows = new Map<FlowKey, Flow<T>>();
  readonly #active = new Deque<Flow<T>>();
  readonly #spare: Flow<T>[] = [];
  /**
   * Flows whose queue emptied, still in the map under their key, oldest first: the first `#nIdle`
   * slots (a fixed array: one whose length goes to 0 and back reallocates its storage).
   */
  readonly #idle: (Flow<T> | undefined)[] = new Array<Flow<T> | undefined>(SPARE_FLOWS).fill(undefined);
  #nIdle = 0;
  /** Flows with queued packets (the map's size less the idle ones). */
  #busy = 0;
  #packets = 0;
  #bytes = 0;

  constructor(o: DrrOptions = {}) {
    this.quantum = posInt("quantum", o.quantum, 1500);
    this.maxPackets = posInt("maxPackets", o.maxPackets, 4096);
    this.maxBytes = posInt("maxBytes", o.maxBytes, 4 * 1024 * 1024);
    this.maxPacketsPerFlow = posInt(
      "maxPacketsPerFlow",
      o.maxPacketsPerFlow,
      Math.max(1, Math.floor(this.maxPackets / 4)),
    );
    this.maxFlows = posInt("maxFlows", o.maxFlows, 1024);
  }

  get packets(): number {
    return this.#packets;
  }
  get bytes(): number {
    return this.#bytes;
  }
  /** Flows with at least one queued packet. */
  get flows(): number {
    return this.#busy;
  }
  flowPackets(key: FlowKey): number {
    return this.#flows.get(key)?.items.length ?? 0;
  }

  /** Why a packet of `bytes` for `key` would be refused now, or undefined if it would be accepted. */
  refusal(key: FlowKey, bytes: number): DrrRefusal | undefined {
    if (this.#packets >= this.maxPackets) return DrrRefusal.TotalPackets;
    if (this.#bytes + bytes > this.maxBytes) return DrrRefusal.TotalBytes;
    const f = this.#flows.get(key);
    if (f === undefined || f.items.length === 0)
      return this.#busy >= this.maxFlows ? DrrRefusal.Flows : undefined;
    return f.items.length >= this.maxPacketsPerFlow ? DrrRefusal.FlowPackets : undefined;
  }

  /** Queues a packet; returns false (and queues nothing) when a bound would be exceeded. */
  enqueue(key: FlowKey, item: T, bytes: number): boolean {
    if (!(bytes >= 0)) throw new RangeError(`DrrScheduler.enqueue: bytes must be >= 0, got ${bytes}`);
    if (this.refusal(key, bytes) !== undefined) return false;
    let f = this.#flows.get(key);
    if (f === undefined) {
      f = this.#spare.pop();
      if (f === undefined) f = { key, items: new Deque(), bytes: 0, deficit: 0 };
      else f.key = key;
      this.#flows.set(key, f);
      this.#busy++;
      this.#active.push(f);
    } else if (f.items.length === 0) {
      // An idle flow comes back (a flow is in the round robin exactly while it has packets).
      this.#unidle(f);
      this.#busy++;
      this.#active.push(f);
    }
    f.items.push({ key, item, bytes });
    f.bytes += bytes;
    this.#packets++;
    this.#bytes += bytes;
    return true;
  }

  /** Size of the packet `dequeue` would return next, without taking it. */
  peekBytes(): number | undefined {
    this.#settle();
    return this.#active.peek()?.items.peek()?.bytes;
  }

  /** Moves the round robin until the head flow may send its head packet. */
  #settle(): void {
    for (;;) {
      const f = this.#active.peek();
      if (f === undefined) return;
      const head = f.items.peek();
      if (head === undefined) {
        this.#active.shift();
        this.#retire(f);
        continue;
      }
      if (f.deficit >= head.bytes) return;
      f.deficit += this.quantum;
      if (f.deficit >= head.bytes) return;
      this.#active.shift();
      this.#active.push(f);
    }
  }

  /**
   * A flow whose queue emptied stays in the map, idle, with a fresh deficit; the oldest idle one
   * leaves it when there are too many (its record kept for reuse, a few at most).
   */
  #retire(f: Flow<T>): void {
    this.#busy--;
    f.bytes = 0;
    f.deficit = 0;
    const idle = this.#idle;
    if (this.#nIdle >= SPARE_FLOWS) {
      const old = idle[0] as Flow<T>;
      this.#remove(0);
      this.#flows.delete(old.key);
      if (this.#spare.length < SPARE_FLOWS) this.#spare.push(old);
    }
    idle[this.#nIdle++] = f;
  }

  #unidle(f: Flow<T>): void {
    for (let i = 0; i < this.#nIdle; i++) {
      if (this.#idle[i] === f) {
        this.#remove(i);
        return;
      }
    }
  }

  /** Removes idle slot `i`, keeping the order of the rest. */
  #remove(i: number): void {
    const idle = this.#idle;
    for (let j = i + 1; j < this.#nIdle; j++) idle[j - 1] = idle[j];
    idle[--this.#nIdle] = undefined;
  }

  /** Takes the next packet in DRR order. */
  dequeue(): { readonly key: FlowKey; readonly item: T; readonly bytes: number } | undefined {
    this.#settle();
    const f = this.#active.peek();
    if (f === undefined) return undefined;
    const head = f.items.shift();
    if (head === undefined) return undefined;
    f.deficit -= head.bytes;
    f.bytes -= head.bytes;
    this.#packets--;
    this.#bytes -= head.bytes;
    if (f.items.length === 0) {
      this.#active.shift();
      this.#retire(f);
    } else if (f.deficit < (f.items.peek()?.bytes ?? 0)) {
      // Its turn is over: the rest of its deficit carries to the next round.
      this.#active.shift();
      this.#active.push(f);
    }
    return head;
  }

  /** Drops every queued packet, calling `onDrop` for each. */
  clear(onDrop?: (key: FlowKey, item: T) => void): void {
    if (onDrop) for (const f of this.#flows.values()) for (const e of f.items) onDrop(f.key, e.item);
    this.#flows.clear();
    this.#active.clear();
    this.#idle.fill(undefined);
    this.#nIdle = 0;
    this.#busy = 0;
    this.#packets = 0;
    this.#bytes = 0;
  }
}
