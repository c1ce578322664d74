import { SpinesError } from "@spines-ts/primitives";

/** Why a datagram could not be decoded (or a message could not be encoded). */
export const WireErrorCode = {
  Truncated: "ERR_WIRE_TRUNCATED",
  TrailingBytes: "ERR_WIRE_TRAILING_BYTES",
  BadMagic: "ERR_WIRE_BAD_MAGIC",
  UnsupportedVersion: "ERR_WIRE_UNSUPPORTED_VERSION",
  UnknownType: "ERR_WIRE_UNKNOWN_TYPE",
  LengthMismatch: "ERR_WIRE_LENGTH_MISMATCH",
  FieldOutOfRange: "ERR_WIRE_FIELD_OUT_OF_RANGE",
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];

/** The only error the codec throws for bad bytes or unencodable values. */
export class WireError extends SpinesError {
  override readonly code: WireErrorCode;
  /** Byte offset in the datagram where the problem was found, when known. */
  readonly offset: number | undefined;
  constructor(code: WireErrorCode, message: string, offset?: number, options?: { cause?: unknown }) {
    super(code, offset === undefined ? message : `${message} (at byte ${offset})`, options);
    this.name = "WireError";
    this.code = code;
    this.offset = offset;
  }
}
