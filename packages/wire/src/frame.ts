import { Reader, Writer } from "./cursor.ts";
import { WireError, WireErrorCode } from "./errors.ts";
import { allMessageSpecs, type Message } from "./messages/index.ts";
import { Registry } from "./registry.ts";

/** "SP" */
export const MAGIC = 0x5350;
export const VERSION = 1;
/** magic(2) version(1) type(1) flags(1) reserved(1) length(2) sender(4) incarnation(4) */
export const HEADER_BYTES = 16;
/** keyId(2) + HMAC-SHA-256 truncated to 16 bytes */
export const AUTH_TRAILER_BYTES = 18;
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

function writeFrame(w: Writer, src: FrameSource, msg: Message, auth?: AuthTrailer): void {
  const spec = registry.byTag(msg._tag);
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
    w.u16(auth.keyId).bytes(auth.mac);
  }
}

/** Encodes one frame into a fresh Uint8Array. */
export function encode(src: FrameSource, msg: Message, auth?: AuthTrailer): Uint8Array {
  shared.reset();
  writeFrame(shared, src, msg, auth);
  return shared.finish();
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

export interface FrameHeader extends FrameSource {
  readonly type: number;
  readonly flags: number;
  readonly bodyLength: number;
}

const sharedReader = new Reader(new Uint8Array(0));

/** Reads and checks the 16-byte header and the total length, without decoding the body. */
export function decodeHeader(bytes: Uint8Array): FrameHeader {
  const r = sharedReader.reset(bytes);
  if (bytes.length < HEADER_BYTES) {
    throw new WireError(
      WireErrorCode.Truncated,
      `frame of ${bytes.length} bytes is shorter than the ${HEADER_BYTES}-byte header`,
      0,
    );
  }
  const magic = r.u16();
  if (magic !== MAGIC) throw new WireError(WireErrorCode.BadMagic, `bad magic 0x${magic.toString(16)}`, 0);
  const version = r.u8();
  if (version !== VERSION)
    throw new WireError(WireErrorCode.UnsupportedVersion, `unsupported version ${version}`, 2);
  const type = r.u8();
  const flags = r.u8();
  if ((flags & ~KNOWN_FLAGS) !== 0) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `unknown flag bits 0x${flags.toString(16)}`, 4);
  }
  const reserved = r.u8();
  if (reserved !== 0)
    throw new WireError(WireErrorCode.FieldOutOfRange, `reserved byte is ${reserved}, must be 0`, 5);
  const bodyLength = r.u16();
  const sender = r.u32();
  const incarnation = r.u32();
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
  return { type, flags, bodyLength, sender, incarnation };
}

/** Decodes one datagram. Throws WireError, and nothing else, for any malformed input. */
export function decode(bytes: Uint8Array): Frame {
  const h = decodeHeader(bytes);
  const spec = registry.byType(h.type);
  if (spec === undefined)
    throw new WireError(WireErrorCode.UnknownType, `unknown message type 0x${h.type.toString(16)}`, 3);
  const bodyEnd = HEADER_BYTES + h.bodyLength;
  const r = new Reader(bytes, HEADER_BYTES, bodyEnd);
  let msg: Message;
  try {
    msg = spec.decode(r);
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(WireErrorCode.FieldOutOfRange, `${spec.tag}: ${(e as Error).message}`);
  }
  r.end(spec.tag);
  if (h.flags & FrameFlag.Auth) {
    const t = new Reader(bytes, bodyEnd, bytes.length);
    const keyId = t.u16();
    const mac = t.bytes(AUTH_MAC_BYTES);
    return {
      type: h.type,
      flags: h.flags,
      sender: h.sender,
      incarnation: h.incarnation,
      msg,
      auth: { keyId, mac },
    };
  }
  return { type: h.type, flags: h.flags, sender: h.sender, incarnation: h.incarnation, msg };
}
