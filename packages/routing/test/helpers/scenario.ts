/** Random topologies, fault scripts and the ground-truth checks of the routing netsim tests. */
import { Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { ROUTE_COST_DOWN } from "@spines-ts/wire";
import { type DriverOptions, RoutingNode } from "./driver.ts";

export interface Topology {
  readonly ids: number[];
  /** Undirected links [a, b, one-way delay ms]. */
  readonly links: [number, number, number][];
}

/** A connected random graph: a random spanning tree plus `extra` x n random chords. */
export function randomTopology(rng: Rng, n: number, extra: number, delay: [number, number]): Topology {
  // sparse, non-contiguous ids so that id order is not node creation order
  const ids = rng.shuffle(Array.from({ length: n }, (_, i) => 10 + i * 7));
  const seen = new Set<string>();
  const links: [number, number, number][] = [];
  const add = (a: number, b: number): void => {
    if (a === b) return;
    const k = a < b ? `${a}-${b}` : `${b}-${a}`;
    if (seen.has(k)) return;
    seen.add(k);
    links.push([a, b, rng.intBetween(delay[0], delay[1])]);
  };
  for (let i = 1; i < n; i++) add(ids[i] as number, ids[rng.int(i)] as number);
  const chords = Math.round(extra * n);
  for (let i = 0; i < chords; i++) add(rng.pick(ids), rng.pick(ids));
  return { ids, links };
}

export interface Net {
  readonly sim: Simulator;
  readonly topo: Topology;
  readonly active: { id: number };
  node(id: number): RoutingNode | undefined;
}

export const HELLO_MS = 20;
export const DEAD_MS = 70;
export const MAX_RTO_MS = 200;

export function buildNet(
  seed: number,
  topo: Topology,
  opts: Partial<DriverOptions> & { loss?: number } = {},
): Net {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const adj = new Map<number, number[]>(topo.ids.map((id) => [id, []]));
  for (const [a, b] of topo.links) {
    adj.get(a)?.push(b);
    adj.get(b)?.push(a);
  }
  const active = { id: -1 };
  for (const id of topo.ids) {
    sim.addNode(
      id,
      (host) =>
        new RoutingNode(host, {
          helloMs: HELLO_MS,
          deadMs: DEAD_MS,
          ...opts,
          router: { retransmit: { initialMs: 60, maxMs: MAX_RTO_MS }, ...(opts.router ?? {}) },
          neighbors: adj.get(id) ?? [],
          active,
        }),
    );
  }
  for (const [a, b, d] of topo.links) sim.connect(a, b, { delayMs: d, jitterMs: 0, loss: opts.loss ?? 0 });
  return { sim, topo, active, node: (id) => sim.program<RoutingNode>(id) };
}

/** Connected components of the live network as the simulator sees it (nodes up, links up both ways). */
export function components(net: Net): number[][] {
  const { sim, topo } = net;
  const up = topo.ids.filter((id) => sim.isUp(id));
  const adj = liveAdjacency(net);
  const seen = new Set<number>();
  const out: number[][] = [];
  for (const s of up) {
    if (seen.has(s)) continue;
    const comp: number[] = [];
    const stack = [s];
    seen.add(s);
    while (stack.length > 0) {
      const u = stack.pop() as number;
      comp.push(u);
      for (const v of adj.get(u) ?? []) {
        if (!seen.has(v)) {
          seen.add(v);
          stack.push(v);
        }
      }
    }
    out.push(comp.sort((a, b) => a - b));
  }
  return out;
}

export function liveAdjacency(net: Net): Map<number, number[]> {
  const { sim, topo } = net;
  const adj = new Map<number, number[]>();
  for (const id of topo.ids) if (sim.isUp(id)) adj.set(id, []);
  for (const [a, b] of topo.links) {
    if (!sim.isUp(a) || !sim.isUp(b) || !sim.isLinkUp(a, b) || !sim.isLinkUp(b, a)) continue;
    if (sim.partitioned) continue; // callers check only after heal
    adj.get(a)?.push(b);
    adj.get(b)?.push(a);
  }
  for (const v of adj.values()) v.sort((x, y) => x - y);
  return adj;
}

/** Cheap quiescence test: link layer matches the truth, nothing unacked, digests agree per component. */
export function quiescent(net: Net): boolean {
  const adj = liveAdjacency(net);
  for (const [id, nbrs] of adj) {
    const n = net.node(id);
    if (n === undefined) return false;
    const mine = n.router.neighbors();
    if (mine.length !== nbrs.length || mine.some((x, i) => x !== nbrs[i])) return false;
    if (n.router.unacknowledged !== 0 || !n.router.routesCurrent) return false;
    // the stand-in link layer has no failure detection pending (hellos flowing on every up link)
    if (!n.linksFresh(HELLO_MS + 5)) return false;
  }
  for (const comp of components(net)) {
    const d = net.node(comp[0] as number)?.router.databaseDigest;
    for (const id of comp) if (net.node(id)?.router.databaseDigest !== d) return false;
  }
  return true;
}

/**
 * The full checks once quiescent: identical databases per component, and for every ordered pair in a
 * component a loop-free route along live links that reaches the destination; no route out of it.
 */
export function fullCheck(net: Net): string | undefined {
  const adj = liveAdjacency(net);
  for (const comp of components(net)) {
    const first = net.node(comp[0] as number)?.router;
    if (first === undefined) return `node ${comp[0]} has no program`;
    const ref = JSON.stringify(first.database());
    for (const id of comp) {
      const r = net.node(id)?.router;
      if (r === undefined) return `node ${id} has no program`;
      if (JSON.stringify(r.database()) !== ref) return `databases of ${comp[0]} and ${id} differ`;
    }
    const inComp = new Set(comp);
    for (const a of comp) {
      const ra = net.node(a)?.router;
      if (ra === undefined) return `node ${a} missing`;
      for (const dst of ra.destinations()) {
        if (!inComp.has(dst)) return `node ${a} has a route to ${dst} outside its component`;
      }
      for (const b of comp) {
        if (a === b) continue;
        let x = a;
        const visited = new Set<number>([a]);
        while (x !== b) {
          const hop = net.node(x)?.router.nextHop(b);
          if (hop === undefined) return `no route ${x} -> ${b} (from ${a}) though ${b} is reachable`;
          if (!(adj.get(x) ?? []).includes(hop)) return `route ${x} -> ${b} uses dead link ${x}-${hop}`;
          if (visited.has(hop)) return `routing loop towards ${b}: ${[...visited, hop].join(" > ")}`;
          visited.add(hop);
          x = hop;
        }
      }
    }
    // no live edge into the component from outside is believed up
    for (const item of first.database()) {
      if (
        item.kind === 0 &&
        item.value !== ROUTE_COST_DOWN &&
        inComp.has(item.origin) &&
        !inComp.has(item.key)
      ) {
        return `component of ${comp[0]} believes edge ${item.origin}->${item.key} leaving it is up`;
      }
    }
  }
  return undefined;
}

/** Hop diameter of the largest component of the live network. */
export function diameter(net: Net): number {
  const adj = liveAdjacency(net);
  let best = 0;
  for (const s of adj.keys()) {
    const dist = new Map<number, number>([[s, 0]]);
    const q = [s];
    for (let i = 0; i < q.length; i++) {
      const u = q[i] as number;
      for (const v of adj.get(u) ?? []) {
        if (!dist.has(v)) {
          dist.set(v, (dist.get(u) as number) + 1);
          q.push(v);
        }
      }
    }
    for (const d of dist.values()) best = Math.max(best, d);
  }
  return best;
}

export interface FaultScript {
  /** Time of the last fault action. */
  readonly lastFaultAt: number;
  readonly actions: number;
}

/**
 * Random link failures and heals, node crashes and restarts and one partition with its heal, in
 * [start, end). Some failures are left in place at the end (permanent faults), but every partition
 * is healed.
 */
export function scriptFaults(net: Net, rng: Rng, start: number, end: number, count: number): FaultScript {
  const { sim, topo } = net;
  const times = Array.from({ length: count }, () => rng.uniform(start, end)).sort((a, b) => a - b);
  let last = start;
  let partitionOpen = false;
  for (const t of times) {
    const kind = rng.int(10);
    sim.at(t, () => {
      if (kind < 4) {
        const l = rng.pick(topo.links);
        if (sim.isLinkUp(l[0], l[1])) sim.linkDown(l[0], l[1]);
        else sim.linkUp(l[0], l[1]);
      } else if (kind < 7) {
        const id = rng.pick(topo.ids);
        const upCount = topo.ids.filter((x) => sim.isUp(x)).length;
        if (sim.isUp(id) && upCount > 2) sim.crash(id);
        else if (!sim.isUp(id)) sim.restart(id);
      } else if (kind < 9) {
        const down = topo.links.filter((l) => !sim.isLinkUp(l[0], l[1]));
        if (down.length > 0) {
          const l = rng.pick(down);
          sim.linkUp(l[0], l[1]);
        }
      } else if (!partitionOpen) {
        const cut = rng.intBetween(1, topo.ids.length - 1);
        const sh = rng.shuffle([...topo.ids]);
        sim.partition([sh.slice(0, cut), sh.slice(cut)]);
        partitionOpen = true;
      } else {
        sim.heal();
        partitionOpen = false;
      }
    });
    last = t;
  }
  sim.at(last, () => {
    if (sim.partitioned) sim.heal();
  });
  return { lastFaultAt: last, actions: count };
}

/** One RNG stream for scenario choices, separate from the simulator's. */
export function scenarioRng(seed: number): Rng {
  return new Rng((seed * 0x9e3779b1) ^ 0x5eed);
}

/** Adds the cheap per-event invariant: the node that just ran keeps every table within its bounds. */
export function addBoundsInvariant(net: Net): void {
  net.sim.addInvariant("routing tables bounded", (sim) => {
    const id = net.active.id;
    if (id < 0) return undefined;
    const n = sim.program<RoutingNode>(id);
    if (n === undefined) return undefined;
    const r = n.router;
    const s = r.tableSizes();
    const L = r.limits;
    if (s.origins > L.maxOrigins) return `node ${id}: ${s.origins} origins > ${L.maxOrigins}`;
    if (s.items > L.maxOrigins * (L.maxEdgesPerOrigin + L.maxGroupsPerOrigin))
      return `node ${id}: ${s.items} items`;
    if (s.neighbors > L.maxNeighbors) return `node ${id}: ${s.neighbors} neighbours`;
    if (s.pending > L.maxOrigins * (L.maxEdgesPerOrigin + L.maxGroupsPerOrigin))
      return `node ${id}: ${s.pending} pending`;
    if (s.outbox > L.maxOutbox) return `node ${id}: outbox ${s.outbox}`;
    if (s.events > L.maxEvents) return `node ${id}: events ${s.events}`;
    if (s.trees > L.treeCacheSize) return `node ${id}: trees ${s.trees}`;
    if (n.decodeErrors > 0) return `node ${id}: ${n.decodeErrors} frames failed to decode`;
    return undefined;
  });
}

/**
 * Runs in 1 ms steps until quiescent (or `maxMs` absolute); returns the time it became quiescent.
 */
export function runToQuiescence(net: Net, maxMs: number): number | undefined {
  const { sim } = net;
  while (sim.now < maxMs) {
    sim.runFor(1);
    if (quiescent(net)) return sim.now;
  }
  return undefined;
}
