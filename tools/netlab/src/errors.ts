/** Error codes of {@link NetlabError}. */
export type NetlabErrorCode =
  | "ERR_NOT_ROOT"
  | "ERR_MISSING_TOOL"
  | "ERR_TOPOLOGY"
  | "ERR_COMMAND"
  | "ERR_UNKNOWN_HOST"
  | "ERR_UNKNOWN_NET"
  | "ERR_EMULATOR"
  | "ERR_DESTROYED"
  | "ERR_USAGE";

/** Every failure netlab reports is a NetlabError with a stable `code`. */
export class NetlabError extends Error {
  readonly code: NetlabErrorCode;
  constructor(code: NetlabErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = "NetlabError";
    this.code = code;
  }
}
