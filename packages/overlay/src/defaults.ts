/**
 * The settings the spines-node daemon runs with, in one object, so the overlay netsim sweeps run
 * exactly them (packages/overlay/test/daemon-defaults.netsim.test.ts) and the daemon never runs a
 * setting no simulation ran.
 */
import type { LinkConfig } from "@spines-ts/link-arq";
import { Metric } from "@spines-ts/routing";
import type { SessionConfig } from "@spines-ts/session";
import { DEFAULT_MAX_LOCAL_QUEUE } from "./plane.ts";

/** The defaults of an `OverlayNode` as the daemon builds it (a config file may override them). */
export interface OverlayDefaults {
  /** Session settings changed from the session core's defaults. */
  readonly session: Readonly<Partial<SessionConfig>>;
  /** Link settings changed from the link core's defaults (none today). */
  readonly link: Readonly<Partial<LinkConfig>>;
  /** Routing metric (Spines `-w`). */
  readonly metric: Metric;
  /** Bound of the plane's local send queue. */
  readonly maxLocalQueue: number;
}

/**
 * What the daemon runs unless configured otherwise.
 *
 * Session: over hop-by-hop reliable links the end-to-end retransmission timer mostly covers crashes
 * of transit nodes, and a short one fires spuriously whenever link queues grow (in one 4-hop
 * throughput run on an earlier link core, the core's 50 ms floor had nearly every segment sent
 * twice end to end and 250 ms none), hence `minRtoMs: 250`. End-to-end acks every 4 segments (or
 * 5 ms) instead of 2 (or 10 ms): each ack crosses every reliable link of the path back, and the
 * links already recover losses hop by hop.
 *
 * Sessions between two ports of one node loop back through `host.schedule(now)` (the only mechanism:
 * a `setImmediate` on the daemon's UDP host, the next event at the same instant in netsim).
 */
export const DAEMON_DEFAULTS: OverlayDefaults = Object.freeze({
  session: Object.freeze({ minRtoMs: 250, ackEvery: 4, ackDelayMs: 5 }),
  link: Object.freeze({}),
  metric: Metric.ExpectedLatency,
  maxLocalQueue: DEFAULT_MAX_LOCAL_QUEUE,
});
