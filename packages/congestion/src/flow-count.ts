import type { FlowKey } from "./drr.ts";

export interface FlowCounterOptions {
  /** Largest count reported (the N of an N-flow window is capped here). Default 16. */
  readonly max?: number;
  /** Length of one measurement period, ms. Default 500. */
  readonly periodMs?: number;
  /** Periods in a row with a lower measurement before the count goes down. Default 3. */
  readonly downPeriods?: number;
  /**
   * Flows tracked per period; the bytes of further flows are summed as one flow (which can only
   * lower the count). Default 1,024.
   */
  readonly maxTracked?: number;
}

function intArg(name: string, v: number | undefined, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`FlowCounter: ${name} must be an integer in [${min}, ${max}], got ${String(v)}`);
  return v;
}

/** The overflow bucket's key (never a caller's key: callers' keys are strings or numbers). */
const OTHER: unique symbol = Symbol("other flows");

/**
 * Counts the flows actively sharing a link, for an N-flow (MulTCP) window: the link records every
 * new packet it sends (`record`), and at the end of each period the count is the effective number
 * of flows of that period's bytes, (Σb)² / Σb² (the inverse Simpson index), rounded and capped at
 * `max`. k flows with equal shares (what DRR gives backlogged flows) count k; a flow carrying a
 * small share (control traffic, a slow application-limited flow) counts for much less than one.
 *
 * Hysteresis: the count goes up at the end of the first period that measures more, and down only
 * after `downPeriods` periods in a row measured less (to the largest of those measurements). After
 * `downPeriods` periods with nothing sent at all the count starts again from 1 (the flows it
 * counted are presumably gone; new ones are counted within a period). Sans-IO: `now` comes with
 * every input.
 */
export class FlowCounter {
  readonly max: number;
  readonly periodMs: number;
  readonly downPeriods: number;
  readonly maxTracked: number;
  readonly #bytes = new Map<FlowKey | typeof OTHER, number>();
  #periodStart: number | undefined;
  #lastAt = Number.NEGATIVE_INFINITY;
  #count = 1;
  #below = 0;
  #belowMax = 1;
  #lastMeasured: number | undefined;

  constructor(o: FlowCounterOptions = {}) {
    this.max = intArg("max", o.max, 16, 1, 256);
    this.downPeriods = intArg("downPeriods", o.downPeriods, 3, 1, 1000);
    this.maxTracked = intArg("maxTracked", o.maxTracked, 1024, 1, 1 << 20);
    const p = o.periodMs ?? 500;
    if (typeof p !== "number" || !Number.isFinite(p) || p <= 0)
      throw new RangeError(`FlowCounter: periodMs must be a finite number > 0, got ${String(p)}`);
    this.periodMs = p;
  }

  /** The current count, 1 to `max`. */
  get count(): number {
    return this.#count;
  }
  /** The unrounded measurement of the last closed period (undefined before the first). */
  get lastMeasured(): number | undefined {
    return this.#lastMeasured;
  }
  /** Flows tracked in the current period. */
  get tracked(): number {
    return this.#bytes.size;
  }

  /** One packet of `bytes` of `flow` sent at `now`. Returns true when the count changed. */
  record(now: number, flow: FlowKey, bytes: number): boolean {
    if (!(bytes >= 0)) throw new RangeError(`FlowCounter.record: bytes must be >= 0, got ${bytes}`);
    const before = this.#count;
    if (now - this.#lastAt >= this.downPeriods * this.periodMs) {
      // Idle for as long as a count takes to go down: start afresh.
      this.#bytes.clear();
      this.#periodStart = undefined;
      this.#count = 1;
      this.#below = 0;
      this.#belowMax = 1;
    }
    this.#lastAt = now;
    if (this.#periodStart === undefined) this.#periodStart = now;
    else if (now - this.#periodStart >= this.periodMs) {
      this.#close();
      this.#periodStart = now;
    }
    const key: FlowKey | typeof OTHER =
      this.#bytes.has(flow) || this.#bytes.size < this.maxTracked - 1 ? flow : OTHER;
    this.#bytes.set(key, (this.#bytes.get(key) ?? 0) + bytes);
    return this.#count !== before;
  }

  #close(): void {
    let s = 0;
    let s2 = 0;
    for (const b of this.#bytes.values()) {
      s += b;
      s2 += b * b;
    }
    this.#bytes.clear();
    if (s2 === 0) return;
    const eff = (s * s) / s2;
    this.#lastMeasured = eff;
    const m = Math.min(this.max, Math.max(1, Math.round(eff)));
    if (m > this.#count) {
      this.#count = m;
      this.#below = 0;
      this.#belowMax = 1;
    } else if (m < this.#count) {
      this.#belowMax = this.#below === 0 ? m : Math.max(this.#belowMax, m);
      this.#below++;
      if (this.#below >= this.downPeriods) {
        this.#count = this.#belowMax;
        this.#below = 0;
        this.#belowMax = 1;
      }
    } else {
      this.#below = 0;
      this.#belowMax = 1;
    }
  }

  /** Forgets everything: the count is 1 again. */
  reset(): void {
    this.#bytes.clear();
    this.#periodStart = undefined;
    this.#lastAt = Number.NEGATIVE_INFINITY;
    this.#count = 1;
    this.#below = 0;
    this.#belowMax = 1;
    this.#lastMeasured = undefined;
  }
}
