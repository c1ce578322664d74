/**
 * The forwarding plane: `@spines-ts/link-arq` links to every neighbour, the `@spines-ts/routing`
 * router fed by their up/down/metrics events, and a local consumer (the session endpoint) on top,
 * all on one `Host`.
 *
 * - Received datagram → link driver → link core. Link messages stay in the link; routing messages go
 *   to the router; overlay packets the link delivers are either for this node (handed to
 *   `deliverLocal`) or forwarded to the next hop's link on the channel they arrived on. A reliable
 *   packet the next hop cannot take yet is left with the upstream link, whose receive credit
 *   shrinks: back-pressure reaches the previous hop instead of growing a queue here.
 * - Local packets → next hop from the router → that neighbour's link, on the channel matching the
 *   session's link type; a full link queues them in a small bounded queue retried on `writable` and
 *   on route changes.
 */
import type { FlowKey } from "@spines-ts/congestion";
import {
  type Delivery,
  flowKeyOf,
  type LinkConfig,
  LinkDriver,
  type LinkEvent,
  type LinkMetrics,
  SendResult,
} from "@spines-ts/link-arq";
import { type Cancel, type Host, type Logger, type NodeId, RateLimitedLog } from "@spines-ts/primitives";
import { type Metric, Router, type RouterOptions, type RoutingEvent } from "@spines-ts/routing";
import {
  DestKind,
  decode,
  decodeHeader,
  encode,
  type Frame,
  type FrameSource,
  HEADER_BYTES,
  LinkChannel,
  type LinkType,
  type OverlayHeader,
  RouteItemKind,
  WireError,
} from "@spines-ts/wire";

/** Session link type (0 best-effort, 1 reliable, 2 real-time) to link channel. */
export function channelFor(linkType: LinkType | number): LinkChannel {
  return linkType === 1
    ? LinkChannel.Reliable
    : linkType === 2
      ? LinkChannel.Realtime
      : LinkChannel.BestEffort;
}

/** A wrong neighbour id is said at warn at most once per neighbour in this long (ms). */
export const SENDER_MISMATCH_WARN_MS = 60_000;
/** Neighbours whose last sender-mismatch warning is remembered (a bound; cleared when full). */
const MAX_MISMATCH_WARNED = 1024;

/** Default bound of the queue of locally originated packets waiting for a full link. */
export const DEFAULT_MAX_LOCAL_QUEUE = 2048;
/** Default bound of one local flow's share of that queue. */
export const DEFAULT_MAX_FLOW_QUEUE = 512;

/** What the plane counted; bad input is counted here and dropped, never thrown. */
export interface OverlayCounters {
  /** Datagrams handed to `receive`. */
  rxFrames: number;
  /** Undecodable datagrams (by code in `decodeErrorsByCode`). */
  decodeErrors: number;
  /** Frames whose sender field is not the neighbour they came from. */
  senderMismatch: number;
  /** Decodable frames of a family a link does not carry (or routing from a neighbour not up). */
  unexpectedType: number;
  /** Routing frames under an incarnation of the neighbour its link has not proven. */
  routingStaleIncarnation: number;
  /** Overlay packets for this node handed to `deliverLocal`. */
  delivered: number;
  /** Overlay packets passed on to a next hop. */
  forwarded: number;
  /** Packets dropped for lack of a route (or a link that refused them for good). */
  noRoute: number;
  /** Packets dropped because their hop limit ran out. */
  ttlExpired: number;
  /** Multicast copies delivered here. */
  groupDelivered: number;
  /** Multicast copies passed on to children on the source's tree. */
  groupForwarded: number;
  /** Multicast copies a child's link refused (full or down): multicast is not end-to-end reliable. */
  groupDropped: number;
}

