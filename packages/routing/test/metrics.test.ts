import { describe, expect, it } from "vitest";
import { expectedLatencyMs, linkCost, Metric, significantChange, unmeasuredCost } from "../src/index.ts";

describe("metrics", () => {
  it("expected latency reproduces the performance.md section 2 table (10 ms link)", () => {
    expect(expectedLatencyMs(10, 0.01)).toBeCloseTo(10.41, 2);
    expect(expectedLatencyMs(10, 0.05)).toBeCloseTo(14.23, 2);
    expect(linkCost(Metric.ExpectedLatency, { rttMs: 20, loss: 0.01 })).toBe(104);
    expect(linkCost(Metric.ExpectedLatency, { rttMs: 20, loss: 0.05 })).toBe(142);
  });

  it("expected latency is clamped to [2, 600] ms", () => {
    expect(expectedLatencyMs(0, 0)).toBe(2);
    expect(expectedLatencyMs(10, 1)).toBe(600);
    expect(linkCost(Metric.ExpectedLatency, { rttMs: 5000, loss: 0 })).toBe(6000);
  });

  it("latency, loss and hop costs follow the Spines formulas", () => {
    expect(linkCost(Metric.Hops, { rttMs: 999, loss: 0.5 })).toBe(1);
    expect(linkCost(Metric.Latency, { rttMs: 20, loss: 0 })).toBe(140); // (10 + 4) ms in 0.1 ms
    expect(linkCost(Metric.Latency, { rttMs: 0, loss: 0 })).toBe(50); // max(d, 1) + 4
    expect(linkCost(Metric.Latency, { rttMs: 10_000, loss: 0 })).toBe(3000);
    expect(linkCost(Metric.Loss, { rttMs: 1, loss: 0 })).toBe(1);
    expect(linkCost(Metric.Loss, { rttMs: 1, loss: 0.01 })).toBe(Math.round(1 - 10000 * Math.log(0.99)));
    expect(linkCost(Metric.Loss, { rttMs: 1, loss: 1 })).toBe(30000);
    for (const m of Object.values(Metric)) {
      expect(unmeasuredCost(m)).toBeGreaterThanOrEqual(linkCost(m, { rttMs: 1, loss: 0 }));
    }
  });

  it("costs are positive integers and monotone in rtt and loss", () => {
    for (const m of Object.values(Metric)) {
      let prev = 0;
      for (let rtt = 0; rtt <= 700; rtt += 7) {
        const c = linkCost(m, { rttMs: rtt, loss: 0.02 });
        expect(Number.isInteger(c) && c >= 1).toBe(true);
        expect(c).toBeGreaterThanOrEqual(prev);
        prev = c;
      }
      prev = 0;
      for (let p = 0; p <= 1; p += 0.01) {
        const c = linkCost(m, { rttMs: 30, loss: p });
        expect(c).toBeGreaterThanOrEqual(prev);
        prev = c;
      }
    }
  });

  it("hysteresis needs both the relative and the absolute change", () => {
    expect(significantChange(100, 105, 0.1, 2)).toBe(false);
    expect(significantChange(100, 111, 0.1, 2)).toBe(true);
    expect(significantChange(100, 89, 0.1, 2)).toBe(true);
    expect(significantChange(10, 11, 0.1, 2)).toBe(false);
    expect(significantChange(10, 12, 0.1, 2)).toBe(true);
  });
});
