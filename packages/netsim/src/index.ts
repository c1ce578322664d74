/**
 * @packageDocumentation
 * Deterministic discrete-event network simulator that runs real spines-ts protocol cores under a
 * virtual clock. Nodes are `NodeProgram`s talking through the `Host` contract of
 * `@spines-ts/primitives`; links model delay, jitter, independent and bursty (Gilbert–Elliott) loss,
 * reordering, duplication, a bandwidth bottleneck with a drop-tail queue, and an MTU; faults (crash
 * and restart, link down/up, partitions) are scripted or drawn from the seed. Invariants run after
 * every event, and a running trace hash proves that one seed gives one run.
 */
export { SimEventError, SimInvariantError, SimSeedError, type TraceRecord } from "./errors.ts";
export {
  DEFAULT_MTU,
  DEFAULT_QUEUE_BYTES,
  type GilbertElliott,
  gilbertElliottLossRate,
  type LinkParams,
} from "./params.ts";
export { type ForEachSeedOptions, forEachSeed, forEachSeedAsync } from "./seeds.ts";
export {
  type FaultKind,
  type LinkStats,
  type RandomFaultOptions,
  type SimStats,
  Simulator,
  type SimulatorOptions,
} from "./simulator.ts";
export { DropCause, type DropCauseName } from "./trace.ts";
