import { Simulator } from "@spines-ts/netsim";
import { type Host, type NodeId, Rng } from "@spines-ts/primitives";
import { AUTH_TRAILER_BYTES, decode, encode, type Frame, type Message } from "@spines-ts/wire";
import { type KeySet, parseKeyFile } from "@spines-ts/wire/auth";
import { describe, expect, it } from "vitest";
import { OverlayNode, type OverlayNodeOptions } from "../src/index.ts";
import { LINK, makeStream, SESSION, type TestStream } from "./harness.ts";

/**
 * Authenticated overlay packets in netsim (docs/security.md). A line 1 - 2 - 3 carries a stream from
 * 1 to 3 through 2. An attacker injects at node 2, "from" node 1: forged Hellos (another incarnation,
 * Goodbye), forged route updates (a route to a node that does not exist, an edge withdrawn at the
 * highest version), the same signed with a wrong key or an unknown key id, genuine frames with one
 * bit flipped, genuine frames replayed, and frames of node 1's earlier life after it restarted.
 * With keys, not one of them reaches the plane (counted by reason): the links, the routes and the
 * stream are undisturbed. Without keys the same frames do reach the plane (the control).
 */

const KEYS = parseKeyFile(`1 ${"5a".repeat(32)}\n`);
const WRONG = parseKeyFile(`1 ${"a5".repeat(32)}\n`);
const OTHER_ID = parseKeyFile(`9 ${"5a".repeat(32)}\n`);

interface Sent {
  from: NodeId;
  to: NodeId;
  data: Uint8Array;
}

