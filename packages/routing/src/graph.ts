/**
 * A compiled directed graph (compressed sparse rows) with node ids sorted ascending, so that every
 * node that compiles the same database gets the same indices, and the shortest-path algorithms on
 * it: Dijkstra with the canonical tie-break, a BFS baseline, and K node-disjoint paths.
 */

export interface GraphEdge {
  readonly from: number;
  readonly to: number;
  readonly cost: number;
}

interface CompiledGraph {
  readonly ids: Uint32Array;
  readonly index: Map<number, number>;
  readonly offsets: Uint32Array;
  readonly adjTo: Uint32Array;
  readonly adjCost: Float64Array;
}

export class Graph {
  /** Node ids, ascending; index i is node ids[i]. */
  readonly ids: Uint32Array;
  readonly #index: Map<number, number>;
  /** Outgoing edges of node i are adjTo/adjCost[offsets[i] .. offsets[i+1]), targets ascending. */
  readonly offsets: Uint32Array;
  readonly adjTo: Uint32Array;
  readonly adjCost: Float64Array;

  /** Use `Graph.fromEdges` or `Graph.fromArrays`. */
  constructor(c: CompiledGraph) {
    this.ids = c.ids;
    this.#index = c.index;
    this.offsets = c.offsets;
    this.adjTo = c.adjTo;
    this.adjCost = c.adjCost;
  }

  /** Builds from node ids (nodes without edges included) and directed edges between ids. */
  static fromEdges(nodeIds: Iterable<number>, edges: readonly GraphEdge[]): Graph {
    const m = edges.length;
    const from = new Uint32Array(m);
    const to = new Uint32Array(m);
    const cost = new Float64Array(m);
    edges.forEach((e, i) => {
      from[i] = e.from;
      to[i] = e.to;
      cost[i] = e.cost;
    });
    return new Graph(Graph.#compile(nodeIds, from, to, cost, m));
  }

  /**
   * Builds from parallel arrays of edge endpoints (ids) and costs; the first `m` entries are used.
   * With `prev`, reuses its node numbering when the node set is unchanged (the common case).
   */
  static fromArrays(
    nodeIds: readonly number[],
    from: Uint32Array,
    to: Uint32Array,
    cost: Float64Array,
    m: number,
    prev?: Graph,
  ): Graph {
    if (prev !== undefined) {
      const same = Graph.#reuse(prev, nodeIds, from, to, m);
      if (same !== undefined) return new Graph(Graph.#rows(prev.ids, prev.#index, same.fi, same.ti, cost, m));
    }
    return new Graph(Graph.#compile(nodeIds, from, to, cost, m));
  }

  /** The edge endpoints as prev's indices, if nodeIds plus endpoints are exactly prev's node set. */
  static #reuse(
    prev: Graph,
    nodeIds: readonly number[],
    from: Uint32Array,
    to: Uint32Array,
    m: number,
  ): { fi: Uint32Array; ti: Uint32Array } | undefined {
    const index = prev.#index;
    const seen = new Uint8Array(prev.size);
    let count = 0;
    const mark = (id: number): number => {
      const i = index.get(id);
      if (i === undefined) return -1;
      if (seen[i] === 0) {
        seen[i] = 1;
        count++;
      }
      return i;
    };
    for (const id of nodeIds) if (mark(id) < 0) return undefined;
    const fi = new Uint32Array(m);
    const ti = new Uint32Array(m);
    for (let k = 0; k < m; k++) {
      const f = mark(from[k] as number);
      const t = mark(to[k] as number);
      if (f < 0 || t < 0) return undefined;
      fi[k] = f;
      ti[k] = t;
    }
    return count === prev.size ? { fi, ti } : undefined;
  }

  static #compile(
    nodeIds: Iterable<number>,
    from: Uint32Array,
    to: Uint32Array,
    cost: Float64Array,
    m: number,
  ): CompiledGraph {
    const set = new Set<number>(nodeIds);
    for (let i = 0; i < m; i++) {
      set.add(from[i] as number);
      set.add(to[i] as number);
    }
    const ids = Uint32Array.from(set).sort();
    const index = new Map<number, number>();
    for (let i = 0; i < ids.length; i++) index.set(ids[i] as number, i);
    const fi = new Uint32Array(m);
    const ti = new Uint32Array(m);
    for (let i = 0; i < m; i++) {
      fi[i] = index.get(from[i] as number) as number;
      ti[i] = index.get(to[i] as number) as number;
    }
    return Graph.#rows(ids, index, fi, ti, cost, m);
  }

  /** Compressed rows from edges given as node indices, each row sorted by target. */
  static #rows(
    ids: Uint32Array,
    index: Map<number, number>,
    fi: Uint32Array,
    ti: Uint32Array,
    cost: Float64Array,
    m: number,
  ): CompiledGraph {
    const n = ids.length;
    const counts = new Uint32Array(n + 1);
    for (let i = 0; i < m; i++) {
      const f = fi[i] as number;
      counts[f + 1] = (counts[f + 1] as number) + 1;
    }
    for (let i = 0; i < n; i++) counts[i + 1] = (counts[i + 1] as number) + (counts[i] as number);
    const fill = counts.slice(0, n);
    const adjTo = new Uint32Array(m);
    const adjCost = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      const f = fi[i] as number;
      const at = fill[f] as number;
      adjTo[at] = ti[i] as number;
      adjCost[at] = cost[i] as number;
      fill[f] = at + 1;
    }
    // sort each row by target index (insertion sort: rows are short)
    for (let i = 0; i < n; i++) {
      const lo = counts[i] as number;
      const hi = counts[i + 1] as number;
      for (let a = lo + 1; a < hi; a++) {
        const t = adjTo[a] as number;
        const c = adjCost[a] as number;
        let b = a - 1;
        while (b >= lo && (adjTo[b] as number) > t) {
          adjTo[b + 1] = adjTo[b] as number;
          adjCost[b + 1] = adjCost[b] as number;
          b--;
        }
        adjTo[b + 1] = t;
        adjCost[b + 1] = c;
      }
    }
    return { ids, index, offsets: counts, adjTo, adjCost };
  }

  get size(): number {
    return this.ids.length;
  }

  get edgeCount(): number {
    return this.adjTo.length;
  }

  indexOf(id: number): number | undefined {
    return this.#index.get(id);
  }
}

