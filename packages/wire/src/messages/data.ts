import type { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { defineMessage } from "../registry.ts";

/** Where an overlay packet goes: one node, every member of a group, or the nearest member. */
export const DestKind = { Node: 0, Multicast: 1, Anycast: 2 } as const;
export type DestKind = (typeof DestKind)[keyof typeof DestKind];

/**
 * The end-to-end header every overlay data packet carries, whatever link it crosses:
 * source node and port, destination (node or group) and port, hop limit. Never modified once made:
 * decoding returns the same object for consecutive identical headers (a flow's packets), so a
 * header must be treated as immutable.
 */
export interface OverlayHeader {
  readonly src: number;
  readonly srcPort: number;
  readonly dst: number;
  readonly dstPort: number;
  readonly dstKind: DestKind;
  readonly ttl: number;
}

export const OVERLAY_HEADER_BYTES = 14;

export function writeOverlayHeader(w: Writer, h: OverlayHeader): void {
  w.u32(h.src).u16(h.srcPort).u32(h.dst).u16(h.dstPort).u8(h.dstKind).u8(h.ttl);
}

/**
 * The last header decoded: the next one with the same fields is this same object (headers are
 * immutable), so a flow's packets do not cost a header object each (issue 10).
 */
let lastHeader: OverlayHeader = { src: 0, srcPort: 0, dst: 0, dstPort: 0, dstKind: DestKind.Node, ttl: 0 };

export function readOverlayHeader(r: Reader): OverlayHeader {
  const src = r.u32();
  const srcPort = r.u16();
  const dst = r.u32();
  const dstPort = r.u16();
  const kindAt = r.offset;
  const dstKind = r.u8();
  if (dstKind > 2) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `dstKind ${dstKind} unknown`, kindAt);
  }
  const ttl = r.u8();
  const h = lastHeader;
  if (
    h.src === src &&
    h.srcPort === srcPort &&
    h.dst === dst &&
    h.dstPort === dstPort &&
    h.dstKind === dstKind &&
    h.ttl === ttl
  )
    return h;
  lastHeader = { src, srcPort, dst, dstPort, dstKind: dstKind as DestKind, ttl };
  return lastHeader;
}

/** An overlay packet on a best-effort link: header and opaque payload, nothing else. Type 0x10. */
export interface Datagram {
  readonly _tag: "Datagram";
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
}

export const DatagramSpec = defineMessage<Datagram>({
  type: 0x10,
  tag: "Datagram",
  encode(w, m) {
    writeOverlayHeader(w, m.header);
    w.bytes(m.payload);
  },
  decode(r) {
    const header = readOverlayHeader(r);
    return { _tag: "Datagram", header, payload: r.rest() };
  },
});

export type DataMessage = Datagram;
export const dataMessages = [DatagramSpec] as const;
