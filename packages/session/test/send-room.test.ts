import { Rng } from "@spines-ts/primitives";
import type { SessionMessage } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { SessionEndpoint } from "../src/index.ts";

/**
 * `sendRoom` (issue 10): a stream sends new data only as fast as the transport takes it; what it
 * holds back stays in its send buffer (writes block) until `transportWritable`.
 */
describe("stream send room", () => {
  it("sends no more new segments than the transport has room for, and the rest after transportWritable", () => {
    let room = 3;
    const asked: [number, number, number, number][] = [];
    const a = new SessionEndpoint({
      nodeId: 1,
      rng: new Rng(1),
      config: { mss: 1000 },
      sendRoom: (to, linkType, srcPort, dstPort) => {
        asked.push([to, linkType, srcPort, dstPort]);
        return room;
      },
    });
    const b = new SessionEndpoint({ nodeId: 2, rng: new Rng(2), config: { mss: 1000 } });
    let now = 0;
    const pump = () => {
      for (let i = 0; i < 20; i++) {
        const pa = a.takePackets();
        const pb = b.takePackets();
        if (pa.length === 0 && pb.length === 0) return [];
        for (const p of pa) b.receive(now, p.msg);
        for (const p of pb) a.receive(now, p.msg);
      }
      return [];
    };
    b.listen(80);
    const sid = a.connect(now, 2, 80, { linkType: 1 });
    pump();
    const peer = b.accept(80) as number;
    expect(a.info(sid).state).toBe("open");
    // 10 segments' worth; the transport takes 3 now.
    expect(a.write(now, sid, new Uint8Array(10_000))).toBe(10_000);
    const data = (ms: SessionMessage[]) => ms.filter((m) => m._tag === "SessionData" && m.payload.length > 0);
    const first = data(a.takePackets().map((p) => p.msg));
    expect(first.length).toBe(3);
    expect(asked.at(-1)).toEqual([2, 1, a.info(sid).localPort, 80]);
    // Nothing more while the room stays 0, whatever happens (an ack arriving, a timer).
    room = 0;
    for (const m of first) b.receive(now, m);
    for (const p of b.takePackets()) a.receive(now, p.msg);
    now += 1;
    a.handleTimeout(now);
    expect(data(a.takePackets().map((p) => p.msg)).length).toBe(0);
    // Room again: the transport says so, and the stream sends what it held back.
    room = 100;
    a.transportWritable(now);
    const rest = data(a.takePackets().map((p) => p.msg));
    expect(rest.length).toBe(7);
    for (const m of rest) b.receive(now, m);
    pump();
    expect(b.read(now, peer, 20_000).length).toBe(10_000);
    expect(a.info(sid).segmentsRetransmitted).toBe(0);
  });

  it("retransmits only as fast as the transport takes it too: an RTO with no room waits for transportWritable", () => {
    let room = 3;
    const a = new SessionEndpoint({
      nodeId: 1,
      rng: new Rng(1),
      config: { mss: 1000 },
      sendRoom: () => room,
    });
    const b = new SessionEndpoint({ nodeId: 2, rng: new Rng(2), config: { mss: 1000 } });
    b.listen(80);
    const sid = a.connect(0, 2, 80, { linkType: 1 });
    for (let i = 0; i < 5; i++) {
      for (const p of a.takePackets()) b.receive(0, p.msg);
      for (const p of b.takePackets()) a.receive(0, p.msg);
    }
    b.accept(80);
    const data = (ms: SessionMessage[]) => ms.filter((m) => m._tag === "SessionData" && m.payload.length > 0);
    a.write(0, sid, new Uint8Array(3000));
    // The three segments go to the transport, which keeps them queued (they are not delivered).
    expect(data(a.takePackets().map((p) => p.msg)).length).toBe(3);
    room = 0;
    // The retransmission timer fires (repeatedly): nothing is queued behind the segments still
    // waiting in the transport.
    for (let t = 500; t <= 4_000; t += 500) {
      a.handleTimeout(t);
      expect(data(a.takePackets().map((p) => p.msg)).length).toBe(0);
    }
    expect(a.info(sid).state).toBe("open");
    // Room again: the segment marked lost goes out now.
    room = 100;
    a.transportWritable(4_001);
    expect(data(a.takePackets().map((p) => p.msg)).length).toBeGreaterThan(0);
    expect(a.info(sid).segmentsRetransmitted).toBeGreaterThan(0);
  });

  it("without sendRoom a stream sends its whole window at once", () => {
    const a = new SessionEndpoint({ nodeId: 1, rng: new Rng(1), config: { mss: 1000 } });
    const b = new SessionEndpoint({ nodeId: 2, rng: new Rng(2), config: { mss: 1000 } });
    b.listen(80);
    const sid = a.connect(0, 2, 80);
    for (let i = 0; i < 5; i++) {
      for (const p of a.takePackets()) b.receive(0, p.msg);
      for (const p of b.takePackets()) a.receive(0, p.msg);
    }
    b.accept(80);
    a.write(0, sid, new Uint8Array(10_000));
    const n = a.takePackets().filter((p) => p.msg._tag === "SessionData").length;
    expect(n).toBe(10);
    expect(a.info(sid).state).toBe("open");
  });
});
