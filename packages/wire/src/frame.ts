import { Reader, Writer } from "./cursor.ts";
import { WireError, WireErrorCode } from "./errors.ts";
import { allMessageSpecs, type Message } from "./messages/index.ts";
import {
  blankLinkData,
  LINK_DATA_TYPE,
  type LinkData,
  type MutableLinkData,
  readLinkData,
} from "./messages/link.ts";
import { Registry } from "./registry.ts";

/** "SP" */
export const MAGIC = 0x5350;
export const VERSION = 2;
/** magic(2) version(1) type(1) flags(1) reserved(1) length(2) sender(4) incarnation(4) */
export const HEADER_BYTES = 16;
/** keyId(2) + counter(8) + HMAC-SHA-256 truncated to 16 bytes */
export const AUTH_TRAILER_BYTES = 26;
export const AUTH_MAC_BYTES = 16;
export const MAX_BODY_BYTES = 0xffff;

/** Frame flag bits. Bits not named here must be zero. */
export const FrameFlag = {
  /** An authentication trailer follows the body. */
  Auth: 0x01,
} as const;
const KNOWN_FLAGS = FrameFlag.Auth;

export interface AuthTrailer {
  readonly keyId: number;
  /**
   * The sender's per-frame counter (u64, at most 2^53 - 1): strictly increasing over the frames a
   * sender signs, across its incarnations; receivers use it against replays (docs/wire.md §1.3).
   */
  readonly counter: number;
  /** 16 bytes. */
  readonly mac: Uint8Array;
}

/** Who sent a frame: the node id and the random id of the sender's current incarnation. */
export interface FrameSource {
  readonly sender: number;
  readonly incarnation: number;
}

export interface Frame<M extends Message = Message> extends FrameSource {
  readonly type: number;
  readonly flags: number;
  readonly msg: M;
  readonly auth?: AuthTrailer;
}

export const registry = new Registry<Message>(allMessageSpecs);

const shared = new Writer(4096);
let sharedBusy = false;

let lastTag = "";
let lastSpec: ReturnType<typeof registry.byTag>;

function writeFrame(w: Writer, src: FrameSource, msg: Message, auth?: AuthTrailer): void {
  if (typeof src !== "object" || src === null)
    throw new TypeError("encode: src must be an object { sender, incarnation }");
  if (typeof msg !== "object" || msg === null) throw new TypeError("encode: msg must be a message object");
  // The spec of the previous frame's tag, if the same (a run of LinkData frames): no Map lookup.
  const spec = msg._tag === lastTag ? lastSpec : registry.byTag(msg._tag);
  if (spec !== undefined) {
    lastTag = msg._tag;
    lastSpec = spec;
  }
  if (spec === undefined)
    throw new WireError(WireErrorCode.UnknownType, `no wire type for message ${msg._tag}`);
  w.u16(MAGIC)
    .u8(VERSION)
    .u8(spec.type)
    .u8(auth ? FrameFlag.Auth : 0)
    .u8(0)
    .u16(0)
    .u32(src.sender)
    .u32(src.incarnation);
  const start = w.length;
  spec.encode(w, msg);
  const bodyLen = w.length - start;
  if (bodyLen > MAX_BODY_BYTES) {
    throw new WireError(
      WireErrorCode.FieldOutOfRange,
      `${msg._tag} body is ${bodyLen} bytes, max ${MAX_BODY_BYTES}`,
    );
  }
  w.patchU16(start - 10, bodyLen);
  if (auth) {
    if (auth.mac.length !== AUTH_MAC_BYTES) {
      throw new WireError(WireErrorCode.FieldOutOfRange, `auth mac must be ${AUTH_MAC_BYTES} bytes`);
    }
    w.u16(auth.keyId).u64(auth.counter).bytes(auth.mac);
  }
}

/**
 * Encodes one frame into a fresh Uint8Array. Throws WireError (field out of range, unknown type) for a
 * message that cannot be encoded. `auth` writes a given trailer verbatim and sets the Auth flag
 * (for tests and vectors); to sign a frame, encode it without `auth` and call `sign` or `signInto`.
 */
export function encode(src: FrameSource, msg: Message, auth?: AuthTrailer): Uint8Array {
  // A message codec that itself calls encode (a frame inside a frame) must not clobber the shared
  // writer of the outer call: nested calls get their own.
  if (sharedBusy) {
    const w = new Writer(256);
    writeFrame(w, src, msg, auth);
    return w.finish();
  }
  sharedBusy = true;
  try {
    shared.reset();
    writeFrame(shared, src, msg, auth);
    return shared.finish();
  } finally {
    sharedBusy = false;
  }
}

