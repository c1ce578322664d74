import type { Delivery, View } from "@spines-ts/membership";
import { ConfigError, type Logger, type NodeId, RateLimitedLog, silentLogger } from "@spines-ts/primitives";
import {
  decode,
  encode,
  type MbViewId,
  VIP_MAX_ARP_ENTRIES,
  type VipMessage,
  type VipNeighbor,
  VipStateFlag,
} from "@spines-ts/wire";
import {
  type Allocation,
  allocate,
  type MemberState,
  type Move,
  NO_OWNER,
  settle,
  type Table,
} from "./allocate.ts";
import { addressKey, parseVipGroups, tableFingerprint, type VipGroup, type VipGroupInput } from "./config.ts";

/** How balancing runs (docs/vip.md §4.3). */
export type BalanceMode =
  | { readonly mode: "off" }
  /** Balance fully at the end of every exchange and whenever a member matures or settles. */
  | { readonly mode: "immediate" }
  /** The view's first member asks for a round of at most `movesPerRound` moves every `intervalMs`. */
  | { readonly mode: "periodic"; readonly intervalMs: number; readonly movesPerRound: number };

export interface VipConfig {
  /** The group table: identical names and addresses, in the same order, at every member. */
  readonly groups: readonly VipGroupInput[];
  /** Names of groups this member prefers (taken once it is settled, never balanced away). */
  readonly prefer?: readonly string[];
  /** Cold-start hold-off: a new member claims nothing for this long unless a mature member is seen. Default 5,000 ms. */
  readonly matureMs?: number;
  /**
   * Flap hold-off: after it starts, or after it lost the majority of its previous view, a member
   * receives nothing by balancing or preference and loses conflicts for this long. Default 10,000 ms.
   */
  readonly holdOffMs?: number;
  /** Default: periodic, 1 move every 4,000 ms. */
  readonly balance?: BalanceMode;
  /** Ask the driver for a neighbour-cache sample to share this often (0: only after exchanges). Default 60,000 ms. */
  readonly neighborShareMs?: number;
  /**
   * The sample after an exchange waits this long (0: at once). An exchange is a fail-over's busiest
   * moment, and a sample is a process start (`ip neigh`), which on a busy host competes with the
   * takers' address changes; the neighbours it learns serve the next fail-over, not this one.
   * Default 1,000 ms.
   */
  readonly neighborSampleDelayMs?: number;
  readonly log?: Logger;
  /**
   * Replaces the allocation run at the end of every exchange. For tests only: they plug in naive
   * rules to show which membership behaviour would move VIPs without cause (test/flap.test.ts).
   */
  readonly allocator?: (groups: number, states: readonly MemberState[], maxMoves: number) => Allocation;
  /**
   * Run the state exchange in every view, also in one that only removed members (docs/vip.md §4.4:
   * such a view's table is computed from the previous one without messages). For tests only, and
   * every member of a group must agree on it: a member that exchanges where the others carry the
   * table over would wait for states nobody sends.
   */
  readonly exchangeEveryView?: boolean;
}

/** What the address driver must do. */
export type VipAction =
  | { readonly type: "acquire"; readonly group: VipGroup }
  | { readonly type: "release"; readonly group: VipGroup };

export type VipEvent =
  /** An exchange completed (or the table changed since): the agreed owner of every group (0: none). */
  | {
      readonly type: "allocated";
      readonly view: string;
      readonly owners: readonly NodeId[];
      readonly moves: readonly Move[];
      readonly reason: "exchange" | "mature" | "settled" | "balance";
      /**
       * With reason "exchange": the view only removed members, and its table was computed from the
       * previous view's agreed table at the view's installation, without a state exchange.
       */
      readonly carried?: boolean;
    }
  /** Every group was released (shutdown, failure, loss of the membership service). */
  | { readonly type: "releasedAll"; readonly reason: "stop" | "fail" | "membershipLost" }
  /** A member reported a different group table; its claims are ignored (a configuration error). */
  | {
      readonly type: "tableMismatch";
      readonly member: NodeId;
      readonly theirs: number;
      readonly ours: number;
    }
  /** A payload that is not a VIP message, or one from a sender outside the view. */
  | { readonly type: "badMessage"; readonly from: NodeId; readonly reason: string }
  /** The driver should sample its neighbour cache and call `shareNeighbors`. */
  | { readonly type: "sampleNeighbors" }
  /** Neighbours learned from another member (the driver notifies them on takeovers). */
  | { readonly type: "neighbors"; readonly from: NodeId; readonly entries: readonly VipNeighbor[] };

