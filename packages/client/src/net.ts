/**
 * Streams in `node:net` idioms: `connect()` returns a Duplex at once and emits `'connect'` when the
 * session is open; `createServer()` emits `'connection'` for every accepted session.
 */
import { EventEmitter } from "node:events";
import {
  type ClientConnectOptions,
  type DaemonTarget,
  defaultDaemon,
  SpinesClient,
  type SpinesListener,
  SpinesStream,
} from "./client.ts";
import { ClientErrorCode, ClientProtocolError, checkId, checkLink, checkPort, LinkType } from "./protocol.ts";

const closedError = () => new ClientProtocolError(ClientErrorCode.Closed, "connection to the daemon closed");

/** A daemon to talk through: an address, or an open `SpinesClient` to share. */
export type DaemonOption = DaemonTarget | SpinesClient;

export interface ConnectOptions {
  /** Destination node id. */
  readonly node: number;
  /** Destination virtual port, 1..65535. */
  readonly port: number;
  /** Link type hop by hop (default reliable). */
  readonly link?: LinkType;
  /**
   * The daemon (default: `defaultDaemon()`). Given an address, the stream opens its own
   * connection to the daemon (so its flow control is independent of other streams) and closes it
   * with the stream; given a `SpinesClient`, it shares that connection.
   */
  readonly daemon?: DaemonOption;
  /** Aborts connecting: the stream is destroyed with SpinesAbortError. */
  readonly signal?: AbortSignal;
}

async function clientFor(
  daemon: DaemonOption | undefined,
  opts: ClientConnectOptions,
): Promise<{ client: SpinesClient; owned: boolean }> {
  if (daemon instanceof SpinesClient) return { client: daemon, owned: false };
  return { client: await SpinesClient.connect(daemon ?? defaultDaemon(), opts), owned: true };
}

/**
 * Opens a session, as `net.connect()` does: returns the stream at once; it emits `'connect'` (and
 * `'ready'`) when the session is open, or `'error'` (a ClientProtocolError: `ERR_REFUSED`,
 * `ERR_UNREACHABLE`, `ERR_TIMED_OUT`, `ERR_DAEMON_UNAVAILABLE`, or an AbortError). Writes before
 * `'connect'` wait. Bad arguments throw at once (ClientRangeError).
 */
export function connect(opts: ConnectOptions, connectListener?: () => void): SpinesStream {
  checkId(opts.node, "node");
  checkPort(opts.port, "port", false);
  const link = checkLink(opts.link ?? LinkType.Reliable);
  const s = new SpinesStream();
  if (connectListener) s.once("connect", connectListener);
  const signal = opts.signal;
  void (async () => {
    let owned: SpinesClient | undefined;
    try {
      const c = await clientFor(opts.daemon, signal ? { signal } : {});
      if (c.owned) {
        owned = c.client;
        const client = c.client;
        s.onDestroy = () => client.close();
        // The daemon connection died (the daemon stopped): the stream is gone too.
        client.once("close", () => {
          if (!s.destroyed && !s.connected) s.destroy(closedError());
        });
      }
      if (s.destroyed) {
        owned?.close();
        return;
      }
      await c.client._connectInto(s, opts.node, opts.port, { link, ...(signal ? { signal } : {}) });
      s.emit("connect");
      s.emit("ready");
    } catch (e) {
      owned?.close();
      if (!s.destroyed) s.destroy(e as Error);
    }
  })();
  return s;
}

export interface ListenOptions {
  /** Virtual port, 0..65535 (0: an ephemeral port). */
  readonly port?: number;
  /** Link type the listener advertises (accepted sessions ride their initiator's). */
  readonly link?: LinkType;
  /** Sessions waiting to be accepted, at most (default 16). */
  readonly backlog?: number;
}

export interface ServerOptions {
  /** The daemon (default: `defaultDaemon()`); the server opens its own connection unless given a client. */
  readonly daemon?: DaemonOption;
  /** Aborts `listen()` and closes the server. */
  readonly signal?: AbortSignal;
}

/**
 * A listening virtual port, as `net.Server`: `listen(port)`, then `'connection'` (SpinesStream) for
 * each session; `'listening'`, `'error'`, `'close'`. Accepted sessions share the server's daemon
 * connection, so a session whose reader pauses pauses the others' reads too; a server that needs
 * independent flow control per session hands each to its own process or reads promptly.
 */
