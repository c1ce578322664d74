/**
 * The connection to a spines-node daemon (protocol: docs/client-protocol.md) and the handles it
 * multiplexes: stream sessions (`SpinesStream`, a Node Duplex), listeners and datagram sockets.
 * `net.ts` and `dgram.ts` build the Node-style API (`connect`, `createServer`, `createSocket`) on it.
 */
import { EventEmitter } from "node:events";
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import {
  CLIENT_MAGIC,
  CLIENT_PROTOCOL_VERSION,
  ClientErrorCode,
  ClientProtocolError,
  ClosedReason,
  CloseHow,
  checkId,
  checkLink,
  checkPort,
  FrameBuilder,
  FrameDecoder,
  FrameReader,
  LinkType,
  MAX_DATAGRAM_BYTES,
  Op,
} from "./protocol.ts";

/** Where the daemon's client interface is: its Unix socket, or a loopback TCP address. */
export type DaemonTarget = { readonly path: string } | { readonly host: string; readonly port: number };

/** The daemon's default client socket for UDP port `port` (spines-node's `--client-socket` default). */
export function defaultDaemonPath(port = 8100): string {
  return join(tmpdir(), `spines-node-${port}.sock`);
}

/**
 * The target used when none is given: `$SPINES_NODE_SOCKET` if set, else the default socket of a
 * daemon on UDP port 8100.
 */
export function defaultDaemon(): DaemonTarget {
  const env = process.env.SPINES_NODE_SOCKET;
  return { path: env !== undefined && env !== "" ? env : defaultDaemonPath() };
}

/** The error an aborted operation fails with (as Node's: name AbortError, code ABORT_ERR). */
export class SpinesAbortError extends ClientProtocolError {
  constructor(reason?: unknown) {
    super(ClientErrorCode.Aborted, "the operation was aborted", { cause: reason });
    this.name = "AbortError";
  }
}

interface Pending {
  resolve: (r: FrameReader) => void;
  reject: (e: Error) => void;
}

export interface StreamInfo {
  readonly handle: number;
  readonly localPort: number;
  readonly remoteNode: number;
  readonly remotePort: number;
}

const closedError = () => new ClientProtocolError(ClientErrorCode.Closed, "connection to the daemon closed");

/**
 * One session as a Node Duplex stream: write to send, read to receive, `end()` to half-close.
 * Back-pressure runs end to end: `write()` returns false while the daemon's session send buffer is
 * full, and a reader that stops reading stops the daemon reading the session (the sender slows).
 * A stream made by `connect()` exists before its session opens: writes wait for `'connect'`.
 *
 * Note that `for await` over a stream destroys it when the loop ends, which aborts the sending side
 * if it is still open: read with `'data'` and `'end'` events when you still write after reading.
 */
export class SpinesStream extends Duplex {
  handle = 0;
  localPort = 0;
  remoteNode = 0;
  remotePort = 0;
  /** True once the session is open (always true for accepted sessions). */
  connected = false;
  #client: SpinesClient | undefined;
  #gone = false;
  #waiting: (() => void)[] = [];
  /** Called when this stream is destroyed (the owner of a dedicated daemon connection closes it). */
  onDestroy: (() => void) | undefined;

  constructor(client?: SpinesClient, info?: StreamInfo) {
    super({ allowHalfOpen: true });
    if (client !== undefined && info !== undefined) this._attach(client, info);
  }

