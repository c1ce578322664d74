import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { type NodeId, Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import {
  addInvariants,
  addOverlayNodes,
  DEAD_MS,
  edgeKey,
  MAX_RTO_MS,
  makeStream,
  randomLink,
  reachable,
  startStreams,
  type TestStream,
} from "./harness.ts";

const SEEDS = Number(process.env.OVERLAY_TOPO_SEEDS ?? 500);
const FAULTS_FROM = 100;
const FAULTS_UNTIL = 4000;
/**
 * Once the last fault is repaired, every stream finishes within: a link hold-down and bring-up
 * allowance (1 s), the dead timeout, routing convergence (500 ms), two backed-off RTOs, and the
 * time to move every byte of every stream twice (headers, retransmissions, lost windows) across the
 * narrowest link of the topology (a conservative transfer time: all streams could share it).
 */
const RECOVERY_MS = 1000 + DEAD_MS + 500 + 2 * MAX_RTO_MS;

/** A random connected graph on ids 1..n: a random tree plus extra edges. */
function randomGraph(rng: Rng, n: number): [NodeId, NodeId][] {
  const edges: [NodeId, NodeId][] = [];
  const have = new Set<string>();
  const add = (a: NodeId, b: NodeId): void => {
    if (a === b || have.has(edgeKey(a, b))) return;
    have.add(edgeKey(a, b));
    edges.push([a, b]);
  };
  for (let i = 2; i <= n; i++) add(i, 1 + rng.int(i - 1));
  const extra = Math.floor(n / 2) + rng.int(n);
  for (let k = 0; k < extra; k++) add(1 + rng.int(n), 1 + rng.int(n));
  return edges;
}

interface Outcome {
  bound: number;
  lastRepair: number;
  finishedAt: number;
  faults: number;
}

function runTopology(seed: number): Outcome {
  const rng = new Rng(seed);
  const sim = new Simulator({ seed, traceCapacity: 200 });
  const n = 6 + rng.int(7);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const edges = randomGraph(rng, n);
  const nStreams = 2 + rng.int(3);
  const streams: TestStream[] = [];
  for (let k = 0; k < nStreams; k++) {
    const [c, s] = rng.shuffle([...ids]) as [NodeId, NodeId];
    const linkType = rng.pick([0, 1, 1, 2] as const);
    streams.push(makeStream(seed, k, c, s, 20_000 + rng.int(80_000), rng.int(30_000), linkType));
  }
  const endpoints = new Set(streams.flatMap((st) => [st.client, st.server]));
  addOverlayNodes(sim, ids, edges, streams);
  // Narrow links (0.3-1 Mbit/s) so the streams are still running while the faults come.
  let minBps = Number.POSITIVE_INFINITY;
  for (const [x, y] of edges) {
    const bandwidthBps = 300_000 + rng.int(700_000);
    minBps = Math.min(minBps, bandwidthBps);
    sim.connect(x, y, { ...randomLink(rng, 0.05), bandwidthBps });
  }
  let totalBytes = 0;
  for (const st of streams) totalBytes += st.c.out.length + st.s.out.length;
  const bound = RECOVERY_MS + (2 * totalBytes * 8 * 1000) / minBps;
  addInvariants(sim, ids, streams);
  startStreams(sim, rng, streams, 300);

  // Faults: transit crashes (with a later restart) and link flaps, each applied only if every
  // stream's endpoints stay connected in the graph of nodes and links that are up.
  const downNodes = new Set<NodeId>();
  const downEdges = new Set<string>();
  const connected = (): boolean =>
    streams.every((st) => reachable(st.client, edges, downNodes, downEdges).has(st.server));
  const transit = ids.filter((id) => !endpoints.has(id));
  let lastRepair = 0;
  let faults = 0;
  for (let t = FAULTS_FROM + rng.exponential(250); t < FAULTS_UNTIL; t += rng.exponential(250)) {
    const crash = transit.length > 0 && rng.chance(0.5);
    const node = crash ? rng.pick(transit) : 0;
    const edge = rng.pick(edges);
    const hold = rng.uniform(100, 1200);
    sim.at(t, (s) => {
      if (crash) {
        if (downNodes.has(node)) return;
        downNodes.add(node);
        if (!connected()) {
          downNodes.delete(node);
          return;
        }
        faults++;
        s.crash(node);
        s.after(hold, (s2) => {
          downNodes.delete(node);
          s2.restart(node);
          lastRepair = Math.max(lastRepair, s2.now);
        });
        return;
      }
      const key = edgeKey(edge[0], edge[1]);
      if (downEdges.has(key)) return;
      downEdges.add(key);
      if (!connected()) {
        downEdges.delete(key);
        return;
      }
      faults++;
      s.linkDown(edge[0], edge[1]);
      s.after(hold, (s2) => {
        downEdges.delete(key);
        s2.linkUp(edge[0], edge[1]);
        lastRepair = Math.max(lastRepair, s2.now);
      });
    });
  }
  const done = sim.runUntil(() => streams.every((st) => st.c.done && st.s.done), 90_000);
  if (!done) {
    const st = streams.map(
      (x) =>
        `${x.client}->${x.server} lt${x.linkType}: sent ${x.c.written}/${x.c.out.length} got ${x.s.received}, back ${x.c.received}/${x.c.expectIn.length}`,
    );
    throw new Error(`seed ${seed}: streams not finished by ${sim.now} ms (${n} nodes): ${st.join("; ")}`);
  }
  let finishedAt = 0;
  for (const st of streams) finishedAt = Math.max(finishedAt, st.c.closedAt ?? 0, st.s.closedAt ?? 0);
  return { bound, lastRepair, finishedAt, faults };
}

describe("sessions over random topologies with transit crashes, restarts and link flaps (netsim)", () => {
  it(`${SEEDS} seeds, 6-12 nodes, 2-4 streams: every byte once, in order, within the bound`, () => {
    let worst = 0;
    let worstShare = 0;
    let faults = 0;
    let runs = 0;
    forEachSeed(SEEDS, (seed) => {
      runs++;
      const o = runTopology(seed);
      faults += o.faults;
      const after = o.finishedAt - Math.max(o.lastRepair, FAULTS_UNTIL);
      worst = Math.max(worst, after);
      worstShare = Math.max(worstShare, after / o.bound);
      expect(after, `seed ${seed}: finished ${after} ms after the faults ended`).toBeLessThanOrEqual(o.bound);
    });
    // The schedule must actually have hurt: at least one applied fault per seed on average.
    expect(faults).toBeGreaterThanOrEqual(runs);
    console.log(
      `random topologies: ${faults} faults applied over ${runs} seeds; worst finish ${Math.round(worst)} ms after the last repair (${Math.round(worstShare * 100)} % of that seed's bound)`,
    );
  });
});
