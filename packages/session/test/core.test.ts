import { CapacityError, ConfigError, Rng, RttEstimator, unwrap32, wrap32 } from "@spines-ts/primitives";
import { DestKind, encode, ResetReason, type SessionMessage } from "@spines-ts/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type OutPacket,
  PeerDeadError,
  PortInUseError,
  resolveSessionConfig,
  type SessionConfig,
  SessionEndpoint,
  type SessionEvent,
  SessionStateError,
} from "../src/index.ts";

/** Two cores joined by a hand-driven wire: nothing moves until the test delivers it. */
class Pair {
  readonly a: SessionEndpoint;
  readonly b: SessionEndpoint;
  /** Packets in flight, as frames (so the codec is exercised too). */
  queue: { to: number; bytes: Uint8Array; msg: SessionMessage }[] = [];
  events: { node: number; e: SessionEvent }[] = [];
  now = 0;
  constructor(config: Partial<SessionConfig> = {}) {
    this.a = new SessionEndpoint({ nodeId: 1, rng: new Rng(1), config });
    this.b = new SessionEndpoint({ nodeId: 2, rng: new Rng(2), config });
  }
  #ep(id: number): SessionEndpoint {
    return id === 1 ? this.a : this.b;
  }
  collect(): void {
    for (const [id, ep] of [
      [1, this.a],
      [2, this.b],
    ] as const) {
      for (const p of ep.takePackets())
        this.queue.push({ to: p.to, bytes: encode({ sender: id, incarnation: 1 }, p.msg), msg: p.msg });
      for (const e of ep.takeEvents()) this.events.push({ node: id, e });
    }
  }
  /** Delivers every queued packet (and what they cause) for which `keep` is true; drops the others. */
  deliver(keep: (m: SessionMessage) => boolean = () => true, rounds = 100): void {
    for (let i = 0; i < rounds; i++) {
      this.collect();
      if (this.queue.length === 0) return;
      const q = this.queue;
      this.queue = [];
      for (const p of q) if (keep(p.msg)) this.#ep(p.to).receiveFrame(this.now, p.bytes);
    }
  }
  /** Advances time to `t`, firing due timers, without delivering anything. */
  advance(t: number): void {
    for (;;) {
      const d = Math.min(this.a.nextDeadline() ?? Infinity, this.b.nextDeadline() ?? Infinity);
      if (d > t) break;
      this.now = Math.max(this.now, d);
      this.a.handleTimeout(this.now);
      this.b.handleTimeout(this.now);
      this.collect();
    }
    this.now = t;
  }
  take(node: number, type: SessionEvent["type"]): SessionEvent[] {
    const out = this.events.filter((x) => x.node === node && x.e.type === type).map((x) => x.e);
    return out;
  }
  /** Opens a session 1 -> 2:80 and returns [sid at 1, sid at 2]. */
  open(linkType?: 0 | 1 | 2): [number, number] {
    this.b.listen(80);
    const sa = this.a.connect(this.now, 2, 80, linkType === undefined ? {} : { linkType });
    this.deliver();
    const sb = this.b.accept(80);
    expect(sb).toBeDefined();
    expect(this.a.info(sa).state).toBe("open");
    return [sa, sb as number];
  }
}

describe("sequence numbers and RTT", () => {
  it("unwraps 32-bit numbers around the expected value", () => {
    expect(unwrap32(5, 3)).toBe(5);
    expect(unwrap32(wrap32(2 ** 32 + 7), 2 ** 32 - 3)).toBe(2 ** 32 + 7);
    expect(unwrap32(0xfffffffe, 2 ** 32 + 1)).toBe(2 ** 32 - 2);
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 2 ** 50 }),
        fc.integer({ min: -(2 ** 30), max: 2 ** 30 }),
        (base, d) => {
          const n = base + d;
          if (n < 0) return;
          expect(unwrap32(wrap32(n), base)).toBe(n);
        },
      ),
    );
  });

  it("RTO: initial value before a sample, floor after, doubling back-off up to the cap", () => {
    const r = new RttEstimator({ initialMs: 1000, minMs: 50, maxMs: 4000 });
    expect(r.rto()).toBe(1000);
    r.sample(2);
    expect(r.rto()).toBe(50); // 2 + 4 * 1 < 50: the floor
    for (let i = 0; i < 20; i++) r.sample(100);
    expect(r.rto()).toBeGreaterThan(100);
    expect(r.rto(1)).toBeCloseTo(2 * r.rto(0));
    expect(r.rto(10)).toBe(4000);
  });
});

