/**
 * Routing costs must not chase the queueing the overlay's own traffic causes (issue 10: with the
 * latency metric a route changed 11 times in 28 s under one stream, 0 times idle). A stream 1 -> 2
 * fills the bottleneck queue of the direct link 1-2; the detour 1-3-2 is slower than the direct
 * link's propagation delay but faster than the direct link with its queue full. The route from 1
 * to 2 must stay on the direct link. Netsim across seeds; a failing seed is named.
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

describe("routes under the overlay's own load (netsim, latency metric)", () => {
  it("a stream over the direct link does not make the route from 1 to 2 flap, 8 seeds", () => {
    forEachSeed(8, (seed) => {
      const rng = new Rng(seed ^ 0xf1a);
      const sim = new Simulator({ seed, traceCapacity: 0 });
      const st = makeStream(seed, 0, 1, 2, 4_000_000, 0, 1);
      let changes = 0;
      let streaming = false;
      addOverlayNodes(sim, [1, 2, 3], EDGES, [st], {
        metric: "latency",
        onRouteChange: (e, n) => {
          if (streaming && n.id === 1 && e.dst === 2) changes++;
        },
      });
      // Direct: 5 ms each way behind a 0.5 Mbit/s bottleneck with a 4-5 kB queue (64-80 ms of
      // queueing); detour: 2 x 9 ms, no bottleneck.
      // (bandwidthBps is in bits per second. This once read 0.5 Mbit/s with a 32-40 kB queue:
      // 0.5-0.6 s of queueing, which a Reno window fills until hellos die at its tail and the
      // link goes down; it passed only while spurious timeouts kept emptying the queue.)
      sim.connect(1, 2, { delayMs: 5, bandwidthBps: 500_000, queueBytes: 4_000 + rng.int(1000) });
      sim.connect(1, 3, { delayMs: 9 });
      sim.connect(3, 2, { delayMs: 9 });
      addInvariants(sim, [1, 2, 3], [st]);
      const n = (id: number) => sim.program<OverlayNode>(id) as OverlayNode;
      sim.run(3000);
      expect(n(1).plane.router.nextHop(2)).toBe(2);
      streaming = true;
      st.c.sid = n(1).connect(2, st.port, { linkType: st.linkType });
      sim.run(sim.now + 20_000);
      expect(changes, "route changes from 1 to 2 under the stream").toBe(0);
      // The stream really loaded the direct link's queue: its SRTT rose well above propagation.
      expect(n(1).plane.driver.link(2)?.rtt.srtt).toBeGreaterThan(15);
    });
  });
});
