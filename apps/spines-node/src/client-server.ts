/**
 * The daemon side of the client protocol: accepts Unix (and optionally localhost TCP) connections,
 * decodes frames, and maps client handles onto the SessionService. Multicast groups, anycast and
 * route queries go to the overlay (`ClientOverlay`); datagram port 7 is an echo service (ping).
 */
import { timingSafeEqual } from "node:crypto";
import { createServer, type Server, type Socket } from "node:net";
import {
  CLIENT_MAGIC,
  CLIENT_PROTOCOL_VERSION,
  ClientErrorCode,
  ClientProtocolError,
  ClosedReason,
  CloseHow,
  closedFrame,
  ECHO_PORT,
  errorFrame,
  FrameBuilder,
  FrameDecoder,
  FrameReader,
  isLinkType,
  LinkType,
  MAX_DATAGRAM_BYTES,
  MAX_ID,
  MAX_ROUTE_HOPS,
  Op,
} from "@spines-ts/client/protocol";
import {
  closeServer,
  destroyAfter,
  listenTcp,
  listenUnix,
  refuse,
  SlowPeerGuard,
} from "@spines-ts/daemon-kit";
import { type Logger, type NodeId, RateLimitedLog } from "@spines-ts/primitives";
import type { DatagramSocket, Listener, SessionService, StreamSession, StreamSink } from "./services.ts";

/**
 * What the client server asks of the overlay beyond sessions: routes (CONNECT fails at once without
 * one; ROUTE), groups (JOIN/LEAVE, reference-counted here), multicast and anycast sends.
 */
export interface ClientOverlay {
  hasRoute(node: NodeId): boolean;
  /** The route from this node, path inclusive of both ends; undefined without one. */
  route(node: NodeId): { readonly path: readonly NodeId[]; readonly cost: number } | undefined;
  join(group: number): void;
  leave(group: number): void;
  /** Sends one datagram to every member of `group` on `port` (this node included if it joined). */
  sendMulticast(srcPort: number, group: number, port: number, link: LinkType, data: Uint8Array): void;
  /** The nearest reachable member of `group` (this node if it is one), or undefined. */
  anycastNearest(group: number): NodeId | undefined;
}

/** Most groups one datagram socket may join. */
export const MAX_GROUPS_PER_SOCKET = 64;

export interface ClientServerOptions {
  readonly self: NodeId;
  readonly service: SessionService;
  /** Groups, routes, anycast; without it those requests are answered ERR_NOT_SUPPORTED. */
  readonly overlay?: ClientOverlay;
  /** Answer datagrams on port 7 with an echo (default true). */
  readonly echo?: boolean;
  readonly log: Logger;
  readonly now: () => number;
  readonly maxClients: number;
  readonly maxFrameBytes: number;
  readonly maxHandlesPerClient: number;
  readonly clientQueueBytes: number;
  /**
   * How long a client paused at `clientQueueBytes` of output has to drain it below half that bound
   * before it is disconnected, in ms (default 10,000).
   */
  readonly clientStallMs?: number;
  /** The token a TCP client must present in HELLO; required when listenTcp is used. */
  readonly tcpToken?: Uint8Array | undefined;
}

/** How long connections get to close politely (refused, shutting down) before they are destroyed. */
export const CLOSE_GRACE_MS = 1000;

export interface ClientServerStats {
  connections: number;
  connectionsTotal: number;
  refused: number;
  protocolErrors: number;
  framesIn: number;
  framesOut: number;
  datagramsDroppedSlowClient: number;
  /** Largest output queue of one client connection seen, in bytes (bounded by clientQueueBytes + one read). */
  peakClientQueueBytes: number;
  /** Datagrams answered by the echo service (port 7). */
  echoed: number;
  /** Times a client's input was paused because it did not read its replies. */
  pausedSlowClient: number;
  /** Clients disconnected for not reading (paused at a full queue and not under half of it within clientStallMs, or 4 times the bound queued). */
  disconnectedSlowClient: number;
  /** TCP HELLOs without the right token. */
  unauthorized: number;
}

