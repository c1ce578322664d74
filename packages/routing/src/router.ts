/**
 * The router: one sans-IO object per node that ties the link-state database to its two halves,
 * reliable flooding (`flooding.ts`) and route computation (`routes.ts`), checks every input, and
 * schedules computation (coalesced by `computeDelayMs`) and ageing.
 */
import { CapacityError } from "@spines-ts/primitives";
import { type RouteItem, RouteItemKind, type RoutingMessage } from "@spines-ts/wire";
import { Flooding, type Outgoing } from "./flooding.ts";
import type { DisjointPath } from "./graph.ts";
import { checkLinkWeight } from "./link-costs.ts";
import { LinkStateDb } from "./lsdb.ts";
import { checkMeasurement, type LinkMeasurement, type Metric } from "./metrics.ts";
import {
  checkId,
  checkNow,
  newRouterStats,
  type RouterLimits,
  type RouterOptions,
  type RouterStats,
  resolveRouterOptions,
} from "./options.ts";
import { type MulticastHops, type Route, RouteComputer, type RoutingEvent } from "./routes.ts";

export type { Outgoing } from "./flooding.ts";
export type { RouterLimits, RouterOptions, RouterStats } from "./options.ts";
export { DEFAULT_LIMITS } from "./options.ts";
export type { MulticastHops, Route, RoutingEvent } from "./routes.ts";

/**
 * The sans-IO link-state router of one node. Inputs: link events for its own neighbours
 * (`linkUp`, `linkDown`, `linkMetrics`), received routing messages (`receive`), timer fires
 * (`handleTimeout`) and group calls (`join`, `leave`), each with `now`. Outputs (docs/drivers.md):
 * messages to send (`takeTransmits`), the next deadline (`nextDeadline`, undefined when idle) and
 * route changes (`takeEvents`); each `take` empties its queue. Queries
 * answer from the last computation: `nextHop`, `route`, `multicast`, `anycastNearest`, `disjointPaths`.
 */
export class Router {
  readonly id: number;
  readonly metric: Metric;
  readonly limits: RouterLimits;
  readonly stats: RouterStats = newRouterStats();
  readonly #db: LinkStateDb;
  readonly #localGroups = new Set<number>();
  /** Static weight per neighbour (link-costs.ts); shared with the flooding half. */
  readonly #linkCosts: Map<number, number>;
  readonly #flood: Flooding;
  readonly #routes: RouteComputer;
  readonly #computeDelayMs: number;
  #computeAt: number | undefined;
  #routesDirty = false;

