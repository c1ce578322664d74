/**
 * The daemon's view of the integrated forwarding plane. The protocol logic (link-arq links, routing,
 * local delivery, forwarding with back-pressure) is `OverlayPlane` from `@spines-ts/overlay`, written
 * against `Host`; this adapter adds what only the daemon needs: neighbour endpoints for status, the
 * status/metrics shapes of the control socket, and the `ForwardingPlane` interface.
 */
import type { LinkConfig } from "@spines-ts/link-arq";
import { OverlayPlane as CorePlane, channelFor, DEFAULT_MAX_LOCAL_QUEUE } from "@spines-ts/overlay";
import type { Host, Logger, NodeId } from "@spines-ts/primitives";
import type { Metric } from "@spines-ts/routing";
import type { LinkType, OverlayHeader } from "@spines-ts/wire";
import type { ForwardingPlane, LinkStatus, NeighborStatus, PlaneCounters, RouteStatus } from "./plane.ts";

export { channelFor };
/** Locally originated packets waiting for a full link, at most. */
export const MAX_LOCAL_QUEUE = DEFAULT_MAX_LOCAL_QUEUE;

const CHANNEL_NAMES = ["reliable", "real-time", "best-effort"] as const;

export interface OverlayPlaneOptions {
  readonly neighbors: readonly { readonly id: NodeId; readonly endpoint: string }[];
  readonly log: Logger;
  readonly link?: Partial<LinkConfig>;
  readonly metric?: Metric;
}

export class OverlayPlane implements ForwardingPlane {
  /** The protocol composition (links, routing, delivery, forwarding). */
  readonly core: CorePlane;
  readonly #host: Host;
  readonly #endpoints: ReadonlyMap<NodeId, string>;

  constructor(host: Host, opts: OverlayPlaneOptions) {
    this.#host = host;
    this.#endpoints = new Map(opts.neighbors.map((n) => [n.id, n.endpoint]));
    this.core = new CorePlane(host, {
      neighbors: opts.neighbors.map((n) => n.id),
      log: opts.log,
      ...(opts.link ? { link: opts.link } : {}),
      ...(opts.metric ? { metric: opts.metric } : {}),
    });
  }

  get counters(): PlaneCounters {
    return { ...this.core.counters, noPort: 0 };
  }
  get decodeErrorsByCode(): ReadonlyMap<string, number> {
    return this.core.decodeErrorsByCode;
  }
  get driver(): CorePlane["driver"] {
    return this.core.driver;
  }
  get router(): CorePlane["router"] {
    return this.core.router;
  }
  get src(): CorePlane["src"] {
    return this.core.src;
  }
  get localQueueDrops(): number {
    return this.core.localQueueDrops;
  }
  get forwardHeld(): number {
    return this.core.forwardHeld;
  }
  /** Where packets for this node go (the session endpoint); set by the daemon. */
  set deliverLocal(fn: (payload: Uint8Array, header: OverlayHeader) => void) {
    this.core.deliverLocal = fn;
  }
  /** Called when a link or route change may let blocked senders go on. */
  set onWritable(fn: () => void) {
    this.core.onWritable = fn;
  }

  receive(from: NodeId, data: Uint8Array): void {
    this.core.receive(from, data);
  }

  hasRoute(node: NodeId): boolean {
    return this.core.hasRoute(node);
  }

  sendLocal(linkType: LinkType | number, header: OverlayHeader, payload: Uint8Array): void {
    this.core.sendLocal(linkType, header, payload);
  }

  /** Best-effort datagrams need no special path here; the session endpoint sends them. */
  sendDatagram(): { ok: false; code: string; message: string } {
    return { ok: false, code: "ERR_NOT_SUPPORTED", message: "datagrams go through the session endpoint" };
  }

  neighbors(): NeighborStatus[] {
    const now = this.#host.clock.now();
    return [...this.#endpoints].map(([id, endpoint]) => {
      const l = this.core.driver.link(id);
      const heard =
        l === undefined || l.lastHeard < 0 || !Number.isFinite(l.lastHeard) ? null : now - l.lastHeard;
      return {
        id,
        endpoint,
        state: l?.state ?? "down",
        lastHeardMsAgo: heard === null ? null : Math.round(heard),
        rxFrames: l?.stats.framesIn ?? 0,
        txFrames: l?.stats.framesOut ?? 0,
      };
    });
  }

  links(): LinkStatus[] {
    const out: LinkStatus[] = [];
    for (const id of this.#endpoints.keys()) {
      const l = this.core.driver.link(id);
      const m = l?.metrics();
      out.push({
        neighbor: id,
        type: CHANNEL_NAMES.join("+"),
        state: l?.state ?? "down",
        rttMs: m?.srtt === undefined ? null : Math.round(m.srtt * 1000) / 1000,
        loss: m === undefined ? null : Math.round(m.lossOut * 1e6) / 1e6,
        window: m === undefined || !Number.isFinite(m.cwnd) ? null : m.cwnd,
        queue: l?.heldReliable.packets ?? 0,
        ...(m ? { lossIn: Math.round(m.lossIn * 1e6) / 1e6, bytesInFlight: m.bytesInFlight } : {}),
      });
    }
    return out;
  }

  routes(): RouteStatus[] {
    const out: RouteStatus[] = [];
    const r = this.core.router;
    for (const dst of r.destinations()) {
      const x = r.route(dst);
      if (x) out.push({ dst, nextHop: x.nextHop, cost: x.cost, path: x.path });
    }
    return out;
  }

  /** Joins a multicast/anycast group (flooded as group state). */
  join(group: number): void {
    this.core.join(group);
  }

  leave(group: number): void {
    this.core.leave(group);
  }

  groups(): { group: number; members: number[] }[] {
    return this.core.groups();
  }

  /** Sends goodbyes on every link and cancels timers. */
  stop(): void {
    this.core.stop();
  }
}
