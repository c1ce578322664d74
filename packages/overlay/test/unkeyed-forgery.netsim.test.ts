import { Simulator } from "@spines-ts/netsim";
import { type Host, type NodeId, Rng } from "@spines-ts/primitives";
import { decode, encode, type Frame, type Hello, HelloFlag, type RouteItem } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { OverlayNode, type OverlayNodeOptions } from "../src/index.ts";
import { LINK, makeStream, SESSION, type TestStream } from "./harness.ts";

/**
 * Issue 12 without keys (netsim): a line 1 - 2 - 3 carries a stream from 1 to 3 through 2. An
 * off-path attacker who knows both nodes' ids, addresses and incarnations, but cannot see the
 * nonces in their hellos, injects at node 2 "from" node 1: Hellos of a "restarted" node 1, a Goodbye
 * with node 1's real incarnation, a genuine hello with its Goodbye bit flipped, route updates
 * withdrawing node 1's edge at a far higher sequence number, naming node 0 and a node that does
 * not exist, and routing frames under an incarnation node 1 never proved. None of them changes a
 * link, a route or the stream (docs/links.md §2.1, docs/routing.md §2).
 */

interface Sent {
  from: NodeId;
  to: NodeId;
  data: Uint8Array;
}

function recording(host: Host, log: Sent[]): Host {
  return {
    id: host.id,
    clock: host.clock,
    rng: host.rng,
    log: host.log,
    send: (to: NodeId, data: Uint8Array) => {
      if (log.length < 200_000) log.push({ from: host.id, to, data: data.slice() });
      host.send(to, data);
    },
    schedule: (at: number, fn: () => void) => host.schedule(at, fn),
  };
}

function build(seed: number) {
  const sim = new Simulator({ seed, traceCapacity: 100 });
  const sent: Sent[] = [];
  const st: TestStream = makeStream(seed, 0, 1, 3, 150_000, 20_000, 1);
  const edges: [NodeId, NodeId][] = [
    [1, 2],
    [2, 3],
  ];
  for (const id of [1, 2, 3]) {
    const neighbors = edges.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
    const opts: OverlayNodeOptions = {
      neighbors,
      link: LINK,
      session: SESSION,
      onEvent: (e, n) => {
        if (e.type === "incoming") {
          const sid = n.accept(e.port);
          if (sid === undefined) return;
          st.s.sid = sid;
          st.s.connected = true;
          st.s.pushWrites(n);
          return;
        }
        if (!("sid" in e)) return;
        if (id === 3 && e.sid === st.s.sid) st.s.onEvent(e, n);
        if (id === 1 && e.sid === st.c.sid) st.c.onEvent(e, n);
      },
    };
    sim.addNode(id, (host) => {
      const n = new OverlayNode(recording(host, sent), opts);
      if (id === 3) n.listen(st.port);
      n.sessions.pump();
      return n;
    });
  }
  for (const [a, b] of edges) sim.connect(a, b, { delayMs: 3, jitterMs: 1 });
  const node = (id: NodeId) => sim.program<OverlayNode>(id) as OverlayNode;
  return { sim, sent, st, node };
}

function snapshot(n: OverlayNode): string {
  const links = n
    .linkStatus()
    .map((l) => `${l.neighbor}:${l.state}:${n.plane.driver.link(l.neighbor)?.peerIncarnation}`)
    .join(" ");
  const routes = n
    .routes()
    .map((r) => `${r.dst}>${r.nextHop}`)
    .sort()
    .join(" ");
  return `${links} | ${routes}`;
}

