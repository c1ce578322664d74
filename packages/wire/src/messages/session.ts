import { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { defineMessage, type MessageSpec } from "../registry.ts";
import { type OverlayHeader, readOverlayHeader, writeOverlayHeader } from "./data.ts";

/**
 * Messages of the end-to-end sessions (0x30-0x3F), specified in docs/wire.md section 5. Each has an
 * `OverlayHeader` (`src`/`srcPort` the sending endpoint, `dst`/`dstPort` the receiving one) and a
 * type-specific body. Two encodings share the body codec:
 *
 * - the **payload form** (`encodeSessionPayload` / `decodeSessionPayload`): type byte + body, carried
 *   once as the payload of an overlay packet (LinkData, Datagram) whose overlay header is the
 *   message's header. This is how sessions travel across the overlay.
 * - the **frame form** (the registered frame types 0x30-0x36): a frame whose body is the overlay
 *   header followed by the same body, for endpoints that exchange frames directly.
 *
 * Sequence numbers, acknowledgements and session ids are 32-bit and wrap; windows are in bytes.
 */

/** The link type a session or datagram prefers to ride on (chosen per session); owned by ../link-type.ts. */
import type { LinkType } from "../link-type.ts";

export { LinkType } from "../link-type.ts";

/** Why a session was reset (SessionReset.reason). Unknown values decode as-is. */
export const ResetReason = {
  /** The peer application reset the session. */
  Application: 0,
  /** Nobody listens at the destination port. */
  Refused: 1,
  /** The receiver has no session with that id (it restarted, or the session already ended). */
  NoSession: 2,
  /** The receiver's session table or accept backlog is full. */
  Busy: 3,
  /** The peer broke the protocol (for example overran the advertised window). */
  Protocol: 4,
  /** The peer gave up on an idle session after a close (no FIN from us in time). */
  CloseTimeout: 5,
} as const;
export type ResetReason = (typeof ResetReason)[keyof typeof ResetReason];

/** SessionData.flags */
export const SessionDataFlag = { Fin: 0x01 } as const;
/** SessionAck.flags */
export const SessionAckFlag = { Probe: 0x01 } as const;
/** SessionReset.flags */
export const SessionResetFlag = { Yours: 0x01 } as const;
/** SessionDatagram.flags */
export const SessionDatagramFlag = { Reliable: 0x01 } as const;
/** SessionDatagramAck.flags */
export const SessionDatagramAckFlag = { Refused: 0x01 } as const;

/** Largest datagram message (all fragments together). */
export const MAX_SESSION_DATAGRAM_BYTES = 65536;
/** Most SACK blocks one SessionAck carries. */
export const MAX_SACK_BLOCKS = 16;

/** Opens a stream to a listening port. Type 0x30. */
export interface SessionOpen {
  readonly _tag: "SessionOpen";
  readonly header: OverlayHeader;
  /** The initiator's session id. */
  readonly sid: number;
  /** Bytes the initiator can take beyond its (still empty) receive point. */
  readonly window: number;
  readonly linkType: LinkType;
}

/** Accepts an open. Type 0x31. */
export interface SessionAccept {
  readonly _tag: "SessionAccept";
  readonly header: OverlayHeader;
  /** The initiator's session id (echoed from SessionOpen). */
  readonly dstSid: number;
  /** The acceptor's session id. */
  readonly sid: number;
  readonly window: number;
}

/** One stream segment with a piggybacked cumulative ack. Type 0x32. */
export interface SessionData {
  readonly _tag: "SessionData";
  readonly header: OverlayHeader;
  readonly dstSid: number;
  /** SessionDataFlag bits. */
  readonly flags: number;
  readonly seq: number;
  /** Next segment number the sender of this message expects (cumulative ack). */
  readonly ack: number;
  readonly window: number;
  readonly payload: Uint8Array;
}

/** One selectively acknowledged range of segment numbers, `start` inclusive, `end` exclusive. */
export interface SackBlock {
  readonly start: number;
  readonly end: number;
}

/** Cumulative ack, window and selective acks; also the keepalive probe and its answer. Type 0x33. */
export interface SessionAck {
  readonly _tag: "SessionAck";
  readonly header: OverlayHeader;
  readonly dstSid: number;
  /** SessionAckFlag bits: Probe asks for an immediate SessionAck back. */
  readonly flags: number;
  readonly ack: number;
  readonly window: number;
  readonly sack: readonly SackBlock[];
}

/** Ends a session at once. Type 0x34. */
export interface SessionReset {
  readonly _tag: "SessionReset";
  readonly header: OverlayHeader;
  /** With flag Yours: the receiver's own session id; without: the id the receiver addressed to us. */
  readonly sid: number;
  readonly flags: number;
  readonly reason: number;
}

/** One fragment of a datagram message. Type 0x35. */
export interface SessionDatagram {
  readonly _tag: "SessionDatagram";
  readonly header: OverlayHeader;
  /** SessionDatagramFlag bits. */
  readonly flags: number;
  /** Random id of the sender's flow (its port and destination, this incarnation). */
  readonly flowId: number;
  readonly msgId: number;
  /** Length of the whole message, at most 65,536. */
  readonly totalLength: number;
  /** Bytes per fragment; fragment i starts at i * stride. */
  readonly stride: number;
  readonly index: number;
  readonly count: number;
  readonly payload: Uint8Array;
}

/** Acknowledges the fragments of one reliable datagram message. Type 0x36. */
export interface SessionDatagramAck {
  readonly _tag: "SessionDatagramAck";
  readonly header: OverlayHeader;
  readonly flags: number;
  readonly flowId: number;
  readonly msgId: number;
  readonly count: number;
  /** ceil(count / 8) bytes; bit (7 - i % 8) of byte i / 8 is set when fragment i arrived. */
  readonly bitmap: Uint8Array;
}

export type SessionMessage =
  | SessionOpen
  | SessionAccept
  | SessionData
  | SessionAck
  | SessionReset
  | SessionDatagram
  | SessionDatagramAck;

function bad(r: Reader, what: string, at = r.offset): never {
  throw new WireError(WireErrorCode.FieldOutOfRange, what, at);
}

function readFlags(r: Reader, known: number, what: string): number {
  const at = r.offset;
  const f = r.u8();
  if ((f & ~known) !== 0) bad(r, `${what} flags 0x${f.toString(16)} has unknown bits`, at);
  return f;
}

function checkFlags(f: number, known: number, what: string): void {
  if (!Number.isInteger(f) || (f & ~known) !== 0) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what} flags ${f} has unknown bits`);
  }
}

/** The body codec of one session message type: everything after the overlay header. */
interface SessionBody<M extends SessionMessage> {
  readonly type: number;
  readonly tag: M["_tag"];
  encode(w: Writer, m: M): void;
  decode(r: Reader, header: OverlayHeader): M;
}

/** The frame form of a session message: overlay header, then the body. */
function frameSpec<M extends SessionMessage>(b: SessionBody<M>): MessageSpec<M> {
  return defineMessage<M>({
    type: b.type,
    tag: b.tag,
    encode(w, m) {
      writeOverlayHeader(w, m.header);
      b.encode(w, m);
    },
    decode(r) {
      return b.decode(r, readOverlayHeader(r));
    },
  });
}

/** The number of fragments a message of `total` bytes split at `stride` bytes has. */
export function datagramFragmentCount(total: number, stride: number): number {
  return total === 0 ? 1 : Math.ceil(total / stride);
}

/** Length of fragment `index`. */
export function datagramFragmentLength(total: number, stride: number, index: number): number {
  return Math.min(stride, total - index * stride);
}

const SessionOpenBody: SessionBody<SessionOpen> = {
  type: 0x30,
  tag: "SessionOpen",
  encode(w: Writer, m: SessionOpen) {
    w.u32(m.sid).u32(m.window).u8(m.linkType);
  },
  decode(r: Reader, header: OverlayHeader): SessionOpen {
    const sid = r.u32();
    const window = r.u32();
    const at = r.offset;
    const linkType = r.u8();
    if (linkType > 2) bad(r, `linkType ${linkType} unknown`, at);
    return { _tag: "SessionOpen", header, sid, window, linkType: linkType as LinkType };
  },
};
export const SessionOpenSpec = frameSpec(SessionOpenBody);

const SessionAcceptBody: SessionBody<SessionAccept> = {
  type: 0x31,
  tag: "SessionAccept",
  encode(w: Writer, m: SessionAccept) {
    w.u32(m.dstSid).u32(m.sid).u32(m.window);
  },
  decode(r: Reader, header: OverlayHeader): SessionAccept {
    return { _tag: "SessionAccept", header, dstSid: r.u32(), sid: r.u32(), window: r.u32() };
  },
};
export const SessionAcceptSpec = frameSpec(SessionAcceptBody);

const SessionDataBody: SessionBody<SessionData> = {
  type: 0x32,
  tag: "SessionData",
  encode(w: Writer, m: SessionData) {
    checkFlags(m.flags, SessionDataFlag.Fin, "SessionData");
    w.u32(m.dstSid).u8(m.flags).u32(m.seq).u32(m.ack).u32(m.window).bytes(m.payload);
  },
  decode(r: Reader, header: OverlayHeader): SessionData {
    const dstSid = r.u32();
    const flags = readFlags(r, SessionDataFlag.Fin, "SessionData");
    const seq = r.u32();
    const ack = r.u32();
    const window = r.u32();
    return { _tag: "SessionData", header, dstSid, flags, seq, ack, window, payload: r.rest() };
  },
};
export const SessionDataSpec = frameSpec(SessionDataBody);

const SessionAckBody: SessionBody<SessionAck> = {
  type: 0x33,
  tag: "SessionAck",
  encode(w: Writer, m: SessionAck) {
    checkFlags(m.flags, SessionAckFlag.Probe, "SessionAck");
    if (m.sack.length > MAX_SACK_BLOCKS) {
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `${m.sack.length} SACK blocks, max ${MAX_SACK_BLOCKS}`,
      );
    }
    w.u32(m.dstSid).u8(m.flags).u32(m.ack).u32(m.window).u8(m.sack.length);
    for (const b of m.sack) w.u32(b.start).u32(b.end);
  },
  decode(r: Reader, header: OverlayHeader): SessionAck {
    const dstSid = r.u32();
    const flags = readFlags(r, SessionAckFlag.Probe, "SessionAck");
    const ack = r.u32();
    const window = r.u32();
    const at = r.offset;
    const n = r.u8();
    if (n > MAX_SACK_BLOCKS) bad(r, `${n} SACK blocks, max ${MAX_SACK_BLOCKS}`, at);
    const sack: SackBlock[] = [];
    for (let i = 0; i < n; i++) sack.push({ start: r.u32(), end: r.u32() });
    return { _tag: "SessionAck", header, dstSid, flags, ack, window, sack };
  },
};
export const SessionAckSpec = frameSpec(SessionAckBody);

const SessionResetBody: SessionBody<SessionReset> = {
  type: 0x34,
  tag: "SessionReset",
  encode(w: Writer, m: SessionReset) {
    checkFlags(m.flags, SessionResetFlag.Yours, "SessionReset");
    w.u32(m.sid).u8(m.flags).u8(m.reason);
  },
  decode(r: Reader, header: OverlayHeader): SessionReset {
    const sid = r.u32();
    const flags = readFlags(r, SessionResetFlag.Yours, "SessionReset");
    return { _tag: "SessionReset", header, sid, flags, reason: r.u8() };
  },
};
export const SessionResetSpec = frameSpec(SessionResetBody);

function checkFragment(
  total: number,
  stride: number,
  index: number,
  count: number,
  payloadLength: number,
): string | undefined {
  if (total > MAX_SESSION_DATAGRAM_BYTES) return `totalLength ${total} above ${MAX_SESSION_DATAGRAM_BYTES}`;
  if (stride < 1) return "stride 0";
  if (count !== datagramFragmentCount(total, stride)) {
    return `count ${count} does not match totalLength ${total} / stride ${stride}`;
  }
  if (index >= count) return `index ${index} not below count ${count}`;
  const len = datagramFragmentLength(total, stride, index);
  if (payloadLength !== len) return `fragment ${index} carries ${payloadLength} bytes, expected ${len}`;
  return undefined;
}

const SessionDatagramBody: SessionBody<SessionDatagram> = {
  type: 0x35,
  tag: "SessionDatagram",
  encode(w: Writer, m: SessionDatagram) {
    checkFlags(m.flags, SessionDatagramFlag.Reliable, "SessionDatagram");
    const problem = checkFragment(m.totalLength, m.stride, m.index, m.count, m.payload.length);
    if (problem !== undefined)
      throw new WireError(WireErrorCode.FieldOutOfRange, `SessionDatagram: ${problem}`);
    w.u8(m.flags).u32(m.flowId).u32(m.msgId).u32(m.totalLength).u16(m.stride).u16(m.index).u16(m.count);
    w.bytes(m.payload);
  },
  decode(r: Reader, header: OverlayHeader): SessionDatagram {
    const flags = readFlags(r, SessionDatagramFlag.Reliable, "SessionDatagram");
    const flowId = r.u32();
    const msgId = r.u32();
    const totalLength = r.u32();
    const stride = r.u16();
    const index = r.u16();
    const count = r.u16();
    const at = r.offset;
    const payload = r.rest();
    const problem = checkFragment(totalLength, stride, index, count, payload.length);
    if (problem !== undefined) bad(r, `SessionDatagram: ${problem}`, at);
    return {
      _tag: "SessionDatagram",
      header,
      flags,
      flowId,
      msgId,
      totalLength,
      stride,
      index,
      count,
      payload,
    };
  },
};
export const SessionDatagramSpec = frameSpec(SessionDatagramBody);

function bitmapProblem(count: number, bitmap: Uint8Array): string | undefined {
  if (count < 1 || count > 0xffff) return `count ${count} out of range`;
  if (bitmap.length !== Math.ceil(count / 8))
    return `bitmap of ${bitmap.length} bytes for ${count} fragments`;
  const spare = bitmap.length * 8 - count;
  if (spare > 0 && ((bitmap[bitmap.length - 1] as number) & ((1 << spare) - 1)) !== 0) {
    return "bitmap bits beyond count are set";
  }
  return undefined;
}

const SessionDatagramAckBody: SessionBody<SessionDatagramAck> = {
  type: 0x36,
  tag: "SessionDatagramAck",
  encode(w: Writer, m: SessionDatagramAck) {
    checkFlags(m.flags, SessionDatagramAckFlag.Refused, "SessionDatagramAck");
    const problem = bitmapProblem(m.count, m.bitmap);
    if (problem !== undefined)
      throw new WireError(WireErrorCode.FieldOutOfRange, `SessionDatagramAck: ${problem}`);
    w.u8(m.flags).u32(m.flowId).u32(m.msgId).u16(m.count).bytes(m.bitmap);
  },
  decode(r: Reader, header: OverlayHeader): SessionDatagramAck {
    const flags = readFlags(r, SessionDatagramAckFlag.Refused, "SessionDatagramAck");
    const flowId = r.u32();
    const msgId = r.u32();
    const count = r.u16();
    const at = r.offset;
    if (count < 1) bad(r, "SessionDatagramAck: count 0", at - 2);
    const bitmap = r.bytes(Math.ceil(count / 8));
    const problem = bitmapProblem(count, bitmap);
    if (problem !== undefined) bad(r, `SessionDatagramAck: ${problem}`, at);
    return { _tag: "SessionDatagramAck", header, flags, flowId, msgId, count, bitmap };
  },
};
export const SessionDatagramAckSpec = frameSpec(SessionDatagramAckBody);

export const sessionMessages: readonly MessageSpec<SessionMessage>[] = [
  SessionOpenSpec,
  SessionAcceptSpec,
  SessionDataSpec,
  SessionAckSpec,
  SessionResetSpec,
  SessionDatagramSpec,
  SessionDatagramAckSpec,
] as readonly MessageSpec<SessionMessage>[];

/** True for the tags of this family (cheap test for a driver demultiplexing frames). */
export function isSessionMessage(m: { readonly _tag: string }): m is SessionMessage {
  return sessionTags.has(m._tag);
}
const sessionTags: ReadonlySet<string> = new Set(sessionMessages.map((s) => s.tag));

// ---------------------------------------------------------------- the payload form

const bodies: readonly SessionBody<SessionMessage>[] = [
  SessionOpenBody,
  SessionAcceptBody,
  SessionDataBody,
  SessionAckBody,
  SessionResetBody,
  SessionDatagramBody,
  SessionDatagramAckBody,
] as readonly SessionBody<SessionMessage>[];
const bodyByType: readonly (SessionBody<SessionMessage> | undefined)[] = (() => {
  const t: (SessionBody<SessionMessage> | undefined)[] = new Array(256).fill(undefined);
  for (const b of bodies) t[b.type] = b;
  return t;
})();
const bodyByTag: ReadonlyMap<string, SessionBody<SessionMessage>> = new Map(bodies.map((b) => [b.tag, b]));

/** Bytes the payload form adds in front of the body (the type byte). */
export const SESSION_PAYLOAD_TYPE_BYTES = 1;

const payloadWriter = new Writer(0);
const payloadReader = new Reader(new Uint8Array(0));

/**
 * Payloads are encoded straight into a shared slab and returned as views of it, instead of
 * encoded and then copied into a fresh ArrayBuffer each (a copy and an ArrayBuffer per segment a
 * sending daemon sends, issue 10). A slab is never written again where a view was handed out: a
 * new one is started when less than `PAYLOAD_SLAB_ROOM` is left, and a payload that outgrows the
 * room gets a buffer of its own. So a payload stays valid for as long as anyone holds it, like a
 * fresh buffer; its `buffer` is shared, though (`byteOffset` is not 0).
 */
const PAYLOAD_SLAB_BYTES = 64 * 1024;
const PAYLOAD_SLAB_ROOM = 4096;
let payloadSlab = new Uint8Array(PAYLOAD_SLAB_BYTES);
let payloadSlabAt = 0;

/**
 * Encodes a session message in the payload form: its type byte (0x30-0x36) and its body, without
 * the overlay header (the enclosing overlay packet carries `msg.header`) and without a frame header.
 * Returns a Uint8Array of its own, never written again (a view of a shared buffer, see
 * `payloadSlab`). Throws WireError for a message that cannot be encoded.
 */
export function encodeSessionPayload(msg: SessionMessage): Uint8Array {
  const b = typeof msg === "object" && msg !== null ? bodyByTag.get(msg._tag) : undefined;
  if (b === undefined) {
    throw new WireError(
      WireErrorCode.UnknownType,
      `not a session message: ${String((msg as { _tag?: unknown })?._tag)}`,
    );
  }
  if (payloadSlabAt + PAYLOAD_SLAB_ROOM > PAYLOAD_SLAB_BYTES) {
    payloadSlab = new Uint8Array(PAYLOAD_SLAB_BYTES);
    payloadSlabAt = 0;
  }
  const slab = payloadSlab;
  const start = payloadSlabAt;
  const w = payloadWriter.target(slab, start);
  w.u8(b.type);
  b.encode(w, msg);
  const end = w.length;
  // Outgrew the slab: the writer copied it into a buffer of its own; copy the payload out of that.
  if (w.buffer !== slab) return w.buffer.slice(start, end);
  payloadSlabAt = (end + 7) & ~7;
  return slab.subarray(start, end);
}

/**
 * Decodes the payload form of a session message that arrived in an overlay packet with overlay
 * header `header` (which becomes the message's header). Throws WireError for bad bytes: an empty
 * payload or trailing bytes, an unknown type byte, or a bad field. Byte fields are views into
 * `payload`.
 */
export function decodeSessionPayload(header: OverlayHeader, payload: Uint8Array): SessionMessage {
  if (!(payload instanceof Uint8Array)) throw new TypeError("decodeSessionPayload expects a Uint8Array");
  if (payload.length < 1) throw new WireError(WireErrorCode.Truncated, "empty session payload", 0);
  const type = payload[0] as number;
  const b = bodyByType[type];
  if (b === undefined) {
    throw new WireError(WireErrorCode.UnknownType, `unknown session payload type 0x${type.toString(16)}`, 0);
  }
  const r = payloadReader.reset(payload, 1, payload.length);
  let m: SessionMessage;
  try {
    m = b.decode(r, header);
  } catch (e) {
    if (e instanceof WireError) throw e;
    throw new WireError(WireErrorCode.FieldOutOfRange, `${b.tag} decoder threw ${String(e)}`, r.offset, {
      cause: e,
    });
  }
  r.end(b.tag);
  return m;
}
