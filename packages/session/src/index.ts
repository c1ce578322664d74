/**
 * @packageDocumentation
 * End-to-end sessions over the spines-ts overlay, sans-IO. `SessionEndpoint` is the core of one
 * node: reliable byte streams (connect/listen/accept, segment numbers end to end, cumulative and
 * selective acks, RTT-based retransmission with loss detection on SACK evidence, the receiver's
 * window as the cap on bytes in flight, half-close, reset, keepalive and dead-peer detection) and
 * datagrams (best-effort or reliable, fragmented up to 64 KiB, bounded reassembly, exactly-once for
 * reliable ones), all on virtual ports, with a preferred link type per session. It takes packets,
 * timer calls and application calls with `now`, and returns packets for the overlay, deadlines and
 * events. `SessionDriver` runs it on a `Host` (netsim node or daemon). Design: docs/sessions.md;
 * wire format: docs/wire.md section 5.
 */

/** Re-exported from the wire package for convenience: the link-type preference and reset reasons. */
export { LinkType, ResetReason } from "@spines-ts/wire";
export { defaultSessionConfig, resolveSessionConfig, type SessionConfig } from "./config.ts";
export type { DatagramCounters } from "./datagrams.ts";
export { SessionDriver, type SessionDriverOptions } from "./driver.ts";
export {
  type ConnectOptions,
  type DatagramOptions,
  type EndpointCounters,
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  SessionEndpoint,
  type SessionEndpointOptions,
} from "./endpoint.ts";
export {
  ConnectionRefusedError,
  ConnectTimeoutError,
  DatagramTimeoutError,
  DatagramUnreachableError,
  PeerDeadError,
  PortInUseError,
  SessionErrorCode,
  SessionResetError,
  SessionStateError,
} from "./errors.ts";
export type { OutPacket, SessionEvent, SessionInfo } from "./types.ts";
