/**
 * A full overlay node: the forwarding plane with a session endpoint on top. `PlaneSessionDriver` is
 * a `SessionDriver` whose packets go through the plane (router next hop, link channel of the
 * session's link type) instead of straight to a neighbour; `OverlayNode` wires the two on one
 * `Host`, so a netsim node (or the daemon) runs links, routing and sessions together.
 */
import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import type { RoutingEvent } from "@spines-ts/routing";
import {
  type ConnectOptions,
  type DatagramOptions,
  type SessionConfig,
  SessionDriver,
  type SessionEvent,
} from "@spines-ts/session";
import { DestKind, encode, type LinkType, type OverlayHeader } from "@spines-ts/wire";
import { OverlayPlane, type OverlayPlaneOptions } from "./plane.ts";

/** Where a session endpoint's packets go: the plane (or an adapter around it). */
export interface SessionTransport {
  sendLocal(linkType: LinkType | number, header: OverlayHeader, payload: Uint8Array): void;
  /** Whether a route to `node` is known now. */
  hasRoute(node: NodeId): boolean;
}

export interface PlaneSessionDriverOptions {
  /** Incarnation written in the frames (the plane's). */
  readonly incarnation: number;
  readonly config?: Partial<SessionConfig>;
  readonly onEvent?: (e: SessionEvent, driver: SessionDriver) => void;
  /**
   * Runs `fn` soon, outside the current call (used to loop back sessions between two ports of this
   * node). Default: `host.schedule(now, fn)`; the daemon passes `queueMicrotask`.
   */
  readonly defer?: (fn: () => void) => void;
}

/** The session driver with its packets sent through the overlay plane. */
export class PlaneSessionDriver extends SessionDriver {
  readonly #transport: SessionTransport;
  readonly #src: { sender: number; incarnation: number };
  readonly #self: NodeId;
  readonly #defer: (fn: () => void) => void;
  readonly #loop: Uint8Array[] = [];
  #loopScheduled = false;

  constructor(host: Host, transport: SessionTransport, opts: PlaneSessionDriverOptions) {
    super(host, {
      ...(opts.config ? { config: opts.config } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    });
    this.#transport = transport;
    this.#src = { sender: host.id, incarnation: opts.incarnation };
    this.#self = host.id;
    this.#defer = opts.defer ?? ((fn) => void host.schedule(host.clock.now(), fn));
  }

  override transmit(p: Parameters<SessionDriver["transmit"]>[0]): void {
    const bytes = encode(this.#src, p.msg);
    if (p.to === this.#self) {
      // A session between two ports of this node: loop back, outside the current pump. The loop
      // holds at most one pump's output (the endpoint's buffers bound it).
      this.#loop.push(bytes);
      if (!this.#loopScheduled) {
        this.#loopScheduled = true;
        this.#defer(() => {
          this.#loopScheduled = false;
          const xs = this.#loop.splice(0);
          for (const b of xs) this.core.receiveFrame(this.now, b);
          this.pump();
        });
      }
      return;
    }
    this.#transport.sendLocal(p.linkType, p.msg.header, bytes);
  }

  /** Packets looped back and not yet processed. */
  get loopbackQueued(): number {
    return this.#loop.length;
  }

  /** A session frame the overlay delivered to this node. */
  deliver(bytes: Uint8Array): void {
    this.core.receiveFrame(this.now, bytes);
    this.pump();
  }
}

export interface OverlayNodeOptions
  extends Omit<OverlayPlaneOptions, "deliverLocal" | "onWritable" | "onRouteChange"> {
  /** Session endpoint configuration. */
  readonly session?: Partial<SessionConfig>;
  /** Every session event, after the packets of the same step went out. */
  readonly onEvent?: (e: SessionEvent, node: OverlayNode) => void;
  /** Every route change. */
  readonly onRouteChange?: (e: RoutingEvent, node: OverlayNode) => void;
  /** A multicast packet for a group this node joined. */
  readonly onMulticast?: (m: MulticastPacket, node: OverlayNode) => void;
}

/** A multicast packet delivered to a member. */
export interface MulticastPacket {
  readonly src: NodeId;
  readonly srcPort: number;
  readonly group: number;
  readonly port: number;
  readonly data: Uint8Array;
}

/**
 * One overlay node on a `Host`: links to its neighbours, link-state routing, and a session endpoint
 * whose packets ride the overlay. A `NodeProgram`, so `sim.addNode(id, OverlayNode.factory(...))`
 * runs it in netsim. The session calls (`listen`, `connect`, `accept`, `write`, `read`, ...) are the
 * `SessionDriver`'s, on the host clock.
 */
