/**
 * Done-when for issue 4 (netsim, many seeds): random topologies up to 100 nodes, random link and
 * node failures and heals; once faults stop, every node holds the same database as the rest of its
 * component, routes are loop-free along live links, every reachable pair has a route, and the time
 * to get there stays within the stated bound. A cheap invariant (tables within bounds, no decode
 * errors) runs after every simulator event; the full checks run once the network is quiescent.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import {
  addBoundsInvariant,
  buildNet,
  DEAD_MS,
  diameter,
  fullCheck,
  HELLO_MS,
  MAX_RTO_MS,
  type Net,
  quiescent,
  randomTopology,
  runToQuiescence,
  scenarioRng,
  scriptFaults,
} from "./helpers/scenario.ts";

const MAX_DELAY_MS = 10;
const COMPUTE_DELAY_MS = 1;

/**
 * The convergence bound after the last fault on loss-free links: the stand-in link layer's
 * detection (a missed hello deadline, DEAD + HELLO, and two more hello rounds to bring a link or a
 * restarted node back up), at most one retransmission timeout for an update lost to the fault, and
 * then D + 6 hops of flooding (database exchange on link-up, a restarted node's re-issue round trip,
 * the flood across the diameter D), each costing the link delay plus the computation delay.
 */
export function convergenceBoundMs(D: number): number {
  return DEAD_MS + 3 * HELLO_MS + MAX_RTO_MS + (D + 6) * (MAX_DELAY_MS + COMPUTE_DELAY_MS);
}

interface Outcome {
  n: number;
  D: number;
  convergedMs: number;
  boundMs: number;
}

function scenario(seed: number, n: number, faults: number, loss = 0): Outcome {
  const rng = scenarioRng(seed);
  const topo = randomTopology(rng, n, rng.uniform(0.2, 1), [1, MAX_DELAY_MS]);
  const net: Net = buildNet(seed, topo, { loss });
  addBoundsInvariant(net);
  const start = runToQuiescence(net, 3_000);
  expect(start, "initial convergence").toBeDefined();
  expect(fullCheck(net)).toBeUndefined();
  const f = scriptFaults(net, rng, net.sim.now + 20, net.sim.now + 20 + rng.uniform(200, 1200), faults);
  net.sim.run(f.lastFaultAt);
  const D = diameter(net);
  const bound = convergenceBoundMs(D);
  const limit = loss > 0 ? f.lastFaultAt + 10_000 : f.lastFaultAt + bound + 1_000;
  const q = runToQuiescence(net, limit);
  expect(q, `quiescent by ${limit} ms (faults stopped at ${f.lastFaultAt.toFixed(1)})`).toBeDefined();
  const convergedMs = (q as number) - f.lastFaultAt;
  if (loss === 0) expect(convergedMs, `convergence (D=${D}) within ${bound} ms`).toBeLessThanOrEqual(bound);
  expect(fullCheck(net)).toBeUndefined();
  // and it stays that way: no oscillation, no stray traffic
  const digests = topo.ids.map((id) => net.node(id)?.router.databaseDigest);
  net.sim.runFor(300);
  // (on lossy links a hello may be missing at any instant, so "quiescent" is too strict there)
  if (loss === 0) expect(quiescent(net)).toBe(true);
  else expect(fullCheck(net)).toBeUndefined();
  expect(topo.ids.map((id) => net.node(id)?.router.databaseDigest)).toEqual(digests);
  return { n, D, convergedMs, boundMs: bound };
}

function summary(name: string, out: Outcome[]): void {
  const worst = out.reduce((a, b) => (b.convergedMs / b.boundMs > a.convergedMs / a.boundMs ? b : a));
  const mean = out.reduce((s, o) => s + o.convergedMs, 0) / out.length;
  console.log(
    `${name}: ${out.length} seeds, mean convergence ${mean.toFixed(1)} ms, worst ${worst.convergedMs.toFixed(1)} ms of bound ${worst.boundMs} ms (n=${worst.n}, D=${worst.D})`,
  );
}

describe("routing in netsim: convergence after random link and node faults", () => {
  it("small topologies (4-16 nodes), 600 seeds", () => {
    const out: Outcome[] = [];
    forEachSeed(600, (seed) => {
      out.push(scenario(seed, 4 + (seed % 13), 6 + (seed % 10)));
    });
    summary("small", out);
  });

  it("medium topologies (20-50 nodes), 25 seeds", () => {
    const out: Outcome[] = [];
    forEachSeed(
      25,
      (seed) => {
        out.push(scenario(seed, 20 + (seed % 31), 15));
      },
      { startSeed: 10_001 },
    );
    summary("medium", out);
  });

  it("100-node topologies, 4 seeds", () => {
    const out: Outcome[] = [];
    forEachSeed(
      4,
      (seed) => {
        out.push(scenario(seed, 100, 25));
      },
      { startSeed: 20_001 },
    );
    summary("100 nodes", out);
  });

  it("lossy links (3 % loss): still converges to identical databases and loop-free routes", () => {
    const out: Outcome[] = [];
    forEachSeed(
      60,
      (seed) => {
        out.push(scenario(seed, 5 + (seed % 20), 8, 0.03));
      },
      { startSeed: 30_001 },
    );
    summary("lossy", out);
  });

  it("netsim's own fault generator (crashes, link flaps, partitions), 100 seeds", () => {
    forEachSeed(
      100,
      (seed) => {
        const rng = scenarioRng(seed);
        const topo = randomTopology(rng, 6 + (seed % 15), rng.uniform(0.3, 1), [1, MAX_DELAY_MS]);
        const net = buildNet(seed, topo);
        addBoundsInvariant(net);
        expect(runToQuiescence(net, 3_000)).toBeDefined();
        const until = net.sim.now + 1_000;
        net.sim.randomFaults({ until, meanIntervalMs: 80, meanDurationMs: 150 });
        net.sim.run(until);
        const bound = convergenceBoundMs(diameter(net));
        const q = runToQuiescence(net, until + bound);
        expect(q, `quiescent within ${bound} ms of ${until}`).toBeDefined();
        expect(fullCheck(net)).toBeUndefined();
        // everything was repaired: one component, everyone routes to everyone
        for (const id of topo.ids)
          expect(net.node(id)?.router.destinations().length).toBe(topo.ids.length - 1);
      },
      { startSeed: 50_001 },
    );
  });

  it("origins that are gone age out everywhere; the tables shrink back", () => {
    forEachSeed(
      20,
      (seed) => {
        const rng = scenarioRng(seed);
        const topo = randomTopology(rng, 12, 0.6, [1, MAX_DELAY_MS]);
        const net = buildNet(seed, topo, { router: { originTimeoutMs: 2_000 } });
        addBoundsInvariant(net);
        expect(runToQuiescence(net, 3_000)).toBeDefined();
        const victims = rng.shuffle([...topo.ids]).slice(0, 3);
        for (const v of victims) net.sim.crash(v);
        const q = runToQuiescence(net, net.sim.now + 1_000);
        expect(q).toBeDefined();
        const alive = topo.ids.filter((id) => !victims.includes(id));
        // before the timeout the dead nodes' items are still held (identically, per fullCheck)
        expect(fullCheck(net)).toBeUndefined();
        net.sim.runFor(2_500);
        for (const id of alive) {
          const r = net.node(id)?.router;
          const held = r?.database().filter((i) => victims.includes(i.origin)) ?? [];
          expect(held, `node ${id} still holds items of crashed nodes`).toEqual([]);
        }
        expect(fullCheck(net)).toBeUndefined();
      },
      { startSeed: 60_001 },
    );
  });
});
