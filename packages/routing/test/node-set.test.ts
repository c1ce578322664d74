/**
 * The configured node set (`RouterOptions.nodes`) between a node that has one and a neighbour that
 * knows nodes outside it (a mixed or partly updated configuration). The refused items are
 * acknowledged though not installed: otherwise the neighbour resends them for ever, and enough of
 * them fill its flow-control window towards this node, so real updates stop reaching it.
 */
import { RouteItemKind } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { MemNet } from "./helpers/mem.ts";

describe("items naming a node outside the configured set", () => {
  it("are dropped, counted and acknowledged: the neighbour stops resending them", () => {
    const net = new MemNet();
    net.add(1, { nodes: [1, 2], incarnation: 11 });
    net.add(2, { incarnation: 12 });
    net.add(3, { incarnation: 13 });
    net.link(1, 2);
    net.link(2, 3);
    net.run();
    expect(net.r(2).route(3)).toBeDefined();
    expect(net.r(1).route(3)).toBeUndefined();
    expect(net.r(1).route(2)).toBeDefined();
    expect(net.r(1).stats.dropBadNode).toBeGreaterThan(0);
    expect(
      net
        .r(1)
        .database()
        .some((i) => i.origin === 3 || i.key === 3),
    ).toBe(false);
    // A minute of quiet: node 2 has nothing left in flight towards node 1.
    const retx = net.r(2).stats.itemsRetransmitted;
    const sent = net.sent;
    net.run(net.now + 60_000);
    expect(net.r(2).stats.itemsRetransmitted).toBe(retx);
    expect(net.sent).toBe(sent);
  });

  it("many of them do not block the neighbour's window: later real updates still arrive", () => {
    const net = new MemNet({ limits: { windowItems: 16 } });
    net.add(1, { nodes: [1, 2, 3], incarnation: 11 });
    net.add(2, { incarnation: 12 });
    net.add(3, { incarnation: 13 });
    net.link(1, 2);
    net.link(2, 3);
    net.run();
    // Node 3 relays the edges of 40 nodes node 1 does not know (more than node 2's window).
    const items = Array.from({ length: 40 }, (_, i) => ({
      kind: RouteItemKind.Edge,
      origin: 1000 + i,
      key: 3,
      incarnation: 1,
      seq: 1,
      value: 1,
    }));
    net.r(2).receive(net.now, 3, { _tag: "RouteUpdate", items });
    net.run();
    expect(net.r(1).stats.dropBadNode).toBeGreaterThanOrEqual(40);
    // A real update after them: node 3 joins group 7; node 1 hears of it.
    net.r(3).join(net.now, 7);
    net.run();
    expect(net.r(1).anycastNearest(7)).toBe(3);
  });
});
