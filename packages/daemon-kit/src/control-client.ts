/** A client for a control socket (`ControlServer`): one connection, requests answered in order. */
import { connect, type Socket } from "node:net";
import { SpinesError } from "@spines-ts/primitives";

export interface ControlReply {
  readonly id: unknown;
  readonly ok: boolean;
  readonly result?: unknown;
  readonly error?: { readonly code: string; readonly message: string };
}

/** Longest reply line a client accepts by default (a status of a large table is well under this). */
export const MAX_REPLY_BYTES = 64 << 20;

export interface ControlClientOptions {
  /** Longest reply line accepted (default MAX_REPLY_BYTES); longer ones end the connection. */
  readonly maxReplyBytes?: number;
}

export class ControlClient {
  readonly #sock: Socket;
  readonly #waiting: { resolve: (r: ControlReply) => void; reject: (e: Error) => void }[] = [];
  #buf = "";
  #nextId = 1;

  private constructor(sock: Socket, maxReplyBytes: number) {
    this.#sock = sock;
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      this.#buf += chunk;
      if (this.#buf.length > maxReplyBytes) {
        sock.destroy(new SpinesError("ERR_CONTROL_REPLY_TOO_LONG", "control reply too long"));
        return;
      }
      for (let nl = this.#buf.indexOf("\n"); nl >= 0; nl = this.#buf.indexOf("\n")) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        const w = this.#waiting.shift();
        try {
          w?.resolve(JSON.parse(line) as ControlReply);
        } catch (e) {
          w?.reject(e as Error);
        }
      }
    });
    const fail = (e: Error) => {
      for (const w of this.#waiting.splice(0)) w.reject(e);
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new SpinesError("ERR_CONTROL_CLOSED", "control connection closed")));
  }

  /** Connects to the control socket at `path`; rejects with the socket error (ENOENT, ECONNREFUSED). */
  static connect(path: string, opts: ControlClientOptions = {}): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new ControlClient(s, opts.maxReplyBytes ?? MAX_REPLY_BYTES));
      });
    });
  }

  /** Sends one raw line (for tests of malformed input) and waits for the reply. */
  raw(line: string): Promise<ControlReply> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      this.#sock.write(line.endsWith("\n") ? line : `${line}\n`);
    });
  }

  request(cmd: string, args: Record<string, unknown> = {}): Promise<ControlReply> {
    return this.raw(JSON.stringify({ id: this.#nextId++, cmd, ...args }));
  }

  /** Like `request` but returns the result, or throws a SpinesError with the reply's code. */
  async call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    const r = await this.request(cmd, args);
    if (!r.ok)
      throw new SpinesError(r.error?.code ?? "ERR_CONTROL", r.error?.message ?? "control request failed");
    return r.result as T;
  }

  close(): void {
    this.#sock.end();
  }
}
