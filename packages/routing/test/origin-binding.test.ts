/**
 * Issue 12: routing items bound to their origin. An off-path attacker who can send one datagram
 * "from" a neighbour (the router's `receive` with that neighbour as `from`) tries to withdraw a real
 * edge for good with the highest version, to inject a route to a node that does not exist, to route
 * to node 0, and to fill the tables. Each attempt is either refused outright (counted) or, where
 * nothing but the origin itself can tell (another node's items, without keys), undone by the
 * origin within one flood, after which the edge works as before: no version freezes it.
 */
import { ROUTE_COST_DOWN, type RouteItem, RouteItemKind } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { compareVersion } from "../src/index.ts";
import { MemNet } from "./helpers/mem.ts";

const Edge = RouteItemKind.Edge;

/** A square 1-2-3-4-1 plus a tail 4-5; incarnations 101..105. */
function square(opts: ConstructorParameters<typeof MemNet>[0] = {}): MemNet {
  const net = new MemNet(opts);
  for (let i = 1; i <= 5; i++) net.add(i, { incarnation: 100 + i });
  net.link(1, 2);
  net.link(2, 3);
  net.link(3, 4);
  net.link(4, 1);
  net.link(4, 5);
  net.run();
  expect(net.agree()).toBe(true);
  return net;
}

function edge(net: MemNet, at: number, origin: number, key: number): RouteItem {
  const it = net
    .r(at)
    .database()
    .find((i) => i.kind === Edge && i.origin === origin && i.key === key);
  if (it === undefined) throw new Error(`no edge ${origin}->${key} at ${at}`);
  return it;
}

/** Every node's routes, for before/after comparison. */
function routes(net: MemNet): string {
  const out: string[] = [];
  for (const [id, r] of net.routers)
    for (let d = 1; d <= 5; d++) if (d !== id) out.push(`${id}>${d}:${JSON.stringify(r.route(d) ?? null)}`);
  return out.join("\n");
}

/** One forged RouteUpdate at `to`, claiming to come from its neighbour `from`. */
function forge(net: MemNet, to: number, from: number, items: RouteItem[]): void {
  net.r(to).receive(net.now, from, { _tag: "RouteUpdate", items });
  net.pump();
}

