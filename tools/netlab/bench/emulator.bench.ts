/**
 * `pnpm bench emulator [--quick]`: what the netlab link emulator adds. One-way UDP latency of 1,000-byte
 * datagrams at 1,000 and 10,000 per second through an emulated 0 ms link, an emulated 10 ms link (each
 * packet waits for the emulator's timer) and, in the same run, through a direct veth pair (the
 * baseline). Needs root.
 */
import { runBench } from "@spines-ts/bench";
import { measureEmulatorOverhead } from "../src/index.ts";
import { overheadTable } from "./overhead-table.ts";

await runBench("emulator", async (ctx) => {
  const rows = await measureEmulatorOverhead({
    durationMs: ctx.quick ? 1500 : 5000,
    prefix: "nlbemu",
    delayMs: 10,
  });
  return {
    tables: [
      overheadTable("netlab emulator: one-way latency of 1,000-byte UDP datagrams (ms)", rows, [
        "baseline: the veth rows (same run)",
      ]),
    ],
    data: { rows },
  };
});
