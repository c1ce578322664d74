/**
 * A full overlay node: the forwarding plane with a session endpoint on top. `PlaneSessionDriver` is
 * a `SessionDriver` whose packets go through the plane (router next hop, link channel of the
 * session's link type) instead of straight to a neighbour; `OverlayNode` wires the two on one
 * `Host`, so a netsim node and the spines-node daemon run links, routing and sessions together,
 * with the same code. It also offers the status snapshots the daemon shows (`neighborStatus`,
 * `linkStatus`, `routes`, `counters`).
 */
import { DATA_OVERHEAD_BYTES, defaultLinkConfig } from "@spines-ts/link-arq";
import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import type { Route, RoutingEvent } from "@spines-ts/routing";
import {
  type ConnectOptions,
  type DatagramOptions,
  defaultSessionConfig,
  type EndpointCounters,
  type SessionConfig,
  SessionDriver,
  type SessionEvent,
  type SessionInfo,
} from "@spines-ts/session";
import {
  DestKind,
  encodeSessionPayload,
  type LinkType,
  type OverlayHeader,
  SESSION_PAYLOAD_TYPE_BYTES,
} from "@spines-ts/wire";
import type { FrameAuth, FrameAuthStats } from "@spines-ts/wire/auth";
import { type OverlayAuthOptions, overlayFrameAuth, SigningHost } from "./auth.ts";
import { type OverlayCounters, OverlayPlane, type OverlayPlaneOptions } from "./plane.ts";
import {
  type LinkStatus,
  linkStatus,
  type NeighborStatus,
  neighborStatus,
  type RouteStatus,
  routeStatus,
} from "./status.ts";

/** Where a session endpoint's packets go: the plane (or an adapter around it). */
export interface SessionTransport {
  /**
   * Sends `payload` (a session message in the payload form) in an overlay packet with `header`;
   * `control` marks acks, opens and resets, which must not wait behind data.
   */
  sendLocal(
    linkType: LinkType | number,
    header: OverlayHeader,
    payload: Uint8Array,
    control?: boolean,
    // biome-ignore lint/suspicious/noConfusingVoidType: transports that report nothing stay valid
  ): boolean | void;
  /** Whether a route to `node` is known now. */
  hasRoute(node: NodeId): boolean;
}

export interface PlaneSessionDriverOptions {
  readonly config?: Partial<SessionConfig>;
  /** The plane's room for a local flow (streams send no new data beyond it). */
  readonly sendRoom?: (to: NodeId, linkType: LinkType, srcPort: number, dstPort: number) => number;
  readonly onEvent?: (e: SessionEvent, driver: SessionDriver) => void;
}

interface Looped {
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
}

/**
 * The session driver with its packets sent through the overlay plane. A session message travels
 * once, as the payload of the overlay packet (docs/wire.md §5.10): the packet's overlay header is
 * the message's header, the payload its type byte and body; `deliver` decodes it once.
 */
export class PlaneSessionDriver extends SessionDriver {
  readonly #transport: SessionTransport;
  readonly #self: NodeId;
  #loop: Looped[] = [];
  #loopScheduled = false;

  constructor(host: Host, transport: SessionTransport, opts: PlaneSessionDriverOptions = {}) {
    super(host, {
      ...(opts.config ? { config: opts.config } : {}),
      ...(opts.sendRoom ? { sendRoom: opts.sendRoom } : {}),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    });
    this.#transport = transport;
    this.#self = host.id;
  }

