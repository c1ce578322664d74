/**
 * A control socket: newline-delimited JSON over a Unix socket created with mode 0600 (no window:
 * the umask is narrowed while it is created). Request `{"id"?: any, "cmd": "name", ...args}`; reply
 * `{"id", "ok": true, "result"}` or `{"id", "ok": false, "error": {"code", "message"}}`. Bounds: line
 * length, connections, requests waiting per connection, reply bytes queued per connection (a client
 * that does not read its replies is paused, then disconnected: `SlowPeerGuard`). A malformed request
 * gets an error reply and the connection stays usable; nothing a client sends stops the daemon.
 */
import { mkdirSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { type Logger, SpinesError } from "@spines-ts/primitives";
import { SlowPeerGuard } from "./slow-peer.ts";
import { closeServer, listenUnix, refuse } from "./unix-socket.ts";

export const ControlErrorCode = {
  BadJson: "ERR_CONTROL_BAD_JSON",
  BadRequest: "ERR_CONTROL_BAD_REQUEST",
  UnknownCommand: "ERR_CONTROL_UNKNOWN_COMMAND",
  BadArgument: "ERR_CONTROL_BAD_ARGUMENT",
  LineTooLong: "ERR_CONTROL_LINE_TOO_LONG",
  Busy: "ERR_CONTROL_BUSY",
  Internal: "ERR_CONTROL_INTERNAL",
} as const;
export type ControlErrorCode = (typeof ControlErrorCode)[keyof typeof ControlErrorCode];

/** Thrown by command handlers (a bad argument, a refused action); becomes an error reply. */
export class ControlError extends SpinesError {
  constructor(code: ControlErrorCode | string, message: string) {
    super(code, message);
    this.name = "ControlError";
  }
}

/** A command: gets the whole request object, returns (or resolves to) the reply's `result`. */
export type ControlHandler = (args: Record<string, unknown>) => unknown;

/** Default longest request line (UTF-16 code units, close enough to bytes for JSON). */
export const MAX_CONTROL_LINE_BYTES = 64 * 1024;
/** Default reply bytes queued towards one control client before its input is paused. */
export const CONTROL_QUEUE_BYTES = 4 << 20;
/** Default time a paused control client has to drain its replies before it is disconnected. */
export const CONTROL_STALL_MS = 10_000;
/** Requests answered per event-loop turn before the rest of a pipelined burst waits for the next. */
export const REQUESTS_PER_TURN = 32;

/** Default request lines read but not yet answered, per connection, before its input is paused. */
export const MAX_PENDING_REQUESTS = 256;

export interface ControlServerOptions {
  readonly commands: Record<string, ControlHandler>;
  readonly log: Logger;
  /** Concurrent connections; more get ERR_CONTROL_BUSY and are closed. */
  readonly maxConnections: number;
  /** Longest request line (default MAX_CONTROL_LINE_BYTES). */
  readonly maxLineBytes?: number;
  /** Requests read, unanswered, per connection before its input pauses (default MAX_PENDING_REQUESTS). */
  readonly maxPendingRequests?: number;
  /** Reply bytes queued towards one client before its input pauses (default CONTROL_QUEUE_BYTES). */
  readonly maxQueueBytes?: number;
  /** How long a paused client has to drain its replies (default CONTROL_STALL_MS). */
  readonly stallMs?: number;
  /** When set, `listen` creates the socket's folder (and missing parents) with this mode. */
  readonly dirMode?: number;
}

export interface ControlStats {
  connections: number;
  requests: number;
  errors: number;
  /** Connections refused at maxConnections. */
  refused: number;
  /** Times a client's input was paused because it did not read its replies. */
  pausedSlowClient: number;
  /** Clients disconnected for not reading their replies. */
  disconnectedSlowClient: number;
}

export class ControlServer {
  readonly #server: Server;
  readonly #commands: ReadonlyMap<string, ControlHandler>;
  readonly #log: Logger;
  readonly #maxConnections: number;
  readonly #maxLine: number;
  readonly #maxPending: number;
  readonly #maxQueue: number;
  readonly #stallMs: number;
  readonly #dirMode: number | undefined;
  readonly #socks = new Set<Socket>();
  readonly #refused = new Set<Socket>();
  readonly #limitLogged = new Set<string>();
  #path: string | undefined;
  #closing = false;
  readonly stats: ControlStats = {
    connections: 0,
    requests: 0,
    errors: 0,
    refused: 0,
    pausedSlowClient: 0,
    disconnectedSlowClient: 0,
  };

  constructor(opts: ControlServerOptions) {
    this.#commands = new Map(Object.entries(opts.commands));
    this.#log = opts.log;
    this.#maxConnections = opts.maxConnections;
    this.#maxLine = opts.maxLineBytes ?? MAX_CONTROL_LINE_BYTES;
    this.#maxPending = opts.maxPendingRequests ?? MAX_PENDING_REQUESTS;
    this.#maxQueue = opts.maxQueueBytes ?? CONTROL_QUEUE_BYTES;
    this.#stallMs = opts.stallMs ?? CONTROL_STALL_MS;
    this.#dirMode = opts.dirMode;
    this.#server = createServer((sock) => this.#onConnection(sock));
    this.#server.on("error", (e) => this.#log.warn({ err: String(e) }, "control listener error"));
  }

  /** Listens on `path` (mode 0600), after creating its folder if `dirMode` was given. */
  async listen(path: string): Promise<void> {
    if (this.#dirMode !== undefined) mkdirSync(dirname(path), { recursive: true, mode: this.#dirMode });
    await listenUnix(this.#server, path, 0o600);
    this.#path = path;
  }

  /** A bound was reached: logged once per kind, counted in stats, never fatal. */
  #limit(kind: string, info: Record<string, unknown>): void {
    if (this.#limitLogged.has(kind)) return;
    this.#limitLogged.add(kind);
    this.#log.warn({ kind, ...info }, "control limit reached (logged once; see status counters)");
  }

  #onConnection(sock: Socket): void {
    sock.on("error", () => {});
    if (this.#socks.size >= this.#maxConnections || this.#closing) {
      this.stats.refused++;
      this.#limit("connections", { maxConnections: this.#maxConnections });
      this.#refused.add(sock);
      sock.once("close", () => this.#refused.delete(sock));
      refuse(
        sock,
        `${JSON.stringify({ id: null, ok: false, error: { code: ControlErrorCode.Busy, message: "too many control connections" } })}\n`,
      );
      return;
    }
    this.#socks.add(sock);
    this.stats.connections = this.#socks.size;
    sock.setEncoding("utf8");
    let buf = "";
    let discarding = false;
    // Input is paused while replies pile up unread, or while too many requests wait for an answer.
    let pauses = 0;
    const pause = () => {
      if (pauses++ === 0) sock.pause();
    };
    const resume = () => {
      if (--pauses === 0 && !sock.destroyed) sock.resume();
    };
    const guard = new SlowPeerGuard(sock, {
      maxQueueBytes: this.#maxQueue,
      stallMs: this.#stallMs,
      pause,
      resume: () => {
        resume();
        void pump();
      },
      onPause: () => {
        this.stats.pausedSlowClient++;
      },
      onDisconnect: (reason) => {
        this.stats.disconnectedSlowClient++;
        this.#limit("control-slow", { reason });
        lines.length = 0;
      },
    });
    // Requests on one connection are answered in order, one at a time; none while the client's
    // replies are over the bound.
    const lines: string[] = [];
    let running = false;
    let heldForBacklog = false;
    const pump = async (): Promise<void> => {
      if (running) return;
      running = true;
      try {
        let turn = 0;
        while (lines.length > 0 && !sock.destroyed && !guard.paused) {
          await this.#handle(sock, lines.shift() as string);
          guard.check();
          // a pipelined burst is answered in slices: timers and the daemon's sockets run in
          // between (a synchronous handler never yields on its own, and 4,096 of them stalled a
          // daemon for seconds — long enough for its peers to declare it dead)
          if (++turn >= REQUESTS_PER_TURN) {
            turn = 0;
            await new Promise<void>((r) => setImmediate(r));
          }
        }
      } finally {
        running = false;
      }
      if (heldForBacklog && lines.length < this.#maxPending / 2) {
        heldForBacklog = false;
        resume();
      }
    };
    const tooLong = () =>
      this.#reply(sock, null, {
        code: ControlErrorCode.LineTooLong,
        message: `request line longer than ${this.#maxLine} bytes`,
      });
    sock.on("data", (chunk: string) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf("\n", start);
        if (nl < 0) {
          if (!discarding) {
            buf += chunk.slice(start);
            if (buf.length > this.#maxLine) {
              buf = "";
              discarding = true;
              tooLong();
            }
          }
          break;
        }
        const piece = chunk.slice(start, nl);
        start = nl + 1;
        if (discarding) {
          discarding = false;
          buf = "";
          continue;
        }
        const line = buf + piece;
        buf = "";
        if (line.length > this.#maxLine) {
          tooLong();
          continue;
        }
        if (line.trim() === "") continue;
        lines.push(line);
      }
      if (!heldForBacklog && lines.length >= this.#maxPending) {
        heldForBacklog = true;
        pause();
      }
      void pump();
    });
    sock.on("close", () => {
      lines.length = 0;
      this.#socks.delete(sock);
      this.stats.connections = this.#socks.size;
    });
  }

  async #handle(sock: Socket, line: string): Promise<void> {
    this.stats.requests++;
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch (e) {
      this.#reply(sock, null, {
        code: ControlErrorCode.BadJson,
        message: `not JSON: ${(e as Error).message}`,
      });
      return;
    }
    if (typeof req !== "object" || req === null || Array.isArray(req)) {
      this.#reply(sock, null, { code: ControlErrorCode.BadRequest, message: "a request is a JSON object" });
      return;
    }
    const r = req as Record<string, unknown>;
    const id = r.id ?? null;
    if (typeof r.cmd !== "string") {
      this.#reply(sock, id, { code: ControlErrorCode.BadRequest, message: 'missing "cmd" (a string)' });
      return;
    }
    const h = this.#commands.get(r.cmd);
    if (h === undefined) {
      this.#reply(sock, id, {
        code: ControlErrorCode.UnknownCommand,
        message: `unknown command ${JSON.stringify(r.cmd.slice(0, 64))}; known: ${[...this.#commands.keys()].join(", ")}`,
      });
      return;
    }
    try {
      const result = await h(r);
      this.#reply(sock, id, undefined, result ?? null);
    } catch (e) {
      if (e instanceof SpinesError) this.#reply(sock, id, { code: e.code, message: e.message });
      else {
        this.#log.warn({ cmd: r.cmd, err: String(e) }, "control command failed");
        this.#reply(sock, id, { code: ControlErrorCode.Internal, message: String(e) });
      }
    }
  }

  #reply(
    sock: Socket,
    id: unknown,
    error: { code: string; message: string } | undefined,
    result?: unknown,
  ): void {
    if (error) this.stats.errors++;
    let text: string;
    try {
      text = JSON.stringify(error ? { id, ok: false, error } : { id, ok: true, result });
    } catch (e) {
      // a result that does not serialize (a cycle, a BigInt): the client still gets an answer
      this.stats.errors++;
      text = JSON.stringify({
        id,
        ok: false,
        error: { code: ControlErrorCode.Internal, message: `reply not serializable: ${String(e)}` },
      });
    }
    if (!sock.destroyed) sock.write(`${text}\n`);
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const s of this.#socks) s.destroy();
    for (const s of this.#refused) s.destroy();
    await closeServer(this.#server, this.#path);
  }
}

/** Argument helpers for command handlers: each throws ControlError(ERR_CONTROL_BAD_ARGUMENT). */
export function argNumber(
  args: Record<string, unknown>,
  key: string,
  opts: { min?: number; max?: number } = {},
): number {
  const v = args[key];
  if (
    typeof v !== "number" ||
    !Number.isFinite(v) ||
    v < (opts.min ?? -Infinity) ||
    v > (opts.max ?? Infinity)
  ) {
    throw new ControlError(
      ControlErrorCode.BadArgument,
      `"${key}" must be a number${opts.min !== undefined ? ` from ${opts.min}` : ""}${opts.max !== undefined ? ` to ${opts.max}` : ""}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

export function argString(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== "string")
    throw new ControlError(
      ControlErrorCode.BadArgument,
      `"${key}" must be a string, got ${JSON.stringify(v)}`,
    );
  return v;
}
