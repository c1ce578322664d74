/**
 * A small client library for spines-node (protocol: docs/client-protocol.md).
 *
 * ```ts
 * const c = await SpinesClient.connect({ path: "/tmp/spines-node-8100.sock" });
 * const l = await c.listen(5000);
 * const [s, peer] = await Promise.all([c.connect(c.node, 5000), l.accept()]); // to ourselves
 * peer.on("data", (b) => console.log(String(b)));
 * s.end("hello");
 * ```
 *
 * Streams are Node Duplex streams with half-close. Note that `for await` over a stream destroys
 * it when the loop ends, which aborts the sending side if it is still open: read with `data`
 * and `end` events when you still write after reading.
 * ```
 */
import { EventEmitter } from "node:events";
import { connect as netConnect, type Socket } from "node:net";
import { Duplex } from "node:stream";
import {
  CLIENT_MAGIC,
  CLIENT_PROTOCOL_VERSION,
  ClientErrorCode,
  ClientProtocolError,
  ClosedReason,
  CloseHow,
  FrameBuilder,
  FrameDecoder,
  FrameReader,
  LinkType,
  Op,
} from "./client-protocol.ts";

export { ClientErrorCode, ClientProtocolError, ClosedReason, LinkType } from "./client-protocol.ts";

export type ConnectTarget = { readonly path: string } | { readonly host: string; readonly port: number };

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

/** One session as a Node Duplex stream: write to send, read (or iterate) to receive. */
export class SpinesStream extends Duplex {
  readonly handle: number;
  readonly localPort: number;
  readonly remoteNode: number;
  readonly remotePort: number;
  readonly #client: SpinesClient;
  #gone = false;

  constructor(client: SpinesClient, info: StreamInfo) {
    super({ allowHalfOpen: true });
    this.#client = client;
    this.handle = info.handle;
    this.localPort = info.localPort;
    this.remoteNode = info.remoteNode;
    this.remotePort = info.remotePort;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.#gone) {
      cb(new ClientProtocolError(ClientErrorCode.Closed, "session is closed"));
      return;
    }
    this.#client._sendData(this.handle, chunk, cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    if (this.#gone) {
      cb();
      return;
    }
    this.#client
      ._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.ShutdownWrite))
      .then(
        () => cb(),
        (e: Error) => cb(e),
      );
  }

  override _read(): void {
    this.#client._resumeReading(this);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    if (!this.#gone) {
      this.#gone = true;
      this.#client._forget(this.handle);
      this.#client
        ._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.Reset))
        .catch(() => {});
    }
    cb(err);
  }

  /** Called by the client for daemon events. */
  _onData(data: Uint8Array): boolean {
    return this.push(data);
  }

  _onEnd(): void {
    this.push(null);
  }

  _onClosed(reason: number, code: string, message: string): void {
    this.#gone = true;
    if (reason === ClosedReason.Closed) {
      if (!this.readableEnded) this.push(null);
      return;
    }
    this.destroy(new ClientProtocolError(code, message));
  }
}

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
    return this.#client._adopt({ handle, localPort, remoteNode, remotePort });
  }

  async close(): Promise<void> {
    await this.#client._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.Close));
  }
}

export interface DatagramSource {
  readonly node: number;
  readonly port: number;
}

