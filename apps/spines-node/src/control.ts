/**
 * The control socket: newline-delimited JSON over a Unix socket created with mode 0600.
 * Request: `{"id": any?, "cmd": "name", ...args}`; reply: `{"id", "ok": true, "result"}` or
 * `{"id", "ok": false, "error": {"code", "message"}}`. A malformed request gets an error reply and
 * the connection stays usable.
 */
import { createServer, type Server, type Socket } from "node:net";
import { type Logger, SpinesError } from "@spines-ts/primitives";
import { closeServer, listenUnix, refuse, SlowPeerGuard } from "./unix-socket.ts";

export const ControlErrorCode = {
  BadJson: "ERR_CONTROL_BAD_JSON",
  BadRequest: "ERR_CONTROL_BAD_REQUEST",
  UnknownCommand: "ERR_CONTROL_UNKNOWN_COMMAND",
  BadArgument: "ERR_CONTROL_BAD_ARGUMENT",
  LineTooLong: "ERR_CONTROL_LINE_TOO_LONG",
  Internal: "ERR_CONTROL_INTERNAL",
} as const;
export type ControlErrorCode = (typeof ControlErrorCode)[keyof typeof ControlErrorCode];

/** Thrown by command handlers for a bad argument; becomes an error reply. */
export class ControlError extends SpinesError {
  constructor(code: ControlErrorCode | string, message: string) {
    super(code, message);
    this.name = "ControlError";
  }
}

export type ControlHandler = (args: Record<string, unknown>) => unknown;

export const MAX_CONTROL_LINE_BYTES = 64 * 1024;
/** Replies queued towards one control client before its input is paused. */
export const CONTROL_QUEUE_BYTES = 4 << 20;
/** How long a control client may leave a full queue unread before it is disconnected. */
export const CONTROL_STALL_MS = 10_000;
/** Request lines read but not yet answered, per connection, before its input is paused. */
export const MAX_PENDING_REQUESTS = 256;

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
  readonly #socks = new Set<Socket>();
  #path: string | undefined;
  readonly #refused = new Set<Socket>();
  readonly #limitLogged = new Set<string>();
  readonly #stallMs: number;
  readonly stats: ControlStats = {
    connections: 0,
    requests: 0,
    errors: 0,
    refused: 0,
    pausedSlowClient: 0,
    disconnectedSlowClient: 0,
  };

  constructor(opts: {
    commands: Record<string, ControlHandler>;
    log: Logger;
    maxConnections: number;
    /** Stall bound of a non-reading client (default CONTROL_STALL_MS). */
    stallMs?: number;
  }) {
    this.#commands = new Map(Object.entries(opts.commands));
    this.#log = opts.log;
    this.#maxConnections = opts.maxConnections;
    this.#stallMs = opts.stallMs ?? CONTROL_STALL_MS;
    this.#server = createServer((sock) => this.#onConnection(sock));
    this.#server.on("error", (e) => this.#log.warn({ err: String(e) }, "control listener error"));
  }

  /** A bound was reached: logged once per kind, counted in stats, never fatal. */
  #limit(kind: string, info: Record<string, unknown>): void {
    if (this.#limitLogged.has(kind)) return;
    this.#limitLogged.add(kind);
    this.#log.warn({ kind, ...info }, "control limit reached (logged once; see status counters)");
  }

  async listen(path: string): Promise<void> {
    await listenUnix(this.#server, path, 0o600);
    this.#path = path;
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
        `${JSON.stringify({ id: null, ok: false, error: { code: "ERR_CONTROL_BUSY", message: "too many control connections" } })}\n`,
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
      maxQueueBytes: CONTROL_QUEUE_BYTES,
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
        while (lines.length > 0 && !sock.destroyed && !guard.paused) {
          await this.#handle(sock, lines.shift() as string);
          guard.check();
        }
      } finally {
        running = false;
      }
      if (heldForBacklog && lines.length < MAX_PENDING_REQUESTS / 2) {
        heldForBacklog = false;
        resume();
      }
    };
    const enqueue = (line: string) => {
      lines.push(line);
      if (!heldForBacklog && lines.length >= MAX_PENDING_REQUESTS) {
        heldForBacklog = true;
        pause();
      }
      void pump();
    };
    sock.on("data", (chunk: string) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf("\n", start);
        if (nl < 0) {
          if (!discarding) {
            buf += chunk.slice(start);
            if (buf.length > MAX_CONTROL_LINE_BYTES) {
              buf = "";
              discarding = true;
              this.#reply(sock, null, {
                code: ControlErrorCode.LineTooLong,
                message: `request line longer than ${MAX_CONTROL_LINE_BYTES} bytes`,
              });
            }
          }
          return;
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
        if (line.length > MAX_CONTROL_LINE_BYTES) {
          this.#reply(sock, null, {
            code: ControlErrorCode.LineTooLong,
            message: `request line longer than ${MAX_CONTROL_LINE_BYTES} bytes`,
          });
          continue;
        }
        if (line.trim() === "") continue;
        enqueue(line);
      }
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
        message: `unknown command ${JSON.stringify(r.cmd)}; known: ${[...this.#commands.keys()].join(", ")}`,
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
    const msg = error ? { id, ok: false, error } : { id, ok: true, result };
    if (!sock.destroyed) sock.write(`${JSON.stringify(msg)}\n`);
  }

  #closing = false;

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
