/**
 * The client-facing session service: the client protocol's listeners, streams and datagram sockets
 * (services.ts) over the daemon's `OverlayNode`, whose session endpoint serves every client,
 * including sessions between two clients of the same node (looped back by the node). This file only
 * adapts events to promises and sinks and maps error codes; the protocol is `OverlayNode`'s.
 *
 * Flow control end to end: bytes are read from the endpoint only while the client's connection
 * accepts more, so a slow client shrinks the session's receive window; a client's writes beyond the
 * endpoint's send buffer pause that client's connection until the session is writable again.
 */
import { ClientErrorCode, ClosedReason } from "@spines-ts/client/protocol";
import type { OverlayNode } from "@spines-ts/overlay";
import type { NodeId } from "@spines-ts/primitives";
import { SessionErrorCode, type SessionEvent } from "@spines-ts/session";
import type { LinkType } from "@spines-ts/wire";
import {
  type DatagramHandler,
  type DatagramSocket,
  type Listener,
  MAX_BACKLOG,
  SessionError,
  type SessionInfo,
  type SessionService,
  type StreamSession,
  type StreamSink,
} from "./services.ts";

const CODE_MAP: Record<string, string> = {
  [SessionErrorCode.Refused]: ClientErrorCode.Refused,
  [SessionErrorCode.ConnectTimeout]: ClientErrorCode.TimedOut,
  [SessionErrorCode.PeerDead]: ClientErrorCode.TimedOut,
  [SessionErrorCode.PortInUse]: ClientErrorCode.PortInUse,
  [SessionErrorCode.Reset]: "ERR_RESET",
  [SessionErrorCode.DatagramUnreachable]: ClientErrorCode.Unreachable,
  ERR_CAPACITY: ClientErrorCode.Limit,
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
  readonly #svc: ClientSessions;
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
    svc: ClientSessions,
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
    const d = this.#svc.node;
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
      this.#svc.trace?.(false, b);
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
    this.#svc.trace?.(true, bytes);
    if (this.#unsent.length > 0) {
      this.#unsent.push(bytes);
      return false;
    }
    const n = this.#svc.node.write(this.sid, bytes);
    if (n === bytes.length) return true;
    this.#unsent.push(bytes.subarray(n));
    return false;
  }

  /** The endpoint has room again. */
  onWritable(): void {
    const d = this.#svc.node;
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
        this.#svc.node.shutdown(this.sid);
      } catch {
        // already finished
      }
    });
  }

  close(): void {
    if (this.#gone) return;
    this.#afterUnsent(() => {
      try {
        this.#svc.node.close(this.sid);
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
      this.#svc.node.reset(this.sid);
    } catch {
      // already gone
    }
  }

  info(): SessionInfo {
    let state = this.#gone ? "closed" : "open";
    try {
      const i = this.#svc.node.info(this.sid);
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
        transportBlocked: i.transportBlocked ?? 0,
        windowBlocked: i.windowBlocked ?? 0,
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
  readonly #svc: ClientSessions;

  constructor(svc: ClientSessions, port: number, link: LinkType) {
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
          sid = this.#svc.node.accept(this.port);
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

export class ClientSessions implements SessionService {
  readonly node: OverlayNode;
  readonly #streams = new Map<number, CoreStream>();
  readonly #listeners = new Map<number, CoreListener>();
  readonly #dgrams = new Map<number, DatagramHandler>();
  readonly #connecting = new Map<
    number,
    { resolve: (s: StreamSession) => void; reject: (e: Error) => void; stream: CoreStream }
  >();
  readonly stats = {
    sent: 0,
    delivered: 0,
    noPort: 0,
    noRoute: 0,
    datagramFailures: 0,
    /** Datagrams refused with ERR_WOULD_BLOCK: the queue toward the next hop had no room. */
    wouldBlock: 0,
  };
  /** Sees bytes to (`fromClient` false) and from clients while a packet trace runs (daemon.ts). */
  trace: ((fromClient: boolean, data: Uint8Array) => void) | undefined;

  /** Takes over `node`'s session events and writable notifications. */
  constructor(node: OverlayNode) {
    this.node = node;
    node.onEvent = (e) => this.#onEvent(e);
    node.onWritable = () => this.wake();
  }

  cork(): void {
    this.node.cork();
  }

  uncork(): void {
    this.node.uncork();
  }

  /** Wraps a session the endpoint accepted; it rides the link type its initiator chose. */
  adopt(sid: number): CoreStream {
    const i = this.node.info(sid);
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
        this.trace?.(false, e.data);
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

  listen(port: number, link: LinkType, backlog: number): Listener {
    const b = Math.max(1, Math.min(backlog, MAX_BACKLOG, this.node.sessions.core.config.defaultBacklog));
    let p: number;
    try {
      p = this.node.listen(port, b);
    } catch (e) {
      throw clientError(e);
    }
    const l = new CoreListener(this, p, link);
    this.#listeners.set(p, l);
    return l;
  }

  unlisten(l: CoreListener): void {
    if (this.#listeners.get(l.port) === l) this.#listeners.delete(l.port);
    this.node.unlisten(l.port);
  }

  connect(node: NodeId, port: number, link: LinkType): Promise<StreamSession> {
    let sid: number;
    try {
      sid = this.node.connect(node, port, { linkType: link });
    } catch (e) {
      return Promise.reject(clientError(e));
    }
    const i = this.node.info(sid);
    const s = new CoreStream(this, sid, { localPort: i.localPort, remoteNode: node, remotePort: port, link });
    this.#streams.set(sid, s);
    return new Promise((resolve, reject) => this.#connecting.set(sid, { resolve, reject, stream: s }));
  }

  openDatagram(port: number, link: LinkType, onDatagram: DatagramHandler): DatagramSocket {
    let p: number;
    try {
      p = this.node.bind(port);
    } catch (e) {
      throw clientError(e);
    }
    this.#dgrams.set(p, onDatagram);
    let open = true;
    return {
      port: p,
      link,
      sendTo: (node, dstPort, data) => {
        if (!open) throw new SessionError(ClientErrorCode.Closed, "datagram socket is closed");
        if (node !== this.node.id && !this.node.hasRoute(node)) {
          this.stats.noRoute++;
          throw new SessionError(ClientErrorCode.Unreachable, `no route to node ${node}`);
        }
        if (node !== this.node.id) {
          // Accepted means sent: a datagram the local queue cannot take whole is refused now
          // (would-block), never dropped later (issue 10).
          const frag = this.node.sessions.core.config.datagramFragmentBytes;
          const needed = Math.max(1, Math.ceil(data.length / frag));
          if (needed > this.node.localRoom(node, p, dstPort)) {
            this.stats.wouldBlock++;
            throw new SessionError(
              ClientErrorCode.WouldBlock,
              `no room toward node ${node} now (the link is full); datagram not sent`,
            );
          }
        }
        this.stats.sent++;
        this.trace?.(true, data);
        try {
          this.node.sendDatagram({ srcPort: p, dst: node, dstPort, data, linkType: link, reliable: false });
        } catch (e) {
          throw clientError(e);
        }
      },
      close: () => {
        if (!open) return;
        open = false;
        this.#dgrams.delete(p);
        this.node.unbind(p);
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
    this.node.sessions.stop();
  }
}
