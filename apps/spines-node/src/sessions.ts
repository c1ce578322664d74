/**
 * The session service the client interface talks to: listeners, stream sessions and datagram
 * sockets on virtual ports. `SessionService` is the seam between the client protocol and whatever
 * carries sessions; this file has the port tables and the same-node (local) sessions, and sends
 * datagrams to other nodes through a `DatagramTransport` the daemon provides.
 */
import type { NodeId } from "@spines-ts/primitives";
import { SpinesError } from "@spines-ts/primitives";
import { ClientErrorCode, ClosedReason, type LinkType } from "./client-protocol.ts";

export const EPHEMERAL_PORT_MIN = 40_000;
export const EPHEMERAL_PORT_MAX = 60_000;
export const MAX_BACKLOG = 1024;

export class SessionError extends SpinesError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = "SessionError";
  }
}

/** Where a session delivers what arrives for the client. */
export interface StreamSink {
  /** Bytes in order. Returns false when the client is not keeping up (the sender should pause). */
  data(bytes: Uint8Array): boolean;
  /** The peer will send no more. */
  end(): void;
  /** The session is gone. */
  closed(reason: ClosedReason, code: string, message: string): void;
  /** True while the client accepts more data. */
  readonly writable: boolean;
  /** Called once when `writable` becomes true again. */
  whenWritable(fn: () => void): void;
}

export interface StreamSession {
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  /** Starts delivering to `sink` (and flushes what arrived before). */
  attach(sink: StreamSink): void;
  /** Queues bytes; returns false when the sender should pause until `whenWritable`. */
  write(bytes: Uint8Array): boolean;
  whenWritable(fn: () => void): void;
  /** Half-close: no more writes from this side. */
  shutdown(): void;
  /** Abort at once; the peer sees a reset. */
  reset(): void;
  /** Graceful close: shutdown, then forget the session once the peer is done. */
  close(): void;
  /** Snapshot for the control socket. */
  info(): SessionInfo;
}

export interface SessionInfo {
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  readonly state: string;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** End-to-end details, when the session core runs the session. */
  readonly srttMs?: number | null;
  readonly sendBuffered?: number;
  readonly inFlight?: number;
  readonly peerWindow?: number;
  readonly retransmitted?: number;
}

export interface Listener {
  readonly port: number;
  readonly link: LinkType;
  /** Resolves with the next incoming session (sessions wait in a backlog until accepted). */
  accept(): Promise<StreamSession>;
  close(): void;
}

export interface DatagramSocket {
  readonly port: number;
  readonly link: LinkType;
  sendTo(node: NodeId, port: number, data: Uint8Array): void;
  close(): void;
}

export type DatagramHandler = (srcNode: NodeId, srcPort: number, data: Uint8Array) => void;

export interface SessionService {
  listen(port: number, link: LinkType, backlog: number): Listener;
  connect(node: NodeId, port: number, link: LinkType): Promise<StreamSession>;
  openDatagram(port: number, link: LinkType, onDatagram: DatagramHandler): DatagramSocket;
  sessions(): SessionInfo[];
  /** Closes every session and listener (SIGTERM); resolves when the peers have been told. */
  shutdown(): Promise<void>;
}

/** How datagrams to other nodes leave (the forwarding plane); returns false if there is no route. */
export interface DatagramTransport {
  sendDatagram(
    srcPort: number,
    dst: NodeId,
    dstPort: number,
    link: LinkType,
    data: Uint8Array,
  ): { ok: true } | { ok: false; code: string; message: string };
}

/** Ports in use, one namespace per kind, with Spines' ephemeral range 40000-60000. */
export class PortTable<T> {
  readonly #used = new Map<number, T>();
  #next = EPHEMERAL_PORT_MIN;

  get size(): number {
    return this.#used.size;
  }

  get(port: number): T | undefined {
    return this.#used.get(port);
  }

