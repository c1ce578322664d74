import type { TraceRecord } from "./errors.ts";

/** Event kinds as recorded in the trace (numbers on the hot path, names when decoded). */
export const Kind = {
  send: 1,
  deliver: 2,
  drop: 3,
  timer: 4,
  action: 5,
  crash: 6,
  restart: 7,
  linkDown: 8,
  linkUp: 9,
  partition: 10,
  heal: 11,
  duplicate: 12,
  addNode: 13,
  linkSet: 14,
  stall: 15,
  resume: 16,
} as const;
export type Kind = (typeof Kind)[keyof typeof Kind];

const kindNames: string[] = [];
for (const [k, v] of Object.entries(Kind)) kindNames[v] = k;

/** Why a packet was dropped. */
export const DropCause = {
  loss: 1,
  queue: 2,
  down: 3,
  partition: 4,
  crashed: 5,
  mtu: 6,
  noLink: 7,
} as const;
export type DropCause = (typeof DropCause)[keyof typeof DropCause];
export type DropCauseName = keyof typeof DropCause;

const causeNames: string[] = [];
for (const [k, v] of Object.entries(DropCause)) causeNames[v] = k;

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

/**
 * A bounded ring of the most recent event records (struct-of-arrays, no allocation per event) and
 * a running 32-bit FNV-1a hash over every record ever written, bounded or not. Each record is
 * hashed as the 32-bit words kind, time (two words of its float64), node, peer, info, and for
 * packets up to the first 16 payload bytes.
 */
export class TraceRing {
  readonly capacity: number;
  readonly #kind: Uint8Array;
  readonly #time: Float64Array;
  readonly #node: Uint32Array;
  readonly #peer: Uint32Array;
  readonly #info: Uint32Array;
  #next = 0;
  #count = 0;
  #hash = FNV_OFFSET;
  #records = 0;

  constructor(capacity: number) {
    if (!(Number.isInteger(capacity) && capacity >= 0))
      throw new RangeError(`traceCapacity must be an integer >= 0, got ${capacity}`);
    this.capacity = capacity;
    this.#kind = new Uint8Array(capacity);
    this.#time = new Float64Array(capacity);
    this.#node = new Uint32Array(capacity);
    this.#peer = new Uint32Array(capacity);
    this.#info = new Uint32Array(capacity);
  }

  /** Number of records written since the start (including the ones the ring forgot). */
  get records(): number {
    return this.#records;
  }

  get hash(): number {
    return this.#hash >>> 0;
  }

  record(
    kind: number,
    time: number,
    node: number,
    peer: number,
    info: number,
    data: Uint8Array | null,
  ): void {
    f64[0] = time;
    let h = this.#hash;
    h = Math.imul(h ^ kind, FNV_PRIME);
    h = Math.imul(h ^ (u32[0] as number), FNV_PRIME);
    h = Math.imul(h ^ (u32[1] as number), FNV_PRIME);
    h = Math.imul(h ^ node, FNV_PRIME);
    h = Math.imul(h ^ peer, FNV_PRIME);
    h = Math.imul(h ^ info, FNV_PRIME);
    if (data !== null) {
      const n = Math.min(data.length, 16);
      for (let i = 0; i < n; i++) h = Math.imul(h ^ (data[i] as number), FNV_PRIME);
    }
    this.#hash = h;
    this.#records++;
    const cap = this.capacity;
    if (cap === 0) return;
    const i = this.#next;
    this.#kind[i] = kind;
    this.#time[i] = time;
    this.#node[i] = node;
    this.#peer[i] = peer;
    this.#info[i] = info;
    this.#next = i + 1 === cap ? 0 : i + 1;
    if (this.#count < cap) this.#count++;
  }

  /** The last `max` records (all the ring holds by default), oldest first. */
  decode(max = this.capacity): TraceRecord[] {
    const n = Math.min(max, this.#count);
    const out: TraceRecord[] = [];
    const cap = this.capacity;
    let i = (this.#next - n + cap) % (cap || 1);
    for (let k = 0; k < n; k++) {
      const kind = this.#kind[i] as number;
      const info = this.#info[i] as number;
      out.push({
        time: this.#time[i] as number,
        kind: kindNames[kind] ?? `kind${kind}`,
        node: this.#node[i] as number,
        peer: this.#peer[i] as number,
        info: kind === Kind.drop ? (causeNames[info] ?? info) : info,
      });
      i = i + 1 === cap ? 0 : i + 1;
    }
    return out;
  }
}

export function causeName(c: number): DropCauseName {
  return causeNames[c] as DropCauseName;
}
