/**
 * @packageDocumentation
 * spines-node, the spines-ts overlay daemon, as a library: the daemon itself (`SpinesDaemon`), which
 * runs `OverlayNode` from `@spines-ts/overlay` (links, routing, sessions) with `DAEMON_DEFAULTS`, its
 * client-facing session service (`ClientSessions`), its configuration loader (flags, YAML/JSON files, classic `spines.conf` import), the reusable
 * `UdpHost` (re-exported from `@spines-ts/node-host`), receive-side link emulation, and the client library
 * for the local client protocol (also at `@spines-ts/spines-node/client`).
 */

export {
  ControlClient,
  ControlError,
  ControlErrorCode,
  type ControlReply,
  ControlServer,
  createDaemonLogger,
  type DaemonLogger,
  type Metric,
  MetricsServer,
  renderMetrics,
} from "@spines-ts/daemon-kit";
export {
  UdpHost,
  type UdpHostOptions,
  type UdpHostStats,
  type UnknownPeerHandler,
} from "@spines-ts/node-host";
export * from "./address.ts";
export * from "./client.ts";
export * from "./client-protocol.ts";
export { ClientSessions } from "./client-sessions.ts";
export * from "./config.ts";
export { type DaemonOptions, type NeighborView, SpinesDaemon } from "./daemon.ts";
export * from "./emulation.ts";
export * from "./emulation-params.ts";
export * from "./services.ts";
export * from "./spines-conf.ts";