/** Records what goes on the wire (under the signing layer: the datagrams as sent). */
function recording(host: Host, log: Sent[]): Host {
  const rec = {
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
  return rec;
}

function build(keys: KeySet | undefined, seed: number, encrypt = false) {
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
      ...(keys ? { auth: { keys, encrypt } } : {}),
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

/** The unsigned frame inside a datagram as sent (the trailer cut off and the flag cleared). */
function unsigned(data: Uint8Array): Frame {
  const f = decode(data);
  if (f.auth === undefined) return f;
  const plain = data.slice(0, data.length - AUTH_TRAILER_BYTES);
  plain[4] = 0;
  return decode(plain);
}

/** Forged frames "from" node 1 to node 2, made from genuine ones (so they follow the current layouts). */
function forgeries(sent: readonly Sent[], rng: Rng): Uint8Array[] {
  const from1 = sent.filter((s) => s.from === 1 && s.to === 2).map((s) => unsigned(s.data));
  const hello = from1.filter((f) => f.msg._tag === "Hello").at(-1) as Frame;
  const update = from1.filter((f) => f.msg._tag === "RouteUpdate").at(-1);
  expect(hello).toBeDefined();
  const out: Uint8Array[] = [];
  const src = { sender: 1, incarnation: hello.incarnation };
  // Hello of a "restarted" node 1, and a Goodbye with its real incarnation
  out.push(encode({ sender: 1, incarnation: rng.uint32() || 1 }, hello.msg));
  out.push(encode(src, { ...hello.msg, flags: 1 } as Message));
  if (update !== undefined && update.msg._tag === "RouteUpdate") {
    const item = update.msg.items[0];
    if (item !== undefined) {
      // a route to node 99, and node 1's own edge withdrawn at a very high version
      out.push(encode(src, { _tag: "RouteUpdate", items: [{ ...item, origin: 99, key: 2, seq: 5 }] }));
      out.push(
        encode(src, { _tag: "RouteUpdate", items: [{ ...item, seq: 0x7fffffff, value: 0xffffffff }] }),
      );
    }
  }
  return out;
}

function linkSnapshot(n: OverlayNode): string {
  const peers = n.plane.driver;
  return n
    .linkStatus()
    .map((l) => `${l.neighbor}:${l.state}:${peers.link(l.neighbor)?.peerIncarnation}`)
    .join(" ");
}

function routeSnapshot(n: OverlayNode): string {
  return n
    .routes()
    .map((r) => `${r.dst}>${r.nextHop}`)
    .sort()
    .join(" ");
}

describe("overlay with authenticated packets (netsim)", () => {
  for (const seed of [1, 2, 3]) {
    it(`forged, wrong-key, flag-flipped and replayed frames change no link, route or session (seed ${seed})`, () => {
      const rng = new Rng(seed);
      const g = build(KEYS, seed);
      const { sim, node, st } = g;
      // start the stream and let it run a while
      sim.at(200, () => {
        st.c.sid = node(1).connect(3, st.port, { linkType: st.linkType });
      });
      sim.runFor(600);
      expect(
        node(2)
          .linkStatus()
          .every((l) => l.state === "up"),
      ).toBe(true);
      const links = [1, 2, 3].map((id) => linkSnapshot(node(id)));
      const routes = [1, 2, 3].map((id) => routeSnapshot(node(id)));
      expect(routes[0]).toContain("3>2");
      const n2 = node(2);
      const rx0 = n2.plane.counters.rxFrames;
      const bad0 = n2.plane.counters.decodeErrors + n2.plane.counters.senderMismatch;
      const a0 = n2.authStats()!;
      // 1. forged, unsigned
      const forged = forgeries(g.sent, rng);
      expect(forged.length).toBe(4);
      for (const f of forged) n2.receive(1, f);
      // 2. the same, signed with the wrong key (known id) and with a key id node 2 does not have
      for (const f of forged) n2.receive(1, WRONG.sign(f, Date.now() * 1000));
      for (const f of forged) n2.receive(1, OTHER_ID.sign(f, Date.now() * 1000));
      // 3. genuine frames of node 1, one bit flipped (header, body, counter, MAC) or an all-zero MAC
      const genuine = g.sent.filter((s) => s.from === 1 && s.to === 2).slice(-40);
      for (const [i, s] of genuine.entries()) {
        const t = s.data.slice();
        const at = [4, 9, 13, 16, t.length - 20, t.length - 1][i % 6] as number;
        if (i % 7 === 6) t.fill(0, t.length - 16);
        else t[at] = (t[at] as number) ^ (1 << (i % 8));
        n2.receive(1, t);
      }
      // 4. genuine frames replayed
      for (const s of genuine) n2.receive(1, s.data);
      const rxAfter = n2.plane.counters.rxFrames;
      const a1 = n2.authStats()!;
      // the only injected frames the plane saw were those whose header no longer parses (a flipped
      // flag or length byte): it drops and counts those by reason, as it would without keys
      const bad = n2.plane.counters.decodeErrors + n2.plane.counters.senderMismatch - bad0;
      expect(rxAfter - rx0, "no injected frame was processed by the plane").toBe(bad);
      expect(a1.unsigned - a0.unsigned).toBe(forged.length);
      expect(a1.unknownKey - a0.unknownKey).toBe(forged.length);
      expect(a1.replay - a0.replay).toBe(genuine.length);
      // wrong key + flipped/zeroed frames whose header still parses (the rest are malformed)
      expect(a1.badMac - a0.badMac).toBeGreaterThanOrEqual(forged.length + genuine.length / 2);
      expect(a1.accepted - a0.accepted).toBe(0);
      // nothing changed: the links, the routes, and the stream completes intact
      sim.runFor(300);
      expect([1, 2, 3].map((id) => linkSnapshot(node(id)))).toEqual(links);
      expect([1, 2, 3].map((id) => routeSnapshot(node(id)))).toEqual(routes);
      expect(node(2).hasRoute(99)).toBe(false);
      expect(sim.runUntil(() => st.c.done && st.s.done, sim.now + 30_000)).toBe(true);
      expect(st.c.violation ?? st.s.violation).toBeUndefined();
      expect(st.s.received).toBe(st.c.out.length);
      // and the genuine traffic went through the authentication layer
      expect(n2.authStats()!.accepted).toBeGreaterThan(100);
      expect(n2.authStats()!.signed).toBeGreaterThan(100);
    });
  }

  it("replays of a node's earlier life are refused after it restarts", () => {
    const g = build(KEYS, 7);
    const { sim, node } = g;
    sim.runFor(500);
    const life1 = g.sent.filter((s) => s.from === 1 && s.to === 2);
    const inc1 = node(1).plane.incarnation;
    sim.crash(1);
    sim.runFor(600);
    sim.restart(1);
    sim.runFor(800);
    expect(node(1).plane.incarnation).not.toBe(inc1);
    expect(node(2).plane.driver.link(1)?.peerIncarnation).toBe(node(1).plane.incarnation);
    const before = linkSnapshot(node(2));
    const n2 = node(2);
    const rx0 = n2.plane.counters.rxFrames;
    const s0 = n2.authStats()!.staleIncarnation;
    for (const s of life1) n2.receive(1, s.data);
    expect(n2.plane.counters.rxFrames - rx0).toBe(0);
    expect(n2.authStats()!.staleIncarnation - s0).toBe(life1.length);
    sim.runFor(300);
    expect(linkSnapshot(node(2))).toBe(before);
  });

  it("encrypt mode: the stream crosses intact and no payload byte string is on the wire in clear", () => {
    const g = build(KEYS, 11, true);
    const { sim, node, st } = g;
    sim.at(200, () => {
      st.c.sid = node(1).connect(3, st.port, { linkType: st.linkType });
    });
    expect(sim.runUntil(() => st.c.done && st.s.done, 60_000)).toBe(true);
    expect(st.c.violation ?? st.s.violation).toBeUndefined();
    expect(st.s.received).toBe(st.c.out.length);
    expect(node(2).authStats()?.accepted).toBeGreaterThan(100);
    // 16 bytes of the stream, as sent, appear in no datagram
    const probe = Buffer.from(st.c.out.subarray(5000, 5016));
    expect(g.sent.some((s) => Buffer.from(s.data).includes(probe))).toBe(false);
    // the same run in mac mode does carry them in clear (so the probe can find them)
    const m = build(KEYS, 11, false);
    m.sim.at(200, () => {
      m.st.c.sid = m.node(1).connect(3, m.st.port, { linkType: m.st.linkType });
    });
    expect(m.sim.runUntil(() => m.st.c.done && m.st.s.done, 60_000)).toBe(true);
    const probe2 = Buffer.from(m.st.c.out.subarray(5000, 5016));
    expect(m.sent.some((s) => Buffer.from(s.data).includes(probe2))).toBe(true);
  });

  it("control: without keys the same forged frames reach the plane", () => {
    const g = build(undefined, 1);
    g.sim.runFor(600);
    const n2 = g.node(2);
    const forged = forgeries(g.sent, new Rng(1));
    const rx0 = n2.plane.counters.rxFrames;
    for (const f of forged) n2.receive(1, f);
    expect(n2.plane.counters.rxFrames - rx0).toBe(forged.length);
    expect(n2.authStats()).toBeUndefined();
  });

  it("nodes with different keys never bring a link up; rotation keys in either order interoperate", () => {
    const sim = new Simulator({ seed: 3 });
    const k12 = parseKeyFile(`1 ${"11".repeat(32)}\n2 ${"22".repeat(32)}\n`);
    const k21 = k12.withCurrent(2);
    const only3 = parseKeyFile(`3 ${"33".repeat(32)}\n`);
    const keys: Record<number, KeySet> = { 1: k12, 2: k21, 3: only3 };
    for (const id of [1, 2, 3]) {
      const k = keys[id] as KeySet;
      sim.addNode(
        id,
        OverlayNode.factory({ neighbors: [1, 2, 3].filter((x) => x !== id), link: LINK, auth: { keys: k } }),
      );
    }
    sim.mesh([1, 2, 3], { delayMs: 2 });
    sim.runFor(2000);
    const state = (a: number, b: number) =>
      sim
        .program<OverlayNode>(a)
        ?.linkStatus()
        .find((l) => l.neighbor === b)?.state;
    expect(state(1, 2)).toBe("up");
    expect(state(2, 1)).toBe("up");
    expect(state(1, 3)).not.toBe("up");
    expect(state(3, 1)).not.toBe("up");
    expect(sim.program<OverlayNode>(3)?.authStats()?.unknownKey).toBeGreaterThan(10);
    expect(sim.program<OverlayNode>(3)?.authStats()?.accepted).toBe(0);
  });
});
