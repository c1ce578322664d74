/**
 * The reliable channel in its corners (netsim, invariants after every event; see
 * test/support/sweeps.ts): sequence numbers starting next to the 2^32 wrap, small receive windows
 * filled and wrapped thousands of times, one-way link failures, whole-process stalls, and a
 * planted bug (the receive bitmap never cleared) that these sweeps must catch. A failing seed is
 * named in the error and replays alone with NETSIM_SEED=<seed>.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { afterAll, describe, expect, it } from "vitest";
import {
  BITMAP_CLEAR_IN_ORDER,
  BITMAP_CLEAR_RANGE,
  buildMutant,
  type Mutation,
  removeMutants,
} from "./support/mutant.ts";
import {
  isnNearWrap,
  type LinkImpl,
  runSweepSeed,
  type SweepOptions,
  type SweepResult,
  sweepParams,
  TWO32,
} from "./support/sweeps.ts";

/** A sweep's options for one seed, drawn from the seed. */
type Plan = (seed: number, rng: Rng) => SweepOptions;

function sweep(seeds: number, startSeed: number, plan: Plan, impl?: LinkImpl): SweepResult[] {
  const out: SweepResult[] = [];
  forEachSeed(seeds, (seed) => out.push(runSweepSeed(seed, plan(seed, new Rng(seed)), impl)), { startSeed });
  return out;
}

const sum = (rs: SweepResult[], f: (r: SweepResult) => number): number => rs.reduce((a, r) => a + f(r), 0);

describe("sequence numbers across the 2^32 wrap, windows filled and wrapped (netsim)", () => {
  for (const [window, packets, seeds] of [
    [16, 20_000, 3],
    [32, 10_000, 3],
    [64, 10_000, 3],
  ] as const) {
    it(`window ${window}: ${packets.toLocaleString("en")} packets each way from an ISN just below 2^32, loss ≤ 5 %, ${seeds} seeds`, () => {
      const rs = sweep(seeds, 910_000 + window, (_s, rng) => ({
        packets,
        window,
        isn: isnNearWrap(rng, window),
        params: sweepParams(rng, 0.05),
      }));
      for (const r of rs) {
        expect(r.delivered).toBe(2 * packets);
        expect(r.wrapped).toBe(true);
        // The bitmap ring went round (packets / window) times in each direction.
        expect(r.windowTurns).toBeGreaterThanOrEqual(2 * Math.floor((packets - 1) / window) - 2);
      }
      expect(sum(rs, (r) => r.retransmitted)).toBeGreaterThan(0);
    });
  }

  it("tiny windows (2, 4, 8 packets): 2,000 packets each way across the wrap, loss ≤ 10 %, 9 seeds", () => {
    const rs = sweep(9, 920_000, (seed, rng) => {
      const window = [2, 4, 8][seed % 3] as number;
      return { packets: 2000, window, isn: isnNearWrap(rng, window), params: sweepParams(rng, 0.1) };
    });
    for (const r of rs) {
      expect(r.delivered).toBe(4000);
      expect(r.wrapped).toBe(true);
    }
  });

  it("the default ISN differs per direction and per pair of lives, spread over the 32-bit space; 10 seeds", () => {
    const isns = sweep(10, 930_000, (_s, rng) => ({
      packets: 3000,
      window: 16,
      params: sweepParams(rng, 0.05),
    })).flatMap((r) => {
      expect(r.delivered).toBe(6000);
      return r.isns;
    });
    expect(new Set(isns).size).toBe(20);
    expect(Math.min(...isns)).toBeLessThan(2 ** 30);
    expect(Math.max(...isns)).toBeGreaterThan(3 * 2 ** 30);
    expect(isns.every((x) => Number.isInteger(x) && x >= 0 && x < TWO32)).toBe(true);
  });

  it("a configured ISN is range-checked", async () => {
    const { resolveLinkConfig } = await import("../src/index.ts");
    expect(resolveLinkConfig({ initialSequence: TWO32 - 1 }).initialSequence).toBe(TWO32 - 1);
    expect(() => resolveLinkConfig({ initialSequence: TWO32 })).toThrow(/initialSequence/);
    expect(() => resolveLinkConfig({ initialSequence: -1 })).toThrow(/initialSequence/);
    expect(() => resolveLinkConfig({ initialSequence: 1.5 })).toThrow(/initialSequence/);
  });
});

