/**
 * The overlay sets each link's N-flow window from the sessions crossing it (docs/congestion.md):
 * the plane gives every packet its flow key (source and destination session), the link counts the
 * active keys. k streams from node 1 to node 3 over 1–2–3 make both links, the first and the
 * transit one, emulate k TCP flows (`linkStatus().flows`), while every byte still arrives once and
 * in order and every buffer stays bounded (harness invariants); one stream makes them emulate one.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import type { OverlayNode } from "../src/index.ts";
import { addInvariants, addOverlayNodes, makeStream, startStreams } from "./harness.ts";

const IDS = [1, 2, 3];
const EDGES = [
  [1, 2],
  [2, 3],
] as const;

function run(seed: number, streams: number): { max12: number; max23: number; done: boolean } {
  const rng = new Rng(seed);
  const sim = new Simulator({ seed, traceCapacity: 100 });
  const sts = Array.from({ length: streams }, (_, k) => makeStream(seed, k, 1, 3, 400_000, 0, 1));
  addOverlayNodes(sim, IDS, EDGES, sts);
  for (const [a, b] of EDGES) sim.connect(a, b, { delayMs: 10, loss: 0.01 });
  addInvariants(sim, IDS, sts);
  startStreams(sim, rng, sts, 200);
  let max12 = 0;
  let max23 = 0;
  const flows = (id: number, peer: number) =>
    sim
      .program<OverlayNode>(id)
      ?.linkStatus()
      .find((l) => l.neighbor === peer)?.flows ?? 0;
  for (let t = 100; t < 30_000; t += 100)
    sim.at(t, () => {
      if (sts.some((st) => st.c.written < st.c.out.length)) {
        max12 = Math.max(max12, flows(1, 2));
        max23 = Math.max(max23, flows(2, 3));
      }
    });
  sim.run(30_000);
  return { max12, max23, done: sts.every((st) => st.s.received === st.s.expectIn.length) };
}

describe("overlay links emulate one TCP flow per active session (netsim)", () => {
  it("3 streams across 1–2–3: both links count 3 flows, every byte once and in order; 1 stream: 1", () => {
    forEachSeed(3, (seed) => {
      const three = run(seed, 3);
      expect(three.done).toBe(true);
      expect(three.max12).toBe(3);
      expect(three.max23).toBe(3);
      const one = run(seed, 1);
      expect(one.done).toBe(true);
      expect(one.max12).toBe(1);
      expect(one.max23).toBe(1);
    });
  });
});
