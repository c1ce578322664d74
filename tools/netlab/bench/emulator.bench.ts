/**
 * `pnpm bench emulator [--quick]`: what the netlab link emulator adds. One-way UDP latency of 1,000-byte
 * datagrams at 1,000 and 10,000 per second through an emulated 0 ms link, an emulated 10 ms link (each
 * packet waits for the emulator's timer) and, in the same run, through a direct veth pair (the
 * baseline). Needs root.
 */
import { runBench } from "@spines-ts/bench";
import { measureEmulatorOverhead } from "../src/index.ts";

await runBench("emulator", async (ctx) => {
  const rows = await measureEmulatorOverhead({
    durationMs: ctx.quick ? 1500 : 5000,
    prefix: "nlbemu",
    delayMs: 10,
  });
  return {
    tables: [
      {
        title: "netlab emulator: one-way latency of 1,000-byte UDP datagrams (ms)",
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
        notes: [
          "baseline: the veth rows (same run); 'added mean' = emulated mean − the link's delay − veth mean at that rate",
        ],
      },
    ],
    data: { rows },
  };
});
