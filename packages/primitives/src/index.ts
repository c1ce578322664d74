/**
 * @packageDocumentation
 * Shared primitives for every spines-ts protocol core: time (`Clock`, `ManualClock`), logging
 * (`Logger`), determinism (`Rng`), errors (`SpinesError`), timers (`TimerQueue`), the `Host`
 * contract that the simulator and the daemons both implement, THE driver pattern that runs a
 * sans-IO core on a `Host` (`CoreDriver`, docs/drivers.md), and the small utilities every protocol
 * shares: RFC 6298 RTT estimation, a bounded deque, 32-bit sequence arithmetic and an ephemeral
 * number picker. Pure: nothing here touches node:*, a real clock or a real timer — the process
 * clock for shells is `@spines-ts/primitives/system-clock`.
 */
export { type Clock, ManualClock } from "./clock.ts";
export { Deque } from "./deque.ts";
export { type CoreBinding, CoreDriver, type SansIoCore } from "./driver.ts";
export { CapacityError, ConfigError, SpinesError } from "./errors.ts";
export { MinHeap } from "./heap.ts";
export type { Host, NodeFactory, NodeId, NodeProgram } from "./host.ts";
export { type Logger, type LogRecord, MemoryLogger, RateLimitedLog, silentLogger } from "./logger.ts";
export { EPHEMERAL_PORT_MAX, EPHEMERAL_PORT_MIN, EphemeralPicker } from "./ports.ts";
export { Rng } from "./rng.ts";
export { type RtoBounds, RttEstimator } from "./rtt.ts";
export { seqDiff, seqLe, seqLt, unwrap32, wrap32 } from "./seq.ts";
export { type Cancel, TimerQueue } from "./timers.ts";
