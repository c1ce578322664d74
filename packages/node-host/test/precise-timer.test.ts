import { describe, expect, it } from "vitest";
import { monoMs, PreciseTimer } from "../src/precise-timer.ts";

/** A timer that reports the time each fire ran. */
function fired(onFire: (at: number) => void): PreciseTimer {
  return new PreciseTimer(() => onFire(monoMs()));
}

describe("PreciseTimer", () => {
  it("fires once its deadline has passed, never before", async () => {
    const times: number[] = [];
    let done!: () => void;
    const finished = new Promise<void>((r) => {
      done = r;
    });
    const deadlines: number[] = [];
    const t = fired((at) => {
      times.push(at);
      if (times.length === 5) done();
      else {
        const d = monoMs() + 3.3;
        deadlines.push(d);
        t.arm(d);
      }
    });
    const keepAlive = setInterval(() => {}, 1000);
    const first = monoMs() + 2.5;
    deadlines.push(first);
    t.arm(first);
    await finished;
    clearInterval(keepAlive);
    t.close();
    expect(times).toHaveLength(5);
    for (let i = 0; i < 5; i++) expect(times[i]).toBeGreaterThanOrEqual(deadlines[i] as number);
  });

  it("re-arming moves the deadline: an earlier one fires first, Infinity disarms", async () => {
    const times: number[] = [];
    const t = fired((at) => times.push(at));
    const keepAlive = setInterval(() => {}, 1000);
    const start = monoMs();
    t.arm(start + 500);
    t.arm(start + 5);
    await new Promise((r) => setTimeout(r, 60));
    expect(times.length).toBeGreaterThanOrEqual(1);
    expect(times[0]).toBeGreaterThanOrEqual(start + 5);
    expect(times[0]).toBeLessThan(start + 500);
    expect(t.at).toBe(Number.POSITIVE_INFINITY);
    const n = times.length;
    t.arm(monoMs() + 20);
    t.arm(Number.POSITIVE_INFINITY);
    await new Promise((r) => setTimeout(r, 60));
    expect(times.length).toBe(n);
    clearInterval(keepAlive);
    t.close();
  });

  it("a deadline moved later fires once, at the new deadline (the worker's early wake runs nothing)", async () => {
    const times: number[] = [];
    const t = fired((at) => times.push(at));
    const keepAlive = setInterval(() => {}, 1000);
    const start = monoMs();
    t.arm(start + 5);
    t.arm(start + 30); // later: the worker is not told, wakes at +5 and finds nothing due
    await new Promise((r) => setTimeout(r, 80));
    expect(times).toHaveLength(1);
    expect(times[0]).toBeGreaterThanOrEqual(start + 30);
    clearInterval(keepAlive);
    t.close();
  });

  it("timers share one worker: each fires after its own deadline, in deadline order", async () => {
    const got: [string, number][] = [];
    const keepAlive = setInterval(() => {}, 1000);
    const start = monoMs();
    const deadlines: Record<string, number> = { a: start + 12, b: start + 4, c: start + 8 };
    const timers = Object.keys(deadlines).map((name) => {
      const t = new PreciseTimer(() => got.push([name, monoMs()]));
      t.arm(deadlines[name] as number);
      return t;
    });
    const gone = new PreciseTimer(() => got.push(["closed", monoMs()]));
    gone.arm(start + 6);
    gone.close();
    await new Promise((r) => setTimeout(r, 80));
    clearInterval(keepAlive);
    for (const t of timers) t.close();
    expect(got.map(([n]) => n)).toEqual(["b", "c", "a"]);
    for (const [n, at] of got) expect(at).toBeGreaterThanOrEqual(deadlines[n] as number);
  });
});