export type VipPhase = "idle" | "gather" | "run" | "failed" | "stopped";

export interface VipSnapshot {
  readonly id: NodeId;
  readonly phase: VipPhase;
  readonly view: string | undefined;
  readonly myIndex: number;
  readonly mature: boolean;
  readonly settled: boolean;
  /** Groups this member holds (asked the driver to acquire and not released since), ascending. */
  readonly held: readonly number[];
  /** Membership deliveries processed in the current view (a point in the view's total order). */
  readonly delivered: number;
  /** The agreed owners (node ids, 0 = none) once the exchange completed. */
  readonly owners: readonly NodeId[] | undefined;
}

const MAX_NEIGHBORS = 1024;

function sameView(a: MbViewId, b: MbViewId): boolean {
  return a.counter === b.counter && a.coord === b.coord && a.coordInc === b.coordInc;
}

function nonNegative(source: string, key: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    throw new ConfigError(source, key, "a number >= 0", v);
  return v;
}

/**
 * The VIP protocol as a sans-IO state machine (docs/vip.md §4). Inputs: `start`, membership events
 * (`handleView`, `handleDelivery`), `handleTimeout`, and the application calls `fail`, `stop`,
 * `membershipLost`, `balanceNow`, `shareNeighbors`. Outputs: payloads to multicast in the group
 * (`takeTransmits`), address actions (`takeActions`), events (`takeEvents`) and `nextDeadline`.
 */
export class VipCore {
  readonly id: NodeId;
  readonly groups: readonly VipGroup[];
  readonly fingerprint: number;
  readonly prefers: readonly number[];
  readonly matureMs: number;
  readonly holdOffMs: number;
  readonly balance: BalanceMode;
  readonly neighborShareMs: number;
  readonly neighborSampleDelayMs: number;
  readonly #allocator: NonNullable<VipConfig["allocator"]>;
  readonly #exchangeEveryView: boolean;
  #incarnation: number;
  readonly #log: RateLimitedLog;

  #phase: VipPhase = "idle";
  #view: View | undefined;
  #prevMembers: readonly NodeId[] = [];
  #mature = false;
  #settled = false;
  #matureAt: number | undefined;
  #settleAt: number | undefined;
  #balanceAt: number | undefined;
  #shareAt: number | undefined;
  readonly #held = new Set<number>();
  #states: (MemberState | undefined)[] = [];
  #received = 0;
  /** Every member of the current view sent this member's table fingerprint (no `tableMismatch`). */
  #allMatched = false;
  #late: { mature: Set<number>; settled: Set<number> } = { mature: new Set(), settled: new Set() };
  #table: Table | undefined;
  #delivered = 0;
  readonly #neighbors = new Map<string, VipNeighbor>();
  /** The configured VIPs (as neighbour keys): a VIP is never a neighbour to notify. */
  readonly #vipKeys: ReadonlySet<string>;
  #transmits: Uint8Array[] = [];
  #actions: VipAction[] = [];
  #events: VipEvent[] = [];

