/**
 * @packageDocumentation
 * The spines-ts overlay forwarding plane, written against the `Host` contract so the same code runs
 * in netsim and in the UDP daemon. `OverlayPlane` composes a `@spines-ts/link-arq` link per
 * neighbour, the `@spines-ts/routing` router fed by link up/down/metrics events, and a local
 * consumer: received frames go through the link core and are delivered here or forwarded to the
 * router's next hop (reliable packets the next hop cannot take are left with the upstream link, so
 * back-pressure reaches the previous hop); local packets go to the next hop's link through a bounded
 * queue. `OverlayNode` adds a `@spines-ts/session` endpoint (`PlaneSessionDriver`) on top: a full
 * overlay node (links, routing, sessions) as a `NodeProgram`, with status snapshots. The spines-node
 * daemon runs `OverlayNode` with `DAEMON_DEFAULTS`, the settings the netsim sweeps also run.
 */
export { type FrameAuthStats, type OverlayAuthOptions, overlayFrameAuth, SigningHost } from "./auth.ts";
export { DAEMON_DEFAULTS, type OverlayDefaults } from "./defaults.ts";
export {
  type MulticastPacket,
  OverlayNode,
  type OverlayNodeOptions,
  PlaneSessionDriver,
  type PlaneSessionDriverOptions,
  type SessionTransport,
  sessionConfigFor,
} from "./node.ts";
export {
  channelFor,
  DEFAULT_MAX_LOCAL_QUEUE,
  type OverlayCounters,
  OverlayPlane,
  type OverlayPlaneOptions,
  type OwningHost,
} from "./plane.ts";
export {
  type LinkStatus,
  linkStatus,
  type NeighborStatus,
  neighborStatus,
  type RouteStatus,
  routeStatus,
} from "./status.ts";
