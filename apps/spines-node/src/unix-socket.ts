import { chmodSync, existsSync, lstatSync, unlinkSync } from "node:fs";
import { connect, type Server, type Socket } from "node:net";
import { SpinesError } from "@spines-ts/primitives";

export class SocketInUseError extends SpinesError {
  readonly path: string;
  constructor(path: string) {
    super("ERR_SOCKET_IN_USE", `${path} is in use by a running process`);
    this.name = "SocketInUseError";
    this.path = path;
  }
}

/** Removes a stale socket file left by a daemon that died; refuses if something still answers. */
async function clearStale(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket())
    throw new SpinesError("ERR_NOT_A_SOCKET", `${path} exists and is not a socket`);
  const alive = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once("connect", () => {
      c.destroy();
      resolve(true);
    });
    c.once("error", () => resolve(false));
  });
  if (alive) throw new SocketInUseError(path);
  unlinkSync(path);
}

/**
 * Listens on a Unix socket created with the given mode (default 0600): the umask is narrowed while
 * the socket file is created, so there is no window in which it is more open.
 */
export async function listenUnix(server: Server, path: string, mode = 0o600): Promise<void> {
  await clearStale(path);
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    // The socket file is created synchronously inside listen(), so the narrowed umask covers only it.
    const old = process.umask(0o777 & ~mode);
    try {
      server.listen(path, () => {
        server.off("error", onError);
        resolve();
      });
    } finally {
      process.umask(old);
    }
  });
  chmodSync(path, mode);
}

export async function listenTcp(server: Server, host: string, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    server.once("error", onError);
    server.listen({ host, port, exclusive: true }, () => {
      server.off("error", onError);
      resolve();
    });
  });
  const a = server.address();
  return typeof a === "object" && a !== null ? a.port : port;
}

export function closeServer(server: Server, path?: string): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    if (path !== undefined) {
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    }
  });
}

/**
 * Destroys `sock` if it is still open after `ms` (unref'd: never holds the process). For sockets the
 * daemon ends politely (refused at a limit, shutting down) whose peer may never finish its side.
 */
export function destroyAfter(sock: Socket, ms: number): void {
  const t = setTimeout(() => sock.destroy(), ms);
  t.unref();
  sock.once("close", () => clearTimeout(t));
}

/** Refused sockets waiting out their grace period, process-wide; past it they are destroyed at once. */
export const MAX_REFUSING = 64;
let refusing = 0;

/**
 * Refuses a connection at a limit: sends `farewell`, ignores whatever the peer sent or sends, and
 * destroys the socket after `graceMs` whatever the peer does. Errors (ECONNRESET, EPIPE) are ignored:
 * a refused peer can never crash the daemon.
 */
export function refuse(sock: Socket, farewell: string | Uint8Array, graceMs = 1000): void {
  sock.on("error", () => {});
  if (refusing >= MAX_REFUSING) {
    // A flood of connections past the limit: no farewell, no socket kept for the grace period.
    sock.destroy();
    return;
  }
  refusing++;
  sock.once("close", () => refusing--);
  sock.resume(); // discard input: unread data must not keep the socket (and a shutdown) alive
  sock.end(farewell);
  destroyAfter(sock, graceMs);
}

/** A peer whose output queue reaches this many times its bound is disconnected at once. */
export const OVERFLOW_FACTOR = 4;

export interface SlowPeerOptions {
  /** Output bytes queued towards the peer at which its input stops being read. */
  readonly maxQueueBytes: number;
  /** How long a paused peer may read nothing (its queue does not shrink) before it is disconnected (ms). */
  readonly stallMs: number;
  readonly pause: () => void;
  readonly resume: () => void;
  /** Called once when the peer is disconnected for not reading (before the socket is destroyed). */
  readonly onDisconnect: (reason: "stall" | "overflow") => void;
  /** Called each time the peer's input is paused for a full output queue. */
  readonly onPause: () => void;
}

/**
 * The output bound of one local peer (client or control connection). When more than
 * `maxQueueBytes` wait for the peer, its input is paused (no new requests, so no new replies); when
 * the queue drains, it resumes. A paused peer that reads nothing for `stallMs`, or whose queue reaches
 * four times the bound (only a burst of stream data larger than the session receive
 * buffer can get there: requests stop at the bound), is destroyed, which frees everything queued for it.
 */
export class SlowPeerGuard {
  readonly #sock: Socket;
  readonly #o: SlowPeerOptions;
  #paused = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #done = false;

  constructor(sock: Socket, opts: SlowPeerOptions) {
    this.#sock = sock;
    this.#o = opts;
    sock.on("drain", () => this.#drained());
    sock.once("close", () => this.#stop());
  }

  /** True while the peer's input is paused for its output queue. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Call after queueing output; `extra` is output held outside the socket (not yet written). */
  check(extra = 0): void {
    if (this.#done) return;
    const q = this.#sock.writableLength + extra;
    if (q >= OVERFLOW_FACTOR * this.#o.maxQueueBytes) {
      this.#disconnect("overflow");
      return;
    }
    if (q >= this.#o.maxQueueBytes && !this.#paused) {
      this.#paused = true;
      this.#o.onPause();
      this.#o.pause();
      this.#armStall(q);
    }
  }

  /** Disconnects after `stallMs` unless the queue shrank meanwhile (a slow reader is kept). */
  #armStall(last: number): void {
    this.#timer = setTimeout(() => {
      const now = this.#sock.writableLength;
      if (now < last) this.#armStall(now);
      else this.#disconnect("stall");
    }, this.#o.stallMs);
    this.#timer.unref();
  }

  #drained(): void {
    if (!this.#paused || this.#done) return;
    if (this.#sock.writableLength >= this.#o.maxQueueBytes) return;
    this.#paused = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#o.resume();
  }

  #disconnect(reason: "stall" | "overflow"): void {
    if (this.#done) return;
    this.#stop();
    this.#o.onDisconnect(reason);
    this.#sock.destroy();
  }

  #stop(): void {
    this.#done = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
