import { forEachSeed } from "@spines-ts/netsim";
import { expect, it } from "vitest";
import { randomPairOptions, runPair } from "./harness.ts";

it("stress", () => {
  forEachSeed(
    20000,
    (seed) => {
      const o = randomPairOptions(seed);
      const r = runPair(o);
      if (!r.done) throw new Error(`not done ${JSON.stringify(o)} a ${r.a.received} b ${r.b.received}`);
      expect(r.a.closeError).toBeUndefined();
      expect(r.b.closeError).toBeUndefined();
    },
    { startSeed: 7001 },
  );
});
