/**
 * @packageDocumentation
 * netlab builds network-namespace testbeds for tests and benchmarks that need a real kernel: one
 * namespace per host, LANs as Linux bridges, point-to-point links emulated in user space (socat TUN
 * devices joined by a TypeScript emulator process that applies delay, jitter, independent or
 * Gilbert–Elliott loss and rate), static kernel routes with forwarding so kernel TCP crosses several
 * hops, and faults (link cut, partition, process kill/restart/pause). Everything carries a name
 * prefix, and {@link Testbed.cleanup} removes leftovers after a crash. Requires root.
 */
export type { DirectionStats, GilbertElliott, LinkParams } from "./emulator/core.ts";
export { NetlabError, type NetlabErrorCode } from "./errors.ts";
export {
  type ModelParams,
  type ModelRow,
  type ModelSummary,
  model,
  PyRandom,
  type Scheme,
  simulate,
} from "./latency-model.ts";
export { measureEmulatorOverhead, type OverheadRow } from "./overhead.ts";
export { raiseOwnPriority, raisePriority } from "./priority.ts";
export { type ProbeOptions, type ProbeResult, probe, RECEIVER_JS, SENDER_JS } from "./probe.ts";
export type { ExecResult } from "./proc.ts";
export { stateDir } from "./state.ts";
export { type LatencySummary, summarize } from "./stats.ts";
export { canRun, emulatorRequest, nsName, requireRoot, Testbed } from "./testbed.ts";
export type { Bottleneck, LanSpec, LinkSpec, TopologySpec } from "./topology.ts";
export { plan } from "./topology.ts";
