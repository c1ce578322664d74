/** Unix and TCP listeners for local clients: a 0600 socket with no window, stale-file cleanup, refusal at a limit. */
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
