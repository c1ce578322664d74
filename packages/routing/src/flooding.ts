/**
 * Reliable flooding of the link-state database, per neighbour: every item this node originates or
 * accepts is queued to each up neighbour (the whole database at link-up), sent within a window of
 * `windowItems` unacknowledged items, acknowledged item by item, and retransmitted with back-off
 * until acked or superseded. Also the node's own items: versions (incarnation, seq), link costs
 * re-advertised under hysteresis, and re-issuing items a previous life of this node left behind.
 * Sans-IO: messages wait in a bounded outbox for the driver. Design: docs/routing.md §2–3.
 */
import { CapacityError } from "@spines-ts/primitives";
import {
  MAX_ROUTE_ITEMS,
  ROUTE_COST_DOWN,
  type RouteItem,
  RouteItemKind,
  type RouteItemRef,
  type RoutingMessage,
} from "@spines-ts/wire";
import { UnknownNeighborError } from "./errors.ts";
import { weightedCost } from "./link-costs.ts";
import { compareVersion, itemKey, type LinkStateDb, seqAhead } from "./lsdb.ts";
import { type LinkMeasurement, linkCost, type Metric, significantChange, unmeasuredCost } from "./metrics.ts";
import type { Hysteresis, RetransmitTiming, RouterLimits, RouterStats } from "./options.ts";

/** A message the driver must send to a neighbour. */
export interface Outgoing {
  readonly to: number;
  readonly msg: RoutingMessage;
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

export interface FloodingOptions {
  readonly id: number;
  readonly incarnation: number;
  readonly metric: Metric;
  /** Static weight per neighbour (owned by the router; absent: 1). */
  readonly linkCosts: ReadonlyMap<number, number>;
  /** Valid node ids (undefined: all but 0 and 0xFFFFFFFF). */
  readonly nodes: ReadonlySet<number> | undefined;
  readonly maxSeqJump: number;
  readonly limits: RouterLimits;
  readonly retransmit: RetransmitTiming;
  readonly hysteresis: Hysteresis;
  readonly db: LinkStateDb;
  readonly stats: RouterStats;
  /** The groups this node has joined (owned by the router; read when re-issuing own items). */
  readonly localGroups: ReadonlySet<number>;
  /** Called after every item installed, with the origin count before it (routes may be stale). */
  readonly onInstall: (originsBefore: number) => void;
}

/**
 * The flooding half of a router: the neighbour table, the per-neighbour reliable exchange of
 * database items, and the outbox. It changes the database; the router decides when routes are
 * recomputed (`onInstall`).
 */
export class Flooding {
  readonly #id: number;
  readonly #metric: Metric;
  readonly #linkCosts: ReadonlyMap<number, number>;
  readonly #nodes: ReadonlySet<number> | undefined;
  readonly #maxSeqJump: number;
  readonly #limits: RouterLimits;
  readonly #rto: RetransmitTiming;
  readonly #hyst: Hysteresis;
  readonly #db: LinkStateDb;
  readonly #stats: RouterStats;
  readonly #localGroups: ReadonlySet<number>;
  readonly #onInstall: (originsBefore: number) => void;
  #incarnation: number;
  #seq = 0;
  readonly #neighbors = new Map<number, Neighbor>();
  readonly #dirtyNeighbors = new Set<number>();
  #outbox: Outgoing[] = [];
  #outHead = 0;

  constructor(o: FloodingOptions) {
    this.#id = o.id;
    this.#incarnation = o.incarnation;
    this.#metric = o.metric;
    this.#linkCosts = o.linkCosts;
    this.#nodes = o.nodes;
    this.#maxSeqJump = o.maxSeqJump;
    this.#limits = o.limits;
    this.#rto = o.retransmit;
    this.#hyst = o.hysteresis;
    this.#db = o.db;
    this.#stats = o.stats;
    this.#localGroups = o.localGroups;
    this.#onInstall = o.onInstall;
  }

  // ---------------------------------------------------------------- neighbours

