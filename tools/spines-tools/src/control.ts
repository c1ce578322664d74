/**
 * spinesctl's client for spines-node's control socket (newline-delimited JSON; docs/client-protocol.md
 * §7): `@spines-ts/daemon-kit`'s `ControlClient`, with this package's errors. Every failure is a
 * `ControlError`: `ERR_DAEMON_UNAVAILABLE` when the socket cannot be reached, `ERR_CONTROL_BAD_REPLY`
 * for a reply that is not JSON, otherwise the code of the daemon's reply or of the client
 * (`ERR_CONTROL_CLOSED`, `ERR_CONTROL_REPLY_TOO_LONG`); socket errors after connecting pass as they are.
 */
import { ControlClient as KitControlClient } from "@spines-ts/daemon-kit";
import { SpinesError } from "@spines-ts/primitives";

export class ControlError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ControlError";
    this.code = code;
  }
}

function controlError(e: unknown): unknown {
  if (e instanceof SyntaxError) return new ControlError("ERR_CONTROL_BAD_REPLY", `bad reply: ${e.message}`);
  if (e instanceof SpinesError) return new ControlError(e.code, e.message);
  return e;
}

/** One connection to a control socket; requests are answered in order. */
export class ControlClient {
  readonly #client: KitControlClient;

  private constructor(client: KitControlClient) {
    this.#client = client;
  }

  static async connect(path: string): Promise<ControlClient> {
    try {
      return new ControlClient(await KitControlClient.connect(path));
    } catch (e) {
      throw new ControlError(
        "ERR_DAEMON_UNAVAILABLE",
        `cannot reach the spines-node control socket at ${path}: ${(e as Error).message}`,
        { cause: e },
      );
    }
  }

  /** Sends a command; resolves with its result or rejects with the reply's error code. */
  async call<T = unknown>(cmd: string, args: Record<string, unknown> = {}): Promise<T> {
    try {
      return await this.#client.call<T>(cmd, args);
    } catch (e) {
      throw controlError(e);
    }
  }

  close(): void {
    this.#client.close();
  }
}
