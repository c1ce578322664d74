/**
 * A token bucket in bytes: `rate` bytes per ms, at most `burst` bytes saved up. Used for the optional
 * per-link rate cap and, with a rate derived from cwnd/SRTT, as the pacer. Time is passed in (ms).
 */
export class TokenBucket {
  #rate: number;
  #burst: number;
  #tokens: number;
  #last: number;

  /** @param rateBytesPerMs refill rate (> 0; Infinity means unlimited) @param burstBytes capacity (> 0) */
  constructor(rateBytesPerMs: number, burstBytes: number, now = 0) {
    TokenBucket.#check(rateBytesPerMs, burstBytes);
    this.#rate = rateBytesPerMs;
    this.#burst = burstBytes;
    this.#tokens = burstBytes;
    this.#last = now;
  }

  static #check(rate: number, burst: number): void {
    if (typeof rate !== "number" || !(rate > 0))
      throw new RangeError(`TokenBucket: rate must be > 0, got ${rate}`);
    if (typeof burst !== "number" || !(burst > 0) || !Number.isFinite(burst))
      throw new RangeError(`TokenBucket: burst must be a finite number > 0, got ${burst}`);
  }

  get rate(): number {
    return this.#rate;
  }
  get burst(): number {
    return this.#burst;
  }

  /** Changes rate and capacity, keeping the tokens earned so far (capped at the new burst). */
  configure(rateBytesPerMs: number, burstBytes: number, now: number): void {
    TokenBucket.#check(rateBytesPerMs, burstBytes);
    this.#refill(now);
    this.#rate = rateBytesPerMs;
    this.#burst = burstBytes;
    if (this.#tokens > burstBytes) this.#tokens = burstBytes;
  }

  #refill(now: number): void {
    if (now > this.#last) {
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) * this.#rate);
      this.#last = now;
    }
  }

  /** Tokens available at `now`. */
  available(now: number): number {
    if (this.#rate === Number.POSITIVE_INFINITY) return Number.POSITIVE_INFINITY;
    this.#refill(now);
    return this.#tokens;
  }

  /**
   * Whether `bytes` may go now. A packet larger than the burst may go when the bucket is full
   * (the balance then goes negative), so a bucket never blocks forever.
   */
  canSpend(now: number, bytes: number): boolean {
    if (this.#rate === Number.POSITIVE_INFINITY) return true;
    this.#refill(now);
    return this.#tokens >= Math.min(bytes, this.#burst) - 1e-6;
  }

  /** Takes `bytes` (the balance may go negative, which delays what follows). */
  spend(now: number, bytes: number): void {
    if (this.#rate === Number.POSITIVE_INFINITY) return;
    this.#refill(now);
    this.#tokens -= bytes;
  }

  /** The earliest time `bytes` can be spent (now if it can already). */
  nextTime(now: number, bytes: number): number {
    if (this.#rate === Number.POSITIVE_INFINITY) return now;
    this.#refill(now);
    const need = Math.min(bytes, this.#burst) - 1e-6 - this.#tokens;
    if (need <= 0) return now;
    // Strictly later than now, and late enough that the refill covers the need despite rounding.
    const t = now + need / this.#rate + 1e-9;
    return t > now ? t : now + Math.max(1e-9, Math.abs(now) * 1e-15);
  }
}
