import { describe, expect, it } from "vitest";
import { model, PyRandom } from "../src/latency-model.ts";

// Figures printed by the reference script latency_model.py (--n 20000 --json) with the same parameters.
const REFERENCE = [
  {
    args: { loss: 0.05, rate: 1000 },
    rows: {
      "hop-by-hop": [
        { meanMs: 44.4, p50Ms: 40, p99Ms: 82, p999Ms: 103, sdMs: 9.9 },
        { meanMs: 64.5, p50Ms: 61, p99Ms: 101, p999Ms: 121, sdMs: 11.8 },
      ],
      "e2e-ideal": [
        { meanMs: 58.4, p50Ms: 40, p99Ms: 202, p999Ms: 364, sdMs: 43.3 },
        { meanMs: 219.3, p50Ms: 200, p99Ms: 416, p999Ms: 507, sdMs: 62.2 },
      ],
      "e2e-rto": [
        { meanMs: 85.3, p50Ms: 40, p99Ms: 440, p999Ms: 840, sdMs: 106.8 },
        { meanMs: 586, p50Ms: 577, p99Ms: 1041, p999Ms: 1221, sdMs: 150.4 },
      ],
    },
  },
  {
    args: { loss: 0.01, rate: 1000 },
    rows: {
      "hop-by-hop": [
        { meanMs: 40.9, p50Ms: 40, p99Ms: 61, p999Ms: 61, sdMs: 4.3 },
        { meanMs: 47.7, p50Ms: 45, p99Ms: 71, p999Ms: 81, sdMs: 8.3 },
      ],
      "e2e-ideal": [
        { meanMs: 43.4, p50Ms: 40, p99Ms: 121, p999Ms: 202, sdMs: 17 },
        { meanMs: 106.5, p50Ms: 108, p99Ms: 199, p999Ms: 264, sdMs: 31.9 },
      ],
      "e2e-rto": [
        { meanMs: 48.5, p50Ms: 40, p99Ms: 240, p999Ms: 440, sdMs: 42 },
        { meanMs: 256.4, p50Ms: 232, p99Ms: 441, p999Ms: 621, sdMs: 74.9 },
      ],
    },
  },
  {
    args: { loss: 0.05, rate: 100 },
    rows: {
      "hop-by-hop": [
        { meanMs: 44.4, p50Ms: 40, p99Ms: 82, p999Ms: 103, sdMs: 9.9 },
        { meanMs: 47.4, p50Ms: 40, p99Ms: 82, p999Ms: 103, sdMs: 11.1 },
      ],
      "e2e-ideal": [
        { meanMs: 58.4, p50Ms: 40, p99Ms: 202, p999Ms: 364, sdMs: 43.3 },
        { meanMs: 116.9, p50Ms: 111, p99Ms: 314, p999Ms: 425, sdMs: 60.9 },
      ],
      "e2e-rto": [
        { meanMs: 85.3, p50Ms: 40, p99Ms: 440, p999Ms: 840, sdMs: 106.8 },
        { meanMs: 327.7, p50Ms: 300, p99Ms: 810, p999Ms: 1050, sdMs: 152.3 },
      ],
    },
  },
  {
    args: { loss: 0.01, rate: 100, hops: 3, delayMs: 5, gapMs: 2, rtoMs: 300, seed: 7 },
    rows: {
      "hop-by-hop": [
        { meanMs: 15.4, p50Ms: 15, p99Ms: 27, p999Ms: 27, sdMs: 2.1 },
        { meanMs: 15.4, p50Ms: 15, p99Ms: 27, p999Ms: 29, sdMs: 2.2 },
      ],
      "e2e-ideal": [
        { meanMs: 16, p50Ms: 15, p99Ms: 47, p999Ms: 79, sdMs: 5.8 },
        { meanMs: 17.2, p50Ms: 15, p99Ms: 47, p999Ms: 79, sdMs: 7.4 },
      ],
      "e2e-rto": [
        { meanMs: 24.4, p50Ms: 15, p99Ms: 315, p999Ms: 615, sdMs: 54.3 },
        { meanMs: 133.8, p50Ms: 105, p99Ms: 535, p999Ms: 615, sdMs: 125.9 },
      ],
    },
  },
] as const;

describe("latency model (port of latency_model.py)", () => {
  it("reproduces CPython's random.Random(seed).random() stream", () => {
    // python3 -c "import random; r = random.Random(1); print([r.random() for _ in range(3)])"
    const r = new PyRandom(1);
    expect([r.random(), r.random(), r.random()]).toEqual([
      0.13436424411240122, 0.8474337369372327, 0.763774618976614,
    ]);
    expect(new PyRandom(7).random()).toBe(0.32383276483316237);
  });

  for (const ref of REFERENCE) {
    it(`gives the reference script's figures for ${JSON.stringify(ref.args)}`, () => {
      const rows = model({ ...ref.args, n: 20_000 });
      for (const row of rows) {
        const [u, o] = ref.rows[row.scheme];
        expect(row.unordered, `${row.scheme} unordered`).toEqual(u);
        expect(row.ordered, `${row.scheme} ordered`).toEqual(o);
      }
    });
  }

  it("has no recovery cost without loss", () => {
    for (const row of model({ loss: 0, n: 1000 })) expect(row.ordered.p999Ms).toBe(40);
  });
});
