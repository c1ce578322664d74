import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import type { OverlayNode } from "../src/index.ts";
import {
  addInvariants,
  addOverlayNodes,
  makeStream,
  SESSION,
  startStreams,
  type TestStream,
} from "./harness.ts";

const SEEDS = Number(process.env.OVERLAY_BOUNDED_SEEDS ?? 150);

describe("bounded memory under back-pressure (netsim)", () => {
  it(`${SEEDS} seeds: streams into a narrow hop fill the buffers, never past their bounds`, () => {
    let held = 0;
    let fullQueues = 0;
    let runs = 0;
    forEachSeed(SEEDS, (seed) => {
      runs++;
      const rng = new Rng(seed);
      const sim = new Simulator({ seed, traceCapacity: 200 });
      // 1 and 2 send over a fast hop to 3, which forwards over a narrow hop to 4.
      const edges = [
        [1, 3],
        [2, 3],
        [3, 4],
      ] as const;
      const streams: TestStream[] = [];
      const n = 3 + rng.int(4);
      for (let k = 0; k < n; k++) {
        streams.push(makeStream(seed, k, rng.chance(0.5) ? 1 : 2, 4, 30_000 + rng.int(50_000), 0, 1));
      }
      addOverlayNodes(sim, [1, 2, 3, 4], edges, streams, {
        // Session windows far above what the links buffer, so the hops push back.
        session: {
          ...SESSION,
          receiveBufferBytes: 256 * 1024,
          sendBufferBytes: 256 * 1024,
          initialRtoMs: 300,
        },
      });
      sim.connect(1, 3, { delayMs: 2, loss: rng.uniform(0, 0.02) });
      sim.connect(2, 3, { delayMs: 2, loss: rng.uniform(0, 0.02) });
      sim.connect(3, 4, {
        delayMs: 5 + rng.uniform(0, 10),
        jitterMs: rng.uniform(0, 2),
        loss: rng.uniform(0, 0.02),
        bandwidthBps: 200_000 + rng.int(800_000),
        queueBytes: 256 * 1024,
      });
      addInvariants(sim, [1, 2, 3, 4], streams);
      startStreams(sim, rng, streams, 200);
      const done = sim.runUntil(() => streams.every((st) => st.c.done && st.s.done), 120_000);
      expect(done, `seed ${seed}: streams finished`).toBe(true);
      const transit = sim.program<OverlayNode>(3) as OverlayNode;
      held += transit.plane.forwardHeld;
      for (const id of [1, 2]) {
        const p = sim.program<OverlayNode>(id)?.plane;
        if (p !== undefined && p.localQueuePeak >= p.localDataLimit) fullQueues++;
      }
    });
    // The bounds were reached, not just respected: the transit node held packets upstream
    // (back-pressure) in the runs, and the senders' local queues filled up.
    expect(held).toBeGreaterThan(0);
    expect(fullQueues).toBeGreaterThan(0);
    console.log(
      `bounded: ${held} forwards held upstream; local queue full in ${fullQueues} sender runs of ${2 * runs}`,
    );
  });
});