type Handle =
  | { kind: "listener"; l: Listener }
  | { kind: "stream"; s: StreamSession }
  | { kind: "dgram"; d: DatagramSocket; groups: Set<number> }
  | { kind: "pending" };

const validLink = isLinkType;

function checkGroup(g: number): void {
  if (g === 0 || g > MAX_ID) {
    throw new ClientProtocolError(ClientErrorCode.BadArgument, `group ${g} is outside 1..${MAX_ID}`);
  }
}

class ClientConnection {
  readonly #sock: Socket;
  readonly #srv: ClientServer;
  readonly #decoder: FrameDecoder;
  readonly #handles = new Map<number, Handle>();
  #nextHandle = 1;
  #hello = false;
  #pauses = 0;
  /** Frames read but not handled yet, from `#next` on (at most one read's worth: the socket is paused meanwhile). */
  #backlog: Uint8Array[] = [];
  #next = 0;
  /** Handling a backlog over several turns (the socket is paused for it). */
  #slicing = false;
  #closed = false;
  readonly #needsToken: boolean;
  readonly #guard: SlowPeerGuard;
  /** Frames not yet handed to the socket: written as one buffer at the end of the event-loop turn. */
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #flushQueued = false;

  constructor(sock: Socket, srv: ClientServer, needsToken: boolean) {
    this.#sock = sock;
    this.#srv = srv;
    this.#needsToken = needsToken;
    this.#decoder = new FrameDecoder(srv.opts.maxFrameBytes);
    this.#guard = new SlowPeerGuard(sock, {
      maxQueueBytes: srv.opts.clientQueueBytes,
      stallMs: srv.opts.clientStallMs ?? 10_000,
      pause: () => this.#pause(),
      resume: () => this.#resume(),
      onPause: () => {
        srv.stats.pausedSlowClient++;
      },
      onDisconnect: (reason) => {
        srv.stats.disconnectedSlowClient++;
        srv.limitReached("client-slow", { reason, queueBytes: sock.writableLength + this.#outBytes });
        this.#out = [];
        this.#outBytes = 0;
      },
    });
    sock.on("data", (chunk: Buffer) => this.#onData(chunk));
    sock.on("error", () => {});
    sock.on("close", () => this.#teardown());
  }

  get writable(): boolean {
    return !this.#closed && this.#sock.writableLength + this.#outBytes < this.#srv.opts.clientQueueBytes;
  }

  /** Calls `fn` once the client accepts more data; never, if the connection closes first. */
  whenWritable(fn: () => void): void {
    if (this.#closed) return;
    if (this.writable) fn();
    else this.#sock.once("drain", () => this.whenWritable(fn));
  }

  write(frame: Uint8Array): void {
    if (this.#closed) return;
    this.#srv.stats.framesOut++;
    this.#queue(frame, undefined);
  }

  /** Queues `a` (and `b` right after it, one frame in two pieces) for the next flush. */
  #queue(a: Uint8Array, b: Uint8Array | undefined): void {
    // Small frames (replies to pipelined requests) are gathered into one write: a socket write
    // costs far more memory than its bytes while the client does not read.
    this.#out.push(a);
    this.#outBytes += a.length;
    if (b !== undefined) {
      this.#out.push(b);
      this.#outBytes += b.length;
    }
    const q = this.#sock.writableLength + this.#outBytes;
    if (q > this.#srv.stats.peakClientQueueBytes) this.#srv.stats.peakClientQueueBytes = q;
    if (this.#outBytes >= 64 * 1024) this.#flush();
    else if (!this.#flushQueued) {
      // Flushed once per event-loop turn, not per task: the frames of every datagram this turn's
      // poll phase read (up to 32 per socket wake-up) leave in one socket write.
      this.#flushQueued = true;
      setImmediate(this.#onFlush);
    }
    this.#guard.check(this.#outBytes);
  }

  readonly #onFlush = (): void => this.#flush();

  /**
   * A DATA frame for handle `h` (what `new FrameBuilder(Op.Data).u32(h).bytes(part)` builds): its
   * 9-byte head and `part` itself are queued, and the flush copies both into the one socket write,
   * so the payload is copied once. `part` must not change before the flush (the session's reads
   * hand over their own copies).
   */
  #writeData(h: number, part: Uint8Array): void {
    if (this.#closed) return;
    const head = new Uint8Array(9);
    const n = 5 + part.length;
    head[0] = n >>> 24;
    head[1] = (n >>> 16) & 0xff;
    head[2] = (n >>> 8) & 0xff;
    head[3] = n & 0xff;
    head[4] = Op.Data;
    head[5] = h >>> 24;
    head[6] = (h >>> 16) & 0xff;
    head[7] = (h >>> 8) & 0xff;
    head[8] = h & 0xff;
    this.#srv.stats.framesOut++;
    this.#queue(head, part);
  }

  #flush(): void {
    this.#flushQueued = false;
    if (this.#sock.destroyed) {
      this.#out = [];
      this.#outBytes = 0;
    }
    if (this.#out.length === 0) return;
    const out = this.#out.length === 1 ? (this.#out[0] as Uint8Array) : Buffer.concat(this.#out);
    this.#out = [];
    this.#outBytes = 0;
    this.#sock.write(out);
    this.#guard.check();
  }

  /** Sends what is queued, then half-closes; destroyed after CLOSE_GRACE_MS whatever the client does. */
  #hangUp(): void {
    this.#flush();
    this.#sock.end();
    destroyAfter(this.#sock, CLOSE_GRACE_MS);
  }

  #pause(): void {
    if (this.#pauses++ === 0) this.#sock.pause();
  }

  #resume(): void {
    if (--this.#pauses === 0 && !this.#closed) this.#sock.resume();
  }

  #onData(chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      // The framing is lost: report and hang up.
      this.#srv.stats.protocolErrors++;
      const err = e as ClientProtocolError;
      this.write(errorFrame(0, err.code ?? ClientErrorCode.BadFrame, err.message));
      this.#hangUp();
      this.#teardown();
      return;
    }
    if (frames.length === 0) return;
    this.#backlog =
      this.#next < this.#backlog.length ? this.#backlog.slice(this.#next).concat(frames) : frames;
    this.#next = 0;
    this.#drain();
  }

  /**
   * Handles the frames read so far, at most {@link FRAMES_PER_TURN} per event-loop turn: a chunk
   * of pipelined requests (a 64 KiB read holds thousands of PINGs) is answered in slices, with the
   * socket paused in between, so the daemon's UDP sockets and timers keep running — handled in one
   * go they stalled it for seconds, long enough for its peers to declare it dead. The stream writes
   * of one slice go out together, in full segments, when it ends (`SessionService.cork`): no host
   * callback per read for it (issue 13).
   */
  #drain(): void {
    const service = this.#srv.opts.service;
    service.cork?.();
    try {
      this.#drainSlice();
    } finally {
      service.uncork?.();
    }
  }

  #drainSlice(): void {
    let n = 0;
    while (this.#next < this.#backlog.length) {
      if (this.#closed) {
        this.#backlog = [];
        this.#next = 0;
        return;
      }
      if (n++ >= FRAMES_PER_TURN) {
        if (!this.#slicing) {
          this.#slicing = true;
          this.#pause();
        }
        setImmediate(() => this.#drain());
        return;
      }
      const f = this.#backlog[this.#next++] as Uint8Array;
      this.#srv.stats.framesIn++;
      this.#onFrame(f);
    }
    this.#backlog = [];
    this.#next = 0;
    if (this.#slicing) {
      this.#slicing = false;
      this.#resume();
    }
  }

  #onFrame(frame: Uint8Array): void {
    const r = new FrameReader(frame);
    let req = 0;
    try {
      const op = r.u8();
      if (!this.#hello) {
        if (op !== Op.Hello) {
          throw new ClientProtocolError(ClientErrorCode.HelloRequired, "the first frame must be HELLO");
        }
        const magic = r.u32();
        const version = r.u8();
        // An optional token follows (required on TCP; docs/security.md).
        const token = r.rest();
        if (magic !== CLIENT_MAGIC)
          throw new ClientProtocolError(ClientErrorCode.BadFrame, "bad HELLO magic");
        if (version !== CLIENT_PROTOCOL_VERSION) {
          throw new ClientProtocolError(
            ClientErrorCode.VersionMismatch,
            `client protocol version ${version} not supported (this daemon speaks ${CLIENT_PROTOCOL_VERSION})`,
          );
        }
        if (this.#needsToken && !this.#srv.tokenOk(token)) {
          this.#srv.stats.unauthorized++;
          this.#srv.limitReached("client-unauthorized", {});
          this.write(
            errorFrame(0, ClientErrorCode.Unauthorized, "a TCP client must present the daemon's token"),
          );
          this.#hangUp();
          this.#teardown();
          return;
        }
        this.#hello = true;
        this.write(
          new FrameBuilder(Op.HelloOk)
            .u8(CLIENT_PROTOCOL_VERSION)
            .u32(this.#srv.opts.self)
            .u32(this.#srv.opts.maxFrameBytes)
            .finish(),
        );
        return;
      }
      switch (op) {
        case Op.Ping: {
          req = r.u32();
          r.end();
          this.#ok(req);
          return;
        }
        case Op.Listen: {
          req = r.u32();
          const port = r.u16();
          const link = r.u8();
          const backlog = r.u16();
          r.end();
          if (!validLink(link))
            throw new ClientProtocolError(ClientErrorCode.BadArgument, `link type ${link} unknown`);
          const h = this.#newHandle();
          const l = this.#srv.opts.service.listen(port, link, backlog === 0 ? 16 : backlog);
          this.#handles.set(h, { kind: "listener", l });
          this.#ok(req, (b) => b.u32(h).u16(l.port));
          return;
        }
        case Op.Accept: {
          req = r.u32();
          const lh = r.u32();
          r.end();
          const h = this.#handles.get(lh);
          if (h?.kind !== "listener")
            throw new ClientProtocolError(ClientErrorCode.BadHandle, `handle ${lh} is not a listener`);
          const reqId = req;
          h.l.accept().then(
            (s) => {
              if (this.#closed) {
                s.reset();
                return;
              }
              let nh: number;
              try {
                nh = this.#newHandle();
              } catch (e) {
                s.reset();
                this.#fail(reqId, e);
                return;
              }
              this.#handles.set(nh, { kind: "stream", s });
              this.#ok(reqId, (b) => b.u32(nh).u32(s.remoteNode).u16(s.remotePort).u16(s.localPort));
              s.attach(this.#sink(nh));
            },
            (e) => this.#fail(reqId, e),
          );
          return;
        }
        case Op.Connect: {
          req = r.u32();
          const node = r.u32();
          const port = r.u16();
          const link = r.u8();
          r.end();
          if (!validLink(link))
            throw new ClientProtocolError(ClientErrorCode.BadArgument, `link type ${link} unknown`);
          if (port === 0)
            throw new ClientProtocolError(ClientErrorCode.BadArgument, "cannot connect to port 0");
          const ov = this.#srv.opts.overlay;
          if (ov !== undefined && node !== this.#srv.opts.self && !ov.hasRoute(node)) {
            // Answer at once, as a datagram to the node would be (no 10 s open timeout).
            throw new ClientProtocolError(ClientErrorCode.Unreachable, `no route to node ${node}`);
          }
          const nh = this.#newHandle();
          this.#handles.set(nh, { kind: "pending" }); // reserved until the connect completes
          const reqId = req;
          this.#srv.opts.service.connect(node, port, link).then(
            (s) => {
              if (this.#closed) {
                s.reset();
                return;
              }
              this.#handles.set(nh, { kind: "stream", s });
              this.#ok(reqId, (b) => b.u32(nh).u16(s.localPort));
              s.attach(this.#sink(nh));
            },
            (e) => {
              this.#handles.delete(nh);
              this.#fail(reqId, e);
            },
          );
          return;
        }
        case Op.OpenDatagram: {
          req = r.u32();
          const port = r.u16();
          const link = r.u8();
          r.end();
          if (!validLink(link))
            throw new ClientProtocolError(ClientErrorCode.BadArgument, `link type ${link} unknown`);
          const h = this.#newHandle();
          const d = this.#srv.opts.service.openDatagram(port, link, (srcNode, srcPort, data) => {
            if (!this.writable) {
              this.#srv.stats.datagramsDroppedSlowClient++;
              return;
            }
            this.write(
              new FrameBuilder(Op.Datagram, 10 + data.length)
                .u32(h)
                .u32(srcNode)
                .u16(srcPort)
                .bytes(data)
                .finish(),
            );
          });
          this.#handles.set(h, { kind: "dgram", d, groups: new Set() });
          this.#ok(req, (b) => b.u32(h).u16(d.port));
          return;
        }
        case Op.Join:
        case Op.Leave: {
          req = r.u32();
          const hid = r.u32();
          const group = r.u32();
          r.end();
          const h = this.#dgram(hid);
          checkGroup(group);
          if (op === Op.Join) {
            if (!h.groups.has(group)) {
              if (h.groups.size >= MAX_GROUPS_PER_SOCKET) {
                throw new ClientProtocolError(
                  ClientErrorCode.Limit,
                  `at most ${MAX_GROUPS_PER_SOCKET} groups per socket`,
                );
              }
              this.#srv.joinGroup(group, this, hid, h.d.port);
              h.groups.add(group);
            }
          } else if (h.groups.delete(group)) this.#srv.leaveGroup(group, this, hid);
          this.#ok(req);
          return;
        }
        case Op.SendToGroup:
        case Op.SendToAnycast: {
          const hid = r.u32();
          const group = r.u32();
          const port = r.u16();
          const data = r.rest();
          const h = this.#dgram(hid);
          checkGroup(group);
          if (port === 0) throw new ClientProtocolError(ClientErrorCode.BadArgument, "cannot send to port 0");
          if (data.length > MAX_DATAGRAM_BYTES) {
            throw new ClientProtocolError(
              ClientErrorCode.TooLarge,
              `datagram of ${data.length} bytes (max ${MAX_DATAGRAM_BYTES})`,
            );
          }
          const ov = this.#srv.overlay();
          if (op === Op.SendToGroup) ov.sendMulticast(h.d.port, group, port, h.d.link, data);
          else {
            const node = ov.anycastNearest(group);
            if (node === undefined) {
              throw new ClientProtocolError(
                ClientErrorCode.Unreachable,
                `no reachable member of anycast group ${group}`,
              );
            }
            h.d.sendTo(node, port, data);
          }
          return;
        }
        case Op.Route: {
          req = r.u32();
          const node = r.u32();
          r.end();
          const ov = this.#srv.overlay();
          const self = this.#srv.opts.self;
          const route = node === self ? { path: [self], cost: 0 } : ov.route(node);
          if (route === undefined)
            throw new ClientProtocolError(ClientErrorCode.Unreachable, `no route to node ${node}`);
          const path = route.path.slice(0, MAX_ROUTE_HOPS);
          const cost = Math.min(0xffffffff, Math.max(0, Math.round(route.cost)));
          this.#ok(req, (b) => {
            b.u32(cost).u8(path.length);
            for (const n of path) b.u32(n);
            return b;
          });
          return;
        }
        case Op.Send: {
          const hid = r.u32();
          const data = r.rest();
          const h = this.#handles.get(hid);
          if (h?.kind !== "stream")
            throw new ClientProtocolError(ClientErrorCode.BadHandle, `handle ${hid} is not a session`);
          if (data.length === 0) return;
          if (!h.s.write(data)) {
            this.#pause();
            h.s.whenWritable(() => this.#resume());
          }
          return;
        }
        case Op.SendTo: {
          const hid = r.u32();
          const node = r.u32();
          const port = r.u16();
          const data = r.rest();
          const h = this.#handles.get(hid);
          if (h?.kind !== "dgram") {
            throw new ClientProtocolError(
              ClientErrorCode.BadHandle,
              `handle ${hid} is not a datagram socket`,
            );
          }
          if (data.length > MAX_DATAGRAM_BYTES) {
            throw new ClientProtocolError(
              ClientErrorCode.TooLarge,
              `datagram of ${data.length} bytes (max ${MAX_DATAGRAM_BYTES})`,
            );
          }
          h.d.sendTo(node, port, data);
          return;
        }
        case Op.Close: {
          req = r.u32();
          const hid = r.u32();
          const how = r.u8();
          r.end();
          const h = this.#handles.get(hid);
          if (h === undefined) throw new ClientProtocolError(ClientErrorCode.BadHandle, `no handle ${hid}`);
          if (how > 2) throw new ClientProtocolError(ClientErrorCode.BadArgument, `close how=${how} unknown`);
          if (h.kind === "stream") {
            if (how === CloseHow.Reset) {
              this.#handles.delete(hid);
              h.s.reset();
            } else h.s.shutdown();
          } else {
            this.#handles.delete(hid);
            if (h.kind === "listener") h.l.close();
            else if (h.kind === "dgram") {
              for (const g of h.groups) this.#srv.leaveGroup(g, this, hid);
              h.d.close();
            }
          }
          this.#ok(req);
          return;
        }
        default:
          throw new ClientProtocolError(ClientErrorCode.UnknownOp, `unknown op 0x${op.toString(16)}`);
      }
    } catch (e) {
      this.#srv.stats.protocolErrors++;
      this.#fail(req, e);
    }
  }

  #dgram(hid: number): Extract<Handle, { kind: "dgram" }> {
    const h = this.#handles.get(hid);
    if (h?.kind !== "dgram") {
      throw new ClientProtocolError(ClientErrorCode.BadHandle, `handle ${hid} is not a datagram socket`);
    }
    return h;
  }

  /** A multicast datagram for a socket of this connection that joined `group`. */
  deliverGroup(hid: number, group: number, src: NodeId, srcPort: number, data: Uint8Array): void {
    if (!this.writable) {
      this.#srv.stats.datagramsDroppedSlowClient++;
      return;
    }
    this.write(
      new FrameBuilder(Op.GroupDatagram, 14 + data.length)
        .u32(hid)
        .u32(group)
        .u32(src)
        .u16(srcPort)
        .bytes(data)
        .finish(),
    );
  }

  #newHandle(): number {
    if (this.#handles.size >= this.#srv.opts.maxHandlesPerClient) {
      throw new ClientProtocolError(
        ClientErrorCode.Limit,
        `at most ${this.#srv.opts.maxHandlesPerClient} handles`,
      );
    }
    while (this.#handles.has(this.#nextHandle) || this.#nextHandle === 0) {
      this.#nextHandle = (this.#nextHandle + 1) >>> 0;
    }
    const h = this.#nextHandle;
    this.#nextHandle = (this.#nextHandle + 1) >>> 0;
    return h;
  }

