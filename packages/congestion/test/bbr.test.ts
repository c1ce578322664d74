import { describe, expect, it } from "vitest";
import { Bbr, createController } from "../src/index.ts";

const MSS = 1000;

/**
 * A fluid bottleneck of `bw` bytes/ms and `rtt` ms: the controller's packets are acked one every
 * MSS/bw ms (what the bottleneck lets through), each sent one RTT before its ack. Returns the time.
 */
function drive(cc: Bbr, from: number, until: number, bw: number, rtt: number, cwndLimited = true): number {
  let t = from;
  for (; t < until; t += MSS / bw) cc.onAck(t, MSS, t - rtt, rtt, cwndLimited);
  return t;
}

describe("Bbr", () => {
  it("finds the bottleneck bandwidth, leaves startup and keeps about two BDPs in flight", () => {
    const cc = new Bbr({ mss: MSS });
    expect(cc.mode).toBe("startup");
    expect(cc.cwnd).toBe(10 * MSS);
    const t = drive(cc, 0, 2000, 1000, 20); // 1,000 bytes/ms = 8 Mbit/s, 20 ms
    expect(cc.mode).toBe("probe-bw");
    expect(cc.bandwidth).toBeGreaterThan(900);
    expect(cc.bandwidth).toBeLessThan(1100);
    expect(cc.minRtt).toBe(20);
    // 2 · bw · minRtt + 3 MSS
    expect(cc.cwnd).toBeGreaterThan(2 * 900 * 20);
    expect(cc.cwnd).toBeLessThan(2 * 1100 * 20 + 4 * MSS);
    // Pacing cycles around the bandwidth: gains 1.25, 0.75 and 1 over 8 min-RTTs.
    const rates = new Set<number>();
    for (let u = t; u < t + 8 * 20; u += 1) {
      cc.onAck(u, 1, u - 20, 20, true);
      rates.add(Math.round((cc.pacingRate(20) / cc.bandwidth) * 100) / 100);
    }
    expect([...rates].sort()).toEqual([0.75, 1, 1.25]);
  });

  it("does not slow down on loss", () => {
    const cc = new Bbr({ mss: MSS });
    const t = drive(cc, 0, 2000, 1000, 20);
    const [cwnd, rate] = [cc.cwnd, cc.pacingRate(20)];
    for (let i = 0; i < 50; i++) cc.onLoss();
    expect(cc.cwnd).toBe(cwnd);
    expect(cc.pacingRate(20)).toBe(rate);
    expect(cc.losses).toBe(50);
    expect(cc.reductions).toBe(0);
    // A timeout: one segment until the next ack, then the model again.
    cc.onRto();
    expect(cc.cwnd).toBe(MSS);
    cc.onAck(t, MSS, t - 20, 20, true);
    expect(cc.cwnd).toBe(cwnd);
  });

  it("follows a bandwidth drop within the 10-round window, and an application-limited round does not lower it", () => {
    const cc = new Bbr({ mss: MSS });
    let t = drive(cc, 0, 2000, 1000, 20);
    t = drive(cc, t, t + 400, 400, 20, false); // app-limited at 400 bytes/ms: the estimate stays
    expect(cc.bandwidth).toBeGreaterThan(900);
    t = drive(cc, t, t + 600, 400, 20, true); // the bottleneck itself fell to 400
    expect(cc.bandwidth).toBeLessThan(450);
  });

  it("probes the RTT when its minimum is 10 s old: four segments for 200 ms, then back to probe-bw", () => {
    const cc = new Bbr({ mss: MSS });
    let t = drive(cc, 0, 2000, 1000, 20);
    t = drive(cc, t, 11_900, 1000, 25); // queueing: no sample reaches 20 ms again
    expect(cc.mode).toBe("probe-bw"); // the last 20 ms sample came at about t = 2,000
    t = drive(cc, t, 12_050, 1000, 25);
    expect(cc.mode).toBe("probe-rtt");
    expect(cc.cwnd).toBe(4 * MSS);
    t = drive(cc, t, t + 250, 1000, 21);
    expect(cc.mode).toBe("probe-bw");
    expect(cc.minRtt).toBe(21);
  });

  it("is built by createController and takes the link's mss", () => {
    const cc = createController({ kind: "bbr" }, 1300);
    expect(cc.name).toBe("bbr");
    expect((cc as Bbr).mss).toBe(1300);
    expect(cc.cwnd).toBe(13_000);
    expect(() => new Bbr({ mss: 10 })).toThrow(RangeError);
    expect(() => cc.setFlowCount(0)).toThrow(RangeError);
  });
});
