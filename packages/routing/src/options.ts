/**
 * The router's options and bounds, with the checks every input runs (`checkId`, `checkNow`) and
 * the resolution of options into the values the flooding and route-computation parts use.
 */
import { ConfigError } from "@spines-ts/primitives";
import { type LinkCosts, resolveLinkCosts } from "./link-costs.ts";
import { Metric } from "./metrics.ts";

/** Bounds on every table the router keeps. */
export interface RouterLimits {
  /** Origins (nodes) in the link-state database. */
  readonly maxOrigins: number;
  /** Edges (including withdrawn ones) one origin may advertise. */
  readonly maxEdgesPerOrigin: number;
  /** Group flags (including left ones) one origin may advertise. */
  readonly maxGroupsPerOrigin: number;
  /** Neighbours this node may have up at once (at most maxEdgesPerOrigin). */
  readonly maxNeighbors: number;
  /** Groups this node may join. */
  readonly maxLocalGroups: number;
  /** Messages waiting in the outbox; beyond it the oldest are dropped (flooding retransmits). */
  readonly maxOutbox: number;
  /** Events waiting to be polled; beyond it the oldest are dropped and counted. */
  readonly maxEvents: number;
  /** Unacknowledged items in flight per neighbour (a flow-control window for database exchange). */
  readonly windowItems: number;
  /** Source trees kept for multicast forwarding (least recently used evicted). */
  readonly treeCacheSize: number;
}

export const DEFAULT_LIMITS: RouterLimits = {
  maxOrigins: 4096,
  maxEdgesPerOrigin: 256,
  maxGroupsPerOrigin: 256,
  maxNeighbors: 128,
  maxLocalGroups: 256,
  maxOutbox: 8192,
  maxEvents: 8192,
  windowItems: 640,
  treeCacheSize: 64,
};

export interface RouterOptions {
  readonly id: number;
  /**
   * Identifies this run of the node; versions are (incarnation, seq). Best a boot counter; a random
   * u32 also works because a node that hears a newer version of its own item re-issues it above.
   */
  readonly incarnation: number;
  readonly metric?: Metric;
  /**
   * Static cost per neighbour (an integer 1..65535, e.g. spines.conf's edge costs; default 1): the
   * advertised cost of the link is this weight times the metric's cost (link-costs.ts).
   */
  readonly linkCosts?: LinkCosts;
  readonly limits?: Partial<RouterLimits>;
  /** Flood retransmission: rto = clamp(2 rtt + 20 ms, min, max) (initialMs before any rtt), doubled per timeout. */
  readonly retransmit?: { readonly initialMs?: number; readonly minMs?: number; readonly maxMs?: number };
  /**
   * A measured cost replaces the advertised one only if it differs by both `relative` (of the
   * advertised cost) and `absolute` units, and not sooner than `holdMs` after the previous change.
   */
  readonly hysteresis?: { readonly relative?: number; readonly absolute?: number; readonly holdMs?: number };
  /** An origin unreachable for this long is deleted with all it advertised. */
  readonly originTimeoutMs?: number;
  /**
   * The node ids of the overlay (e.g. every host of spines.conf). When given, items that name any
   * other node (as origin or edge end) are dropped (`dropBadNode`). Ids 0 and 0xFFFFFFFF are never
   * valid node ids in an item, with or without it.
   */
  readonly nodes?: Iterable<number>;
  /**
   * How far (in sequence numbers) an item may run ahead of the newest version this node holds of
   * its origin's current incarnation while the origin is reachable; further is dropped
   * (`dropVersionJump`): one forged item cannot push a version to the top (default 65,536).
   */
  readonly maxSeqJump?: number;
  /** Route computation runs this long after the first change, coalescing bursts (default 1 ms; 0: at the end of every input). */
  readonly computeDelayMs?: number;
}

/** Flood retransmission timer bounds (ms). */
export interface RetransmitTiming {
  readonly initialMs: number;
  readonly minMs: number;
  readonly maxMs: number;
}

/** Metric hysteresis (see `RouterOptions.hysteresis`). */
export interface Hysteresis {
  readonly relative: number;
  readonly absolute: number;
  readonly holdMs: number;
}

/** `RouterOptions` checked, with every default filled in. */
export interface ResolvedRouterOptions {
  readonly id: number;
  readonly incarnation: number;
  readonly metric: Metric;
  readonly linkCosts: Map<number, number>;
  readonly limits: RouterLimits;
  readonly retransmit: RetransmitTiming;
  readonly hysteresis: Hysteresis;
  readonly originTimeoutMs: number;
  readonly computeDelayMs: number;
  /** The valid node ids, or undefined: every id but 0 and 0xFFFFFFFF. */
  readonly nodes: ReadonlySet<number> | undefined;
  readonly maxSeqJump: number;
}

