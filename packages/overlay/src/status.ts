/**
 * Plain-data snapshots of an overlay node for status displays (the daemon's control socket and
 * metrics, tests): per-neighbour liveness, per-link measurements, routes. Computed from the plane on
 * demand; nothing here changes state.
 */
import type { NodeId } from "@spines-ts/primitives";
import type { OverlayPlane } from "./plane.ts";

/** One neighbour's liveness. */
export interface NeighborStatus {
  readonly id: NodeId;
  /** Link state ("down", "up", ...). */
  readonly state: string;
  /** Milliseconds since the neighbour was last heard, or null if never. */
  readonly lastHeardMsAgo: number | null;
  readonly rxFrames: number;
  readonly txFrames: number;
}

/** One link's measurements. */
export interface LinkStatus {
  readonly neighbor: NodeId;
  /** The channels the link carries. */
  readonly type: string;
  readonly state: string;
  /** Smoothed RTT (ms, 3 decimals), or null before the first sample. */
  readonly rttMs: number | null;
  /** Loss of our data as the neighbour reports it (6 decimals), or null before the first report. */
  readonly loss: number | null;
  /** Congestion window of the reliable channel (bytes), or null while unlimited or unknown. */
  readonly window: number | null;
  /** Received packets the link holds for the owner (back-pressure towards the neighbour). */
  readonly queue: number;
  /** Loss of the neighbour's data as measured here. */
  readonly lossIn?: number;
  readonly bytesInFlight?: number;
  /**
   * TCP flows the reliable window emulates: the overlay flows (source and destination session
   * pairs) active on the link, capped by the link's `maxEmulatedFlows` (docs/congestion.md).
   */
  readonly flows?: number;
}

/** One route of the routing table. */
export interface RouteStatus {
  readonly dst: NodeId;
  readonly nextHop: NodeId;
  readonly cost: number;
  /** Node ids from this node to dst inclusive, when known. */
  readonly path?: readonly NodeId[];
}

const CHANNEL_NAMES = "reliable+real-time+best-effort";

export function neighborStatus(plane: OverlayPlane): NeighborStatus[] {
  const now = plane.host.clock.now();
  return plane.driver.neighbours.map((id) => {
    const l = plane.driver.link(id);
    const heard =
      l === undefined || l.lastHeard < 0 || !Number.isFinite(l.lastHeard) ? null : now - l.lastHeard;
    return {
      id,
      state: l?.state ?? "down",
      lastHeardMsAgo: heard === null ? null : Math.round(heard),
      rxFrames: l?.stats.framesIn ?? 0,
      txFrames: l?.stats.framesOut ?? 0,
    };
  });
}

export function linkStatus(plane: OverlayPlane): LinkStatus[] {
  return plane.driver.neighbours.map((id) => {
    const l = plane.driver.link(id);
    const m = l?.metrics();
    return {
      neighbor: id,
      type: CHANNEL_NAMES,
      state: l?.state ?? "down",
      rttMs: m?.srtt === undefined ? null : Math.round(m.srtt * 1000) / 1000,
      loss: m === undefined ? null : Math.round(m.lossOut * 1e6) / 1e6,
      window: m === undefined || !Number.isFinite(m.cwnd) ? null : m.cwnd,
      queue: l?.heldReliable.packets ?? 0,
      ...(m ? { lossIn: Math.round(m.lossIn * 1e6) / 1e6, bytesInFlight: m.bytesInFlight } : {}),
      ...(m?.flows !== undefined ? { flows: m.flows } : {}),
    };
  });
}

export function routeStatus(plane: OverlayPlane): RouteStatus[] {
  const out: RouteStatus[] = [];
  const r = plane.router;
  for (const dst of r.destinations()) {
    const x = r.route(dst);
    if (x) out.push({ dst, nextHop: x.nextHop, cost: x.cost, path: x.path });
  }
  return out;
}
