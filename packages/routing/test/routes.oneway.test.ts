/**
 * Route computation's two-way check (issue 11): when the direction 2 → 1 of the link 1–2 fails,
 * node 1 withdraws its edge 1 → 2 but node 2, still hearing node 1, keeps advertising 2 → 1. An
 * edge counts only while both ends advertise it, so both nodes route around the link (via 3), and
 * go back to it once the direction is repaired. Netsim across seeds; a failing seed is named.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { buildNet } from "./helpers/scenario.ts";

describe("two-way check in route computation (netsim)", () => {
  it("a one-way link failure makes both ends route around the link, and back after the repair, 50 seeds", () => {
    forEachSeed(50, (seed) => {
      const rng = new Rng(seed ^ 0x2a7);
      // 1–2 is the cheapest path between 1 and 2; 1–3–2 the detour.
      const net = buildNet(seed, {
        ids: [1, 2, 3],
        links: [
          [1, 2, rng.intBetween(1, 5)],
          [1, 3, rng.intBetween(6, 20)],
          [3, 2, rng.intBetween(6, 20)],
        ],
      });
      const r = (id: number) => net.node(id)?.router;
      net.sim.run(2000);
      expect(r(1)?.nextHop(2)).toBe(2);
      expect(r(2)?.nextHop(1)).toBe(1);
      // Node 1 stops hearing node 2; node 2 still hears node 1 and keeps its edge 2 → 1 up.
      net.sim.linkDown(2, 1, false);
      net.sim.run(net.sim.now + 2000);
      expect(r(1)?.nextHop(2)).toBe(3);
      expect(r(2)?.nextHop(1), "node 2 must not route over the half-dead link").toBe(3);
      expect(r(2)?.stats.oneWayEdges).toBeGreaterThan(0);
      net.sim.linkUp(2, 1, false);
      net.sim.run(net.sim.now + 2000);
      expect(r(1)?.nextHop(2)).toBe(2);
      expect(r(2)?.nextHop(1)).toBe(1);
    });
  });
});