describe("configuration and argument validation", () => {
  it("rejects bad configuration with ConfigError naming the key", () => {
    expect(() => resolveSessionConfig({ mss: 0 })).toThrow(ConfigError);
    expect(() => resolveSessionConfig({ mss: 0 })).toThrow(/mss/);
    expect(() => resolveSessionConfig({ receiveBufferBytes: 100 })).toThrow(/receiveBufferBytes/);
    expect(() => resolveSessionConfig({ deadPeerTimeoutMs: 10, keepaliveIntervalMs: 100 })).toThrow(
      /deadPeerTimeoutMs/,
    );
    expect(() => resolveSessionConfig({ nope: 1 } as never)).toThrow(/nope/);
    expect(resolveSessionConfig({}).mss).toBe(1100);
  });

  it("port 0 picks a free ephemeral port, the same ones in the same order on every run", () => {
    const picks = () => {
      const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
      ep.listen(40_001);
      ep.bind(40_002);
      const l = ep.listen(0);
      const b = ep.bind(0);
      const sid = ep.connect(0, 2, 80);
      const c = ep.info(sid).localPort;
      return [l, b, c];
    };
    const first = picks();
    expect(first).toEqual(picks());
    expect(new Set(first).size).toBe(3);
    for (const p of first) {
      expect(p).toBeGreaterThanOrEqual(40_000);
      expect(p).toBeLessThanOrEqual(60_000);
      expect([40_001, 40_002]).not.toContain(p);
    }
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
    const p = ep.listen(0);
    expect(() => ep.listen(p)).toThrow(PortInUseError);
    expect(() => ep.bind(p)).not.toThrow(); // listeners and datagram ports are separate namespaces
    expect(ep.bind(0)).not.toBe(p);
  });

  it("validates application calls with TypeError, RangeError and typed errors", () => {
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1), config: { maxSessions: 2 } });
    expect(() => ep.listen(-1)).toThrow(RangeError);
    expect(() => ep.listen(70000)).toThrow(RangeError);
    expect(() => ep.listen("80" as never)).toThrow(TypeError);
    ep.listen(80);
    expect(() => ep.listen(80)).toThrow(PortInUseError);
    expect(() => ep.connect(0, -1, 80)).toThrow(RangeError);
    expect(() => ep.connect(0, 2, 80, { srcPort: 80 })).toThrow(PortInUseError);
    expect(() => ep.connect(0, 2, 80, { linkType: 7 as never })).toThrow(RangeError);
    const s1 = ep.connect(0, 2, 80);
    ep.connect(0, 2, 80);
    expect(() => ep.connect(0, 2, 80)).toThrow(CapacityError);
    expect(() => ep.write(0, s1, "x" as never)).toThrow(TypeError);
    expect(() => ep.write(0, 12345, new Uint8Array(1))).toThrow(SessionStateError);
    expect(() => ep.read(0, s1, 0)).toThrow(RangeError);
    expect(() => ep.accept(81)).toThrow(SessionStateError);
    expect(() => ep.sendDatagram(0, { srcPort: 5, dst: 2, dstPort: 9, data: new Uint8Array(1) })).toThrow(
      SessionStateError,
    );
    ep.bind(5);
    expect(() =>
      ep.sendDatagram(0, { srcPort: 5, dst: 2, dstPort: 9, data: new Uint8Array(65_537) }),
    ).toThrow(RangeError);
    expect(ep.sendDatagram(0, { srcPort: 5, dst: 2, dstPort: 9, data: new Uint8Array(65_536) })).toBeTypeOf(
      "number",
    );
    // a 64 KiB message in 1,100-byte fragments
    expect(ep.takePackets().filter((p) => p.msg._tag === "SessionDatagram").length).toBe(60);
  });

  it("ephemeral ports come from 40000-60000 and are not reused while held", () => {
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
    const ports = new Set<number>();
    for (let i = 0; i < 10; i++) ports.add(ep.info(ep.connect(0, 2, 80)).localPort);
    expect(ports.size).toBe(10);
    for (const p of ports) expect(p >= 40_000 && p <= 60_000).toBe(true);
  });
});

