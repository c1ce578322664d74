/**
 * @packageDocumentation
 * spines-node, the spines-ts overlay daemon, as a library: the daemon itself (`SpinesDaemon`), its
 * configuration loader (flags, YAML/JSON files, classic `spines.conf` import), the reusable
 * `UdpHost` (a real `Host` over `node:dgram`), receive-side link emulation, and the client library
 * for the local client protocol (also at `@spines-ts/spines-node/client`).
 */
export * from "./address.ts";
export * from "./client.ts";
export * from "./client-protocol.ts";
export * from "./config.ts";
export { ControlError, ControlErrorCode, ControlServer } from "./control.ts";
export { type DaemonOptions, SpinesDaemon } from "./daemon.ts";
export * from "./emulation.ts";
export * from "./emulation-params.ts";
export { createDaemonLogger, type DaemonLogger } from "./logger.ts";
export { type Metric, MetricsServer, renderMetrics } from "./metrics.ts";
export * from "./plane.ts";
export * from "./sessions.ts";
export * from "./spines-conf.ts";
export * from "./udp-host.ts";