export class Server extends EventEmitter {
  readonly #opts: ServerOptions;
  #client: SpinesClient | undefined;
  #owned = false;
  #listener: SpinesListener | undefined;
  #closed = false;
  #listening = false;
  readonly #live = new Set<SpinesStream>();
  /** Accepts outstanding at the daemon at a time. */
  static readonly ACCEPTS_IN_FLIGHT = 4;

  constructor(opts: ServerOptions = {}, connectionListener?: (s: SpinesStream) => void) {
    super();
    this.#opts = opts;
    if (connectionListener) this.on("connection", connectionListener);
    opts.signal?.addEventListener("abort", () => this.close(), { once: true });
  }

  get listening(): boolean {
    return this.#listening;
  }

  /** The daemon's node id and the bound port, or null before `'listening'`. */
  address(): { node: number; port: number } | null {
    if (this.#listener === undefined || this.#client === undefined) return null;
    return { node: this.#client.node, port: this.#listener.port };
  }

  /** Starts listening; `'listening'` follows, or `'error'`. Bad arguments throw at once. */
  listen(port?: number | ListenOptions, cb?: () => void): this {
    const o: ListenOptions = typeof port === "object" ? port : { port: port ?? 0 };
    checkPort(o.port ?? 0);
    checkLink(o.link ?? LinkType.Reliable);
    if (cb) this.once("listening", cb);
    void this.#start(o);
    return this;
  }

  async #start(o: ListenOptions): Promise<void> {
    try {
      const signal = this.#opts.signal;
      const { client, owned } = await clientFor(this.#opts.daemon, signal ? { signal } : {});
      this.#client = client;
      this.#owned = owned;
      if (this.#closed) {
        if (owned) client.close();
        return;
      }
      client.once("close", () => {
        if (!this.#closed) this.#fail(closedError());
      });
      this.#listener = await client.listen(o.port ?? 0, {
        ...(o.link !== undefined ? { link: o.link } : {}),
        ...(o.backlog !== undefined ? { backlog: o.backlog } : {}),
      });
      if (this.#closed) {
        await this.#listener.close().catch(() => {});
        return;
      }
      this.#listening = true;
      this.emit("listening");
      for (let i = 0; i < Server.ACCEPTS_IN_FLIGHT; i++) this.#acceptLoop(this.#listener);
    } catch (e) {
      this.#fail(e as Error);
    }
  }

  #acceptLoop(l: SpinesListener): void {
    l.accept().then(
      (s) => {
        if (this.#closed) {
          s.destroy();
          return;
        }
        this.#live.add(s);
        s.once("close", () => {
          this.#live.delete(s);
          this.#maybeRelease();
        });
        this.emit("connection", s);
        this.#acceptLoop(l);
      },
      (e: { code?: string }) => {
        if (this.#closed || e.code === ClientErrorCode.Closed) return;
        this.#fail(e as Error);
      },
    );
  }

  #fail(e: Error): void {
    if (this.#closed) return;
    this.emit("error", e);
    this.close();
  }

  /** Stops accepting (sessions already accepted go on); `'close'` follows. */
  close(cb?: () => void): this {
    if (cb) this.once("close", cb);
    if (this.#closed) return this;
    this.#closed = true;
    this.#listening = false;
    const l = this.#listener;
    const c = this.#client;
    void (async () => {
      if (l !== undefined && c !== undefined && !c.closed) await l.close().catch(() => {});
      this.#maybeRelease();
      this.emit("close");
    })();
    return this;
  }

  /** A closed server's own daemon connection goes once its accepted sessions are gone. */
  #maybeRelease(): void {
    if (this.#closed && this.#owned && this.#live.size === 0) this.#client?.close();
  }
}

/** `net.createServer()` for overlay sessions. */
export function createServer(
  opts?: ServerOptions | ((s: SpinesStream) => void),
  connectionListener?: (s: SpinesStream) => void,
): Server {
  if (typeof opts === "function") return new Server({}, opts);
  return new Server(opts ?? {}, connectionListener);
}