/** A shortest-path tree: `dist[i]` (Infinity when unreachable), `parent[i]` (-1 at root or unreachable). */
export interface ShortestPathTree {
  readonly root: number;
  readonly dist: Float64Array;
  readonly parent: Int32Array;
  /** Indices in the order they were settled (non-decreasing distance); reachable nodes only. */
  readonly order: Int32Array;
}

/**
 * Dijkstra from `root` (an index). Tie-break, a function of the graph only: among equal-cost paths,
 * the parent of v is the smallest-id predecessor u with dist[u] + cost(u, v) = dist[v]. Costs must
 * be positive, so every such u is settled, and has relaxed v, before v is settled.
 */
export function dijkstra(g: Graph, root: number): ShortestPathTree {
  const n = g.size;
  const dist = new Float64Array(n).fill(Number.POSITIVE_INFINITY);
  const parent = new Int32Array(n).fill(-1);
  const done = new Uint8Array(n);
  const order = new Int32Array(n);
  let settled = 0;
  // binary heap of (dist, index) with lazy deletion; ties pop the smaller index first
  let hd = new Float64Array(Math.max(16, n));
  let hi = new Int32Array(Math.max(16, n));
  let hs = 0;
  const push = (d: number, i: number): void => {
    if (hs === hd.length) {
      const nd = new Float64Array(hs * 2);
      nd.set(hd);
      hd = nd;
      const ni = new Int32Array(hs * 2);
      ni.set(hi);
      hi = ni;
    }
    let k = hs++;
    while (k > 0) {
      const p = (k - 1) >> 1;
      const pd = hd[p] as number;
      if (pd < d || (pd === d && (hi[p] as number) < i)) break;
      hd[k] = pd;
      hi[k] = hi[p] as number;
      k = p;
    }
    hd[k] = d;
    hi[k] = i;
  };
  const offsets = g.offsets;
  const adjTo = g.adjTo;
  const adjCost = g.adjCost;
  dist[root] = 0;
  push(0, root);
  while (hs > 0) {
    const u = hi[0] as number;
    const du = hd[0] as number;
    // pop
    hs--;
    if (hs > 0) {
      const ld = hd[hs] as number;
      const li = hi[hs] as number;
      let k = 0;
      for (;;) {
        const l = 2 * k + 1;
        if (l >= hs) break;
        const r = l + 1;
        let m = l;
        if (r < hs) {
          const rd = hd[r] as number;
          const ldd = hd[l] as number;
          if (rd < ldd || (rd === ldd && (hi[r] as number) < (hi[l] as number))) m = r;
        }
        const md = hd[m] as number;
        if (md > ld || (md === ld && (hi[m] as number) > li)) break;
        hd[k] = md;
        hi[k] = hi[m] as number;
        k = m;
      }
      hd[k] = ld;
      hi[k] = li;
    }
    if (done[u] === 1 || du > (dist[u] as number)) continue;
    done[u] = 1;
    order[settled++] = u;
    const end = offsets[u + 1] as number;
    for (let e = offsets[u] as number; e < end; e++) {
      const v = adjTo[e] as number;
      if (done[v] === 1) continue;
      const nd = du + (adjCost[e] as number);
      const dv = dist[v] as number;
      if (nd < dv) {
        dist[v] = nd;
        parent[v] = u;
        push(nd, v);
      } else if (nd === dv && u < (parent[v] as number)) {
        parent[v] = u;
      }
    }
  }
  return { root, dist, parent, order: order.subarray(0, settled) };
}

