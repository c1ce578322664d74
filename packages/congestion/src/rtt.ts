/**
 * RFC 6298 round-trip estimation: smoothed RTT, RTT variance, latest and minimum sample, all in ms.
 * The first sample sets SRTT = R and RTTVAR = R/2; later ones use alpha = 1/8, beta = 1/4.
 */
export class RttEstimator {
  #srtt: number | undefined;
  #rttvar = 0;
  #latest = 0;
  #min = Number.POSITIVE_INFINITY;
  #samples = 0;

  /** Feeds one RTT sample (ms, > 0; non-positive or non-finite samples are ignored). */
  sample(rtt: number): void {
    if (!(rtt > 0) || !Number.isFinite(rtt)) return;
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
  get srtt(): number | undefined {
    return this.#srtt;
  }
  get rttvar(): number {
    return this.#rttvar;
  }
  get latest(): number {
    return this.#latest;
  }
  get min(): number {
    return this.#min;
  }
  get samples(): number {
    return this.#samples;
  }

  /**
   * The retransmission timeout: SRTT + max(4·RTTVAR, granularity) + extra, clamped to
   * [minMs, maxMs]; `initialMs` before the first sample.
   */
  rto(opts: {
    minMs: number;
    maxMs: number;
    initialMs: number;
    granularityMs?: number;
    extraMs?: number;
  }): number {
    if (this.#srtt === undefined) return Math.min(opts.maxMs, Math.max(opts.minMs, opts.initialMs));
    const v = this.#srtt + Math.max(4 * this.#rttvar, opts.granularityMs ?? 1) + (opts.extraMs ?? 0);
    return Math.min(opts.maxMs, Math.max(opts.minMs, v));
  }

  reset(): void {
    this.#srtt = undefined;
    this.#rttvar = 0;
    this.#latest = 0;
    this.#min = Number.POSITIVE_INFINITY;
    this.#samples = 0;
  }
}
