import type { Reader, Writer } from "../cursor.ts";
import { WireError, WireErrorCode } from "../errors.ts";
import { defineMessage } from "../registry.ts";

/**
 * A view id, also used as a proposal id: a counter that only grows, the id of the coordinator that
 * made the view, and that coordinator's incarnation (so a restarted coordinator can never reuse an
 * id). Ordered by (counter, coord, coordInc). The all-zero id means "no view".
 */
export interface MbViewId {
  readonly counter: number;
  readonly coord: number;
  readonly coordInc: number;
}

/** One member of a proposal: node id and incarnation. */
export interface MbMemberRef {
  readonly id: number;
  readonly inc: number;
}

/** One member of an Install: who, which view it comes from, and where it must be in that view first. */
export interface MbInstallEntry {
  readonly id: number;
  readonly inc: number;
  /** The view the member reported in its FlushState (all zero: none). */
  readonly oldView: MbViewId;
  /** The member must have delivered exactly messages 1..target of `oldView` before installing. */
  readonly target: number;
  /** A member of the same old view that holds messages up to `target` (asked for retransmission). */
  readonly holder: number;
  /**
   * The highest senderSeq of this member (this incarnation) that some member of the new view has
   * delivered, in any earlier view: the member's own pending messages up to it are done, and the
   * sequencer of the new view starts this sender above it (so nothing is delivered twice).
   */
  readonly floor: number;
}

/** A sender incarnation and the highest of its senderSeqs a member has delivered. */
export interface MbFloor {
  readonly id: number;
  readonly inc: number;
  readonly senderSeq: number;
}

/** Largest member list a Propose or Install may carry. */
export const MB_MAX_MEMBERS = 1024;

export const MB_VIEW_ID_BYTES = 12;

export function writeMbViewId(w: Writer, v: MbViewId): void {
  w.u32(v.counter).u32(v.coord).u32(v.coordInc);
}

export function readMbViewId(r: Reader): MbViewId {
  return { counter: r.u32(), coord: r.u32(), coordInc: r.u32() };
}

function readCount(r: Reader, each: number, what: string): number {
  const at = r.offset;
  const n = r.u16();
  if (n > MB_MAX_MEMBERS) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: ${n} members, max ${MB_MAX_MEMBERS}`, at);
  }
  if (n * each > r.remaining) {
    throw new WireError(WireErrorCode.Truncated, `${what}: ${n} members need ${n * each} bytes`, at);
  }
  return n;
}

function writeCount(w: Writer, n: number, what: string): void {
  if (n > MB_MAX_MEMBERS) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: ${n} members, max ${MB_MAX_MEMBERS}`);
  }
  w.u16(n);
}

/** Heartbeat flag bits. */
export const MbHeartbeatFlag = {
  /** The sender has an installed view. */
  InView: 0x01,
  /** The sender is the sequencer of its view. */
  Sequencer: 0x02,
  /** The sender is blocked in a view change (it accepted a proposal it has not installed). */
  Flushing: 0x04,
} as const;

/**
 * Liveness and state summary, sent to every known peer each heartbeat interval (and to the
 * discovery address). Type 0x40.
 */
export interface MbHeartbeat {
  readonly _tag: "MbHeartbeat";
  /** FNV-1a 32-bit hash of the group name. */
  readonly group: number;
  /** Per-incarnation counter of heartbeats, so a receiver keeps only the newest summary. */
  readonly hbSeq: number;
  readonly flags: number;
  /** The sender's installed view (zero: none). */
  readonly view: MbViewId;
  /** The highest view/proposal counter the sender has seen. */
  readonly maxCounter: number;
  /** Messages 1..delivered of `view` are delivered at the sender. */
  readonly delivered: number;
  /** Highest sequence number the sender knows to exist in `view` (the sequencer's last assigned). */
  readonly seqHigh: number;
}

