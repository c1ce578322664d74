/**
 * A one-way link failure in the overlay (issue 11): the direction 2 → 1 of the direct link 1–2
 * fails while 1 → 2 keeps working. Traffic from 2 to 1 must take the detour via 3: datagrams
 * arrive, and a stream 2 → 1 opened after the failure completes. Netsim across seeds, with the
 * harness's invariants (bytes once and in order, bounded memory) after every event.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { DestKind } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import type { OverlayNode } from "../src/index.ts";
import { addInvariants, addOverlayNodes, makeStream } from "./harness.ts";

const EDGES = [
  [1, 2],
  [1, 3],
  [3, 2],
] as const;

describe("one-way link failure in the overlay (netsim)", () => {
  it("2 -> 1 broken: datagrams and a new stream from 2 reach 1 via 3, 30 seeds", () => {
    forEachSeed(30, (seed) => {
      const rng = new Rng(seed ^ 0x1e);
      const sim = new Simulator({ seed, traceCapacity: 0 });
      const st = makeStream(seed, 0, 2, 1, 20_000 + rng.int(20_000), 0, rng.pick([0, 1, 2] as const));
      addOverlayNodes(sim, [1, 2, 3], EDGES, [st]);
      // The direct link is the cheapest path; the detour costs more.
      sim.connect(1, 2, { delayMs: rng.uniform(1, 4) });
      sim.connect(1, 3, { delayMs: rng.uniform(6, 15) });
      sim.connect(3, 2, { delayMs: rng.uniform(6, 15) });
      addInvariants(sim, [1, 2, 3], [st]);
      const n = (id: number) => sim.program<OverlayNode>(id) as OverlayNode;
      sim.run(3000);
      expect(n(2).plane.router.nextHop(1)).toBe(1);
      sim.linkDown(2, 1, false);
      sim.run(sim.now + 3000);
      // 50 datagrams 2 -> 1 (counted where node 1 takes packets for itself).
      const before = n(1).plane.counters.delivered;
      for (let i = 0; i < 50; i++) {
        sim.at(sim.now + 10 * i, () =>
          n(2).plane.sendLocal(
            0,
            { src: 2, srcPort: 9, dst: 1, dstPort: 9, dstKind: DestKind.Node, ttl: 16 },
            new Uint8Array(20),
          ),
        );
      }
      sim.run(sim.now + 1000);
      expect(n(1).plane.counters.delivered - before, "datagrams 2 -> 1 delivered").toBe(50);
      st.c.sid = n(2).connect(1, st.port, { linkType: st.linkType });
      sim.run(sim.now + 20_000);
      expect(st.s.received, "stream 2 -> 1 bytes").toBe(st.c.out.length);
    });
  });
});
