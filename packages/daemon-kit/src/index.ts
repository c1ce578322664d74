/**
 * @packageDocumentation
 * The local-socket shell the spines-ts daemons share (spines-node, wackamole-node): Unix sockets
 * created 0600 with no window and refusal at a limit, the guard that pauses and then disconnects a
 * peer that does not read its output, the newline-delimited JSON control server and its client, a
 * loopback Prometheus endpoint, the pino logger behind the primitives `Logger`, and `ADDR:PORT`
 * parsing. Everything here is I/O; the protocol cores stay sans-IO.
 */
export {
  argNumber,
  argString,
  CONTROL_QUEUE_BYTES,
  CONTROL_STALL_MS,
  ControlError,
  ControlErrorCode,
  type ControlHandler,
  ControlServer,
  type ControlServerOptions,
  type ControlStats,
  MAX_CONTROL_LINE_BYTES,
  MAX_PENDING_REQUESTS,
} from "./control.ts";
export {
  ControlClient,
  type ControlClientOptions,
  type ControlReply,
  MAX_REPLY_BYTES,
} from "./control-client.ts";
export {
  AddressSyntaxError,
  formatHostPort,
  type HostPort,
  isLoopback,
  parseHostPort,
} from "./endpoint.ts";
export { createDaemonLogger, type DaemonLogger, LOG_LEVELS, type LogLevel } from "./logger.ts";
export { MAX_METRICS_CONNECTIONS, type Metric, MetricsServer, renderMetrics } from "./metrics.ts";
export { OVERFLOW_FACTOR, SlowPeerGuard, type SlowPeerOptions } from "./slow-peer.ts";
export {
  closeServer,
  destroyAfter,
  listenTcp,
  listenUnix,
  MAX_REFUSING,
  refuse,
  SocketInUseError,
} from "./unix-socket.ts";
