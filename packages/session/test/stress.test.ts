import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { randomPairOptions, runPair } from "./harness.ts";

/**
 * Opt-in soak run (about 75 s): SESSION_STRESS=1 pnpm exec vitest run --project session stress.
 * 20,000 further seeds of the randomized stream scenario, after the 1,000 the regular test runs.
 */
describe.skipIf(process.env.SESSION_STRESS === undefined)("stream soak (opt-in)", () => {
  it("20,000 more seeds: every byte once and in order, clean close", () => {
    forEachSeed(
      20_000,
      (seed) => {
        const o = randomPairOptions(seed);
        const r = runPair(o);
        expect(r.done, `seed ${seed} finished`).toBe(true);
        expect(r.a.closeError).toBeUndefined();
        expect(r.b.closeError).toBeUndefined();
        expect(r.a.received).toBe(o.bytesAB);
        expect(r.b.received).toBe(o.bytesBA);
      },
      { startSeed: 1001 },
    );
  });
});
