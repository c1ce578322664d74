import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bfs, dijkstra, disjointPaths, firstHops, Graph, type GraphEdge } from "../src/index.ts";

/** Random directed graphs on ids with small costs (so that ties are common). */
const graphArb = (maxN: number, maxCost: number) =>
  fc
    .integer({ min: 2, max: maxN })
    .chain((n) =>
      fc.tuple(
        fc.constant(n),
        fc.uniqueArray(fc.tuple(fc.nat(n - 1), fc.nat(n - 1), fc.integer({ min: 1, max: maxCost })), {
          maxLength: n * 3,
          selector: ([a, b]) => `${a}-${b}`,
        }),
        fc.nat(1000),
      ),
    )
    .map(([n, raw, salt]) => {
      // ids are not 0..n-1 and not in creation order
      const ids = Array.from({ length: n }, (_, i) => ((i * 37 + salt) % 1009) + 1);
      const edges: GraphEdge[] = raw
        .filter(([a, b]) => a !== b)
        .map(([a, b, c]) => ({ from: ids[a] as number, to: ids[b] as number, cost: c }));
      return { ids, edges };
    });

function floyd(ids: number[], edges: GraphEdge[]): Map<string, number> {
  const d = new Map<string, number>();
  const get = (a: number, b: number) => d.get(`${a},${b}`) ?? (a === b ? 0 : Number.POSITIVE_INFINITY);
  for (const e of edges) d.set(`${e.from},${e.to}`, Math.min(get(e.from, e.to), e.cost));
  for (const k of ids)
    for (const i of ids)
      for (const j of ids) {
        const via = get(i, k) + get(k, j);
        if (via < get(i, j)) d.set(`${i},${j}`, via);
      }
  return new Map(ids.flatMap((i) => ids.map((j) => [`${i},${j}`, get(i, j)] as [string, number])));
}

