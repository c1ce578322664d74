import { type Logger, type NodeId, SpinesError } from "@spines-ts/primitives";
import type { MbViewId } from "@spines-ts/wire";

/** A view id: (counter, coordinator, coordinator incarnation), ordered lexicographically. */
export type ViewId = MbViewId;

export const NO_VIEW: ViewId = Object.freeze({ counter: 0, coord: 0, coordInc: 0 });

/** Compares two view ids: negative, zero or positive. */
export function compareViewIds(a: ViewId, b: ViewId): number {
  return a.counter - b.counter || a.coord - b.coord || a.coordInc - b.coordInc;
}

export function sameViewId(a: ViewId, b: ViewId): boolean {
  return a.counter === b.counter && a.coord === b.coord && a.coordInc === b.coordInc;
}

/** A printable, map-friendly key for a view id: "counter.coord.inc". */
export function viewKey(v: ViewId): string {
  return `${v.counter}.${v.coord}.${v.coordInc}`;
}

/** An installed view, as the application sees it. */
export interface View {
  readonly id: ViewId;
  /** `viewKey(id)`. */
  readonly key: string;
  /** Member node ids, ascending: identical at every member that installs this view. */
  readonly members: readonly NodeId[];
  /** `incarnations[i]` is the incarnation of `members[i]`. */
  readonly incarnations: readonly number[];
  /** This member's index in `members`. */
  readonly myIndex: number;
  /**
   * The members that came from the same previous view as this member (this member included): the
   * set that moved together and therefore delivered the same messages in that view.
   */
  readonly transitional: readonly NodeId[];
  /** The view this member had before (NO_VIEW for its first). */
  readonly previous: ViewId;
}

/** One totally ordered message. */
export interface Delivery {
  readonly view: ViewId;
  /** Position in the view's total order, from 1. */
  readonly seq: number;
  readonly sender: NodeId;
  /** The sender's own sequence number (FIFO per sender incarnation). */
  readonly senderSeq: number;
  readonly payload: Uint8Array;
}

/** What the core tells the application. */
export type MembershipEvent =
  | { readonly type: "view"; readonly view: View }
  /** A view change has begun: messages of `view` delivered from now on (if any) complete the old view. */
  | { readonly type: "transitional"; readonly view: ViewId }
  | { readonly type: "message"; readonly message: Delivery }
  /** `multicast` returned false earlier; there is room again. */
  | { readonly type: "drain" }
  /** `leave()` completed: the member is gone; nothing more will be emitted. */
  | { readonly type: "left" };

/** Timing of failure detection and of the view-change protocol, in milliseconds. */
export interface Timing {
  /** A heartbeat goes to every known peer this often. */
  readonly heartbeatIntervalMs: number;
  /** A peer silent for this long is considered failed. */
  readonly failureTimeoutMs: number;
  /** Retransmission interval for data, proposals, installs, acks and nacks. */
  readonly retransmitMs: number;
  /** A view-change round that has not completed after this long is abandoned and restarted. */
  readonly viewChangeTimeoutMs: number;
}

/**
 * Built-in timing profiles. `default` excludes a crashed member within 500 ms on a LAN, `fast`
 * within 150 ms; both tolerate a member that is busy (no heartbeats sent or read) for 100 ms.
 */
export const profiles = {
  default: { heartbeatIntervalMs: 100, failureTimeoutMs: 350, retransmitMs: 20, viewChangeTimeoutMs: 300 },
  fast: { heartbeatIntervalMs: 15, failureTimeoutMs: 130, retransmitMs: 8, viewChangeTimeoutMs: 100 },
} as const satisfies Record<string, Timing>;
export type ProfileName = keyof typeof profiles;

/** Bounds on every buffer and table of the core. */
export interface Limits {
  /** Largest view (the lowest ids win when more are reachable). */
  readonly maxMembers: number;
  /** Largest peer table (configured plus discovered). */
  readonly maxPeers: number;
  /** Multicasts accepted but not yet delivered back to the sender; beyond this `multicast` returns false. */
  readonly maxPending: number;
  /** Data messages in flight to the sequencer per sender. */
  readonly window: number;
  /** Ordered messages not yet known to be received by every member (per view, at each member). */
  readonly maxUnstable: number;
  readonly maxPayloadBytes: number;
  /** Consecutive messages share a datagram up to this many payload bytes (keep under the MTU). */
  readonly batchBytes: number;
}

export const defaultLimits: Limits = {
  maxMembers: 128,
  maxPeers: 512,
  maxPending: 1024,
  window: 64,
  maxUnstable: 2048,
  maxPayloadBytes: 8192,
  batchBytes: 1200,
};

export interface MembershipConfig {
  readonly id: NodeId;
  /** A random nonzero u32 that distinguishes this run of the process from earlier ones. */
  readonly incarnation: number;
  readonly group: string;
  /** Peers to send heartbeats to (unicast). Peers heard from are added automatically. */
  readonly peers?: readonly NodeId[];
  /** Also emit each heartbeat to the discovery address (`Transmit.to === null`). */
  readonly announce?: boolean;
  readonly profile?: ProfileName;
  /** Overrides of the profile's timing. */
  readonly timing?: Partial<Timing>;
  readonly limits?: Partial<Limits>;
  readonly log?: Logger;
}

/** A datagram the core wants sent; `to === null` means the discovery (multicast/broadcast) address. */
export interface Transmit {
  readonly to: NodeId | null;
  readonly data: Uint8Array;
}

/** Base class of the membership errors. */
export class MembershipError extends SpinesError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = "MembershipError";
  }
}

/** An operation needs a joined member (call `join` first, and not after `leave`). */
export class NotJoinedError extends MembershipError {
  constructor(op: string) {
    super("ERR_MEMBERSHIP_NOT_JOINED", `${op}: this member has not joined (or has left)`);
    this.name = "NotJoinedError";
  }
}

/** FNV-1a 32-bit hash of a group name (the group field of the wire messages). */
export function groupHash(name: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}