describe("stream core, packet by packet", () => {
  it("handshake, ordered delivery, and the wire messages it uses", () => {
    const p = new Pair();
    const [sa, sb] = p.open();
    expect(p.take(1, "connected")).toEqual([{ type: "connected", sid: sa }]);
    expect(p.take(2, "incoming")).toEqual([{ type: "incoming", port: 80 }]);
    const data = new Rng(5).bytes(10_000);
    expect(p.a.write(p.now, sa, data)).toBe(10_000);
    const seen: string[] = [];
    p.deliver((m) => {
      seen.push(m._tag);
      return true;
    });
    expect(seen).toContain("SessionData");
    expect(seen).toContain("SessionAck");
    expect(p.b.read(p.now, sb)).toEqual(data);
    expect(p.b.info(sb).remotePort).toBe(p.a.info(sa).localPort);
  });

  it("a full send buffer takes part of a write and announces writable once acks free it", () => {
    const p = new Pair({ sendBufferBytes: 5000, mss: 1000 });
    const [sa, sb] = p.open();
    expect(p.a.write(p.now, sa, new Uint8Array(8000))).toBe(5000);
    expect(p.a.write(p.now, sa, new Uint8Array(10))).toBe(0);
    expect(p.take(1, "writable")).toEqual([]);
    p.deliver();
    expect(p.take(1, "writable").length).toBe(1);
    expect(p.b.read(p.now, sb).length).toBe(5000);
  });

  it("the receiver's window caps bytes in flight; a window probe and a window update resume the flow", () => {
    const p = new Pair({ receiveBufferBytes: 8000, mss: 1000, initialRtoMs: 100 });
    const [sa, sb] = p.open();
    p.a.write(p.now, sa, new Uint8Array(20_000));
    p.deliver();
    // nobody reads at 2: exactly a window's worth arrived, and nothing is in flight
    expect(p.b.info(sb).unread).toBe(8000);
    expect(p.a.info(sa).inFlight).toBe(0);
    expect(p.a.info(sa).peerWindow).toBe(0);
    // zero window: the sender probes on its timer
    p.advance(p.now + 5000);
    const probes = p.queue.filter((q) => q.msg._tag === "SessionAck" && q.msg.flags === 1);
    expect(probes.length).toBeGreaterThan(0);
    p.deliver();
    expect(p.b.info(sb).unread).toBe(8000);
    // reading opens the window, the update restarts the sender
    expect(p.b.read(p.now, sb).length).toBe(8000);
    p.deliver();
    expect(p.b.info(sb).unread).toBe(8000);
    expect(p.b.read(p.now, sb).length).toBe(8000);
    p.deliver();
    expect(p.b.read(p.now, sb).length).toBe(4000);
  });

  it("fast retransmit: a hole reported by SACK is resent before the retransmission timer", () => {
    const p = new Pair({ mss: 1000, initialRtoMs: 1000 });
    const [sa, sb] = p.open(0); // best-effort links: the session alone recovers losses
    p.now = 100; // gives the open's RTT sample some substance
    p.a.write(p.now, sa, new Rng(3).bytes(3000));
    p.collect();
    // segment 0 is lost; 1 and 2 arrive 5 ms later
    p.queue = p.queue.filter((q) => !(q.msg._tag === "SessionData" && q.msg.seq === 0));
    p.now = 105;
    p.a.write(p.now, sa, new Rng(4).bytes(3000)); // more data, sent later than segment 0
    p.deliver((m) => !(m._tag === "SessionData" && m.seq === 0 && p.a.info(sa).segmentsRetransmitted === 0));
    expect(p.a.info(sa).segmentsRetransmitted).toBeGreaterThanOrEqual(1);
    expect(p.now).toBe(105); // no timer fired
    expect(p.b.read(p.now, sb).length).toBe(6000);
  });

  it("over reliable links a SACKed hole is left to the links until a whole RTO has passed", () => {
    const p = new Pair({ mss: 1000, initialRtoMs: 1000, minRtoMs: 250 });
    const [sa, sb] = p.open(1);
    p.now = 100;
    p.a.write(p.now, sa, new Rng(3).bytes(3000));
    p.collect();
    const lost = p.queue.filter((q) => q.msg._tag === "SessionData" && q.msg.seq === 0);
    p.queue = p.queue.filter((q) => !(q.msg._tag === "SessionData" && q.msg.seq === 0));
    p.now = 105;
    p.a.write(p.now, sa, new Rng(4).bytes(3000));
    p.deliver(); // segments 1..5 arrive and are SACKed; segment 0 is still "on a link"
    expect(p.a.info(sa).segmentsRetransmitted).toBe(0);
    // the link delivers segment 0 late (a link retransmission): nothing was sent twice end to end
    p.queue.push(...lost);
    p.deliver();
    expect(p.a.info(sa).segmentsRetransmitted).toBe(0);
    expect(p.b.read(p.now, sb).length).toBe(6000);
  });

  it("over reliable links an out-of-order segment waits for the ordinary ack; elsewhere it is acked at once", () => {
    const acksFor = (linkType: 0 | 1, extra: Partial<SessionConfig> = {}) => {
      const p = new Pair({ mss: 1000, initialRtoMs: 1000, ackEvery: 16, ackDelayMs: 5, ...extra });
      const [sa, sb] = p.open(linkType);
      p.now = 100;
      p.a.write(p.now, sa, new Rng(3).bytes(9000));
      p.collect();
      // segment 0 is on its way (a link recovering it); 1..8 arrive
      const held = p.queue.filter((q) => q.msg._tag === "SessionData" && q.msg.seq === 0);
      p.queue = p.queue.filter((q) => !(q.msg._tag === "SessionData" && q.msg.seq === 0));
      const data = p.queue;
      p.queue = [];
      for (const q of data) p.b.receiveFrame(p.now, q.bytes);
      p.collect();
      const early = p.queue.filter((q) => q.msg._tag === "SessionAck").length;
      // the ack delay passes: one ack carries the SACK block
      p.queue = [];
      p.advance(106);
      const late = p.queue.filter((q) => q.msg._tag === "SessionAck");
      const sacked = late.some((q) => q.msg._tag === "SessionAck" && q.msg.sack.length === 1);
      p.queue.push(...held);
      p.deliver();
      expect(p.b.read(p.now, sb).length).toBe(9000);
      expect(p.a.info(sa).segmentsRetransmitted).toBe(0);
      return { early, late: late.length, sacked };
    };
    expect(acksFor(1)).toEqual({ early: 0, late: 1, sacked: true });
    expect(acksFor(1, { reliableSackAtOnce: true }).early).toBe(8);
    expect(acksFor(0).early).toBe(8);
  });

  it("over reliable links the window is srtt/4 again with reliableReorderRtos 0", () => {
    const p = new Pair({ mss: 1000, initialRtoMs: 1000, reliableReorderRtos: 0 });
    const [sa] = p.open(1);
    p.now = 100;
    p.a.write(p.now, sa, new Rng(3).bytes(3000));
    p.collect();
    p.queue = p.queue.filter((q) => !(q.msg._tag === "SessionData" && q.msg.seq === 0));
    p.now = 105;
    p.a.write(p.now, sa, new Rng(4).bytes(3000));
    p.deliver((m) => !(m._tag === "SessionData" && m.seq === 0 && p.a.info(sa).segmentsRetransmitted === 0));
    expect(p.a.info(sa).segmentsRetransmitted).toBeGreaterThanOrEqual(1);
    expect(p.now).toBe(105);
  });

  it("dead-peer detection fires exactly deadPeerTimeoutMs after the last packet heard", () => {
    const p = new Pair({ keepaliveIntervalMs: 300, deadPeerTimeoutMs: 2000 });
    const [sa] = p.open();
    p.now = 1000;
    p.a.write(p.now, sa, new Uint8Array(100));
    p.deliver(); // the data reaches b at t = 1000
    p.advance(1010); // b's delayed ack
    p.deliver(); // the last packet a hears from b arrives at t = 1010
    p.advance(10_000); // from now on nothing is delivered
    const closed = p.events.find((x) => x.node === 1 && x.e.type === "closed");
    expect(closed?.e.type === "closed" && closed.e.error).toBeInstanceOf(PeerDeadError);
    const err = closed?.e.type === "closed" ? (closed.e.error as PeerDeadError) : undefined;
    expect(err?.silentMs).toBe(2000);
    expect(closed?.e.type === "closed" && p.events.indexOf(closed)).toBeGreaterThan(0);
    expect(err?.code).toBe("ERR_SESSION_PEER_DEAD");
    // keepalive probes went out while the peer was silent
    const probes = p.queue.filter((q) => q.to === 2 && q.msg._tag === "SessionAck" && q.msg.flags === 1);
    expect(probes.length).toBeGreaterThanOrEqual(5);
    expect(p.a.sessionCount).toBe(0);
  });

  it("answers a segment for an unknown session with a reset, and a refused open with reason Refused", () => {
    const p = new Pair();
    const hdr = { src: 2, srcPort: 9, dst: 1, dstPort: 80, dstKind: DestKind.Node, ttl: 9 };
    p.a.receive(0, {
      _tag: "SessionData",
      header: hdr,
      dstSid: 42,
      flags: 0,
      seq: 0,
      ack: 0,
      window: 0,
      payload: new Uint8Array(1),
    });
    const out: OutPacket[] = p.a.takePackets();
    expect(out).toHaveLength(1);
    expect(out[0]?.msg).toMatchObject({
      _tag: "SessionReset",
      sid: 42,
      flags: 0,
      reason: ResetReason.NoSession,
    });
    p.a.receive(0, { _tag: "SessionOpen", header: hdr, sid: 7, window: 1000, linkType: 0 });
    expect(p.a.takePackets()[0]?.msg).toMatchObject({
      _tag: "SessionReset",
      sid: 7,
      flags: 1,
      reason: ResetReason.Refused,
    });
    // misaddressed messages are counted and ignored
    p.a.receive(0, { _tag: "SessionOpen", header: { ...hdr, dst: 3 }, sid: 7, window: 1000, linkType: 0 });
    expect(p.a.counters.misaddressed).toBe(1);
    expect(p.a.takePackets()).toEqual([]);
  });

  it("a full backlog refuses with reason Busy", () => {
    const p = new Pair();
    p.b.listen(80, 1);
    p.a.connect(0, 2, 80);
    p.a.connect(0, 2, 80);
    p.deliver();
    const closed = p.take(1, "closed");
    expect(closed).toHaveLength(1);
    expect(closed[0]?.type === "closed" && closed[0].error?.code).toBe("ERR_SESSION_REFUSED");
  });

  it("never throws on random bytes; counts them as malformed", () => {
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
    ep.listen(80);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        ep.receiveFrame(0, bytes);
      }),
      { numRuns: 2000 },
    );
    expect(ep.counters.malformed).toBeGreaterThan(1900);
  });

  it("never throws on random well-formed session messages from a peer", () => {
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
    ep.listen(80);
    ep.bind(9);
    const hdr = fc.record({
      src: fc.constantFrom(2, 3),
      srcPort: fc.constantFrom(5, 40000),
      dst: fc.constant(1),
      dstPort: fc.constantFrom(80, 9),
      dstKind: fc.constant(0 as const),
      ttl: fc.constant(9),
    });
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    const msg: fc.Arbitrary<SessionMessage> = fc.oneof(
      fc.record({
        _tag: fc.constant("SessionOpen" as const),
        header: hdr,
        sid: u32,
        window: u32,
        linkType: fc.constant(1 as const),
      }),
      fc.record({
        _tag: fc.constant("SessionData" as const),
        header: hdr,
        dstSid: u32,
        flags: fc.constantFrom(0, 1),
        seq: fc.integer({ min: 0, max: 40 }),
        ack: fc.integer({ min: 0, max: 40 }),
        window: u32,
        payload: fc.uint8Array({ maxLength: 50 }),
      }),
      fc.record({
        _tag: fc.constant("SessionAck" as const),
        header: hdr,
        dstSid: u32,
        flags: fc.constantFrom(0, 1),
        ack: u32,
        window: u32,
        sack: fc.array(fc.record({ start: u32, end: u32 }), { maxLength: 4 }),
      }),
      fc.record({
        _tag: fc.constant("SessionReset" as const),
        header: hdr,
        sid: u32,
        flags: fc.constantFrom(0, 1),
        reason: fc.integer({ min: 0, max: 255 }),
      }),
    );
    const sids: number[] = [];
    fc.assert(
      fc.property(fc.array(msg, { maxLength: 30 }), (msgs) => {
        for (const m of msgs) {
          // aim some messages at real sessions
          const real = sids.length > 0 && m._tag !== "SessionOpen" && m._tag !== "SessionReset";
          const mm = real ? ({ ...m, dstSid: sids[msgs.length % sids.length] } as SessionMessage) : m;
          ep.receive(0, mm);
          for (;;) {
            const s = ep.accept(80);
            if (s === undefined) break;
            sids.push(s);
          }
        }
        ep.handleTimeout(100_000);
      }),
      { numRuns: 300 },
    );
  });
});

