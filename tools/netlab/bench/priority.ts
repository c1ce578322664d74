/**
 * Runs a benchmark at the emulator's scheduling priority. netlab runs its emulator and socat at
 * nice -10 (their autogroups too: src/priority.ts); the benchmark process and everything it spawns (spines-node daemons, probes, iperf3,
 * which inherit the niceness) join them, so on a shared machine the systems under test compete
 * less with unrelated work. Kernel TCP's own processing runs in softirq context whatever the
 * niceness, so without this the overlay rows would pay for background load that the TCP rows
 * mostly escape. `--nice N` picks another value; `--nice 0` leaves the priority alone.
 */
import { getPriority } from "node:os";
import { raiseOwnPriority } from "../src/priority.ts";

/** Applies the niceness asked for (default -10); returns the niceness the process runs at. */
export function benchPriority(args: readonly string[]): number {
  const i = args.indexOf("--nice");
  const want = i >= 0 ? Number(args[i + 1]) : -10;
  if (!Number.isInteger(want) || want < -20 || want > 19) {
    throw new RangeError(`--nice must be an integer from -20 to 19, got ${String(args[i + 1])}`);
  }
  if (want !== 0) {
    // niceness alone does not hold across sessions (autogroups): raise the session's group too
    const r = raiseOwnPriority(want);
    if (!r.nice) console.error(`bench: could not set niceness ${want}; running at ${getPriority(0)}`);
  }
  return getPriority(0);
}
