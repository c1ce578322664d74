/**
 * A recovered link must not stay avoided (issue 11: after the loss was cleared a node kept
 * reporting the old loss for minutes and kept a detour over a clean link, because loss was only
 * re-measured when data crossed the link). With the expected-latency metric, 10 % loss on the
 * direct link 1-2 under a stream moves the route from 1 to 2 onto the detour via 3; once the loss
 * is cleared the route must come back to the direct link with no traffic on it. Netsim, seeds.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import type { OverlayNode } from "../src/index.ts";
import { addInvariants, addOverlayNodes, makeStream } from "./harness.ts";

const EDGES = [
  [1, 2],
  [1, 3],
  [3, 2],
] as const;

describe("a recovered link is used again (netsim, expected-latency metric)", () => {
  it("after 10 % loss on the direct link clears, the route from 1 to 2 returns to it within 60 s, 6 seeds", () => {
    forEachSeed(6, (seed) => {
      const rng = new Rng(seed ^ 0x105);
      const sim = new Simulator({ seed, traceCapacity: 0 });
      const st = makeStream(seed, 0, 1, 2, 400_000, 0, rng.pick([0, 1, 2] as const));
      addOverlayNodes(sim, [1, 2, 3], EDGES, [st], { metric: "explat" });
      sim.connect(1, 2, { delayMs: 3 });
      sim.connect(1, 3, { delayMs: 5 });
      sim.connect(3, 2, { delayMs: 5 });
      addInvariants(sim, [1, 2, 3], [st]);
      const n = (id: number) => sim.program<OverlayNode>(id) as OverlayNode;
      sim.run(3000);
      expect(n(1).plane.router.nextHop(2)).toBe(2);
      sim.setLink(1, 2, { loss: 0.1 });
      st.c.sid = n(1).connect(2, st.port, { linkType: st.linkType });
      sim.runUntil(() => n(1).plane.router.nextHop(2) === 3, sim.now + 30_000);
      expect(n(1).plane.router.nextHop(2), "the lossy link is avoided").toBe(3);
      sim.setLink(1, 2, { loss: 0 });
      const clearedAt = sim.now;
      sim.runUntil(() => n(1).plane.router.nextHop(2) === 2, clearedAt + 60_000);
      expect(n(1).plane.router.nextHop(2), "the clean direct link is used again").toBe(2);
    });
  });
});