/** A datagram socket: `send(node, port, data)`; emits `message` (data, { node, port }). */
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

  send(node: number, port: number, data: Uint8Array): void {
    this.#client._write(
      new FrameBuilder(Op.SendTo, 10 + data.length).u32(this.handle).u32(node).u16(port).bytes(data).finish(),
    );
  }

  async close(): Promise<void> {
    this.#client._forget(this.handle);
    await this.#client._request(new FrameBuilder(Op.Close), (b) => b.u32(this.handle).u8(CloseHow.Close));
  }
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

  private constructor(sock: Socket) {
    super();
    this.#sock = sock;
    sock.on("data", (chunk: Buffer) => this.#onData(chunk));
    sock.on("error", (e) => this.#fatal(e));
    sock.on("close", () =>
      this.#fatal(new ClientProtocolError(ClientErrorCode.Closed, "connection to the daemon closed")),
    );
  }

  static connect(target: ConnectTarget): Promise<SpinesClient> {
    return new Promise((resolve, reject) => {
      const sock = "path" in target ? netConnect(target.path) : netConnect(target.port, target.host);
      sock.once("error", reject);
      sock.once("connect", () => {
        sock.off("error", reject);
        sock.setNoDelay?.(true);
        const c = new SpinesClient(sock);
        c.#hello = {
          resolve: (r) => {
            r.u8();
            c.node = r.u32();
            c.maxFrameBytes = r.u32();
            resolve(c);
          },
          reject,
        };
        sock.write(new FrameBuilder(Op.Hello).u32(CLIENT_MAGIC).u8(CLIENT_PROTOCOL_VERSION).finish());
      });
    });
  }

  listen(port = 0, opts: { link?: LinkType; backlog?: number } = {}): Promise<SpinesListener> {
    return this._request(new FrameBuilder(Op.Listen), (b) =>
      b
        .u16(port)
        .u8(opts.link ?? LinkType.Reliable)
        .u16(opts.backlog ?? 16),
    ).then((r) => {
      const h = r.u32();
      return new SpinesListener(this, h, r.u16());
    });
  }

  async connect(node: number, port: number, opts: { link?: LinkType } = {}): Promise<SpinesStream> {
    const r = await this._request(new FrameBuilder(Op.Connect), (b) =>
      b
        .u32(node)
        .u16(port)
        .u8(opts.link ?? LinkType.Reliable),
    );
    const handle = r.u32();
    const localPort = r.u16();
    return this._adopt({ handle, localPort, remoteNode: node, remotePort: port });
  }

  async openDatagram(port = 0, opts: { link?: LinkType } = {}): Promise<SpinesDatagramSocket> {
    const r = await this._request(new FrameBuilder(Op.OpenDatagram), (b) =>
      b.u16(port).u8(opts.link ?? LinkType.BestEffort),
    );
    const h = r.u32();
    const d = new SpinesDatagramSocket(this, h, r.u16());
    this.#dgrams.set(h, d);
    return d;
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

  async ping(): Promise<void> {
    await this._request(new FrameBuilder(Op.Ping), (b) => b);
  }

  /** Closes the connection; the daemon closes every session and socket this client had. */
  close(): void {
    this.#closing = true;
    this.#sock.end();
  }

  /** @internal */
  _adopt(info: StreamInfo): SpinesStream {
    const s = new SpinesStream(this, info);
    this.#streams.set(info.handle, s);
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
      cb?.(new ClientProtocolError(ClientErrorCode.Closed, "connection to the daemon closed"));
      return false;
    }
    return this.#sock.write(frame, cb);
  }

  /** @internal Sends stream data in frames that fit the daemon's limit; calls back once written. */
  _sendData(handle: number, data: Uint8Array, cb: (e?: Error | null) => void): void {
    const max = Math.max(1024, this.maxFrameBytes - 5);
    let ok = true;
    for (let off = 0; off < data.length; off += max) {
      const part = data.subarray(off, Math.min(data.length, off + max));
      ok = this._write(new FrameBuilder(Op.Send, 4 + part.length).u32(handle).bytes(part).finish());
    }
    if (ok || this.#closed)
      cb(this.#closed ? new ClientProtocolError(ClientErrorCode.Closed, "closed") : null);
    else this.#sock.once("drain", () => cb());
  }

  /** @internal */
  _request(b: FrameBuilder, fill: (b: FrameBuilder) => FrameBuilder): Promise<FrameReader> {
    if (this.#closed)
      return Promise.reject(
        new ClientProtocolError(ClientErrorCode.Closed, "connection to the daemon closed"),
      );
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
    if (this.#paused.delete(s) && this.#paused.size === 0) this.#sock.resume();
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
    for (const f of frames) this.#onFrame(f);
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
        this.#dgrams.get(h)?.emit("message", r.rest(), { node, port } satisfies DatagramSource);
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