  /** Takes `port`, or an ephemeral port when 0; throws SessionError(ERR_PORT_IN_USE). */
  take(port: number, value: T): number {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      throw new SessionError(ClientErrorCode.BadArgument, `port ${port} is outside 0..65535`);
    }
    if (port === 0) {
      const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
      for (let i = 0; i < span; i++) {
        const p = this.#next;
        this.#next = p >= EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1;
        if (!this.#used.has(p)) {
          this.#used.set(p, value);
          return p;
        }
      }
      throw new SessionError(ClientErrorCode.Limit, "no free ephemeral port");
    }
    if (this.#used.has(port)) throw new SessionError(ClientErrorCode.PortInUse, `port ${port} is in use`);
    this.#used.set(port, value);
    return port;
  }

  release(port: number, value: T): void {
    if (this.#used.get(port) === value) this.#used.delete(port);
  }
}

const MAX_PENDING_BYTES = 1 << 20;

/** One end of a same-node session: bytes written on one end are delivered to the other. */
class LocalStream implements StreamSession {
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  peer: LocalStream | undefined;
  #sink: StreamSink | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #pendingEnd = false;
  #pendingClose: [ClosedReason, string, string] | undefined;
  #writeShut = false;
  #readEnded = false;
  #gone = false;
  #bytesIn = 0;
  #bytesOut = 0;
  #writableWaiters: (() => void)[] = [];
  readonly #onGone: (s: LocalStream) => void;

  constructor(
    localPort: number,
    remoteNode: NodeId,
    remotePort: number,
    link: LinkType,
    onGone: (s: LocalStream) => void,
  ) {
    this.localPort = localPort;
    this.remoteNode = remoteNode;
    this.remotePort = remotePort;
    this.link = link;
    this.#onGone = onGone;
  }

  attach(sink: StreamSink): void {
    this.#sink = sink;
    const pending = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    for (const b of pending) sink.data(b);
    if (this.#pendingEnd) sink.end();
    if (this.#pendingClose) sink.closed(...this.#pendingClose);
    const peer = this.peer;
    if (peer !== undefined) peer.#wakeWriters();
  }

  get #accepting(): boolean {
    return this.#sink === undefined ? this.#pendingBytes < MAX_PENDING_BYTES : this.#sink.writable;
  }

  /** Delivery from the peer. */
  #deliver(bytes: Uint8Array): boolean {
    this.#bytesIn += bytes.length;
    if (this.#sink === undefined) {
      this.#pending.push(bytes);
      this.#pendingBytes += bytes.length;
    } else this.#sink.data(bytes);
    return this.#accepting;
  }

  #deliverEnd(): void {
    this.#readEnded = true;
    if (this.#sink === undefined) this.#pendingEnd = true;
    else this.#sink.end();
    this.#maybeGone();
  }

  #deliverClosed(reason: ClosedReason, code: string, message: string): void {
    if (this.#gone) return;
    this.#gone = true;
    this.peer = undefined;
    if (this.#sink === undefined) this.#pendingClose = [reason, code, message];
    else this.#sink.closed(reason, code, message);
    this.#onGone(this);
  }

  #wakeWriters(): void {
    const ws = this.#writableWaiters;
    this.#writableWaiters = [];
    for (const w of ws) w();
  }

  write(bytes: Uint8Array): boolean {
    if (this.#writeShut || this.#gone)
      throw new SessionError(ClientErrorCode.Closed, "session is closed for writing");
    const peer = this.peer;
    if (peer === undefined) return true;
    this.#bytesOut += bytes.length;
    return peer.#deliver(bytes);
  }

  whenWritable(fn: () => void): void {
    const peer = this.peer;
    if (peer === undefined || peer.#accepting) {
      fn();
      return;
    }
    if (peer.#sink === undefined) peer.#writableWaiters.push(fn);
    else
      peer.#sink.whenWritable(() => {
        fn();
      });
  }

