/**
 * @packageDocumentation
 * Link-state routing for the spines-ts overlay, as a sans-IO core. A `Router` keeps one database
 * item per directed edge and per (node, group) membership, versioned by (origin incarnation, seq),
 * floods changes reliably (acked and retransmitted per neighbour, forwarded at once, the full
 * database on link-up), and computes shortest paths with Dijkstra and a tie-break every node
 * computes identically. It answers next-hop, multicast (source-rooted trees), anycast (nearest
 * member) and K node-disjoint path queries. Costs come from the metric chosen in the options (hops,
 * latency, loss, expected latency) with hysteresis. Every table is bounded. Design: docs/routing.md.
 */
export { RoutingErrorCode, UnknownNeighborError } from "./errors.ts";
export { Flooding, type FloodingOptions, type Outgoing } from "./flooding.ts";
export {
  bfs,
  type DisjointPath,
  dijkstra,
  disjointPaths,
  firstHops,
  Graph,
  type GraphEdge,
  type ShortestPathTree,
  treePath,
} from "./graph.ts";
export {
  checkLinkWeight,
  type LinkCosts,
  MAX_LINK_WEIGHT,
  resolveLinkCosts,
  weightedCost,
} from "./link-costs.ts";
export { compareVersion, itemHash, LinkStateDb } from "./lsdb.ts";
export {
  checkMeasurement,
  expectedLatencyMs,
  type LinkMeasurement,
  linkCost,
  MAX_LATENCY_MS,
  Metric,
  RECOVERY_DELTA_MS,
  significantChange,
  unmeasuredCost,
} from "./metrics.ts";
export {
  DEFAULT_LIMITS,
  type ResolvedRouterOptions,
  type RouterLimits,
  type RouterOptions,
  type RouterStats,
  resolveRouterOptions,
} from "./options.ts";
export { Router } from "./router.ts";
export {
  type MulticastHops,
  type Route,
  RouteComputer,
  type RouteComputerOptions,
  type RoutingEvent,
} from "./routes.ts";