  constructor(config: VipConfig, id: NodeId, incarnation = 1) {
    const source = "vip config";
    if (typeof config !== "object" || config === null)
      throw new ConfigError(source, "(root)", "an object", config);
    this.id = id;
    this.#incarnation = incarnation >>> 0;
    this.groups = parseVipGroups(config.groups, source);
    this.#vipKeys = new Set(this.groups.flatMap((g) => g.addresses.map((a) => addressKey(a.address))));
    this.fingerprint = tableFingerprint(this.groups);
    const byName = new Map(this.groups.map((g) => [g.name, g.index]));
    const prefer = config.prefer ?? [];
    if (!Array.isArray(prefer)) throw new ConfigError(source, "prefer", "an array of group names", prefer);
    this.prefers = [
      ...new Set(
        prefer.map((n: string, i: number) => {
          const g = byName.get(n);
          if (g === undefined)
            throw new ConfigError(source, `prefer[${i}]`, "the name of a configured group", n);
          return g;
        }),
      ),
    ].sort((a, b) => a - b);
    this.matureMs = nonNegative(source, "matureMs", config.matureMs, 5000);
    this.holdOffMs = nonNegative(source, "holdOffMs", config.holdOffMs, 10_000);
    this.neighborShareMs = nonNegative(source, "neighborShareMs", config.neighborShareMs, 60_000);
    this.neighborSampleDelayMs = nonNegative(
      source,
      "neighborSampleDelayMs",
      config.neighborSampleDelayMs,
      1000,
    );
    const b = config.balance ?? { mode: "periodic", intervalMs: 4000, movesPerRound: 1 };
    if (b.mode === "periodic") {
      if (!(Number.isFinite(b.intervalMs) && b.intervalMs > 0))
        throw new ConfigError(source, "balance.intervalMs", "a number > 0", b.intervalMs);
      if (!(Number.isInteger(b.movesPerRound) && b.movesPerRound >= 1 && b.movesPerRound <= 1024))
        throw new ConfigError(source, "balance.movesPerRound", "an integer in 1..1024", b.movesPerRound);
    } else if (b.mode !== "off" && b.mode !== "immediate") {
      throw new ConfigError(
        source,
        "balance.mode",
        '"off", "immediate" or "periodic"',
        (b as { mode: unknown }).mode,
      );
    }
    this.balance = b;
    this.#allocator = config.allocator ?? allocate;
    this.#exchangeEveryView = config.exchangeEveryView === true;
    this.#log = new RateLimitedLog(config.log ?? silentLogger);
  }

  get phase(): VipPhase {
    return this.#phase;
  }

  /** Groups held now. */
  get held(): ReadonlySet<number> {
    return this.#held;
  }

  /** The agreed table of the current view once its exchange completed. */
  get table(): Table | undefined {
    return this.#table;
  }

  /** Membership deliveries processed in the current view: a point in the view's total order. */
  get delivered(): number {
    return this.#delivered;
  }