  /** @internal The session opened: bind to its handle and let waiting writes go. */
  _attach(client: SpinesClient, info: StreamInfo): void {
    this.#client = client;
    this.handle = info.handle;
    this.localPort = info.localPort;
    this.remoteNode = info.remoteNode;
    this.remotePort = info.remotePort;
    this.connected = true;
    for (const w of this.#waiting.splice(0)) w();
  }

  #whenAttached(fn: () => void): void {
    if (this.#client !== undefined || this.#gone) fn();
    else this.#waiting.push(fn);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.#whenAttached(() => {
      const c = this.#client;
      if (this.#gone || c === undefined) {
        cb(new ClientProtocolError(ClientErrorCode.Closed, "session is closed"));
        return;
      }
      c._sendData(this.handle, chunk, cb);
    });
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.#whenAttached(() => {
      const c = this.#client;
      if (this.#gone || c === undefined) {
        cb();
        return;
      }
      c._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.ShutdownWrite)).then(
        () => cb(),
        (e: Error) => cb(e),
      );
    });
  }

  override _read(): void {
    this.#client?._resumeReading(this);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    const c = this.#client;
    if (!this.#gone) {
      this.#gone = true;
      if (c !== undefined) {
        c._forget(this.handle);
        c._resumeReading(this);
        // Both directions ended cleanly (the auto-destroy after end() and 'end'): a graceful close,
        // so data still on its way to the peer is delivered; anything else aborts the session.
        const how =
          err === null && this.writableFinished && this.readableEnded ? CloseHow.Close : CloseHow.Reset;
        c._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(how)).catch(() => {});
      }
    }
    for (const w of this.#waiting.splice(0)) w();
    this.onDestroy?.();
    cb(err);
  }

  /** @internal */
  _onData(data: Uint8Array): boolean {
    return this.push(data);
  }

  /** @internal */
  _onEnd(): void {
    this.push(null);
  }

  /** @internal */
  _onClosed(reason: number, code: string, message: string): void {
    this.#gone = true;
    if (reason === ClosedReason.Closed) {
      if (!this.readableEnded) this.push(null);
      // Both directions are done: release the stream once the reader saw the end.
      if (this.writableFinished || this.writableEnded) {
        if (this.readableEnded) this.destroy();
        else this.once("end", () => this.destroy());
      }
      return;
    }
    this.destroy(new ClientProtocolError(code, message));
  }
}

/** A listening port; `accept()` resolves with the next session. */
export class SpinesListener {
  readonly handle: number;
  readonly port: number;
  readonly #client: SpinesClient;

  constructor(client: SpinesClient, handle: number, port: number) {
    this.#client = client;
    this.handle = handle;
    this.port = port;
  }

  async accept(): Promise<SpinesStream> {
    const r = await this.#client._request(new FrameBuilder(Op.Accept), (b) => b.u32(this.handle));
    const handle = r.u32();
    const remoteNode = r.u32();
    const remotePort = r.u16();
    const localPort = r.u16();
    return this.#client._adopt(new SpinesStream(), { handle, localPort, remoteNode, remotePort });
  }

  async close(): Promise<void> {
    await this.#client._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.Close));
  }
}

/** Where a datagram came from; `group` is set when it was sent to a multicast group. */
export interface DatagramSource {
  readonly node: number;
  readonly port: number;
  readonly size: number;
  readonly group?: number;
}

/** @internal */
export function bytesOf(data: Uint8Array | string): Uint8Array {
  if (typeof data === "string") return Buffer.from(data);
  if (!(data instanceof Uint8Array)) throw new TypeError("data must be a Uint8Array or a string");
  return data;
}

/** @internal */
export function checkSize(data: Uint8Array): void {
  if (data.length > MAX_DATAGRAM_BYTES) {
    throw new ClientProtocolError(
      ClientErrorCode.TooLarge,
      `datagram of ${data.length} bytes (max ${MAX_DATAGRAM_BYTES})`,
    );
  }
}

/**
 * A bound datagram socket of a daemon connection. Emits `message` (data: Buffer, source:
 * DatagramSource). Sends are best effort and have no reply; errors the daemon reports later (no
 * route, too large) arrive as the client's `protocolError` events.
 */
export class SpinesDatagramSocket extends EventEmitter {
  readonly handle: number;
  readonly port: number;
  readonly #client: SpinesClient;

  constructor(client: SpinesClient, handle: number, port: number) {
    super();
    this.#client = client;
    this.handle = handle;
    this.port = port;
  }

  /** Sends one datagram to `port` of `node`. Returns false when the daemon connection is full. */
  send(node: number, port: number, data: Uint8Array | string): boolean {
    return this.#sendTo(Op.SendTo, node, "node", port, data);
  }

