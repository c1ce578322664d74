/**
 * The local client protocol (spec: docs/client-protocol.md): length-prefixed frames over a Unix or
 * localhost TCP stream. This module is the codec both ends share; it has no I/O.
 */
import { SpinesError } from "@spines-ts/primitives";

export const CLIENT_MAGIC = 0x5350434c; // "SPCL"
export const CLIENT_PROTOCOL_VERSION = 1;
export const DEFAULT_MAX_FRAME_BYTES = 1 << 20;
/** Largest datagram payload a client may send (one overlay message, before fragmentation). */
export const MAX_DATAGRAM_BYTES = 65_536;

/** Operation codes. Requests are below 0x80, daemon-to-client frames at or above. */
export const Op = {
  Hello: 0x01,
  Listen: 0x02,
  Accept: 0x03,
  Connect: 0x04,
  OpenDatagram: 0x05,
  Send: 0x06,
  SendTo: 0x07,
  Close: 0x08,
  Ping: 0x09,
  Ok: 0x80,
  HelloOk: 0x81,
  Error: 0x8f,
  Data: 0x90,
  Datagram: 0x91,
  Closed: 0x92,
  End: 0x93,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** Overlay link types a session or datagram socket rides on (Spines' values). */
export const LinkType = { BestEffort: 0, Reliable: 1, Realtime: 2 } as const;
export type LinkType = (typeof LinkType)[keyof typeof LinkType];

/** `how` in a Close request. */
export const CloseHow = { Close: 0, ShutdownWrite: 1, Reset: 2 } as const;
export type CloseHow = (typeof CloseHow)[keyof typeof CloseHow];

/** `reason` in a Closed event. */
export const ClosedReason = {
  /** Both sides finished; every byte was delivered. */
  Closed: 0,
  /** The peer reset the session. */
  Reset: 1,
  /** The peer stopped answering (dead-peer detection). */
  TimedOut: 2,
  /** No route to the peer, or the peer refused (no listener on the port). */
  Unreachable: 3,
  /** Closed by the daemon (shutting down, or an error on this handle). */
  Aborted: 4,
} as const;
export type ClosedReason = (typeof ClosedReason)[keyof typeof ClosedReason];

/** Error codes carried by Error frames (stable, for clients to match on). */
export const ClientErrorCode = {
  BadFrame: "ERR_BAD_FRAME",
  FrameTooLarge: "ERR_FRAME_TOO_LARGE",
  HelloRequired: "ERR_HELLO_REQUIRED",
  VersionMismatch: "ERR_VERSION_MISMATCH",
  UnknownOp: "ERR_UNKNOWN_OP",
  BadArgument: "ERR_BAD_ARGUMENT",
  BadHandle: "ERR_BAD_HANDLE",
  PortInUse: "ERR_PORT_IN_USE",
  Refused: "ERR_REFUSED",
  Unreachable: "ERR_UNREACHABLE",
  TimedOut: "ERR_TIMED_OUT",
  TooLarge: "ERR_TOO_LARGE",
  Limit: "ERR_LIMIT",
  NotSupported: "ERR_NOT_SUPPORTED",
  ShuttingDown: "ERR_SHUTTING_DOWN",
  Closed: "ERR_CLOSED",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error reported over the client protocol (by the daemon, or by the client library). */
export class ClientProtocolError extends SpinesError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = "ClientProtocolError";
  }
}

/**
 * Splits a byte stream into frames. `push` returns every complete frame (op + body, without the
 * length prefix); a length of 0 or above `maxFrameBytes` throws ClientProtocolError, after which the
 * connection must be closed. Buffered bytes never exceed one frame.
 */
export class FrameDecoder {
  readonly maxFrameBytes: number;
  #buf: Uint8Array = new Uint8Array(0);
  #len = 0;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.maxFrameBytes = maxFrameBytes;
  }

  get buffered(): number {
    return this.#len;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    const out: Uint8Array[] = [];
    let data: Uint8Array;
    if (this.#len === 0) data = chunk;
    else {
      if (this.#buf.length < this.#len + chunk.length) {
        const n = new Uint8Array(Math.max(this.#len + chunk.length, this.#buf.length * 2));
        n.set(this.#buf.subarray(0, this.#len));
        this.#buf = n;
      }
      this.#buf.set(chunk, this.#len);
      this.#len += chunk.length;
      data = this.#buf.subarray(0, this.#len);
    }
    let off = 0;
    while (data.length - off >= 4) {
      const len =
        (data[off] as number) * 0x1000000 +
        ((data[off + 1] as number) << 16) +
        ((data[off + 2] as number) << 8) +
        (data[off + 3] as number);
      if (len === 0 || len > this.maxFrameBytes) {
        throw new ClientProtocolError(
          len === 0 ? ClientErrorCode.BadFrame : ClientErrorCode.FrameTooLarge,
          `frame length ${len} is outside 1..${this.maxFrameBytes}`,
        );
      }
      if (data.length - off - 4 < len) break;
      // Copy out: the buffer is reused and callers may hold frames.
      out.push(data.slice(off + 4, off + 4 + len));
      off += 4 + len;
    }
    const rest = data.length - off;
    if (rest === 0) this.#len = 0;
    else if (off > 0 || data === chunk) {
      // Keep the incomplete tail (copied first: `data` may alias the buffer).
      const tail = data.slice(off);
      if (this.#buf.length < rest) this.#buf = new Uint8Array(Math.max(rest, 4096));
      this.#buf.set(tail, 0);
      this.#len = rest;
    }
    return out;
  }
}

/** Builds one frame: length, op, and fields. */
export class FrameBuilder {
  #buf: Uint8Array;
  #view: DataView;
  #len = 0;

  constructor(op: Op, capacity = 64) {
    this.#buf = new Uint8Array(Math.max(capacity + 5, 16));
    this.#view = new DataView(this.#buf.buffer);
    this.#len = 4;
    this.u8(op);
  }

  #ensure(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const b = new Uint8Array(Math.max(this.#len + n, this.#buf.length * 2));
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
    this.#view = new DataView(b.buffer);
  }

  u8(v: number): this {
    this.#ensure(1);
    this.#view.setUint8(this.#len, v);
    this.#len += 1;
    return this;
  }

  u16(v: number): this {
    this.#ensure(2);
    this.#view.setUint16(this.#len, v);
    this.#len += 2;
    return this;
  }

  u32(v: number): this {
    this.#ensure(4);
    this.#view.setUint32(this.#len, v >>> 0);
    this.#len += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#ensure(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** A string with a one-byte length (truncated to 255 bytes of UTF-8). */
  str8(s: string): this {
    const b = new TextEncoder().encode(s).subarray(0, 255);
    return this.u8(b.length).bytes(b);
  }

  /** Rest-of-frame UTF-8 text. */
  text(s: string): this {
    return this.bytes(new TextEncoder().encode(s));
  }

  finish(): Uint8Array {
    this.#view.setUint32(0, this.#len - 4);
    return this.#buf.subarray(0, this.#len);
  }
}

/** Reads a frame's fields; a short frame throws ClientProtocolError(ERR_BAD_FRAME). */
export class FrameReader {
  readonly #b: Uint8Array;
  readonly #v: DataView;
  #off = 0;

  constructor(frame: Uint8Array) {
    this.#b = frame;
    this.#v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  }

  #need(n: number): void {
    if (this.#off + n > this.#b.length) {
      throw new ClientProtocolError(ClientErrorCode.BadFrame, `frame too short (${this.#b.length} bytes)`);
    }
  }

  u8(): number {
    this.#need(1);
    return this.#v.getUint8(this.#off++);
  }

  u16(): number {
    this.#need(2);
    const v = this.#v.getUint16(this.#off);
    this.#off += 2;
    return v;
  }

  u32(): number {
    this.#need(4);
    const v = this.#v.getUint32(this.#off);
    this.#off += 4;
    return v;
  }

  str8(): string {
    const n = this.u8();
    this.#need(n);
    const s = new TextDecoder().decode(this.#b.subarray(this.#off, this.#off + n));
    this.#off += n;
    return s;
  }

  rest(): Uint8Array {
    const r = this.#b.subarray(this.#off);
    this.#off = this.#b.length;
    return r;
  }

  text(): string {
    return new TextDecoder().decode(this.rest());
  }

  /** Throws if bytes are left (for fixed-size requests). */
  end(): void {
    if (this.#off !== this.#b.length) {
      throw new ClientProtocolError(
        ClientErrorCode.BadFrame,
        `${this.#b.length - this.#off} unexpected trailing bytes in frame`,
      );
    }
  }
}

export function errorFrame(req: number, code: string, message: string): Uint8Array {
  return new FrameBuilder(Op.Error, 16 + message.length * 3).u32(req).str8(code).text(message).finish();
}

export function closedFrame(handle: number, reason: ClosedReason, code: string, message: string): Uint8Array {
  return new FrameBuilder(Op.Closed, 16 + message.length * 3)
    .u32(handle)
    .u8(reason)
    .str8(code)
    .text(message)
    .finish();
}
