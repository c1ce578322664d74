import { ManualClock, Rng, TimerQueue } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { LinkEmulator } from "../src/emulation.ts";
import { checkEmulation } from "../src/emulation-params.ts";

/**
 * A virtual-time harness: the emulator runs on a ManualClock and a TimerQueue whose timers fire
 * `lateMs` after their deadline (a real host's timer lateness; 0 by default).
 */
function harness(seed = 1, lateMs = 0) {
  const clock = new ManualClock();
  const timers = new TimerQueue();
  const got: { from: number; at: number; n: number }[] = [];
  const emu = new LinkEmulator(
    { clock, rng: new Rng(seed), schedule: (at, fn) => timers.schedule(at + lateMs, fn) },
    (from, data) => got.push({ from, at: clock.now(), n: data[0] ?? 0 }),
  );
  const runUntil = (t: number) => {
    for (;;) {
      const d = timers.nextDeadline();
      if (d === undefined || d > t) break;
      clock.set(Math.max(clock.now(), d));
      timers.runDue(clock.now());
    }
    clock.set(Math.max(clock.now(), t));
  };
  return { clock, emu, got, runUntil, timers };
}

describe("link emulation", () => {
  it("passes packets straight through when unset", () => {
    const h = harness();
    h.emu.receive(2, Uint8Array.of(1));
    expect(h.got).toEqual([{ from: 2, at: 0, n: 1 }]);
    expect(h.timers.pending).toBe(0);
  });

  it("delays by delayMs and keeps order under jitter", () => {
    const h = harness();
    h.emu.set(2, { delayMs: 50, jitterMs: 30 });
    for (let i = 0; i < 100; i++) {
      h.emu.receive(2, Uint8Array.of(i));
      h.runUntil(h.clock.now() + 1);
    }
    h.runUntil(1000);
    expect(h.got.map((g) => g.n)).toEqual([...Array(100).keys()]);
    // Sent at t=i, delivered between t+50 and t+80 (or later only to keep order).
    for (const g of h.got) {
      expect(g.at).toBeGreaterThanOrEqual(g.n + 50);
      expect(g.at).toBeLessThanOrEqual(g.n + 81);
    }
    expect(h.timers.pending).toBe(0);
  });

  it("loses lossPct of packets on average", () => {
    const h = harness(7);
    h.emu.set(2, { lossPct: 20 });
    const n = 20_000;
    for (let i = 0; i < n; i++) h.emu.receive(2, Uint8Array.of(0));
    const lost = n - h.got.length;
    expect(lost / n).toBeGreaterThan(0.18);
    expect(lost / n).toBeLessThan(0.22);
    expect(h.emu.stats(2)?.lost).toBe(lost);
  });

  it("bursty loss keeps the average and makes losses come in runs", () => {
    const run = (burstPct: number) => {
      const h = harness(11);
      h.emu.set(2, { lossPct: 10, burstPct });
      const n = 40_000;
      const seq: boolean[] = [];
      for (let i = 0; i < n; i++) {
        const before = h.got.length;
        h.emu.receive(2, Uint8Array.of(0));
        seq.push(h.got.length === before);
      }
      const lost = seq.filter(Boolean).length;
      let runs = 0;
      for (let i = 0; i < n; i++) if (seq[i] && !seq[i - 1]) runs++;
      return { rate: lost / n, meanRun: lost / runs };
    };
    const flat = run(0);
    const bursty = run(60);
    expect(bursty.rate).toBeGreaterThan(0.08);
    expect(bursty.rate).toBeLessThan(0.12);
    // P(lost | previous lost) = 0.6 gives mean runs of 1 / (1 - 0.6) = 2.5 packets.
    expect(bursty.meanRun).toBeGreaterThan(2.2);
    expect(bursty.meanRun).toBeLessThan(2.8);
    expect(flat.meanRun).toBeLessThan(1.2);
  });

  it("serialises at bandwidthKbps and drops beyond queueBytes", () => {
    const h = harness();
    // 1000 kbit/s = 125 bytes/ms: a 1250-byte packet takes 10 ms.
    h.emu.set(2, { bandwidthKbps: 1000, queueBytes: 5000 });
    const pkt = new Uint8Array(1250);
    for (let i = 0; i < 6; i++) {
      pkt[0] = i;
      h.emu.receive(2, pkt.slice());
    }
    h.runUntil(1000);
    expect(h.got.map((g) => g.at)).toEqual([10, 20, 30, 40]);
    expect(h.emu.stats(2)?.queueDrops).toBe(2);
  });

  it("clearing flushes what is queued, in order", () => {
    const h = harness();
    h.emu.set(2, { delayMs: 100 });
    h.emu.receive(2, Uint8Array.of(1));
    h.emu.receive(2, Uint8Array.of(2));
    h.emu.set(2, undefined);
    expect(h.got.map((g) => g.n)).toEqual([1, 2]);
    h.emu.receive(2, Uint8Array.of(3));
    expect(h.got.map((g) => g.n)).toEqual([1, 2, 3]);
  });

  it("learns its timers' lateness and wakes that much early: releases centre on the due time", () => {
    // A host whose timers fire 0.7 ms late (setTimeout's millisecond granularity).
    const LATE = 0.7;
    const h = harness(3, LATE);
    const emu = h.emu;
    const sentAt: number[] = [];
    emu.set(2, { delayMs: 10 });
    for (let i = 0; i < 2000; i++) {
      sentAt[i] = h.clock.now();
      emu.receive(2, Uint8Array.of(i & 0xff));
      h.runUntil(h.clock.now() + 3.3);
    }
    h.runUntil(h.clock.now() + 100);
    expect(h.got.length).toBe(2000);
    // First in, first out: the i-th delivery is the i-th packet.
    const got = h.got.map((g, i) => g.at - (sentAt[i] as number));
    const early = got.slice(0, 20);
    const late = got.slice(1000);
    const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
    // Before it has learned anything, each packet is late by the timer's lateness...
    expect(mean(early)).toBeGreaterThan(10.5);
    // ...once learned, the delay is the configured 10 ms, and never early by more than the lead.
    expect(Math.abs(mean(late) - 10)).toBeLessThan(0.05);
    expect(Math.min(...got)).toBeGreaterThanOrEqual(10 - LATE - 1e-9);
    expect(emu.lead).toBeCloseTo(LATE, 1);
    expect(Math.abs(emu.stats(2)?.releaseErrorMs ?? 1)).toBeLessThan(0.1);
  });

  it("validates parameters", () => {
    expect(checkEmulation({ delayMs: 5 })).toEqual({ ok: true, params: { delayMs: 5 } });
    expect(checkEmulation({ lossPct: 101 })).toMatchObject({ ok: false, key: "lossPct" });
    expect(checkEmulation({ delay: 5 })).toMatchObject({ ok: false, key: "delay" });
    expect(checkEmulation([])).toMatchObject({ ok: false, key: "" });
  });
});