/**
 * Encodes into `w` (reset first) and returns a view of its buffer: no allocation once the writer has
 * grown. The view is valid until `w` is written again, so send it before encoding the next frame.
 */
export function encodeInto(w: Writer, src: FrameSource, msg: Message, auth?: AuthTrailer): Uint8Array {
  w.reset();
  writeFrame(w, src, msg, auth);
  return w.view();
}

/**
 * Appends one frame at `w`'s current position (no reset) and returns the offset it starts at; it
 * ends at `w.length`. With `Writer.target` this encodes straight into a buffer the caller owns.
 */
export function encodeAt(w: Writer, src: FrameSource, msg: Message, auth?: AuthTrailer): number {
  const start = w.length;
  writeFrame(w, src, msg, auth);
  return start;
}

export interface FrameHeader extends FrameSource {
  readonly type: number;
  readonly flags: number;
  readonly bodyLength: number;
}

function u16at(b: Uint8Array, i: number): number {
  return ((b[i] as number) << 8) | (b[i + 1] as number);
}

function u32at(b: Uint8Array, i: number): number {
  return (
    (b[i] as number) * 0x1000000 +
    (((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number))
  );
}

function checkBytes(bytes: unknown, fn: string): asserts bytes is Uint8Array {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`${fn} expects a Uint8Array, got ${bytes === null ? "null" : typeof bytes}`);
  }
}

/**
 * Reads and checks the 16-byte header and the total length, without decoding the body. The checks,
 * in order: at least 16 bytes (truncated), magic (bad magic), version (unsupported version), flags
 * and reserved byte (field out of range), then the datagram length against 16 + body length
 * (+ 26 with the Auth flag): shorter is truncated, longer is a length mismatch. The type byte is
 * not looked up here. Throws TypeError if `bytes` is not a Uint8Array, WireError for bad content.
 */
export function decodeHeader(bytes: Uint8Array): FrameHeader {
  checkBytes(bytes, "decodeHeader");
  checkHeader(bytes);
  return { type: hType, flags: hFlags, bodyLength: hBodyLength, sender: hSender, incarnation: hIncarnation };
}

/** The fields `checkHeader` read last (no header object per decoded frame). */
let hType = 0;
let hFlags = 0;
let hBodyLength = 0;
let hSender = 0;
let hIncarnation = 0;

/** `decodeHeader`'s checks; the fields go to the module's `h*` variables. */
function checkHeader(bytes: Uint8Array): void {
  if (bytes.length < HEADER_BYTES) {
    throw new WireError(
      WireErrorCode.Truncated,
      `frame of ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`,
      0,
    );
  }
  const magic = u16at(bytes, 0);
  if (magic !== MAGIC) throw new WireError(WireErrorCode.BadMagic, `bad magic 0x${magic.toString(16)}`, 0);
  const version = bytes[2] as number;
  if (version !== VERSION)
    throw new WireError(WireErrorCode.UnsupportedVersion, `unsupported version ${version}`, 2);
  const type = bytes[3] as number;
  const flags = bytes[4] as number;
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `unknown flag bits 0x${flags.toString(16)}`, 4);
  }
  const reserved = bytes[5] as number;
  if (reserved !== 0)
    throw new WireError(WireErrorCode.FieldOutOfRange, `reserved byte is ${reserved}, must be 0`, 5);
  const bodyLength = u16at(bytes, 6);
  const sender = u32at(bytes, 8);
  const incarnation = u32at(bytes, 12);
  const expected = HEADER_BYTES + bodyLength + (flags & FrameFlag.Auth ? AUTH_TRAILER_BYTES : 0);
  if (bytes.length < expected) {
    throw new WireError(
      WireErrorCode.Truncated,
      `frame is ${bytes.length} bytes, header says ${expected}`,
      bytes.length,
    );
  }
  if (bytes.length > expected) {
    throw new WireError(
      WireErrorCode.LengthMismatch,
      `frame is ${bytes.length} bytes, header says ${expected}`,
      expected,
    );
  }
  hType = type;
  hFlags = flags;
  hBodyLength = bodyLength;
  hSender = sender;
  hIncarnation = incarnation;
}

