/**
 * @packageDocumentation
 * Shared primitives for every spines-ts protocol core: time (`Clock`, `ManualClock`), logging
 * (`Logger`), determinism (`Rng`), errors (`SpinesError`), timers (`TimerQueue`) and the `Host`
 * contract that the simulator and the daemons both implement.
 */
export { type Clock, ManualClock } from "./clock.ts";
export { CapacityError, ConfigError, SpinesError } from "./errors.ts";
export { MinHeap } from "./heap.ts";
export type { Host, NodeFactory, NodeId, NodeProgram } from "./host.ts";
export { type Logger, type LogRecord, MemoryLogger, RateLimitedLog, silentLogger } from "./logger.ts";
export { Rng } from "./rng.ts";
export { systemClock } from "./system-clock.ts";
export { type Cancel, TimerQueue } from "./timers.ts";
