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
  /** Link settings changed from the link core's defaults. */
  readonly link: Readonly<Partial<LinkConfig>>;
  /** Routing metric (Spines `-w`). */
  readonly metric: Metric;
  /** Bound of the plane's local send queue. */
  readonly maxLocalQueue: number;
  /** Stream writes of one turn leave together, in full segments (`OverlayNodeOptions.coalesceWrites`). */
  readonly coalesceWrites: boolean;
}

/**
 * What the daemon runs unless configured otherwise.
 *
 * Session: over hop-by-hop reliable links the end-to-end retransmission timer mostly covers crashes
 * of transit nodes, and a short one fires spuriously whenever link queues grow (in one 4-hop
 * throughput run on an earlier link core, the core's 50 ms floor had nearly every segment sent
 * twice end to end and 250 ms none), hence `minRtoMs: 250`. End-to-end acks every 4 segments (or
 * 5 ms) instead of 2 (or 10 ms): each ack crosses every reliable link of the path back, and the
 * links already recover losses hop by hop. Under load (issue 10, `pnpm bench throughput`) acks
 * every 16 segments, or 20 ms after the first unacknowledged one: at 1,000 segments/s the count
 * sends them (62 acks/s), where a 5 ms timer sent about 200/s, each a packet and a link ack on every
 * hop back; on loopback (`pnpm bench overlay-latency`, 0 % loss) the stream's extra CPU over
 * datagrams, summed over the five daemons, fell from 128–135 to 61–66 µs per message with this and
 * the client server's cork together (docs/sessions.md), and on the 2-core machine, saturated in the
 * netns latency bench, CPU is latency (issue 13). The send buffer (256 KiB) still holds
 * 2.5 round trips of data at 1,000 messages/s; above 3,200 segments/s the count acts as before.
 *
 * Links: an ack every 8 data frames (or `maxAckDelayMs`, 2 ms) instead of every 2, still one per
 * event-loop turn at most (`ackCoalescing`) and at once on a hole or a duplicate. Each ack is a
 * datagram; the UDP send and receive are most of a transit daemon's work, and with acks every 2
 * frames a transit daemon sent and received about 1.4 datagrams per message (a forwarder 1). At
 * 1,000 frames/s and below the 2 ms timer sends the acks as before, so loss detection and RTT
 * samples do not change there (docs/links.md, "Delayed acks").
 *
 * Segments of up to 1,300 bytes (the session core's 1,100 leaves a sixth of every full link frame
 * unused): a full segment is a 1,362-byte frame on a link of the default `mtu` 1,400 (the node cuts
 * `mss` to fit a smaller `mtu`, `sessionConfigFor`). With `coalesceWrites` a stream of 1,000-byte
 * writes then takes 0.77 packets per message instead of 0.91 (issue 10, throughput).
 *
 * Sessions between two ports of one node loop back through `host.schedule(now)` (the only mechanism:
 * a `setImmediate` on the daemon's UDP host, the next event at the same instant in netsim).
 */
export const DAEMON_DEFAULTS: OverlayDefaults = Object.freeze({
  session: Object.freeze({ minRtoMs: 250, ackEvery: 16, ackDelayMs: 20, mss: 1300 }),
  link: Object.freeze({ ackEvery: 8 }),
  metric: Metric.ExpectedLatency,
  maxLocalQueue: DEFAULT_MAX_LOCAL_QUEUE,
  coalesceWrites: true,
});
