import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { groupStalls } from "./stalls.ts";

/**
 * Heavy CPU load: every member is descheduled for 0.3-1 s at about the same time (each one starts
 * and ends its stall up to `skewMs` after the first), about every 4 s. Nobody fails, so no view may
 * change. After its own stall a member gives every peer a full failure timeout of its own running
 * time. What stays excluded, rightly, is a peer silent for longer than the timeout while we run:
 * with stalls that start up to `skew` apart, a peer may be silent for `skew + heartbeatIntervalMs`
 * while we still run, so the test uses skews below `timeout - interval`: default 200 ms (100 ms +
 * 200 < 350), fast 100 ms (15 + 100 < 130). Before the rule these skews excluded live members
 * (test/stalls.ts prints the rates per 10 simulated minutes).
 */
describe("whole-group stalls (every member paused at once) cause no view change", () => {
  for (const [profile, skewMs] of [
    ["default", 200],
    ["fast", 100],
  ] as const) {
    it(`${profile} profile, 0.3-1 s stalls with up to ${skewMs} ms skew, 8 members, 60 simulated s (6 seeds)`, () => {
      forEachSeed(6, (seed) => {
        const r = groupStalls({ seed: 800_000 + seed, profile, durationMs: 60_000, skewMs });
        if (r.violation !== undefined) throw new Error(r.violation);
        expect(r.stalls).toBeGreaterThan(5);
        expect(r.convergedAtEnd).toBe(true);
        expect({ spuriousViews: r.spuriousViews, exclusions: r.exclusions }).toEqual({
          spuriousViews: 0,
          exclusions: 0,
        });
      });
    });
  }
});
