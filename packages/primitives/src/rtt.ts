/** Bounds for a retransmission timeout, all in ms. */
export interface RtoBounds {
  /** The timeout before the first sample (RFC 6298 (2.1) uses 1 s). */
  readonly initialMs: number;
  /** The floor of every computed timeout. */
  readonly minMs: number;
  /** The ceiling, also after back-off. */
  readonly maxMs: number;
  /** The clock granularity G of RFC 6298 (the least variance term); default 1 ms. */
  readonly granularityMs?: number;
  /** Added to every computed timeout (e.g. the peer's maximum ack delay); default 0. */
  readonly extraMs?: number;
}

const DEFAULT_BOUNDS: RtoBounds = { initialMs: 1000, minMs: 200, maxMs: 60_000 };

/**
 * RFC 6298 round-trip estimation, all in ms: smoothed RTT, RTT variance, the latest and the least
 * sample. The first sample sets SRTT = R and RTTVAR = R/2; later ones use alpha = 1/8, beta = 1/4.
 * Samples that are negative or not finite are ignored (0 is a valid sample on a loopback path).
 *
 * `rto(backoff)` is SRTT + max(G, 4·RTTVAR) + extra — or `initialMs` before the first sample —
 * floored at `minMs`, doubled per consecutive expiry (`backoff`) and capped at `maxMs`.
 */
export class RttEstimator {
  readonly bounds: RtoBounds;
  #srtt: number | undefined;
  #rttvar = 0;
  #latest = 0;
  #min = Number.POSITIVE_INFINITY;
  #samples = 0;

  constructor(bounds: Partial<RtoBounds> = {}) {
    this.bounds = { ...DEFAULT_BOUNDS, ...bounds };
  }

  /** Feeds one RTT sample (ms, >= 0). */
  sample(rtt: number): void {
    if (!(rtt >= 0) || !Number.isFinite(rtt)) return;
    this.#samples++;
    this.#latest = rtt;
    if (rtt < this.#min) this.#min = rtt;
    if (this.#srtt === undefined) {
      this.#srtt = rtt;
      this.#rttvar = rtt / 2;
      return;
    }
    this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - rtt);
    this.#srtt = 0.875 * this.#srtt + 0.125 * rtt;
  }

  /** True once at least one sample arrived. */
  get hasSample(): boolean {
    return this.#srtt !== undefined;
  }
  /** Smoothed RTT in ms, or `fallback` before the first sample. */
  srttOr(fallback: number): number {
    return this.#srtt ?? fallback;
  }
  /** Smoothed RTT in ms; undefined before the first sample. */
  get srtt(): number | undefined {
    return this.#srtt;
  }
  get rttvar(): number {
    return this.#rttvar;
  }
  /** The latest sample (0 before the first). */
  get latest(): number {
    return this.#latest;
  }
  /** The least sample seen (Infinity before the first). */
  get min(): number {
    return this.#min;
  }
  get samples(): number {
    return this.#samples;
  }

  /**
   * The retransmission timeout after `backoff` consecutive expiries (0 = none), with this
   * estimator's bounds or the ones given.
   */
  rto(backoff = 0, bounds: RtoBounds = this.bounds): number {
    const base =
      this.#srtt === undefined
        ? bounds.initialMs
        : this.#srtt + Math.max(4 * this.#rttvar, bounds.granularityMs ?? 1) + (bounds.extraMs ?? 0);
    const floored = Math.max(bounds.minMs, base);
    return Math.min(bounds.maxMs, backoff > 0 ? floored * 2 ** Math.min(backoff, 30) : floored);
  }

  reset(): void {
    this.#srtt = undefined;
    this.#rttvar = 0;
    this.#latest = 0;
    this.#min = Number.POSITIVE_INFINITY;
    this.#samples = 0;
  }
}
