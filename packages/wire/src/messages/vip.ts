import type { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { defineMessage, type MessageSpec } from "../registry.ts";
import { type MbViewId, readMbViewId, writeMbViewId } from "./membership.ts";

/*
 * Messages of the VIP fail-over (0x50-0x5F), specified in docs/wire.md §7. They travel as payloads
 * of membership multicasts (one whole frame per payload), so they are delivered in the view's total
 * order; the frame's sender is the member's node id and its incarnation the membership incarnation.
 */

/** Largest group index + 1 (the table size limit). */
export const VIP_MAX_GROUPS = 1024;
/** Most entries in one VipArpCache message. */
export const VIP_MAX_ARP_ENTRIES = 256;

/** VipState flag bits. */
export const VipStateFlag = {
  /** The sender is mature (past its cold-start hold-off, or matured by contagion). */
  Mature: 0x01,
  /** The sender is settled (past its flap hold-off). */
  Settled: 0x02,
} as const;

function writeGroups(w: Writer, groups: readonly number[], what: string): void {
  if (groups.length > VIP_MAX_GROUPS)
    throw new WireError(
      WireErrorCode.FieldOutOfRange,
      `${what}: ${groups.length} groups, max ${VIP_MAX_GROUPS}`,
    );
  w.u16(groups.length);
  for (const g of groups) {
    if (!Number.isInteger(g) || g < 0 || g >= VIP_MAX_GROUPS)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `${what}: group index ${g} not in [0, ${VIP_MAX_GROUPS})`,
      );
    w.u16(g);
  }
}

