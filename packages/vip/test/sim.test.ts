/**
 * The VIP protocol on the real membership core in netsim, across many seeds: the exactly-once
 * invariant is checked after every simulator event at every completed exchange (all members of a
 * view at the same point of its total order), and after the faults stop the cluster must converge
 * to one view holding every group exactly once. 2,000 seeds in all by default; VIP_SEEDS=n runs n
 * seeds per scenario instead. A failure names its seed; NETSIM_SEED=<seed> replays it.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { runVipScenario, type VipScenarioOptions } from "./support/scenario.ts";

const SEEDS = Number(process.env.VIP_SEEDS ?? 0) || 0;
const scale = (base: number): number => (SEEDS > 0 ? SEEDS : base);

function sweep(count: number, options: Omit<VipScenarioOptions, "seed">, startSeed = 1): void {
  let checks = 0;
  let runs = 0;
  let carried = 0;
  forEachSeed(
    count,
    (seed) => {
      const r = runVipScenario({ ...options, seed });
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      expect(r.converged, `seed ${seed}: did not converge to one view holding every group once`).toBe(true);
      checks += r.checks;
      carried += r.carried;
      runs++;
    },
    { startSeed },
  );
  // the invariant must actually have been exercised
  expect(checks).toBeGreaterThan(runs);
  // and so must the tables carried over into views that only removed members (crashes, leaves,
  // partitions), unless the exchange runs in every view
  if (options.exchangeEveryView) expect(carried).toBe(0);
  else expect(carried).toBeGreaterThan(runs);
}

describe("VIP in netsim: exactly once after every completed exchange", () => {
  it("random crashes with restarts, partitions and merges, link flaps; periodic balancing (600 seeds)", () => {
    sweep(scale(600), { n: 4, groups: 7, kinds: ["crash", "partition", "linkFlap"] });
  });

  it("the same with the state exchange in every view, the protocol before removal-only views carried the table over (100 seeds)", () => {
    sweep(
      scale(100),
      { n: 4, groups: 7, kinds: ["crash", "partition", "linkFlap"], exchangeEveryView: true },
      50_001,
    );
  });

  it("cascades: a second crash while the survivors run the exchange for the first; immediate balancing (500 seeds)", () => {
    sweep(
      scale(500),
      { n: 5, groups: 9, cascades: 2, kinds: ["crash"], balance: { mode: "immediate" } },
      10_001,
    );
  });

  it("graceful leaves and rejoins amid partitions, with preferences (400 seeds)", () => {
    sweep(
      scale(400),
      {
        n: 4,
        groups: 6,
        leaves: 3,
        kinds: ["partition"],
        preferences: true,
        balance: { mode: "periodic", intervalMs: 100, movesPerRound: 2 },
      },
      20_001,
    );
  });

  it("cold start and restarts with a long maturity hold-off; no balancing (300 seeds)", () => {
    sweep(
      scale(300),
      { n: 3, groups: 4, kinds: ["crash", "linkFlap"], matureMs: 700, balance: { mode: "off" } },
      30_001,
    );
  });

  it("larger clusters, 6-8 members and 16 groups (200 seeds)", () => {
    forEachSeed(
      scale(200),
      (seed) => {
        const r = runVipScenario({
          seed,
          n: 6 + (seed % 3),
          groups: 16,
          kinds: ["crash", "partition"],
          preferences: true,
        });
        expect(r.violation, `seed ${seed}`).toBeUndefined();
        expect(r.converged, `seed ${seed}`).toBe(true);
      },
      { startSeed: 40_001 },
    );
  });

  it("the invariant catches an allocation that is not deterministic (each member rotates by its own id)", () => {
    const run = (): unknown =>
      runVipScenario({
        seed: 1,
        n: 3,
        groups: 3,
        allocatorFor: (id) => (groups, states) => ({
          table: {
            groups,
            mature: true,
            members: states.map(() => ({ settled: true, prefers: new Set<number>() })),
            owner: Array.from({ length: groups }, (_, g) => (g + id) % states.length),
          },
          moves: [],
        }),
      });
    expect(run).toThrow(/tables differ/);
  });
});
