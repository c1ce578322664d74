import { describe, expect, it } from "vitest";
import { checkParams, Direction, Rng, TimerHeap } from "../src/emulator/core.ts";

describe("emulator core", () => {
  it("delays every packet by delayMs without loss", () => {
    const d = new Direction({ delayMs: 10 }, 1);
    for (let i = 0; i < 100; i++) expect(d.admit(i, 1000)).toBe(i + 10);
    expect(d.stats.delivered).toBe(100);
  });

  it("drops about lossPct percent, deterministically per seed", () => {
    for (const seed of [1, 2, 3]) {
      const d = new Direction({ lossPct: 5 }, seed);
      const again = new Direction({ lossPct: 5 }, seed);
      const first: (number | undefined)[] = [];
      const second: (number | undefined)[] = [];
      for (let i = 0; i < 40_000; i++) {
        first.push(d.admit(i, 100));
        second.push(again.admit(i, 100));
      }
      expect(second).toEqual(first);
      const kept = first.filter((a) => a !== undefined).length;
      const loss = 1 - kept / 40_000;
      expect(loss, `seed ${seed}`).toBeGreaterThan(0.045);
      expect(loss, `seed ${seed}`).toBeLessThan(0.055);
    }
  });

  it("Gilbert–Elliott loss has the stationary rate and comes in bursts", () => {
    // pi_bad = 0.01 / (0.01 + 0.2) = 4.76 %; mean burst = 1 / 0.2 = 5 packets
    const d = new Direction({ gilbert: { pGoodToBad: 0.01, pBadToGood: 0.2 } }, 9);
    const n = 200_000;
    let lost = 0;
    let bursts = 0;
    let prevLost = false;
    for (let i = 0; i < n; i++) {
      const l = d.admit(i, 100) === undefined;
      if (l) lost++;
      if (l && !prevLost) bursts++;
      prevLost = l;
    }
    expect(lost / n).toBeGreaterThan(0.04);
    expect(lost / n).toBeLessThan(0.056);
    expect(lost / bursts).toBeGreaterThan(4);
    expect(lost / bursts).toBeLessThan(6);
  });

  it("serialises at rateMbit and tail-drops beyond the queue bound", () => {
    // 1 Mbit/s, 1250 B = 10 ms per packet
    const d = new Direction({ rateMbit: 1, queuePackets: 3 }, 1);
    expect(d.admit(0, 1250)).toBeCloseTo(10);
    expect(d.admit(0, 1250)).toBeCloseTo(20);
    expect(d.admit(0, 1250)).toBeCloseTo(30);
    expect(d.admit(0, 1250)).toBeUndefined();
    expect(d.stats.droppedQueue).toBe(1);
    expect(d.admit(10.5, 1250)).toBeCloseTo(40);
  });

  it("jitter stays within bounds and keeps order unless reorder is set", () => {
    const inOrder = new Direction({ delayMs: 10, jitterMs: 5 }, 4);
    const free = new Direction({ delayMs: 10, jitterMs: 5, reorder: true }, 4);
    let last = 0;
    let overtakes = 0;
    let lastFree = 0;
    for (let i = 0; i < 1000; i++) {
      const a = inOrder.admit(i * 0.5, 100) as number;
      expect(a).toBeGreaterThanOrEqual(last);
      last = a;
      const b = free.admit(i * 0.5, 100) as number;
      expect(b).toBeGreaterThanOrEqual(i * 0.5 + 5);
      expect(b).toBeLessThanOrEqual(i * 0.5 + 15);
      if (b < lastFree) overtakes++;
      lastFree = b;
    }
    expect(overtakes).toBeGreaterThan(100);
  });

  it("a link that is down drops everything", () => {
    const d = new Direction({ delayMs: 1 }, 1);
    d.update({ up: false });
    expect(d.admit(0, 10)).toBeUndefined();
    d.update({ up: true });
    expect(d.admit(0, 10)).toBe(1);
    expect(d.stats.droppedDown).toBe(1);
  });

  it("the heap pops in time order, FIFO on ties, and is bounded", () => {
    const h = new TimerHeap<number>(1000);
    const rng = new Rng(3);
    const times: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = Math.floor(rng.next() * 50);
      times.push(t);
      expect(h.push(t, i)).toBe(true);
    }
    expect(h.push(0, -1)).toBe(false);
    let prevT = -1;
    let prevI = -1;
    while (h.size > 0) {
      const t = h.peekTime() as number;
      const i = h.pop() as number;
      expect(times[i]).toBe(t);
      expect(t).toBeGreaterThanOrEqual(prevT);
      if (t === prevT) expect(i).toBeGreaterThan(prevI);
      prevT = t;
      prevI = i;
    }
  });

  it("rejects bad parameters", () => {
    expect(checkParams({ lossPct: 101 })).toHaveLength(1);
    expect(checkParams({ delayMs: -1, rateMbit: 0 })).toHaveLength(2);
    expect(checkParams({ gilbert: { pGoodToBad: 2, pBadToGood: 0.1 } })).toHaveLength(1);
    expect(checkParams({ delayMs: 10, lossPct: 1 })).toEqual([]);
  });
});
