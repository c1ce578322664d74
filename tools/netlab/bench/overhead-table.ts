/** The emulator-overhead table printed by `pnpm bench emulator` and beside `pnpm bench latency`. */
import type { Table } from "@spines-ts/bench";
import type { OverheadRow } from "../src/index.ts";

export const ADDED_MEAN_NOTE =
  "added mean = mean − the link's delay − veth's mean at that rate: what one emulated link adds (socat, TUN, the emulator and its timer)";

export function overheadTable(title: string, rows: readonly OverheadRow[], notes: string[] = []): Table {
  return {
    title,
    columns: [
      "path",
      "delay",
      "rate/s",
      "delivered",
      "sent",
      "mean",
      "p50",
      "p99",
      "p99.9",
      "max",
      "sd",
      "added mean",
    ],
    rows: rows.map((r) => [
      r.path,
      r.delayMs,
      r.rate,
      r.delivered,
      r.sent,
      r.meanMs,
      r.p50Ms,
      r.p99Ms,
      r.p999Ms,
      r.maxMs,
      r.sdMs,
      r.addedMs,
    ]),
    notes: [ADDED_MEAN_NOTE, ...notes],
  };
}
