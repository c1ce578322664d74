/**
 * Datagrams in `node:dgram` idioms: `createSocket()`, `bind()`, `send()`, `'message'`, plus
 * multicast (`addMembership`, `sendToGroup`) and anycast (`sendAnycast`).
 */
import { EventEmitter } from "node:events";
import {
  bytesOf,
  checkSize,
  type DatagramSource,
  defaultDaemon,
  SpinesClient,
  type SpinesDatagramSocket,
} from "./client.ts";
import type { DaemonOption } from "./net.ts";
import { ClientErrorCode, ClientProtocolError, checkId, checkLink, checkPort, LinkType } from "./protocol.ts";

export interface SocketOptions {
  /** Link type hop by hop for what this socket sends (default best-effort). */
  readonly link?: LinkType;
  /** The daemon (default: `defaultDaemon()`); the socket opens its own connection unless given a client. */
  readonly daemon?: DaemonOption;
}

type SendCallback = (err: Error | null) => void;

/**
 * A datagram socket on the overlay. Events: `'listening'` once bound, `'message'` (msg: Buffer,
 * rinfo: DatagramSource, with `group` set for multicast), `'error'`, `'close'`.
 *
 * Delivery is best effort. `send()`'s callback reports what fails locally (bad arguments, no
 * daemon, closed socket); an error the daemon reports after the send (`ERR_UNREACHABLE`: no route,
 * or no member of an anycast group) is emitted as `'error'` if anyone listens for it, and always
 * counted in `sendErrors`.
 */
export class DatagramSocket extends EventEmitter {
  readonly #opts: SocketOptions;
  readonly link: LinkType;
  #client: SpinesClient | undefined;
  #owned = false;
  #sock: SpinesDatagramSocket | undefined;
  #binding: Promise<SpinesDatagramSocket> | undefined;
  #closed = false;
  /** Errors the daemon reported for this socket's sends. */
  sendErrors = 0;
  /** The last of them. */
  lastSendError: ClientProtocolError | undefined;

  constructor(opts: SocketOptions = {}) {
    super();
    this.#opts = opts;
    this.link = checkLink(opts.link ?? LinkType.BestEffort);
  }

  /** Binds to `port` (0 or omitted: an ephemeral port); `'listening'` follows. */
  bind(port?: number, cb?: () => void): this {
    checkPort(port ?? 0);
    if (this.#binding !== undefined)
      throw new ClientProtocolError(ClientErrorCode.BadArgument, "socket is already bound");
    if (cb) this.once("listening", cb);
    this.#bind(port ?? 0).catch(() => {});
    return this;
  }

  #bind(port: number): Promise<SpinesDatagramSocket> {
    this.#binding ??= (async () => {
      try {
        const d = this.#opts.daemon;
        if (d instanceof SpinesClient) this.#client = d;
        else {
          this.#client = await SpinesClient.connect(d ?? defaultDaemon());
          this.#owned = true;
        }
        const client = this.#client;
        if (this.#closed) throw new ClientProtocolError(ClientErrorCode.Closed, "socket is closed");
        const sock = await client.openDatagram(port, { link: this.link });
        this.#sock = sock;
        sock.on("message", (msg: Buffer, rinfo: DatagramSource) => this.emit("message", msg, rinfo));
        if (this.#owned) {
          client.on("protocolError", (e: ClientProtocolError) => {
            this.sendErrors++;
            this.lastSendError = e;
            if (this.listenerCount("error") > 0) this.emit("error", e);
          });
          client.once("close", () => {
            if (!this.#closed) {
              this.#closed = true;
              this.emit("close");
            }
          });
        }
        if (this.#closed) {
          await sock.close().catch(() => {});
          throw new ClientProtocolError(ClientErrorCode.Closed, "socket is closed");
        }
        this.emit("listening");
        return sock;
      } catch (e) {
        if (this.#owned) this.#client?.close();
        if (!this.#closed && this.listenerCount("error") > 0) this.emit("error", e);
        throw e;
      }
    })();
    return this.#binding;
  }

  /** The daemon's node id and the bound port; throws before `'listening'`. */
  address(): { node: number; port: number } {
    if (this.#sock === undefined || this.#client === undefined) {
      throw new ClientProtocolError(ClientErrorCode.BadHandle, "socket is not bound");
    }
    return { node: this.#client.node, port: this.#sock.port };
  }

  #run(cb: SendCallback | undefined, fn: (s: SpinesDatagramSocket) => void): void {
    if (this.#closed) {
      const e = new ClientProtocolError(ClientErrorCode.Closed, "socket is closed");
      if (cb) queueMicrotask(() => cb(e));
      else throw e;
      return;
    }
    const go = (s: SpinesDatagramSocket) => {
      try {
        fn(s);
        cb?.(null);
      } catch (e) {
        if (cb) cb(e as Error);
        else if (this.listenerCount("error") > 0) this.emit("error", e);
      }
    };
    if (this.#sock !== undefined) go(this.#sock);
    else
      this.#bind(0).then(go, (e: Error) => {
        cb?.(e);
      });
  }

  /**
   * Sends `msg` to `port` of node `node` (binding to an ephemeral port first if needed). Bad
   * arguments throw at once: ClientRangeError, or ClientProtocolError `ERR_TOO_LARGE` above
   * 65,536 bytes.
   */
  send(msg: Uint8Array | string, port: number, node: number, cb?: SendCallback): void {
    checkPort(port, "port", false);
    checkId(node, "node");
    const data = bytesOf(msg);
    checkSize(data);
    this.#run(cb, (s) => s.send(node, port, data));
  }

  /** Sends `msg` to every member of multicast `group` listening on `port`. */
  sendToGroup(msg: Uint8Array | string, port: number, group: number, cb?: SendCallback): void {
    checkPort(port, "port", false);
    checkId(group, "group");
    const data = bytesOf(msg);
    checkSize(data);
    this.#run(cb, (s) => s.sendToGroup(group, port, data));
  }

  /** Sends `msg` to the nearest member of `group` (anycast) on `port`. */
  sendAnycast(msg: Uint8Array | string, port: number, group: number, cb?: SendCallback): void {
    checkPort(port, "port", false);
    checkId(group, "group");
    const data = bytesOf(msg);
    checkSize(data);
    this.#run(cb, (s) => s.sendAnycast(group, port, data));
  }

  /** Joins multicast/anycast `group` (binding first if needed); resolves once the daemon joined. */
  async addMembership(group: number): Promise<void> {
    checkId(group, "group");
    const s = this.#sock ?? (await this.#bind(0));
    await s.join(group);
  }

  async dropMembership(group: number): Promise<void> {
    checkId(group, "group");
    const s = this.#sock ?? (await this.#bind(0));
    await s.leave(group);
  }

  /** Releases the port (and the daemon connection the socket opened); `'close'` follows. */
  close(cb?: () => void): this {
    if (cb) this.once("close", cb);
    if (this.#closed) return this;
    this.#closed = true;
    const s = this.#sock;
    const c = this.#client;
    void (async () => {
      if (s !== undefined && c !== undefined && !c.closed) await s.close().catch(() => {});
      if (this.#owned) c?.close();
      this.emit("close");
    })();
    return this;
  }
}

/** `dgram.createSocket()` for the overlay. */
export function createSocket(
  opts?: SocketOptions,
  messageListener?: (msg: Buffer, rinfo: DatagramSource) => void,
): DatagramSocket {
  const s = new DatagramSocket(opts);
  if (messageListener) s.on("message", messageListener);
  return s;
}
