/**
 * Link behaviour proven in the simulator across many seeds, with invariants checked after every
 * event (exactly-once, bounds, no stall, NACK rules). A failing seed is named in the error
 * (forEachSeed) and replays with NETSIM_SEED=<seed>. Large-sample figures are in `pnpm bench links`.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import {
  runBottleneck,
  runCapped,
  runFlowShare,
  runLatency,
  runLivenessSeed,
  runPath,
  runReliableSeed,
  runRestartSeed,
  runUnreliableSeed,
} from "./support/scenarios.ts";

const SEEDS = 1000;

describe("reliable link under adverse conditions (netsim)", () => {
  for (const bursty of [false, true]) {
    it(`delivers every accepted packet exactly once, within bounds, without stalls: ${bursty ? "bursty" : "independent"} loss 0–20 %, ${SEEDS} seeds`, () => {
      let retransmitted = 0;
      let maxLoss = 0;
      forEachSeed(
        SEEDS,
        (seed) => {
          const r = runReliableSeed(seed, { packets: 150, bursty });
          expect(r.delivered).toBe(150);
          expect(r.duplicates).toBe(0);
          retransmitted += r.retransmitted;
          maxLoss = Math.max(maxLoss, r.loss);
        },
        { startSeed: bursty ? 100_001 : 1 },
      );
      // The scenarios really were lossy.
      expect(maxLoss).toBeGreaterThan(0.19);
      expect(retransmitted).toBeGreaterThan(SEEDS * 5);
    });
  }
});

describe("liveness (netsim)", () => {
  it(`declares a crashed neighbour dead within timeout + one hello interval and adopts its restart one round trip after the first new frame (nonce echo), ${SEEDS} seeds`, () => {
    let minDetect = Number.POSITIVE_INFINITY;
    let maxDetect = 0;
    let oneRtt = 0;
    let maxRtts = 0;
    forEachSeed(SEEDS, (seed) => {
      const r = runLivenessSeed(seed);
      expect(r.upAt).toBeLessThan(r.crashAt);
      expect(r.falseDowns).toBe(0);
      expect(r.detectMs).toBeGreaterThan(0);
      expect(r.detectMs).toBeLessThanOrEqual(1000 + 100);
      expect(Number.isNaN(r.firstNewFrameAt)).toBe(false);
      // A frame of the new incarnation proves it only when it echoes node 1's nonce: node 1's
      // challenge and node 2's answer, or node 2's own first frame when node 1's hello reached
      // the new incarnation before it sent anything (then 0).
      const adopt = r.restartEventAt - r.firstNewFrameAt;
      expect(adopt).toBeGreaterThanOrEqual(0);
      // A lost handshake frame is retried at the next hello: never as long as a dead timeout.
      expect(adopt).toBeLessThan(1000);
      if (adopt <= 2 * (r.delayMs + r.jitterMs) + 1e-6) oneRtt++;
      maxRtts = Math.max(maxRtts, adopt / (2 * r.delayMs));
      minDetect = Math.min(minDetect, r.detectMs);
      maxDetect = Math.max(maxDetect, r.detectMs);
    });
    expect(maxDetect).toBeGreaterThan(1000);
    expect(minDetect).toBeLessThan(1000);
    // Loss ≤ 5 % per frame: most handshakes take their one round trip (plus jitter).
    expect(oneRtt / SEEDS).toBeGreaterThan(0.85);
    console.log(
      `restart adopted within one round trip (+ jitter) of the first new frame in ${oneRtt}/${SEEDS} seeds; worst ${maxRtts.toFixed(1)} RTTs`,
    );
  });
});

describe("real-time and best-effort links (netsim)", () => {
  it(`request each lost packet at most once, only within the deadline, within the share; measure loss; ${SEEDS} seeds`, () => {
    let err = 0;
    let recovered = 0;
    forEachSeed(SEEDS, (seed) => {
      const r = runUnreliableSeed(seed, { packets: 200 });
      expect(r.rtDuplicates + r.beDuplicates).toBe(0);
      expect(r.repeatedRequests).toBe(0);
      expect(r.lateRetransmissions).toBe(0);
      expect(r.rtRetransmitted).toBeLessThanOrEqual(0.5 * r.rtNew + 1);
      expect(r.beDelivered).toBeLessThanOrEqual(r.sent);
      err += Math.abs(r.lossOut - r.loss);
      recovered += r.rtDelivered - r.beDelivered;
    });
    // Receiver-measured loss, reported back over hellos, tracks the configured loss.
    expect(err / SEEDS).toBeLessThan(0.04);
    // Real-time recovers something that best-effort loses.
    expect(recovered).toBeGreaterThan(SEEDS);
  });
});

describe("recovery latency (netsim; 100,000-packet runs are in the benchmark)", () => {
  for (const loss of [0.01, 0.05, 0.1]) {
    it(`one 10 ms link at ${loss * 100} % loss: mean latency within 1.1× of d + (p/(1-p))(2d + ε), ε = RTT/8`, () => {
      const r = runLatency(7, {
        loss,
        packets: 20_000,
        config: { congestion: { kind: "rate", rateBytesPerMs: 1000 } },
      });
      expect(r.meanMs / r.modelMs).toBeLessThan(1.1);
      expect(r.meanMs / r.modelMs).toBeGreaterThan(1 / 1.1);
    });
  }
  it("the TCP-fair default at 100 packets/s (below its fair rate) also meets the model", () => {
    for (const loss of [0.01, 0.1]) {
      const r = runLatency(8, { loss, packets: 3000, gapMs: 10 });
      expect(r.meanMs / r.modelMs).toBeLessThan(1.1);
    }
  });
  it("the TCP-fair default at 100 packets/s of 1,050 bytes and 5 % loss: no window wait (issue 10)", () => {
    // ~2-3 frames per round trip; the NewReno window, halved by losses in consecutive round trips,
    // used to fall to 2 MSS and queue packets behind it (13.03 ms mean, p99 62 ms against 11.58 and
    // 40). An application-limited loss now keeps what was in flight + 2 MSS within the TCP-fair
    // window (docs/links.md §6): the model with ε = the 10 ms packet gap, p99 one recovery.
    const r = runLatency(8, { loss: 0.05, packets: 20_000, gapMs: 10, payload: 1050 });
    expect(r.epsilonMs).toBe(10);
    expect(r.meanMs / r.modelMs).toBeLessThan(1.02);
    expect(r.p99Ms).toBeLessThanOrEqual(40);
  });
});

describe("fairness (netsim)", () => {
  it(`2, 4 and 8 flows on one link reach a Jain index ≥ 0.99, ${SEEDS} seeds`, () => {
    let worst = 1;
    forEachSeed(SEEDS, (seed) => {
      const flows = [2, 4, 8][seed % 3] as number;
      const r = runFlowShare(seed, { flows, durationMs: 1000, warmupMs: 500 });
      expect(Math.min(...r.bytes)).toBeGreaterThan(0);
      expect(r.jain).toBeGreaterThanOrEqual(0.99);
      worst = Math.min(worst, r.jain);
    });
    expect(worst).toBeLessThanOrEqual(1);
  });
  it("a link flow and an end-to-end NewReno flow share a drop-tail bottleneck within 0.8–1.25× each", () => {
    forEachSeed(2, (seed) => {
      const r = runBottleneck(seed, { durationMs: 20_000 });
      expect(r.linkRatio).toBeGreaterThanOrEqual(0.8);
      expect(r.linkRatio).toBeLessThanOrEqual(1.25);
      expect(r.renoRatio).toBeGreaterThanOrEqual(0.8);
      expect(r.renoRatio).toBeLessThanOrEqual(1.25);
    });
  });
});

describe("hop-by-hop vs end-to-end throughput (netsim)", () => {
  for (const loss of [0.01, 0.05]) {
    it(`4 links × 10 ms at ${loss * 100} %: the TCP-fair hop-by-hop path carries ≥ 4× an end-to-end NewReno flow`, () => {
      const r = runPath(3, { loss, durationMs: 10_000 });
      expect(r.endToEnd).toBeGreaterThan(0);
      expect(r.ratio).toBeGreaterThanOrEqual(4);
      // And each link stays in the TCP-fair regime: no more than ~1.5× the Mathis rate of one link.
      expect(r.hopByHop).toBeLessThan(1.5 * r.mathisHop);
    });
  }
});

describe("other congestion modes and caps (netsim)", () => {
  const modes = [
    ["CUBIC", { congestion: { kind: "cubic" } }],
    ["rate-capped", { congestion: { kind: "rate", rateBytesPerMs: 200 } }],
    ["NewReno with pacing", { pacing: true }],
  ] as const;
  for (const [name, config] of modes) {
    it(`${name}: exactly once, within bounds, no stall, 300 seeds`, () => {
      forEachSeed(
        300,
        (seed) => {
          const r = runReliableSeed(seed, { packets: 150, config });
          expect(r.delivered).toBe(150);
          expect(r.duplicates).toBe(0);
        },
        { startSeed: 200_001 },
      );
    });
  }

  it("the token-bucket cap bounds what a link sends", () => {
    for (const cap of [50, 200]) {
      const r = runCapped(5, cap, 5000);
      // Long-run rate at most the cap (plus one burst), and the link uses most of it.
      expect(r.bytes).toBeLessThanOrEqual(cap * 5000 + 16 * 1400);
      expect(r.bytes).toBeGreaterThan(0.8 * cap * 5000);
    }
  });
});

describe("restart during a transfer (netsim)", () => {
  it(`a receiver restart discards the old link state; later packets arrive exactly once, ${SEEDS} seeds`, () => {
    let discarded = 0;
    forEachSeed(
      SEEDS,
      (seed) => {
        const r = runRestartSeed(seed);
        expect(r.restartEvents).toBe(1);
        expect(r.acceptedAfter).toBe(300);
        expect(r.duplicatesAfter).toBe(0);
        expect(r.deliveredAfter).toBe(r.acceptedAfter);
        discarded += r.discarded;
      },
      { startSeed: 300_001 },
    );
    // The crash really caught packets in flight, which the restart discarded.
    expect(discarded).toBeGreaterThan(0);
  });
});