describe("overlay without keys: forged link and routing frames from a neighbour's address (netsim)", () => {
  for (const seed of [1, 2, 3]) {
    it(`change no link, route or session (seed ${seed})`, () => {
      const rng = new Rng(seed);
      const { sim, sent, st, node } = build(seed);
      sim.at(200, () => {
        st.c.sid = node(1).connect(3, st.port, { linkType: st.linkType });
      });
      sim.runFor(600);
      const before = [1, 2, 3].map((id) => snapshot(node(id)));
      expect(before[0]).toContain("3>2");
      const from1 = sent.filter((s) => s.from === 1 && s.to === 2);
      const frames = from1.map((s) => decode(s.data));
      const hello = frames.filter((f) => f.msg._tag === "Hello").at(-1) as Frame & { msg: Hello };
      const helloBytes = from1.filter((s) => decode(s.data).msg._tag === "Hello").at(-1)!.data;
      const own = node(2)
        .plane.router.database()
        .find((i) => i.origin === 1 && i.key === 2) as RouteItem;
      expect(own).toBeDefined();
      const inc1 = node(1).plane.incarnation;
      const src = { sender: 1, incarnation: inc1 };
      const n2 = node(2);
      const link = n2.plane.driver.link(1)!;
      const r0 = { ...n2.plane.router.stats };
      const l0 = { ...link.stats };
      const stale0 = n2.plane.counters.routingStaleIncarnation;
      const update = (items: RouteItem[], incarnation = inc1) =>
        encode({ sender: 1, incarnation }, { _tag: "RouteUpdate", items });
      const flipped = helloBytes.slice();
      flipped[flipped.length - 1]! ^= HelloFlag.Goodbye;
      const injected = [
        // "restarts" of node 1
        ...Array.from({ length: 20 }, () =>
          encode({ sender: 1, incarnation: rng.uint32() || 1 }, { ...hello.msg, nonceEcho: rng.uint32() }),
        ),
        // a Goodbye with the real incarnation, and a genuine hello with the Goodbye bit flipped
        encode(src, { ...hello.msg, nonce: 0, nonceEcho: rng.uint32(), flags: HelloFlag.Goodbye }),
        flipped,
        // node 1's edge to 2 withdrawn far ahead; at the top of the old (non-serial) order
        update([{ ...own, seq: (own.seq + 0x7fffffff) >>> 0, value: 0xffffffff }]),
        update([{ ...own, seq: 0xffffffff, value: 0xffffffff }]),
        // a route to node 0 and to a node that does not exist
        update([
          { ...own, key: 0, seq: own.seq + 1 },
          { ...own, origin: 0, key: 2, seq: 1 },
          { ...own, origin: 99, key: 2, seq: 5, value: 1 },
        ]),
        // a routing frame under an incarnation of node 1 its link never proved
        update([{ ...own, seq: own.seq + 1, value: 0xffffffff }], (inc1 + 1) >>> 0 || 1),
      ];
      for (const f of injected) n2.receive(1, f);
      expect(link.stats.unproven - l0.unproven).toBe(20);
      expect(link.stats.forgedGoodbyes - l0.forgedGoodbyes).toBe(2);
      const rs = n2.plane.router.stats;
      expect(rs.dropVersionJump - r0.dropVersionJump).toBe(1);
      expect(rs.itemsStale - r0.itemsStale).toBeGreaterThanOrEqual(1);
      expect(rs.dropBadNode - r0.dropBadNode).toBe(2);
      expect(n2.plane.counters.routingStaleIncarnation - stale0).toBe(1);
      sim.runFor(300);
      expect([1, 2, 3].map((id) => snapshot(node(id)))).toEqual(before);
      for (const id of [1, 2, 3]) {
        expect(node(id).hasRoute(99)).toBe(false);
        expect(node(id).hasRoute(0)).toBe(false);
      }
      expect(sim.runUntil(() => st.c.done && st.s.done, sim.now + 30_000)).toBe(true);
      expect(st.c.violation ?? st.s.violation).toBeUndefined();
      expect(st.s.received).toBe(st.c.out.length);
      expect(frames.length).toBeGreaterThan(0);
    });
  }

  it("a genuine restart of node 1 is adopted and the stream's links come back", () => {
    const { sim, node } = build(7);
    sim.runFor(500);
    const inc1 = node(1).plane.incarnation;
    sim.crash(1);
    sim.runFor(200);
    sim.restart(1);
    sim.runFor(1500);
    expect(node(1).plane.incarnation).not.toBe(inc1);
    expect(node(2).plane.driver.link(1)?.peerIncarnation).toBe(node(1).plane.incarnation);
    expect(node(2).plane.driver.link(1)?.stats.restarts).toBe(1);
    expect(
      node(1)
        .routes()
        .map((r) => r.dst),
    ).toContain(3);
  });
});
