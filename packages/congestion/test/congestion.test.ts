import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  Cubic,
  createController,
  DrrScheduler,
  jainIndex,
  LossEventRate,
  mathisRate,
  NewReno,
  RateCapped,
  TokenBucket,
} from "../src/index.ts";

const MSS = 1000;

describe("NewReno", () => {
  it("slow start doubles per RTT, then one halving per loss episode", () => {
    const cc = new NewReno({ mss: MSS, initialWindow: 2 });
    expect(cc.cwnd).toBe(2000);
    // One RTT worth of acks, all cwnd-limited: the window doubles.
    cc.onAck(10, 1000, 0, 10, true);
    cc.onAck(10, 1000, 0, 10, true);
    expect(cc.cwnd).toBe(4000);
    expect(cc.inSlowStart).toBe(true);
    // A loss of a packet sent at t=5 starts an episode at t=20.
    cc.onLoss(20, 1000, 5);
    expect(cc.cwnd).toBe(2000);
    expect(cc.ssthresh).toBe(2000);
    // More losses of packets sent before the episode started: no further decrease.
    cc.onLoss(21, 1000, 6);
    cc.onLoss(22, 1000, 19);
    expect(cc.cwnd).toBe(2000);
    expect(cc.reductions).toBe(1);
    // Acks of packets sent before the episode: no growth.
    cc.onAck(25, 1000, 10, 10, true);
    expect(cc.cwnd).toBe(2000);
    // Congestion avoidance: one MSS per window of acked bytes.
    cc.onAck(30, 1000, 21, 10, true);
    expect(cc.cwnd).toBe(2000);
    cc.onAck(30, 1000, 21, 10, true);
    expect(cc.cwnd).toBe(3000);
    // A new loss of a packet sent after the episode began is a new episode.
    cc.onLoss(40, 1000, 30);
    expect(cc.cwnd).toBe(2000);
    expect(cc.reductions).toBe(2);
  });

  it("does not grow when application-limited, and collapses on timeout", () => {
    const cc = new NewReno({ mss: MSS });
    const w = cc.cwnd;
    for (let i = 0; i < 100; i++) cc.onAck(i, 1000, i, 10, false);
    expect(cc.cwnd).toBe(w);
    cc.onRto(200);
    expect(cc.cwnd).toBe(MSS);
    expect(cc.ssthresh).toBe(w / 2);
  });

  it("never goes below the minimum window, whatever the input (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 1, max: 3000 })), {
          maxLength: 300,
        }),
        (ops) => {
          const cc = new NewReno({ mss: MSS });
          let t = 0;
          for (const [op, b] of ops) {
            t += 1;
            if (op === 0 || op === 1) cc.onAck(t, b, t - 1, 10, op === 0);
            else if (op === 2) cc.onLoss(t, b, t - 1);
            else cc.onRto(t);
            if (!(cc.cwnd >= MSS) || !Number.isFinite(cc.cwnd)) return false;
          }
          return true;
        },
      ),
    );
  });

  it("reaches the Mathis rate under periodic loss (deterministic AIMD sawtooth)", () => {
    // Simulate rounds: each RTT the flow sends cwnd bytes; one loss every 1/p packets.
    const p = 0.01;
    const rtt = 20;
    const cc = new NewReno({ mss: MSS });
    let sent = 0;
    let next = 1 / p;
    let bytes = 0;
    let t = 0;
    for (let round = 0; round < 20_000; round++) {
      const pk = Math.max(1, Math.floor(cc.cwnd / MSS));
      let lost = false;
      for (let i = 0; i < pk; i++) {
        sent++;
        if (sent >= next) {
          next += 1 / p;
          lost = true;
        }
      }
      // The loss is detected just before the next round goes out.
      if (lost) cc.onLoss(t + rtt - 1, MSS, t);
      else for (let i = 0; i < pk; i++) cc.onAck(t + rtt, MSS, t, rtt, true);
      if (round > 2000) bytes += pk * MSS;
      t += rtt;
    }
    const rate = bytes / (t - 2001 * rtt);
    // Deterministic periodic loss gives sqrt(3/2)/sqrt(p) exactly in the limit (Mathis C = 1.22).
    const model = mathisRate(MSS, rtt, p);
    expect(rate / model).toBeGreaterThan(0.85);
    expect(rate / model).toBeLessThan(1.15);
  });
});