describe("one-way link failures and process stalls (netsim)", () => {
  it("loss 100 % in one direction for 0.3–3 s (3 outages a run), then healed: exactly once, in bounds, no stall; 20 seeds", () => {
    const rs = sweep(20, 940_000, (seed, rng) => {
      const window = seed % 2 === 0 ? 16 : 32;
      return {
        packets: 3000,
        window,
        isn: isnNearWrap(rng, window),
        params: sweepParams(rng, 0.03),
        oneWay: { count: 3, minMs: 300, maxMs: 3000 },
      };
    });
    for (const r of rs) expect(r.delivered).toBe(6000);
    // The outages really cut traffic, and the long ones took the link down on the deaf side.
    expect(Math.min(...rs.map((r) => r.faultDrops))).toBeGreaterThan(0);
    expect(sum(rs, (r) => r.linkDowns)).toBeGreaterThan(0);
  });

  it("whole-process stalls of 0.3–1 s (3 a run, either node; inputs queue): exactly once, in bounds, no stall; 20 seeds", () => {
    const rs = sweep(20, 950_000, (seed, rng) => {
      const window = seed % 2 === 0 ? 16 : 64;
      return {
        packets: 3000,
        window,
        isn: isnNearWrap(rng, window),
        params: sweepParams(rng, 0.03),
        stalls: { count: 3, minMs: 300, maxMs: 1000 },
      };
    });
    for (const r of rs) expect(r.delivered).toBe(6000);
    expect(Math.min(...rs.map((r) => r.stalledEvents))).toBeGreaterThan(0);
  });

  it("everything at once: wrap, small windows, loss, one-way outages and stalls; 10 seeds", () => {
    const rs = sweep(10, 960_000, (seed, rng) => {
      const window = [8, 16, 32, 64][seed % 4] as number;
      return {
        packets: 4000,
        window,
        isn: rng.chance(0.8) ? isnNearWrap(rng, window) : undefined,
        params: sweepParams(rng, 0.1),
        oneWay: { count: 2, minMs: 300, maxMs: 2000 },
        stalls: { count: 2, minMs: 300, maxMs: 1000 },
      };
    });
    for (const r of rs) expect(r.delivered).toBe(8000);
  });
});

describe("planted bug: a receive bitmap that is never cleared (netsim)", () => {
  afterAll(removeMutants);
  // A short wrap sweep: a window of 16 reused 125 times per direction.
  const plan: Plan = (_s, rng) => ({
    packets: 2000,
    window: 16,
    isn: isnNearWrap(rng, 16),
    params: sweepParams(rng, 0.05),
  });
  const fails = (impl: LinkImpl): string => {
    try {
      sweep(3, 970_000, plan, impl);
    } catch (e) {
      return String(e);
    }
    return "";
  };

  it("a verbatim copy of the sources (the control) passes the sweep", async () => {
    expect(fails(await buildMutant("control", undefined))).toBe("");
  });

  for (const [name, m] of [
    ["in-order slot", BITMAP_CLEAR_IN_ORDER],
    ["range slots", BITMAP_CLEAR_RANGE],
  ] as [string, Mutation][]) {
    it(`without the line that clears the ${name} of the bitmap, the sweep fails (and names the seed)`, async () => {
      const err = fails(await buildMutant(name.replace(/\W+/g, "-"), m));
      expect(err).toMatch(/seed 97000\d/);
      expect(err).toMatch(/progress|delivered/);
    });
  }

  it("the old sweeps (≤ 300 packets against the default 4,096-packet window, ISN 0) cannot see it", async () => {
    const impl = await buildMutant("in-order-slot-old-sweep", BITMAP_CLEAR_IN_ORDER);
    const rs = sweep(
      3,
      970_000,
      (_s, rng) => ({ packets: 300, window: 4096, isn: 0, params: sweepParams(rng, 0.05) }),
      impl,
    );
    for (const r of rs) expect(r.delivered).toBe(600);
  });
});
