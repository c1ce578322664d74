/**
 * The N-flow (MulTCP) window of a link (docs/congestion.md), in netsim with the real link cores:
 * k overlay flows on one link get about k NewReno flows' share of a shared drop-tail bottleneck
 * (one TCP flow's share each), where a single-flow link gets one share for all k; on a lossy link
 * without a bottleneck the link carries about k times one flow's rate, and never more than the
 * model of k flows allows; the count follows the flows, is capped, and can be imposed.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { runLossyLink, runSharedBottleneck } from "./support/multcp.ts";

const SEEDS = 3;
const SINGLE = { maxEmulatedFlows: 1 };

describe("N-flow window at a shared drop-tail bottleneck (netsim)", () => {
  const cases: [number, number, number][] = [
    // [overlay flows on the link, NewReno flows, bottleneck bit/s]
    [2, 1, 8e6],
    [2, 2, 8e6],
    [3, 1, 8e6],
    [4, 2, 8e6],
    [8, 2, 32e6],
  ];
  for (const [k, m, bw] of cases) {
    it(`${k} overlay flows on one link and ${m} NewReno flows (${bw / 1e6} Mbit/s, 1 BDP queue): each flow within 0.8–1.3× its fair share, ${SEEDS} seeds`, () => {
      forEachSeed(SEEDS, (seed) => {
        const r = runSharedBottleneck(seed, {
          linkFlows: k,
          renoFlows: m,
          bandwidthBps: bw,
          durationMs: 20_000,
        });
        expect(r.flowCount).toBe(k);
        expect(r.overlayShare).toBeGreaterThanOrEqual(0.8);
        expect(r.overlayShare).toBeLessThanOrEqual(1.3);
        expect(r.renoShare).toBeGreaterThanOrEqual(0.8);
        expect(r.renoShare).toBeLessThanOrEqual(1.3);
        expect(r.jain).toBeGreaterThanOrEqual(0.95);
      });
    });
  }

  it("the single-flow link (maxEmulatedFlows 1) gives 2 overlay flows against 2 NewReno flows only one share between them", () => {
    forEachSeed(SEEDS, (seed) => {
      const one = runSharedBottleneck(seed, {
        linkFlows: 2,
        renoFlows: 2,
        durationMs: 20_000,
        config: SINGLE,
      });
      expect(one.flowCount).toBe(1);
      // One share of three for the link: each overlay flow 1/6 of the total against a fair 1/4.
      expect(one.overlayShare).toBeGreaterThan(0.55);
      expect(one.overlayShare).toBeLessThan(0.8);
      const multi = runSharedBottleneck(seed, { linkFlows: 2, renoFlows: 2, durationMs: 20_000 });
      expect(multi.overlayShare).toBeGreaterThan(one.overlayShare * 1.25);
    });
  });

  it("with jitter on the access links and a 2 BDP queue, still within 0.75–1.35×", () => {
    forEachSeed(SEEDS, (seed) => {
      const r = runSharedBottleneck(seed, {
        linkFlows: 4,
        renoFlows: 2,
        queueBdp: 2,
        accessJitterMs: 2,
        durationMs: 20_000,
      });
      expect(r.overlayShare).toBeGreaterThanOrEqual(0.75);
      expect(r.overlayShare).toBeLessThanOrEqual(1.35);
      expect(r.renoShare).toBeGreaterThanOrEqual(0.75);
      expect(r.renoShare).toBeLessThanOrEqual(1.35);
    });
  });
});

describe("N-flow window on a lossy link (netsim)", () => {
  for (const loss of [0.01, 0.05]) {
    it(`k = 2, 4, 8 flows at ${loss * 100} % loss: the link carries 0.6k–1.2k times one flow's rate, ${SEEDS} seeds`, () => {
      forEachSeed(SEEDS, (seed) => {
        const one = runLossyLink(seed, { flows: 1, loss, durationMs: 10_000 });
        expect(one.flowCount).toBe(1);
        expect(one.bytesPerSec).toBeGreaterThan(0);
        for (const k of [2, 4, 8]) {
          const r = runLossyLink(seed, { flows: k, loss, durationMs: 10_000 });
          expect(r.flowCount).toBe(k);
          const ratio = r.bytesPerSec / one.bytesPerSec;
          expect(ratio).toBeGreaterThanOrEqual(0.6 * k);
          expect(ratio).toBeLessThanOrEqual(1.2 * k);
          // DRR still shares the link equally between the flows.
          expect(Math.min(...r.flowBytesPerSec) / Math.max(...r.flowBytesPerSec)).toBeGreaterThan(0.9);
          // Off, k flows get one flow's rate between them (within the noise of the seeds).
          const off = runLossyLink(seed, { flows: k, loss, durationMs: 10_000, config: SINGLE });
          expect(off.flowCount).toBe(1);
          expect(off.bytesPerSec / one.bytesPerSec).toBeLessThan(1.4);
          expect(r.bytesPerSec).toBeGreaterThan(off.bytesPerSec);
        }
      });
    });
  }

  it("the count follows the flows (up within a period, down three periods after they stop), capped at maxEmulatedFlows", () => {
    // 6 flows; 4 of them stop offering at 4 s (their queued packets drain soon after).
    const r = runLossyLink(1, {
      flows: 6,
      loss: 0.01,
      durationMs: 6000,
      warmupMs: 1000,
      untilMs: [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY, 4000, 4000, 4000, 4000],
    });
    const at = (t: number) => r.flowCounts.find(([u]) => u === t)?.[1];
    expect(at(2000)).toBe(6);
    expect(at(4000)).toBe(6);
    expect(at(7000)).toBe(2);
    // Never above 6, never below 1, and never 6 again after the drop.
    let dropped = false;
    for (const [, c] of r.flowCounts) {
      expect(c).toBeGreaterThanOrEqual(1);
      expect(c).toBeLessThanOrEqual(6);
      if (c === 2) dropped = true;
      if (dropped) expect(c).toBeLessThanOrEqual(2);
    }
    const capped = runLossyLink(1, {
      flows: 6,
      loss: 0.01,
      durationMs: 2000,
      config: { maxEmulatedFlows: 4 },
    });
    expect(capped.flowCount).toBe(4);
    expect(Math.max(...capped.flowCounts.map(([, c]) => c))).toBe(4);
  });

  it("Link.setFlowCount imposes n: one flow then carries about n flows' rate", () => {
    forEachSeed(SEEDS, (seed) => {
      const one = runLossyLink(seed, { flows: 1, loss: 0.01, durationMs: 10_000 });
      const four = runLossyLink(seed, { flows: 1, loss: 0.01, durationMs: 10_000, fixedFlowCount: 4 });
      expect(four.flowCount).toBe(4);
      expect(four.bytesPerSec / one.bytesPerSec).toBeGreaterThan(2.4);
      expect(four.bytesPerSec / one.bytesPerSec).toBeLessThan(4.8);
    });
  });
});