  override transmit(p: Parameters<SessionDriver["transmit"]>[0]): void {
    const payload = encodeSessionPayload(p.msg);
    if (p.to === this.#self) {
      // A session between two ports of this node: loop back at the same instant, outside the
      // current pump (`host.schedule(now)`, in netsim and in the daemon alike). The loop holds at
      // most one pump's output (the endpoint's buffers bound it).
      this.#loop.push({ header: p.msg.header, payload });
      if (!this.#loopScheduled) {
        this.#loopScheduled = true;
        this.host.schedule(this.now, () => {
          this.#loopScheduled = false;
          const xs = this.#loop;
          this.#loop = [];
          const now = this.now;
          for (const x of xs) this.core.receivePayload(now, x.header, x.payload);
          this.pump();
        });
      }
      return;
    }
    const tag = p.msg._tag;
    this.#transport.sendLocal(
      p.linkType,
      p.msg.header,
      payload,
      tag !== "SessionData" && tag !== "SessionDatagram",
    );
  }

  /** Packets looped back and not yet processed. */
  get loopbackQueued(): number {
    return this.#loop.length;
  }

  /** A session packet the overlay delivered to this node (its header and payload). */
  deliver(header: OverlayHeader, payload: Uint8Array): void {
    this.core.receivePayload(this.now, header, payload);
    this.pump();
  }
}

export interface OverlayNodeOptions
  extends Omit<OverlayPlaneOptions, "deliverLocal" | "deliverGroup" | "onWritable" | "onRouteChange"> {
  /** Session endpoint configuration. */
  readonly session?: Partial<SessionConfig>;
  /**
   * Stream writes of one host turn go out together (default false): a `write` holds the stream's
   * new segments back (its transport room reads 0) until a host callback at the same instant, so
   * the writes of one turn are cut into full `mss` segments instead of one segment per write. The
   * daemon hands a stream every DATA frame of one client-socket read in one turn; with 1,000-byte
   * messages that is a tenth to a quarter fewer packets on every hop (issue 10, throughput).
   */
  readonly coalesceWrites?: boolean;
  /** Every session event, after the packets of the same step went out. */
  readonly onEvent?: (e: SessionEvent, node: OverlayNode) => void;
  /** A link or route change may let blocked senders go on. */
  readonly onWritable?: (node: OverlayNode) => void;
  /** Every route change. */
  readonly onRouteChange?: (e: RoutingEvent, node: OverlayNode) => void;
  /** A multicast packet for a group this node joined. */
  readonly onMulticast?: (m: MulticastPacket, node: OverlayNode) => void;
  /**
   * Authenticated packets (docs/security.md): every datagram the node sends is signed, every one it
   * receives is verified (key set, replay window per sender incarnation) before it is decoded;
   * the rest are dropped and counted (`authStats()`).
   */
  readonly auth?: OverlayAuthOptions;
}

/** A multicast packet delivered to a member. */
export interface MulticastPacket {
  readonly src: NodeId;
  readonly srcPort: number;
  readonly group: number;
  readonly port: number;
  readonly data: Uint8Array;
}

/** Bytes a stream segment carries around its data in an overlay payload (type byte, SessionData fields). */
const SEGMENT_OVERHEAD_BYTES = SESSION_PAYLOAD_TYPE_BYTES + 17;

/**
 * The session settings with `mss` cut so that a full segment fits the links' `mtu` (a larger one
 * could never be sent: the link refuses it as too big).
 */
