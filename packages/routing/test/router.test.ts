import { CapacityError, ConfigError } from "@spines-ts/primitives";
import { ROUTE_COST_DOWN, type RouteItem, RouteItemKind } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { Metric, Router, UnknownNeighborError } from "../src/index.ts";
import { MemNet } from "./helpers/mem.ts";

function line(n: number, net = new MemNet()): MemNet {
  for (let i = 1; i <= n; i++) net.add(i);
  for (let i = 1; i < n; i++) net.link(i, i + 1);
  net.run();
  return net;
}

describe("Router: flooding and databases", () => {
  it("two nodes exchange their edges and route to each other", () => {
    const net = line(2);
    expect(net.agree()).toBe(true);
    const db = net.r(1).database();
    expect(db.map((i) => [i.origin, i.key, i.value])).toEqual([
      [1, 2, 1],
      [2, 1, 1],
    ]);
    expect(net.r(1).nextHop(2)).toBe(2);
    expect(net.r(2).route(1)).toEqual({ dst: 1, nextHop: 1, cost: 1, path: [2, 1] });
    expect(net.events.get(1)).toContainEqual({ type: "routeChanged", dst: 2, nextHop: 2, cost: 1 });
    expect(net.r(1).unacknowledged).toBe(0);
  });

  it("a line of 5: routes, paths, and withdrawal when a link fails", () => {
    const net = line(5);
    expect(net.agree()).toBe(true);
    expect(net.r(1).route(5)?.path).toEqual([1, 2, 3, 4, 5]);
    expect(net.r(5).nextHop(1)).toBe(4);
    net.unlink(3, 4);
    net.run();
    expect(net.agree([1, 2, 3])).toBe(true);
    expect(net.agree([4, 5])).toBe(true);
    expect(net.r(1).nextHop(5)).toBeUndefined();
    expect(net.r(1).nextHop(3)).toBe(2);
    expect(net.events.get(1)).toContainEqual({
      type: "routeChanged",
      dst: 5,
      nextHop: undefined,
      cost: undefined,
    });
    const e34 = net
      .r(1)
      .database()
      .find((i) => i.origin === 3 && i.key === 4);
    expect(e34?.value).toBe(ROUTE_COST_DOWN);
    net.link(3, 4);
    net.run();
    expect(net.r(1).nextHop(5)).toBe(2);
    expect(net.agree()).toBe(true);
  });

  it("equal-cost paths break ties toward the smaller id, the same way at every node", () => {
    // square 1-2-4 and 1-3-4, plus 5 hanging off 4
    const net = new MemNet();
    for (const id of [1, 2, 3, 4, 5]) net.add(id);
    net.link(1, 3);
    net.link(3, 4);
    net.link(1, 2);
    net.link(2, 4);
    net.link(4, 5);
    net.run();
    expect(net.r(1).route(5)?.path).toEqual([1, 2, 4, 5]);
    expect(net.r(5).route(1)?.path).toEqual([5, 4, 2, 1]);
    // the source tree of 1 as computed by 4 matches 1's own choice
    expect(net.r(4).disjointPaths(5, 1, 1)[0]?.nodes).toEqual([1, 2, 4, 5]);
  });

  it("retransmits lost updates until acknowledged", () => {
    const net = new MemNet();
    let dropped = 0;
    net.drop = (_f, _t, m) => m._tag === "RouteUpdate" && dropped++ < 6;
    line(4, net);
    expect(dropped).toBeGreaterThanOrEqual(6);
    expect(net.agree()).toBe(true);
    const retx = [...net.routers.values()].reduce((s, r) => s + r.stats.itemsRetransmitted, 0);
    expect(retx).toBeGreaterThan(0);
    for (const r of net.routers.values()) expect(r.unacknowledged).toBe(0);
  });

  it("also recovers when acks are lost", () => {
    const net = new MemNet();
    let n = 0;
    net.drop = (_f, _t, m) => m._tag === "RouteAck" && n++ % 2 === 0;
    line(4, net);
    expect(net.agree()).toBe(true);
    for (const r of net.routers.values()) expect(r.unacknowledged).toBe(0);
  });

  it("a restarted node re-issues its items above the versions of its previous life", () => {
    const net = line(3);
    // many changes so that node 2's old versions are high
    for (let i = 0; i < 5; i++) {
      net.unlink(2, 3);
      net.link(2, 3);
    }
    net.run();
    const oldSeq =
      net
        .r(1)
        .database()
        .find((i) => i.origin === 2 && i.key === 3)?.seq ?? 0;
    net.crash(2);
    net.run(net.now + 10);
    net.add(2, { incarnation: 0 }); // lower incarnation than before: versions alone would lose
    net.link(1, 2);
    net.run();
    expect(net.agree([1, 2])).toBe(true);
    const e23 = net
      .r(1)
      .database()
      .find((i) => i.origin === 2 && i.key === 3) as RouteItem;
    expect(e23.value).toBe(ROUTE_COST_DOWN); // 2-3 is not up in the new life
    expect(e23.incarnation > 0 || e23.seq > oldSeq).toBe(true);
    expect(net.r(2).stats.selfReissued).toBeGreaterThan(0);
    net.link(2, 3);
    net.run();
    expect(net.agree()).toBe(true);
    expect(net.r(1).nextHop(3)).toBe(2);
  });

  it("ages out origins that stay unreachable, and keeps reachable ones", () => {
    const net = new MemNet({ originTimeoutMs: 5_000 });
    line(4, net);
    net.crash(4);
    net.run(net.now + 1_000);
    expect(
      net
        .r(1)
        .database()
        .some((i) => i.origin === 4),
    ).toBe(true);
    net.run(net.now + 6_000);
    expect(
      net
        .r(1)
        .database()
        .some((i) => i.origin === 4),
    ).toBe(false);
    expect(net.r(1).stats.originsAged).toBe(1);
    expect(
      net
        .r(1)
        .database()
        .some((i) => i.origin === 3),
    ).toBe(true);
    expect(net.agree()).toBe(true);
  });

  it("directed edges: each direction has its own cost", () => {
    const net = new MemNet({ metric: Metric.Latency, computeDelayMs: 0 });
    for (const id of [1, 2, 3]) net.add(id);
    // 1->2 slow, 2->1 fast; 1->3->2 is the fast way from 1 to 2
    net.link(1, 2, [200, 2]);
    net.link(1, 3, [2, 2]);
    net.link(3, 2, [2, 2]);
    net.run();
    expect(net.r(1).nextHop(2)).toBe(3);
    expect(net.r(2).nextHop(1)).toBe(1);
    expect(net.r(1).route(2)?.cost).toBe(100);
    expect(net.r(2).route(1)?.cost).toBe(50);
  });
});

