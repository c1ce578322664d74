/**
 * The in-daemon packet trace (issue 10): while on, the daemon stamps each packet at the stages it
 * passes into a bounded ring buffer, and the control command `trace` reads it back, so a
 * benchmark can tell where a message's latency went (kernel, emulated link, daemon processing,
 * link recovery, session hand-over to the client) instead of guessing from arrival patterns.
 *
 * A packet is named by the last four bytes of what the stage sees (a big-endian u32) and its
 * length: user data rides at the end of every data frame and session payload, so a probe that ends
 * each message with its sequence number is followed through every hop, retransmission included.
 * Times are CLOCK_MONOTONIC milliseconds (`process.hrtime`), the same in every process of the
 * machine, so the stamps of five daemons and the probe line up without clock sync.
 *
 * Off (the default) it costs one branch per stage. On, one stamp is a few typed-array stores.
 */
import { performance } from "node:perf_hooks";

/** Where a stamp was taken. */
export const TraceStage = {
  /** A datagram handed to the daemon by the UDP socket. */
  Rx: 0,
  /** Released by the receive-side link emulation (after its delay), into the overlay. */
  Emu: 1,
  /** An overlay packet for this node handed to the session endpoint. */
  Local: 2,
  /** A frame handed to the UDP socket. */
  Tx: 3,
  /** Bytes handed to a client (stream data or a datagram). */
  Client: 4,
  /** Bytes a client handed to the daemon (stream write or datagram send). */
  FromClient: 5,
} as const;
export type TraceStage = (typeof TraceStage)[keyof typeof TraceStage];

export const TRACE_STAGE_NAMES = ["rx", "emu", "local", "tx", "client", "fromClient"] as const;

export const DEFAULT_TRACE_CAPACITY = 1 << 16;
export const MAX_TRACE_CAPACITY = 1 << 20;

/** One dump: parallel arrays, oldest first. */
export interface TraceDump {
  /** CLOCK_MONOTONIC ms of each stamp. */
  readonly t: number[];
  readonly stage: number[];
  /** The u32 at the end of the bytes. */
  readonly key: number[];
  readonly len: number[];
  /** Stamps overwritten because the ring was full. */
  readonly overwritten: number;
}

/** The offset from `performance.now()` to CLOCK_MONOTONIC ms (constant for the process). */
export function monotonicOffsetMs(): number {
  return Number(process.hrtime.bigint()) / 1e6 - performance.now();
}

export class PacketTrace {
  readonly capacity: number;
  readonly #t: Float64Array;
  readonly #stage: Uint8Array;
  readonly #key: Uint32Array;
  readonly #len: Uint32Array;
  readonly #offset = monotonicOffsetMs();
  #next = 0;
  #count = 0;
  #overwritten = 0;

  constructor(capacity = DEFAULT_TRACE_CAPACITY) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_TRACE_CAPACITY)
      throw new RangeError(`trace capacity must be an integer in [1, ${MAX_TRACE_CAPACITY}]`);
    this.capacity = capacity;
    this.#t = new Float64Array(capacity);
    this.#stage = new Uint8Array(capacity);
    this.#key = new Uint32Array(capacity);
    this.#len = new Uint32Array(capacity);
  }

  get size(): number {
    return this.#count;
  }

  /** Stamps `data` at `stage` now. */
  stamp(stage: TraceStage, data: Uint8Array): void {
    const n = data.length;
    if (n < 4) return;
    const i = this.#next;
    this.#t[i] = performance.now() + this.#offset;
    this.#stage[i] = stage;
    this.#key[i] =
      ((data[n - 4] as number) * 0x1000000 +
        (((data[n - 3] as number) << 16) | ((data[n - 2] as number) << 8) | (data[n - 1] as number))) >>>
      0;
    this.#len[i] = n;
    this.#next = i + 1 === this.capacity ? 0 : i + 1;
    if (this.#count < this.capacity) this.#count++;
    else this.#overwritten++;
  }

  dump(): TraceDump {
    const t: number[] = [];
    const stage: number[] = [];
    const key: number[] = [];
    const len: number[] = [];
    const start = (this.#next - this.#count + this.capacity) % this.capacity;
    for (let k = 0; k < this.#count; k++) {
      const i = (start + k) % this.capacity;
      t.push(Math.round((this.#t[i] as number) * 1000) / 1000);
      stage.push(this.#stage[i] as number);
      key.push(this.#key[i] as number);
      len.push(this.#len[i] as number);
    }
    return { t, stage, key, len, overwritten: this.#overwritten };
  }

  clear(): void {
    this.#next = 0;
    this.#count = 0;
    this.#overwritten = 0;
  }
}
