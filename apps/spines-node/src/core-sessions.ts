/**
 * The session service backed by `@spines-ts/session`: one SessionEndpoint (run by the
 * `PlaneSessionDriver` of `@spines-ts/overlay`, whose packets go through the overlay plane) serving
 * every client's listeners, streams and datagram sockets, including sessions between two clients of
 * the same node (looped back on a microtask).
 *
 * Flow control end to end: bytes are read from the endpoint only while the client's connection
 * accepts more, so a slow client shrinks the session's receive window; a client's writes beyond the
 * endpoint's send buffer pause that client's connection until the session is writable again.
 */
import { type SessionTransport as OverlaySessionTransport, PlaneSessionDriver } from "@spines-ts/overlay";
import type { Host, NodeId } from "@spines-ts/primitives";
import { type SessionConfig, SessionErrorCode, type SessionEvent } from "@spines-ts/session";
import { ClientErrorCode, ClosedReason, type LinkType } from "./client-protocol.ts";
import {
  type DatagramHandler,
  type DatagramSocket,
  EPHEMERAL_PORT_MAX,
  EPHEMERAL_PORT_MIN,
  type Listener,
  MAX_BACKLOG,
  SessionError,
  type SessionInfo,
  type SessionService,
  type StreamSession,
  type StreamSink,
} from "./sessions.ts";

/** Where the endpoint's packets go: the overlay plane. */
export type SessionTransport = OverlaySessionTransport;

const CODE_MAP: Record<string, string> = {
  [SessionErrorCode.Refused]: ClientErrorCode.Refused,
  [SessionErrorCode.ConnectTimeout]: ClientErrorCode.TimedOut,
  [SessionErrorCode.PeerDead]: ClientErrorCode.TimedOut,
  [SessionErrorCode.PortInUse]: ClientErrorCode.PortInUse,
  [SessionErrorCode.Reset]: "ERR_RESET",
  [SessionErrorCode.DatagramUnreachable]: ClientErrorCode.Unreachable,
};

function clientError(e: unknown): SessionError {
  if (e instanceof SessionError) return e;
  const code = (e as { code?: unknown }).code;
  const message = e instanceof Error ? e.message : String(e);
  if (e instanceof RangeError || e instanceof TypeError)
    return new SessionError(ClientErrorCode.BadArgument, message);
  if (typeof code === "string") return new SessionError(CODE_MAP[code] ?? code, message);
  return new SessionError("ERR_INTERNAL", message);
}

class CoreStream implements StreamSession {
  readonly sid: number;
  readonly localPort: number;
  readonly remoteNode: NodeId;
  readonly remotePort: number;
  readonly link: LinkType;
  readonly #svc: CoreSessionService;
  #sink: StreamSink | undefined;
  #unsent: Uint8Array[] = [];
  #writers: (() => void)[] = [];
  #gone = false;
  #ended = false;
  #endDelivered = false;
  #closed: [ClosedReason, string, string] | undefined;
  #waitingForSink = false;
  bytesIn = 0;
  bytesOut = 0;

  constructor(
    svc: CoreSessionService,
    sid: number,
    info: { localPort: number; remoteNode: NodeId; remotePort: number; link: LinkType },
  ) {
    this.#svc = svc;
    this.sid = sid;
    this.localPort = info.localPort;
    this.remoteNode = info.remoteNode;
    this.remotePort = info.remotePort;
    this.link = info.link;
  }

  attach(sink: StreamSink): void {
    this.#sink = sink;
    this.pull();
  }

  /** Moves readable bytes to the client while it keeps up. */
  pull(): void {
    const sink = this.#sink;
    if (sink === undefined || this.#gone) {
      this.#flushTerminal();
      return;
    }
    const d = this.#svc.driver;
    for (;;) {
      if (!sink.writable) {
        if (!this.#waitingForSink) {
          this.#waitingForSink = true;
          sink.whenWritable(() => {
            this.#waitingForSink = false;
            this.pull();
          });
        }
        return;
      }
      let b: Uint8Array;
      try {
        b = d.read(this.sid, 256 * 1024);
      } catch {
        break;
      }
      if (b.length === 0) break;
      this.bytesIn += b.length;
      sink.data(b);
    }
    this.#flushTerminal();
  }

