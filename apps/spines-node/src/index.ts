/**
 * @packageDocumentation
 * spines-node, the spines-ts overlay daemon, as a library: the daemon itself (`SpinesDaemon`) with
 * its forwarding plane (`OverlayPlane`: link-arq links, routing, the session endpoint), its
 * configuration loader (flags, YAML/JSON files, classic `spines.conf` import), the reusable
 * `UdpHost` (re-exported from `@spines-ts/node-host`), receive-side link emulation, and the client library
 * for the local client protocol (also at `@spines-ts/spines-node/client`).
 */

export {
  UdpHost,
  type UdpHostOptions,
  type UdpHostStats,
  type UnknownPeerHandler,
} from "@spines-ts/node-host";
export * from "./address.ts";
export * from "./client.ts";
export * from "./client-protocol.ts";
export * from "./config.ts";
export { ControlError, ControlErrorCode, ControlServer } from "./control.ts";
export { ControlClient, type ControlReply } from "./control-client.ts";
export { CoreSessionService, type SessionTransport } from "./core-sessions.ts";
export { type DaemonOptions, SpinesDaemon } from "./daemon.ts";
export * from "./emulation.ts";
export * from "./emulation-params.ts";
export { createDaemonLogger, type DaemonLogger } from "./logger.ts";
export { type Metric, MetricsServer, renderMetrics } from "./metrics.ts";
export { channelFor, OverlayPlane, type OverlayPlaneOptions } from "./overlay-plane.ts";
export * from "./plane.ts";
export * from "./sessions.ts";
export * from "./spines-conf.ts";