export const MbHeartbeatSpec = defineMessage<MbHeartbeat>({
  type: 0x40,
  tag: "MbHeartbeat",
  encode(w, m) {
    w.u32(m.group).u32(m.hbSeq).u8(m.flags);
    writeMbViewId(w, m.view);
    w.u32(m.maxCounter).u32(m.delivered).u32(m.seqHigh);
  },
  decode(r) {
    const group = r.u32();
    const hbSeq = r.u32();
    const flagsAt = r.offset;
    const flags = r.u8();
    if ((flags & ~0x07) !== 0) {
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `unknown heartbeat flags 0x${flags.toString(16)}`,
        flagsAt,
      );
    }
    const view = readMbViewId(r);
    return {
      _tag: "MbHeartbeat",
      group,
      hbSeq,
      flags,
      view,
      maxCounter: r.u32(),
      delivered: r.u32(),
      seqHigh: r.u32(),
    };
  },
});

/** A graceful leave: the sender is gone from now on (its current incarnation). Type 0x41. */
export interface MbLeave {
  readonly _tag: "MbLeave";
  readonly group: number;
}

export const MbLeaveSpec = defineMessage<MbLeave>({
  type: 0x41,
  tag: "MbLeave",
  encode(w, m) {
    w.u32(m.group);
  },
  decode(r) {
    return { _tag: "MbLeave", group: r.u32() };
  },
});

/** Phase 1 of a view change: the coordinator proposes a member list under a new id. Type 0x42. */
export interface MbPropose {
  readonly _tag: "MbPropose";
  readonly group: number;
  readonly pid: MbViewId;
  /** Sorted by id, ascending; the coordinator is the first. */
  readonly members: readonly MbMemberRef[];
}

export const MbProposeSpec = defineMessage<MbPropose>({
  type: 0x42,
  tag: "MbPropose",
  encode(w, m) {
    w.u32(m.group);
    writeMbViewId(w, m.pid);
    writeCount(w, m.members.length, "MbPropose");
    for (const x of m.members) w.u32(x.id).u32(x.inc);
  },
  decode(r) {
    const group = r.u32();
    const pid = readMbViewId(r);
    const n = readCount(r, 8, "MbPropose");
    const members: MbMemberRef[] = [];
    for (let i = 0; i < n; i++) members.push({ id: r.u32(), inc: r.u32() });
    return { _tag: "MbPropose", group, pid, members };
  },
});

/** A member refuses a proposal that is not newer than one it accepted; carries its highest counter. Type 0x43. */
export interface MbReject {
  readonly _tag: "MbReject";
  readonly pid: MbViewId;
  readonly maxCounter: number;
}

export const MbRejectSpec = defineMessage<MbReject>({
  type: 0x43,
  tag: "MbReject",
  encode(w, m) {
    writeMbViewId(w, m.pid);
    w.u32(m.maxCounter);
  },
  decode(r) {
    const pid = readMbViewId(r);
    return { _tag: "MbReject", pid, maxCounter: r.u32() };
  },
});

/** A member's answer to a proposal: its current view and how far it delivered in it. Type 0x44. */
export interface MbFlushState {
  readonly _tag: "MbFlushState";
  readonly pid: MbViewId;
  readonly oldView: MbViewId;
  readonly delivered: number;
  /** For proposed members it has delivered messages from: the highest senderSeq delivered. */
  readonly floors: readonly MbFloor[];
}

export const MbFlushStateSpec = defineMessage<MbFlushState>({
  type: 0x44,
  tag: "MbFlushState",
  encode(w, m) {
    writeMbViewId(w, m.pid);
    writeMbViewId(w, m.oldView);
    w.u32(m.delivered);
    writeCount(w, m.floors.length, "MbFlushState");
    for (const f of m.floors) w.u32(f.id).u32(f.inc).u32(f.senderSeq);
  },
  decode(r) {
    const pid = readMbViewId(r);
    const oldView = readMbViewId(r);
    const delivered = r.u32();
    const n = readCount(r, 12, "MbFlushState");
    const floors: MbFloor[] = [];
    for (let i = 0; i < n; i++) floors.push({ id: r.u32(), inc: r.u32(), senderSeq: r.u32() });
    return { _tag: "MbFlushState", pid, oldView, delivered, floors };
  },
});

