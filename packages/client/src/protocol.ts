/**
 * The local client protocol (spec: docs/client-protocol.md): length-prefixed frames over a Unix or
 * localhost TCP stream. This module is the codec both ends share (the client library and the
 * spines-node daemon); it has no I/O.
 */
import { SpinesError } from "@spines-ts/primitives";
import { LinkType } from "@spines-ts/wire";

/**
 * Overlay link types a session or datagram socket rides on: the wire's numbering (Spines' values:
 * `UDP_LINKS` 0, `RELIABLE_LINKS` 1, `SOFT_REALTIME_LINKS` 2), re-exported from `@spines-ts/wire`.
 */
export { LinkType };

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
  Join: 0x0a,
  Leave: 0x0b,
  SendToGroup: 0x0c,
  SendToAnycast: 0x0d,
  Route: 0x0e,
  Ok: 0x80,
  HelloOk: 0x81,
  Error: 0x8f,
  Data: 0x90,
  Datagram: 0x91,
  Closed: 0x92,
  End: 0x93,
  GroupDatagram: 0x94,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** The virtual datagram port on which every daemon echoes datagrams back to their sender (ping). */
export const ECHO_PORT = 7;
/** Most nodes a ROUTE reply lists. */
export const MAX_ROUTE_HOPS = 255;
/** Node ids and group ids: 1..0xfffffffe. */
export const MAX_ID = 0xfffffffe;

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
  /**
   * The daemon cannot take this datagram now without dropping it (its queue toward the next hop is
   * full): nothing was sent; send again later (docs/sessions.md, overload).
   */
  WouldBlock: "ERR_WOULD_BLOCK",
  NotSupported: "ERR_NOT_SUPPORTED",
  ShuttingDown: "ERR_SHUTTING_DOWN",
  /** A TCP client's HELLO without the daemon's token (docs/security.md). */
  Unauthorized: "ERR_UNAUTHORIZED",
  Closed: "ERR_CLOSED",
  Reset: "ERR_RESET",
  /** Client side: the daemon's socket could not be reached (missing, refused, permission). */
  DaemonUnavailable: "ERR_DAEMON_UNAVAILABLE",
  /** Client side: the operation was aborted by its AbortSignal. */
  Aborted: "ABORT_ERR",
} as const;
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** An error reported over the client protocol (by the daemon, or by the client library). */
export class ClientProtocolError extends SpinesError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = "ClientProtocolError";
  }
}

/** An argument out of range (a port outside 0..65535, a node id of 0, an unknown link type). */
export class ClientRangeError extends RangeError {
  readonly code = ClientErrorCode.BadArgument;
  constructor(message: string) {
    super(message);
    this.name = "ClientRangeError";
  }
}

/** `port` must be an integer in 0..65535 (0 only where `allowZero`); throws ClientRangeError. */
export function checkPort(port: unknown, what = "port", allowZero = true): number {
  if (typeof port !== "number" || !Number.isInteger(port) || port < (allowZero ? 0 : 1) || port > 65535) {
    throw new ClientRangeError(
      `${what} must be an integer in ${allowZero ? 0 : 1}..65535, got ${String(port)}`,
    );
  }
  return port;
}

/** A node or group id: an integer in 1..0xfffffffe; throws ClientRangeError. */
export function checkId(id: unknown, what = "node"): number {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || id > MAX_ID) {
    throw new ClientRangeError(`${what} must be an integer in 1..${MAX_ID}, got ${String(id)}`);
  }
  return id;
}

/** A link type: 0, 1 or 2 (LinkType); throws ClientRangeError. */
export function checkLink(link: unknown): LinkType {
  if (link !== 0 && link !== 1 && link !== 2) {
    throw new ClientRangeError(
      `link type must be 0 (best-effort), 1 (reliable) or 2 (real-time), got ${String(link)}`,
    );
  }
  return link;
}

/** Whether `v` is a link type number (for decoders). */
export function isLinkType(v: number): v is LinkType {
  return v === 0 || v === 1 || v === 2;
}

/**
 * Splits a byte stream into frames. `push` returns every complete frame (op + body, without the
 * length prefix); a length of 0 or above `maxFrameBytes` throws ClientProtocolError, after which the
 * connection must be closed. Buffered bytes never exceed one frame.
 */
/** Frames up to this size are copied into a shared slab (`copyOut`); larger ones get their own buffer. */
const SLAB_COPY_MAX = 2048;
const SLAB_BYTES = 16 * 1024;
let slab = new Uint8Array(SLAB_BYTES);
let slabOff = 0;

/**
 * A copy of `len` bytes of `src` from `at`. Small copies are carved from a shared slab (as Node's
 * `Buffer.allocUnsafe` pool does): a fresh ArrayBuffer per frame cost more than decoding it. The
 * copy may thus have a non-zero `byteOffset`, and share its `buffer` with other frames.
 */
function copyOut(src: Uint8Array, at: number, len: number): Uint8Array {
  if (len > SLAB_COPY_MAX) return src.slice(at, at + len);
  if (slabOff + len > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabOff = 0;
  }
  const out = slab.subarray(slabOff, slabOff + len);
  slabOff = (slabOff + len + 7) & ~7;
  out.set(src.subarray(at, at + len));
  return out;
}

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
      out.push(copyOut(data, off + 4, len));
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