  constructor(opts: RouterOptions) {
    const o = resolveRouterOptions(opts);
    this.id = o.id;
    this.metric = o.metric;
    this.limits = o.limits;
    this.#computeDelayMs = o.computeDelayMs;
    this.#linkCosts = o.linkCosts;
    this.#db = new LinkStateDb({
      maxOrigins: o.limits.maxOrigins,
      maxEdgesPerOrigin: o.limits.maxEdgesPerOrigin,
      maxGroupsPerOrigin: o.limits.maxGroupsPerOrigin,
    });
    this.#routes = new RouteComputer({
      id: o.id,
      limits: o.limits,
      originTimeoutMs: o.originTimeoutMs,
      db: this.#db,
      stats: this.stats,
      localGroups: this.#localGroups,
    });
    this.#flood = new Flooding({
      id: o.id,
      incarnation: o.incarnation,
      metric: o.metric,
      linkCosts: this.#linkCosts,
      nodes: o.nodes,
      maxSeqJump: o.maxSeqJump,
      limits: o.limits,
      retransmit: o.retransmit,
      hysteresis: o.hysteresis,
      db: this.#db,
      stats: this.stats,
      localGroups: this.#localGroups,
      // new origins are noted by the computation for ageing, so they too trigger one
      onInstall: (originsBefore) => {
        if (this.#routes.graphStale || this.#db.originCount !== originsBefore) this.#routesDirty = true;
      },
    });
  }

  // ---------------------------------------------------------------- inputs

  /** The link layer brought the link to `neighbor` up (initial measurements if it has them). */
  linkUp(now: number, neighbor: number, metrics?: LinkMeasurement): void {
    checkNow(now, "linkUp");
    checkId(neighbor, "linkUp neighbor");
    if (neighbor === this.id) throw new RangeError("linkUp: a node is not its own neighbour");
    if (metrics !== undefined) checkMeasurement(metrics, "linkUp");
    this.#flood.linkUp(now, neighbor, metrics);
    this.#afterInput(now);
  }

  /** The link to `neighbor` went down (or its node restarted). */
  linkDown(now: number, neighbor: number): void {
    checkNow(now, "linkDown");
    checkId(neighbor, "linkDown neighbor");
    if (!this.#flood.linkDown(now, neighbor)) return;
    this.#afterInput(now);
  }

  /** New measurements of the link to `neighbor`; re-advertised subject to hysteresis. */
  linkMetrics(now: number, neighbor: number, metrics: LinkMeasurement): void {
    checkNow(now, "linkMetrics");
    checkId(neighbor, "linkMetrics neighbor");
    checkMeasurement(metrics, "linkMetrics");
    this.#flood.linkMetrics(now, neighbor, metrics);
    this.#afterInput(now);
  }

  /** One decoded routing message from a neighbour. Bad content is counted and dropped. */
  receive(now: number, from: number, msg: RoutingMessage): void {
    checkNow(now, "receive");
    checkId(from, "receive from");
    this.#flood.receive(now, from, msg);
    this.#afterInput(now);
  }

  /** Runs whatever is due at `now` (retransmissions, held metric changes, computation, ageing). */
  handleTimeout(now: number): void {
    checkNow(now, "handleTimeout");
    this.#flood.handleTimeout(now);
    if (this.#computeAt !== undefined && this.#computeAt <= now) this.#routesDirty = true;
    const gcAt = this.#routes.gcAt;
    if (gcAt !== undefined && gcAt <= now) this.#ageOrigins(now);
    this.#afterInput(now, true);
  }

  /**
   * Sets the static cost (weight 1..65535) of the link to `neighbor`, or back to 1 with undefined;
   * an up link is re-advertised at once (no hysteresis: a configuration change is deliberate).
   */
  setLinkCost(now: number, neighbor: number, cost: number | undefined): void {
    checkNow(now, "setLinkCost");
    checkId(neighbor, "setLinkCost neighbor");
    if (cost === undefined || cost === 1) {
      if (!this.#linkCosts.delete(neighbor)) return;
    } else {
      checkLinkWeight("setLinkCost", `neighbor ${neighbor}`, cost);
      if (this.#linkCosts.get(neighbor) === cost) return;
      if (!this.#linkCosts.has(neighbor) && this.#linkCosts.size >= this.limits.maxEdgesPerOrigin) {
        throw new CapacityError("static link cost table", this.limits.maxEdgesPerOrigin);
      }
      this.#linkCosts.set(neighbor, cost);
    }
    this.#flood.reweigh(now, neighbor);
    this.#afterInput(now);
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
    this.#flood.originate(now, RouteItemKind.Group, group, 1);
    this.#afterInput(now);
  }

  leave(now: number, group: number): void {
    checkNow(now, "leave");
    checkId(group, "leave group");
    if (!this.#localGroups.delete(group)) return;
    this.#flood.originate(now, RouteItemKind.Group, group, 0);
    this.#afterInput(now);
  }

  // ---------------------------------------------------------------- outputs

  /** The messages to send, in order; the call empties the queue. */
  takeTransmits(): Outgoing[] {
    return this.#flood.takeTransmits();
  }

  /** The earliest time `handleTimeout` should be called, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    const t = this.#flood.nextDeadline(this.#computeAt);
    const gcAt = this.#routes.gcAt;
    return gcAt !== undefined && (t === undefined || gcAt < t) ? gcAt : t;
  }

  /** Route changes since the last call, in order; the call empties the queue. */
  takeEvents(): RoutingEvent[] {
    return this.#routes.takeEvents();
  }

  // ---------------------------------------------------------------- queries

  /** The neighbour to forward to for `dst`; `dst` itself when adjacent; undefined if unreachable or self. */
  nextHop(dst: number): number | undefined {
    return this.#routes.nextHop(dst);
  }

  /** The full route to `dst` from the last computation. */
  route(dst: number): Route | undefined {
    return this.#routes.route(dst);
  }

  /** Destinations with a route, ascending. */
  destinations(): number[] {
    return this.#routes.destinations();
  }

  /**
   * Where a multicast packet from `source` to `group` goes from this node: the children of this
   * node on the source's shortest-path tree whose subtrees hold members, and whether to deliver here.
   */
  multicast(source: number, group: number): MulticastHops {
    checkId(source, "multicast source");
    checkId(group, "multicast group");
    return this.#routes.multicast(source, group);
  }

  /** Nodes the database lists as members of `group`, ascending. */
  members(group: number): number[] {
    return this.#routes.members(group);
  }

  /** The nearest reachable member of `group` (this node if it is one); ties go to the smaller id. */
  anycastNearest(group: number): number | undefined {
    checkId(group, "anycast group");
    return this.#routes.anycastNearest(group);
  }

  /** Up to `k` (1..3) node-disjoint paths from `src` (default: this node) to `dst`, cheapest total first. */
  disjointPaths(dst: number, k: number, src: number = this.id): DisjointPath[] {
    checkId(dst, "disjointPaths dst");
    checkId(src, "disjointPaths src");
    if (!Number.isInteger(k) || k < 1 || k > 3)
      throw new RangeError(`disjointPaths: k must be 1, 2 or 3, got ${k}`);
    return this.#routes.disjointPaths(src, dst, k);
  }

  /** The static cost (weight) of the link to `neighbor`: 1 unless configured. */
  linkCost(neighbor: number): number {
    return this.#linkCosts.get(neighbor) ?? 1;
  }

  /** The cost this node advertises for its edge to `neighbor` (weight × metric), or undefined while down. */
  advertisedCost(neighbor: number): number | undefined {
    return this.#flood.advertisedCost(neighbor);
  }

  /** Neighbours currently up, ascending. */
  neighbors(): number[] {
    return this.#flood.neighbors();
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
    return {
      origins: this.#db.originCount,
      items: this.#db.itemCount,
      neighbors: this.#flood.neighborCount,
      pending: this.#flood.maxPending,
      outbox: this.#flood.outboxSize,
      events: this.#routes.eventCount,
      trees: this.#routes.treeCount,
      localGroups: this.#localGroups.size,
    };
  }

  /** Items sent to some neighbour and not yet acknowledged (0 once flooding is quiet). */
  get unacknowledged(): number {
    return this.#flood.unacknowledged;
  }

  /** True when no computation is waiting (routes reflect the database). */
  get routesCurrent(): boolean {
    return !this.#routesDirty && this.#computeAt === undefined;
  }

  // ---------------------------------------------------------------- internals

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
    this.#flood.flush(now);
  }

  #compute(now: number): void {
    this.#routesDirty = false;
    this.#computeAt = undefined;
    this.#routes.compute(now);
  }

  #ageOrigins(now: number): void {
    for (const id of this.#routes.takeAged(now)) {
      this.#db.deleteOrigin(id);
      this.stats.originsAged++;
      this.#flood.forgetOrigin(id);
    }
    this.#routesDirty = true;
    // recompute now so the next ageing deadline is known
    this.#compute(now);
  }
}