export class OverlayNode implements NodeProgram {
  readonly host: Host;
  readonly plane: OverlayPlane;
  readonly sessions: PlaneSessionDriver;
  onEvent: ((e: SessionEvent, node: OverlayNode) => void) | undefined;
  onMulticast: ((m: MulticastPacket, node: OverlayNode) => void) | undefined;

  constructor(host: Host, opts: OverlayNodeOptions) {
    if (typeof opts !== "object" || opts === null) throw new TypeError("OverlayNode: options required");
    this.host = host;
    this.onEvent = opts.onEvent;
    this.onMulticast = opts.onMulticast;
    const { session, onEvent: _e, onRouteChange, onMulticast: _m, ...planeOpts } = opts;
    this.plane = new OverlayPlane(host, {
      ...planeOpts,
      ...(onRouteChange ? { onRouteChange: (e: RoutingEvent) => onRouteChange(e, this) } : {}),
    });
    this.sessions = new PlaneSessionDriver(host, this.plane, {
      incarnation: this.plane.incarnation,
      ...(session ? { config: session } : {}),
      onEvent: (e) => this.onEvent?.(e, this),
    });
    this.plane.deliverLocal = (payload) => this.sessions.deliver(payload);
    this.plane.deliverGroup = (data, h) =>
      this.onMulticast?.({ src: h.src, srcPort: h.srcPort, group: h.dst, port: h.dstPort, data }, this);
  }

  /** A netsim/daemon node factory: `sim.addNode(id, OverlayNode.factory({ neighbors: [2, 3] }))`. */
  static factory(opts: OverlayNodeOptions, init?: (n: OverlayNode) => void): (host: Host) => OverlayNode {
    return (host) => {
      const n = new OverlayNode(host, opts);
      init?.(n);
      n.sessions.pump();
      return n;
    };
  }

  get id(): NodeId {
    return this.host.id;
  }

  get now(): number {
    return this.host.clock.now();
  }

  receive(from: NodeId, data: Uint8Array): void {
    this.plane.receive(from, data);
  }

  /** Stops sessions (no goodbyes: callers close sessions first), then the links (goodbyes). */
  stop(): void {
    this.sessions.stop();
    this.plane.stop();
  }

  // ---- routing

  hasRoute(node: NodeId): boolean {
    return this.plane.hasRoute(node);
  }
  nextHop(node: NodeId): NodeId | undefined {
    return this.plane.router.nextHop(node);
  }

  // ---- multicast

  /** Joins a multicast group (flooded to every node as group state). */
  join(group: number): void {
    this.plane.join(group);
  }
  leave(group: number): void {
    this.plane.leave(group);
  }
  /**
   * Sends `data` to every member of `group` (port `port`) along the tree rooted here; link type as
   * for sessions (default reliable: hop-by-hop recovery, no end-to-end retransmission).
   */
  sendMulticast(
    group: number,
    port: number,
    data: Uint8Array,
    opts: { srcPort?: number; linkType?: 0 | 1 | 2 } = {},
  ): void {
    if (!(data instanceof Uint8Array)) throw new TypeError("sendMulticast: data must be a Uint8Array");
    const header: OverlayHeader = {
      src: this.host.id,
      srcPort: opts.srcPort ?? 0,
      dst: group,
      dstPort: port,
      dstKind: DestKind.Multicast,
      ttl: this.sessions.core.config.ttl,
    };
    this.plane.sendMulticast(opts.linkType ?? 1, header, data);
  }

  // ---- sessions (see SessionDriver)

  listen(port: number, backlog?: number): void {
    this.sessions.listen(port, backlog);
  }
  connect(dst: NodeId, dstPort: number, opts?: ConnectOptions): number {
    return this.sessions.connect(dst, dstPort, opts);
  }
  accept(port: number): number | undefined {
    return this.sessions.accept(port);
  }
  write(sid: number, bytes: Uint8Array): number {
    return this.sessions.write(sid, bytes);
  }
  read(sid: number, max?: number): Uint8Array {
    return this.sessions.read(sid, max);
  }
  shutdown(sid: number): void {
    this.sessions.shutdown(sid);
  }
  close(sid: number): void {
    this.sessions.close(sid);
  }
  reset(sid: number): void {
    this.sessions.reset(sid);
  }
  bind(port: number): void {
    this.sessions.bind(port);
  }
  sendDatagram(o: DatagramOptions): number | false {
    return this.sessions.sendDatagram(o);
  }
}
