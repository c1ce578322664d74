import { Simulator } from "@spines-ts/netsim";
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
});
