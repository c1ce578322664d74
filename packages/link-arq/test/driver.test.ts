import { Simulator } from "@spines-ts/netsim";
import type { Host } from "@spines-ts/primitives";
import { DestKind, LinkChannel } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import { LinkDriver, SendResult } from "../src/index.ts";

const header = (src: number, dst: number) => ({
  src,
  srcPort: 1,
  dst,
  dstPort: 1,
  dstKind: DestKind.Node,
  ttl: 8,
});

describe("LinkDriver", () => {
  it("holds a delivery whose forward onto the same full link is refused, without re-offering it forever", () => {
    // Node 2 bounces every packet from node 1 back to node 1 (a transient routing loop) over a link
    // whose send buffer holds one packet. Refused bounces must stay held (back-pressure) and be
    // offered again only when something changes; the run must finish and everything must arrive.
    const sim = new Simulator({ seed: 5 });
    sim.connect(1, 2, { delayMs: 5 });
    let d1: LinkDriver | undefined;
    let d2: LinkDriver | undefined;
    let refused = 0;
    let bounced = 0;
    let backAtOne = 0;
    sim.addNode(1, (host) => {
      d1 = new LinkDriver(host, {
        onDelivery: () => {
          backAtOne++;
          return true;
        },
      });
      d1.addNeighbour(2);
      return { receive: (from, data) => d1?.receive(from, data) };
    });
    sim.addNode(2, (host) => {
      d2 = new LinkDriver(host, {
        config: { sendBufferPackets: 1, perFlowPackets: 1 },
        onEvent: (peer, e) => {
          if (e.type === "writable") d2?.offerDeliveries(peer);
        },
        onDelivery: (peer, d) => {
          const r = d2?.send(peer, LinkChannel.Reliable, header(2, 1), d.payload);
          if (r === SendResult.Ok) {
            bounced++;
            return true;
          }
          refused++;
          return false;
        },
      });
      d2.addNeighbour(1);
      return { receive: (from, data) => d2?.receive(from, data) };
    });
    sim.runFor(1000);
    expect(d1?.link(2)?.state).toBe("up");
    const n = 40;
    for (let i = 0; i < n; i++) {
      expect(d1?.send(2, LinkChannel.Reliable, header(1, 2), new Uint8Array([i]))).toBe(SendResult.Ok);
    }
    sim.runFor(5000);
    expect(refused).toBeGreaterThan(0);
    expect(bounced).toBe(n);
    expect(backAtOne).toBe(n);
  }, 30_000);

  it("arms the host timer once for a burst of sends, not once per packet (lazy re-arm), and still times out", () => {
    // Every transmission pushes the link's retransmission timeout later; the driver keeps the armed
    // host timer (it wakes early and re-arms) instead of scheduling a new one per packet (issue 10).
    const sim = new Simulator({ seed: 7 });
    sim.connect(1, 2, { delayMs: 5 });
    let d1: LinkDriver | undefined;
    let d2: LinkDriver | undefined;
    let schedules = 0;
    let got = 0;
    sim.addNode(1, (host) => {
      const counting: Host = {
        id: host.id,
        clock: host.clock,
        rng: host.rng,
        log: host.log,
        send: (to, data) => host.send(to, data),
        schedule: (at, fn) => {
          schedules++;
          return host.schedule(at, fn);
        },
      };
      d1 = new LinkDriver(counting);
      d1.addNeighbour(2);
      return { receive: (from, data) => d1?.receive(from, data) };
    });
    sim.addNode(2, (host) => {
      d2 = new LinkDriver(host, {
        onDelivery: () => {
          got++;
          return true;
        },
      });
      d2.addNeighbour(1);
      return { receive: (from, data) => d2?.receive(from, data) };
    });
    sim.runFor(1000);
    expect(d1?.link(2)?.state).toBe("up");
    // Warm up the RTT estimate so the timeout is short and moves with each send.
    for (let i = 0; i < 10; i++) {
      d1?.send(2, LinkChannel.Reliable, header(1, 2), new Uint8Array([i]));
      sim.runFor(20);
    }
    const before = schedules;
    const n = 50;
    for (let i = 0; i < n; i++) {
      sim.runFor(0.05);
      expect(d1?.send(2, LinkChannel.Reliable, header(1, 2), new Uint8Array([i]))).toBe(SendResult.Ok);
    }
    const duringBurst = schedules - before;
    expect(duringBurst).toBeLessThanOrEqual(2);
    sim.runFor(500);
    expect(got).toBe(10 + n);
    // Early wake-ups happened (the timeout had moved) and re-armed without disturbing the link.
    expect(d1?.earlyWakeups).toBeGreaterThan(0);
    expect(d1?.link(2)?.reliable.stats.rtoFired).toBe(0);
  });
});
