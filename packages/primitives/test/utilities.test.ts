import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CapacityError,
  Deque,
  EphemeralPicker,
  RttEstimator,
  seqDiff,
  seqLe,
  seqLt,
  unwrap32,
  wrap32,
} from "../src/index.ts";

describe("RttEstimator", () => {
  it("follows RFC 6298", () => {
    const r = new RttEstimator();
    const b = { minMs: 5, maxMs: 1000, initialMs: 200 };
    expect(r.rto(0, b)).toBe(200);
    r.sample(100);
    expect(r.srtt).toBe(100);
    expect(r.rttvar).toBe(50);
    r.sample(60);
    expect(r.rttvar).toBeCloseTo(0.75 * 50 + 0.25 * 40);
    expect(r.srtt).toBeCloseTo(0.875 * 100 + 0.125 * 60);
    expect(r.min).toBe(60);
    expect(r.latest).toBe(60);
    expect(r.rto(0, b)).toBeCloseTo(r.srtt! + 4 * r.rttvar);
    r.sample(-1);
    r.sample(Number.NaN);
    r.sample(Number.POSITIVE_INFINITY);
    expect(r.samples).toBe(2);
    r.reset();
    expect(r.hasSample).toBe(false);
    expect(r.srttOr(7)).toBe(7);
  });
  it("floors, backs off by doubling and caps", () => {
    const r = new RttEstimator({ initialMs: 1000, minMs: 50, maxMs: 4000 });
    expect(r.rto()).toBe(1000);
    expect(r.rto(1)).toBe(2000);
    expect(r.rto(5)).toBe(4000);
    r.sample(0); // a loopback sample is valid
    expect(r.srtt).toBe(0);
    expect(r.rto()).toBe(50);
    r.sample(100);
    expect(r.rto()).toBeGreaterThan(50);
    expect(r.rto(0, { initialMs: 1, minMs: 1, maxMs: 10, extraMs: 5 })).toBe(10);
  });
});

describe("Deque", () => {
  it("behaves as a FIFO/LIFO across growth", () => {
    const q = new Deque<number>(2);
    for (let i = 0; i < 100; i++) q.push(i);
    q.unshift(-1);
    expect(q.length).toBe(101);
    expect(q.shift()).toBe(-1);
    expect(q.at(99)).toBe(99);
    expect(q.at(100)).toBeUndefined();
    expect(q.at(-1)).toBeUndefined();
    expect(q.last()).toBe(99);
    expect(q.pop()).toBe(99);
    expect(q.peek()).toBe(0);
    expect([...q].slice(0, 3)).toEqual([0, 1, 2]);
    q.clear();
    expect(q.length).toBe(0);
    expect(q.shift()).toBeUndefined();
    expect(q.last()).toBeUndefined();
  });
  it("is bounded when asked", () => {
    const q = new Deque<number>(1, 3);
    q.push(1);
    q.push(2);
    q.unshift(0);
    expect(q.isFull).toBe(true);
    expect(() => q.push(3)).toThrow(CapacityError);
    expect(() => q.unshift(3)).toThrow(CapacityError);
    expect([...q]).toEqual([0, 1, 2]);
    q.shift();
    q.push(3);
    expect([...q]).toEqual([1, 2, 3]);
  });
  it("matches an array model under random operations", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 300 }), (ops) => {
        const q = new Deque<number>(1);
        const m: number[] = [];
        let n = 0;
        for (const op of ops) {
          if (op === 0) {
            q.push(n);
            m.push(n++);
          } else if (op === 1) {
            q.unshift(n);
            m.unshift(n++);
          } else if (op === 2) expect(q.shift()).toBe(m.shift());
          else if (op === 3) expect(q.pop()).toBe(m.pop());
          else expect(q.at(Math.floor(m.length / 2))).toBe(m[Math.floor(m.length / 2)]);
          expect(q.length).toBe(m.length);
        }
        expect([...q]).toEqual(m);
      }),
    );
  });
});

describe("32-bit sequence arithmetic", () => {
  it("unwraps to the nearest full value, negative near 0", () => {
    expect(unwrap32(5, 3)).toBe(5);
    expect(unwrap32(wrap32(2 ** 32 + 7), 2 ** 32 - 3)).toBe(2 ** 32 + 7);
    expect(unwrap32(0xfffffffe, 2 ** 32 + 1)).toBe(2 ** 32 - 2);
    expect(unwrap32(0xfffffffe, 1)).toBe(-2);
    expect(wrap32(-2)).toBe(0xfffffffe);
    fc.assert(
      fc.property(
        fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
        fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }),
        (ref, d) => {
          const v = ref + d;
          expect(unwrap32(wrap32(v), ref)).toBe(v);
          const w = wrap32(v);
          expect(w >= 0 && w < 2 ** 32).toBe(true);
        },
      ),
    );
  });
  it("compares wire values by serial-number arithmetic", () => {
    expect(seqLt(0xffffffff, 0)).toBe(true);
    expect(seqLt(0, 0xffffffff)).toBe(false);
    expect(seqLe(7, 7)).toBe(true);
    expect(seqDiff(2, 0xfffffffe)).toBe(4);
    fc.assert(
      fc.property(
        fc.nat({ max: 2 ** 32 - 1 }),
        fc.integer({ min: -(2 ** 31) + 1, max: 2 ** 31 - 1 }),
        (a, d) => {
          expect(seqDiff(wrap32(a + d), a)).toBe(d);
          expect(seqLt(a, wrap32(a + d))).toBe(d > 0);
        },
      ),
    );
  });
});

describe("EphemeralPicker", () => {
  it("goes round the range and skips numbers in use", () => {
    const p = new EphemeralPicker(10, 13);
    const used = new Set([11]);
    const free = (n: number) => !used.has(n);
    expect(p.pick(free)).toBe(10);
    expect(p.pick(free)).toBe(12);
    expect(p.pick(free)).toBe(13);
    expect(p.pick(free)).toBe(10);
    used.add(10).add(12).add(13);
    expect(p.pick(free)).toBeUndefined();
    expect(() => new EphemeralPicker(5, 4)).toThrow(RangeError);
  });
});