export interface OverlayPlaneOptions {
  /** Directly linked neighbours (one link core each). */
  readonly neighbors: readonly NodeId[];
  /** Link defaults for every neighbour. */
  readonly link?: Partial<LinkConfig>;
  /** Routing metric (default: the router's). */
  readonly metric?: Metric;
  /** Further router options (limits, retransmission, hysteresis...). */
  readonly router?: Omit<RouterOptions, "id" | "incarnation" | "metric">;
  /** This run's incarnation; default a random non-zero u32 from `host.rng`. */
  readonly incarnation?: number;
  /** Bound of the local send queue (default `DEFAULT_MAX_LOCAL_QUEUE`). */
  readonly maxLocalQueue?: number;
  /** Bound of one local flow's packets in it (default `DEFAULT_MAX_FLOW_QUEUE`, at most `maxLocalQueue`). */
  readonly maxFlowQueue?: number;
  /** Default `host.log`. */
  readonly log?: Logger;
  /** Where packets for this node go (for sessions: a session message in the payload form, docs/wire.md §5.10). */
  readonly deliverLocal?: (payload: Uint8Array, header: OverlayHeader) => void;
  /** Where multicast packets addressed to a group this node joined go. */
  readonly deliverGroup?: (payload: Uint8Array, header: OverlayHeader) => void;
  /** A link or route change may let blocked senders go on. */
  readonly onWritable?: () => void;
  /** Every route change (after the router computed it). */
  readonly onRouteChange?: (e: RoutingEvent) => void;
}

/**
 * A `Host` that can also send a buffer without copying it; the caller never writes to it again.
 * Used when the host offers it (duck-typed), `send` otherwise.
 */
export interface OwningHost extends Host {
  sendOwned(to: NodeId, data: Uint8Array): void;
}

interface Queued {
  readonly channel: LinkChannel;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
}

/** The queue of one local flow (source port to destination session) waiting for a full link. */
interface FlowQueue {
  readonly key: FlowKey;
  items: Queued[];
  head: number;
  /** Bytes the flow may still send this round (deficit round robin). */
  deficit: number;
  /** In the round-robin list. */
  active: boolean;
}

/**
 * Packets of one local flow a reliable link may hold unsent; more wait in the plane's flow queue,
 * and streams hold their data back (`sendRoom`), so a narrow link is not fed seconds of data that
 * the end-to-end timers would then count as lost (issue 10).
 */
export const LOCAL_LINK_QUEUE_PACKETS = 32;

/** Bytes a local flow may send per deficit-round-robin round (about one packet). */
export const LOCAL_QUANTUM_BYTES = 1200;
/** Flow queues remembered at most (idle ones are forgotten first). */
const MAX_LOCAL_FLOWS = 4096;

/** `{ ...h, ttl }` as a literal of the header's fields (one fixed shape, no spread per packet). */
function withTtl(h: OverlayHeader, ttl: number): OverlayHeader {
  return { src: h.src, srcPort: h.srcPort, dst: h.dst, dstPort: h.dstPort, dstKind: h.dstKind, ttl };
}

/** The last header passed on and its copy with the hop limit one less (headers are immutable). */
let lastIn: OverlayHeader | undefined;
let lastOut: OverlayHeader | undefined;

/**
 * `withTtl(h, h.ttl - 1)`, the same object for consecutive packets with the same header (a flow's:
 * the decoder returns one header object for them), not one per forwarded packet (issue 10).
 */
function decremented(h: OverlayHeader): OverlayHeader {
  if (h !== lastIn || lastOut === undefined) {
    lastIn = h;
    lastOut = withTtl(h, h.ttl - 1);
  }
  return lastOut;
}

/** Big-endian u32 at `i` (the caller checked the length). */
function peekU32(b: Uint8Array, i: number): number {
  return (
    (b[i] as number) * 0x1000000 +
    (((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number))
  );
}

function checkLimit(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`OverlayPlane: ${name} must be an integer >= 1`);
  return v;
}

/**
 * Composes the link driver, the router and a local consumer on a `Host`. It is a `NodeProgram`
 * (`receive`, `stop`): a netsim node or the daemon's UDP host feeds it datagrams.
 */