  #sink(h: number): StreamSink {
    const conn = this;
    return {
      data: (bytes) => {
        // Every frame stays within maxFrameBytes, in both directions.
        const max = this.#srv.opts.maxFrameBytes - 5;
        for (let off = 0; off < bytes.length; off += max) {
          this.#writeData(h, bytes.subarray(off, Math.min(bytes.length, off + max)));
        }
        return this.writable;
      },
      end: () => this.write(new FrameBuilder(Op.End).u32(h).finish()),
      closed: (reason, code, message) => {
        if (this.#handles.get(h)?.kind === "stream") this.#handles.delete(h);
        this.write(closedFrame(h, reason, code, message));
      },
      get writable() {
        return conn.writable;
      },
      whenWritable: (fn) => this.whenWritable(fn),
    };
  }

  #ok(req: number, body?: (b: FrameBuilder) => FrameBuilder): void {
    const b = new FrameBuilder(Op.Ok).u32(req);
    this.write((body ? body(b) : b).finish());
  }

  #fail(req: number, e: unknown): void {
    const code =
      typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "ERR_INTERNAL";
    const message = e instanceof Error ? e.message : String(e);
    if (code === "ERR_INTERNAL") {
      this.#srv.rl.debug(this.#srv.opts.now(), "client-internal", { err: message }, "client request failed");
    }
    this.write(errorFrame(req, code, message));
  }

  /** Destroys the socket at once (the shutdown grace period is over). */
  destroy(): void {
    this.#sock.destroy();
  }

  /** The daemon is going away: tell the client, then hang up. */
  shutdown(): void {
    for (const [h, x] of this.#handles) {
      if (x.kind === "stream")
        this.write(
          closedFrame(h, ClosedReason.Aborted, ClientErrorCode.ShuttingDown, "daemon shutting down"),
        );
    }
    // A client that does not read its end of the connection must not hold the daemon up.
    this.#hangUp();
    this.#teardown();
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#srv.connections.delete(this);
    this.#srv.stats.connections = this.#srv.connections.size;
    for (const [hid, h] of this.#handles) {
      try {
        if (h.kind === "stream") h.s.close();
        else if (h.kind === "listener") h.l.close();
        else if (h.kind === "dgram") {
          for (const g of h.groups) this.#srv.leaveGroup(g, this, hid);
          h.d.close();
        }
      } catch {
        // already closed
      }
    }
    this.#handles.clear();
  }
}