  shutdown(): void {
    if (this.#writeShut || this.#gone) return;
    this.#writeShut = true;
    const peer = this.peer;
    if (peer !== undefined) peer.#deliverEnd();
    this.#maybeGone();
  }

  #maybeGone(): void {
    // Both directions finished: the session ends normally on both sides.
    const peer = this.peer;
    if (this.#writeShut && this.#readEnded && peer !== undefined) {
      this.#deliverClosed(ClosedReason.Closed, "OK", "session closed");
      peer.#deliverClosed(ClosedReason.Closed, "OK", "session closed");
    }
  }

  reset(): void {
    const peer = this.peer;
    this.#deliverClosed(ClosedReason.Aborted, "ERR_RESET", "session reset locally");
    if (peer !== undefined) peer.#deliverClosed(ClosedReason.Reset, "ERR_RESET", "session reset by peer");
  }

  close(): void {
    this.shutdown();
  }

  info(): SessionInfo {
    return {
      localPort: this.localPort,
      remoteNode: this.remoteNode,
      remotePort: this.remotePort,
      link: this.link,
      state: this.#gone
        ? "closed"
        : this.#writeShut
          ? this.#readEnded
            ? "closing"
            : "fin-sent"
          : this.#readEnded
            ? "fin-received"
            : "open",
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
    };
  }
}

class ListenerImpl implements Listener {
  readonly port: number;
  readonly link: LinkType;
  readonly backlog: number;
  readonly queue: StreamSession[] = [];
  readonly waiters: { resolve: (s: StreamSession) => void; reject: (e: Error) => void }[] = [];
  closed = false;
  readonly #onClose: (l: ListenerImpl) => void;

  constructor(port: number, link: LinkType, backlog: number, onClose: (l: ListenerImpl) => void) {
    this.port = port;
    this.link = link;
    this.backlog = backlog;
    this.#onClose = onClose;
  }

  /** Offers an incoming session; false when the backlog is full (the connect is refused). */
  offer(s: StreamSession): boolean {
    const w = this.waiters.shift();
    if (w !== undefined) {
      w.resolve(s);
      return true;
    }
    if (this.queue.length >= this.backlog) return false;
    this.queue.push(s);
    return true;
  }

  accept(): Promise<StreamSession> {
    if (this.closed) return Promise.reject(new SessionError(ClientErrorCode.Closed, "listener is closed"));
    const s = this.queue.shift();
    if (s !== undefined) return Promise.resolve(s);
    if (this.waiters.length >= MAX_BACKLOG) {
      return Promise.reject(new SessionError(ClientErrorCode.Limit, "too many pending accepts"));
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0))
      w.reject(new SessionError(ClientErrorCode.Closed, "listener closed"));
    for (const s of this.queue.splice(0)) s.reset();
    this.#onClose(this);
  }
}

export interface DatagramStats {
  [k: string]: number;
  sent: number;
  delivered: number;
  noPort: number;
  noRoute: number;
}

/**
 * The session service without the end-to-end session core: stream sessions between clients of the
 * same daemon, and datagrams to any node the transport can reach. Connecting a stream to another
 * node is refused with ERR_NOT_SUPPORTED until `remote` (the session core's adapter) is given.
 */
export class LocalSessionService implements SessionService {
  readonly self: NodeId;
  readonly #listeners = new PortTable<ListenerImpl>();
  readonly #streamPorts = new PortTable<LocalStream>();
  readonly #dgramPorts = new PortTable<{ link: LinkType; handler: DatagramHandler }>();
  readonly #streams = new Set<LocalStream>();
  readonly #transport: DatagramTransport | undefined;
  readonly #remote: SessionService | undefined;
  readonly stats: DatagramStats = { sent: 0, delivered: 0, noPort: 0, noRoute: 0 };
  readonly maxSessions: number;

  constructor(
    self: NodeId,
    opts: { transport?: DatagramTransport; remote?: SessionService; maxSessions?: number } = {},
  ) {
    this.self = self;
    this.#transport = opts.transport;
    this.#remote = opts.remote;
    this.maxSessions = opts.maxSessions ?? 65_536;
  }

