/**
 * A client for spines-node's control socket (newline-delimited JSON; docs/client-protocol.md §7):
 * one connection, requests answered in order.
 */
import { connect, type Socket } from "node:net";

export class ControlError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ControlError";
    this.code = code;
  }
}

type Reply = { ok?: boolean; result?: unknown; error?: { code?: string; message?: string } };

/** Replies longer than this are refused (the daemon's tables are bounded). */
const MAX_REPLY_BYTES = 64 << 20;

export class ControlClient {
  readonly #sock: Socket;
  readonly #waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #buf = "";
  #nextId = 1;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      this.#buf += chunk;
      if (this.#buf.length > MAX_REPLY_BYTES) {
        sock.destroy(new ControlError("ERR_CONTROL_REPLY_TOO_LONG", "control reply too long"));
        return;
      }
      for (let nl = this.#buf.indexOf("\n"); nl >= 0; nl = this.#buf.indexOf("\n")) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const w = this.#waiting.shift();
        try {
          w?.resolve(JSON.parse(line) as Reply);
        } catch (e) {
          w?.reject(new ControlError("ERR_CONTROL_BAD_REPLY", `bad reply: ${(e as Error).message}`));
        }
      }
    });
    const fail = (e: Error) => {
      for (const w of this.#waiting.splice(0)) w.reject(e);
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new ControlError("ERR_CONTROL_CLOSED", "control connection closed")));
  }

  static connect(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("error", (e) =>
        reject(
          new ControlError(
            "ERR_DAEMON_UNAVAILABLE",
            `cannot reach the spines-node control socket at ${path}: ${e.message}`,
            { cause: e },
          ),
        ),
      );
      s.once("connect", () => {
        s.removeAllListeners("error");
        resolve(new ControlClient(s));
      });
    });
  }

  /** Sends a command; resolves with its result or rejects with the reply's error code. */
  async call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const reply = await new Promise<Reply>((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#sock.write(`${JSON.stringify({ ...args, id: this.#nextId++, cmd })}\n`);
    });
    if (reply.ok !== true) {
      throw new ControlError(
        reply.error?.code ?? "ERR_CONTROL",
        reply.error?.message ?? "control request failed",
      );
    }
    return reply.result as T;
  }

  close(): void {
    this.#sock.end();
  }
}