export class OverlayPlane {
  readonly host: Host;
  readonly counters: OverlayCounters = {
    rxFrames: 0,
    decodeErrors: 0,
    senderMismatch: 0,
    unexpectedType: 0,
    routingStaleIncarnation: 0,
    delivered: 0,
    forwarded: 0,
    noRoute: 0,
    ttlExpired: 0,
    groupDelivered: 0,
    groupForwarded: 0,
    groupDropped: 0,
  };
  readonly decodeErrorsByCode = new Map<string, number>();
  readonly driver: LinkDriver;
  readonly router: Router;
  readonly src: FrameSource;
  readonly maxLocalQueue: number;
  readonly maxFlowQueue: number;
  /** Data packets the local queue takes at most; the rest of `maxLocalQueue` is kept for control. */
  readonly localDataLimit: number;
  /** Where packets for this node go (the session endpoint). */
  deliverLocal: (payload: Uint8Array, header: OverlayHeader) => void;
  /** Where multicast packets for a group this node joined go. */
  deliverGroup: (payload: Uint8Array, header: OverlayHeader) => void;
  /** Called when a link or route change may let blocked senders go on. */
  onWritable: () => void;
  onRouteChange: ((e: RoutingEvent) => void) | undefined;
  readonly #log: Logger;
  readonly #rl: RateLimitedLog;
  readonly #metrics = new Map<NodeId, LinkMetrics>();
  /** When each neighbour's sender mismatch was last said at warn. */
  readonly #mismatchWarnedAt = new Map<NodeId, number>();
  /** Local control messages a full link refused (sent before any data). */
  #control: Queued[] = [];
  readonly #flows = new Map<FlowKey, FlowQueue>();
  /** Flows with queued packets, in round-robin order. */
  #active: FlowQueue[] = [];
  /** Packets in the flow queues. */
  #queued = 0;
  #flushing = false;
  /** A local flow was held back by `LOCAL_LINK_QUEUE_PACKETS` (or told it had no room). */
  #softBlocked = false;
  #retryScheduled = false;
  #routerCancel: Cancel | undefined;
  #routerAt = Number.POSITIVE_INFINITY;
  #pumping = false;
  #lastFlow: { src: number; srcPort: number; dst: number; dstPort: number; key: FlowKey } | undefined;
  #stopped = false;
  /** Local packets dropped because the local queue (or the flow's share of it) was full. */
  localQueueDrops = 0;
  /** Local control messages (session acks, opens, resets) offered, and dropped for a full queue. */
  controlSent = 0;
  controlQueueDrops = 0;
  /** Times a reliable packet in transit was left with its upstream link (back-pressure). */
  forwardHeld = 0;
  /** Most data packets the local queue ever held. */
  localQueuePeak = 0;

