import { CapacityError, MinHeap, type Rng } from "@spines-ts/primitives";
import {
  DestKind,
  decode,
  decodeSessionPayload,
  isSessionMessage,
  LinkType,
  MAX_SESSION_DATAGRAM_BYTES,
  type OverlayHeader,
  ResetReason,
  type SessionAccept,
  type SessionAck,
  type SessionData,
  type SessionMessage,
  type SessionOpen,
  type SessionReset,
  SessionResetFlag,
  WireError,
} from "@spines-ts/wire";
import { resolveSessionConfig, type SessionConfig } from "./config.ts";
import { DatagramService, type Timed } from "./datagrams.ts";
import { ConnectionRefusedError, ConnectTimeoutError, PortInUseError, SessionStateError } from "./errors.ts";
import { Stream, type StreamContext } from "./stream.ts";
import type { OutPacket, SessionEvent, SessionInfo } from "./types.ts";

export const EPHEMERAL_PORT_MIN = 40_000;
export const EPHEMERAL_PORT_MAX = 60_000;

export interface SessionEndpointOptions {
  /** This node's overlay id. */
  readonly nodeId: number;
  /** Source of session ids and datagram flow ids (seeded in the simulator). */
  readonly rng: Rng;
  readonly config?: Partial<SessionConfig>;
  /**
   * How many more packets of the flow `srcPort` to `to:dstPort` on `linkType` the transport takes
   * now without queueing them behind a full link (default: no limit). Streams send no new segment
   * beyond it: their data waits in the send buffer (so writes block), not in the transport, where
   * the end-to-end retransmission timer would run on queueing. Call `transportWritable` when room
   * comes back.
   */
  readonly sendRoom?: (to: number, linkType: LinkType, srcPort: number, dstPort: number) => number;
}

export interface ConnectOptions {
  /** Local virtual port; an ephemeral one (40000-60000) when omitted. */
  readonly srcPort?: number;
  readonly linkType?: LinkType;
}

export interface DatagramOptions {
  readonly srcPort: number;
  readonly dst: number;
  readonly dstPort: number;
  readonly data: Uint8Array;
  readonly reliable?: boolean;
  readonly linkType?: LinkType;
}

/** Counters of what the endpoint dropped or did; never reset. */
export interface EndpointCounters {
  packetsIn: number;
  packetsOut: number;
  /** Frames that failed to decode, or were not session messages. */
  malformed: number;
  /** Messages for another node, or not addressed to a single node. */
  misaddressed: number;
  /** Stream messages for a session id we do not have (answered with a reset). */
  unknownSession: number;
  resetsSent: number;
  refused: number;
}

interface Listener {
  readonly port: number;
  readonly backlog: number;
  readonly queue: Stream[];
}

interface HeapEntry {
  readonly at: number;
  readonly seq: number;
  readonly t: Timed;
}

class StreamTimer implements Timed {
  deadline = Number.POSITIVE_INFINITY;
  readonly s: Stream;
  readonly #ep: SessionEndpoint;
  constructor(ep: SessionEndpoint, s: Stream) {
    this.s = s;
    this.#ep = ep;
  }
  onTimer(now: number): void {
    this.#ep.streamTimer(now, this);
  }
}

function checkPort(port: unknown, what: string): asserts port is number {
  if (typeof port !== "number") throw new TypeError(`${what} must be a number, got ${typeof port}`);
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) {
    throw new RangeError(`${what} must be an integer in [1, 65535], got ${port}`);
  }
}

function checkNode(node: unknown, what: string): asserts node is number {
  if (typeof node !== "number") throw new TypeError(`${what} must be a number, got ${typeof node}`);
  if (!Number.isInteger(node) || node < 0 || node > 0xffffffff) {
    throw new RangeError(`${what} must be a u32 node id, got ${node}`);
  }
}

function checkNow(now: unknown): asserts now is number {
  if (typeof now !== "number" || !Number.isFinite(now)) throw new TypeError(`now must be a finite number`);
}

