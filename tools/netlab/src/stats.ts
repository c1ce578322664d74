/** Latency statistics for probes and benchmarks (pure). */

export interface LatencySummary {
  /** Messages received. */
  delivered: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Standard deviation of the one-way latency. */
  sdMs: number;
  /** RFC 3550 §6.4.1 interarrival jitter (J += (|D| − J)/16 over consecutive arrivals), at the end of the run. */
  rfc3550JitterMs: number;
}

/**
 * Summarises one-way latencies given in arrival order. Percentiles are the smallest sample whose rank
 * reaches the level (the sorted sample at index floor(q·n)), as in the latency model.
 */
export function summarize(latenciesInArrivalOrder: readonly number[]): LatencySummary {
  const n = latenciesInArrivalOrder.length;
  if (n === 0) {
    const nan = Number.NaN;
    return {
      delivered: 0,
      meanMs: nan,
      p50Ms: nan,
      p99Ms: nan,
      p999Ms: nan,
      maxMs: nan,
      sdMs: nan,
      rfc3550JitterMs: nan,
    };
  }
  let j = 0;
  for (let i = 1; i < n; i++) {
    const d = Math.abs((latenciesInArrivalOrder[i] as number) - (latenciesInArrivalOrder[i - 1] as number));
    j += (d - j) / 16;
  }
  const s = [...latenciesInArrivalOrder].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  const q = (p: number) => s[Math.min(n - 1, Math.floor(p * n))] as number;
  return {
    delivered: n,
    meanMs: mean,
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    p999Ms: q(0.999),
    maxMs: s[n - 1] as number,
    sdMs: sd,
    rfc3550JitterMs: j,
  };
}
