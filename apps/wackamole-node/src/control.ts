/**
 * The control socket: newline-delimited JSON over a Unix socket created with mode 0600 (no window:
 * the umask is narrowed while it is created). Request `{"id"?: any, "cmd": "status", ...args}`;
 * reply `{"id", "ok": true, "result"}` or `{"id", "ok": false, "error": {"code", "message"}}`.
 * Bounds: line length, connections, requests waiting per connection, reply bytes queued per
 * connection. A malformed request gets an error reply and the connection stays usable; nothing a
 * client sends stops the daemon.
 */
import { mkdirSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { dirname } from "node:path";
import { type Logger, SpinesError } from "@spines-ts/primitives";
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

/** Thrown by command handlers; becomes an error reply. */
export class ControlError extends SpinesError {
  constructor(code: ControlErrorCode | string, message: string) {
    super(code, message);
    this.name = "ControlError";
  }
}

export type ControlHandler = (args: Record<string, unknown>) => unknown;

/** Longest request line (bytes of UTF-16 text, close enough for JSON). */
export const MAX_CONTROL_LINE = 16 * 1024;
/** Requests read but not answered, per connection, before its input is paused. */
export const MAX_PENDING_REQUESTS = 64;
/** Reply bytes queued towards one client: past this it is disconnected (it does not read). */
export const MAX_QUEUED_REPLY_BYTES = 1 << 20;

export interface ControlStats {
  connections: number;
  requests: number;
  errors: number;
  refused: number;
  /** Clients disconnected for not reading their replies. */
  slowClients: number;
}

export class ControlServer {
  readonly #server: Server;
  readonly #commands: ReadonlyMap<string, ControlHandler>;
  readonly #log: Logger;
  readonly #maxConnections: number;
  readonly #socks = new Set<Socket>();
  #path: string | undefined;
  #closing = false;
  readonly stats: ControlStats = { connections: 0, requests: 0, errors: 0, refused: 0, slowClients: 0 };

  constructor(opts: { commands: Record<string, ControlHandler>; log: Logger; maxConnections: number }) {
    this.#commands = new Map(Object.entries(opts.commands));
    this.#log = opts.log;
    this.#maxConnections = opts.maxConnections;
    this.#server = createServer((sock) => this.#onConnection(sock));
    this.#server.on("error", (e) => this.#log.warn({ err: String(e) }, "control listener error"));
  }

  /** Listens on `path` (mode 0600); creates its directory (mode 0700) if missing. */
  async listen(path: string): Promise<void> {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    await listenUnix(this.#server, path, 0o600);
    this.#path = path;
  }

  #onConnection(sock: Socket): void {
    sock.on("error", () => {});
    if (this.#socks.size >= this.#maxConnections || this.#closing) {
      this.stats.refused++;
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
    const lines: string[] = [];
    let running = false;
    let paused = false;
    const pump = async (): Promise<void> => {
      if (running) return;
      running = true;
      try {
        while (lines.length > 0 && !sock.destroyed) {
          await this.#handle(sock, lines.shift() as string);
          if (sock.writableLength > MAX_QUEUED_REPLY_BYTES) {
            this.stats.slowClients++;
            sock.destroy();
            lines.length = 0;
          }
        }
      } finally {
        running = false;
      }
      if (paused && !sock.destroyed) {
        paused = false;
        sock.resume();
      }
    };
    sock.on("data", (chunk: string) => {
      let start = 0;
      for (;;) {
        const nl = chunk.indexOf("\n", start);
        if (nl < 0) {
          if (!discarding) {
            buf += chunk.slice(start);
            if (buf.length > MAX_CONTROL_LINE) {
              buf = "";
              discarding = true;
              this.#reply(sock, null, {
                code: ControlErrorCode.LineTooLong,
                message: `request line longer than ${MAX_CONTROL_LINE} bytes`,
              });
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
        if (line.length > MAX_CONTROL_LINE) {
          this.#reply(sock, null, {
            code: ControlErrorCode.LineTooLong,
            message: `request line longer than ${MAX_CONTROL_LINE} bytes`,
          });
          continue;
        }
        if (line.trim() === "") continue;
        lines.push(line);
      }
      if (lines.length >= MAX_PENDING_REQUESTS && !paused) {
        paused = true;
        sock.pause();
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
    } catch {
      // an id that does not serialize (cannot happen with parsed JSON; defensive)
      text = JSON.stringify({
        id: null,
        ok: false,
        error: { code: ControlErrorCode.Internal, message: "reply not serializable" },
      });
    }
    if (!sock.destroyed) sock.write(`${text}\n`);
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const s of this.#socks) s.destroy();
    await closeServer(this.#server, this.#path);
  }
}
