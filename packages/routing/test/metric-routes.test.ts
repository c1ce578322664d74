/**
 * Metric choice in netsim: with `latency` or `explat` configured and the stand-in link layer
 * reporting each link's measured rtt and loss, every node's route cost equals the true least-cost
 * path computed independently from the simulator's topology with the Spines cost formulas.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { expectedLatencyMs, Metric } from "../src/index.ts";
import {
  addBoundsInvariant,
  buildNet,
  fullCheck,
  randomTopology,
  runToQuiescence,
  scenarioRng,
} from "./helpers/scenario.ts";

/** Independent cost formulas (ms and units written out here, not imported from the package). */
function trueCost(metric: Metric, delayMs: number, loss: number): number {
  if (metric === Metric.Latency) return Math.round(10 * Math.min(Math.max(delayMs, 1) + 4, 300));
  return Math.round(10 * expectedLatencyMs(delayMs, loss));
}

describe("routing in netsim: configured metrics", () => {
  for (const metric of [Metric.Latency, Metric.ExpectedLatency]) {
    it(`${metric}: route costs equal the true least-cost paths (40 seeds)`, () => {
      forEachSeed(
        40,
        (seed) => {
          const rng = scenarioRng(seed);
          const topo = randomTopology(rng, 6 + (seed % 15), rng.uniform(0.5, 1.5), [1, 30]);
          const lossOf = new Map<string, number>();
          const delayOf = new Map<string, number>();
          for (const [a, b, d] of topo.links) {
            const p = rng.chance(0.5) ? 0 : rng.pick([0.01, 0.05, 0.1]);
            for (const k of [`${a}-${b}`, `${b}-${a}`]) {
              lossOf.set(k, p);
              delayOf.set(k, d);
            }
          }
          const net = buildNet(seed, topo, {
            router: { metric },
            // the link layer's measurement: rtt from the configured delay, loss as configured
            metricsFor: (me, nb) => ({
              rttMs: 2 * (delayOf.get(`${me}-${nb}`) ?? 0),
              loss: lossOf.get(`${me}-${nb}`) ?? 0,
            }),
          });
          addBoundsInvariant(net);
          expect(runToQuiescence(net, 3_000)).toBeDefined();
          expect(fullCheck(net)).toBeUndefined();
          // Floyd-Warshall over the true costs
          const ids = topo.ids;
          const D = new Map<string, number>();
          const get = (a: number, b: number) =>
            D.get(`${a}-${b}`) ?? (a === b ? 0 : Number.POSITIVE_INFINITY);
          for (const [a, b, d] of topo.links) {
            D.set(`${a}-${b}`, trueCost(metric, d, lossOf.get(`${a}-${b}`) as number));
            D.set(`${b}-${a}`, trueCost(metric, d, lossOf.get(`${b}-${a}`) as number));
          }
          for (const k of ids)
            for (const i of ids)
              for (const j of ids)
                if (get(i, k) + get(k, j) < get(i, j)) D.set(`${i}-${j}`, get(i, k) + get(k, j));
          for (const a of ids) {
            const r = net.node(a)?.router;
            for (const b of ids) {
              if (a === b) continue;
              expect(r?.route(b)?.cost, `${metric} cost ${a} -> ${b}`).toBe(get(a, b));
            }
          }
        },
        { startSeed: metric === Metric.Latency ? 70_001 : 80_001 },
      );
    });
  }
});