describe("routing items bound to their origin (issue 12)", () => {
  it("versions compare in serial arithmetic: no sequence number is a maximum", () => {
    expect(compareVersion(7, 0, 7, 0xffffffff)).toBe(1);
    expect(compareVersion(7, 0xffffffff, 7, 5)).toBe(-1);
    expect(compareVersion(7, 5 + 2 ** 31 - 1, 7, 5)).toBe(1);
    expect(compareVersion(8, 0, 7, 5)).toBe(1);
  });

  it("a neighbour's edge withdrawn with the highest version (same incarnation) is refused, routes unchanged", () => {
    const net = square();
    const before = routes(net);
    const real = edge(net, 2, 1, 4);
    const stats = net.r(2).stats;
    const stale0 = stats.itemsStale;
    // seq 0xFFFFFFFF is "older" in serial arithmetic (more than 2^31 behind); seq + 2^31 - 1 is
    // newer but beyond the jump window.
    forge(net, 2, 1, [
      { ...real, seq: 0xffffffff, value: ROUTE_COST_DOWN },
      { ...real, seq: (real.seq + 2 ** 31 - 1) >>> 0, value: ROUTE_COST_DOWN },
    ]);
    expect(stats.itemsStale - stale0).toBe(1);
    expect(stats.dropVersionJump).toBe(1);
    expect(edge(net, 2, 1, 4)).toEqual(real);
    net.run();
    expect(routes(net)).toBe(before);
    expect(net.agree()).toBe(true);
  });

  it("an edge withdrawn under the highest incarnation and sequence number is undone by its origin in one flood, and not frozen", () => {
    const net = square();
    const before = routes(net);
    // A new incarnation may be a restart: nothing but node 5 can tell this one is forged.
    const real = edge(net, 2, 5, 4);
    forge(net, 2, 1, [{ ...real, incarnation: 0xffffffff, seq: 0xffffffff, value: ROUTE_COST_DOWN }]);
    net.run();
    expect(net.r(5).stats.selfReissued).toBeGreaterThan(0);
    const healed = edge(net, 2, 5, 4);
    expect(healed.value).toBe(real.value);
    expect(compareVersion(healed.incarnation, healed.seq, 0xffffffff, 0xffffffff)).toBe(1);
    expect(routes(net)).toBe(before);
    expect(net.agree()).toBe(true);
    // The edge still follows the real link: down, then up again.
    net.unlink(4, 5);
    net.run();
    expect(net.r(1).nextHop(5)).toBeUndefined();
    net.link(4, 5);
    net.run();
    expect(routes(net)).toBe(before);
  });

  it("a route to a node that does not exist: refused with the configured node set; without it, gone within one flood", () => {
    const fake = (origin: number, key: number, seq = 1): RouteItem => ({
      kind: Edge,
      origin,
      key,
      incarnation: 0xffffffff,
      seq,
      value: 1,
    });
    // With the overlay's node ids configured: refused, counted.
    const strict = square({ nodes: [1, 2, 3, 4, 5] });
    const before = routes(strict);
    forge(strict, 2, 1, [fake(3, 99), fake(99, 3)]);
    expect(strict.r(2).stats.dropBadNode).toBe(2);
    strict.run();
    expect(strict.r(2).route(99)).toBeUndefined();
    expect(routes(strict)).toBe(before);
    // Without: the edge 3->99 is node 3's to deny; 99->3 alone is one-way and routes nowhere.
    const net = square();
    forge(net, 2, 1, [fake(3, 99), fake(99, 3)]);
    net.run();
    for (const r of net.routers.values()) expect(r.route(99)).toBeUndefined();
    expect(edge(net, 2, 3, 99).value).toBe(ROUTE_COST_DOWN);
    // ... and the origin that never becomes reachable ages out.
    net.run(net.now + 70_000);
    expect(
      net
        .r(2)
        .database()
        .some((i) => i.origin === 99),
    ).toBe(false);
  });

  it("node 0 and 0xFFFFFFFF are never accepted, as origin or edge end", () => {
    const net = square();
    const before = routes(net);
    const it = (origin: number, key: number): RouteItem => ({
      kind: Edge,
      origin,
      key,
      incarnation: 1,
      seq: 1,
      value: 1,
    });
    forge(net, 2, 1, [it(0, 1), it(1, 0), it(0xffffffff, 1), it(1, 0xffffffff)]);
    expect(net.r(2).stats.dropBadNode).toBe(4);
    net.run();
    expect(net.r(2).route(0)).toBeUndefined();
    expect(routes(net)).toBe(before);
  });

  it("forged origins fill the bounded table only up to its limit, counted; real routes stay", () => {
    const net = square({ limits: { maxOrigins: 8 } });
    const before = routes(net);
    const items: RouteItem[] = [];
    for (let o = 1000; o < 1100; o++)
      items.push({ kind: Edge, origin: o, key: 1, incarnation: 1, seq: 1, value: 1 });
    for (let i = 0; i < items.length; i += 50) forge(net, 2, 1, items.slice(i, i + 50));
    expect(net.r(2).database().length).toBeGreaterThan(0);
    for (const r of net.routers.values()) {
      expect(new Set(r.database().map((i) => i.origin)).size).toBeLessThanOrEqual(8);
    }
    expect(net.r(2).stats.dropFull).toBeGreaterThan(0);
    net.run();
    expect(routes(net)).toBe(before);
  });

  it("a genuine restart with a new incarnation (higher or lower) is still adopted", () => {
    for (const inc of [1, 0xfffffff0]) {
      const net = square();
      net.crash(5);
      net.run();
      net.add(5, { incarnation: inc });
      net.link(4, 5);
      net.run();
      expect(net.agree()).toBe(true);
      expect(net.r(1).route(5)?.path).toEqual([1, 4, 5]);
    }
  });
});