  listen(port: number, link: LinkType, backlog: number): Listener {
    const l = new ListenerImpl(port, link, Math.max(1, Math.min(backlog, MAX_BACKLOG)), (x) =>
      this.#listeners.release(x.port, x),
    );
    const p = this.#listeners.take(port, l);
    (l as { port: number }).port = p;
    return l;
  }

  async connect(node: NodeId, port: number, link: LinkType): Promise<StreamSession> {
    if (node !== this.self) {
      if (this.#remote !== undefined) return this.#remote.connect(node, port, link);
      throw new SessionError(
        ClientErrorCode.NotSupported,
        `sessions to other nodes (${node}) need the end-to-end session core, which this daemon does not run yet`,
      );
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new SessionError(ClientErrorCode.BadArgument, `port ${port} is outside 1..65535`);
    }
    const l = this.#listeners.get(port);
    if (l === undefined || l.closed)
      throw new SessionError(ClientErrorCode.Refused, `no listener on port ${port}`);
    if (this.#streams.size + 2 > this.maxSessions)
      throw new SessionError(ClientErrorCode.Limit, "too many sessions");
    const gone = (s: LocalStream) => {
      this.#streams.delete(s);
      this.#streamPorts.release(s.localPort, s);
    };
    const a = new LocalStream(0, this.self, port, link, gone);
    const aPort = this.#streamPorts.take(0, a);
    (a as { localPort: number }).localPort = aPort;
    const b = new LocalStream(port, this.self, aPort, link, gone);
    a.peer = b;
    b.peer = a;
    if (!l.offer(b)) {
      this.#streamPorts.release(aPort, a);
      throw new SessionError(ClientErrorCode.Refused, `listener on port ${port} has a full backlog`);
    }
    this.#streams.add(a);
    this.#streams.add(b);
    return a;
  }

  openDatagram(port: number, link: LinkType, onDatagram: DatagramHandler): DatagramSocket {
    const entry = { link, handler: onDatagram };
    const p = this.#dgramPorts.take(port, entry);
    let open = true;
    return {
      port: p,
      link,
      sendTo: (node, dstPort, data) => {
        if (!open) throw new SessionError(ClientErrorCode.Closed, "datagram socket is closed");
        if (!Number.isInteger(dstPort) || dstPort < 1 || dstPort > 65535) {
          throw new SessionError(ClientErrorCode.BadArgument, `port ${dstPort} is outside 1..65535`);
        }
        this.stats.sent++;
        if (node === this.self) {
          this.deliverDatagram(this.self, p, dstPort, data);
          return;
        }
        if (this.#transport === undefined) {
          this.stats.noRoute++;
          throw new SessionError(ClientErrorCode.Unreachable, `no route to node ${node}`);
        }
        const r = this.#transport.sendDatagram(p, node, dstPort, link, data);
        if (!r.ok) {
          this.stats.noRoute++;
          throw new SessionError(r.code, r.message);
        }
      },
      close: () => {
        open = false;
        this.#dgramPorts.release(p, entry);
      },
    };
  }

  /** A datagram arrived for this node (from the network or a local client). */
  deliverDatagram(srcNode: NodeId, srcPort: number, dstPort: number, data: Uint8Array): boolean {
    const e = this.#dgramPorts.get(dstPort);
    if (e === undefined) {
      this.stats.noPort++;
      return false;
    }
    this.stats.delivered++;
    e.handler(srcNode, srcPort, data);
    return true;
  }

  sessions(): SessionInfo[] {
    const local = [...this.#streams].map((s) => s.info());
    return this.#remote ? [...local, ...this.#remote.sessions()] : local;
  }

  async shutdown(): Promise<void> {
    for (const s of [...this.#streams]) s.close();
    for (const s of [...this.#streams]) s.reset();
    await this.#remote?.shutdown();
  }

  /** Listener lookup for a remote session adapter (incoming sessions from other nodes). */
  listenerFor(port: number): { offer(s: StreamSession): boolean } | undefined {
    const l = this.#listeners.get(port);
    return l === undefined || l.closed ? undefined : l;
  }
}
