import { CapacityError, ConfigError } from "@spines-ts/primitives";
import {
  MAX_ROUTE_ITEMS,
  ROUTE_COST_DOWN,
  type RouteItem,
  RouteItemKind,
  type RouteItemRef,
  type RoutingMessage,
} from "@spines-ts/wire";
import { UnknownNeighborError } from "./errors.ts";
import {
  type DisjointPath,
  dijkstra,
  disjointPaths,
  firstHops,
  Graph,
  type ShortestPathTree,
  treePath,
} from "./graph.ts";
import { compareVersion, itemKey, LinkStateDb } from "./lsdb.ts";
import {
  checkMeasurement,
  type LinkMeasurement,
  linkCost,
  Metric,
  significantChange,
  unmeasuredCost,
} from "./metrics.ts";

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
  /** Route computation runs this long after the first change, coalescing bursts (default 1 ms; 0: at the end of every input). */
  readonly computeDelayMs?: number;
}

/** A message the driver must send to a neighbour. */
export interface Outgoing {
  readonly to: number;
  readonly msg: RoutingMessage;
}

export type RoutingEvent = {
  readonly type: "routeChanged";
  readonly dst: number;
  /** undefined when the destination became unreachable. */
  readonly nextHop: number | undefined;
  readonly cost: number | undefined;
};

export interface Route {
  readonly dst: number;
  readonly nextHop: number;
  readonly cost: number;
  /** Node ids from this node to dst inclusive. */
  readonly path: number[];
}

export interface MulticastHops {
  /** This node is a member: deliver a copy locally. */
  readonly deliverLocally: boolean;
  /** Neighbours to forward to (children on the source's tree that lead to members), ascending. */
  readonly nextHops: readonly number[];
}

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
  dropFull: number;
  dropOutbox: number;
  dropEvents: number;
  computations: number;
  originsAged: number;
}

interface Pending {
  item: RouteItem;
  sentAt: number | undefined;
}

interface Neighbor {
  readonly id: number;
  measured: LinkMeasurement | undefined;
  advertisedCost: number;
  lastAdvertAt: number;
  holdUntil: number | undefined;
  readonly pending: Map<string, Pending>;
  readonly unsent: Set<string>;
  acks: RouteItemRef[];
  inflight: number;
  retxAt: number | undefined;
  backoff: number;
}

interface TreeCacheEntry {
  readonly tree: ShortestPathTree;
}

function checkId(v: unknown, what: string): asserts v is number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff) {
    throw new RangeError(`${what} must be a u32 node id, got ${String(v)}`);
  }
}