describe("Router: coalesced computation", () => {
  it("routes change only when the delayed computation runs; queries in between stay consistent", () => {
    const net = new MemNet({ computeDelayMs: 5 });
    for (const id of [1, 2, 3, 4]) net.add(id);
    net.link(1, 2);
    net.link(2, 3);
    net.link(3, 4);
    net.link(1, 4);
    net.run();
    expect(net.r(1).route(3)?.path).toEqual([1, 2, 3]);
    const before = net.r(1).stats.computations;
    net.unlink(1, 2);
    // the withdrawal is known at once, the routes follow 5 ms later
    expect(net.r(1).routesCurrent).toBe(false);
    expect(net.r(1).nextHop(3)).toBe(2);
    net.r(1).multicast(4, 0xe0000009); // rebuilds the graph before the computation
    expect(net.r(1).route(3)?.path).toEqual([1, 2, 3]);
    net.run(net.now + 4);
    expect(net.r(1).nextHop(3)).toBe(2);
    net.run(net.now + 2);
    expect(net.r(1).route(3)?.path).toEqual([1, 4, 3]);
    expect(net.r(1).routesCurrent).toBe(true);
    net.run();
    // one computation for the burst at node 1 (its own withdrawal plus the echo from 2's side)
    expect(net.r(1).stats.computations - before).toBeLessThanOrEqual(2);
  });
});