describe("loss event rate and the application-limited floor (issue 10)", () => {
  it("LossEventRate: RFC 5348 weighted mean of the last 8 intervals, the open one when it raises it", () => {
    const r = new LossEventRate();
    expect(r.rate).toBe(0);
    for (let i = 0; i < 19; i++) r.packet();
    r.packet(); // the lost packet ends the interval
    r.event();
    expect(r.rate).toBeCloseTo(1 / 20, 12);
    // A short open interval does not lower the mean; a long one raises it.
    for (let i = 0; i < 5; i++) r.packet();
    expect(r.rate).toBeCloseTo(1 / 20, 12);
    for (let i = 0; i < 95; i++) r.packet();
    expect(r.rate).toBeCloseTo(1 / ((100 + 20) / 2), 12);
    r.event();
    // Intervals 100, 20; then 8 of 10: only the last 8 count, the oldest weighted 0.2.
    for (let k = 0; k < 8; k++) {
      for (let i = 0; i < 10; i++) r.packet();
      r.event();
    }
    expect(r.events).toBe(8);
    expect(r.rate).toBeCloseTo(1 / 10, 12);
    r.reset();
    expect(r.rate).toBe(0);
  });

  for (const make of [() => new NewReno({ mss: MSS }), () => new Cubic({ mss: MSS })]) {
    it(`${make().name}: an application-limited loss keeps what was in flight + 2 MSS, within the TCP-fair window`, () => {
      // 20 packets per loss event: p = 0.05, TCP-fair window √(1.5/0.05) = 5.48 MSS.
      const run = (appFlight: number | undefined) => {
        const cc = make();
        let t = 0;
        for (let e = 0; e < 5; e++) {
          // Not window-limited: the window does not grow between the losses.
          for (let i = 0; i < 19; i++) cc.onAck(t, MSS, t, 10, false);
          t += 100;
          cc.onLoss(t, MSS, t - 1, appFlight);
        }
        return cc;
      };
      const limited = run(3 * MSS);
      expect(limited.lossEventRate).toBeCloseTo(0.05, 12);
      expect(limited.tcpFairWindow).toBeCloseTo(MSS * Math.sqrt(30), 6);
      // Five losses in a row: a window-limited sender is at the minimum window, an
      // application-limited one keeps 3 + 2 MSS (below the TCP-fair 5.48 MSS).
      expect(run(undefined).cwnd).toBe(2 * MSS);
      expect(limited.cwnd).toBe(5 * MSS);
      expect(limited.ssthresh).toBe(5 * MSS);
      // More in flight than the TCP-fair window allows: the fair window bounds it.
      expect(run(10 * MSS).cwnd).toBeCloseTo(MSS * Math.sqrt(30), 6);
      // The floor never raises the window above what it was.
      const cc = make();
      cc.onLoss(10, MSS, 5, 20 * MSS);
      expect(cc.cwnd).toBeLessThanOrEqual(10 * MSS);
    });
  }

  it("at a high loss event rate the floor gives way: 25 % loss events leave ~2.4 MSS", () => {
    const cc = new NewReno({ mss: MSS });
    let t = 0;
    for (let e = 0; e < 10; e++) {
      for (let i = 0; i < 3; i++) cc.onAck(t, MSS, t, 10, true);
      t += 100;
      cc.onLoss(t, MSS, t - 1, 10 * MSS);
    }
    expect(cc.lossEventRate).toBeCloseTo(0.25, 12);
    expect(cc.cwnd).toBeCloseTo(MSS * Math.sqrt(6), 6);
  });

  it("the N-flow window's fair window is n flows' (MulTCP)", () => {
    const cc = new NewReno({ mss: MSS });
    cc.setFlowCount(4);
    for (let i = 0; i < 19; i++) cc.onAck(i, MSS, i, 10, true);
    cc.onLoss(100, MSS, 99);
    expect(cc.tcpFairWindow).toBeCloseTo(4 * MSS * Math.sqrt(30), 6);
  });
});

