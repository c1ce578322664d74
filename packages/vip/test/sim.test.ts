import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { runVipScenario } from "./support/scenario.ts";

/** Seeds per scenario in CI; VIP_SEEDS=n runs more (e.g. 20000 before a release). */
const SEEDS = Number(process.env.VIP_SEEDS ?? 0) || 0;
const scale = (base: number): number => (SEEDS > 0 ? SEEDS : base);

function sweep(count: number, options: Omit<Parameters<typeof runVipScenario>[0], "seed">, start = 1): void {
  let checks = 0;
  forEachSeed(
    count,
    (seed) => {
      const r = runVipScenario({ ...options, seed });
      expect(r.violation, `seed ${seed}`).toBeUndefined();
      expect(r.converged, `seed ${seed}: did not converge to one view holding every group once`).toBe(true);
      checks += r.checks;
    },
    { startSeed: start },
  );
  expect(checks).toBeGreaterThan(count);
}

describe("VIP in netsim: exactly-once after every completed exchange", () => {
  it("random crashes/restarts, partitions and link flaps (periodic balancing)", () => {
    sweep(scale(10), { n: 4, groups: 7, kinds: ["crash", "partition", "linkFlap"] });
  });
});