/** Client frames handled per event-loop turn before the rest of a read waits for the next turn. */
export const FRAMES_PER_TURN = 64;

export class ClientServer {
  readonly opts: ClientServerOptions;
  readonly stats: ClientServerStats = {
    connections: 0,
    connectionsTotal: 0,
    refused: 0,
    protocolErrors: 0,
    framesIn: 0,
    framesOut: 0,
    datagramsDroppedSlowClient: 0,
    peakClientQueueBytes: 0,
    echoed: 0,
    pausedSlowClient: 0,
    disconnectedSlowClient: 0,
    unauthorized: 0,
  };
  readonly connections = new Set<ClientConnection>();
  readonly rl: RateLimitedLog;
  readonly #servers: { server: Server; path?: string }[] = [];
  /** Sockets refused at the limit, until they close (destroyed at shutdown). */
  readonly #refused = new Set<Socket>();
  readonly #limitLogged = new Set<string>();

  /** Members by group: the sockets (connection, handle, port) that joined it here. */
  readonly #groups = new Map<number, Map<ClientConnection, Map<number, number>>>();
  #echo: DatagramSocket | undefined;

  constructor(opts: ClientServerOptions) {
    this.opts = opts;
    this.rl = new RateLimitedLog(opts.log, 1000, 5);
    if (opts.echo !== false) {
      try {
        const echo = opts.service.openDatagram(ECHO_PORT, LinkType.BestEffort, (src, srcPort, data) => {
          try {
            echo.sendTo(src, srcPort, data);
            this.stats.echoed++;
          } catch {
            // No route back (or closing): a lost echo, like any lost datagram.
          }
        });
        this.#echo = echo;
      } catch (e) {
        opts.log.warn({ err: String(e) }, "echo service (datagram port 7) not started");
      }
    }
  }

