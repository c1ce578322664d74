/**
 * Route computation over the link-state database: the database compiled into a `Graph` (rebuilt
 * only when an edge changes), this node's shortest-path tree (Dijkstra with the canonical
 * tie-break) and the next-hop table it gives, `routeChanged` events, multicast forwarding on
 * source-rooted trees (an LRU cache of trees), anycast to the nearest member, K node-disjoint
 * paths, and the bookkeeping of unreachable origins for ageing. Design: docs/routing.md §4–6.
 */
import { ROUTE_COST_DOWN, RouteItemKind } from "@spines-ts/wire";
import {
  type DisjointPath,
  dijkstra,
  disjointPaths,
  firstHops,
  Graph,
  type ShortestPathTree,
  treePath,
} from "./graph.ts";
import type { LinkStateDb } from "./lsdb.ts";
import type { RouterLimits, RouterStats } from "./options.ts";

export type RoutingEvent = {
  readonly type: "routeChanged";
  readonly dst: number;
  /** undefined when the destination became unreachable. */
  readonly nextHop: number | undefined;
  readonly cost: number | undefined;
};

export interface Route {
  readonly dst: number;
  readonly nextHop: number;
  readonly cost: number;
  /** Node ids from this node to dst inclusive. */
  readonly path: number[];
}

export interface MulticastHops {
  /** This node is a member: deliver a copy locally. */
  readonly deliverLocally: boolean;
  /** Neighbours to forward to (children on the source's tree that lead to members), ascending. */
  readonly nextHops: readonly number[];
}

export interface RouteComputerOptions {
  readonly id: number;
  readonly limits: RouterLimits;
  readonly originTimeoutMs: number;
  readonly db: LinkStateDb;
  readonly stats: RouterStats;
  /** The groups this node has joined (owned by the router). */
  readonly localGroups: ReadonlySet<number>;
}

/**
 * The computing half of a router. `compute` turns the database into routes (and events);
 * queries answer from the last computation, or from the current graph for trees and disjoint
 * paths. It reads the database and never changes it.
 */
export class RouteComputer {
  readonly #id: number;
  readonly #limits: RouterLimits;
  readonly #originTimeoutMs: number;
  readonly #db: LinkStateDb;
  readonly #stats: RouterStats;
  readonly #localGroups: ReadonlySet<number>;
  #graph: Graph | undefined;
  #graphGen = 0;
  #edgeBuf = { from: new Uint32Array(64), to: new Uint32Array(64), cost: new Float64Array(64) };
  #routes = new Map<number, { nextHop: number; cost: number }>();
  #myTree: ShortestPathTree | undefined;
  /** The graph #myTree was computed on (queries may rebuild #graph in between). */
  #myGraph: Graph | undefined;
  readonly #trees = new Map<number, { readonly tree: ShortestPathTree }>();
  #mcastCache = new Map<string, MulticastHops>();
  #mcastGen = "";
  #events: RoutingEvent[] = [];
  #eventHead = 0;
  /** When the first unreachable origin is due to age out (undefined: none). */
  #gcAt: number | undefined;

  constructor(o: RouteComputerOptions) {
    this.#id = o.id;
    this.#limits = o.limits;
    this.#originTimeoutMs = o.originTimeoutMs;
    this.#db = o.db;
    this.#stats = o.stats;
    this.#localGroups = o.localGroups;
  }

  /** True when an edge changed since the graph was last compiled. */
  get graphStale(): boolean {
    return this.#db.edgeGeneration !== this.#graphGen;
  }

  /** When `ageOrigins` is next due, or undefined. */
  get gcAt(): number | undefined {
    return this.#gcAt;
  }

  get treeCount(): number {
    return this.#trees.size;
  }

  get eventCount(): number {
    return this.#events.length - this.#eventHead;
  }

  // ---------------------------------------------------------------- computation