  /** A link came up: a new neighbour gets the whole database, and our edge to it is advertised. */
  linkUp(now: number, neighbor: number, metrics: LinkMeasurement | undefined): void {
    if (this.#neighbors.has(neighbor)) this.#dropNeighbor(neighbor);
    if (this.#neighbors.size >= this.#limits.maxNeighbors) {
      throw new CapacityError("routing neighbour table", this.#limits.maxNeighbors);
    }
    const cost = this.#costOf(neighbor, metrics);
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
    this.originate(now, RouteItemKind.Edge, neighbor, cost);
  }

  /** A link went down: the neighbour is forgotten and our edge to it withdrawn. False if unknown. */
  linkDown(now: number, neighbor: number): boolean {
    if (!this.#neighbors.has(neighbor)) return false;
    this.#dropNeighbor(neighbor);
    this.originate(now, RouteItemKind.Edge, neighbor, ROUTE_COST_DOWN);
    return true;
  }

  /** New measurements of a link: re-advertised at once the first time, then under hysteresis. */
  linkMetrics(now: number, neighbor: number, metrics: LinkMeasurement): void {
    const n = this.#neighbors.get(neighbor);
    if (n === undefined) throw new UnknownNeighborError(neighbor, "linkMetrics");
    const first = n.measured === undefined;
    n.measured = metrics;
    this.#readvertise(now, n, first);
  }

  /** Neighbours currently up, ascending. */
  neighbors(): number[] {
    return [...this.#neighbors.keys()].sort((a, b) => a - b);
  }

  get neighborCount(): number {
    return this.#neighbors.size;
  }

  /** The largest number of items pending to one neighbour. */
  get maxPending(): number {
    let pending = 0;
    for (const n of this.#neighbors.values()) pending = Math.max(pending, n.pending.size);
    return pending;
  }

  /** Items sent to some neighbour and not yet acknowledged (0 once flooding is quiet). */
  get unacknowledged(): number {
    let s = 0;
    for (const n of this.#neighbors.values()) s += n.pending.size;
    return s;
  }

  // ---------------------------------------------------------------- messages

  /** One routing message from `from`: items to install and flood on, or acks. */
  receive(now: number, from: number, msg: RoutingMessage): void {
    const n = this.#neighbors.get(from);
    this.#stats.messagesReceived++;
    if (n === undefined) {
      this.#stats.dropNotNeighbor++;
      return;
    }
    if (msg._tag === "RouteUpdate") {
      for (const it of msg.items) this.#onItem(now, n, it);
    } else if (msg._tag === "RouteAck") {
      for (const ref of msg.items) this.#onAck(n, ref);
    } else {
      this.#stats.dropBadItem++;
    }
  }

  /** Held metric changes and retransmissions due at `now`. */
  handleTimeout(now: number): void {
    for (const n of this.#neighbors.values()) {
      if (n.holdUntil !== undefined && n.holdUntil <= now) {
        n.holdUntil = undefined;
        this.#readvertise(now, n, false);
      }
      if (n.retxAt !== undefined && n.retxAt <= now) this.#retransmit(now, n);
    }
  }

  /** The earliest retransmission or held re-advertisement, folded into `t`. */
  nextDeadline(t: number | undefined): number | undefined {
    for (const n of this.#neighbors.values()) {
      if (n.retxAt !== undefined && (t === undefined || n.retxAt < t)) t = n.retxAt;
      if (n.holdUntil !== undefined && (t === undefined || n.holdUntil < t)) t = n.holdUntil;
    }
    return t;
  }

  /** The messages to send, in order; the call empties the outbox. */
  takeTransmits(): Outgoing[] {
    if (this.#outHead >= this.#outbox.length) {
      if (this.#outbox.length > 0) {
        this.#outbox = [];
        this.#outHead = 0;
      }
      return [];
    }
    const out = this.#outHead === 0 ? this.#outbox : this.#outbox.slice(this.#outHead);
    this.#outbox = [];
    this.#outHead = 0;
    return out;
  }

  get outboxSize(): number {
    return this.#outbox.length - this.#outHead;
  }

  /** Sends the acks and the window's worth of queued items of every neighbour touched since the last flush. */
  flush(now: number): void {
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
        if (n.inflight >= this.#limits.windowItems) break;
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

  // ---------------------------------------------------------------- own items

  /** Issues a new version of one of this node's items and floods it. */
  originate(now: number, kind: RouteItemKind, key: number, value: number): void {
    const v = this.#nextVersion();
    const it: RouteItem = { kind, origin: this.#id, key, incarnation: v.incarnation, seq: v.seq, value };
    this.#install(now, it);
    for (const n of this.#neighbors.values()) this.#queue(n, it);
  }

  /** An aged-out origin: stop sending its items to anyone. */
  forgetOrigin(id: number): void {
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

  // ---------------------------------------------------------------- internals

  #nextVersion(): { incarnation: number; seq: number } {
    // Serial-number arithmetic (compareVersion): the sequence number wraps, the incarnation stays.
    this.#seq = (this.#seq + 1) >>> 0;
    return { incarnation: this.#incarnation, seq: this.#seq };
  }

  #validNode(id: number): boolean {
    if (id === 0 || id === 0xffffffff) return false;
    return this.#nodes === undefined || this.#nodes.has(id);
  }

  /**
   * Whether an item of another origin is bound to what we know of that origin (docs/routing.md
   * §2, "Items bound to their origin"): counted and false when not. While the origin is reachable, its sequence numbers under
   * its current incarnation cannot leap ahead (`maxSeqJump`). A change of incarnation is not
   * refused here: only the origin can tell a restart from a forgery (without keys), and it answers
   * a forged one by re-issuing its item above it (#onOwnItem), which no version can prevent.
   */
  #bound(it: RouteItem): boolean {
    const o = this.#db.origin(it.origin);
    if (o === undefined || it.incarnation !== o.incarnation) return true;
    const ahead = seqAhead(it.seq, o.maxSeq);
    if (ahead < 0x80000000 && ahead > this.#maxSeqJump && o.unreachableSince === undefined) {
      this.#stats.dropVersionJump++;
      return false;
    }
    return true;
  }

  #install(now: number, it: RouteItem): boolean {
    const origins = this.#db.originCount;
    if (this.#db.install(it, now) === "full") {
      this.#stats.dropFull++;
      return false;
    }
    this.#onInstall(origins);
    return true;
  }

  #readvertise(now: number, n: Neighbor, immediate: boolean): void {
    if (n.measured === undefined) return;
    const cost = this.#costOf(n.id, n.measured);
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
    this.originate(now, RouteItemKind.Edge, n.id, cost);
  }

  /** The cost to advertise for the link to `id`: its static weight times the metric's cost. */
  #costOf(id: number, m: LinkMeasurement | undefined): number {
    const c = m === undefined ? unmeasuredCost(this.#metric) : linkCost(this.#metric, m);
    return weightedCost(this.#linkCosts.get(id) ?? 1, c);
  }

  /** The static weight of the link to `neighbor` changed: re-advertised at once if up. */
  reweigh(now: number, neighbor: number): void {
    const n = this.#neighbors.get(neighbor);
    if (n === undefined) return;
    const cost = this.#costOf(neighbor, n.measured);
    if (cost === n.advertisedCost) return;
    n.advertisedCost = cost;
    n.lastAdvertAt = now;
    n.holdUntil = undefined;
    this.originate(now, RouteItemKind.Edge, neighbor, cost);
  }

  /** The cost this node advertises for its edge to `neighbor`, or undefined when the link is down. */
  advertisedCost(neighbor: number): number | undefined {
    return this.#neighbors.get(neighbor)?.advertisedCost;
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
    // Items this node can never accept are refused but acknowledged: unacknowledged, the neighbour
    // would resend them for ever, and enough of them would fill its window towards us for good
    // (a neighbour that knows nodes outside our configured set is a configuration, not an attack).
    if (it.kind === RouteItemKind.Edge ? it.origin === it.key || it.value === 0 : it.value > 1) {
      this.#stats.dropBadItem++;
      this.#ack(from, it);
      return;
    }
    if (!this.#validNode(it.origin) || (it.kind === RouteItemKind.Edge && !this.#validNode(it.key))) {
      this.#stats.dropBadNode++;
      this.#ack(from, it);
      return;
    }
    if (it.origin !== this.#id && !this.#bound(it)) return;
    this.#ack(from, it);
    const mine = this.#db.get(it.kind, it.origin, it.key);
    let c = 1;
    if (mine !== undefined) {
      c = compareVersion(it.incarnation, it.seq, mine.incarnation, mine.seq);
      // equal versions with different values (possible only across restarts): the larger value wins
      if (c === 0 && it.value !== mine.value) c = it.value > mine.value ? 1 : -1;
    }
    if (c === 0) {
      this.#stats.itemsDuplicate++;
      this.#known(from, it);
      return;
    }
    if (c < 0) {
      this.#stats.itemsStale++;
      if (mine !== undefined) this.#queue(from, mine);
      return;
    }
    if (it.origin === this.#id) {
      this.#onOwnItem(now, from, it, mine);
      return;
    }
    if (!this.#install(now, it)) return;
    this.#stats.itemsAccepted++;
    this.#floodFrom(from, it);
  }

  /** Queues `it` to every neighbour but `from`, which already has it. */
  #floodFrom(from: Neighbor, it: RouteItem): void {
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
    this.#stats.selfReissued++;
    if (mine === undefined && it.value === want) {
      // the old item says what we would say: adopt it instead of issuing a new one
      if (!this.#install(now, it)) return;
      this.#floodFrom(from, it);
      return;
    }
    this.originate(now, it.kind, it.key, want);
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
        if (due.length < this.#limits.windowItems) {
          due.push(p.item);
          p.sentAt = now;
        }
      } else if (nextDue === undefined || p.sentAt + rto < nextDue) {
        nextDue = p.sentAt + rto;
      }
    }
    if (due.length > 0) {
      this.#stats.itemsRetransmitted += due.length;
      n.backoff = Math.min(n.backoff + 1, 6);
      this.#sendItems(n.id, due);
    }
    const rto2 = this.#rtoOf(n);
    n.retxAt = n.pending.size === 0 ? undefined : due.length > 0 ? now + rto2 : (nextDue ?? now + rto2);
  }

  #push(out: Outgoing): void {
    if (this.#outbox.length - this.#outHead >= this.#limits.maxOutbox) {
      this.#outHead++;
      this.#stats.dropOutbox++;
    }
    if (this.#outHead > 1024 && this.#outHead * 2 > this.#outbox.length) {
      this.#outbox = this.#outbox.slice(this.#outHead);
      this.#outHead = 0;
    }
    this.#outbox.push(out);
    this.#stats.messagesSent++;
  }

  #sendItems(to: number, items: RouteItem[]): void {
    for (let i = 0; i < items.length; i += MAX_ROUTE_ITEMS) {
      this.#push({ to, msg: { _tag: "RouteUpdate", items: items.slice(i, i + MAX_ROUTE_ITEMS) } });
    }
  }
}