describe("Router: metrics and hysteresis", () => {
  it("small changes are ignored, big ones wait for the hold time, the first measurement goes at once", () => {
    const net = new MemNet({ metric: Metric.Latency, hysteresis: { holdMs: 1000 } });
    net.add(1);
    net.add(2);
    net.link(1, 2);
    net.run();
    const cost = () =>
      net
        .r(2)
        .database()
        .find((i) => i.origin === 1)?.value;
    expect(cost()).toBe(3000); // unmeasured
    net.r(1).linkMetrics(net.now, 2, { rttMs: 20, loss: 0 });
    net.run(net.now + 10);
    expect(cost()).toBe(140);
    net.r(1).linkMetrics(net.now, 2, { rttMs: 21, loss: 0 }); // 145: < 10 %
    net.run(net.now + 2000);
    expect(cost()).toBe(140);
    const t = net.now;
    net.r(1).linkMetrics(net.now, 2, { rttMs: 40, loss: 0 }); // 240
    net.run(t + 10);
    expect(cost()).toBe(240); // hold time since the last change had passed
    net.r(1).linkMetrics(net.now, 2, { rttMs: 80, loss: 0 }); // 440, within hold
    net.run(net.now + 500);
    expect(cost()).toBe(240);
    net.run(t + 1100);
    expect(cost()).toBe(440);
  });
});

describe("Router: groups", () => {
  it("multicast follows the source's tree, anycast goes to the nearest member", () => {
    //      1
    //     / \
    //    2   3
    //   / \   \
    //  4   5   6
    const net = new MemNet();
    for (const id of [1, 2, 3, 4, 5, 6]) net.add(id);
    for (const [a, b] of [
      [1, 2],
      [1, 3],
      [2, 4],
      [2, 5],
      [3, 6],
    ] as const)
      net.link(a, b);
    const G = 0xe0000001;
    net.r(4).join(net.now, G);
    net.r(5).join(net.now, G);
    net.r(6).join(net.now, G);
    net.run();
    expect(net.r(1).members(G)).toEqual([4, 5, 6]);
    expect(net.r(1).multicast(1, G)).toEqual({ deliverLocally: false, nextHops: [2, 3] });
    expect(net.r(2).multicast(1, G)).toEqual({ deliverLocally: false, nextHops: [4, 5] });
    expect(net.r(4).multicast(1, G)).toEqual({ deliverLocally: true, nextHops: [] });
    expect(net.r(2).multicast(4, G)).toEqual({ deliverLocally: false, nextHops: [1, 5] });
    expect(net.r(3).multicast(4, G)).toEqual({ deliverLocally: false, nextHops: [6] });
    expect(net.r(1).anycastNearest(G)).toBe(4); // 4 and 5 at 2 hops: smaller id; 6 also at 2
    expect(net.r(3).anycastNearest(G)).toBe(6);
    net.r(6).leave(net.now, G);
    net.run();
    expect(net.r(1).members(G)).toEqual([4, 5]);
    expect(net.r(1).multicast(1, G).nextHops).toEqual([2]);
    expect(net.r(3).anycastNearest(G)).toBe(4);
    expect(net.agree()).toBe(true);
  });

  it("disjoint paths between two nodes", () => {
    const net = new MemNet();
    for (let i = 1; i <= 6; i++) net.add(i);
    // top 1-2-3, middle 1-5-3, bottom 1-4-6-3, and rungs 4-5, 5-6
    for (const [a, b] of [
      [1, 2],
      [2, 3],
      [1, 5],
      [5, 3],
      [1, 4],
      [4, 6],
      [6, 3],
      [4, 5],
      [5, 6],
    ] as const)
      net.link(a, b);
    net.run();
    expect(
      net
        .r(1)
        .disjointPaths(3, 2)
        .map((p) => p.nodes),
    ).toEqual([
      [1, 2, 3],
      [1, 5, 3],
    ]);
    expect(net.r(1).disjointPaths(3, 3)).toEqual([
      { nodes: [1, 2, 3], cost: 2 },
      { nodes: [1, 5, 3], cost: 2 },
      { nodes: [1, 4, 6, 3], cost: 3 },
    ]);
    net.unlink(2, 3);
    net.run();
    expect(net.r(1).disjointPaths(3, 3).length).toBe(2);
    expect(net.r(6).disjointPaths(3, 3, 1).length).toBe(2); // any node can answer for any pair
  });
});

