/**
 * The link model against its configuration, with stated confidence bounds. Every run is
 * deterministic (fixed seeds); the bounds say how unlikely a failure would be for a correct model,
 * so a failure here means the model is wrong, not that the dice were unlucky.
 */
import type { Host, NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { gilbertElliottLossRate, type LinkParams, Simulator } from "../src/index.ts";
import { Recorder, Sender, unstamp } from "./helpers.ts";

const Z = 5; // 5 sigma: a two-sided miss has probability ~6e-7 per check

/** Sends `n` stamped packets 1 → 2, one every `gapMs`, and returns the simulator after delivery. */
function stream(seed: number, params: LinkParams, n: number, gapMs: number, size = 12): Simulator {
  const sim = new Simulator({ seed, traceCapacity: 0, maxEvents: 2 * n + 10 });
  sim.connectOneWay(1, 2, params);
  sim.addNode(1, (h) => new Sender(h, 2, n, gapMs, size));
  sim.addNode(2, (h) => new Recorder(h));
  sim.run(n * gapMs + 10_000);
  return sim;
}

function received(sim: Simulator): { t: number; seq: number; sentAt: number }[] {
  return (sim.program<Recorder>(2)?.got ?? []).map((g) => {
    const { seq, t } = unstamp(g.data);
    return { t: g.t, seq, sentAt: t };
  });
}

function binomialBound(n: number, p: number): { lo: number; hi: number } {
  const sd = Math.sqrt(n * p * (1 - p));
  return { lo: n * p - Z * sd, hi: n * p + Z * sd };
}

describe("independent loss", () => {
  it.each([0.001, 0.01, 0.1, 0.5])("measured loss at p=%f is within 5 sigma of the binomial", (p) => {
    const n = 100_000;
    for (const seed of [1, 2]) {
      const sim = stream(seed, { delayMs: 1, loss: p }, n, 0.01);
      const lost = sim.stats.drops.loss;
      const { lo, hi } = binomialBound(n, p);
      expect(lost).toBeGreaterThanOrEqual(lo);
      expect(lost).toBeLessThanOrEqual(hi);
      expect(sim.stats.delivered).toBe(n - lost);
    }
  });

  it("loss 0 and loss 1 are exact", () => {
    expect(stream(1, { delayMs: 1, loss: 0 }, 10_000, 0.1).stats.delivered).toBe(10_000);
    expect(stream(1, { delayMs: 1, loss: 1 }, 10_000, 0.1).stats.delivered).toBe(0);
  });
});

describe("Gilbert–Elliott bursty loss", () => {
  const cases = [
    { pGoodToBad: 0.01, pBadToGood: 0.2, lossGood: 0, lossBad: 1 },
    { pGoodToBad: 0.05, pBadToGood: 0.3, lossGood: 0.01, lossBad: 0.7 },
  ];
  it.each(cases)("stationary loss rate matches πG·lossGood + πB·lossBad (%o)", (ge) => {
    // The losses are correlated, so the binomial bound does not apply: use batch means. 100 batches
    // of 12,000 packets (>> the mixing time 1/(pGB+pBG) < 50 packets) are close to independent; the
    // overall mean must be within 5 standard errors of the formula (a 10 % error in any transition
    // probability moves the rate by more than that).
    const n = 1_200_000;
    const batches = 100;
    const size = n / batches;
    const sim = new Simulator({ seed: 11, traceCapacity: 0, maxEvents: 10_000 });
    sim.connectOneWay(1, 2, { delayMs: 1, gilbertElliott: ge });
    // 1,000 packets per ms, each carrying its sequence number (big-endian u32)
    sim.addNode(1, (h: Host): NodeProgram => {
      let seq = 0;
      const buf = new Uint8Array(4);
      const burst = (): void => {
        for (let i = 0; i < 1000 && seq < n; i++, seq++) {
          buf[0] = seq >>> 24;
          buf[1] = (seq >>> 16) & 0xff;
          buf[2] = (seq >>> 8) & 0xff;
          buf[3] = seq & 0xff;
          h.send(2, buf);
        }
        if (seq < n) h.schedule(h.clock.now() + 1, burst);
      };
      h.schedule(0, burst);
      return { receive() {} };
    });
    const perBatch = new Array<number>(batches).fill(0);
    sim.addNode(
      2,
      (_h: Host): NodeProgram => ({
        receive(_f, d) {
          const seq =
            (((d[0] as number) << 24) |
              ((d[1] as number) << 16) |
              ((d[2] as number) << 8) |
              (d[3] as number)) >>>
            0;
          const b = Math.floor(seq / size);
          perBatch[b] = (perBatch[b] ?? 0) + 1;
        },
      }),
    );
    sim.run(n / 1000 + 100);
    expect(sim.stats.sent).toBe(n);
    const rates = perBatch.map((d) => 1 - d / size);
    const mean = rates.reduce((a, b) => a + b, 0) / batches;
    const sd = Math.sqrt(rates.reduce((a, b) => a + (b - mean) ** 2, 0) / (batches - 1));
    const se = sd / Math.sqrt(batches);
    const expected = gilbertElliottLossRate(ge);
    expect(Math.abs(mean - expected)).toBeLessThan(Z * se);
    expect(se).toBeGreaterThan(0);
    expect(sim.stats.drops.loss / n).toBeCloseTo(mean, 10);
  });

  it("losses come in bursts of mean length 1/pBadToGood when lossBad = 1 and lossGood = 0", () => {
    const ge = { pGoodToBad: 0.02, pBadToGood: 0.25, lossGood: 0, lossBad: 1 };
    const n = 200_000;
    const sim = stream(5, { delayMs: 1, gilbertElliott: ge }, n, 0.01);
    const got = received(sim).map((r) => r.seq);
    const bursts: number[] = [];
    for (let i = 1; i < got.length; i++) {
      const gap = (got[i] as number) - (got[i - 1] as number) - 1;
      if (gap > 0) bursts.push(gap);
    }
    // burst length is geometric with mean 1/pBG = 4 and variance (1-pBG)/pBG^2 = 12
    const mean = bursts.reduce((a, b) => a + b, 0) / bursts.length;
    const se = Math.sqrt((1 - ge.pBadToGood) / ge.pBadToGood ** 2 / bursts.length);
    expect(bursts.length).toBeGreaterThan(1000);
    expect(Math.abs(mean - 1 / ge.pBadToGood)).toBeLessThan(Z * se);
  });
});

describe("delay and jitter", () => {
  it("delay is uniform in [d - j, d + j]: mean and standard deviation within bounds", () => {
    const d = 20;
    const j = 4;
    const n = 50_000;
    // packets 10 ms apart (> 2j), so FIFO order never holds one back
    const sim = stream(3, { delayMs: d, jitterMs: j }, n, 10);
    const delays = received(sim).map((r) => r.t - r.sentAt);
    expect(delays.length).toBe(n);
    const mean = delays.reduce((a, b) => a + b, 0) / n;
    const sd = Math.sqrt(delays.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
    const sdModel = j / Math.sqrt(3);
    expect(Math.abs(mean - d)).toBeLessThan((Z * sdModel) / Math.sqrt(n));
    // the sample sd of a uniform has relative standard error ~ sqrt(0.8 / (4n)) ≈ 0.2 %: allow 2 %
    expect(Math.abs(sd - sdModel) / sdModel).toBeLessThan(0.02);
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(d - j);
    expect(Math.max(...delays)).toBeLessThanOrEqual(d + j);
  });

  it("without jitter every packet takes exactly delayMs", () => {
    const delays = received(stream(1, { delayMs: 7.5 }, 1000, 1)).map((r) => r.t - r.sentAt);
    expect(new Set(delays)).toEqual(new Set([7.5]));
  });
});

describe("reordering and duplication", () => {
  function inversions(seqs: number[]): number {
    let n = 0;
    let max = -1;
    for (const s of seqs) {
      if (s < max) n++;
      else max = s;
    }
    return n;
  }

  it("jitter alone never reorders (links are FIFO)", () => {
    const sim = stream(1, { delayMs: 10, jitterMs: 9 }, 20_000, 0.05);
    const seqs = received(sim).map((r) => r.seq);
    expect(seqs.length).toBe(20_000);
    expect(inversions(seqs)).toBe(0);
  });

  it("reorder p makes about n·p packets arrive late and out of order", () => {
    const n = 50_000;
    const p = 0.05;
    const sim = stream(2, { delayMs: 10, jitterMs: 2, reorder: p, reorderDelayMs: 5 }, n, 0.5);
    const { lo, hi } = binomialBound(n, p);
    expect(sim.stats.reordered).toBeGreaterThanOrEqual(lo);
    expect(sim.stats.reordered).toBeLessThanOrEqual(hi);
    // held 5 ms with packets every 0.5 ms: every held packet is overtaken by several later ones
    const inv = inversions(received(sim).map((r) => r.seq));
    expect(inv).toBe(sim.stats.reordered);
  });

  it("duplicate p delivers about n·p extra copies", () => {
    const n = 100_000;
    const p = 0.02;
    const sim = stream(4, { delayMs: 1, duplicate: p }, n, 0.01);
    const { lo, hi } = binomialBound(n, p);
    expect(sim.stats.duplicated).toBeGreaterThanOrEqual(lo);
    expect(sim.stats.duplicated).toBeLessThanOrEqual(hi);
    expect(sim.stats.delivered).toBe(n + sim.stats.duplicated);
    const seqs = received(sim).map((r) => r.seq);
    expect(seqs.length - new Set(seqs).size).toBe(sim.stats.duplicated);
  });
});

describe("bandwidth bottleneck", () => {
  it("a single packet is delayed by its serialization time", () => {
    // 1,250 bytes at 1 Mbps take 10 ms to serialize
    const got = received(stream(1, { delayMs: 5, bandwidthBps: 1_000_000 }, 1, 1, 1250));
    expect(got[0]?.t).toBeCloseTo(15, 9);
  });

  it.each([
    [1_000_000, 1000],
    [10_000_000, 1200],
    [100_000_000, 1400],
  ])("an overloaded %d bps link delivers within 1 percent of its rate with %d-byte packets", (bps, size) => {
    // offer 2x the link rate for 5 s of virtual time
    const durationMs = 5_000;
    const gapMs = (size * 8 * 1000) / bps / 2;
    const n = Math.floor(durationMs / gapMs);
    const queueBytes = 20 * size;
    const sim = stream(1, { delayMs: 10, bandwidthBps: bps, queueBytes }, n, gapMs, size);
    const got = received(sim);
    const first = got[0]?.t ?? 0;
    const last = got[got.length - 1]?.t ?? 0;
    const throughput = ((got.length - 1) * size * 8 * 1000) / (last - first);
    expect(Math.abs(throughput - bps) / bps).toBeLessThan(0.01);
    expect(sim.stats.drops.queue).toBeGreaterThan(n * 0.45);
    // no packet waits longer than a full queue drains, plus its own serialization, plus propagation
    const maxDelay = Math.max(...got.map((r) => r.t - r.sentAt));
    expect(maxDelay).toBeLessThanOrEqual(10 + ((queueBytes + size) * 8 * 1000) / bps + 1e-9);
    expect(maxDelay).toBeGreaterThan(10 + ((queueBytes - 2 * size) * 8 * 1000) / bps);
  });

  it("below its rate a link drops nothing", () => {
    const bps = 1_000_000;
    const sim = stream(1, { delayMs: 10, bandwidthBps: bps }, 1000, 12, 1000); // 1000 B / 12 ms = 0.67 Mbps
    expect(sim.stats.drops.queue).toBe(0);
    expect(sim.stats.delivered).toBe(1000);
  });
});
