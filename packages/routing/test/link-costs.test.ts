/**
 * Static per-link costs (`linkCosts`, `setLinkCost`; spines.conf's edge costs): the origin
 * advertises weight × metric cost for its edge, every node's shortest paths avoid a costly edge,
 * runtime changes re-advertise at once, and bad weights are typed errors.
 */
import { CapacityError, ConfigError } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { Metric, Router } from "../src/index.ts";
import { MemNet } from "./helpers/mem.ts";

/** The square 1–2–4 / 1–3–4 (equal hop counts; ties go to the smaller id, i.e. via 2). */
function square(costs: Record<number, Record<number, number>> = {}): MemNet {
  const net = new MemNet();
  for (const id of [1, 2, 3, 4]) net.add(id, costs[id] ? { linkCosts: costs[id] } : {});
  net.link(1, 2);
  net.link(2, 4);
  net.link(1, 3);
  net.link(3, 4);
  net.run();
  return net;
}

const edge = (net: MemNet, at: number, origin: number, key: number) =>
  net
    .r(at)
    .database()
    .find((i) => i.origin === origin && i.key === key)?.value;

describe("static link costs", () => {
  it("without costs the tie-break takes the edge 1–2 (the baseline the next case changes)", () => {
    const net = square();
    expect(net.r(1).route(4)?.path).toEqual([1, 2, 4]);
    expect(net.r(4).route(1)?.path).toEqual([4, 2, 1]);
  });

  it("a costly edge (cost 5 both ways, as an undirected spines.conf edge) is avoided by every node", () => {
    const net = square({ 1: { 2: 5 }, 2: { 1: 5 } });
    expect(net.agree()).toBe(true);
    // advertised by the origins and flooded: node 4 holds the costs too
    expect(edge(net, 4, 1, 2)).toBe(5);
    expect(edge(net, 4, 2, 1)).toBe(5);
    expect(edge(net, 4, 1, 3)).toBe(1);
    expect(net.r(1).route(4)).toEqual({ dst: 4, nextHop: 3, cost: 2, path: [1, 3, 4] });
    expect(net.r(4).route(1)?.path).toEqual([4, 3, 1]);
    // even the direct neighbour is reached round the square: 1–3–4–2 costs 3, the edge 1–2 costs 5
    expect(net.r(1).route(2)).toEqual({ dst: 2, nextHop: 3, cost: 3, path: [1, 3, 4, 2] });
    expect(net.r(2).route(3)?.path).toEqual([2, 4, 3]);
    expect(net.r(1).linkCost(2)).toBe(5);
    expect(net.r(1).linkCost(3)).toBe(1);
    expect(net.r(1).advertisedCost(2)).toBe(5);
  });

  it("costs are directed: only 1 → 2 costly sends 1's traffic round, while 2 → 1 stays direct", () => {
    const net = square({ 1: { 2: 5 } });
    expect(net.r(1).route(2)?.path).toEqual([1, 3, 4, 2]);
    expect(net.r(2).route(1)?.path).toEqual([2, 1]);
  });

  it("the weight multiplies a measured metric's cost", () => {
    const net = new MemNet({ metric: Metric.Latency });
    net.add(1, { linkCosts: new Map([[2, 3]]) });
    net.add(2);
    // rtt 20 ms: latency cost 10·(10 + 4) = 140 units; × 3 = 420
    net.link(1, 2, [20, 20]);
    net.run();
    expect(net.r(1).advertisedCost(2)).toBe(420);
    expect(net.r(2).advertisedCost(1)).toBe(140);
    expect(net.r(2).route(1)?.cost).toBe(140);
    expect(net.r(1).route(2)?.cost).toBe(420);
    // a new measurement is weighted too (rtt 40: 10·(20 + 4) = 240; × 3 = 720)
    net.now += 5_000;
    net.r(1).linkMetrics(net.now, 2, { rttMs: 40, loss: 0 });
    net.run();
    expect(net.r(1).advertisedCost(2)).toBe(720);
    expect(net.r(2).route(1)).toBeDefined();
  });

  it("setLinkCost re-advertises at once and routes follow; undefined goes back to 1", () => {
    const net = square();
    expect(net.r(1).route(4)?.nextHop).toBe(2);
    net.r(1).setLinkCost(net.now, 2, 10);
    net.r(2).setLinkCost(net.now, 1, 10);
    net.run();
    expect(edge(net, 4, 1, 2)).toBe(10);
    expect(net.r(1).route(4)?.nextHop).toBe(3);
    expect(net.r(4).route(1)?.nextHop).toBe(3);
    net.r(1).setLinkCost(net.now, 2, undefined);
    net.r(2).setLinkCost(net.now, 1, 1);
    net.run();
    expect(net.r(1).linkCost(2)).toBe(1);
    expect(edge(net, 4, 1, 2)).toBe(1);
    expect(net.r(1).route(4)?.nextHop).toBe(2);
    // a weight for a neighbour that is not up yet applies when its link comes up
    const lone = new MemNet();
    lone.add(1).setLinkCost(0, 2, 7);
    lone.add(2);
    lone.link(1, 2);
    lone.run();
    expect(lone.r(2).route(1)).toBeDefined();
    expect(lone.r(1).route(2)?.cost).toBe(7);
  });

  it("bad weights are ConfigErrors naming the key; the table is bounded", () => {
    const make = (linkCosts: unknown) =>
      new Router({ id: 1, incarnation: 1, linkCosts: linkCosts as Record<number, number> });
    for (const bad of [{ 2: 0 }, { 2: 1.5 }, { 2: 65536 }, { 2: "3" }, { x: 2 }, { [-1]: 2 }, 7]) {
      expect(() => make(bad), JSON.stringify(bad)).toThrow(ConfigError);
    }
    expect(() => make({ 2: 0 })).toThrow(/linkCosts\.2/);
    expect(make({ 2: 65535 }).linkCost(2)).toBe(65535);
    const r = new Router({ id: 1, incarnation: 1, limits: { maxEdgesPerOrigin: 2, maxNeighbors: 2 } });
    expect(() => r.setLinkCost(0, 2, 0)).toThrow(ConfigError);
    expect(() => r.setLinkCost(0, 2, Number.NaN)).toThrow(ConfigError);
    r.setLinkCost(0, 2, 4);
    r.setLinkCost(0, 3, 4);
    expect(() => r.setLinkCost(0, 4, 4)).toThrow(CapacityError);
    expect(
      () =>
        new Router({
          id: 1,
          incarnation: 1,
          limits: { maxEdgesPerOrigin: 1, maxNeighbors: 1 },
          linkCosts: { 2: 2, 3: 2 },
        }),
    ).toThrow(ConfigError);
  });
});