/** Breadth-first search from `root` ignoring costs: the benchmark's baseline. Returns hop counts. */
export function bfs(g: Graph, root: number): Int32Array {
  const n = g.size;
  const hops = new Int32Array(n).fill(-1);
  const queue = new Int32Array(n);
  let head = 0;
  let tail = 0;
  hops[root] = 0;
  queue[tail++] = root;
  while (head < tail) {
    const u = queue[head++] as number;
    const end = g.offsets[u + 1] as number;
    for (let e = g.offsets[u] as number; e < end; e++) {
      const v = g.adjTo[e] as number;
      if (hops[v] === -1) {
        hops[v] = (hops[u] as number) + 1;
        queue[tail++] = v;
      }
    }
  }
  return hops;
}

/** First hop (an index) from the root towards each node, or -1; the root maps to itself. */
export function firstHops(t: ShortestPathTree): Int32Array {
  const first = new Int32Array(t.dist.length).fill(-1);
  for (const v of t.order) {
    const p = t.parent[v] as number;
    if (p === -1) first[v] = v;
    else if (p === t.root) first[v] = v;
    else first[v] = first[p] as number;
  }
  return first;
}

/** The node indices from the root to `v` along the tree, or undefined when unreachable. */
export function treePath(t: ShortestPathTree, v: number): number[] | undefined {
  if (!Number.isFinite(t.dist[v] as number)) return undefined;
  const path: number[] = [];
  for (let x = v; x !== -1; x = t.parent[x] as number) path.push(x);
  return path.reverse();
}

export interface DisjointPath {
  /** Node ids from source to destination, inclusive. */
  readonly nodes: number[];
  readonly cost: number;
}

/**
 * Up to `k` node-disjoint paths from `src` to `dst` (indices) of least total cost: min-cost flow on
 * the node-split graph (v_in -> v_out with capacity 1), successive shortest paths found with
 * Bellman-Ford (queue-based) because residual arcs carry negative costs. Deterministic.
 */
