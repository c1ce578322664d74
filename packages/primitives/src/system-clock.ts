import { performance } from "node:perf_hooks";
import type { Clock } from "./clock.ts";

/** The monotonic clock of the process (performance.now). For shells only, never for cores. */
export const systemClock: Clock = {
  now: () => performance.now(),
};