describe("Cubic", () => {
  it("reduces by beta and regrows toward W_max along the cubic", () => {
    // A large window, so the cubic curve (not the Reno-friendly estimate) drives growth.
    const cc = new Cubic({ mss: MSS, initialWindow: 1000 });
    cc.onLoss(0, MSS, -1);
    expect(cc.cwnd).toBeCloseTo(700_000, 5);
    // Acks arriving over time in congestion avoidance: the window grows back to ~W_max.
    let t = 1;
    let w = cc.cwnd;
    for (let i = 0; i < 100_000 && cc.cwnd < 1_000_000; i++) {
      t += 0.5;
      cc.onAck(t, MSS, t - 20, 20, true);
      expect(cc.cwnd).toBeGreaterThanOrEqual(w);
      w = cc.cwnd;
    }
    expect(cc.cwnd).toBeGreaterThanOrEqual(1_000_000);
    // K = cbrt(W_max(1-beta)/C) = cbrt(1000*0.3/0.4) ≈ 9.09 s: reaching W_max takes about K.
    expect(t).toBeGreaterThan(8_000);
    expect(t).toBeLessThan(10_000);
  });
  it("collapses on timeout and ignores losses inside an episode", () => {
    const cc = new Cubic({ mss: MSS });
    cc.onLoss(10, MSS, 5);
    const w = cc.cwnd;
    cc.onLoss(11, MSS, 9);
    expect(cc.cwnd).toBe(w);
    cc.onRto(20);
    expect(cc.cwnd).toBe(MSS);
  });
});

describe("undo of a spurious reduction (RFC 4015)", () => {
  for (const make of [() => new NewReno({ mss: MSS }), () => new Cubic({ mss: MSS })]) {
    it(`${make().name}: restores window, threshold and episode after a timeout or a loss`, () => {
      const cc = make();
      for (let i = 0; i < 30; i++) cc.onAck(i, MSS, i, 10, true);
      const w = cc.cwnd;
      const th = cc.ssthresh;
      cc.onRto(100);
      expect(cc.cwnd).toBe(MSS);
      cc.onAck(101, MSS, 101, 10, true); // grows in slow start after the collapse
      cc.undo();
      expect(cc.cwnd).toBe(w);
      expect(cc.ssthresh).toBe(th);
      // Undo goes one level only: a second call changes nothing.
      cc.undo();
      expect(cc.cwnd).toBe(w);
      // A loss episode is undone too, and a later loss of a packet sent before it starts a new one.
      cc.onLoss(200, MSS, 150);
      expect(cc.cwnd).toBeLessThan(w);
      cc.undo();
      expect(cc.cwnd).toBe(w);
      const r = cc.reductions;
      cc.onLoss(210, MSS, 160);
      expect(cc.reductions).toBe(r + 1);
      expect(cc.cwnd).toBeLessThan(w);
    });
  }
  it("is a no-op without a reduction, and on the rate-capped mode", () => {
    const cc = new NewReno({ mss: MSS });
    const w = cc.cwnd;
    cc.undo();
    expect(cc.cwnd).toBe(w);
    const r = new RateCapped(5);
    r.onRto();
    r.undo();
    expect(r.cwnd).toBe(Number.POSITIVE_INFINITY);
  });
});

describe("RateCapped and createController", () => {
  it("has no window and a fixed pacing rate", () => {
    const cc = createController({ kind: "rate", rateBytesPerMs: 125 });
    expect(cc).toBeInstanceOf(RateCapped);
    expect(cc.cwnd).toBe(Number.POSITIVE_INFINITY);
    cc.onLoss(1, 1000, 0);
    cc.onRto(2);
    expect(cc.cwnd).toBe(Number.POSITIVE_INFINITY);
    expect(cc.pacingRate(10)).toBe(125);
    expect(createController({ kind: "newreno" }, 900).cwnd).toBe(9000);
    expect(createController({ kind: "cubic" }).name).toBe("cubic");
    expect(() => new NewReno({ mss: 0 })).toThrow(RangeError);
  });
});

describe("TokenBucket", () => {
  it("limits the long-run rate and allows a burst", () => {
    const b = new TokenBucket(1, 3000, 0); // 1 byte/ms = 1 kB/s
    let sent = 0;
    for (let t = 0; t <= 10_000; t += 1) {
      while (b.canSpend(t, 1000)) {
        b.spend(t, 1000);
        sent += 1000;
      }
    }
    expect(sent).toBeGreaterThanOrEqual(10_000 + 3000 - 1000);
    expect(sent).toBeLessThanOrEqual(10_000 + 3000 + 1000);
    expect(b.nextTime(10_000, 1000)).toBeGreaterThan(10_000);
    expect(() => new TokenBucket(0, 1)).toThrow(RangeError);
  });
});