describe("datagram core", () => {
  function frag(i: number, flowId: number, msgId: number, reliable = false): SessionMessage {
    return {
      _tag: "SessionDatagram",
      header: { src: 2, srcPort: 5, dst: 1, dstPort: 9, dstKind: DestKind.Node, ttl: 9 },
      flags: reliable ? 1 : 0,
      flowId,
      msgId,
      totalLength: 65_536,
      stride: 1024,
      index: i,
      count: 64,
      payload: new Uint8Array(1024),
    };
  }

  it("bounds reassembly memory and frees partial messages after the reassembly timeout", () => {
    const ep = new SessionEndpoint({
      nodeId: 1,
      rng: new Rng(1),
      config: { maxReassemblyBytes: 200_000, reassemblyTimeoutMs: 1000 },
    });
    ep.bind(9);
    for (let m = 0; m < 50; m++) ep.receive(0, frag(0, 77, m));
    expect(ep.datagrams.reassemblyBytes).toBeLessThanOrEqual(200_000);
    expect(ep.datagrams.partialCount).toBe(3);
    expect(ep.datagrams.counters.reassemblyDropped).toBe(47);
    ep.handleTimeout(999);
    expect(ep.datagrams.partialCount).toBe(3);
    ep.handleTimeout(1000);
    expect(ep.datagrams.partialCount).toBe(0);
    expect(ep.datagrams.reassemblyBytes).toBe(0);
  });

  it("reassembles out of order and delivers once; a duplicate of a delivered message is only re-acked", () => {
    const ep = new SessionEndpoint({ nodeId: 1, rng: new Rng(1) });
    ep.bind(9);
    const order = new Rng(3).shuffle([...Array(64).keys()]);
    for (const i of order) ep.receive(0, frag(i, 5, 0, true));
    ep.receive(0, frag(3, 5, 0, true));
    const ev = ep.takeEvents().filter((e) => e.type === "datagram");
    expect(ev).toHaveLength(1);
    expect(ev[0]?.type === "datagram" && ev[0].data.length).toBe(65_536);
    const acks = ep.takePackets().filter((p) => p.msg._tag === "SessionDatagramAck");
    const last = acks[acks.length - 1]?.msg;
    expect(last?._tag === "SessionDatagramAck" && [...last.bitmap].every((b) => b === 0xff)).toBe(true);
    expect(ep.datagrams.counters.duplicates).toBe(1);
  });
});
