import { describe, expect, it } from "vitest";
import { ManualClock, MemoryLogger, MinHeap, RateLimitedLog, Rng, TimerQueue } from "../src/index.ts";

describe("Rng", () => {
  it("replays the same sequence for the same seed and differs for another", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xa = Array.from({ length: 100 }, () => a.uint32());
    const xb = Array.from({ length: 100 }, () => b.uint32());
    const xc = Array.from({ length: 100 }, () => c.uint32());
    expect(xa).toEqual(xb);
    expect(xa).not.toEqual(xc);
  });
  it("is roughly uniform", () => {
    const r = new Rng(7);
    const buckets = new Array(10).fill(0);
    const n = 100_000;
    for (let i = 0; i < n; i++) buckets[r.int(10)]++;
    for (const b of buckets) expect(Math.abs(b - n / 10)).toBeLessThan(500); // > 5 sigma
  });
  it("rejects bad arguments", () => {
    expect(() => new Rng(1.5)).toThrow(TypeError);
    expect(() => new Rng(1).int(0)).toThrow(RangeError);
    expect(() => new Rng(1).pick([])).toThrow(RangeError);
  });
  it("forks independent streams deterministically", () => {
    const a = new Rng(1).fork(3);
    const b = new Rng(1).fork(3);
    expect(a.uint32()).toBe(b.uint32());
  });
});

describe("ManualClock", () => {
  it("only moves forward", () => {
    const c = new ManualClock(5);
    c.advance(10);
    expect(c.now()).toBe(15);
    expect(() => c.set(1)).toThrow(RangeError);
    expect(() => c.advance(-1)).toThrow(RangeError);
  });
});

describe("MinHeap and TimerQueue", () => {
  it("pops in order", () => {
    const h = new MinHeap<number>((a, b) => a < b);
    const r = new Rng(3);
    const xs = Array.from({ length: 1000 }, () => r.int(100));
    for (const x of xs) h.push(x);
    const out: number[] = [];
    while (h.size) out.push(h.pop() as number);
    expect(out).toEqual([...xs].sort((a, b) => a - b));
  });
  it("runs due timers in time then schedule order, skipping cancelled ones", () => {
    const q = new TimerQueue();
    const ran: string[] = [];
    q.schedule(10, () => ran.push("b"));
    q.schedule(5, () => ran.push("a"));
    const cancel = q.schedule(7, () => ran.push("x"));
    q.schedule(10, () => ran.push("c"));
    cancel();
    cancel();
    expect(q.pending).toBe(3);
    expect(q.nextDeadline()).toBe(5);
    expect(q.runDue(9)).toBe(1);
    expect(q.runDue(10)).toBe(2);
    expect(ran).toEqual(["a", "b", "c"]);
    expect(q.nextDeadline()).toBeUndefined();
  });
});

describe("RateLimitedLog", () => {
  it("lets a burst through per window and reports the suppressed count", () => {
    const mem = new MemoryLogger();
    const rl = new RateLimitedLog(mem, 1000, 2);
    for (let i = 0; i < 10; i++) rl.debug(0, "k", { i }, "bad packet");
    expect(mem.records.length).toBe(2);
    rl.debug(1000, "k", { i: 99 }, "bad packet");
    expect(mem.records.length).toBe(3);
    expect(mem.records[2]?.obj).toEqual({ i: 99, suppressed: 8 });
  });
});