/** The Reader `decode` reuses (a decoder that itself decodes a frame gets a fresh one). */
const EMPTY = new Uint8Array(0);
const sharedReader = new Reader(EMPTY);
let readerBusy = false;

function decodeChecked(bytes: Uint8Array): Frame {
  checkHeader(bytes);
  // Copied before decoding the body: a message decoder may decode a nested frame.
  const type = hType;
  const flags = hFlags;
  const sender = hSender;
  const incarnation = hIncarnation;
  const spec = registry.byType(type);
  if (spec === undefined)
    throw new WireError(WireErrorCode.UnknownType, `unknown message type 0x${type.toString(16)}`, 3);
  const bodyEnd = HEADER_BYTES + hBodyLength;
  const own = !readerBusy;
  const r = own ? sharedReader.reset(bytes, HEADER_BYTES, bodyEnd) : new Reader(bytes, HEADER_BYTES, bodyEnd);
  if (own) readerBusy = true;
  let msg: Message;
  try {
    msg = spec.decode(r);
    r.end(spec.tag);
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(WireErrorCode.FieldOutOfRange, `${spec.tag} decoder threw ${describe(e)}`, r.offset, {
      cause: e,
    });
  } finally {
    if (own) {
      readerBusy = false;
      // Not holding on to the datagram.
      sharedReader.reset(EMPTY);
    }
  }
  if (flags & FrameFlag.Auth) {
    const t = new Reader(bytes, bodyEnd, bytes.length);
    const keyId = t.u16();
    const counter = t.u64();
    const mac = t.bytes(AUTH_MAC_BYTES);
    return { type, flags, sender, incarnation, msg, auth: { keyId, counter, mac } };
  }
  return { type, flags, sender, incarnation, msg };
}

/** A LinkData frame that `decodeLinkDataInto` fills in place (see there). */
export interface LinkDataFrame extends Frame<LinkData> {
  type: number;
  flags: number;
  sender: number;
  incarnation: number;
  readonly msg: MutableLinkData;
}

/** A `LinkDataFrame` to fill, with every field zero. */
export function blankLinkDataFrame(): LinkDataFrame {
  return { type: LINK_DATA_TYPE, flags: 0, sender: 0, incarnation: 0, msg: blankLinkData() };
}

/**
 * `decode` for the most frequent frame, LinkData, into objects the caller reuses (a frame and a
 * message object per datagram were a good part of a transit daemon's garbage, issue 10). For a
 * well-formed LinkData frame without an authentication trailer it fills `out` and `out.msg` and
 * returns true; the payload is a view into `bytes`, and `out.msg.header` a header object that may
 * be shared (see `OverlayHeader`). For anything else (another type, a trailer, malformed bytes) it
 * returns false and `out` may be partly overwritten: `decode` the bytes instead (it throws the
 * WireError, if any).
 */
export function decodeLinkDataInto(bytes: Uint8Array, out: LinkDataFrame): boolean {
  if (!(bytes instanceof Uint8Array) || bytes.length < HEADER_BYTES || bytes[3] !== LINK_DATA_TYPE)
    return false;
  if (readerBusy) return false;
  try {
    checkHeader(bytes);
  } catch {
    return false;
  }
  if (hFlags !== 0) return false;
  const r = sharedReader.reset(bytes, HEADER_BYTES, HEADER_BYTES + hBodyLength);
  readerBusy = true;
  try {
    readLinkData(r, out.msg);
    if (r.remaining !== 0) return false;
  } catch {
    return false;
  } finally {
    readerBusy = false;
    sharedReader.reset(EMPTY);
  }
  out.type = LINK_DATA_TYPE;
  out.flags = 0;
  out.sender = hSender;
  out.incarnation = hIncarnation;
  return true;
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * Decodes one datagram. Throws WireError, and nothing else, for any Uint8Array (a non-WireError
 * escaping a message decoder is a bug; it is wrapped as a field-out-of-range WireError with the
 * original as `cause`). Throws TypeError only if `bytes` is not a Uint8Array.
 *
 * The message's byte fields (for example a Datagram payload) and `auth.mac` are views into `bytes`,
 * not copies: copy them before reusing the receive buffer.
 */
export function decode(bytes: Uint8Array): Frame {
  checkBytes(bytes, "decode");
  try {
    return decodeChecked(bytes);
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(WireErrorCode.FieldOutOfRange, `decode failed: ${describe(e)}`, undefined, {
      cause: e,
    });
  }
}