  /** Sends one datagram to every member of `group` (on `port`), along the overlay's multicast tree. */
  sendToGroup(group: number, port: number, data: Uint8Array | string): boolean {
    return this.#sendTo(Op.SendToGroup, group, "group", port, data);
  }

  /** Sends one datagram to the nearest member of `group` (anycast). */
  sendAnycast(group: number, port: number, data: Uint8Array | string): boolean {
    return this.#sendTo(Op.SendToAnycast, group, "group", port, data);
  }

  /** The three datagram sends share one frame: handle, target (node or group), port, bytes. */
  #sendTo(op: Op, target: number, what: string, port: number, data: Uint8Array | string): boolean {
    checkId(target, what);
    checkPort(port, "destination port", false);
    const b = bytesOf(data);
    checkSize(b);
    return this.#client._write(
      new FrameBuilder(op, 10 + b.length).u32(this.handle).u32(target).u16(port).bytes(b).finish(),
    );
  }

  /** Joins `group`: datagrams sent to the group on this socket's port are delivered here. */
  async join(group: number): Promise<void> {
    checkId(group, "group");
    await this.#client._request(new FrameBuilder(Op.Join), (b) => b.u32(this.handle).u32(group));
  }

  async leave(group: number): Promise<void> {
    checkId(group, "group");
    await this.#client._request(new FrameBuilder(Op.Leave), (b) => b.u32(this.handle).u32(group));
  }

  async close(): Promise<void> {
    this.#client._forget(this.handle);
    await this.#client._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.Close));
  }
}

/** A route as the daemon's link-state database sees it. */
export interface RouteInfo {
  /** Node ids from the daemon's node to the destination, both included. */
  readonly path: number[];
  /** Total cost under the daemon's routing metric. */
  readonly cost: number;
}

/** The token in the file $SPINES_NODE_TOKEN_FILE names, if set (TCP targets without a `token` option). */
function envToken(): string | undefined {
  const f = process.env.SPINES_NODE_TOKEN_FILE;
  if (f === undefined || f === "") return undefined;
  try {
    return readFileSync(f, "utf8");
  } catch {
    return undefined; // the daemon answers ERR_UNAUTHORIZED, which names the problem
  }
}

export interface ClientConnectOptions {
  /** Aborts connecting to the daemon (the promise rejects with SpinesAbortError). */
  readonly signal?: AbortSignal;
  /**
   * The daemon's client token, sent in HELLO: required over `--client-tcp` (the daemon writes it to
   * `CONTROL.token`, or reads it from `--client-token FILE`); ignored on the Unix socket. A wrong or
   * missing token rejects with ClientProtocolError `ERR_UNAUTHORIZED`. Default for TCP targets: the
   * contents of the file `$SPINES_NODE_TOKEN_FILE` names, if set.
   */
  readonly token?: string | Uint8Array;
}

/**
 * A connection to a spines-node daemon. Events: `protocolError` (ClientProtocolError) for errors
 * the daemon reports outside any request (for example a datagram to an unreachable node), `close`.
 */
