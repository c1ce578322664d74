import type { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { defineMessage, type MessageSpec } from "../registry.ts";

/**
 * Routing state items (docs/wire.md section 4). An item is one directed edge (`origin` -> `key`, value
 * = cost, `ROUTE_COST_DOWN` when the edge is withdrawn) or one group membership flag (`origin` is a
 * member of group `key` when value is 1, has left when 0). Each carries the origin's version
 * (incarnation, seq), compared lexicographically as unsigned integers.
 */
export const RouteItemKind = { Edge: 0, Group: 1 } as const;
export type RouteItemKind = (typeof RouteItemKind)[keyof typeof RouteItemKind];

/** The cost value of a withdrawn (down) edge. Live costs are in [1, 0xfffffffe]. */
export const ROUTE_COST_DOWN = 0xffffffff;

/** Bytes per item in a RouteUpdate and per reference in a RouteAck. */
export const ROUTE_ITEM_BYTES = 21;
export const ROUTE_REF_BYTES = 17;
/** Items per message; keeps a frame near 1,360 bytes (below a 1,400-byte path MTU). */
export const MAX_ROUTE_ITEMS = 64;

/** A version-stamped reference to one state item (what an ack names). */
export interface RouteItemRef {
  readonly kind: RouteItemKind;
  readonly origin: number;
  readonly key: number;
  readonly incarnation: number;
  readonly seq: number;
}

export interface RouteItem extends RouteItemRef {
  readonly value: number;
}

/** Flooded link-state and group-state items; each must be acked by the receiving neighbour. 0x20. */
export interface RouteUpdate {
  readonly _tag: "RouteUpdate";
  readonly items: readonly RouteItem[];
}

/** Acknowledges items of RouteUpdates (by exact version). 0x21. */
export interface RouteAck {
  readonly _tag: "RouteAck";
  readonly items: readonly RouteItemRef[];
}

function writeCount(w: Writer, n: number, what: string): void {
  if (n > MAX_ROUTE_ITEMS) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what} has ${n} items, max ${MAX_ROUTE_ITEMS}`);
  }
  w.u8(n);
}

function readCount(r: Reader, per: number, what: string): number {
  const at = r.offset;
  const n = r.u8();
  if (n > MAX_ROUTE_ITEMS) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what} count ${n} above ${MAX_ROUTE_ITEMS}`, at);
  }
  if (r.remaining !== n * per) {
    throw new WireError(
      r.remaining < n * per ? WireErrorCode.Truncated : WireErrorCode.TrailingBytes,
      `${what} count ${n} needs ${n * per} bytes, body has ${r.remaining}`,
      at,
    );
  }
  return n;
}

function writeRef(w: Writer, it: RouteItemRef): void {
  if (it.kind !== RouteItemKind.Edge && it.kind !== RouteItemKind.Group) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `route item kind ${String(it.kind)} unknown`);
  }
  w.u8(it.kind).u32(it.origin).u32(it.key).u32(it.incarnation).u32(it.seq);
}

function readRef(r: Reader): RouteItemRef {
  const at = r.offset;
  const kind = r.u8();
  if (kind > 1) throw new WireError(WireErrorCode.FieldOutOfRange, `route item kind ${kind} unknown`, at);
  const origin = r.u32();
  const key = r.u32();
  const incarnation = r.u32();
  const seq = r.u32();
  return { kind: kind as RouteItemKind, origin, key, incarnation, seq };
}

function checkValue(kind: RouteItemKind, value: number, at?: number): void {
  const ok = kind === RouteItemKind.Edge ? value >= 1 : value === 0 || value === 1;
  if (!ok) {
    throw new WireError(
      WireErrorCode.FieldOutOfRange,
      kind === RouteItemKind.Edge ? `edge cost 0 is invalid` : `group flag ${value} must be 0 or 1`,
      at,
    );
  }
}

export const RouteUpdateSpec = defineMessage<RouteUpdate>({
  type: 0x20,
  tag: "RouteUpdate",
  encode(w, m) {
    writeCount(w, m.items.length, "RouteUpdate");
    for (const it of m.items) {
      checkValue(it.kind, it.value);
      writeRef(w, it);
      w.u32(it.value);
    }
  },
  decode(r) {
    const n = readCount(r, ROUTE_ITEM_BYTES, "RouteUpdate");
    const items: RouteItem[] = [];
    for (let i = 0; i < n; i++) {
      const kindAt = r.offset;
      const kind = r.u8();
      if (kind > 1)
        throw new WireError(WireErrorCode.FieldOutOfRange, `route item kind ${kind} unknown`, kindAt);
      const origin = r.u32();
      const key = r.u32();
      const incarnation = r.u32();
      const seq = r.u32();
      const at = r.offset;
      const value = r.u32();
      checkValue(kind as RouteItemKind, value, at);
      items.push({ kind: kind as RouteItemKind, origin, key, incarnation, seq, value });
    }
    return { _tag: "RouteUpdate", items };
  },
});

export const RouteAckSpec = defineMessage<RouteAck>({
  type: 0x21,
  tag: "RouteAck",
  encode(w, m) {
    writeCount(w, m.items.length, "RouteAck");
    for (const it of m.items) writeRef(w, it);
  },
  decode(r) {
    const n = readCount(r, ROUTE_REF_BYTES, "RouteAck");
    const items: RouteItemRef[] = [];
    for (let i = 0; i < n; i++) items.push(readRef(r));
    return { _tag: "RouteAck", items };
  },
});

/** Messages of the routing: link-state updates, acks, database exchange, groups (0x20-0x2F). */
export type RoutingMessage = RouteUpdate | RouteAck;
export const routingMessages: readonly MessageSpec<RoutingMessage>[] = [
  RouteUpdateSpec,
  RouteAckSpec,
] as readonly MessageSpec<RoutingMessage>[];
