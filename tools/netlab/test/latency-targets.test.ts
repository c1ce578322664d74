/** The latency benchmark's target checks (bench/latency-targets.ts): same-run ratios and verdicts. */
import { describe, expect, it } from "vitest";
import { latencyTargets, type TargetInput } from "../bench/latency-targets.ts";

const row = (
  system: string,
  rate: number,
  lossPct: number,
  meanMs: number,
  p99Ms: number,
  linkMode = system === "model" ? "hop-by-hop ordered" : "x",
  delivered = 100,
): TargetInput => ({ system, linkMode, rate, lossPct, sent: 100, delivered, meanMs, p99Ms });

describe("latency targets", () => {
  const cases = [
    row("hop-by-hop", 1000, 5, 70, 120),
    row("hop-by-hop-datagram", 1000, 5, 50, 150),
    row("kernel-tcp-bbr", 1000, 5, 300, 300),
    row("kernel-tcp-cubic", 1000, 5, 200, 200),
    row("model", 1000, 5, 64.5, 101),
    row("model", 1000, 5, 44.4, 82, "hop-by-hop unordered"),
    row("hop-by-hop", 100, 0, 45, 60, "tcp-fair"),
    row("kernel-tcp-bbr", 100, 0, 42, 50),
    row("kernel-tcp-cubic", 100, 0, 40, 50),
    row("model", 100, 0, 40, 40),
    row("hop-by-hop", 100, 5, 47, 90, "tcp-fair", 99),
    row("model", 100, 5, 47.4, 82),
  ];
  const t = latencyTargets(cases);
  const get = (check: string, where: string) => t.find((x) => x.check === check && x.where === where);

  it("divides by the same run's model and kernel TCP and judges each bound", () => {
    const mean = get("hop-by-hop mean / model (ordered) mean", "1000/s rate-capped 5%");
    expect(mean?.measured).toBeCloseTo(70 / 64.5, 6);
    expect(mean?.met).toBe(true);
    const p99 = get("hop-by-hop p99 / model (ordered) p99", "1000/s rate-capped 5%");
    expect(p99?.measured).toBeCloseTo(120 / 101, 6);
    expect(p99?.met).toBe(true);
    expect(get("hop-by-hop p99 / kernel-tcp-bbr p99", "1000/s rate-capped 5%")?.met).toBe(true); // 0.4
    expect(get("hop-by-hop p99 / kernel-tcp-cubic p99", "1000/s rate-capped 5%")?.met).toBe(false); // 0.6
    const dg = get("datagram p99 / model (unordered) p99", "1000/s rate-capped 5%");
    expect(dg?.measured).toBeCloseTo(150 / 82, 6);
    expect(dg?.met).toBe(false);
  });

  it("checks delivery and the model at 100/s, and the per-hop cost over TCP at 0 %", () => {
    expect(get("hop-by-hop delivered / sent", "100/s tcp-fair 0%")?.met).toBe(true);
    expect(get("hop-by-hop delivered / sent", "100/s tcp-fair 5%")).toMatchObject({
      measured: 0.99,
      met: false,
    });
    expect(get("hop-by-hop mean / model (ordered) mean", "100/s tcp-fair 0%")?.met).toBe(false); // 45/40
    const bbr = get("(hop-by-hop mean − kernel-tcp-bbr mean) / 4 hops, ms", "100/s tcp-fair 0%");
    expect(bbr?.measured).toBeCloseTo(0.75, 6);
    expect(bbr?.met).toBe(true);
    expect(get("(hop-by-hop mean − kernel-tcp-cubic mean) / 4 hops, ms", "100/s tcp-fair 0%")?.met).toBe(
      false,
    );
  });

  it("leaves a verdict out when a row is missing or delivered nothing", () => {
    const none = latencyTargets([row("hop-by-hop", 1000, 5, Number.NaN, Number.NaN, "x", 0)]);
    expect(none.find((x) => x.check.startsWith("hop-by-hop mean"))?.met).toBeUndefined();
    expect(none.every((x) => x.met === undefined)).toBe(true);
  });
});
