/**
 * @packageDocumentation
 * The client library of spines-node, the spines-ts overlay daemon: talk to the local daemon over
 * its client protocol (docs/client-protocol.md) in Node idioms.
 *
 * - Streams as in `node:net`: `connect({ node, port })` returns a Duplex with end-to-end
 *   back-pressure; `createServer()` emits `'connection'` for each accepted session.
 * - Datagrams as in `node:dgram`: `createSocket()`, `bind()`, `send()`, `'message'`, plus multicast
 *   (`addMembership`, `sendToGroup`) and anycast (`sendAnycast`).
 * - `SpinesClient`, the daemon connection underneath, for many handles on one connection and for
 *   queries (`route()`, `ping()`).
 * - Typed errors: `ClientProtocolError` with a stable `code` (`ERR_REFUSED`, `ERR_UNREACHABLE`,
 *   `ERR_TIMED_OUT`, `ERR_DAEMON_UNAVAILABLE`, ...), `ClientRangeError` for bad arguments,
 *   `SpinesAbortError` for an aborted `signal`.
 *
 * The codec both ends share is at `@spines-ts/client/protocol`. No dependency on the daemon.
 */
export {
  type ClientConnectOptions,
  type DaemonTarget,
  type DatagramSource,
  defaultDaemon,
  defaultDaemonPath,
  type RouteInfo,
  SpinesAbortError,
  SpinesClient,
  SpinesDatagramSocket,
  SpinesListener,
  SpinesStream,
  type StreamInfo,
} from "./client.ts";
export { createSocket, DatagramSocket, type SocketOptions } from "./dgram.ts";
export {
  type ConnectOptions,
  connect,
  createServer,
  type DaemonOption,
  type ListenOptions,
  Server,
  type ServerOptions,
} from "./net.ts";
export {
  ClientErrorCode,
  ClientProtocolError,
  ClientRangeError,
  ClosedReason,
  ECHO_PORT,
  LinkType,
  MAX_DATAGRAM_BYTES,
} from "./protocol.ts";