export class SpinesClient extends EventEmitter {
  /** The daemon's node id. */
  node = 0;
  maxFrameBytes = 0;
  readonly #sock: Socket;
  readonly #decoder = new FrameDecoder(1 << 24);
  readonly #pending = new Map<number, Pending>();
  readonly #streams = new Map<number, SpinesStream>();
  readonly #dgrams = new Map<number, SpinesDatagramSocket>();
  readonly #paused = new Set<SpinesStream>();
  #nextReq = 1;
  #hello: Pending | undefined;
  #closed = false;
  #closing = false;
  #corked = false;
  readonly #uncork = (): void => {
    this.#corked = false;
    this.#sock.uncork();
  };

  private constructor(sock: Socket) {
    super();
    this.#sock = sock;
    sock.on("data", (chunk: Buffer) => this.#onData(chunk));
    sock.on("error", (e) => this.#fatal(e));
    sock.on("close", () => this.#fatal(closedError()));
  }

  /**
   * Connects to a daemon (default: `defaultDaemon()`) and says HELLO. Rejects with
   * ClientProtocolError `ERR_DAEMON_UNAVAILABLE` (the socket's error as `cause`) when nothing
   * answers there, `ERR_VERSION_MISMATCH` when the daemon speaks another version, or
   * SpinesAbortError when `signal` aborts first.
   */
  static connect(
    target: DaemonTarget = defaultDaemon(),
    opts: ClientConnectOptions = {},
  ): Promise<SpinesClient> {
    const { signal } = opts;
    if (signal?.aborted) return Promise.reject(new SpinesAbortError(signal.reason));
    return new Promise((resolve, reject) => {
      const where = "path" in target ? target.path : `${target.host}:${target.port}`;
      const sock = "path" in target ? netConnect(target.path) : netConnect(target.port, target.host);
      let settled = false;
      const onAbort = () => fail(new SpinesAbortError(signal?.reason));
      const fail = (e: Error) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        sock.destroy();
        reject(e);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const onError = (e: Error) =>
        fail(
          new ClientProtocolError(
            ClientErrorCode.DaemonUnavailable,
            `cannot reach the spines-node daemon at ${where}: ${e.message}`,
            { cause: e },
          ),
        );
      sock.once("error", onError);
      sock.once("connect", () => {
        sock.off("error", onError);
        sock.setNoDelay?.(true);
        const c = new SpinesClient(sock);
        c.#hello = {
          resolve: (r) => {
            r.u8();
            c.node = r.u32();
            c.maxFrameBytes = r.u32();
            if (settled) return;
            settled = true;
            signal?.removeEventListener("abort", onAbort);
            resolve(c);
          },
          reject: fail,
        };
        const hello = new FrameBuilder(Op.Hello).u32(CLIENT_MAGIC).u8(CLIENT_PROTOCOL_VERSION);
        const token = opts.token ?? ("path" in target ? undefined : envToken());
        if (token !== undefined) {
          hello.bytes(typeof token === "string" ? new TextEncoder().encode(token.trim()) : token);
        }
        sock.write(hello.finish());
      });
    });
  }

  /** True once the connection to the daemon is gone. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Listens on `port` (0: an ephemeral port from 40000-60000). */
  async listen(port = 0, opts: { link?: LinkType; backlog?: number } = {}): Promise<SpinesListener> {
    checkPort(port);
    const link = checkLink(opts.link ?? LinkType.Reliable);
    const backlog = opts.backlog ?? 16;
    if (!Number.isInteger(backlog) || backlog < 0 || backlog > 65535) {
      throw new RangeError(`backlog must be an integer in 0..65535, got ${backlog}`);
    }
    const r = await this._request(new FrameBuilder(Op.Listen), (b) => b.u16(port).u8(link).u16(backlog));
    const h = r.u32();
    return new SpinesListener(this, h, r.u16());
  }

  /**
   * Opens a session to `port` of `node`. Rejects with ClientProtocolError `ERR_REFUSED` (nobody
   * listens), `ERR_UNREACHABLE` (no route to the node), `ERR_TIMED_OUT`, or SpinesAbortError.
   */
  async connect(
    node: number,
    port: number,
    opts: { link?: LinkType; signal?: AbortSignal } = {},
  ): Promise<SpinesStream> {
    const s = new SpinesStream();
    await this._connectInto(s, node, port, opts);
    return s;
  }

  /** @internal Opens a session for an existing (pending) stream. */
  async _connectInto(
    s: SpinesStream,
    node: number,
    port: number,
    opts: { link?: LinkType; signal?: AbortSignal },
  ): Promise<void> {
    checkId(node, "node");
    checkPort(port, "port", false);
    const link = checkLink(opts.link ?? LinkType.Reliable);
    const { signal } = opts;
    if (signal?.aborted) throw new SpinesAbortError(signal.reason);
    const req = this._request(new FrameBuilder(Op.Connect), (b) => b.u32(node).u16(port).u8(link));
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new SpinesAbortError(signal?.reason));
      signal?.addEventListener("abort", onAbort, { once: true });
    });
    let r: FrameReader;
    try {
      r = await (signal ? Promise.race([req, aborted]) : req);
    } catch (e) {
      if (e instanceof SpinesAbortError) {
        // The session may still open: reset it when the answer comes.
        req.then(
          (late) => {
            const h = late.u32();
            this._request(new FrameBuilder(Op.Close), (b) => b.u32(h).u8(CloseHow.Reset)).catch(() => {});
          },
          () => {},
        );
      }
      throw e;
    } finally {
      if (onAbort) signal?.removeEventListener("abort", onAbort);
    }
    const handle = r.u32();
    const localPort = r.u16();
    this._adopt(s, { handle, localPort, remoteNode: node, remotePort: port });
  }

  /** Binds a datagram socket on `port` (0: an ephemeral port). */
  async openDatagram(port = 0, opts: { link?: LinkType } = {}): Promise<SpinesDatagramSocket> {
    checkPort(port);
    const link = checkLink(opts.link ?? LinkType.BestEffort);
    const r = await this._request(new FrameBuilder(Op.OpenDatagram), (b) => b.u16(port).u8(link));
    const h = r.u32();
    const d = new SpinesDatagramSocket(this, h, r.u16());
    this.#dgrams.set(h, d);
    return d;
  }

  /** The daemon's route to `node` (its link-state view); rejects `ERR_UNREACHABLE` without one. */
  async route(node: number): Promise<RouteInfo> {
    checkId(node, "node");
    const r = await this._request(new FrameBuilder(Op.Route), (b) => b.u32(node));
    const cost = r.u32();
    const n = r.u8();
    const path: number[] = [];
    for (let i = 0; i < n; i++) path.push(r.u32());
    return { path, cost };
  }

  /** Resolves when the connection to the daemon has room for more writes. */
  drained(): Promise<void> {
    if (this.#closed || !this.#sock.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#sock.off("drain", done);
        this.off("close", done);
        resolve();
      };
      this.#sock.once("drain", done);
      this.once("close", done);
    });
  }

  /** A round trip to the local daemon. */
  async ping(): Promise<void> {
    await this._request(new FrameBuilder(Op.Ping), (b) => b);
  }

  /** Closes the connection; the daemon closes every session and socket this client had. */
  close(): void {
    this.#closing = true;
    this.#sock.end();
  }

  /** Closes at once, without waiting for queued writes. */
  destroy(): void {
    this.#closing = true;
    this.#sock.destroy();
  }

  /** @internal */
  _adopt(s: SpinesStream, info: StreamInfo): SpinesStream {
    if (this.#closed) {
      s.destroy(closedError());
      return s;
    }
    this.#streams.set(info.handle, s);
    s._attach(this, info);
    return s;
  }

  /** @internal */
  _forget(handle: number): void {
    this.#streams.delete(handle);
    this.#dgrams.delete(handle);
  }

  /** @internal */
  _write(frame: Uint8Array, cb?: (e?: Error | null) => void): boolean {
    if (this.#closed) {
      cb?.(closedError());
      return false;
    }
    return this.#sock.write(frame, cb);
  }

  /** @internal Sends stream data in frames that fit the daemon's limit; calls back once written. */
  _sendData(handle: number, data: Uint8Array, cb: (e?: Error | null) => void): void {
    const max = Math.max(1024, this.maxFrameBytes - 5);
    let ok = true;
    // Stream writes of one tick leave in one writev: the socket is corked until the next tick.
    if (!this.#corked && !this.#closed) {
      this.#corked = true;
      this.#sock.cork();
      process.nextTick(this.#uncork);
    }
    for (let off = 0; off < data.length; off += max) {
      const part = data.subarray(off, Math.min(data.length, off + max));
      ok = this._write(new FrameBuilder(Op.Send, 4 + part.length).u32(handle).bytes(part).finish());
    }
    if (this.#closed) cb(closedError());
    else if (ok) cb(null);
    else {
      const done = () => {
        this.#sock.off("drain", done);
        this.off("close", done);
        cb(this.#closed ? closedError() : null);
      };
      this.#sock.once("drain", done);
      this.once("close", done);
    }
  }

  /** @internal */
  _request(b: FrameBuilder, fill: (b: FrameBuilder) => FrameBuilder): Promise<FrameReader> {
    if (this.#closed) return Promise.reject(closedError());
    const req = this.#nextReq;
    this.#nextReq = this.#nextReq >= 0xffffffff ? 1 : this.#nextReq + 1;
    const frame = fill(b.u32(req)).finish();
    return new Promise((resolve, reject) => {
      this.#pending.set(req, { resolve, reject });
      this._write(frame);
    });
  }

  /** @internal */
  _resumeReading(s: SpinesStream): void {
    if (this.#paused.delete(s) && this.#paused.size === 0 && !this.#closed) this.#sock.resume();
  }

  #onData(chunk: Buffer): void {
    let frames: Uint8Array[];
    try {
      frames = this.#decoder.push(chunk);
    } catch (e) {
      this.#fatal(e as Error);
      this.#sock.destroy();
      return;
    }
    for (const f of frames) {
      try {
        this.#onFrame(f);
      } catch (e) {
        // A malformed frame from the daemon: report, keep going (the framing is intact). Anything
        // else was thrown by an application's event handler: let it propagate.
        if (e instanceof ClientProtocolError && e.code === ClientErrorCode.BadFrame)
          this.emit("protocolError", e);
        else throw e;
      }
    }
  }

  #onFrame(f: Uint8Array): void {
    const r = new FrameReader(f);
    const op = r.u8();
    switch (op) {
      case Op.HelloOk: {
        const h = this.#hello;
        this.#hello = undefined;
        h?.resolve(r);
        return;
      }
      case Op.Ok: {
        const req = r.u32();
        const p = this.#pending.get(req);
        this.#pending.delete(req);
        p?.resolve(r);
        return;
      }
      case Op.Error: {
        const req = r.u32();
        const code = r.str8();
        const message = r.text();
        const err = new ClientProtocolError(code, message);
        if (this.#hello) {
          const h = this.#hello;
          this.#hello = undefined;
          h.reject(err);
          return;
        }
        const p = this.#pending.get(req);
        if (p) {
          this.#pending.delete(req);
          p.reject(err);
        } else this.emit("protocolError", err);
        return;
      }
      case Op.Data: {
        const h = r.u32();
        const s = this.#streams.get(h);
        if (s && !s._onData(r.rest()) && !this.#paused.has(s)) {
          if (this.#paused.size === 0) this.#sock.pause();
          this.#paused.add(s);
        }
        return;
      }
      case Op.End: {
        this.#streams.get(r.u32())?._onEnd();
        return;
      }
      case Op.Closed: {
        const h = r.u32();
        const reason = r.u8();
        const code = r.str8();
        const message = r.text();
        const s = this.#streams.get(h);
        this.#streams.delete(h);
        if (s) {
          this._resumeReading(s);
          s._onClosed(reason, code, message);
        }
        return;
      }
      case Op.Datagram: {
        const h = r.u32();
        const node = r.u32();
        const port = r.u16();
        const data = r.rest();
        this.#dgrams.get(h)?.emit("message", Buffer.from(data.buffer, data.byteOffset, data.length), {
          node,
          port,
          size: data.length,
        } satisfies DatagramSource);
        return;
      }
      case Op.GroupDatagram: {
        const h = r.u32();
        const group = r.u32();
        const node = r.u32();
        const port = r.u16();
        const data = r.rest();
        this.#dgrams.get(h)?.emit("message", Buffer.from(data.buffer, data.byteOffset, data.length), {
          node,
          port,
          size: data.length,
          group,
        } satisfies DatagramSource);
        return;
      }
      default:
        this.emit(
          "protocolError",
          new ClientProtocolError(ClientErrorCode.UnknownOp, `unknown op 0x${op.toString(16)}`),
        );
    }
  }

  #fatal(e: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#hello?.reject(e);
    this.#hello = undefined;
    for (const p of this.#pending.values()) p.reject(e);
    this.#pending.clear();
    for (const s of this.#streams.values()) {
      if (this.#closing) s.destroy();
      else s.destroy(e);
    }
    this.#streams.clear();
    this.emit("close");
  }
}
