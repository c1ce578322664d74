/**
 * What the parts of the membership core share: identity, configuration, counters, the output
 * queues and the few flags that cross part boundaries. The parts are the failure detector
 * (detector.ts), the view change (view-change.ts) and the ordering within a view (ordering.ts);
 * core.ts is the glue that owns them and exposes the public API.
 */
import type { Logger, NodeId } from "@spines-ts/primitives";
import { RateLimitedLog } from "@spines-ts/primitives";
import { encode, type Message } from "@spines-ts/wire";
import type { Limits, MembershipEvent, Timing, Transmit } from "./types.ts";

/** Counters for observability and tests. */
export interface MembershipStats {
  badPackets: number;
  foreignGroup: number;
  viewsInstalled: number;
  proposalsStarted: number;
  installsRefused: number;
  delivered: number;
  dataRetransmits: number;
  orderedRetransmits: number;
  flowControlDrops: number;
  stalls: number;
  /** Own multicasts found delivered in a view this member was cut off from (not delivered back). */
  deliveredElsewhere: number;
}

/** NACK answers (and NACK requests) cover at most this many messages. */
export const MAX_NACK_BATCH = 64;

export function ascending(xs: readonly { readonly id: number }[]): boolean {
  for (let i = 1; i < xs.length; i++)
    if ((xs[i - 1] as { id: number }).id >= (xs[i] as { id: number }).id) return false;
  return true;
}

export function u32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

export class CoreContext {
  readonly stats: MembershipStats = {
    badPackets: 0,
    foreignGroup: 0,
    viewsInstalled: 0,
    proposalsStarted: 0,
    installsRefused: 0,
    delivered: 0,
    dataRetransmits: 0,
    orderedRetransmits: 0,
    flowControlDrops: 0,
    stalls: 0,
    deliveredElsewhere: 0,
  };
  readonly rl: RateLimitedLog;
  state: "idle" | "joined" | "left" = "idle";
  /** The time of the input being handled (kept by the detector's stall check). */
  lastActivity = 0;
  /** The peer table or a view changed: the coordinator check must run. */
  dirty = true;
  transmits: Transmit[] = [];
  events: MembershipEvent[] = [];

  readonly id: NodeId;
  readonly incarnation: number;
  readonly groupHash: number;
  readonly timing: Timing;
  readonly limits: Limits;

  constructor(
    id: NodeId,
    incarnation: number,
    groupHash: number,
    timing: Timing,
    limits: Limits,
    log: Logger,
  ) {
    this.id = id;
    this.incarnation = incarnation;
    this.groupHash = groupHash;
    this.timing = timing;
    this.limits = limits;
    this.rl = new RateLimitedLog(log);
  }

  encode(m: Message): Uint8Array {
    return encode({ sender: this.id, incarnation: this.incarnation }, m);
  }

  send(to: NodeId, m: Message): void {
    this.transmits.push({ to, data: this.encode(m) });
  }
}