describe("Graph and Dijkstra", () => {
  it("distances equal Floyd-Warshall's and the parent is the smallest-id tight predecessor", () => {
    fc.assert(
      fc.property(graphArb(12, 3), ({ ids, edges }) => {
        const g = Graph.fromEdges(ids, edges);
        const fw = floyd(ids, edges);
        for (const s of ids) {
          const si = g.indexOf(s) as number;
          const t = dijkstra(g, si);
          for (const v of ids) {
            const vi = g.indexOf(v) as number;
            expect(t.dist[vi]).toBe(fw.get(`${s},${v}`));
            if (v === s || !Number.isFinite(t.dist[vi] as number)) {
              expect(t.parent[vi]).toBe(-1);
              continue;
            }
            const tight = edges
              .filter((e) => e.to === v && (fw.get(`${s},${e.from}`) as number) + e.cost === t.dist[vi])
              .map((e) => e.from);
            expect(g.ids[t.parent[vi] as number]).toBe(Math.min(...tight));
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  it("gives the same trees whatever order the edges arrive in", () => {
    fc.assert(
      fc.property(graphArb(15, 2), fc.nat(), ({ ids, edges }, seed) => {
        const shuffled = [...edges];
        let x = seed;
        for (let i = shuffled.length - 1; i > 0; i--) {
          x = (x * 1103515245 + 12345) >>> 0;
          const j = x % (i + 1);
          [shuffled[i], shuffled[j]] = [shuffled[j] as GraphEdge, shuffled[i] as GraphEdge];
        }
        const a = Graph.fromEdges([...ids].reverse(), edges);
        const b = Graph.fromEdges(ids, shuffled);
        for (let r = 0; r < a.size; r++) {
          const ta = dijkstra(a, r);
          const tb = dijkstra(b, r);
          expect([...ta.parent]).toEqual([...tb.parent]);
          expect([...firstHops(ta)]).toEqual([...firstHops(tb)]);
        }
      }),
      { numRuns: 100 },
    );
  });

  it("reusing the previous numbering gives the same graph as compiling afresh", () => {
    fc.assert(
      fc.property(graphArb(12, 5), fc.nat(), ({ ids, edges }, drop) => {
        const arrays = (es: GraphEdge[]) => ({
          from: Uint32Array.from(es.map((e) => e.from)),
          to: Uint32Array.from(es.map((e) => e.to)),
          cost: Float64Array.from(es.map((e) => e.cost)),
        });
        const prev = Graph.fromEdges(ids, edges);
        // a changed edge set over the same nodes (reused numbering) or over fewer nodes (not reused)
        const next = edges
          .filter((_, i) => i !== drop % Math.max(1, edges.length))
          .map((e) => ({ ...e, cost: e.cost + 1 }));
        for (const nodes of [ids, ids.slice(1)]) {
          const a = arrays(next);
          const reused = Graph.fromArrays(nodes, a.from, a.to, a.cost, next.length, prev);
          const fresh = Graph.fromArrays(nodes, a.from, a.to, a.cost, next.length);
          expect([...reused.ids]).toEqual([...fresh.ids]);
          expect([...reused.offsets]).toEqual([...fresh.offsets]);
          expect([...reused.adjTo]).toEqual([...fresh.adjTo]);
          expect([...reused.adjCost]).toEqual([...fresh.adjCost]);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("BFS (the benchmark baseline) agrees with Dijkstra on unit costs", () => {
    fc.assert(
      fc.property(graphArb(20, 1), ({ ids, edges }) => {
        const g = Graph.fromEdges(ids, edges);
        const h = bfs(g, 0);
        const t = dijkstra(g, 0);
        for (let i = 0; i < g.size; i++) {
          expect(h[i]).toBe(Number.isFinite(t.dist[i] as number) ? t.dist[i] : -1);
        }
      }),
      { numRuns: 100 },
    );
  });
});

/** All simple paths from s to d (ids), by brute force. */
function simplePaths(edges: GraphEdge[], s: number, d: number): { nodes: number[]; cost: number }[] {
  const out: { nodes: number[]; cost: number }[] = [];
  const walk = (u: number, path: number[], cost: number) => {
    if (u === d) {
      out.push({ nodes: [...path], cost });
      return;
    }
    for (const e of edges) {
      if (e.from !== u || path.includes(e.to)) continue;
      path.push(e.to);
      walk(e.to, path, cost + e.cost);
      path.pop();
    }
  };
  walk(s, [s], 0);
  return out;
}

/** The largest number (<= k) of internally node-disjoint paths, and the least total cost for it. */
function bestDisjoint(
  paths: { nodes: number[]; cost: number }[],
  k: number,
): { count: number; cost: number } {
  let best = { count: 0, cost: 0 };
  const rec = (start: number, chosen: { nodes: number[]; cost: number }[], used: Set<number>) => {
    const cost = chosen.reduce((s, p) => s + p.cost, 0);
    if (chosen.length > best.count || (chosen.length === best.count && cost < best.cost)) {
      best = { count: chosen.length, cost };
    }
    if (chosen.length === k) return;
    for (let i = start; i < paths.length; i++) {
      const p = paths[i] as { nodes: number[]; cost: number };
      const inner = p.nodes.slice(1, -1);
      if (inner.some((x) => used.has(x))) continue;
      // two direct edges s->d count once
      if (inner.length === 0 && chosen.some((c) => c.nodes.length === 2)) continue;
      for (const x of inner) used.add(x);
      chosen.push(p);
      rec(i + 1, chosen, used);
      chosen.pop();
      for (const x of inner) used.delete(x);
    }
  };
  rec(0, [], new Set());
  return best;
}

describe("K node-disjoint paths", () => {
  it("finds the most disjoint paths (up to K) at the least total cost, all valid", () => {
    fc.assert(
      fc.property(graphArb(7, 4), fc.integer({ min: 1, max: 3 }), ({ ids, edges }, k) => {
        const g = Graph.fromEdges(ids, edges);
        const s = ids[0] as number;
        const d = ids[ids.length - 1] as number;
        const got = disjointPaths(g, g.indexOf(s) as number, g.indexOf(d) as number, k);
        const want = bestDisjoint(simplePaths(edges, s, d), k);
        expect(got.length).toBe(want.count);
        expect(got.reduce((x, p) => x + p.cost, 0)).toBe(want.cost);
        const seen = new Set<number>();
        for (const p of got) {
          expect(p.nodes[0]).toBe(s);
          expect(p.nodes[p.nodes.length - 1]).toBe(d);
          let c = 0;
          for (let i = 1; i < p.nodes.length; i++) {
            const e = edges.find((x) => x.from === p.nodes[i - 1] && x.to === p.nodes[i]);
            expect(e).toBeDefined();
            c += e?.cost ?? 0;
          }
          expect(c).toBe(p.cost);
          for (const x of p.nodes.slice(1, -1)) {
            expect(seen.has(x)).toBe(false);
            seen.add(x);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