  get mature(): boolean {
    return this.#mature;
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** Neighbours learned from the group (bounded, newest wins). */
  neighbors(): VipNeighbor[] {
    return [...this.#neighbors.values()];
  }

  /** Starts (or restarts after `membershipLost`/`fail`): immature and unsettled, both hold-offs armed. */
  start(now: number, incarnation?: number): void {
    if (this.#phase === "stopped") return;
    if (incarnation !== undefined) this.#incarnation = incarnation >>> 0;
    this.#phase = "idle";
    this.#view = undefined;
    this.#prevMembers = [];
    this.#mature = this.matureMs === 0;
    this.#settled = this.holdOffMs === 0;
    this.#matureAt = this.#mature ? undefined : now + this.matureMs;
    this.#settleAt = this.#settled ? undefined : now + this.holdOffMs;
    this.#balanceAt = undefined;
    this.#shareAt = undefined;
    this.#table = undefined;
  }

  /**
   * A new agreed view. If it only removed members of this member's previous view, whose table was
   * agreed, the new table is computed at once from that one (docs/vip.md §4.4); otherwise send this
   * member's state and gather everyone's.
   */
  handleView(view: View, now: number): void {
    if (this.#phase === "stopped" || this.#phase === "failed") return;
    // Lost the majority of the previous view (crash of the others, or this member was cut off):
    // flap hold-off from now on.
    const prev = this.#prevMembers.length;
    const lostMajority = prev > 1 && 2 * view.transitional.length <= prev;
    if (lostMajority) {
      this.#settled = this.holdOffMs === 0;
      this.#settleAt = this.#settled ? undefined : now + this.holdOffMs;
    }
    const old = this.#view;
    const oldTable = this.#table;
    // Removal only: every member of the new view comes from this member's previous view (the
    // transitional set is the whole view), and that view's exchange completed here. By virtual
    // synchrony (membership S6) every member then delivered the same messages in the old view, so
    // each holds the same agreed table and takes this same branch.
    const carry =
      !this.#exchangeEveryView &&
      this.#phase === "run" &&
      this.#allMatched &&
      old !== undefined &&
      oldTable !== undefined &&
      view.transitional.length === view.members.length &&
      view.members.every((m) => old.members.includes(m));
    this.#view = view;
    this.#prevMembers = view.members;
    this.#phase = "gather";
    this.#states = new Array(view.members.length).fill(undefined);
    this.#received = 0;
    this.#late = { mature: new Set(), settled: new Set() };
    this.#table = undefined;
    this.#delivered = 0;
    this.#balanceAt = undefined;
    if (carry) {
      // What each member would have sent in its VipState for this view, known from the old table:
      // the groups it owns, its flags (the majority rule above unsettles every member alike), its
      // preferences. A flag a member set in the old view whose message was not delivered there is
      // sent again below and applied where it is delivered, at the same point everywhere.
      this.#states = view.members.map((id) => {
        const i = old.members.indexOf(id);
        const m = oldTable.members[i] as Table["members"][number];
        const held: number[] = [];
        oldTable.owner.forEach((o, g) => {
          if (o === i) held.push(g);
        });
        return {
          mature: oldTable.mature,
          settled: lostMajority ? false : m.settled,
          held,
          prefers: [...m.prefers].sort((a, b) => a - b),
        };
      });
      this.#received = view.members.length;
      this.#finishExchange(now, true);
      const mine = this.#table as Table | undefined;
      if (this.#mature && mine !== undefined && !mine.mature)
        this.#send({ _tag: "VipMature", view: view.id });
      if (this.#settled && mine !== undefined && !mine.members[view.myIndex]?.settled)
        this.#send({ _tag: "VipSettled", view: view.id });
      return;
    }
    this.#allMatched = true;
    this.#send({
      _tag: "VipState",
      view: view.id,
      table: this.fingerprint,
      flags: (this.#mature ? VipStateFlag.Mature : 0) | (this.#settled ? VipStateFlag.Settled : 0),
      held: [...this.#held].sort((a, b) => a - b),
      prefers: this.prefers,
    });
  }

  /** One totally ordered membership message. Never throws for its content. */
  handleDelivery(d: Delivery, now: number): void {
    if (this.#phase === "stopped" || this.#phase === "failed") return;
    const view = this.#view;
    if (view === undefined || !sameView(d.view, view.id)) return;
    this.#delivered++;
    let m: VipMessage;
    try {
      const f = decode(d.payload);
      if (f.msg._tag.slice(0, 3) !== "Vip") throw new Error(`not a VIP message: ${f.msg._tag}`);
      if (f.sender !== d.sender)
        throw new Error(`frame sender ${f.sender} is not the membership sender ${d.sender}`);
      m = f.msg as VipMessage;
    } catch (e) {
      this.#events.push({ type: "badMessage", from: d.sender, reason: String((e as Error).message ?? e) });
      this.#log.debug(now, "badMessage", { from: d.sender, err: String(e) }, "vip: dropped a bad payload");
      return;
    }
    const idx = view.members.indexOf(d.sender);
    if (idx < 0) {
      this.#events.push({ type: "badMessage", from: d.sender, reason: "sender not in the view" });
      return;
    }
    if (m._tag === "VipArpCache") {
      this.#learn(d.sender, m.entries);
      return;
    }
    // Every other message names the view it was sent for; one sent for an older view is stale.
    if (!sameView(m.view, view.id)) return;
    switch (m._tag) {
      case "VipState": {
        if (this.#phase !== "gather" || this.#states[idx] !== undefined) return;
        if (m.table !== this.fingerprint) {
          this.#events.push({
            type: "tableMismatch",
            member: d.sender,
            theirs: m.table,
            ours: this.fingerprint,
          });
          this.#states[idx] = { mature: false, settled: false, held: [], prefers: [] };
          this.#allMatched = false;
        } else {
          this.#states[idx] = {
            mature: (m.flags & VipStateFlag.Mature) !== 0,
            settled: (m.flags & VipStateFlag.Settled) !== 0,
            held: m.held,
            prefers: m.prefers,
          };
        }
        this.#received++;
        if (this.#received === view.members.length) this.#finishExchange(now);
        return;
      }
      case "VipMature":
        if (this.#phase === "gather") this.#late.mature.add(idx);
        else if (this.#phase === "run" && this.#table !== undefined && !this.#table.mature) {
          this.#mature = true;
          this.#matureAt = undefined;
          this.#apply(settle({ ...this.#table, mature: true }, this.#immediateMoves()), "mature");
        }
        return;
      case "VipSettled": {
        if (this.#phase === "gather") this.#late.settled.add(idx);
        else if (this.#phase === "run" && this.#table !== undefined && !this.#table.members[idx]?.settled) {
          const members = this.#table.members.map((x, i) => (i === idx ? { ...x, settled: true } : x));
          this.#apply(settle({ ...this.#table, members }, this.#immediateMoves()), "settled");
        }
        return;
      }
      case "VipBalance":
        if (this.#phase === "run" && this.#table !== undefined)
          this.#apply(settle(this.#table, Math.min(m.maxMoves, this.groups.length)), "balance");
        return;
    }
  }

  /** Timers: maturity, hold-off, the balancer's rounds, neighbour sharing. */
  handleTimeout(now: number): void {
    if (this.#phase === "stopped" || this.#phase === "failed") return;
    const view = this.#view;
    if (this.#matureAt !== undefined && now >= this.#matureAt) {
      this.#matureAt = undefined;
      this.#mature = true;
      if (view !== undefined) this.#send({ _tag: "VipMature", view: view.id });
    }
    if (this.#settleAt !== undefined && now >= this.#settleAt) {
      this.#settleAt = undefined;
      this.#settled = true;
      if (view !== undefined) this.#send({ _tag: "VipSettled", view: view.id });
    }
    if (this.#balanceAt !== undefined && now >= this.#balanceAt && this.balance.mode === "periodic") {
      this.#balanceAt = now + this.balance.intervalMs;
      if (view !== undefined && this.#phase === "run")
        this.#send({ _tag: "VipBalance", view: view.id, maxMoves: this.balance.movesPerRound });
    }
    if (this.#shareAt !== undefined && now >= this.#shareAt) {
      this.#shareAt = this.neighborShareMs > 0 ? now + this.neighborShareMs : undefined;
      this.#events.push({ type: "sampleNeighbors" });
    }
  }

  nextDeadline(): number | undefined {
    let d: number | undefined;
    for (const t of [this.#matureAt, this.#settleAt, this.#balanceAt, this.#shareAt])
      if (t !== undefined && (d === undefined || t < d)) d = t;
    return d;
  }

  /** Application call: ask every member for a full balancing round now (any member may). */
  balanceNow(_now: number): boolean {
    const view = this.#view;
    if (view === undefined || this.#phase !== "run") return false;
    this.#send({ _tag: "VipBalance", view: view.id, maxMoves: Math.max(1, this.groups.length) });
    return true;
  }

  /** Shares a sample of the local neighbour cache with the group (at most 256 entries per message). */
  shareNeighbors(entries: readonly VipNeighbor[], _now: number): void {
    if (this.#view === undefined) return;
    for (let i = 0; i < entries.length && i < MAX_NEIGHBORS; i += VIP_MAX_ARP_ENTRIES)
      this.#send({ _tag: "VipArpCache", entries: entries.slice(i, i + VIP_MAX_ARP_ENTRIES) });
  }

  /** The membership service is gone: no view, no addresses. Call `start` when it is back. */
  membershipLost(_now: number): void {
    if (this.#phase === "stopped") return;
    this.#releaseAll("membershipLost");
    this.#phase = "idle";
    this.#view = undefined;
    this.#table = undefined;
    this.#matureAt = this.#settleAt = this.#balanceAt = this.#shareAt = undefined;
  }

  /** Application call (like `wackatrl -f`): release everything and stay out until `start`. */
  fail(_now: number): void {
    if (this.#phase === "stopped") return;
    this.#releaseAll("fail");
    this.#phase = "failed";
    this.#view = undefined;
    this.#table = undefined;
    this.#matureAt = this.#settleAt = this.#balanceAt = this.#shareAt = undefined;
  }

  /** Shutdown: release everything; the core does nothing more. */
  stop(_now: number): void {
    if (this.#phase === "stopped") return;
    this.#releaseAll("stop");
    this.#phase = "stopped";
    this.#view = undefined;
    this.#table = undefined;
    this.#matureAt = this.#settleAt = this.#balanceAt = this.#shareAt = undefined;
  }

  takeTransmits(): Uint8Array[] {
    const t = this.#transmits;
    this.#transmits = [];
    return t;
  }

  takeActions(): VipAction[] {
    const a = this.#actions;
    this.#actions = [];
    return a;
  }

  takeEvents(): VipEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  hasOutput(): boolean {
    return this.#transmits.length > 0 || this.#actions.length > 0 || this.#events.length > 0;
  }

  snapshot(): VipSnapshot {
    const view = this.#view;
    return {
      id: this.id,
      phase: this.#phase,
      view: view?.key,
      myIndex: view?.myIndex ?? -1,
      mature: this.#mature,
      settled: this.#settled,
      held: [...this.#held].sort((a, b) => a - b),
      delivered: this.#delivered,
      owners:
        this.#table === undefined || view === undefined
          ? undefined
          : this.#table.owner.map((o) => (o === NO_OWNER ? 0 : (view.members[o] as NodeId))),
    };
  }

  // ------------------------------------------------------------------ internals

  #immediateMoves(): number {
    return this.balance.mode === "immediate" ? this.groups.length : 0;
  }

  #finishExchange(now: number, carried = false): void {
    const view = this.#view as View;
    const states = this.#states.map((s, i) => {
      const st = s as MemberState;
      return {
        ...st,
        mature: st.mature || this.#late.mature.has(i),
        settled: st.settled || this.#late.settled.has(i),
      };
    });
    const alloc = this.#allocator(this.groups.length, states, this.#immediateMoves());
    this.#phase = "run";
    if (alloc.table.mature) {
      this.#mature = true; // contagion
      this.#matureAt = undefined;
    }
    if (this.balance.mode === "periodic" && view.myIndex === 0)
      this.#balanceAt = now + this.balance.intervalMs;
    this.#apply(alloc, "exchange", carried);
    // the sample after an exchange waits (neighborSampleDelayMs); the timer then samples and goes
    // on every neighborShareMs
    if (this.neighborSampleDelayMs > 0) this.#shareAt = now + this.neighborSampleDelayMs;
    else {
      this.#events.push({ type: "sampleNeighbors" });
      this.#shareAt = this.neighborShareMs > 0 ? now + this.neighborShareMs : undefined;
    }
  }

  #apply(
    alloc: { table: Table; moves: readonly Move[] },
    reason: "exchange" | "mature" | "settled" | "balance",
    carried = false,
  ): void {
    const view = this.#view as View;
    this.#table = alloc.table;
    const me = view.myIndex;
    for (let g = 0; g < this.groups.length; g++) {
      if (alloc.table.owner[g] !== me && this.#held.has(g)) {
        this.#held.delete(g);
        this.#actions.push({ type: "release", group: this.groups[g] as VipGroup });
      }
    }
    for (let g = 0; g < this.groups.length; g++) {
      if (alloc.table.owner[g] === me && !this.#held.has(g)) {
        this.#held.add(g);
        this.#actions.push({ type: "acquire", group: this.groups[g] as VipGroup });
      }
    }
    if (reason === "exchange" || alloc.moves.length > 0)
      this.#events.push({
        type: "allocated",
        view: view.key,
        owners: alloc.table.owner.map((o) => (o === NO_OWNER ? 0 : (view.members[o] as NodeId))),
        moves: alloc.moves,
        reason,
        ...(carried ? { carried: true } : {}),
      });
  }

  #releaseAll(reason: "stop" | "fail" | "membershipLost"): void {
    for (const g of [...this.#held].sort((a, b) => a - b))
      this.#actions.push({ type: "release", group: this.groups[g] as VipGroup });
    this.#held.clear();
    this.#events.push({ type: "releasedAll", reason });
  }

  #learn(from: NodeId, entries: readonly VipNeighbor[]): void {
    for (const e of entries) {
      const key = Array.from(e.ip, (b) => b.toString(16).padStart(2, "0")).join("");
      // a member's cache holds the other VIPs too (it talked to them): notifying them is wasted work
      if (this.#vipKeys.has(key)) continue;
      this.#neighbors.delete(key);
      this.#neighbors.set(key, e);
      if (this.#neighbors.size > MAX_NEIGHBORS) {
        const oldest = this.#neighbors.keys().next().value as string;
        this.#neighbors.delete(oldest);
      }
    }
    if (from !== this.id) this.#events.push({ type: "neighbors", from, entries });
  }

  #send(m: VipMessage): void {
    this.#transmits.push(encode({ sender: this.id, incarnation: this.#incarnation }, m));
  }
}