export function disjointPaths(g: Graph, src: number, dst: number, k: number): DisjointPath[] {
  if (src === dst) return [{ nodes: [g.ids[src] as number], cost: 0 }];
  const n = g.size;
  const V = 2 * n; // in(v) = 2v, out(v) = 2v+1
  const m = g.edgeCount + n;
  // arcs stored in pairs (forward, reverse)
  const to = new Int32Array(2 * m);
  const cap = new Int8Array(2 * m);
  const cost = new Float64Array(2 * m);
  const next = new Int32Array(2 * m);
  const head = new Int32Array(V).fill(-1);
  let a = 0;
  const add = (u: number, v: number, c: number, w: number): void => {
    to[a] = v;
    cap[a] = c;
    cost[a] = w;
    next[a] = head[u] as number;
    head[u] = a++;
    to[a] = u;
    cap[a] = 0;
    cost[a] = -w;
    next[a] = head[v] as number;
    head[v] = a++;
  };
  // add in reverse id order so adjacency lists iterate ascending (deterministic)
  for (let v = n - 1; v >= 0; v--) {
    const end = g.offsets[v + 1] as number;
    for (let e = end - 1; e >= (g.offsets[v] as number); e--) {
      const w = g.adjTo[e] as number;
      if (w === src || v === dst) continue;
      add(2 * v + 1, 2 * w, 1, g.adjCost[e] as number);
    }
    add(2 * v, 2 * v + 1, v === src || v === dst ? k : 1, 0);
  }
  const s = 2 * src + 1;
  const t = 2 * dst;
  const dist = new Float64Array(V);
  const via = new Int32Array(V);
  const inQueue = new Uint8Array(V);
  const queue = new Int32Array(V + 1);
  let found = 0;
  for (; found < k; found++) {
    dist.fill(Number.POSITIVE_INFINITY);
    via.fill(-1);
    dist[s] = 0;
    let qh = 0;
    let qt = 0;
    let qn = 0;
    queue[qt] = s;
    qt = (qt + 1) % queue.length;
    qn++;
    inQueue[s] = 1;
    while (qn > 0) {
      const u = queue[qh] as number;
      qh = (qh + 1) % queue.length;
      qn--;
      inQueue[u] = 0;
      for (let e = head[u] as number; e !== -1; e = next[e] as number) {
        if ((cap[e] as number) <= 0) continue;
        const v = to[e] as number;
        const nd = (dist[u] as number) + (cost[e] as number);
        if (nd < (dist[v] as number)) {
          dist[v] = nd;
          via[v] = e;
          if (inQueue[v] === 0) {
            inQueue[v] = 1;
            queue[qt] = v;
            qt = (qt + 1) % queue.length;
            qn++;
          }
        }
      }
    }
    if (!Number.isFinite(dist[t] as number)) break;
    for (let v = t; v !== s; v = to[(via[v] as number) ^ 1] as number) {
      const e = via[v] as number;
      cap[e] = (cap[e] as number) - 1;
      cap[e ^ 1] = (cap[e ^ 1] as number) + 1;
    }
  }
  // decompose: follow saturated forward arcs out of the source
  const paths: DisjointPath[] = [];
  for (let p = 0; p < found; p++) {
    const nodes: number[] = [g.ids[src] as number];
    let c = 0;
    let u = s;
    while (u !== t) {
      let moved = false;
      for (let e = head[u] as number; e !== -1; e = next[e] as number) {
        if ((e & 1) === 0 && (cap[e ^ 1] as number) > 0) {
          cap[e ^ 1] = (cap[e ^ 1] as number) - 1;
          c += cost[e] as number;
          const v = to[e] as number;
          if ((v & 1) === 0) nodes.push(g.ids[v >> 1] as number);
          u = v;
          moved = true;
          break;
        }
      }
      if (!moved) break;
    }
    paths.push({ nodes, cost: c });
  }
  paths.sort((x, y) => x.cost - y.cost || x.nodes.length - y.nodes.length || cmpLex(x.nodes, y.nodes));
  return paths;
}

function cmpLex(a: number[], b: number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}