export function sessionConfigFor(
  session: Partial<SessionConfig> | undefined,
  link: { readonly mtu?: number } | undefined,
): Partial<SessionConfig> | undefined {
  const fits = (link?.mtu ?? defaultLinkConfig.mtu) - DATA_OVERHEAD_BYTES - SEGMENT_OVERHEAD_BYTES;
  const mss = session?.mss ?? defaultSessionConfig.mss;
  return fits >= 1 && mss > fits ? { ...session, mss: fits } : session;
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
  onWritable: ((node: OverlayNode) => void) | undefined;
  /** Signs what the node sends and checks what it receives; undefined without the `auth` option. */
  readonly auth: FrameAuth | undefined;
  /** `coalesceWrites`: streams hold new segments until the uncork at the end of the turn. */
  readonly #coalesce: boolean;
  #corked = false;
  /** `cork()` depth: streams hold new segments until the matching `uncork()`. */
  #held = 0;
  /** A stream was written while held (`uncork` has segments to send). */
  #heldWrites = false;
  /** Batches of stream writes released together (end of a turn with `coalesceWrites`, or `uncork`). */
  uncorks = 0;
  readonly #uncork = (): void => {
    this.#corked = false;
    if (this.#held > 0) {
      this.#heldWrites = true; // the outer `uncork()` sends them
      return;
    }
    this.#release();
  };

  #release(): void {
    this.#heldWrites = false;
    this.uncorks++;
    this.sessions.transportWritable();
  }

  constructor(host: Host, opts: OverlayNodeOptions) {
    if (typeof opts !== "object" || opts === null) throw new TypeError("OverlayNode: options required");
    this.host = host;
    this.onEvent = opts.onEvent;
    this.onMulticast = opts.onMulticast;
    this.onWritable = opts.onWritable;
    const {
      session,
      onEvent: _e,
      onRouteChange,
      onMulticast: _m,
      onWritable: _w,
      auth,
      coalesceWrites,
      ...planeOpts
    } = opts;
    this.#coalesce = coalesceWrites === true;
    // With auth the plane and the sessions send through a signing host: every datagram, one place.
    const signing = auth === undefined ? undefined : new SigningHost(host, overlayFrameAuth(host, auth));
    this.auth = signing?.auth;
    const wire: Host = signing ?? host;
    this.plane = new OverlayPlane(wire, {
      ...planeOpts,
      ...(onRouteChange ? { onRouteChange: (e: RoutingEvent) => onRouteChange(e, this) } : {}),
      onWritable: () => {
        this.sessions.transportWritable();
        this.onWritable?.(this);
      },
    });
    const self = host.id;
    const sessionConfig = sessionConfigFor(session, planeOpts.link);
    this.sessions = new PlaneSessionDriver(wire, this.plane, {
      ...(sessionConfig ? { config: sessionConfig } : {}),
      sendRoom: (to, linkType, srcPort, dstPort) =>
        to === self
          ? Number.POSITIVE_INFINITY
          : this.#corked || this.#held > 0
            ? 0
            : this.plane.sendRoom(to, linkType, srcPort, dstPort),
      onEvent: (e) => this.onEvent?.(e, this),
    });
    this.plane.deliverLocal = (payload, header) => this.sessions.deliver(header, payload);
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
    if (this.auth !== undefined) {
      const frame = this.#authentic(data);
      if (frame === undefined) return;
      this.plane.receive(from, frame);
      return;
    }
    this.plane.receive(from, data);
  }

  /**
   * Verifies a received frame (signed under a known key, good MAC or tag, fresh): the frame to
   * decode (decrypted in encrypt mode), or undefined to drop it (counted by `auth`).
   */
  #authentic(data: Uint8Array): Uint8Array | undefined {
    try {
      const r = (this.auth as FrameAuth).open(data);
      return r.ok ? r.frame : undefined;
    } catch {
      // a malformed header: the plane counts it by reason, as without auth
      return data;
    }
  }

  /** Counters of the authentication layer (undefined without `auth`). */
  authStats(): FrameAuthStats | undefined {
    return this.auth?.stats();
  }

  /** Stops sessions (no goodbyes: callers close sessions first), then the links (goodbyes). */
  stop(): void {
    this.sessions.stop();
    this.plane.stop();
  }

  /** This run's incarnation (in every frame the node sends). */
  get incarnation(): number {
    return this.plane.incarnation;
  }

  // ---- status (plain data, for the daemon's control socket and metrics, and for tests)

  /** What the plane counted (received, delivered, forwarded, dropped by reason). */
  get counters(): Readonly<OverlayCounters> {
    return this.plane.counters;
  }
  /** Undecodable datagrams by WireError code. */
  get decodeErrorsByCode(): ReadonlyMap<string, number> {
    return this.plane.decodeErrorsByCode;
  }
  /** What the session endpoint counted. */
  get sessionCounters(): Readonly<EndpointCounters> {
    return this.sessions.core.counters;
  }
  /** Every neighbour's liveness, in the order of `neighbors`. */
  neighborStatus(): NeighborStatus[] {
    return neighborStatus(this.plane);
  }
  /** Every link's measurements, in the order of `neighbors`. */
  linkStatus(): LinkStatus[] {
    return linkStatus(this.plane);
  }
  /** The routing table. */
  routes(): RouteStatus[] {
    return routeStatus(this.plane);
  }
  /** Groups known from the link-state database, with their members. */
  groups(): { group: number; members: number[] }[] {
    return this.plane.groups();
  }

  // ---- routing

  hasRoute(node: NodeId): boolean {
    return this.plane.hasRoute(node);
  }
  nextHop(node: NodeId): NodeId | undefined {
    return this.plane.router.nextHop(node);
  }
  /** The route to `node` (cost, path inclusive of both ends), or undefined without one. */
  route(node: NodeId): Route | undefined {
    return this.plane.router.route(node);
  }
  /** The nearest reachable member of `group` (this node if it joined), or undefined. */
  anycastNearest(group: number): NodeId | undefined {
    return this.plane.router.anycastNearest(group);
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

  /** Listens on `port` (0: a free ephemeral port); returns the port. */
  listen(port: number, backlog?: number): number {
    return this.sessions.core.listen(port, backlog);
  }
  /** Stops listening; sessions waiting to be accepted are reset. */
  unlisten(port: number): void {
    this.sessions.core.unlisten(this.now, port);
    this.sessions.pump();
  }
  connect(dst: NodeId, dstPort: number, opts?: ConnectOptions): number {
    return this.sessions.connect(dst, dstPort, opts);
  }
  accept(port: number): number | undefined {
    return this.sessions.accept(port);
  }
  /**
   * Holds every stream's new segments (their transport room reads 0) until the matching `uncork`,
   * which sends them at once, cut into full `mss` segments: `coalesceWrites` for a caller that knows
   * where its batch of writes ends (the daemon: the DATA frames of one client-socket read), without
   * the host callback per turn (in the daemon a `setImmediate` and two moves of the precise timer's
   * deadline, a futex wake of its thread each: issue 13). Calls nest; writes inside schedule nothing.
   */
  cork(): void {
    this.#held++;
  }

  /** Ends a `cork`: the outermost one sends what the writes since left unsent (same instant). */
  uncork(): void {
    if (this.#held === 0) return;
    this.#held--;
    // A turn's scheduled uncork still pending (writes before the cork) sends them all then.
    if (this.#held > 0 || this.#corked || !this.#heldWrites) return;
    this.#release();
  }

  write(sid: number, bytes: Uint8Array): number {
    if (this.#held > 0) this.#heldWrites = true;
    else if (this.#coalesce && !this.#corked) {
      // Held until the end of this turn (`coalesceWrites`); the stream merges later writes into
      // its unsent tail segment meanwhile.
      this.#corked = true;
      this.host.schedule(this.now, this.#uncork);
    }
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
  /** Binds `port` for datagrams (0: a free ephemeral port); returns the port. */
  bind(port: number): number {
    return this.sessions.core.bind(port);
  }
  unbind(port: number): void {
    this.sessions.core.unbind(port);
  }
  /** A snapshot of session `sid` (also of finished ones still in the table). */
  info(sid: number): SessionInfo {
    return this.sessions.core.info(sid);
  }
  sendDatagram(o: DatagramOptions): number | false {
    return this.sessions.sendDatagram(o);
  }
  /**
   * How many more packets a local flow (`srcPort` to `dst:dstPort`) may queue now without a drop
   * (`OverlayPlane.localRoom`): a datagram of more fragments must be refused (would-block).
   */
  localRoom(dst: NodeId, srcPort: number, dstPort: number): number {
    return this.plane.localRoom(dst, srcPort, dstPort);
  }
}
