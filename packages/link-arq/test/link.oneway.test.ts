/**
 * A one-way link failure (issue 11): when a → b stops delivering while b → a still works, both
 * ends must declare the link down (b because a's hellos say a stopped hearing it), and both must
 * bring it back up once the direction is repaired. Netsim across seeds; a failing seed is named.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import type { LinkEvent } from "../src/index.ts";
import { LinkNode } from "./support/scenarios.ts";

function run(seed: number): {
  events: Map<number, { at: number; e: LinkEvent }[]>;
  failAt: number;
  repairAt: number;
} {
  const rng = new Rng(seed ^ 0x0e1);
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const events = new Map<number, { at: number; e: LinkEvent }[]>([
    [1, []],
    [2, []],
  ]);
  for (const [id, peer] of [
    [1, 2],
    [2, 1],
  ] as const) {
    sim.addNode(id, (host) => {
      const n = new LinkNode(host, { onEvent: (_p, e) => events.get(id)?.push({ at: host.clock.now(), e }) });
      n.driver.addNeighbour(peer);
      return n;
    });
  }
  const delayMs = rng.uniform(1, 60);
  sim.connect(1, 2, { delayMs, jitterMs: rng.uniform(0, delayMs / 4), loss: rng.uniform(0, 0.03) });
  const failAt = rng.uniform(2000, 4000);
  const repairAt = failAt + rng.uniform(4000, 8000);
  // The direction 2 → 1 fails: node 1 stops hearing node 2, node 2 still hears node 1.
  sim.at(failAt, (s) => s.linkDown(2, 1, false));
  sim.at(repairAt, (s) => s.linkUp(2, 1, false));
  sim.run(repairAt + 5000);
  return { events, failAt, repairAt };
}

describe("one-way link failure (netsim)", () => {
  it("both ends declare the link down within about two dead timeouts, and both bring it back up after the repair, 200 seeds", () => {
    forEachSeed(200, (seed) => {
      const { events, failAt, repairAt } = run(seed);
      for (const id of [1, 2]) {
        const ev = events.get(id) ?? [];
        const down = ev.find((x) => x.e.type === "down" && x.at >= failAt);
        expect(down, `node ${id} declares the link down`).toBeDefined();
        expect((down?.at ?? 0) - failAt).toBeLessThan(2 * 1000 + 300);
        // Not up again while the direction is broken.
        const upDuring = ev.find((x) => x.e.type === "up" && x.at > failAt && x.at < repairAt);
        expect(upDuring, `node ${id} stays down while 2 -> 1 is broken`).toBeUndefined();
        const upAfter = ev.find((x) => x.e.type === "up" && x.at >= repairAt);
        expect(upAfter, `node ${id} comes back up`).toBeDefined();
        expect((upAfter?.at ?? 0) - repairAt).toBeLessThan(3000);
      }
    });
  });
});