describe("Router: bounds and bad input", () => {
  it("keeps its database bounded under a flood of bogus origins, counting the drops", () => {
    const net = new MemNet({ limits: { maxOrigins: 50, maxEdgesPerOrigin: 8, maxNeighbors: 8 } });
    net.add(1);
    net.add(2);
    net.link(1, 2);
    net.run();
    const r = net.r(1);
    let seq = 1;
    for (let o = 100; o < 400; o++) {
      const items: RouteItem[] = [];
      for (let k = 0; k < 12; k++) {
        items.push({
          kind: RouteItemKind.Edge,
          origin: o,
          key: 1000 + k,
          incarnation: 1,
          seq: seq++,
          value: 5,
        });
      }
      r.receive(net.now, 2, { _tag: "RouteUpdate", items });
    }
    expect(r.tableSizes().origins).toBeLessThanOrEqual(50);
    for (const o of r.database()) expect(o.origin === 1 || o.origin === 2 || o.origin >= 100).toBe(true);
    const perOrigin = new Map<number, number>();
    for (const it of r.database()) perOrigin.set(it.origin, (perOrigin.get(it.origin) ?? 0) + 1);
    for (const c of perOrigin.values()) expect(c).toBeLessThanOrEqual(8);
    expect(r.stats.dropFull).toBeGreaterThan(0);
    r.takeTransmits();
    expect(r.takeTransmits()).toEqual([]); // the take emptied the queue
  });

  it("drops self-loops, zero costs, bad group flags and strangers' messages without throwing", () => {
    const r = new Router({ id: 1, incarnation: 1, computeDelayMs: 0 });
    r.linkUp(0, 2);
    const bad: RouteItem[] = [
      { kind: RouteItemKind.Edge, origin: 5, key: 5, incarnation: 1, seq: 1, value: 1 },
      { kind: RouteItemKind.Edge, origin: 5, key: 6, incarnation: 1, seq: 1, value: 0 },
      { kind: RouteItemKind.Group, origin: 5, key: 6, incarnation: 1, seq: 1, value: 7 },
    ];
    r.receive(1, 2, { _tag: "RouteUpdate", items: bad });
    expect(r.stats.dropBadItem).toBe(3);
    r.receive(1, 9, { _tag: "RouteUpdate", items: bad });
    expect(r.stats.dropNotNeighbor).toBe(1);
    expect(r.database().every((i) => i.origin === 1)).toBe(true);
  });

  it("validates arguments and options with typed errors", () => {
    expect(() => new Router({ id: -1, incarnation: 1 })).toThrow(RangeError);
    expect(() => new Router({ id: 1, incarnation: 1, metric: "fast" as never })).toThrow(ConfigError);
    expect(() => new Router({ id: 1, incarnation: 1, limits: { maxNeighbors: 0 } })).toThrow(ConfigError);
    expect(() => new Router({ id: 1, incarnation: 1, hysteresis: { holdMs: -1 } })).toThrow(ConfigError);
    const r = new Router({ id: 1, incarnation: 1, limits: { maxNeighbors: 2, maxLocalGroups: 1 } });
    expect(() => r.linkUp(Number.NaN, 2)).toThrow(TypeError);
    expect(() => r.linkUp(0, 1)).toThrow(RangeError);
    expect(() => r.linkUp(0, 2, { rttMs: -1, loss: 0 })).toThrow(RangeError);
    expect(() => r.linkUp(0, 2, { rttMs: 1, loss: 2 })).toThrow(RangeError);
    expect(() => r.linkMetrics(0, 7, { rttMs: 1, loss: 0 })).toThrow(UnknownNeighborError);
    r.linkUp(0, 2);
    r.linkUp(0, 3);
    expect(() => r.linkUp(0, 4)).toThrow(CapacityError);
    r.join(0, 10);
    expect(() => r.join(0, 11)).toThrow(CapacityError);
    expect(() => r.disjointPaths(2, 4)).toThrow(RangeError);
  });

  it("bounds the outbox and the event queue when the driver does not drain them", () => {
    const r = new Router({
      id: 1,
      incarnation: 1,
      computeDelayMs: 0,
      limits: { maxOutbox: 5, maxEvents: 3 },
    });
    for (let n = 2; n < 12; n++) {
      r.linkUp(n, n);
      // The neighbour's edge back: a route needs both ends to advertise the link (two-way check).
      const back = { kind: RouteItemKind.Edge, origin: n, key: 1, incarnation: 1, seq: 1, value: 5 } as const;
      r.receive(n, n, { _tag: "RouteUpdate", items: [back] });
    }
    expect(r.tableSizes().outbox).toBeLessThanOrEqual(5);
    expect(r.tableSizes().events).toBeLessThanOrEqual(3);
    expect(r.stats.dropOutbox).toBeGreaterThan(0);
    expect(r.stats.dropEvents).toBeGreaterThan(0);
  });
});