  constructor(host: Host, opts: OverlayPlaneOptions) {
    if (typeof opts !== "object" || opts === null) throw new TypeError("OverlayPlane: options required");
    this.host = host;
    this.#log = opts.log ?? host.log;
    this.#rl = new RateLimitedLog(this.#log, 1000, 5);
    this.maxLocalQueue = checkLimit("maxLocalQueue", opts.maxLocalQueue ?? DEFAULT_MAX_LOCAL_QUEUE);
    // Data may fill the local queue up to a reserve kept for control messages (an eighth).
    this.localDataLimit = Math.max(1, this.maxLocalQueue - Math.floor(this.maxLocalQueue / 8));
    this.maxFlowQueue = Math.min(
      this.localDataLimit,
      checkLimit("maxFlowQueue", opts.maxFlowQueue ?? DEFAULT_MAX_FLOW_QUEUE),
    );
    this.deliverLocal = opts.deliverLocal ?? (() => {});
    this.deliverGroup = opts.deliverGroup ?? (() => {});
    this.onWritable = opts.onWritable ?? (() => {});
    this.onRouteChange = opts.onRouteChange;
    // Link frames are fresh `encode()` results never written again: a host that can take a buffer
    // over without its defensive copy (the daemon's UdpHost) gets them as they are.
    const owning = (host as Partial<OwningHost>).sendOwned;
    const send =
      typeof owning === "function"
        ? (peer: NodeId, bytes: Uint8Array) => owning.call(host, peer, bytes)
        : (peer: NodeId, bytes: Uint8Array) => host.send(peer, bytes);
    this.driver = new LinkDriver(host, {
      transmit: (peer: NodeId, bytes: Uint8Array) => {
        send(peer, bytes);
        // A link sending frees room in its queue: local flows held back may go on.
        if (this.#softBlocked && !this.#retryScheduled) this.#scheduleRetry();
      },
      ...(opts.link ? { config: opts.link } : {}),
      ...(opts.incarnation !== undefined ? { incarnation: opts.incarnation } : {}),
      onEvent: (peer, e) => this.#onLinkEvent(peer, e),
      onDelivery: (peer, d) => this.#onDelivery(peer, d),
      onOtherFrame: (from, f) => this.#onOtherFrame(from, f),
    });
    this.src = { sender: host.id, incarnation: this.driver.incarnation };
    this.router = new Router({
      ...opts.router,
      id: host.id,
      incarnation: this.driver.incarnation,
      ...(opts.metric ? { metric: opts.metric } : {}),
    });
    for (const n of opts.neighbors) this.driver.addNeighbour(n);
  }

  get incarnation(): number {
    return this.driver.incarnation;
  }

  /** Packets waiting in the local send queue (data and control). */
  get localQueueLength(): number {
    return this.#queued + this.#control.length;
  }

  /** Last metrics event of each link. */
  linkMetrics(peer: NodeId): LinkMetrics | undefined {
    return this.#metrics.get(peer);
  }

  // ------------------------------------------------------------------ receive path

  /** A datagram from the network (NodeProgram.receive). */
  receive(from: NodeId, data: Uint8Array): void {
    if (this.#stopped) return;
    this.counters.rxFrames++;
    // The header is cheap to check here: it names the reason for bad frames, and a frame must come
    // from the node it claims to be from (the link driver goes by the claim).
    // Fast path: read the claimed sender in place (the driver's full decode checks the rest);
    // only on a mismatch decode the header, to tell a bad header from a wrong sender.
    if (data.length < HEADER_BYTES || peekU32(data, 8) !== from) {
      let sender: number;
      try {
        sender = decodeHeader(data).sender;
      } catch (e) {
        this.#decodeError(from, data, e);
        return;
      }
      if (sender !== from) {
        this.#senderMismatch(from, sender);
        return;
      }
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

  #senderMismatch(from: NodeId, sender: number): void {
    this.counters.senderMismatch++;
    const now = this.host.clock.now();
    const last = this.#mismatchWarnedAt.get(from);
    if (last === undefined || now - last >= SENDER_MISMATCH_WARN_MS) {
      // A neighbour configured with the wrong id never comes up: say so where an operator looks,
      // once per neighbour and minute, naming the address (when the host knows it) and both ids.
      if (last === undefined && this.#mismatchWarnedAt.size >= MAX_MISMATCH_WARNED)
        this.#mismatchWarnedAt.clear();
      this.#mismatchWarnedAt.set(from, now);
      const ep = (
        this.host as { peer?: (id: NodeId) => { address: string; port: number } | undefined }
      ).peer?.(from);
      const address =
        ep === undefined
          ? undefined
          : ep.address.includes(":")
            ? `[${ep.address}]:${ep.port}`
            : `${ep.address}:${ep.port}`;
      this.#log.warn(
        { neighbor: from, configuredId: from, claimedId: sender, ...(address ? { address } : {}) },
        `frames from ${address ?? `the address of neighbour ${from}`} say they come from node ${sender}, not the configured neighbour ${from}: wrong node id in the configuration? dropped`,
      );
      return;
    }
    this.#rl.debug(now, "sender", { from, sender }, "frame sender is not the peer; dropped");
  }

  #decodeError(from: NodeId, data: Uint8Array, e: unknown): void {
    this.counters.decodeErrors++;
    const code = e instanceof WireError ? e.code : "ERR_UNKNOWN";
    this.decodeErrorsByCode.set(code, (this.decodeErrorsByCode.get(code) ?? 0) + 1);
    this.#rl.debug(
      this.host.clock.now(),
      `decode:${code}`,
      { from, code, bytes: data.length },
      "undecodable frame dropped",
    );
  }

  #onOtherFrame(from: NodeId, f: Frame): void {
    if (f.sender !== from) {
      this.#senderMismatch(from, f.sender);
      return;
    }
    const m = f.msg;
    if (m._tag === "RouteUpdate" || m._tag === "RouteAck") {
      if (!this.router.neighbors().includes(from)) {
        // The router only talks to neighbours whose link is up.
        this.counters.unexpectedType++;
        return;
      }
      if (f.incarnation !== this.driver.link(from)?.peerIncarnation) {
        // Only the neighbour's incarnation its link proved (docs/links.md §2.1) speaks for it.
        this.counters.routingStaleIncarnation++;
        return;
      }
      this.router.receive(this.host.clock.now(), from, m);
      this.#pumpRouter();
      return;
    }
    this.counters.unexpectedType++;
    this.#rl.debug(
      this.host.clock.now(),
      "type",
      { from, tag: m._tag },
      "frame type not expected on a link; dropped",
    );
  }

  #onDelivery(_peer: NodeId, d: Delivery): boolean {
    const h = d.header;
    if (h.dstKind === DestKind.Multicast) {
      this.#multicast(d.channel, h, d.payload, true);
      return true;
    }
    if (h.dstKind !== DestKind.Node) {
      this.counters.noRoute++;
      return true;
    }
    if (h.dst === this.host.id) {
      this.counters.delivered++;
      this.deliverLocal(d.payload, h);
      return true;
    }
    return this.#forward(h.dst, d);
  }

  /** Forwards a transit packet toward node `to`; false leaves it with the upstream link. */
  #forward(to: NodeId, d: Delivery): boolean {
    const h = d.header;
    if (h.ttl <= 1) {
      this.counters.ttlExpired++;
      return true;
    }
    const next = this.router.nextHop(to);
    if (next === undefined) {
      this.counters.noRoute++;
      return true;
    }
    const flow = this.#flowKey(h);
    if (d.channel === LinkChannel.Reliable) {
      // Ask first: a refused send still makes the link driver flush that link again, and when the
      // next hop is the link this packet came from (a transient routing loop) the driver would
      // offer it again and again within one flush.
      const out = this.driver.link(next);
      if (out !== undefined && out.state === "up" && !out.canSend(d.payload.length, flow)) {
        this.forwardHeld++;
        return false;
      }
    }
    const r = this.driver.send(next, d.channel, decremented(h), d.payload, flow);
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

  /**
   * `flowKeyOf(h)`, remembered for the last flow seen: a bulk flow then builds its key string once
   * instead of once per packet.
   */
  #flowKey(h: OverlayHeader): FlowKey {
    const m = this.#lastFlow;
    if (
      m !== undefined &&
      m.src === h.src &&
      m.srcPort === h.srcPort &&
      m.dst === h.dst &&
      m.dstPort === h.dstPort
    )
      return m.key;
    const key = flowKeyOf(h);
    this.#lastFlow = { src: h.src, srcPort: h.srcPort, dst: h.dst, dstPort: h.dstPort, key };
    return key;
  }

  /** The key of the local flow `srcPort` to `dst:dstPort` (`#flowKey` of its packets' header). */
  #localFlowKey(dst: NodeId, srcPort: number, dstPort: number): FlowKey {
    const m = this.#lastFlow;
    if (
      m !== undefined &&
      m.src === this.host.id &&
      m.srcPort === srcPort &&
      m.dst === dst &&
      m.dstPort === dstPort
    )
      return m.key;
    return this.#flowKey({ src: this.host.id, srcPort, dst, dstPort, dstKind: DestKind.Node, ttl: 0 });
  }

  // ------------------------------------------------------------------ send path

  hasRoute(node: NodeId): boolean {
    return this.router.nextHop(node) !== undefined;
  }

  /**
   * Sends an overlay packet originated here (for sessions: a session message in the payload form).
   * `control` marks a message that must not wait behind data (session acks, opens, resets): it is
   * sent before any queued data. Data a full link refuses waits in its flow's queue; flows are
   * served by deficit round robin, so one busy local source cannot starve the others. Returns false
   * when the packet was dropped because the local queue was full (counted in `localQueueDrops`);
   * callers that must not lose a packet ask `localRoom` first.
   */
  sendLocal(
    linkType: LinkType | number,
    header: OverlayHeader,
    payload: Uint8Array,
    control = false,
  ): boolean {
    if (this.#stopped) return true;
    const q: Queued = { channel: channelFor(linkType), header, payload };
    if (control) {
      this.controlSent++;
      if (this.#control.length === 0 && this.#trySend(q)) return true;
      if (this.#queued + this.#control.length >= this.maxLocalQueue) {
        this.controlQueueDrops++;
        return false;
      }
      this.#control.push(q);
      return true;
    }
    const key = this.#flowKey(header);
    const f = this.#flows.get(key);
    if ((f === undefined || f.head === f.items.length) && this.#control.length === 0 && this.#trySend(q))
      return true;
    return this.#enqueue(key, f, q);
  }

  /**
   * How many more packets of the local flow `src:srcPort > dst:dstPort` the local queue takes now
   * without dropping any (0: a sender must wait, or report would-block).
   */
  localRoom(dst: NodeId, srcPort: number, dstPort: number): number {
    const key = this.#localFlowKey(dst, srcPort, dstPort);
    const f = this.#flows.get(key);
    const flowLen = f === undefined ? 0 : f.items.length - f.head;
    return Math.max(
      0,
      Math.min(
        this.maxFlowQueue - flowLen,
        this.localDataLimit - this.#queued,
        this.maxLocalQueue - this.#queued - this.#control.length,
      ),
    );
  }

  /**
   * How many more packets the local flow `srcPort` to `to:dstPort` on `linkType` can hand over now
   * without queueing behind a full link: 0 while its plane queue holds any; on the reliable channel,
   * what its share of the link's queue (`LOCAL_LINK_QUEUE_PACKETS`) has left. A flow told 0 is
   * woken through `onWritable` once the link sends again.
   */
  sendRoom(to: NodeId, linkType: LinkType | number, srcPort: number, dstPort: number): number {
    const key = this.#localFlowKey(to, srcPort, dstPort);
    const f = this.#flows.get(key);
    let room = Number.POSITIVE_INFINITY;
    if (f !== undefined && f.head < f.items.length) room = 0;
    else if (channelFor(linkType) === LinkChannel.Reliable) {
      const next = this.router.nextHop(to);
      const link = next === undefined ? undefined : this.driver.link(next);
      if (link !== undefined && link.state === "up")
        room = Math.max(0, LOCAL_LINK_QUEUE_PACKETS - link.reliable.queuedFor(key));
    }
    if (room < 1) this.#softBlocked = true;
    return room;
  }

  #scheduleRetry(): void {
    this.#retryScheduled = true;
    this.host.schedule(this.host.clock.now(), () => {
      this.#retryScheduled = false;
      if (this.#stopped || !this.#softBlocked) return;
      this.#softBlocked = false;
      this.#flushQueue();
      this.onWritable();
    });
  }

  #enqueue(key: FlowKey, f: FlowQueue | undefined, q: Queued): boolean {
    const flowLen = f === undefined ? 0 : f.items.length - f.head;
    if (
      this.#queued >= this.localDataLimit ||
      this.#queued + this.#control.length >= this.maxLocalQueue ||
      flowLen >= this.maxFlowQueue
    ) {
      this.localQueueDrops++;
      return false;
    }
    let fq = f;
    if (fq === undefined) {
      if (this.#flows.size >= MAX_LOCAL_FLOWS) this.#pruneFlows();
      fq = { key, items: [], head: 0, deficit: 0, active: false };
      this.#flows.set(key, fq);
    }
    fq.items.push(q);
    if (!fq.active) {
      fq.active = true;
      this.#active.push(fq);
    }
    this.#queued++;
    if (this.#queued > this.localQueuePeak) this.localQueuePeak = this.#queued;
    return true;
  }

  /** Forgets idle flow queues (the table is bounded; active flows always stay). */
  #pruneFlows(): void {
    for (const [k, f] of this.#flows) if (!f.active) this.#flows.delete(k);
  }

  /** True when done with the packet (sent or dropped), false when it should wait. */
  #trySend(q: Queued): boolean {
    const next = this.router.nextHop(q.header.dst);
    if (next === undefined) {
      this.counters.noRoute++;
      return true;
    }
    const flow = this.#flowKey(q.header);
    if (q.channel === LinkChannel.Reliable && q.header.src === this.host.id) {
      const link = this.driver.link(next);
      if (
        link !== undefined &&
        link.state === "up" &&
        link.reliable.queuedFor(flow) >= LOCAL_LINK_QUEUE_PACKETS
      ) {
        this.#softBlocked = true;
        return false;
      }
    }
    const r = this.driver.send(next, q.channel, q.header, q.payload, flow);
    if (r === SendResult.WouldBlock) {
      this.#softBlocked = true;
      return false;
    }
    if (r !== SendResult.Ok) this.counters.noRoute++;
    return true;
  }

  #flushQueue(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      this.#flushControl();
      this.#flushFlows();
    } finally {
      this.#flushing = false;
    }
  }

  /** Control messages first, in order; one a full link refuses keeps its place. */
  #flushControl(): void {
    if (this.#control.length === 0) return;
    const keep: Queued[] = [];
    for (const q of this.#control) if (!this.#trySend(q)) keep.push(q);
    this.#control = keep;
  }

  /**
   * Deficit round robin over the flows with queued packets: each round a flow may send up to
   * `LOCAL_QUANTUM_BYTES` more; a flow its link refuses waits for the next `writable` without
   * holding up flows on other links (or other flows the link still takes).
   */
  #flushFlows(): void {
    while (this.#active.length > 0) {
      let progress = false;
      const round = this.#active;
      this.#active = [];
      for (const f of round) {
        f.deficit += LOCAL_QUANTUM_BYTES;
        let blocked = false;
        while (f.head < f.items.length) {
          const q = f.items[f.head] as Queued;
          const size = q.payload.length;
          if (size > f.deficit) break;
          if (!this.#trySend(q)) {
            blocked = true;
            break;
          }
          progress = true;
          f.items[f.head] = undefined as unknown as Queued;
          f.head++;
          f.deficit -= size;
          this.#queued--;
        }
        if (f.head === f.items.length) {
          f.items = [];
          f.head = 0;
          f.deficit = 0;
          f.active = false;
          continue;
        }
        if (f.head > 64 && f.head * 2 > f.items.length) {
          f.items = f.items.slice(f.head);
          f.head = 0;
        }
        // A refused flow gets no credit while it waits: no burst when its link opens.
        if (blocked) f.deficit = 0;
        this.#active.push(f);
      }
      if (!progress) return;
    }
  }

  /**
   * Sends a multicast packet originated here (`header.dstKind` Multicast, `header.dst` the group):
   * a copy to every member along the shortest-path tree rooted at this node, including this node if
   * it joined. Copies a child's link refuses (full or down) are dropped and counted, so multicast is
   * reliable hop by hop on the reliable channel but not end to end.
   */
  sendMulticast(linkType: LinkType | number, header: OverlayHeader, payload: Uint8Array): void {
    if (header.dstKind !== DestKind.Multicast)
      throw new RangeError("sendMulticast: header.dstKind must be DestKind.Multicast");
    if (header.src !== this.host.id) throw new RangeError("sendMulticast: header.src must be this node");
    if (this.#stopped) return;
    this.#multicast(channelFor(linkType), header, payload, false);
  }

  /** Delivers (if a member) and copies a multicast packet to this node's children on the source's tree. */
  #multicast(channel: LinkChannel, h: OverlayHeader, payload: Uint8Array, transit: boolean): void {
    const hops = this.router.multicast(h.src, h.dst);
    if (hops.deliverLocally) {
      this.counters.groupDelivered++;
      this.deliverGroup(payload, h);
    }
    if (hops.nextHops.length === 0) return;
    if (transit && h.ttl <= 1) {
      this.counters.ttlExpired++;
      return;
    }
    const out = transit ? decremented(h) : h;
    const flow = this.#flowKey(h);
    for (const next of hops.nextHops) {
      const r = this.driver.send(next, channel, out, payload, flow);
      if (r === SendResult.Ok) this.counters.groupForwarded++;
      else this.counters.groupDropped++;
    }
  }

  // ------------------------------------------------------------------ links and routing

  #onLinkEvent(peer: NodeId, e: LinkEvent): void {
    const now = this.host.clock.now();
    switch (e.type) {
      case "up": {
        this.#log.info({ neighbor: peer }, "link up");
        const m = this.driver.link(peer)?.metrics();
        // Routing costs use the path RTT (least recent hello sample), not SRTT: SRTT includes the
        // queueing our own traffic causes, and routes chasing it flap under load (issue 10).
        const rtt = m?.pathRtt ?? m?.srtt;
        this.router.linkUp(
          now,
          peer,
          m !== undefined && rtt !== undefined ? { rttMs: rtt, loss: m.lossOut } : undefined,
        );
        this.#pumpRouter();
        break;
      }
      case "down":
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
        const rtt = e.pathRtt ?? e.srtt;
        if (rtt !== undefined && this.router.neighbors().includes(peer)) {
          this.router.linkMetrics(now, peer, { rttMs: rtt, loss: Math.min(1, Math.max(0, e.lossOut)) });
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
      for (let out = this.router.takeTransmits(); out.length > 0; out = this.router.takeTransmits()) {
        for (const o of out) this.host.send(o.to, encode(this.src, o.msg));
      }
      for (let evs = this.router.takeEvents(); evs.length > 0; evs = this.router.takeEvents()) {
        for (const ev of evs) {
          routesChanged = true;
          this.#log.debug(
            { dst: ev.dst, nextHop: ev.nextHop ?? null, cost: ev.cost ?? null },
            "route changed",
          );
          this.onRouteChange?.(ev);
        }
      }
    } finally {
      this.#pumping = false;
    }
    const at = this.router.nextDeadline() ?? Number.POSITIVE_INFINITY;
    if (at !== this.#routerAt) {
      this.#routerCancel?.();
      this.#routerCancel = undefined;
      this.#routerAt = at;
      if (Number.isFinite(at)) {
        this.#routerCancel = this.host.schedule(at, () => {
          this.#routerCancel = undefined;
          this.#routerAt = Number.POSITIVE_INFINITY;
          this.router.handleTimeout(Math.max(at, this.host.clock.now()));
          this.#pumpRouter();
        });
      }
    }
    if (routesChanged) this.#wake();
  }

  // ------------------------------------------------------------------ groups

  /** Joins a multicast/anycast group (flooded as group state). */
  join(group: number): void {
    this.router.join(this.host.clock.now(), group);
    this.#pumpRouter();
  }

  leave(group: number): void {
    this.router.leave(this.host.clock.now(), group);
    this.#pumpRouter();
  }

  /** Groups known from the link-state database, with their members. */
  groups(): { group: number; members: number[] }[] {
    const groups = new Set<number>();
    for (const it of this.router.database()) {
      if (it.kind === RouteItemKind.Group && it.value !== 0) groups.add(it.key);
    }
    return [...groups].sort((x, y) => x - y).map((group) => ({ group, members: this.router.members(group) }));
  }

  /** Sends goodbyes on every link and cancels timers. Idempotent. */
  stop(): void {
    if (this.#stopped) return;
    this.driver.stop();
    this.#stopped = true;
    this.#control = [];
    this.#flows.clear();
    this.#active = [];
    this.#queued = 0;
    this.#routerCancel?.();
    this.#routerCancel = undefined;
  }
}
