/**
 * The integrated forwarding plane: `@spines-ts/link-arq` links to every neighbour, the
 * `@spines-ts/routing` router fed by their up/down/metrics events, and the session endpoint on top.
 *
 * - Received datagram → (emulation) → LinkDriver → link core. Link messages stay in the link;
 *   routing messages go to the router; overlay packets the link delivers are either for this node
 *   (their payload is a session frame, handed to the session endpoint) or forwarded to the next
 *   hop's link on the channel they arrived on. A reliable packet the next hop cannot take yet is
 *   left with the upstream link, whose receive credit shrinks: back-pressure reaches the previous
 *   hop instead of growing a queue here.
 * - Session packets → next hop from the router → that neighbour's link, on the channel matching the
 *   session's link type; a full link queues them in a small bounded queue retried on `writable`.
 */
import {
  type Delivery,
  flowKeyOf,
  type LinkConfig,
  LinkDriver,
  type LinkEvent,
  type LinkMetrics,
  SendResult,
} from "@spines-ts/link-arq";
import { type Cancel, type Logger, type NodeId, RateLimitedLog } from "@spines-ts/primitives";
import { type Metric, Router } from "@spines-ts/routing";
import {
  DestKind,
  decode,
  decodeHeader,
  encode,
  type Frame,
  type FrameSource,
  LinkChannel,
  type LinkType,
  type OverlayHeader,
  RouteItemKind,
  WireError,
} from "@spines-ts/wire";
import {
  type ForwardingPlane,
  type LinkStatus,
  type NeighborStatus,
  newCounters,
  type RouteStatus,
} from "./plane.ts";
import type { UdpHost } from "./udp-host.ts";

/** Session link type (0 best-effort, 1 reliable, 2 real-time) to link channel. */
export function channelFor(linkType: LinkType | number): LinkChannel {
  return linkType === 1
    ? LinkChannel.Reliable
    : linkType === 2
      ? LinkChannel.Realtime
      : LinkChannel.BestEffort;
}

const CHANNEL_NAMES = ["reliable", "real-time", "best-effort"] as const;
/** Locally originated packets waiting for a full link, at most. */
export const MAX_LOCAL_QUEUE = 2048;

export interface OverlayPlaneOptions {
  readonly neighbors: readonly { readonly id: NodeId; readonly endpoint: string }[];
  readonly log: Logger;
  readonly link?: Partial<LinkConfig>;
  readonly metric?: Metric;
}

interface Queued {
  readonly channel: LinkChannel;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
}

export class OverlayPlane implements ForwardingPlane {
  readonly counters = newCounters();
  readonly decodeErrorsByCode = new Map<string, number>();
  readonly driver: LinkDriver;
  readonly router: Router;
  readonly src: FrameSource;
  /** Where packets for this node go (the session endpoint); set by the daemon. */
  deliverLocal: (payload: Uint8Array, header: OverlayHeader) => void = () => {};
  /** Called when a link or route change may let blocked senders go on. */
  onWritable: () => void = () => {};
  readonly #host: UdpHost;
  readonly #log: Logger;
  readonly #rl: RateLimitedLog;
  readonly #endpoints: ReadonlyMap<NodeId, string>;
  readonly #metrics = new Map<NodeId, LinkMetrics>();
  readonly #upSince = new Map<NodeId, number>();
  #queue: Queued[] = [];
  #routerCancel: Cancel | undefined;
  #routerAt = Number.POSITIVE_INFINITY;
  #pumping = false;
  #stopped = false;
  localQueueDrops = 0;
  forwardHeld = 0;

  constructor(host: UdpHost, opts: OverlayPlaneOptions) {
    this.#host = host;
    this.#log = opts.log;
    this.#rl = new RateLimitedLog(opts.log, 1000, 5);
    this.#endpoints = new Map(opts.neighbors.map((n) => [n.id, n.endpoint]));
    this.driver = new LinkDriver(host, {
      ...(opts.link ? { config: opts.link } : {}),
      onEvent: (peer, e) => this.#onLinkEvent(peer, e),
      onDelivery: (peer, d) => this.#onDelivery(peer, d),
      onOtherFrame: (from, f) => this.#onOtherFrame(from, f),
    });
    this.src = { sender: host.id, incarnation: this.driver.incarnation };
    this.router = new Router({
      id: host.id,
      incarnation: this.driver.incarnation,
      ...(opts.metric ? { metric: opts.metric } : {}),
    });
    for (const n of opts.neighbors) this.driver.addNeighbour(n.id);
  }

