import type { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { LinkType } from "../link-type.ts";
import { defineMessage } from "../registry.ts";
import { type OverlayHeader, readOverlayHeader, writeOverlayHeader } from "./data.ts";

/**
 * Messages of the overlay links (0x11-0x1F; 0x10 is Datagram): liveness hellos, data on the
 * reliable, real-time and best-effort channels, selective acknowledgements and real-time NACKs.
 * Specified in docs/wire.md §3; the protocol is in docs/links.md.
 *
 * Times on the wire are the sender's own clock in microseconds modulo 2^32 and are only ever echoed
 * back to the node that wrote them, so the two nodes' clocks never need to agree. Sequence numbers
 * are 32-bit and wrap; receivers unwrap them against their current position.
 */

/**
 * Which link protocol a data frame belongs to; each has its own sequence space. The channel byte IS
 * the `LinkType` (one numbering: 0 best-effort, 1 reliable, 2 real-time); these names remain for
 * the link code that calls them channels.
 */
export const LinkChannel = {
  Reliable: LinkType.Reliable,
  Realtime: LinkType.RealTime,
  BestEffort: LinkType.BestEffort,
} as const;
export type LinkChannel = LinkType;

/** Hello flag bits. */
export const HelloFlag = {
  /**
   * The sender is shutting down: the receiver declares the link down at once, if `nonceEcho` is
   * its current (or previous) nonce.
   */
  Goodbye: 0x01,
} as const;

/** LinkData flag bits. */
export const LinkDataFlag = {
  /** This is a retransmission (not the first transmission of this sequence number). */
  Retransmission: 0x01,
} as const;

/** Most SACK ranges in one LinkAck. */
export const MAX_ACK_RANGES = 32;
/** Most sequence numbers in one RealtimeNack. */
export const MAX_NACK_SEQS = 64;

/** Liveness, RTT echo and loss report. Type 0x11. */
export interface Hello {
  readonly _tag: "Hello";
  /** The receiver's incarnation as the sender last saw it; 0 if it has heard nothing yet. */
  readonly peerIncarnation: number;
  /** Hello counter of the sender (wraps). */
  readonly seq: number;
  /** Sender's clock, µs mod 2^32. */
  readonly ts: number;
  /** `ts` of the newest hello the sender received from the receiver (0 if none). */
  readonly echoTs: number;
  /** µs the sender held that hello before sending this one (0xFFFFFFFF if none). */
  readonly echoDelay: number;
  /**
   * The sender's current challenge: a random non-zero u32 the receiver echoes in `nonceEcho` to
   * prove it receives at its address (the incarnation handshake, docs/links.md §2.1).
   */
  readonly nonce: number;
  /** The newest `nonce` the sender received from the receiver (0 if none). */
  readonly nonceEcho: number;
  /** Loss rate of the receiver-to-sender data direction measured by the sender, in 1/65535. */
  readonly lossIn: number;
  readonly flags: number;
}

/** One overlay packet on a link channel. Type 0x12. */
export interface LinkData {
  readonly _tag: "LinkData";
  readonly peerIncarnation: number;
  readonly channel: LinkChannel;
  readonly flags: number;
  readonly seq: number;
  /** Sender's clock at this transmission, µs mod 2^32. */
  readonly ts: number;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
}

/** A half-open range [start, end) of received sequence numbers (mod 2^32). */
export interface SackRange {
  readonly start: number;
  readonly end: number;
}

/** Selective acknowledgement of the reliable channel. Type 0x13. */
export interface LinkAck {
  readonly _tag: "LinkAck";
  readonly peerIncarnation: number;
  /** Every sequence number below this one was received. */
  readonly cumAck: number;
  /** The sender may transmit sequence numbers below this one (receive-buffer credit). */
  readonly limit: number;
  /** `ts` of the data frame whose arrival triggered this ack. */
  readonly echoTs: number;
  /** µs between that arrival and this ack. */
  readonly ackDelay: number;
  /** Received ranges above cumAck, newest first, at most MAX_ACK_RANGES. */
  readonly ranges: readonly SackRange[];
}

/** A request, sent at most once per packet, to retransmit real-time packets. Type 0x14. */
export interface RealtimeNack {
  readonly _tag: "RealtimeNack";
  readonly peerIncarnation: number;
  readonly seqs: readonly number[];
}

function flagsOk(r: Reader, known: number, what: string): number {
  const at = r.offset;
  const f = r.u8();
  if ((f & ~known) !== 0)
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: unknown flag bits 0x${f.toString(16)}`, at);
  return f;
}

export const HelloSpec = defineMessage<Hello>({
  type: 0x11,
  tag: "Hello",
  encode(w: Writer, m: Hello) {
    w.u32(m.peerIncarnation).u32(m.seq).u32(m.ts).u32(m.echoTs).u32(m.echoDelay);
    w.u32(m.nonce).u32(m.nonceEcho).u16(m.lossIn).u8(m.flags);
  },
  decode(r: Reader): Hello {
    const peerIncarnation = r.u32();
    const seq = r.u32();
    const ts = r.u32();
    const echoTs = r.u32();
    const echoDelay = r.u32();
    const nonce = r.u32();
    const nonceEcho = r.u32();
    const lossIn = r.u16();
    const flags = flagsOk(r, HelloFlag.Goodbye, "Hello");
    return { _tag: "Hello", peerIncarnation, seq, ts, echoTs, echoDelay, nonce, nonceEcho, lossIn, flags };
  },
});

/** A LinkData message that can be filled in place (`readLinkData`, `decodeLinkDataInto`). */
export type MutableLinkData = { -readonly [K in keyof LinkData]: LinkData[K] };

/** The LinkData wire type. */
export const LINK_DATA_TYPE = 0x12;

/** Reads a LinkData body into `m` (the LinkData decoder, and `decodeLinkDataInto`'s). */
export function readLinkData(r: Reader, m: MutableLinkData): void {
  const peerIncarnation = r.u32();
  const at = r.offset;
  const channel = r.u8();
  if (channel > 2)
    throw new WireError(WireErrorCode.FieldOutOfRange, `LinkData: channel ${channel} unknown`, at);
  const flags = flagsOk(r, LinkDataFlag.Retransmission, "LinkData");
  const seq = r.u32();
  const ts = r.u32();
  const header = readOverlayHeader(r);
  m.peerIncarnation = peerIncarnation;
  m.channel = channel as LinkChannel;
  m.flags = flags;
  m.seq = seq;
  m.ts = ts;
  m.header = header;
  m.payload = r.rest();
}

/** A LinkData message with every field zero (to be filled by `readLinkData`). */
export function blankLinkData(): MutableLinkData {
  return {
    _tag: "LinkData",
    peerIncarnation: 0,
    channel: LinkType.BestEffort,
    flags: 0,
    seq: 0,
    ts: 0,
    header: { src: 0, srcPort: 0, dst: 0, dstPort: 0, dstKind: 0, ttl: 0 },
    payload: EMPTY,
  };
}
const EMPTY = new Uint8Array(0);

export const LinkDataSpec = defineMessage<LinkData>({
  type: LINK_DATA_TYPE,
  tag: "LinkData",
  encode(w: Writer, m: LinkData) {
    w.u32(m.peerIncarnation).u8(m.channel).u8(m.flags).u32(m.seq).u32(m.ts);
    writeOverlayHeader(w, m.header);
    w.bytes(m.payload);
  },
  decode(r: Reader): LinkData {
    const m = blankLinkData();
    readLinkData(r, m);
    return m;
  },
});

export const LinkAckSpec = defineMessage<LinkAck>({
  type: 0x13,
  tag: "LinkAck",
  encode(w: Writer, m: LinkAck) {
    if (m.ranges.length > MAX_ACK_RANGES)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `LinkAck: ${m.ranges.length} ranges, max ${MAX_ACK_RANGES}`,
      );
    w.u32(m.peerIncarnation).u32(m.cumAck).u32(m.limit).u32(m.echoTs).u32(m.ackDelay).u8(m.ranges.length);
    for (const g of m.ranges) w.u32(g.start).u32(g.end);
  },
  decode(r: Reader): LinkAck {
    const peerIncarnation = r.u32();
    const cumAck = r.u32();
    const limit = r.u32();
    const echoTs = r.u32();
    const ackDelay = r.u32();
    const at = r.offset;
    const n = r.u8();
    if (n > MAX_ACK_RANGES)
      throw new WireError(WireErrorCode.FieldOutOfRange, `LinkAck: ${n} ranges, max ${MAX_ACK_RANGES}`, at);
    const ranges: SackRange[] = [];
    for (let i = 0; i < n; i++) {
      const rat = r.offset;
      const start = r.u32();
      const end = r.u32();
      if (start === end) throw new WireError(WireErrorCode.FieldOutOfRange, "LinkAck: empty SACK range", rat);
      ranges.push({ start, end });
    }
    return { _tag: "LinkAck", peerIncarnation, cumAck, limit, echoTs, ackDelay, ranges };
  },
});

export const RealtimeNackSpec = defineMessage<RealtimeNack>({
  type: 0x14,
  tag: "RealtimeNack",
  encode(w: Writer, m: RealtimeNack) {
    if (m.seqs.length < 1 || m.seqs.length > MAX_NACK_SEQS)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `RealtimeNack: ${m.seqs.length} seqs, need 1..${MAX_NACK_SEQS}`,
      );
    w.u32(m.peerIncarnation).u8(m.seqs.length);
    for (const s of m.seqs) w.u32(s);
  },
  decode(r: Reader): RealtimeNack {
    const peerIncarnation = r.u32();
    const at = r.offset;
    const n = r.u8();
    if (n < 1 || n > MAX_NACK_SEQS)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `RealtimeNack: ${n} seqs, need 1..${MAX_NACK_SEQS}`,
        at,
      );
    const seqs: number[] = [];
    for (let i = 0; i < n; i++) seqs.push(r.u32());
    return { _tag: "RealtimeNack", peerIncarnation, seqs };
  },
});

/** Messages of the links (0x11-0x14 used; 0x15-0x1F reserved). */
export type LinkMessage = Hello | LinkData | LinkAck | RealtimeNack;
export const linkMessages = [HelloSpec, LinkDataSpec, LinkAckSpec, RealtimeNackSpec] as const;
