/**
 * Measures the link emulator itself: one-way UDP latency through an emulated link (TUN → socat →
 * emulator → socat → TUN) against a direct veth pair on a bridge, in the same run. Benchmarks report
 * it beside their results. Two emulated paths: 0 ms (the emulator forwards at once, no timer) and,
 * with `delayMs`, a link with that delay (every packet waits for the emulator's timer, as on the
 * benchmarks' paths); `addedMs` is what each adds over veth and its own configured delay.
 */
import { probe } from "./probe.ts";
import { type LatencySummary, summarize } from "./stats.ts";
import { Testbed } from "./testbed.ts";

export interface OverheadRow extends LatencySummary {
  path: "veth" | "emulated-0ms" | "emulated-delayed";
  /** The emulated link's configured one-way delay (0 for veth and emulated-0ms). */
  delayMs: number;
  rate: number;
  sent: number;
  /** Mean − delayMs − the veth mean at the same rate (0 for veth). */
  addedMs: number;
}

/** Runs the measurement on its own two-host testbed (prefix `${prefix}`), at each rate for `durationMs`. */
export async function measureEmulatorOverhead(
  opts: { prefix?: string; rates?: number[]; durationMs?: number; delayMs?: number } = {},
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
    const paths: OverheadRow["path"][] = ["veth", "emulated-0ms"];
    if (opts.delayMs !== undefined && opts.delayMs > 0) paths.push("emulated-delayed");
    for (const rate of opts.rates ?? [1000, 10_000]) {
      let vethMean = Number.NaN;
      for (const path of paths) {
        const delayMs = path === "emulated-delayed" ? (opts.delayMs as number) : 0;
        if (path !== "veth") await tb.setLink("emu", { delayMs });
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
        const sum = summarize(r.latMs);
        if (path === "veth") vethMean = sum.meanMs;
        const addedMs = path === "veth" ? 0 : sum.meanMs - delayMs - vethMean;
        rows.push({ path, delayMs, rate, sent: r.sent, addedMs, ...sum });
      }
    }
    return rows;
  } finally {
    await tb.destroy();
  }
}