  // ------------------------------------------------------------------ receive path

  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    this.counters.rxFrames++;
    // The header is cheap to check here: it names the reason for bad frames, and a frame must come
    // from the endpoint of the node it claims to be from (the link driver goes by the claim).
    let sender: number;
    try {
      sender = decodeHeader(data).sender;
    } catch (e) {
      this.#decodeError(from, data, e);
      return;
    }
    if (sender !== from) {
      this.counters.senderMismatch++;
      this.#rl.debug(
        this.#host.clock.now(),
        "sender",
        { from, sender },
        "frame sender is not the peer; dropped",
      );
      return;
    }
    const before = this.driver.decodeErrors;
    this.driver.receive(from, data);
    if (this.driver.decodeErrors !== before) {
      // Rare path: decode again only to name the reason.
      let err: unknown;
      try {
        decode(data);
      } catch (e) {
        err = e;
      }
      this.#decodeError(from, data, err);
    }
  }

  #decodeError(from: NodeId, data: Uint8Array, e: unknown): void {
    this.counters.decodeErrors++;
    const code = e instanceof WireError ? e.code : "ERR_UNKNOWN";
    this.decodeErrorsByCode.set(code, (this.decodeErrorsByCode.get(code) ?? 0) + 1);
    this.#rl.debug(
      this.#host.clock.now(),
      `decode:${code}`,
      { from, code, bytes: data.length },
      "undecodable frame dropped",
    );
  }

  #onOtherFrame(from: NodeId, f: Frame): void {
    if (f.sender !== from) {
      this.counters.senderMismatch++;
      this.#rl.debug(
        this.#host.clock.now(),
        "sender",
        { from, sender: f.sender },
        "frame sender is not the peer; dropped",
      );
      return;
    }
    const m = f.msg;
    if (m._tag === "RouteUpdate" || m._tag === "RouteAck") {
      if (!this.router.neighbors().includes(from)) {
        // The router only talks to neighbours whose link is up.
        this.counters.unexpectedType++;
        return;
      }
      this.router.receive(this.#host.clock.now(), from, m);
      this.#pumpRouter();
      return;
    }
    this.counters.unexpectedType++;
    this.#rl.debug(
      this.#host.clock.now(),
      "type",
      { from, tag: m._tag },
      "frame type not expected on a link; dropped",
    );
  }

  #onDelivery(_peer: NodeId, d: Delivery): boolean {
    const h = d.header;
    if (h.dstKind !== DestKind.Node) {
      this.counters.noRoute++;
      return true;
    }
    if (h.dst === this.#host.id) {
      this.counters.delivered++;
      this.deliverLocal(d.payload, h);
      return true;
    }
    if (h.ttl <= 1) {
      this.counters.ttlExpired++;
      return true;
    }
    const next = this.router.nextHop(h.dst);
    if (next === undefined) {
      this.counters.noRoute++;
      return true;
    }
    const r = this.driver.send(next, d.channel, { ...h, ttl: h.ttl - 1 }, d.payload, flowKeyOf(h));
    if (r === SendResult.Ok) {
      this.counters.forwarded++;
      return true;
    }
    if (r === SendResult.WouldBlock && d.channel === LinkChannel.Reliable) {
      // Leave it with the upstream link: its credit shrinks and the previous hop slows down.
      this.forwardHeld++;
      return false;
    }
    this.counters.noRoute++;
    return true;
  }

  // ------------------------------------------------------------------ send path

  hasRoute(node: NodeId): boolean {
    return this.router.nextHop(node) !== undefined;
  }

  /** Sends an overlay packet originated here (a session frame as payload). */
  sendLocal(linkType: LinkType | number, header: OverlayHeader, payload: Uint8Array): void {
    const q: Queued = { channel: channelFor(linkType), header, payload };
    if (this.#queue.length > 0) {
      this.#enqueue(q);
      return;
    }
    if (!this.#trySend(q)) this.#enqueue(q);
  }

  #enqueue(q: Queued): void {
    if (this.#queue.length >= MAX_LOCAL_QUEUE) {
      this.localQueueDrops++;
      return;
    }
    this.#queue.push(q);
  }

  /** True when done with the packet (sent or dropped), false when it should wait. */
  #trySend(q: Queued): boolean {
    const next = this.router.nextHop(q.header.dst);
    if (next === undefined) {
      this.counters.noRoute++;
      return true;
    }
    const r = this.driver.send(next, q.channel, q.header, q.payload, flowKeyOf(q.header));
    if (r === SendResult.WouldBlock) return false;
    if (r !== SendResult.Ok) this.counters.noRoute++;
    return true;
  }

  #flushQueue(): void {
    if (this.#queue.length === 0) return;
    const q = this.#queue;
    let i = 0;
    while (i < q.length && this.#trySend(q[i] as Queued)) i++;
    this.#queue = i === q.length ? [] : q.slice(i);
  }

  /** Best-effort datagrams need no special path here; the session endpoint sends them. */
  sendDatagram(): { ok: false; code: string; message: string } {
    return { ok: false, code: "ERR_NOT_SUPPORTED", message: "datagrams go through the session endpoint" };
  }

  // ------------------------------------------------------------------ links and routing

  #onLinkEvent(peer: NodeId, e: LinkEvent): void {
    const now = this.#host.clock.now();
    switch (e.type) {
      case "up": {
        this.#upSince.set(peer, now);
        this.#log.info({ neighbor: peer }, "link up");
        const m = this.driver.link(peer)?.metrics();
        this.router.linkUp(now, peer, m?.srtt !== undefined ? { rttMs: m.srtt, loss: m.lossOut } : undefined);
        this.#pumpRouter();
        break;
      }
      case "down":
        this.#upSince.delete(peer);
        this.#log.info({ neighbor: peer, reason: e.reason }, "link down");
        this.router.linkDown(now, peer);
        this.#pumpRouter();
        break;
      case "restart":
        this.#log.info({ neighbor: peer, discarded: e.discarded }, "neighbour restarted");
        break;
      case "writable":
        this.#wake();
        break;
      case "metrics": {
        this.#metrics.set(peer, e);
        if (e.srtt !== undefined && this.router.neighbors().includes(peer)) {
          this.router.linkMetrics(now, peer, { rttMs: e.srtt, loss: Math.min(1, Math.max(0, e.lossOut)) });
          this.#pumpRouter();
        }
        break;
      }
    }
  }

  #wake(): void {
    if (this.#stopped) return;
    this.#flushQueue();
    this.driver.offerDeliveries();
    this.onWritable();
  }

  #pumpRouter(): void {
    if (this.#pumping || this.#stopped) return;
    this.#pumping = true;
    let routesChanged = false;
    try {
      for (let o = this.router.pollTransmit(); o !== undefined; o = this.router.pollTransmit()) {
        this.#host.send(o.to, encode(this.src, o.msg));
      }
      for (let ev = this.router.pollEvent(); ev !== undefined; ev = this.router.pollEvent()) {
        routesChanged = true;
        this.#log.debug({ dst: ev.dst, nextHop: ev.nextHop ?? null, cost: ev.cost ?? null }, "route changed");
      }
    } finally {
      this.#pumping = false;
    }
    const at = this.router.nextTimeout() ?? Number.POSITIVE_INFINITY;
    if (at !== this.#routerAt) {
      this.#routerCancel?.();
      this.#routerCancel = undefined;
      this.#routerAt = at;
      if (Number.isFinite(at)) {
        this.#routerCancel = this.#host.schedule(at, () => {
          this.#routerCancel = undefined;
          this.#routerAt = Number.POSITIVE_INFINITY;
          this.router.onTimer(Math.max(at, this.#host.clock.now()));
          this.#pumpRouter();
        });
      }
    }
    if (routesChanged) this.#wake();
  }

  // ------------------------------------------------------------------ status

  neighbors(): NeighborStatus[] {
    const now = this.#host.clock.now();
    return [...this.#endpoints].map(([id, endpoint]) => {
      const l = this.driver.link(id);
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
      const l = this.driver.link(id);
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
    for (const dst of this.router.destinations()) {
      const r = this.router.route(dst);
      if (r) out.push({ dst, nextHop: r.nextHop, cost: r.cost, path: r.path });
    }
    return out;
  }

  /** Joins a multicast/anycast group (flooded as group state). */
  join(group: number): void {
    this.router.join(this.#host.clock.now(), group);
    this.#pumpRouter();
  }

  leave(group: number): void {
    this.router.leave(this.#host.clock.now(), group);
    this.#pumpRouter();
  }

  /** Multicast/anycast groups known from the link-state database, with their members. */
  groups(): { group: number; members: number[] }[] {
    const groups = new Set<number>();
    for (const it of this.router.database()) {
      if (it.kind === RouteItemKind.Group && it.value !== 0) groups.add(it.key);
    }
    return [...groups].sort((x, y) => x - y).map((group) => ({ group, members: this.router.members(group) }));
  }

  /** Sends goodbyes on every link and cancels timers. */
  stop(): void {
    if (this.#stopped) return;
    this.driver.stop();
    this.#stopped = true;
    this.#routerCancel?.();
    this.#routerCancel = undefined;
  }
}
