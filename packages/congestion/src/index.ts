/**
 * @packageDocumentation
 * TCP-fair congestion control (NewReno with an N-flow MulTCP mode, CUBIC), pacing, token-bucket
 * caps, deficit-round-robin flow scheduling and active-flow counting, sans-IO. Everything here is a
 * plain state machine: inputs carry `now` in ms, nothing reads a clock or arms a timer.
 * `@spines-ts/link-arq` drives these per overlay link; the design is in docs/links.md and
 * docs/congestion.md.
 */
export { Bbr, type BbrOptions } from "./bbr.ts";
export {
  type CongestionConfig,
  type CongestionController,
  Cubic,
  type CubicOptions,
  createController,
  LossEventRate,
  MAX_FLOW_COUNT,
  NewReno,
  RateCapped,
  type WindowOptions,
} from "./controller.ts";
export { type DrrOptions, DrrRefusal, DrrScheduler, type FlowKey } from "./drr.ts";
export { FlowCounter, type FlowCounterOptions } from "./flow-count.ts";
export { TokenBucket } from "./token-bucket.ts";

/** Jain's fairness index (Σx)² / (n·Σx²) of non-negative shares; 1 when all are equal. */
export function jainIndex(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("jainIndex: empty sample");
  let s = 0;
  let s2 = 0;
  for (const x of xs) {
    if (!(x >= 0)) throw new RangeError(`jainIndex: shares must be >= 0, got ${x}`);
    s += x;
    s2 += x * x;
  }
  return s2 === 0 ? 1 : (s * s) / (xs.length * s2);
}

/** Mathis et al.: the steady-state throughput of a loss-based AIMD flow, bytes per ms: (mss/rtt)·√(3/2)/√p. */
export function mathisRate(mssBytes: number, rttMs: number, loss: number): number {
  if (!(loss > 0)) return Number.POSITIVE_INFINITY;
  return ((mssBytes / rttMs) * Math.sqrt(1.5)) / Math.sqrt(loss);
}