  #flushTerminal(): void {
    const sink = this.#sink;
    if (sink === undefined) return;
    if (this.#ended && !this.#endDelivered) {
      this.#endDelivered = true;
      sink.end();
    }
    if (this.#closed) {
      const c = this.#closed;
      this.#closed = undefined;
      sink.closed(...c);
    }
  }

  onEnd(): void {
    this.#ended = true;
    this.pull();
  }

  onClosed(reason: ClosedReason, code: string, message: string): void {
    if (this.#gone) return;
    // Drain what is still readable first.
    this.pull();
    this.#gone = true;
    this.#closed = [reason, code, message];
    for (const w of this.#writers.splice(0)) w();
    this.#flushTerminal();
  }

  write(bytes: Uint8Array): boolean {
    if (this.#gone) throw new SessionError(ClientErrorCode.Closed, "session is closed");
    this.bytesOut += bytes.length;
    if (this.#unsent.length > 0) {
      this.#unsent.push(bytes);
      return false;
    }
    const n = this.#svc.driver.write(this.sid, bytes);
    if (n === bytes.length) return true;
    this.#unsent.push(bytes.subarray(n));
    return false;
  }

  /** The endpoint has room again. */
  onWritable(): void {
    const d = this.#svc.driver;
    while (this.#unsent.length > 0 && !this.#gone) {
      const b = this.#unsent[0] as Uint8Array;
      let n: number;
      try {
        n = d.write(this.sid, b);
      } catch {
        this.#unsent = [];
        break;
      }
      if (n < b.length) {
        this.#unsent[0] = b.subarray(n);
        return;
      }
      this.#unsent.shift();
    }
    for (const w of this.#writers.splice(0)) w();
  }

  whenWritable(fn: () => void): void {
    if (this.#unsent.length === 0 || this.#gone) fn();
    else this.#writers.push(fn);
  }

  shutdown(): void {
    if (this.#gone) return;
    this.#afterUnsent(() => {
      try {
        this.#svc.driver.shutdown(this.sid);
      } catch {
        // already finished
      }
    });
  }

  close(): void {
    if (this.#gone) return;
    this.#afterUnsent(() => {
      try {
        this.#svc.driver.close(this.sid);
      } catch {
        // already finished
      }
    });
  }

  #afterUnsent(fn: () => void): void {
    if (this.#unsent.length === 0) fn();
    else this.#writers.push(fn);
  }

  reset(): void {
    if (this.#gone) return;
    try {
      this.#svc.driver.reset(this.sid);
    } catch {
      // already gone
    }
  }

  info(): SessionInfo {
    let state = this.#gone ? "closed" : "open";
    try {
      const i = this.#svc.driver.core.info(this.sid);
      state = i.state;
      return {
        localPort: this.localPort,
        remoteNode: this.remoteNode,
        remotePort: this.remotePort,
        link: this.link,
        state,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
        srttMs: i.srttMs ?? null,
        sendBuffered: i.sendBuffered,
        inFlight: i.inFlight,
        peerWindow: i.peerWindow,
        retransmitted: i.segmentsRetransmitted,
      };
    } catch {
      return {
        localPort: this.localPort,
        remoteNode: this.remoteNode,
        remotePort: this.remotePort,
        link: this.link,
        state,
        bytesIn: this.bytesIn,
        bytesOut: this.bytesOut,
      };
    }
  }
}

class CoreListener implements Listener {
  readonly port: number;
  readonly link: LinkType;
  readonly ready: StreamSession[] = [];
  readonly waiters: { resolve: (s: StreamSession) => void; reject: (e: Error) => void }[] = [];
  closed = false;
  readonly #svc: CoreSessionService;

  constructor(svc: CoreSessionService, port: number, link: LinkType) {
    this.#svc = svc;
    this.port = port;
    this.link = link;
  }

  /** Takes sessions from the endpoint's accept queue while a client waits for one. */
  drain(): void {
    while (this.waiters.length > 0) {
      let s: StreamSession | undefined = this.ready.shift();
      if (s === undefined) {
        let sid: number | undefined;
        try {
          sid = this.#svc.driver.accept(this.port);
        } catch {
          sid = undefined;
        }
        if (sid === undefined) return;
        s = this.#svc.adopt(sid);
      }
      this.waiters.shift()?.resolve(s);
    }
  }

  accept(): Promise<StreamSession> {
    if (this.closed) return Promise.reject(new SessionError(ClientErrorCode.Closed, "listener is closed"));
    if (this.waiters.length >= MAX_BACKLOG) {
      return Promise.reject(new SessionError(ClientErrorCode.Limit, "too many pending accepts"));
    }
    const p = new Promise<StreamSession>((resolve, reject) => this.waiters.push({ resolve, reject }));
    this.drain();
    return p;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.waiters.splice(0))
      w.reject(new SessionError(ClientErrorCode.Closed, "listener closed"));
    this.#svc.unlisten(this);
  }
}

export class CoreSessionService implements SessionService {
  readonly driver: PlaneSessionDriver;
  readonly #streams = new Map<number, CoreStream>();
  readonly #listeners = new Map<number, CoreListener>();
  readonly #dgrams = new Map<number, DatagramHandler>();
  readonly #connecting = new Map<
    number,
    { resolve: (s: StreamSession) => void; reject: (e: Error) => void; stream: CoreStream }
  >();
  #nextEphemeral = EPHEMERAL_PORT_MIN;
  readonly stats = { sent: 0, delivered: 0, noPort: 0, noRoute: 0, datagramFailures: 0 };

  readonly #transport: SessionTransport;

  constructor(host: Host, transport: SessionTransport, incarnation: number, config?: Partial<SessionConfig>) {
    this.#transport = transport;
    // Sessions between two clients of this node loop back on a microtask (no timer tick).
    this.driver = new PlaneSessionDriver(host, transport, {
      incarnation,
      ...(config ? { config } : {}),
      defer: queueMicrotask,
    });
    this.driver.onEvent = (e) => this.#onEvent(e);
  }

  /** A session frame the overlay delivered to this node. */
  deliver(bytes: Uint8Array): void {
    this.driver.deliver(bytes);
  }

  /** Wraps a session the endpoint accepted; it rides the link type its initiator chose. */
  adopt(sid: number): CoreStream {
    const i = this.driver.core.info(sid);
    const s = new CoreStream(this, sid, {
      localPort: i.localPort,
      remoteNode: i.remoteNode,
      remotePort: i.remotePort,
      link: i.linkType as LinkType,
    });
    this.#streams.set(sid, s);
    return s;
  }

  #onEvent(e: SessionEvent): void {
    switch (e.type) {
      case "connected": {
        const c = this.#connecting.get(e.sid);
        this.#connecting.delete(e.sid);
        c?.resolve(c.stream);
        this.#streams.get(e.sid)?.pull();
        return;
      }
      case "incoming":
        this.#listeners.get(e.port)?.drain();
        return;
      case "readable":
        this.#streams.get(e.sid)?.pull();
        return;
      case "writable":
        this.#streams.get(e.sid)?.onWritable();
        return;
      case "end":
        this.#streams.get(e.sid)?.onEnd();
        return;
      case "closed": {
        const err = e.error;
        const c = this.#connecting.get(e.sid);
        if (c) {
          this.#connecting.delete(e.sid);
          this.#streams.delete(e.sid);
          c.reject(
            clientError(err ?? new SessionError(ClientErrorCode.Closed, "session closed before it opened")),
          );
          return;
        }
        const s = this.#streams.get(e.sid);
        this.#streams.delete(e.sid);
        if (s === undefined) return;
        if (err === undefined) s.onClosed(ClosedReason.Closed, "OK", "session closed");
        else {
          const code = err.code;
          const reason =
            code === SessionErrorCode.Reset
              ? ClosedReason.Reset
              : code === SessionErrorCode.PeerDead || code === SessionErrorCode.ConnectTimeout
                ? ClosedReason.TimedOut
                : code === SessionErrorCode.Refused
                  ? ClosedReason.Unreachable
                  : ClosedReason.Aborted;
          s.onClosed(reason, CODE_MAP[code] ?? code, err.message);
        }
        return;
      }
      case "datagram": {
        const h = this.#dgrams.get(e.port);
        if (h === undefined) {
          this.stats.noPort++;
          return;
        }
        this.stats.delivered++;
        h(e.src, e.srcPort, e.data);
        return;
      }
      case "datagramFailed":
        this.stats.datagramFailures++;
        return;
      default:
        return;
    }
  }

  /** Link or route changes: blocked senders may go on. */
  wake(): void {
    for (const s of this.#streams.values()) s.onWritable();
  }

  #pickPort(tryIt: (p: number) => void): number {
    const span = EPHEMERAL_PORT_MAX - EPHEMERAL_PORT_MIN + 1;
    for (let i = 0; i < span; i++) {
      const p = this.#nextEphemeral;
      this.#nextEphemeral = p >= EPHEMERAL_PORT_MAX ? EPHEMERAL_PORT_MIN : p + 1;
      try {
        tryIt(p);
        return p;
      } catch (e) {
        if ((e as { code?: string }).code !== SessionErrorCode.PortInUse) throw clientError(e);
      }
    }
    throw new SessionError(ClientErrorCode.Limit, "no free ephemeral port");
  }

  listen(port: number, link: LinkType, backlog: number): Listener {
    const b = Math.max(1, Math.min(backlog, this.driver.core.config.defaultBacklog));
    let p = port;
    if (port === 0) p = this.#pickPort((x) => this.driver.listen(x, b));
    else {
      try {
        this.driver.listen(port, b);
      } catch (e) {
        throw clientError(e);
      }
    }
    const l = new CoreListener(this, p, link);
    this.#listeners.set(p, l);
    return l;
  }

  unlisten(l: CoreListener): void {
    if (this.#listeners.get(l.port) === l) this.#listeners.delete(l.port);
    this.driver.core.unlisten(this.driver.now, l.port);
    this.driver.pump();
  }

  connect(node: NodeId, port: number, link: LinkType): Promise<StreamSession> {
    let sid: number;
    try {
      sid = this.driver.connect(node, port, { linkType: link });
    } catch (e) {
      return Promise.reject(clientError(e));
    }
    const i = this.driver.core.info(sid);
    const s = new CoreStream(this, sid, { localPort: i.localPort, remoteNode: node, remotePort: port, link });
    this.#streams.set(sid, s);
    return new Promise((resolve, reject) => this.#connecting.set(sid, { resolve, reject, stream: s }));
  }

  openDatagram(port: number, link: LinkType, onDatagram: DatagramHandler): DatagramSocket {
    let p = port;
    if (port === 0) p = this.#pickPort((x) => this.driver.bind(x));
    else {
      try {
        this.driver.bind(port);
      } catch (e) {
        throw clientError(e);
      }
    }
    this.#dgrams.set(p, onDatagram);
    let open = true;
    return {
      port: p,
      link,
      sendTo: (node, dstPort, data) => {
        if (!open) throw new SessionError(ClientErrorCode.Closed, "datagram socket is closed");
        if (node !== this.driver.host.id && !this.#transport.hasRoute(node)) {
          this.stats.noRoute++;
          throw new SessionError(ClientErrorCode.Unreachable, `no route to node ${node}`);
        }
        this.stats.sent++;
        try {
          this.driver.sendDatagram({ srcPort: p, dst: node, dstPort, data, linkType: link, reliable: false });
        } catch (e) {
          throw clientError(e);
        }
      },
      close: () => {
        if (!open) return;
        open = false;
        this.#dgrams.delete(p);
        this.driver.core.unbind(p);
      },
    };
  }

  sessions(): SessionInfo[] {
    return [...this.#streams.values()].map((s) => s.info());
  }

  /** Closes every session gracefully and waits (at most `graceMs`) for them to finish. */
  async shutdown(graceMs = 1000): Promise<void> {
    for (const l of [...this.#listeners.values()]) l.close();
    for (const s of [...this.#streams.values()]) s.close();
    const t0 = Date.now();
    while (this.#streams.size > 0 && Date.now() - t0 < graceMs) {
      await new Promise((r) => setTimeout(r, 10));
    }
    for (const s of [...this.#streams.values()]) s.reset();
    this.driver.stop();
  }
}