function readGroups(r: Reader, what: string): number[] {
  const at = r.offset;
  const n = r.u16();
  if (n > VIP_MAX_GROUPS)
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: ${n} groups, max ${VIP_MAX_GROUPS}`, at);
  if (2 * n > r.remaining)
    throw new WireError(WireErrorCode.Truncated, `${what}: ${n} groups need ${2 * n} bytes`, at);
  const out: number[] = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const gAt = r.offset;
    const g = r.u16();
    if (g >= VIP_MAX_GROUPS || g <= prev)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `${what}: group indices must be ascending and below ${VIP_MAX_GROUPS}, got ${g} after ${prev}`,
        gAt,
      );
    prev = g;
    out.push(g);
  }
  return out;
}

/**
 * A member's state for one view, multicast once by every member right after it installs the view.
 * Type 0x50.
 */
export interface VipState {
  readonly _tag: "VipState";
  /** The view this state is for; receivers drop it in any other view. */
  readonly view: MbViewId;
  /** Fingerprint of the sender's group table (names and addresses, in order). */
  readonly table: number;
  readonly flags: number;
  /** Groups the sender holds, ascending. */
  readonly held: readonly number[];
  /** Groups the sender prefers, ascending. */
  readonly prefers: readonly number[];
}

export const VipStateSpec = defineMessage<VipState>({
  type: 0x50,
  tag: "VipState",
  encode(w, m) {
    writeMbViewId(w, m.view);
    w.u32(m.table).u8(m.flags);
    writeGroups(w, m.held, "VipState.held");
    writeGroups(w, m.prefers, "VipState.prefers");
  },
  decode(r) {
    const view = readMbViewId(r);
    const table = r.u32();
    const flagsAt = r.offset;
    const flags = r.u8();
    if ((flags & ~0x03) !== 0)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `unknown VipState flags 0x${flags.toString(16)}`,
        flagsAt,
      );
    const held = readGroups(r, "VipState.held");
    const prefers = readGroups(r, "VipState.prefers");
    return { _tag: "VipState", view, table, flags, held, prefers };
  },
});

/** The sender's cold-start hold-off ended: every member of `view` that delivers it is mature. Type 0x51. */
export interface VipMature {
  readonly _tag: "VipMature";
  readonly view: MbViewId;
}

export const VipMatureSpec = defineMessage<VipMature>({
  type: 0x51,
  tag: "VipMature",
  encode(w, m) {
    writeMbViewId(w, m.view);
  },
  decode(r) {
    return { _tag: "VipMature", view: readMbViewId(r) };
  },
});

/** The sender's flap hold-off ended: it may receive groups by preference and balancing. Type 0x52. */
export interface VipSettled {
  readonly _tag: "VipSettled";
  readonly view: MbViewId;
}

export const VipSettledSpec = defineMessage<VipSettled>({
  type: 0x52,
  tag: "VipSettled",
  encode(w, m) {
    writeMbViewId(w, m.view);
  },
  decode(r) {
    return { _tag: "VipSettled", view: readMbViewId(r) };
  },
});

/**
 * A balancing round (sent by the view's first member every balance interval): every member applies
 * up to `maxMoves` balancing moves to its copy of the table at this point of the total order.
 * Type 0x53.
 */
export interface VipBalance {
  readonly _tag: "VipBalance";
  readonly view: MbViewId;
  /** 1..1024 moves. */
  readonly maxMoves: number;
}

export const VipBalanceSpec = defineMessage<VipBalance>({
  type: 0x53,
  tag: "VipBalance",
  encode(w, m) {
    if (!Number.isInteger(m.maxMoves) || m.maxMoves < 1 || m.maxMoves > VIP_MAX_GROUPS)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `VipBalance.maxMoves ${m.maxMoves} not in [1, ${VIP_MAX_GROUPS}]`,
      );
    writeMbViewId(w, m.view);
    w.u16(m.maxMoves);
  },
  decode(r) {
    const view = readMbViewId(r);
    const at = r.offset;
    const maxMoves = r.u16();
    if (maxMoves < 1 || maxMoves > VIP_MAX_GROUPS)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `VipBalance.maxMoves ${maxMoves} not in [1, ${VIP_MAX_GROUPS}]`,
        at,
      );
    return { _tag: "VipBalance", view, maxMoves };
  },
});

/** One neighbour a member has seen: IPv4 or IPv6 address and its MAC. */
export interface VipNeighbor {
  /** 4 or 16 bytes. */
  readonly ip: Uint8Array;
  /** 6 bytes. */
  readonly mac: Uint8Array;
}

/**
 * A sample of the sender's neighbour (ARP / NDP) cache, shared so that a member taking over a VIP
 * can notify every neighbour any member has talked to. Type 0x54.
 */
export interface VipArpCache {
  readonly _tag: "VipArpCache";
  readonly entries: readonly VipNeighbor[];
}

export const VipArpCacheSpec = defineMessage<VipArpCache>({
  type: 0x54,
  tag: "VipArpCache",
  encode(w, m) {
    if (m.entries.length > VIP_MAX_ARP_ENTRIES)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `VipArpCache: ${m.entries.length} entries, max ${VIP_MAX_ARP_ENTRIES}`,
      );
    w.u16(m.entries.length);
    for (const e of m.entries) {
      if (e.ip.length !== 4 && e.ip.length !== 16)
        throw new WireError(WireErrorCode.FieldOutOfRange, `VipArpCache: address of ${e.ip.length} bytes`);
      if (e.mac.length !== 6)
        throw new WireError(WireErrorCode.FieldOutOfRange, `VipArpCache: MAC of ${e.mac.length} bytes`);
      w.u8(e.ip.length === 4 ? 4 : 6)
        .bytes(e.ip)
        .bytes(e.mac);
    }
  },
  decode(r) {
    const at = r.offset;
    const n = r.u16();
    if (n > VIP_MAX_ARP_ENTRIES)
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `VipArpCache: ${n} entries, max ${VIP_MAX_ARP_ENTRIES}`,
        at,
      );
    const entries: VipNeighbor[] = [];
    for (let i = 0; i < n; i++) {
      const fAt = r.offset;
      const family = r.u8();
      if (family !== 4 && family !== 6)
        throw new WireError(
          WireErrorCode.FieldOutOfRange,
          `VipArpCache: family ${family}, expected 4 or 6`,
          fAt,
        );
      const ip = r.bytes(family === 4 ? 4 : 16).slice();
      const mac = r.bytes(6).slice();
      entries.push({ ip, mac });
    }
    return { _tag: "VipArpCache", entries };
  },
});

/** Messages of the VIP fail-over state (0x50-0x5F). */
export type VipMessage = VipState | VipMature | VipSettled | VipBalance | VipArpCache;
export const vipMessages: readonly MessageSpec<VipMessage>[] = [
  VipStateSpec,
  VipMatureSpec,
  VipSettledSpec,
  VipBalanceSpec,
  VipArpCacheSpec,
] as readonly MessageSpec<VipMessage>[];
