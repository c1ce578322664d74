/**
 * Link metrics and the integer costs the routing core floods. Every cost is an integer in
 * [1, 0xfffffffe] so that every node sums and compares them identically.
 */

/** Which cost a node advertises for its links (Spines `-w`). */
export const Metric = {
  /** Every link costs 1: fewest hops. */
  Hops: "hops",
  /** One-way latency d = rtt/2 plus a 4 ms per-hop penalty, capped at 300 ms; unit 0.1 ms. */
  Latency: "latency",
  /** 1 - 10000 ln(1 - p), capped at 30,000: sums to roughly -10000 ln(path delivery ratio). */
  Loss: "loss",
  /** Expected latency with one recovery attempt (performance.md section 2), [2, 600] ms; unit 0.1 ms. */
  ExpectedLatency: "explat",
} as const;
export type Metric = (typeof Metric)[keyof typeof Metric];

/** What the link layer measures for one neighbour. */
export interface LinkMeasurement {
  /** Smoothed round-trip time in milliseconds. */
  readonly rttMs: number;
  /** Outgoing loss probability in [0, 1]. */
  readonly loss: number;
}

/** MAX_LATENCY in Spines: the charge for a loss that one retransmission did not repair. */
export const MAX_LATENCY_MS = 600;
/** The repair delay term: one NACK plus one retransmission costs 3d + 10 ms. */
export const RECOVERY_DELTA_MS = 10;

/** Expected latency of a link with one-way delay `d` ms and loss `p` (performance.md section 2), in ms. */
export function expectedLatencyMs(d: number, p: number): number {
  const p2 = p * p;
  const p3 = p2 * p;
  const e = (1 - p) * d + (p - 2 * p2 + p3) * (3 * d + RECOVERY_DELTA_MS) + (2 * p2 - p3) * MAX_LATENCY_MS;
  return Math.min(MAX_LATENCY_MS, Math.max(2, e));
}

/** The cost a metric gives a link that has not been measured yet (its maximum). */
export function unmeasuredCost(metric: Metric): number {
  switch (metric) {
    case Metric.Hops:
      return 1;
    case Metric.Latency:
      return 3000;
    case Metric.Loss:
      return 30000;
    case Metric.ExpectedLatency:
      return 6000;
  }
}

/** The integer cost of a link under `metric`. */
export function linkCost(metric: Metric, m: LinkMeasurement): number {
  const d = m.rttMs / 2;
  const p = Math.min(1, Math.max(0, m.loss));
  switch (metric) {
    case Metric.Hops:
      return 1;
    case Metric.Latency:
      return Math.round(10 * Math.min(Math.max(d, 1) + 4, 300));
    case Metric.Loss:
      return p >= 1 ? 30000 : Math.max(1, Math.min(Math.round(1 - 10000 * Math.log(1 - p)), 30000));
    case Metric.ExpectedLatency:
      return Math.round(10 * expectedLatencyMs(d, p));
  }
}

export function checkMeasurement(m: LinkMeasurement, what: string): void {
  if (typeof m !== "object" || m === null) throw new TypeError(`${what}: metrics must be an object`);
  if (typeof m.rttMs !== "number" || !Number.isFinite(m.rttMs) || m.rttMs < 0) {
    throw new RangeError(`${what}: rttMs must be a finite number >= 0, got ${String(m.rttMs)}`);
  }
  if (typeof m.loss !== "number" || !(m.loss >= 0 && m.loss <= 1)) {
    throw new RangeError(`${what}: loss must be in [0, 1], got ${String(m.loss)}`);
  }
}

/** Hysteresis: a new cost replaces the advertised one only when it differs by this much. */
export function significantChange(
  advertised: number,
  measured: number,
  relative: number,
  absolute: number,
): boolean {
  const diff = Math.abs(measured - advertised);
  return diff >= absolute && diff >= relative * advertised;
}