  /** Recomputes this node's tree and routes; emits a `routeChanged` per changed destination. */
  compute(now: number): void {
    this.#stats.computations++;
    const g = this.#ensureGraph();
    const me = g.indexOf(this.#id) as number;
    const t = this.#tree(g, me);
    this.#myTree = t;
    this.#myGraph = g;
    const first = firstHops(t);
    const routes = new Map<number, { nextHop: number; cost: number }>();
    for (const v of t.order) {
      if (v === me) continue;
      routes.set(g.ids[v] as number, {
        nextHop: g.ids[first[v] as number] as number,
        cost: t.dist[v] as number,
      });
    }
    for (const [dst, r] of routes) {
      const old = this.#routes.get(dst);
      if (old === undefined || old.nextHop !== r.nextHop || old.cost !== r.cost) {
        this.#event({ type: "routeChanged", dst, nextHop: r.nextHop, cost: r.cost });
      }
    }
    for (const dst of this.#routes.keys()) {
      if (!routes.has(dst)) this.#event({ type: "routeChanged", dst, nextHop: undefined, cost: undefined });
    }
    this.#routes = routes;
    // ageing: note since when each origin has been unreachable
    let gcAt: number | undefined;
    for (const o of this.#db.origins()) {
      if (o.id === this.#id || routes.has(o.id)) {
        o.unreachableSince = undefined;
        continue;
      }
      if (o.unreachableSince === undefined) o.unreachableSince = now;
      const at = o.unreachableSince + this.#originTimeoutMs;
      if (gcAt === undefined || at < gcAt) gcAt = at;
    }
    this.#gcAt = gcAt;
  }

  /** Origins unreachable for `originTimeoutMs` at `now` (to be deleted); clears the ageing deadline. */
  takeAged(now: number): number[] {
    const gone: number[] = [];
    for (const o of this.#db.origins()) {
      if (o.unreachableSince !== undefined && o.unreachableSince + this.#originTimeoutMs <= now)
        gone.push(o.id);
    }
    this.#gcAt = undefined;
    return gone;
  }

  /** Route changes since the last call, in order; the call empties the queue. */
  takeEvents(): RoutingEvent[] {
    if (this.#eventHead >= this.#events.length) {
      if (this.#events.length > 0) {
        this.#events = [];
        this.#eventHead = 0;
      }
      return [];
    }
    const out = this.#eventHead === 0 ? this.#events : this.#events.slice(this.#eventHead);
    this.#events = [];
    this.#eventHead = 0;
    return out;
  }

  // ---------------------------------------------------------------- queries

  nextHop(dst: number): number | undefined {
    return this.#routes.get(dst)?.nextHop;
  }

  route(dst: number): Route | undefined {
    const r = this.#routes.get(dst);
    const g = this.#myGraph;
    const t = this.#myTree;
    if (r === undefined || g === undefined || t === undefined) return undefined;
    const i = g.indexOf(dst);
    const path = i === undefined ? undefined : treePath(t, i);
    if (path === undefined) return undefined;
    return { dst, nextHop: r.nextHop, cost: r.cost, path: path.map((x) => g.ids[x] as number) };
  }

  destinations(): number[] {
    return [...this.#routes.keys()].sort((a, b) => a - b);
  }

  multicast(source: number, group: number): MulticastHops {
    const g = this.#ensureGraph();
    const gen = `${this.#db.edgeGeneration}/${this.#db.groupGeneration}`;
    if (gen !== this.#mcastGen) {
      this.#mcastCache = new Map();
      this.#mcastGen = gen;
    }
    const key = `${source}:${group}`;
    const cached = this.#mcastCache.get(key);
    if (cached !== undefined) return cached;
    const deliverLocally = this.#isMember(this.#id, group);
    const hops = new Set<number>();
    const s = g.indexOf(source);
    const me = g.indexOf(this.#id);
    if (s !== undefined && me !== undefined) {
      const t = this.#tree(g, s);
      if (Number.isFinite(t.dist[me] as number)) {
        for (const m of this.members(group)) {
          const mi = g.indexOf(m);
          if (mi === undefined || mi === me || !Number.isFinite(t.dist[mi] as number)) continue;
          let child = mi;
          let x = t.parent[mi] as number;
          while (x !== -1 && x !== me) {
            child = x;
            x = t.parent[x] as number;
          }
          if (x === me) hops.add(g.ids[child] as number);
        }
      }
    }
    const out: MulticastHops = { deliverLocally, nextHops: [...hops].sort((a, b) => a - b) };
    if (this.#mcastCache.size >= this.#limits.treeCacheSize * 16) this.#mcastCache.clear();
    this.#mcastCache.set(key, out);
    return out;
  }

  members(group: number): number[] {
    const out: number[] = [];
    for (const o of this.#db.origins()) {
      if (o.groups.get(group)?.value === 1) out.push(o.id);
    }
    return out.sort((a, b) => a - b);
  }

  anycastNearest(group: number): number | undefined {
    if (this.#localGroups.has(group)) return this.#id;
    let best: number | undefined;
    let bestCost = Number.POSITIVE_INFINITY;
    for (const m of this.members(group)) {
      const r = this.#routes.get(m);
      if (r !== undefined && (r.cost < bestCost || (r.cost === bestCost && best !== undefined && m < best))) {
        best = m;
        bestCost = r.cost;
      }
    }
    return best;
  }

  disjointPaths(src: number, dst: number, k: number): DisjointPath[] {
    const g = this.#ensureGraph();
    const s = g.indexOf(src);
    const d = g.indexOf(dst);
    if (s === undefined || d === undefined) return [];
    return disjointPaths(g, s, d, k);
  }

  // ---------------------------------------------------------------- internals

  #isMember(node: number, group: number): boolean {
    if (node === this.#id) return this.#localGroups.has(group);
    return this.#db.get(RouteItemKind.Group, node, group)?.value === 1;
  }

  #ensureGraph(): Graph {
    if (this.#graph !== undefined && this.#graphGen === this.#db.edgeGeneration) return this.#graph;
    let m = 0;
    for (const o of this.#db.origins()) m += o.edges.size;
    if (this.#edgeBuf.from.length < m) {
      const cap = Math.max(m, this.#edgeBuf.from.length * 2);
      this.#edgeBuf = { from: new Uint32Array(cap), to: new Uint32Array(cap), cost: new Float64Array(cap) };
    }
    const { from, to, cost } = this.#edgeBuf;
    const nodes: number[] = [this.#id];
    let k = 0;
    for (const o of this.#db.origins()) {
      nodes.push(o.id);
      for (const e of o.edges.values()) {
        if (e.value === ROUTE_COST_DOWN) continue;
        // Two-way check (as OSPF's): an edge is used only while both ends advertise it up. A node
        // that still hears its neighbour over a link whose other direction failed keeps
        // advertising it, and routing over it would blackhole traffic (issue 11).
        const back = this.#db.get(RouteItemKind.Edge, e.key, o.id);
        if (back === undefined || back.value === ROUTE_COST_DOWN) {
          this.#stats.oneWayEdges++;
          continue;
        }
        from[k] = o.id;
        to[k] = e.key;
        cost[k] = e.value;
        k++;
      }
    }
    this.#graph = Graph.fromArrays(nodes, from, to, cost, k, this.#graph);
    this.#graphGen = this.#db.edgeGeneration;
    this.#trees.clear();
    return this.#graph;
  }

  #tree(g: Graph, root: number): ShortestPathTree {
    const id = g.ids[root] as number;
    const hit = this.#trees.get(id);
    if (hit !== undefined) {
      this.#trees.delete(id);
      this.#trees.set(id, hit);
      return hit.tree;
    }
    const tree = dijkstra(g, root);
    if (this.#trees.size >= this.#limits.treeCacheSize) {
      const oldest = this.#trees.keys().next().value;
      if (oldest !== undefined) this.#trees.delete(oldest);
    }
    this.#trees.set(id, { tree });
    return tree;
  }

  #event(e: RoutingEvent): void {
    if (this.#events.length - this.#eventHead >= this.#limits.maxEvents) {
      this.#eventHead++;
      this.#stats.dropEvents++;
    }
    if (this.#eventHead > 1024 && this.#eventHead * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#eventHead);
      this.#eventHead = 0;
    }
    this.#events.push(e);
  }
}