function checkNow(now: unknown, what: string): asserts now is number {
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

/**
 * The sans-IO link-state router of one node. Inputs: link events for its own neighbours
 * (`linkUp`, `linkDown`, `linkMetrics`), received routing messages (`receive`), timer fires
 * (`onTimer`) and group calls (`join`, `leave`), each with `now`. Outputs: messages to send
 * (`pollTransmit`), the next deadline (`nextTimeout`) and route changes (`pollEvent`). Queries
 * answer from the last computation: `nextHop`, `route`, `multicast`, `anycastNearest`, `disjointPaths`.
 */
export class Router {
  readonly id: number;
  readonly metric: Metric;
  readonly limits: RouterLimits;
  readonly stats: RouterStats = {
    messagesSent: 0,
    messagesReceived: 0,
    itemsAccepted: 0,
    itemsDuplicate: 0,
    itemsStale: 0,
    itemsRetransmitted: 0,
    selfReissued: 0,
    dropNotNeighbor: 0,
    dropBadItem: 0,
    dropFull: 0,
    dropOutbox: 0,
    dropEvents: 0,
    computations: 0,
    originsAged: 0,
  };
  readonly #db: LinkStateDb;
  #incarnation: number;
  #seq = 0;
  readonly #neighbors = new Map<number, Neighbor>();
  readonly #dirtyNeighbors = new Set<number>();
  readonly #localGroups = new Set<number>();
  #outbox: Outgoing[] = [];
  #outHead = 0;
  #events: RoutingEvent[] = [];
  #eventHead = 0;
  readonly #rto: { initialMs: number; minMs: number; maxMs: number };
  readonly #hyst: { relative: number; absolute: number; holdMs: number };
  readonly #originTimeoutMs: number;
  readonly #computeDelayMs: number;
  #computeAt: number | undefined;
  #routesDirty = false;
  #gcAt: number | undefined;
  // computed state
  #graph: Graph | undefined;
  #graphGen = 0;
  #edgeBuf = { from: new Uint32Array(64), to: new Uint32Array(64), cost: new Float64Array(64) };
  #routes = new Map<number, { nextHop: number; cost: number }>();
  #myTree: ShortestPathTree | undefined;
  /** The graph #myTree was computed on (queries may rebuild #graph in between). */
  #myGraph: Graph | undefined;
  readonly #trees = new Map<number, TreeCacheEntry>();
  #mcastCache = new Map<string, MulticastHops>();
  #mcastGen = "";

  constructor(opts: RouterOptions) {
    if (typeof opts !== "object" || opts === null) throw new TypeError("Router: options must be an object");
    checkId(opts.id, "Router id");
    checkId(opts.incarnation, "Router incarnation");
    this.id = opts.id;
    this.#incarnation = opts.incarnation;
    const metric = opts.metric ?? Metric.Hops;
    if (!Object.values(Metric).includes(metric)) {
      throw new ConfigError("RouterOptions", "metric", Object.values(Metric).join(" | "), metric);
    }
    this.metric = metric;
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
    this.limits = limits;
    const r = opts.retransmit ?? {};
    this.#rto = {
      initialMs: positive("RouterOptions", "retransmit.initialMs", r.initialMs, 200),
      minMs: positive("RouterOptions", "retransmit.minMs", r.minMs, 20),
      maxMs: positive("RouterOptions", "retransmit.maxMs", r.maxMs, 2000),
    };
    const h = opts.hysteresis ?? {};
    this.#hyst = {
      relative: positive("RouterOptions", "hysteresis.relative", h.relative, 0.1, true),
      absolute: positive("RouterOptions", "hysteresis.absolute", h.absolute, 2, true),
      holdMs: positive("RouterOptions", "hysteresis.holdMs", h.holdMs, 1000, true),
    };
    this.#originTimeoutMs = positive("RouterOptions", "originTimeoutMs", opts.originTimeoutMs, 60_000);
    this.#computeDelayMs = positive("RouterOptions", "computeDelayMs", opts.computeDelayMs, 1, true);
    this.#db = new LinkStateDb({
      maxOrigins: limits.maxOrigins,
      maxEdgesPerOrigin: limits.maxEdgesPerOrigin,
      maxGroupsPerOrigin: limits.maxGroupsPerOrigin,
    });
  }

  // ---------------------------------------------------------------- inputs

  /** The link layer brought the link to `neighbor` up (initial measurements if it has them). */
  linkUp(now: number, neighbor: number, metrics?: LinkMeasurement): void {
    checkNow(now, "linkUp");
    checkId(neighbor, "linkUp neighbor");
    if (neighbor === this.id) throw new RangeError("linkUp: a node is not its own neighbour");
    if (metrics !== undefined) checkMeasurement(metrics, "linkUp");
    if (this.#neighbors.has(neighbor)) this.#dropNeighbor(neighbor);
    if (this.#neighbors.size >= this.limits.maxNeighbors) {
      throw new CapacityError("routing neighbour table", this.limits.maxNeighbors);
    }
    const cost = metrics === undefined ? unmeasuredCost(this.metric) : linkCost(this.metric, metrics);
    const n: Neighbor = {
      id: neighbor,
      measured: metrics,
      advertisedCost: cost,
      lastAdvertAt: now,
      holdUntil: undefined,
      pending: new Map(),
      unsent: new Set(),
      acks: [],
      inflight: 0,
      retxAt: undefined,
      backoff: 0,
    };
    this.#neighbors.set(neighbor, n);
    // full database exchange: everything we hold goes to the new neighbour
    for (const it of this.#db.items()) this.#queue(n, it);
    this.#originate(now, RouteItemKind.Edge, neighbor, cost);
    this.#afterInput(now);
  }

  /** The link to `neighbor` went down (or its node restarted). */
  linkDown(now: number, neighbor: number): void {
    checkNow(now, "linkDown");
    checkId(neighbor, "linkDown neighbor");
    if (!this.#neighbors.has(neighbor)) return;
    this.#dropNeighbor(neighbor);
    this.#originate(now, RouteItemKind.Edge, neighbor, ROUTE_COST_DOWN);
    this.#afterInput(now);
  }

  /** New measurements of the link to `neighbor`; re-advertised subject to hysteresis. */
  linkMetrics(now: number, neighbor: number, metrics: LinkMeasurement): void {
    checkNow(now, "linkMetrics");
    checkId(neighbor, "linkMetrics neighbor");
    checkMeasurement(metrics, "linkMetrics");
    const n = this.#neighbors.get(neighbor);
    if (n === undefined) throw new UnknownNeighborError(neighbor, "linkMetrics");
    const first = n.measured === undefined;
    n.measured = metrics;
    if (first) {
      this.#readvertise(now, n, true);
    } else {
      this.#readvertise(now, n, false);
    }
    this.#afterInput(now);
  }

  /** One decoded routing message from a neighbour. Bad content is counted and dropped. */
  receive(now: number, from: number, msg: RoutingMessage): void {
    checkNow(now, "receive");
    checkId(from, "receive from");
    const n = this.#neighbors.get(from);
    this.stats.messagesReceived++;
    if (n === undefined) {
      this.stats.dropNotNeighbor++;
      return;
    }
    if (msg._tag === "RouteUpdate") {
      for (const it of msg.items) this.#onItem(now, n, it);
    } else if (msg._tag === "RouteAck") {
      for (const ref of msg.items) this.#onAck(n, ref);
    } else {
      this.stats.dropBadItem++;
    }
    this.#afterInput(now);
  }

  /** Runs whatever is due at `now` (retransmissions, held metric changes, computation, ageing). */
  onTimer(now: number): void {
    checkNow(now, "onTimer");
    for (const n of this.#neighbors.values()) {
      if (n.holdUntil !== undefined && n.holdUntil <= now) {
        n.holdUntil = undefined;
        this.#readvertise(now, n, false);
      }
      if (n.retxAt !== undefined && n.retxAt <= now) this.#retransmit(now, n);
    }
    if (this.#computeAt !== undefined && this.#computeAt <= now) this.#routesDirty = true;
    if (this.#gcAt !== undefined && this.#gcAt <= now) this.#ageOrigins(now);
    this.#afterInput(now, true);
  }

  /** Joins a group (multicast or anycast): flooded as group state. */
  join(now: number, group: number): void {
    checkNow(now, "join");
    checkId(group, "join group");
    if (this.#localGroups.has(group)) return;
    if (this.#localGroups.size >= this.limits.maxLocalGroups) {
      throw new CapacityError("local group table", this.limits.maxLocalGroups);
    }
    this.#localGroups.add(group);
    this.#originate(now, RouteItemKind.Group, group, 1);
    this.#afterInput(now);
  }

  leave(now: number, group: number): void {
    checkNow(now, "leave");
    checkId(group, "leave group");
    if (!this.#localGroups.delete(group)) return;
    this.#originate(now, RouteItemKind.Group, group, 0);
    this.#afterInput(now);
  }

  // ---------------------------------------------------------------- outputs

  /** The next message to send, or undefined. */
  pollTransmit(): Outgoing | undefined {
    if (this.#outHead >= this.#outbox.length) {
      if (this.#outbox.length > 0) {
        this.#outbox = [];
        this.#outHead = 0;
      }
      return undefined;
    }
    const m = this.#outbox[this.#outHead++];
    return m;
  }

  /** The earliest time `onTimer` should be called, or undefined when nothing is pending. */
  nextTimeout(): number | undefined {
    let t = this.#computeAt;
    const min = (x: number | undefined): void => {
      if (x !== undefined && (t === undefined || x < t)) t = x;
    };
    for (const n of this.#neighbors.values()) {
      min(n.retxAt);
      min(n.holdUntil);
    }
    min(this.#gcAt);
    return t;
  }

  pollEvent(): RoutingEvent | undefined {
    if (this.#eventHead >= this.#events.length) {
      if (this.#events.length > 0) {
        this.#events = [];
        this.#eventHead = 0;
      }
      return undefined;
    }
    return this.#events[this.#eventHead++];
  }

  // ---------------------------------------------------------------- queries

  /** The neighbour to forward to for `dst`; `dst` itself when adjacent; undefined if unreachable or self. */
  nextHop(dst: number): number | undefined {
    return this.#routes.get(dst)?.nextHop;
  }

  /** The full route to `dst` from the last computation. */
  route(dst: number): Route | undefined {
    const r = this.#routes.get(dst);
    const g = this.#myGraph;
    const t = this.#myTree;
    if (r === undefined || g === undefined || t === undefined) return undefined;
    const i = g.indexOf(dst);
    const path = i === undefined ? undefined : treePath(t, i);
    if (path === undefined) return undefined;
    return { dst, nextHop: r.nextHop, cost: r.cost, path: path.map((x) => g.ids[x] as number) };
  }

  /** Destinations with a route, ascending. */
  destinations(): number[] {
    return [...this.#routes.keys()].sort((a, b) => a - b);
  }

  /**
   * Where a multicast packet from `source` to `group` goes from this node: the children of this
   * node on the source's shortest-path tree whose subtrees hold members, and whether to deliver here.
   */
  multicast(source: number, group: number): MulticastHops {
    checkId(source, "multicast source");
    checkId(group, "multicast group");
    const g = this.#ensureGraph();
    const gen = `${this.#db.edgeGeneration}/${this.#db.groupGeneration}`;
    if (gen !== this.#mcastGen) {
      this.#mcastCache = new Map();
      this.#mcastGen = gen;
    }
    const key = `${source}:${group}`;
    const cached = this.#mcastCache.get(key);
    if (cached !== undefined) return cached;
    const deliverLocally = this.#isMember(this.id, group);
    const hops = new Set<number>();
    const s = g.indexOf(source);
    const me = g.indexOf(this.id);
    if (s !== undefined && me !== undefined) {
      const t = this.#tree(g, s);
      if (Number.isFinite(t.dist[me] as number)) {
        for (const m of this.members(group)) {
          const mi = g.indexOf(m);
          if (mi === undefined || mi === me || !Number.isFinite(t.dist[mi] as number)) continue;
          let child = mi;
          let x = t.parent[mi] as number;
          while (x !== -1 && x !== me) {
            child = x;
            x = t.parent[x] as number;
          }
          if (x === me) hops.add(g.ids[child] as number);
        }
      }
    }
    const out: MulticastHops = { deliverLocally, nextHops: [...hops].sort((a, b) => a - b) };
    if (this.#mcastCache.size >= this.limits.treeCacheSize * 16) this.#mcastCache.clear();
    this.#mcastCache.set(key, out);
    return out;
  }

  /** Nodes the database lists as members of `group`, ascending. */
  members(group: number): number[] {
    const out: number[] = [];
    for (const o of this.#db.origins()) {
      if (o.groups.get(group)?.value === 1) out.push(o.id);
    }
    return out.sort((a, b) => a - b);
  }

  /** The nearest reachable member of `group` (this node if it is one); ties go to the smaller id. */
  anycastNearest(group: number): number | undefined {
    checkId(group, "anycast group");
    if (this.#localGroups.has(group)) return this.id;
    let best: number | undefined;
    let bestCost = Number.POSITIVE_INFINITY;
    for (const m of this.members(group)) {
      const r = this.#routes.get(m);
      if (r !== undefined && (r.cost < bestCost || (r.cost === bestCost && best !== undefined && m < best))) {
        best = m;
        bestCost = r.cost;
      }
    }
    return best;
  }

  /** Up to `k` (1..3) node-disjoint paths from `src` (default: this node) to `dst`, cheapest total first. */
  disjointPaths(dst: number, k: number, src: number = this.id): DisjointPath[] {
    checkId(dst, "disjointPaths dst");
    checkId(src, "disjointPaths src");
    if (!Number.isInteger(k) || k < 1 || k > 3)
      throw new RangeError(`disjointPaths: k must be 1, 2 or 3, got ${k}`);
    const g = this.#ensureGraph();
    const s = g.indexOf(src);
    const d = g.indexOf(dst);
    if (s === undefined || d === undefined) return [];
    return disjointPaths(g, s, d, k);
  }

  /** Neighbours currently up, ascending. */
  neighbors(): number[] {
    return [...this.#neighbors.keys()].sort((a, b) => a - b);
  }

  /** Order-free digest of the database: equal databases have equal digests. */
  get databaseDigest(): number {
    return this.#db.digest;
  }

  /** Every database item in canonical order (for agreement checks and debugging). */
  database(): RouteItem[] {
    return this.#db.dump();
  }

  /** Sizes of every bounded table, for invariant checks. */
  tableSizes(): {
    origins: number;
    items: number;
    neighbors: number;
    pending: number;
    outbox: number;
    events: number;
    trees: number;
    localGroups: number;
  } {
    let pending = 0;
    for (const n of this.#neighbors.values()) pending = Math.max(pending, n.pending.size);
    return {
      origins: this.#db.originCount,
      items: this.#db.itemCount,
      neighbors: this.#neighbors.size,
      pending,
      outbox: this.#outbox.length - this.#outHead,
      events: this.#events.length - this.#eventHead,
      trees: this.#trees.size,
      localGroups: this.#localGroups.size,
    };
  }

  /** Items sent to some neighbour and not yet acknowledged (0 once flooding is quiet). */
  get unacknowledged(): number {
    let s = 0;
    for (const n of this.#neighbors.values()) s += n.pending.size;
    return s;
  }

  /** True when no computation is waiting (routes reflect the database). */
  get routesCurrent(): boolean {
    return !this.#routesDirty && this.#computeAt === undefined;
  }

  // ---------------------------------------------------------------- internals

  #isMember(node: number, group: number): boolean {
    if (node === this.id) return this.#localGroups.has(group);
    return this.#db.get(RouteItemKind.Group, node, group)?.value === 1;
  }

  #nextVersion(): { incarnation: number; seq: number } {
    if (this.#seq >= 0xffffffff) {
      this.#incarnation = (this.#incarnation + 1) >>> 0;
      this.#seq = 0;
    } else {
      this.#seq++;
    }
    return { incarnation: this.#incarnation, seq: this.#seq };
  }

  #originate(now: number, kind: RouteItemKind, key: number, value: number): void {
    const v = this.#nextVersion();
    const it: RouteItem = { kind, origin: this.id, key, incarnation: v.incarnation, seq: v.seq, value };
    this.#install(now, it);
    for (const n of this.#neighbors.values()) this.#queue(n, it);
  }

  #install(now: number, it: RouteItem): boolean {
    const origins = this.#db.originCount;
    if (this.#db.install(it, now) === "full") {
      this.stats.dropFull++;
      return false;
    }
    // new origins are noted by the computation for ageing, so they too trigger one
    if (this.#db.edgeGeneration !== this.#graphGen || this.#db.originCount !== origins)
      this.#routesDirty = true;
    return true;
  }

  #readvertise(now: number, n: Neighbor, immediate: boolean): void {
    if (n.measured === undefined) return;
    const cost = linkCost(this.metric, n.measured);
    if (cost === n.advertisedCost) return;
    if (!immediate && !significantChange(n.advertisedCost, cost, this.#hyst.relative, this.#hyst.absolute))
      return;
    if (!immediate && now < n.lastAdvertAt + this.#hyst.holdMs) {
      n.holdUntil = n.lastAdvertAt + this.#hyst.holdMs;
      return;
    }
    n.advertisedCost = cost;
    n.lastAdvertAt = now;
    n.holdUntil = undefined;
    this.#originate(now, RouteItemKind.Edge, n.id, cost);
  }

  #dropNeighbor(id: number): void {
    this.#neighbors.delete(id);
    this.#dirtyNeighbors.delete(id);
  }

  #queue(n: Neighbor, it: RouteItem): void {
    const key = itemKey(it.kind, it.origin, it.key);
    const p = n.pending.get(key);
    if (p !== undefined) {
      if (p.sentAt !== undefined) n.inflight--;
      p.item = it;
      p.sentAt = undefined;
    } else {
      n.pending.set(key, { item: it, sentAt: undefined });
    }
    n.unsent.add(key);
    this.#dirtyNeighbors.add(n.id);
  }

  /** The neighbour is known to hold `ref`'s version or newer: stop sending it our older one. */
  #known(n: Neighbor, ref: RouteItemRef): boolean {
    const key = itemKey(ref.kind, ref.origin, ref.key);
    const p = n.pending.get(key);
    if (p === undefined) return false;
    if (compareVersion(ref.incarnation, ref.seq, p.item.incarnation, p.item.seq) < 0) return false;
    if (p.sentAt !== undefined) n.inflight--;
    n.pending.delete(key);
    n.unsent.delete(key);
    return true;
  }

  #ack(n: Neighbor, it: RouteItem): void {
    n.acks.push({ kind: it.kind, origin: it.origin, key: it.key, incarnation: it.incarnation, seq: it.seq });
    this.#dirtyNeighbors.add(n.id);
  }

  #onAck(n: Neighbor, ref: RouteItemRef): void {
    if (this.#known(n, ref)) {
      n.backoff = 0;
      this.#dirtyNeighbors.add(n.id);
      if (n.pending.size === 0) n.retxAt = undefined;
    }
  }

  #onItem(now: number, from: Neighbor, it: RouteItem): void {
    if (it.kind === RouteItemKind.Edge ? it.origin === it.key || it.value === 0 : it.value > 1) {
      this.stats.dropBadItem++;
      return;
    }
    this.#ack(from, it);
    const mine = this.#db.get(it.kind, it.origin, it.key);
    let c = 1;
    if (mine !== undefined) {
      c = compareVersion(it.incarnation, it.seq, mine.incarnation, mine.seq);
      // equal versions with different values (possible only across restarts): the larger value wins
      if (c === 0 && it.value !== mine.value) c = it.value > mine.value ? 1 : -1;
    }
    if (c === 0) {
      this.stats.itemsDuplicate++;
      this.#known(from, it);
      return;
    }
    if (c < 0) {
      this.stats.itemsStale++;
      if (mine !== undefined) this.#queue(from, mine);
      return;
    }
    if (it.origin === this.id) {
      this.#onOwnItem(now, from, it, mine);
      return;
    }
    if (!this.#install(now, it)) return;
    this.stats.itemsAccepted++;
    for (const n of this.#neighbors.values()) {
      if (n === from) this.#known(n, it);
      else this.#queue(n, it);
    }
  }

  /** Someone holds a newer version of an item we originate: a previous life of this node made it. */
  #onOwnItem(now: number, from: Neighbor, it: RouteItem, mine: RouteItem | undefined): void {
    if (compareVersion(it.incarnation, it.seq, this.#incarnation, this.#seq) > 0) {
      this.#incarnation = it.incarnation;
      this.#seq = it.seq;
    }
    let want: number;
    if (it.kind === RouteItemKind.Edge) {
      const n = this.#neighbors.get(it.key);
      want = n === undefined ? ROUTE_COST_DOWN : n.advertisedCost;
    } else {
      want = this.#localGroups.has(it.key) ? 1 : 0;
    }
    this.stats.selfReissued++;
    if (mine === undefined && it.value === want) {
      // the old item says what we would say: adopt it instead of issuing a new one
      if (!this.#install(now, it)) return;
      for (const n of this.#neighbors.values()) {
        if (n === from) this.#known(n, it);
        else this.#queue(n, it);
      }
      return;
    }
    this.#originate(now, it.kind, it.key, want);
  }

  #rtoOf(n: Neighbor): number {
    const base = n.measured === undefined ? this.#rto.initialMs : 2 * n.measured.rttMs + 20;
    const v = base * 2 ** n.backoff;
    return Math.min(this.#rto.maxMs, Math.max(this.#rto.minMs, v));
  }

  #retransmit(now: number, n: Neighbor): void {
    const rto = this.#rtoOf(n);
    const due: RouteItem[] = [];
    let nextDue: number | undefined;
    for (const p of n.pending.values()) {
      if (p.sentAt === undefined) continue;
      if (p.sentAt + rto <= now) {
        if (due.length < this.limits.windowItems) {
          due.push(p.item);
          p.sentAt = now;
        }
      } else if (nextDue === undefined || p.sentAt + rto < nextDue) {
        nextDue = p.sentAt + rto;
      }
    }
    if (due.length > 0) {
      this.stats.itemsRetransmitted += due.length;
      n.backoff = Math.min(n.backoff + 1, 6);
      this.#sendItems(n.id, due);
    }
    const rto2 = this.#rtoOf(n);
    n.retxAt = n.pending.size === 0 ? undefined : due.length > 0 ? now + rto2 : (nextDue ?? now + rto2);
  }

  #push(out: Outgoing): void {
    if (this.#outbox.length - this.#outHead >= this.limits.maxOutbox) {
      this.#outHead++;
      this.stats.dropOutbox++;
    }
    if (this.#outHead > 1024 && this.#outHead * 2 > this.#outbox.length) {
      this.#outbox = this.#outbox.slice(this.#outHead);
      this.#outHead = 0;
    }
    this.#outbox.push(out);
    this.stats.messagesSent++;
  }

  #sendItems(to: number, items: RouteItem[]): void {
    for (let i = 0; i < items.length; i += MAX_ROUTE_ITEMS) {
      this.#push({ to, msg: { _tag: "RouteUpdate", items: items.slice(i, i + MAX_ROUTE_ITEMS) } });
    }
  }

  #flush(now: number): void {
    for (const id of this.#dirtyNeighbors) {
      const n = this.#neighbors.get(id);
      if (n === undefined) continue;
      if (n.acks.length > 0) {
        for (let i = 0; i < n.acks.length; i += MAX_ROUTE_ITEMS) {
          this.#push({ to: id, msg: { _tag: "RouteAck", items: n.acks.slice(i, i + MAX_ROUTE_ITEMS) } });
        }
        n.acks = [];
      }
      const batch: RouteItem[] = [];
      for (const key of n.unsent) {
        if (n.inflight >= this.limits.windowItems) break;
        n.unsent.delete(key);
        const p = n.pending.get(key);
        if (p === undefined || p.sentAt !== undefined) continue;
        p.sentAt = now;
        n.inflight++;
        batch.push(p.item);
      }
      if (batch.length > 0) {
        this.#sendItems(id, batch);
        if (n.retxAt === undefined) n.retxAt = now + this.#rtoOf(n);
      }
    }
    this.#dirtyNeighbors.clear();
  }

  #afterInput(now: number, fromTimer = false): void {
    if (this.#routesDirty) {
      if (
        this.#computeDelayMs === 0 ||
        (fromTimer && this.#computeAt !== undefined && this.#computeAt <= now)
      ) {
        this.#compute(now);
      } else if (this.#computeAt === undefined) {
        this.#computeAt = now + this.#computeDelayMs;
      }
    }
    this.#flush(now);
  }

  #ensureGraph(): Graph {
    if (this.#graph !== undefined && this.#graphGen === this.#db.edgeGeneration) return this.#graph;
    let m = 0;
    for (const o of this.#db.origins()) m += o.edges.size;
    if (this.#edgeBuf.from.length < m) {
      const cap = Math.max(m, this.#edgeBuf.from.length * 2);
      this.#edgeBuf = { from: new Uint32Array(cap), to: new Uint32Array(cap), cost: new Float64Array(cap) };
    }
    const { from, to, cost } = this.#edgeBuf;
    const nodes: number[] = [this.id];
    let k = 0;
    for (const o of this.#db.origins()) {
      nodes.push(o.id);
      for (const e of o.edges.values()) {
        if (e.value === ROUTE_COST_DOWN) continue;
        from[k] = o.id;
        to[k] = e.key;
        cost[k] = e.value;
        k++;
      }
    }
    this.#graph = Graph.fromArrays(nodes, from, to, cost, k, this.#graph);
    this.#graphGen = this.#db.edgeGeneration;
    this.#trees.clear();
    return this.#graph;
  }

  #tree(g: Graph, root: number): ShortestPathTree {
    const id = g.ids[root] as number;
    const hit = this.#trees.get(id);
    if (hit !== undefined) {
      this.#trees.delete(id);
      this.#trees.set(id, hit);
      return hit.tree;
    }
    const tree = dijkstra(g, root);
    if (this.#trees.size >= this.limits.treeCacheSize) {
      const oldest = this.#trees.keys().next().value;
      if (oldest !== undefined) this.#trees.delete(oldest);
    }
    this.#trees.set(id, { tree });
    return tree;
  }

  #compute(now: number): void {
    this.#routesDirty = false;
    this.#computeAt = undefined;
    this.stats.computations++;
    const g = this.#ensureGraph();
    const me = g.indexOf(this.id) as number;
    const t = this.#tree(g, me);
    this.#myTree = t;
    this.#myGraph = g;
    const first = firstHops(t);
    const routes = new Map<number, { nextHop: number; cost: number }>();
    for (const v of t.order) {
      if (v === me) continue;
      routes.set(g.ids[v] as number, {
        nextHop: g.ids[first[v] as number] as number,
        cost: t.dist[v] as number,
      });
    }
    for (const [dst, r] of routes) {
      const old = this.#routes.get(dst);
      if (old === undefined || old.nextHop !== r.nextHop || old.cost !== r.cost) {
        this.#event({ type: "routeChanged", dst, nextHop: r.nextHop, cost: r.cost });
      }
    }
    for (const dst of this.#routes.keys()) {
      if (!routes.has(dst)) this.#event({ type: "routeChanged", dst, nextHop: undefined, cost: undefined });
    }
    this.#routes = routes;
    // ageing: note since when each origin has been unreachable
    let gcAt: number | undefined;
    for (const o of this.#db.origins()) {
      if (o.id === this.id || routes.has(o.id)) {
        o.unreachableSince = undefined;
        continue;
      }
      if (o.unreachableSince === undefined) o.unreachableSince = now;
      const at = o.unreachableSince + this.#originTimeoutMs;
      if (gcAt === undefined || at < gcAt) gcAt = at;
    }
    this.#gcAt = gcAt;
  }

  #ageOrigins(now: number): void {
    const gone: number[] = [];
    for (const o of this.#db.origins()) {
      if (o.unreachableSince !== undefined && o.unreachableSince + this.#originTimeoutMs <= now)
        gone.push(o.id);
    }
    for (const id of gone) {
      this.#db.deleteOrigin(id);
      this.stats.originsAged++;
      for (const n of this.#neighbors.values()) {
        for (const [key, p] of n.pending) {
          if (p.item.origin === id) {
            if (p.sentAt !== undefined) n.inflight--;
            n.pending.delete(key);
            n.unsent.delete(key);
          }
        }
        if (n.pending.size === 0) n.retxAt = undefined;
      }
    }
    this.#gcAt = undefined;
    this.#routesDirty = true;
    // recompute now so the next ageing deadline is known
    this.#compute(now);
  }

  #event(e: RoutingEvent): void {
    if (this.#events.length - this.#eventHead >= this.limits.maxEvents) {
      this.#eventHead++;
      this.stats.dropEvents++;
    }
    if (this.#eventHead > 1024 && this.#eventHead * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#eventHead);
      this.#eventHead = 0;
    }
    this.#events.push(e);
  }
}
