/**
 * Measures the link emulator itself: one-way UDP latency through an emulated 0 ms link (TUN → socat →
 * emulator → socat → TUN) against a direct veth pair on a bridge, in the same run. Benchmarks report
 * it beside their results.
 */
import { probe } from "./probe.ts";
import { type LatencySummary, summarize } from "./stats.ts";
import { Testbed } from "./testbed.ts";

export interface OverheadRow extends LatencySummary {
  path: "veth" | "emulated-0ms";
  rate: number;
  sent: number;
}

/** Runs the measurement on its own two-host testbed (prefix `${prefix}`), at each rate for `durationMs`. */
export async function measureEmulatorOverhead(
  opts: { prefix?: string; rates?: number[]; durationMs?: number } = {},
): Promise<OverheadRow[]> {
  const tb = await Testbed.create({
    prefix: opts.prefix ?? "nlovh",
    replace: true,
    hosts: ["a", "b"],
    lans: [{ name: "lan", hosts: ["a", "b"], subnet: "10.203.0.0/24" }],
    links: [{ a: "a", b: "b", name: "emu", subnet: "10.203.1.0/24" }],
  });
  try {
    const rows: OverheadRow[] = [];
    for (const rate of opts.rates ?? [1000, 10_000]) {
      for (const path of ["veth", "emulated-0ms"] as const) {
        const r = await probe(tb, {
          mode: "udp",
          from: "a",
          to: "b",
          address: tb.hostAddress("b", path === "veth" ? "lan" : "emu"),
          rate,
          size: 1000,
          durationMs: opts.durationMs ?? 3000,
          drainMs: 500,
        });
        rows.push({ path, rate, sent: r.sent, ...summarize(r.latMs) });
      }
    }
    return rows;
  } finally {
    await tb.destroy();
  }
}