  /** @internal The overlay, or ERR_NOT_SUPPORTED when the server was built without one (tests, embedders). */
  overlay(): ClientOverlay {
    const ov = this.opts.overlay;
    if (ov === undefined) {
      throw new ClientProtocolError(ClientErrorCode.NotSupported, "this daemon has no overlay routing");
    }
    return ov;
  }

  /** @internal */
  joinGroup(group: number, conn: ClientConnection, hid: number, port: number): void {
    const ov = this.overlay();
    let m = this.#groups.get(group);
    if (m === undefined) {
      try {
        ov.join(group);
      } catch (e) {
        const code = (e as { code?: string }).code;
        throw new ClientProtocolError(
          code === "ERR_CAPACITY" ? ClientErrorCode.Limit : ClientErrorCode.BadArgument,
          (e as Error).message,
        );
      }
      m = new Map();
      this.#groups.set(group, m);
    }
    let hs = m.get(conn);
    if (hs === undefined) {
      hs = new Map();
      m.set(conn, hs);
    }
    hs.set(hid, port);
  }

  /** @internal */
  leaveGroup(group: number, conn: ClientConnection, hid: number): void {
    const m = this.#groups.get(group);
    const hs = m?.get(conn);
    if (m === undefined || hs === undefined) return;
    hs.delete(hid);
    if (hs.size === 0) m.delete(conn);
    if (m.size === 0) {
      this.#groups.delete(group);
      try {
        this.opts.overlay?.leave(group);
      } catch {
        // the overlay is stopping
      }
    }
  }