/** Phase 2: the new view (id = the proposal id) with each member's sync target. Type 0x45. */
export interface MbInstall {
  readonly _tag: "MbInstall";
  readonly pid: MbViewId;
  /** Sorted by id, ascending. */
  readonly entries: readonly MbInstallEntry[];
}

const MB_INSTALL_ENTRY_BYTES = 8 + MB_VIEW_ID_BYTES + 12;

export const MbInstallSpec = defineMessage<MbInstall>({
  type: 0x45,
  tag: "MbInstall",
  encode(w, m) {
    writeMbViewId(w, m.pid);
    writeCount(w, m.entries.length, "MbInstall");
    for (const e of m.entries) {
      w.u32(e.id).u32(e.inc);
      writeMbViewId(w, e.oldView);
      w.u32(e.target).u32(e.holder).u32(e.floor);
    }
  },
  decode(r) {
    const pid = readMbViewId(r);
    const n = readCount(r, MB_INSTALL_ENTRY_BYTES, "MbInstall");
    const entries: MbInstallEntry[] = [];
    for (let i = 0; i < n; i++) {
      const id = r.u32();
      const inc = r.u32();
      const oldView = readMbViewId(r);
      const target = r.u32();
      const holder = r.u32();
      entries.push({ id, inc, oldView, target, holder, floor: r.u32() });
    }
    return { _tag: "MbInstall", pid, entries };
  },
});

/** A member's answer to an Install: 1 installed, 0 refused (its state no longer matches). Type 0x46. */
export interface MbInstallAck {
  readonly _tag: "MbInstallAck";
  readonly pid: MbViewId;
  readonly ok: boolean;
}

export const MbInstallAckSpec = defineMessage<MbInstallAck>({
  type: 0x46,
  tag: "MbInstallAck",
  encode(w, m) {
    writeMbViewId(w, m.pid);
    w.u8(m.ok ? 1 : 0);
  },
  decode(r) {
    const pid = readMbViewId(r);
    const at = r.offset;
    const ok = r.u8();
    if (ok > 1)
      throw new WireError(WireErrorCode.FieldOutOfRange, `InstallAck ok must be 0 or 1, got ${ok}`, at);
    return { _tag: "MbInstallAck", pid, ok: ok === 1 };
  },
});

/** Most messages one MbData or MbOrdered carries. */
export const MB_MAX_BATCH = 255;