function checkBytes(b: unknown, what: string): asserts b is Uint8Array {
  if (!(b instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
}

function checkLinkType(t: unknown): asserts t is LinkType {
  if (t !== 0 && t !== 1 && t !== 2) throw new RangeError(`linkType must be 0, 1 or 2, got ${String(t)}`);
}

/**
 * The sans-IO session core of one overlay node. Inputs: `receivePayload(now, header, payload)` for
 * packets the overlay delivered here (`receive(now, msg)` for decoded ones, `receiveFrame(now, bytes)`
 * for the frame form), `handleTimeout(now)` at or after
 * `nextDeadline()`, and the application calls (`listen`, `connect`, `accept`, `write`, `read`,
 * `shutdown`, `close`, `reset`, `bind`, `sendDatagram`). Outputs: `takePackets()` (messages for the
 * overlay to carry to a node, with the preferred link type) and `takeEvents()` for the application.
 * The overlay source of a message is its `header.src`; the core never routes.
 */
export class SessionEndpoint {
  readonly nodeId: number;
  readonly config: SessionConfig;
  readonly counters: EndpointCounters = {
    packetsIn: 0,
    packetsOut: 0,
    malformed: 0,
    misaddressed: 0,
    unknownSession: 0,
    resetsSent: 0,
    refused: 0,
  };
  readonly datagrams: DatagramService;

  readonly #rng: Rng;
  readonly #sessions = new Map<number, Stream>();
  readonly #timers = new Map<number, StreamTimer>();
  /** `${remoteNode}:${remotePort}:${localPort}:${peerSid}` -> stream. */
  readonly #byPeer = new Map<string, Stream>();
  readonly #listeners = new Map<number, Listener>();
  readonly #bound = new Set<number>();
  /** Ports held by initiated sessions (refcount). */
  readonly #sessionPorts = new Map<number, number>();
  #nextEphemeral = EPHEMERAL_PORT_MIN;
  readonly #heap = new MinHeap<HeapEntry>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  #heapSeq = 0;
  #packets: OutPacket[] = [];
  #events: SessionEvent[] = [];
  readonly #streamCtx: StreamContext;

  constructor(opts: SessionEndpointOptions) {
    if (typeof opts !== "object" || opts === null) throw new TypeError("SessionEndpoint needs options");
    checkNode(opts.nodeId, "nodeId");
    this.nodeId = opts.nodeId;
    this.#rng = opts.rng;
    this.config = resolveSessionConfig(opts.config ?? {});
    const send = (to: number, linkType: LinkType, msg: SessionMessage): void => {
      this.counters.packetsOut++;
      this.#packets.push({ to, linkType, msg });
    };
    const emit = (e: SessionEvent): void => {
      this.#events.push(e);
    };
    const sendRoom = opts.sendRoom;
    this.#streamCtx = {
      nodeId: this.nodeId,
      config: this.config,
      send,
      room:
        sendRoom === undefined
          ? () => Number.POSITIVE_INFINITY
          : (to, linkType, srcPort, dstPort) => sendRoom(to, linkType, srcPort, dstPort),
      emit,
      release: (s) => this.#release(s),
      indexPeer: (s) =>
        this.#byPeer.set(this.#peerKey(s.remoteNode, s.remotePort, s.localPort, s.peerSid), s),
    };
    this.datagrams = new DatagramService({
      nodeId: this.nodeId,
      config: this.config,
      rng: this.#rng,
      send,
      emit,
      isBound: (port) => this.#bound.has(port),
      schedule: (t) => this.#push(t),
    });
  }

  // ------------------------------------------------------------------ outputs and time

  /** The transport has room again (see `sendRoom`): streams send what they held back. */
  transportWritable(now: number): void {
    checkNow(now);
    for (const st of this.#sessions.values()) st.transportWritable(now);
  }

  /** Packets produced since the last call, in order. */
  takePackets(): OutPacket[] {
    const p = this.#packets;
    this.#packets = [];
    return p;
  }

  /** Events produced since the last call, in order. */
  takeEvents(): SessionEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  /** The earliest time `handleTimeout` must be called, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined) return undefined;
      if (top.at === top.t.deadline) return top.at;
      this.#heap.pop();
    }
  }

  handleTimeout(now: number): void {
    checkNow(now);
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined || top.at > now) return;
      this.#heap.pop();
      if (top.at !== top.t.deadline) continue;
      top.t.deadline = Number.POSITIVE_INFINITY;
      top.t.onTimer(now);
    }
  }

  #push(t: Timed): void {
    if (t.deadline !== Number.POSITIVE_INFINITY) this.#heap.push({ at: t.deadline, seq: this.#heapSeq++, t });
  }

  /** Re-registers a stream's deadline after anything touched it. */
  #touch(s: Stream): void {
    const timer = this.#timers.get(s.sid);
    if (timer === undefined || s.released) return;
    // The registered deadline is a "wake no later than": a later one leaves the earlier entry in
    // place (one spurious wake-up re-registers), so busy streams do not flood the heap.
    const d = s.nextDeadline();
    if (d < timer.deadline) {
      timer.deadline = d;
      this.#push(timer);
    }
  }

  /** @internal */
  streamTimer(now: number, t: StreamTimer): void {
    t.s.onTimer(
      now,
      () => new ConnectTimeoutError(t.s.remoteNode, t.s.remotePort, this.config.connectTimeoutMs),
    );
    this.#touch(t.s);
  }

  // ------------------------------------------------------------------ application: streams

  /**
   * Accepts opens on `port` (queued up to `backlog`, announced by "incoming" events); port 0 picks a
   * free ephemeral port (40000-60000, in order, so a seeded run picks the same ones). Returns the port.
   */
  listen(port: number, backlog = this.config.defaultBacklog): number {
    if (port !== 0) checkPort(port, "port");
    if (!Number.isInteger(backlog) || backlog < 1 || backlog > this.config.defaultBacklog) {
      throw new RangeError(
        `backlog must be an integer in [1, ${this.config.defaultBacklog}], got ${backlog}`,
      );
    }
    if (port === 0) port = this.#ephemeral();
    else if (this.#listeners.has(port) || this.#sessionPorts.has(port)) throw new PortInUseError(port);
    this.#listeners.set(port, { port, backlog, queue: [] });
    return port;
  }

  /** Stops listening; sessions still waiting in the accept queue are reset. */
  unlisten(now: number, port: number): void {
    checkNow(now);
    const l = this.#listeners.get(port);
    if (l === undefined) return;
    this.#listeners.delete(port);
    for (const s of l.queue) {
      s.reset(now);
    }
  }

  /** Starts an open to `dst:dstPort`; returns the local session id ("connected" or "closed" follows). */
  connect(now: number, dst: number, dstPort: number, opts: ConnectOptions = {}): number {
    checkNow(now);
    checkNode(dst, "dst");
    checkPort(dstPort, "dstPort");
    const linkType = opts.linkType ?? LinkType.Reliable;
    checkLinkType(linkType);
    let port: number;
    if (opts.srcPort !== undefined) {
      checkPort(opts.srcPort, "srcPort");
      if (
        this.#listeners.has(opts.srcPort) ||
        this.#bound.has(opts.srcPort) ||
        this.#sessionPorts.has(opts.srcPort)
      ) {
        throw new PortInUseError(opts.srcPort);
      }
      port = opts.srcPort;
    } else {
      port = this.#ephemeral();
    }
    if (this.#sessions.size >= this.config.maxSessions)
      throw new CapacityError("session table", this.config.maxSessions);
    const s = new Stream(this.#streamCtx, {
      sid: this.#newSid(),
      localPort: port,
      remoteNode: dst,
      remotePort: dstPort,
      linkType,
      initiator: true,
      peerWindow: 0,
      now,
    });
    this.#sessionPorts.set(port, (this.#sessionPorts.get(port) ?? 0) + 1);
    this.#add(s);
    s.sendOpen(now);
    this.#touch(s);
    return s.sid;
  }

  /** The next established session waiting on `port`, or undefined. */
  accept(port: number): number | undefined {
    checkPort(port, "port");
    const l = this.#listeners.get(port);
    if (l === undefined) throw new SessionStateError(`not listening on port ${port}`);
    for (;;) {
      const s = l.queue.shift();
      if (s === undefined) return undefined;
      if (s.state !== "finished") return s.sid;
    }
  }

  /** Queues bytes; returns how many were taken (fewer when the send buffer is full: wait for "writable"). */
  write(now: number, sid: number, bytes: Uint8Array): number {
    checkNow(now);
    checkBytes(bytes, "bytes");
    const s = this.#stream(sid);
    const n = s.write(now, bytes);
    this.#touch(s);
    return n;
  }

  /** Up to `max` in-order bytes (empty when none are ready). */
  read(now: number, sid: number, max = Number.MAX_SAFE_INTEGER): Uint8Array {
    checkNow(now);
    if (!(max >= 1)) throw new RangeError(`max must be >= 1, got ${max}`);
    const s = this.#stream(sid, true);
    const out = s.read(now, max);
    this.#touch(s);
    return out;
  }

  /** Half-close: the peer reads to the end after the buffered bytes; we can still read. */
  shutdown(now: number, sid: number): void {
    checkNow(now);
    const s = this.#stream(sid);
    s.shutdown(now);
    this.#touch(s);
  }

  /** Graceful close: flush, finish both directions, discard further input. "closed" follows. */
  close(now: number, sid: number): void {
    checkNow(now);
    const s = this.#stream(sid, true);
    s.close(now);
    this.#touch(s);
  }

  /** Abortive close: the peer gets SessionResetError at once. */
  reset(now: number, sid: number): void {
    checkNow(now);
    const s = this.#stream(sid, true);
    s.reset(now);
  }

  info(sid: number): SessionInfo {
    return this.#stream(sid, true).info();
  }

  /** Ids of every session still in the table (including lingering ones). */
  sessionIds(): number[] {
    return [...this.#sessions.keys()];
  }

  get sessionCount(): number {
    return this.#sessions.size;
  }

  #stream(sid: number, allowFinished = false): Stream {
    if (typeof sid !== "number") throw new TypeError(`sid must be a number`);
    const s = this.#sessions.get(sid);
    if (s === undefined) throw new SessionStateError(`no session ${sid}`);
    if (!allowFinished && s.state === "finished") throw new SessionStateError(`session ${sid} is closed`);
    return s;
  }

  #newSid(): number {
    for (;;) {
      const sid = this.#rng.uint32();
      if (sid !== 0 && !this.#sessions.has(sid)) return sid;
    }
  }

  #ephemeral(): number {
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    for (let i = 0; i < span; i++) {
      const p = this.#nextEphemeral;
      this.#nextEphemeral = p >= EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1;
      if (!this.#listeners.has(p) && !this.#bound.has(p) && !this.#sessionPorts.has(p)) return p;
    }
    throw new CapacityError("ephemeral ports", span);
  }

  #peerKey(node: number, port: number, localPort: number, peerSid: number): string {
    return `${node}:${port}:${localPort}:${peerSid}`;
  }

  #add(s: Stream): void {
    this.#sessions.set(s.sid, s);
    this.#timers.set(s.sid, new StreamTimer(this, s));
  }

  #release(s: Stream): void {
    this.#sessions.delete(s.sid);
    const t = this.#timers.get(s.sid);
    if (t !== undefined) t.deadline = Number.POSITIVE_INFINITY;
    this.#timers.delete(s.sid);
    const key = this.#peerKey(s.remoteNode, s.remotePort, s.localPort, s.peerSid);
    if (this.#byPeer.get(key) === s) this.#byPeer.delete(key);
    if (s.initiator) {
      const n = (this.#sessionPorts.get(s.localPort) ?? 1) - 1;
      if (n <= 0) this.#sessionPorts.delete(s.localPort);
      else this.#sessionPorts.set(s.localPort, n);
    }
  }

  // ------------------------------------------------------------------ application: datagrams

  /**
   * Lets `port` receive datagrams (and send them); port 0 picks a free ephemeral port as `listen`
   * does. Returns the port.
   */
  bind(port: number): number {
    if (port !== 0) checkPort(port, "port");
    if (port === 0) port = this.#ephemeral();
    else if (this.#bound.has(port) || this.#sessionPorts.has(port)) throw new PortInUseError(port);
    this.#bound.add(port);
    return port;
  }

  unbind(port: number): void {
    this.#bound.delete(port);
  }

  /**
   * Sends one datagram message (up to 64 KiB, fragmented as needed) from bound `srcPort`. Returns a
   * handle (reliable ones end with "datagramAcked" or "datagramFailed"), or false when the reliable
   * send buffer is full (wait for "datagramWritable"). Best-effort messages never block.
   */
  sendDatagram(now: number, o: DatagramOptions): number | false {
    checkNow(now);
    if (typeof o !== "object" || o === null) throw new TypeError("sendDatagram needs options");
    checkPort(o.srcPort, "srcPort");
    checkNode(o.dst, "dst");
    checkPort(o.dstPort, "dstPort");
    checkBytes(o.data, "data");
    if (o.data.length > MAX_SESSION_DATAGRAM_BYTES) {
      throw new RangeError(`datagram of ${o.data.length} bytes, max ${MAX_SESSION_DATAGRAM_BYTES}`);
    }
    const linkType = o.linkType ?? LinkType.BestEffort;
    checkLinkType(linkType);
    if (!this.#bound.has(o.srcPort)) throw new SessionStateError(`port ${o.srcPort} is not bound`);
    return this.datagrams.send(now, o.srcPort, o.dst, o.dstPort, o.data, o.reliable === true, linkType);
  }

  // ------------------------------------------------------------------ packets in

  /** Decodes one frame and handles it; bad bytes are counted and dropped, never thrown. */
  receiveFrame(now: number, bytes: Uint8Array): void {
    checkNow(now);
    checkBytes(bytes, "bytes");
    let msg: SessionMessage;
    try {
      const f = decode(bytes);
      if (!isSessionMessage(f.msg)) {
        this.counters.malformed++;
        return;
      }
      msg = f.msg;
    } catch (e) {
      if (e instanceof WireError) {
        this.counters.malformed++;
        return;
      }
      throw e;
    }
    this.receive(now, msg);
  }

  /**
   * Decodes one session message in the payload form (docs/wire.md §5.10) that the overlay delivered
   * in a packet with overlay header `header`, and handles it; bad bytes are counted and dropped,
   * never thrown. This is the overlay's delivery path: the packet is decoded once.
   */
  receivePayload(now: number, header: OverlayHeader, payload: Uint8Array): void {
    checkNow(now);
    checkBytes(payload, "payload");
    let msg: SessionMessage;
    try {
      msg = decodeSessionPayload(header, payload);
    } catch (e) {
      if (e instanceof WireError) {
        this.counters.malformed++;
        return;
      }
      throw e;
    }
    this.receive(now, msg);
  }

  /** Handles one decoded message the overlay delivered to this node. */
  receive(now: number, msg: SessionMessage): void {
    checkNow(now);
    this.counters.packetsIn++;
    const h = msg.header;
    if (h.dst !== this.nodeId || h.dstKind !== DestKind.Node) {
      this.counters.misaddressed++;
      return;
    }
    switch (msg._tag) {
      case "SessionOpen":
        this.#onOpen(now, msg);
        return;
      case "SessionAccept":
        this.#onAccept(now, msg);
        return;
      case "SessionData":
      case "SessionAck":
        this.#onStreamMsg(now, msg);
        return;
      case "SessionReset":
        this.#onReset(now, msg);
        return;
      case "SessionDatagram":
        this.datagrams.onDatagram(now, msg);
        return;
      case "SessionDatagramAck":
        this.datagrams.onAck(now, msg);
        return;
      default:
        this.counters.malformed++;
    }
  }

  #sendReset(
    to: number,
    srcPort: number,
    dstPort: number,
    sid: number,
    yours: boolean,
    reason: number,
  ): void {
    this.counters.resetsSent++;
    this.counters.packetsOut++;
    this.#packets.push({
      to,
      linkType: LinkType.Reliable,
      msg: {
        _tag: "SessionReset",
        header: { src: this.nodeId, srcPort, dst: to, dstPort, dstKind: DestKind.Node, ttl: this.config.ttl },
        sid,
        flags: yours ? SessionResetFlag.Yours : 0,
        reason,
      },
    });
  }

  #onOpen(now: number, m: SessionOpen): void {
    const h = m.header;
    const existing = this.#byPeer.get(this.#peerKey(h.src, h.srcPort, h.dstPort, m.sid));
    if (existing !== undefined) {
      if (existing.state !== "finished") existing.sendAccept(now);
      return;
    }
    const l = this.#listeners.get(h.dstPort);
    if (l === undefined) {
      this.counters.refused++;
      this.#sendReset(h.src, h.dstPort, h.srcPort, m.sid, true, ResetReason.Refused);
      return;
    }
    if (l.queue.length >= l.backlog || this.#sessions.size >= this.config.maxSessions) {
      this.counters.refused++;
      this.#sendReset(h.src, h.dstPort, h.srcPort, m.sid, true, ResetReason.Busy);
      return;
    }
    const s = new Stream(this.#streamCtx, {
      sid: this.#newSid(),
      peerSid: m.sid,
      localPort: h.dstPort,
      remoteNode: h.src,
      remotePort: h.srcPort,
      linkType: m.linkType,
      initiator: false,
      peerWindow: m.window,
      now,
    });
    this.#add(s);
    this.#streamCtx.indexPeer(s);
    l.queue.push(s);
    s.sendAccept(now);
    this.#touch(s);
    this.#events.push({ type: "incoming", port: h.dstPort });
  }

  #matches(s: Stream, m: SessionMessage): boolean {
    const h = m.header;
    return s.remoteNode === h.src && s.remotePort === h.srcPort && s.localPort === h.dstPort;
  }

  #onAccept(now: number, m: SessionAccept): void {
    const s = this.#sessions.get(m.dstSid);
    const h = m.header;
    if (s === undefined || !this.#matches(s, m)) {
      this.counters.unknownSession++;
      this.#sendReset(h.src, h.dstPort, h.srcPort, m.sid, true, ResetReason.NoSession);
      return;
    }
    if (s.state === "connecting") s.onAccept(now, m.sid, m.window);
    this.#touch(s);
  }

  #onStreamMsg(now: number, m: SessionData | SessionAck): void {
    const s = this.#sessions.get(m.dstSid);
    const h = m.header;
    if (s === undefined || !this.#matches(s, m)) {
      this.counters.unknownSession++;
      this.#sendReset(h.src, h.dstPort, h.srcPort, m.dstSid, false, ResetReason.NoSession);
      return;
    }
    if (s.state === "finished") {
      if (m._tag === "SessionData") s.onDataWhileFinished(now);
      return;
    }
    if (m._tag === "SessionData") s.onData(now, m);
    else s.onAck(now, m);
    this.#touch(s);
  }

  #onReset(now: number, m: SessionReset): void {
    const h = m.header;
    let s: Stream | undefined;
    if ((m.flags & SessionResetFlag.Yours) !== 0) {
      s = this.#sessions.get(m.sid);
      if (s !== undefined && !this.#matches(s, m)) s = undefined;
    } else {
      s = this.#byPeer.get(this.#peerKey(h.src, h.srcPort, h.dstPort, m.sid));
    }
    if (s === undefined || s.state === "finished") return;
    if (s.state === "connecting" && (m.reason === ResetReason.Refused || m.reason === ResetReason.Busy)) {
      s.failConnect(now, new ConnectionRefusedError(s.remoteNode, s.remotePort, m.reason));
    } else {
      s.onReset(now, m.reason);
    }
  }
}