describe("DrrScheduler", () => {
  it("shares bytes equally across backlogged flows of different packet sizes", () => {
    const d = new DrrScheduler<number>({
      quantum: 1500,
      maxPackets: 100_000,
      maxBytes: 1e9,
      maxPacketsPerFlow: 50_000,
    });
    const sizes = [100, 700, 1500, 333];
    for (let i = 0; i < 2000; i++) for (const [k, s] of sizes.entries()) d.enqueue(k, i, s);
    const got = [0, 0, 0, 0];
    let budget = 400_000;
    while (budget > 0) {
      const x = d.dequeue();
      if (!x) break;
      got[x.key as number]! += x.bytes;
      budget -= x.bytes;
    }
    expect(jainIndex(got)).toBeGreaterThan(0.999);
  });
  it("enforces every bound and keeps order within a flow", () => {
    const d = new DrrScheduler<number>({ maxPackets: 5, maxBytes: 1000, maxPacketsPerFlow: 3, maxFlows: 2 });
    expect(d.enqueue("a", 1, 100)).toBe(true);
    expect(d.enqueue("a", 2, 100)).toBe(true);
    expect(d.enqueue("a", 3, 100)).toBe(true);
    expect(d.enqueue("a", 4, 100)).toBe(false);
    expect(d.refusal("a", 100)).toBe("flow-packets");
    expect(d.enqueue("b", 1, 600)).toBe(true);
    expect(d.refusal("b", 200)).toBe("total-bytes");
    expect(d.refusal("c", 10)).toBe("flows");
    const out: string[] = [];
    for (let x = d.dequeue(); x; x = d.dequeue()) out.push(`${x.key}${x.item}`);
    expect(out.filter((s) => s.startsWith("a"))).toEqual(["a1", "a2", "a3"]);
    expect(d.packets).toBe(0);
    expect(d.bytes).toBe(0);
    expect(d.flows).toBe(0);
  });
  it("flows that empty and come back (their records reused) keep their keys and order (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 3000 })), {
          maxLength: 400,
        }),
        (ops) => {
          const d = new DrrScheduler<string>({ quantum: 1500, maxPackets: 30, maxPacketsPerFlow: 5 });
          const next = new Map<number, number>();
          const expectNext = new Map<number, number>();
          for (const [enq, k, b] of ops) {
            if (enq) {
              const n = next.get(k) ?? 0;
              if (d.enqueue(k, `${k}/${n}`, b)) next.set(k, n + 1);
              continue;
            }
            const x = d.dequeue();
            if (x === undefined) continue;
            const e = expectNext.get(x.key as number) ?? 0;
            if (x.item !== `${x.key}/${e}`) return false;
            expectNext.set(x.key as number, e + 1);
          }
          return true;
        },
      ),
    );
  });
  it("a flow that comes back starts a fresh round (no deficit carried from a reused record)", () => {
    const d = new DrrScheduler<number>({ quantum: 1000 });
    d.enqueue("a", 1, 100); // "a" leaves with 900 bytes of deficit unused
    expect(d.dequeue()?.key).toBe("a");
    expect(d.flows).toBe(0);
    for (const k of ["b", "c"]) for (const i of [1, 2, 3]) d.enqueue(k, i, 500);
    const order: string[] = [];
    for (let x = d.dequeue(); x; x = d.dequeue()) order.push(`${x.key}${x.item}`);
    // each flow's first round is one quantum: two 500-byte packets (900 carried would give b1, c1, c2, b2...)
    expect(order).toEqual(["b1", "b2", "c1", "c2", "b3", "c3"]);
  });
  it("never exceeds its bounds under random operations (property)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 5 }), fc.integer({ min: 1, max: 1500 })), {
          maxLength: 500,
        }),
        (ops) => {
          const d = new DrrScheduler<number>({
            maxPackets: 20,
            maxBytes: 10_000,
            maxPacketsPerFlow: 6,
            maxFlows: 4,
          });
          let inQ = 0;
          for (const [enq, k, b] of ops) {
            if (enq) {
              if (d.enqueue(k, 0, b)) inQ++;
            } else if (d.dequeue()) inQ--;
            if (d.packets !== inQ || d.packets > 20 || d.bytes > 10_000 || d.flows > 4) return false;
          }
          return true;
        },
      ),
    );
  });
});

describe("jainIndex", () => {
  it("computes Jain's index", () => {
    expect(jainIndex([1, 1, 1, 1])).toBe(1);
    expect(jainIndex([1, 0, 0, 0])).toBeCloseTo(0.25);
    expect(() => jainIndex([])).toThrow(RangeError);
  });
});