function readBatchCount(r: Reader, what: string): number {
  const at = r.offset;
  const n = r.u8();
  if (n === 0) throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: empty batch`, at);
  return n;
}

function writeBatchCount(w: Writer, n: number, what: string): void {
  if (n < 1 || n > MB_MAX_BATCH) {
    throw new WireError(WireErrorCode.FieldOutOfRange, `${what}: batch of ${n}, must be 1..${MB_MAX_BATCH}`);
  }
  w.u8(n);
}

/**
 * A member's multicasts, sent to the sequencer of its view for ordering: consecutive senderSeqs
 * `firstSenderSeq`, `firstSenderSeq + 1`, ... with one payload each. Type 0x47.
 */
export interface MbData {
  readonly _tag: "MbData";
  readonly view: MbViewId;
  /** The sender's lowest not-yet-delivered senderSeq: the sequencer orders this sender from there. */
  readonly firstPending: number;
  /** Per-incarnation sender sequence number of the first payload, from 1, never reused. */
  readonly firstSenderSeq: number;
  /** 1..255 payloads. */
  readonly payloads: readonly Uint8Array[];
}

export const MbDataSpec = defineMessage<MbData>({
  type: 0x47,
  tag: "MbData",
  encode(w, m) {
    writeMbViewId(w, m.view);
    w.u32(m.firstPending).u32(m.firstSenderSeq);
    writeBatchCount(w, m.payloads.length, "MbData");
    for (const p of m.payloads) w.bytes16(p);
  },
  decode(r) {
    const view = readMbViewId(r);
    const firstPending = r.u32();
    const firstSenderSeq = r.u32();
    const n = readBatchCount(r, "MbData");
    const payloads: Uint8Array[] = [];
    for (let i = 0; i < n; i++) payloads.push(r.bytes16());
    return { _tag: "MbData", view, firstPending, firstSenderSeq, payloads };
  },
});

/** One ordered message inside an MbOrdered. */
export interface MbOrderedEntry {
  readonly sender: number;
  readonly senderSeq: number;
  readonly payload: Uint8Array;
}

/**
 * Messages with their places in the view's total order, from the sequencer (or a holder):
 * consecutive seqs `firstSeq`, `firstSeq + 1`, ... Type 0x48.
 */
export interface MbOrdered {
  readonly _tag: "MbOrdered";
  readonly view: MbViewId;
  /** Position in the view's total order of the first entry, from 1. */
  readonly firstSeq: number;
  /** Every member has received messages 1..stable (they may be discarded). */
  readonly stable: number;
  /** 1..255 entries. */
  readonly entries: readonly MbOrderedEntry[];
}

export const MbOrderedSpec = defineMessage<MbOrdered>({
  type: 0x48,
  tag: "MbOrdered",
  encode(w, m) {
    writeMbViewId(w, m.view);
    w.u32(m.firstSeq).u32(m.stable);
    writeBatchCount(w, m.entries.length, "MbOrdered");
    for (const e of m.entries) w.u32(e.sender).u32(e.senderSeq).bytes16(e.payload);
  },
  decode(r) {
    const view = readMbViewId(r);
    const firstSeq = r.u32();
    const stable = r.u32();
    const n = readBatchCount(r, "MbOrdered");
    const entries: MbOrderedEntry[] = [];
    for (let i = 0; i < n; i++) {
      const sender = r.u32();
      const senderSeq = r.u32();
      entries.push({ sender, senderSeq, payload: r.bytes16() });
    }
    return { _tag: "MbOrdered", view, firstSeq, stable, entries };
  },
});

/** Asks for MbOrdered messages from..to (inclusive) of `view` to be sent again. Type 0x49. */
export interface MbNack {
  readonly _tag: "MbNack";
  readonly view: MbViewId;
  readonly from: number;
  readonly to: number;
}

export const MbNackSpec = defineMessage<MbNack>({
  type: 0x49,
  tag: "MbNack",
  encode(w, m) {
    writeMbViewId(w, m.view);
    w.u32(m.from).u32(m.to);
  },
  decode(r) {
    const view = readMbViewId(r);
    return { _tag: "MbNack", view, from: r.u32(), to: r.u32() };
  },
});

/** A member tells the sequencer it has received messages 1..delivered of `view`. Type 0x4A. */
export interface MbAck {
  readonly _tag: "MbAck";
  readonly view: MbViewId;
  readonly delivered: number;
}

export const MbAckSpec = defineMessage<MbAck>({
  type: 0x4a,
  tag: "MbAck",
  encode(w, m) {
    writeMbViewId(w, m.view);
    w.u32(m.delivered);
  },
  decode(r) {
    const view = readMbViewId(r);
    return { _tag: "MbAck", view, delivered: r.u32() };
  },
});

/** Messages of the membership: heartbeats, views, ordered messages (0x40-0x4F). */
export type MembershipMessage =
  | MbHeartbeat
  | MbLeave
  | MbPropose
  | MbReject
  | MbFlushState
  | MbInstall
  | MbInstallAck
  | MbData
  | MbOrdered
  | MbNack
  | MbAck;

export const membershipMessages = [
  MbHeartbeatSpec,
  MbLeaveSpec,
  MbProposeSpec,
  MbRejectSpec,
  MbFlushStateSpec,
  MbInstallSpec,
  MbInstallAckSpec,
  MbDataSpec,
  MbOrderedSpec,
  MbNackSpec,
  MbAckSpec,
] as const;
