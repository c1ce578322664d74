/**
 * @packageDocumentation
 * The I/O shell of every spines-ts daemon: `UdpHost`, the real `Host` (from
 * `@spines-ts/primitives`) over one UDP socket (batched through a native addon when it is built,
 * else `node:dgram`) — IPv4, IPv6 or dual-stack, a peer table
 * mapping node ids to endpoints, one real timer armed for the earliest deadline of a `TimerQueue`,
 * counters, and handlers that may throw without killing the process. Nothing here is specific to
 * Spines or to membership, so every daemon runs its sans-IO drivers on it unchanged, exactly as
 * `@spines-ts/netsim` runs them under virtual time. `DiscoverySocket` finds peers on a LAN segment
 * (multicast or broadcast announcements) for drivers such as membership, which then `setPeer` them.
 */
export {
  BatchSocket,
  type BatchSocketOptions,
  type BatchSocketStats,
  type DatagramHandler,
  errnoName,
} from "./batch-socket.ts";
export {
  type DiscoveryOptions,
  DiscoverySocket,
  type DiscoveryStats,
  isMulticastAddress,
} from "./discovery.ts";
export { canonicalAddress, type Endpoint, endpointKey, formatEndpoint } from "./endpoint.ts";
export { monoMs, PreciseTimer } from "./precise-timer.ts";
export {
  type GroupSendOptions,
  MAX_TIMER_DELAY_MS,
  resolveUdpIo,
  UdpHost,
  type UdpHostOptions,
  type UdpHostStats,
  type UdpIo,
  type UnknownPeerHandler,
} from "./udp-host.ts";
