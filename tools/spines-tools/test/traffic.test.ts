import { afterEach, describe, expect, it, vi } from "vitest";
import { parseId, table } from "../src/cli.ts";
import { HEADER_BYTES, Progress, RunStats, readHeader, StreamParser, writeHeader } from "../src/traffic.ts";

describe("traffic header", () => {
  it("round-trips and rejects what is not a header", () => {
    const b = Buffer.alloc(100);
    writeHeader(b, { flags: 1, run: 0xdeadbeef, seq: 42, size: 100, sentAt: 1234.5, total: 7 });
    expect(readHeader(b)).toEqual({
      flags: 1,
      run: 0xdeadbeef,
      seq: 42,
      size: 100,
      sentAt: 1234.5,
      total: 7,
    });
    expect(readHeader(b.subarray(0, HEADER_BYTES - 1))).toBeUndefined();
    expect(readHeader(Buffer.alloc(64))).toBeUndefined();
  });
});

describe("RunStats", () => {
  it("counts loss against the announced total, duplicates and reordering", () => {
    const s = new RunStats();
    for (const seq of [0, 1, 3, 2, 2, 5]) s.add(seq, 100, 0, 10 + seq);
    s.announced = 8;
    const r = s.summary();
    expect(r.messages).toEqual({
      received: 5,
      expected: 8,
      lost: 3,
      lossPct: 37.5,
      duplicates: 1,
      reordered: 1,
    });
    expect(r.bytes).toBe(500);
  });

  it("computes latency percentiles, max and RFC 3550 jitter", () => {
    const s = new RunStats();
    for (let i = 0; i < 100; i++) s.add(i, 10, i * 10, i * 10 + (i + 1)); // latencies 1..100 ms
    const r = s.summary();
    expect(r.latencyMs).toEqual({ mean: 50.5, p50: 51, p99: 100, max: 100 });
    // Transit grows by 1 ms per message: J converges towards 1.
    expect(r.jitterMs).toBeGreaterThan(0.9);
    expect(r.jitterMs).toBeLessThanOrEqual(1);
    expect(r.throughputMbps).toBeCloseTo((1000 * 8) / 1089 / 1000, 9);
  });
});

describe("StreamParser", () => {
  it("finds message boundaries whatever the chunking", () => {
    const msgs = [40, 1000, 33].map((size, seq) => {
      const b = Buffer.alloc(size, 9);
      writeHeader(b, { flags: 0, run: 1, seq, size, sentAt: seq, total: 0 });
      return b;
    });
    const all = Buffer.concat(msgs);
    for (const step of [1, 7, 32, 500, all.length]) {
      const got: number[] = [];
      const p = new StreamParser((h) => got.push(h.seq));
      for (let i = 0; i < all.length; i += step) p.push(all.subarray(i, i + step), 0);
      expect(got, `step ${step}`).toEqual([0, 1, 2]);
      expect(p.garbage).toBe(0);
    }
    const p = new StreamParser(() => {});
    p.push(Buffer.alloc(64, 1), 0);
    expect(p.garbage).toBeGreaterThan(0);
  });
});

describe("Progress", () => {
  afterEach(() => vi.useRealTimers());

  it("draws once a second only when enabled (a terminal), and clears its line", () => {
    vi.useFakeTimers();
    const out: string[] = [];
    const sink = { write: (s: string) => out.push(s) };
    const on = new Progress(sink, true, () => "line");
    vi.advanceTimersByTime(2500);
    on.stop();
    expect(out).toEqual(["\r\x1b[2Kline", "\r\x1b[2Kline", "\r\x1b[2K"]);
    out.length = 0;
    const off = new Progress(sink, false, () => "line");
    vi.advanceTimersByTime(2500);
    off.stop();
    expect(out).toEqual([]);
  });
});

describe("cli helpers", () => {
  it("parses node ids as numbers or dotted IPv4, and refuses the rest", () => {
    expect(parseId("7")).toBe(7);
    expect(parseId("10.0.0.1")).toBe(0x0a000001);
    for (const bad of ["0", "4294967295", "1.2.3.256", "x", "-1"]) expect(() => parseId(bad)).toThrow(/node/);
  });

  it("pads table columns", () => {
    expect(
      table(
        ["A", "LONG"],
        [
          [1, null],
          ["wide", { x: 1 }],
        ],
      ),
    ).toBe('A     LONG\n1     -\nwide  {"x":1}\n');
  });
});