  /** A multicast datagram the overlay delivered here: to every socket on `port` that joined `group`. */
  deliverGroup(src: NodeId, srcPort: number, group: number, port: number, data: Uint8Array): void {
    const m = this.#groups.get(group);
    if (m === undefined) return;
    for (const [conn, hs] of m) {
      for (const [hid, p] of hs) if (p === port) conn.deliverGroup(hid, group, src, srcPort, data);
    }
  }

  /** @internal A bound was reached: logged once per kind (counted by the caller), never fatal. */
  limitReached(kind: string, info: Record<string, unknown>): void {
    if (this.#limitLogged.has(kind)) return;
    this.#limitLogged.add(kind);
    this.opts.log.warn({ kind, ...info }, "client limit reached (logged once; see status counters)");
  }

  /** @internal Constant-time comparison with the TCP token. */
  tokenOk(token: Uint8Array): boolean {
    const want = this.opts.tcpToken;
    if (want === undefined || token.length !== want.length) return false;
    return timingSafeEqual(token, want);
  }

  #server(tcp: boolean): Server {
    const server = createServer((sock) => {
      sock.on("error", () => {});
      if (this.connections.size >= this.opts.maxClients || this.#closing) {
        this.stats.refused++;
        this.limitReached("clients", { maxClients: this.opts.maxClients });
        this.#refused.add(sock);
        sock.once("close", () => this.#refused.delete(sock));
        refuse(
          sock,
          errorFrame(0, ClientErrorCode.Limit, `at most ${this.opts.maxClients} clients`),
          CLOSE_GRACE_MS,
        );
        return;
      }
      this.stats.connectionsTotal++;
      this.opts.log.debug({ clients: this.connections.size + 1 }, "client connected");
      this.connections.add(new ClientConnection(sock, this, tcp));
      this.stats.connections = this.connections.size;
    });
    server.on("error", (e) => this.opts.log.warn({ err: String(e) }, "client listener error"));
    return server;
  }

  async listenUnix(path: string): Promise<void> {
    const server = this.#server(false);
    await listenUnix(server, path, 0o600);
    this.#servers.push({ server, path });
  }

  /** Returns the bound port. */
  async listenTcp(host: string, port: number): Promise<number> {
    if (this.opts.tcpToken === undefined || this.opts.tcpToken.length === 0) {
      throw new ClientProtocolError(ClientErrorCode.Unauthorized, "a TCP client listener needs a token");
    }
    const server = this.#server(true);
    const p = await listenTcp(server, host, port);
    this.#servers.push({ server });
    return p;
  }

  #closing = false;

  /** Tells every client, then closes; whatever is still open after CLOSE_GRACE_MS is destroyed. */
  async close(): Promise<void> {
    this.#closing = true;
    const open = [...this.connections];
    for (const c of open) c.shutdown();
    const grace = setTimeout(() => {
      for (const c of open) c.destroy();
      for (const s of this.#refused) s.destroy();
    }, CLOSE_GRACE_MS);
    grace.unref();
    try {
      this.#echo?.close();
    } catch {
      // already closed
    }
    this.#echo = undefined;
    await Promise.all(this.#servers.map((s) => closeServer(s.server, s.path)));
    clearTimeout(grace);
    this.#servers.length = 0;
  }
}