export function checkId(v: unknown, what: string): asserts v is number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what} must be a u32 node id, got ${String(v)}`);
  }
}

export function checkNow(now: unknown, what: string): asserts now is number {
  if (typeof now !== "number" || !Number.isFinite(now)) {
    throw new TypeError(`${what}: now must be a finite number, got ${String(now)}`);
  }
}

function positive(
  source: string,
  key: string,
  v: number | undefined,
  dflt: number,
  allowZero = false,
): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (!allowZero && v === 0)) {
    throw new ConfigError(source, key, allowZero ? "a number >= 0" : "a number > 0", v);
  }
  return v;
}

/** Checks `opts` and fills in the defaults; throws TypeError, RangeError or ConfigError naming the key. */
export function resolveRouterOptions(opts: RouterOptions): ResolvedRouterOptions {
  if (typeof opts !== "object" || opts === null) throw new TypeError("Router: options must be an object");
  checkId(opts.id, "Router id");
  checkId(opts.incarnation, "Router incarnation");
  const metric = opts.metric ?? Metric.Hops;
  if (!Object.values(Metric).includes(metric)) {
    throw new ConfigError("RouterOptions", "metric", Object.values(Metric).join(" | "), metric);
  }
  const limits = { ...DEFAULT_LIMITS, ...(opts.limits ?? {}) };
  for (const [k, v] of Object.entries(limits)) {
    if (!Number.isInteger(v) || v < 1)
      throw new ConfigError("RouterOptions", `limits.${k}`, "an integer >= 1", v);
  }
  if (limits.maxNeighbors > limits.maxEdgesPerOrigin) {
    throw new ConfigError(
      "RouterOptions",
      "limits.maxNeighbors",
      `at most limits.maxEdgesPerOrigin (${limits.maxEdgesPerOrigin})`,
      limits.maxNeighbors,
    );
  }
  if (limits.maxLocalGroups > limits.maxGroupsPerOrigin) {
    throw new ConfigError(
      "RouterOptions",
      "limits.maxLocalGroups",
      `at most limits.maxGroupsPerOrigin (${limits.maxGroupsPerOrigin})`,
      limits.maxLocalGroups,
    );
  }
  const r = opts.retransmit ?? {};
  const retransmit = {
    initialMs: positive("RouterOptions", "retransmit.initialMs", r.initialMs, 200),
    minMs: positive("RouterOptions", "retransmit.minMs", r.minMs, 20),
    maxMs: positive("RouterOptions", "retransmit.maxMs", r.maxMs, 2000),
  };
  const h = opts.hysteresis ?? {};
  const hysteresis = {
    relative: positive("RouterOptions", "hysteresis.relative", h.relative, 0.1, true),
    absolute: positive("RouterOptions", "hysteresis.absolute", h.absolute, 2, true),
    holdMs: positive("RouterOptions", "hysteresis.holdMs", h.holdMs, 1000, true),
  };
  return {
    id: opts.id,
    incarnation: opts.incarnation,
    metric,
    linkCosts: resolveLinkCosts(opts.linkCosts, limits.maxEdgesPerOrigin),
    limits,
    retransmit,
    hysteresis,
    originTimeoutMs: positive("RouterOptions", "originTimeoutMs", opts.originTimeoutMs, 60_000),
    computeDelayMs: positive("RouterOptions", "computeDelayMs", opts.computeDelayMs, 1, true),
    nodes: resolveNodes(opts.nodes),
    maxSeqJump: resolveSeqJump(opts.maxSeqJump),
  };
}

function resolveNodes(nodes: Iterable<number> | undefined): ReadonlySet<number> | undefined {
  if (nodes === undefined) return undefined;
  if (typeof (nodes as { [Symbol.iterator]?: unknown })[Symbol.iterator] !== "function")
    throw new ConfigError("RouterOptions", "nodes", "an iterable of node ids", nodes);
  const s = new Set<number>();
  for (const id of nodes) {
    if (!Number.isInteger(id) || id < 1 || id >= 0xffffffff)
      throw new ConfigError("RouterOptions", "nodes", "node ids in 1..0xFFFFFFFE", id);
    s.add(id);
  }
  return s;
}

function resolveSeqJump(v: number | undefined): number {
  if (v === undefined) return 65_536;
  if (!Number.isInteger(v) || v < 1 || v >= 0x80000000)
    throw new ConfigError("RouterOptions", "maxSeqJump", "an integer in 1..2^31-1", v);
  return v;
}

/** Counters of one router (one object, shared by the flooding and route-computation parts). */
export interface RouterStats {
  messagesSent: number;
  messagesReceived: number;
  itemsAccepted: number;
  itemsDuplicate: number;
  itemsStale: number;
  itemsRetransmitted: number;
  selfReissued: number;
  dropNotNeighbor: number;
  dropBadItem: number;
  /** Items naming node 0, 0xFFFFFFFF or a node outside `nodes`. */
  dropBadNode: number;
  /** Items whose version runs more than `maxSeqJump` ahead of their reachable origin's newest. */
  dropVersionJump: number;
  dropFull: number;
  dropOutbox: number;
  dropEvents: number;
  computations: number;
  originsAged: number;
  /** Edges left out of a graph build because the other end did not advertise them up (two-way check). */
  oneWayEdges: number;
}

export function newRouterStats(): RouterStats {
  return {
    messagesSent: 0,
    messagesReceived: 0,
    itemsAccepted: 0,
    itemsDuplicate: 0,
    itemsStale: 0,
    itemsRetransmitted: 0,
    selfReissued: 0,
    dropNotNeighbor: 0,
    dropBadItem: 0,
    dropBadNode: 0,
    dropVersionJump: 0,
    dropFull: 0,
    dropOutbox: 0,
    dropEvents: 0,
    computations: 0,
    originsAged: 0,
    oneWayEdges: 0,
  };
}
