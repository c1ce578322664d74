import {
  type Cancel,
  CapacityError,
  type Clock,
  type Host,
  type Logger,
  type NodeFactory,
  type NodeId,
  type NodeProgram,
  Rng,
  silentLogger,
} from "@spines-ts/primitives";
import { SimEventError, SimInvariantError, type TraceRecord } from "./errors.ts";
import { type LinkParams, type ResolvedLinkParams, resolveLinkParams } from "./params.ts";
import { DropCause, type DropCauseName, Kind, TraceRing } from "./trace.ts";

export interface SimulatorOptions {
  /** Every random choice of the run derives from this integer. */
  seed: number;
  /** How many recent events the trace ring keeps (0 disables the ring; the hash still covers all). Default 10,000. */
  traceCapacity?: number;
  /** Where the simulator and the nodes' hosts log (each host gets a child with `node`). Default: silent. */
  log?: Logger;
  /** Cap on pending events (packets in flight + timers + scripted actions). Default 1,000,000. */
  maxEvents?: number;
  /**
   * Packets a stalled node's inbox holds (like a socket's receive buffer); beyond it arrivals are
   * dropped with cause "queue". Default 10,000.
   */
  stallQueuePackets?: number;
}

/** Counters of one simulator run. Drops are counted by cause; `dropped` is their sum. */
export interface SimStats {
  /** Events processed (deliveries, drops at arrival, timer fires, scripted actions). */
  events: number;
  /** Packets handed to `host.send`. */
  sent: number;
  /** Packets handed to a program's `receive` (duplicates included). */
  delivered: number;
  dropped: number;
  drops: Record<DropCauseName, number>;
  /** Extra copies created by `duplicate`. */
  duplicated: number;
  /** Packets on the wire now. Always: sent + duplicated = delivered + dropped + inFlight. */
  inFlight: number;
  /** Packets held back by `reorder`. */
  reordered: number;
  bytesSent: number;
  bytesDelivered: number;
  timersFired: number;
  actions: number;
}

/** Counters of one direction of a link. */
export interface LinkStats {
  sent: number;
  delivered: number;
  dropped: number;
  bytesDelivered: number;
}

/**
 * Random fault kinds. The default set is crash, linkFlap and partition; the others are opt-in:
 * `oneWayFlap` takes one direction of a link down (the other keeps working) and brings it back,
 * `stall` freezes a node (it processes nothing; its inputs queue) for the fault's duration.
 */
export type FaultKind = "crash" | "linkFlap" | "partition" | "oneWayFlap" | "stall";

export interface RandomFaultOptions {
  /** First possible fault time, ms. Default: now. */
  from?: number;
  /** No fault starts at or after this time, and every fault is repaired by then. */
  until: number;
  /** Mean of the exponential gap between fault starts, ms. */
  meanIntervalMs: number;
  /** Which faults to draw from (uniformly). Default: all. */
  kinds?: readonly FaultKind[];
  /** The nodes faults may touch. Default: every node added so far (when each fault fires). */
  nodes?: readonly NodeId[];
  /** Mean of the exponential fault duration, ms. Default: meanIntervalMs. */
  meanDurationMs?: number;
  /** At most this many nodes crashed by this schedule at once. Default: no limit (but one node always stays up). */
  maxCrashed?: number;
}

const EV_DELIVER = 1;
const EV_TIMER = 2;
const EV_ACTION = 3;
/** A stalled node resumes: drains one queued event per firing, in arrival order. */
const EV_RESUME = 4;

const TAG_NODE = 0x6e6f6465;
const TAG_LINK = 0x6c696e6b;
const TAG_FAULT = 0x66617574;

function mix(a: number, b: number, c: number, d: number): number {
  let h = 0x9e3779b9;
  h = Math.imul(h ^ (a >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 15) ^ (b >>> 0), 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 13) ^ (c >>> 0), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16) ^ (d >>> 0), 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

class NodeRec {
  readonly id: number;
  factory: NodeFactory | undefined = undefined;
  up = false;
  inc = 0;
  program: NodeProgram | undefined = undefined;
  /** 0 = cut off from everyone while a partition is active; else the group number. */
  group = 0;
  readonly out = new Map<number, Link>();
  /** While stalled (or still draining what queued during a stall), events for the node wait in `held`. */
  stalled = false;
  stalledUntil = 0;
  /** Deliveries and timers that came due while stalled, in order; `heldPackets` of them are deliveries. */
  held: Ev[] = [];
  heldHead = 0;
  heldPackets = 0;
  constructor(id: number) {
    this.id = id;
  }
}

class Link {
  readonly src: NodeRec;
  readonly dst: NodeRec;
  params: LinkParams;
  p: ResolvedLinkParams;
  readonly rng: Rng;
  up = true;
  /** Bumped when the link goes down, so packets in flight at that moment are lost. */
  epoch = 0;
  /** Bumped when a partition separates the two ends, so packets in flight across the cut are lost. */
  cut = 0;
  busyUntil = 0;
  lastArrival = 0;
  geBad = false;
  readonly stats: LinkStats = { sent: 0, delivered: 0, dropped: 0, bytesDelivered: 0 };
  constructor(src: NodeRec, dst: NodeRec, params: LinkParams, p: ResolvedLinkParams, rng: Rng) {
    this.src = src;
    this.dst = dst;
    this.params = params;
    this.p = p;
    this.rng = rng;
  }
}

/** One pending event; pooled and reused (`gen` tells a stale cancel handle from a live one). */
class Ev {
  time = 0;
  seq = 0;
  type = 0;
  gen = 0;
  cancelled = false;
  link: Link | null = null;
  epoch = 0;
  cut = 0;
  data: Uint8Array | null = null;
  rec: NodeRec | null = null;
  inc = 0;
  fn: (() => void) | null = null;
  act: ((sim: Simulator) => void) | null = null;
}

const noop = (): void => {};

function checkId(where: string, id: unknown): number {
  if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id > 0xffffffff)
    throw new RangeError(`${where}: node id must be an integer in [0, 2^32-1], got ${String(id)}`);
  return id;
}

/**
 * A deterministic discrete-event network simulator. Nodes run `NodeProgram`s through the `Host`
 * contract; packets travel over one-way links with delay, jitter, loss, reordering, duplication and
 * a bandwidth bottleneck; faults are scripted or drawn from the seed. Events run in (time, insertion)
 * order, so one seed always gives one run, and `traceHash()` proves it.
 */
export class Simulator {
  readonly seed: number;
  readonly log: Logger;
  readonly maxEvents: number;
  readonly stallQueuePackets: number;
  #now = 0;
  #seq = 0;
  readonly #heap: Ev[] = [];
  readonly #free: Ev[] = [];
  #dead = 0;
  #running = false;
  readonly #nodes = new Map<number, NodeRec>();
  readonly #trace: TraceRing;
  readonly #invariants: { name: string; check: (sim: Simulator) => string | undefined }[] = [];
  #partitioned = false;
  #partitionGen = 0;
  #faultSchedules = 0;
  readonly #clock: Clock;
  readonly #stats: SimStats = {
    events: 0,
    sent: 0,
    delivered: 0,
    dropped: 0,
    drops: { loss: 0, queue: 0, down: 0, partition: 0, crashed: 0, mtu: 0, noLink: 0 },
    duplicated: 0,
    inFlight: 0,
    reordered: 0,
    bytesSent: 0,
    bytesDelivered: 0,
    timersFired: 0,
    actions: 0,
  };

  constructor(options: SimulatorOptions) {
    if (typeof options !== "object" || options === null)
      throw new TypeError("Simulator: options { seed } are required");
    const { seed } = options;
    if (typeof seed !== "number" || !Number.isSafeInteger(seed))
      throw new RangeError(`Simulator: seed must be a safe integer, got ${String(seed)}`);
    this.seed = seed;
    this.log = options.log ?? silentLogger;
    const max = options.maxEvents ?? 1_000_000;
    if (!(Number.isInteger(max) && max > 0))
      throw new RangeError(`Simulator: maxEvents must be a positive integer, got ${max}`);
    this.maxEvents = max;
    const sq = options.stallQueuePackets ?? 10_000;
    if (!(Number.isInteger(sq) && sq >= 0))
      throw new RangeError(`Simulator: stallQueuePackets must be an integer >= 0, got ${sq}`);
    this.stallQueuePackets = sq;
    this.#trace = new TraceRing(options.traceCapacity ?? 10_000);
    this.#clock = { now: () => this.#now };
  }

  /** Current virtual time, ms. */
  get now(): number {
    return this.#now;
  }

  /** A clock that reads the virtual time (the one every host gets). */
  get clock(): Clock {
    return this.#clock;
  }

  /** Live counters (the same object throughout the run). */
  get stats(): Readonly<SimStats> {
    return this.#stats;
  }

  /** Number of pending events (including cancelled timers not yet discarded). */
  get pending(): number {
    return this.#heap.length;
  }

  // ---------------------------------------------------------------- nodes

  /** Adds a node and starts its program now (the factory is called right away). */
  addNode(id: NodeId, factory: NodeFactory): void {
    checkId("Simulator.addNode", id);
    if (typeof factory !== "function") throw new TypeError("Simulator.addNode: factory must be a function");
    const rec = this.#rec(id);
    if (rec.factory !== undefined) throw new RangeError(`Simulator.addNode: node ${id} already exists`);
    rec.factory = factory;
    this.#trace.record(Kind.addNode, this.#now, id, 0, 0, null);
    this.#start(rec);
  }

  /** Crashes a node: its program is dropped (no `stop()`), its timers die, packets to it are lost. */
  crash(id: NodeId): void {
    const rec = this.#existing("Simulator.crash", id);
    if (!rec.up) throw new RangeError(`Simulator.crash: node ${id} is already down`);
    rec.up = false;
    rec.program = undefined;
    rec.inc++;
    this.#trace.record(Kind.crash, this.#now, id, 0, rec.inc, null);
    this.#discardHeld(rec);
    this.log.debug({ node: id, t: this.#now }, "netsim: crash");
  }

  /**
   * Restarts a crashed node: the factory runs again with a fresh host (new rng stream, no timers).
   * A new `factory` replaces the old one from now on (to test upgrades).
   */
  restart(id: NodeId, factory?: NodeFactory): void {
    const rec = this.#existing("Simulator.restart", id);
    if (rec.up) throw new RangeError(`Simulator.restart: node ${id} is up; crash it first`);
    if (factory !== undefined) {
      if (typeof factory !== "function") throw new TypeError("Simulator.restart: factory must be a function");
      rec.factory = factory;
    }
    this.#trace.record(Kind.restart, this.#now, id, 0, rec.inc, null);
    this.log.debug({ node: id, t: this.#now }, "netsim: restart");
    this.#start(rec);
  }

  /** The node's current program, or undefined when it is down or unknown. */
  program<T = NodeProgram>(id: NodeId): T | undefined {
    return this.#nodes.get(id)?.program as T | undefined;
  }

  isUp(id: NodeId): boolean {
    return this.#nodes.get(id)?.up === true;
  }

  /** How many times the node has crashed (its incarnation number, starting at 0). */
  incarnation(id: NodeId): number {
    return this.#existing("Simulator.incarnation", id).inc;
  }

  /** Ids of the nodes added so far, in the order they were added. */
  nodeIds(): NodeId[] {
    const out: NodeId[] = [];
    for (const r of this.#nodes.values()) if (r.factory !== undefined) out.push(r.id);
    return out;
  }

  /**
   * Freezes a node for `ms`, as when its process is descheduled or paused by the garbage
   * collector: it runs no timer and receives no packet. Packets arriving meanwhile queue (up to
   * `stallQueuePackets`, then they are dropped with cause "queue"), timers fall due late. When the
   * stall ends, the node handles what queued in arrival order, one event at a time, at the resume
   * time, before anything newer. Stalling a stalled node extends the stall; a crash ends it (the
   * queue is lost). Scripted actions that call the program directly are not held back.
   */
  stall(id: NodeId, ms: number): void {
    const rec = this.#existing("Simulator.stall", id);
    if (!rec.up) throw new RangeError(`Simulator.stall: node ${id} is down`);
    if (typeof ms !== "number" || !(ms >= 0) || !Number.isFinite(ms))
      throw new RangeError(`Simulator.stall: ms must be a finite number >= 0, got ${ms}`);
    const until = this.#now + ms;
    if (rec.stalled && until <= rec.stalledUntil) return;
    rec.stalled = true;
    rec.stalledUntil = until;
    this.#trace.record(Kind.stall, this.#now, id, 0, Math.round(ms * 1000) >>> 0, null);
    const ev = this.#alloc(until, EV_RESUME);
    ev.rec = rec;
    ev.inc = rec.inc;
    this.#push(ev);
  }

  /** True while the node is stalled or still handling what queued during a stall. */
  isStalled(id: NodeId): boolean {
    return this.#nodes.get(id)?.stalled === true;
  }

  /** Events (packets and timers) queued at a stalled node. */
  stalledEvents(id: NodeId): number {
    const r = this.#nodes.get(id);
    return r === undefined ? 0 : r.held.length - r.heldHead;
  }

  // ---------------------------------------------------------------- links

  /** Links a and b in both directions with the same parameters (each direction has its own state). */
  connect(a: NodeId, b: NodeId, params: LinkParams): void {
    this.connectOneWay(a, b, params);
    this.connectOneWay(b, a, params);
  }

  /** Adds the one-way link a → b. */
  connectOneWay(a: NodeId, b: NodeId, params: LinkParams): void {
    checkId("Simulator.connect", a);
    checkId("Simulator.connect", b);
    if (a === b) throw new RangeError(`Simulator.connect: cannot link node ${a} to itself`);
    const src = this.#rec(a);
    if (src.out.has(b)) throw new RangeError(`Simulator.connect: link ${a} -> ${b} exists; use setLink`);
    const { params: full, resolved } = resolveLinkParams(`Simulator.connect(${a}, ${b})`, params);
    const rng = new Rng(mix(this.seed, TAG_LINK, a, b));
    src.out.set(b, new Link(src, this.#rec(b), full, resolved, rng));
  }

  /** Links every pair of `ids` both ways. */
  mesh(ids: readonly NodeId[], params: LinkParams): void {
    for (let i = 0; i < ids.length; i++)
      for (let j = i + 1; j < ids.length; j++) this.connect(ids[i] as number, ids[j] as number, params);
  }

  /**
   * Changes a link's parameters from now on (fields not given keep their values); creates the link
   * when it does not exist (then `delayMs` is required). Packets already in flight keep their fate.
   */
  setLink(a: NodeId, b: NodeId, params: Partial<LinkParams>, bothWays = true): void {
    this.#setOne(a, b, params);
    if (bothWays) this.#setOne(b, a, params);
  }

  #setOne(a: NodeId, b: NodeId, params: Partial<LinkParams>): void {
    checkId("Simulator.setLink", a);
    checkId("Simulator.setLink", b);
    const link = this.#nodes.get(a)?.out.get(b);
    if (link === undefined) {
      this.connectOneWay(a, b, params as LinkParams);
      return;
    }
    const { params: full, resolved } = resolveLinkParams(
      `Simulator.setLink(${a}, ${b})`,
      params,
      link.params,
    );
    link.params = full;
    link.p = resolved;
    this.#trace.record(Kind.linkSet, this.#now, a, b, 0, null);
  }

  hasLink(a: NodeId, b: NodeId): boolean {
    return this.#nodes.get(a)?.out.get(b) !== undefined;
  }

  /** The parameters of link a → b as last set, or undefined. */
  linkParams(a: NodeId, b: NodeId): Readonly<LinkParams> | undefined {
    return this.#nodes.get(a)?.out.get(b)?.params;
  }

  /** Counters of link a → b, or undefined. */
  linkStats(a: NodeId, b: NodeId): Readonly<LinkStats> | undefined {
    return this.#nodes.get(a)?.out.get(b)?.stats;
  }

  isLinkUp(a: NodeId, b: NodeId): boolean {
    return this.#nodes.get(a)?.out.get(b)?.up === true;
  }

  /**
   * Takes the link between a and b down in both directions (with `bothWays` false, only a → b: an
   * asymmetric failure, b still reaches a); packets in flight on a downed direction are lost.
   */
  linkDown(a: NodeId, b: NodeId, bothWays = true): void {
    const ab = this.#nodes.get(a)?.out.get(b);
    const ba = bothWays ? this.#nodes.get(b)?.out.get(a) : undefined;
    if (ab === undefined && ba === undefined)
      throw new RangeError(
        `Simulator.linkDown: no link ${bothWays ? "between" : "from"} ${a} ${bothWays ? "and" : "to"} ${b}`,
      );
    for (const l of [ab, ba]) {
      if (l === undefined || !l.up) continue;
      l.up = false;
      l.epoch++;
      l.busyUntil = this.#now;
      l.lastArrival = this.#now;
    }
    this.#trace.record(Kind.linkDown, this.#now, a, b, bothWays ? 0 : 1, null);
  }

  /** Brings the link between a and b back up in both directions (with `bothWays` false, only a → b). */
  linkUp(a: NodeId, b: NodeId, bothWays = true): void {
    const ab = this.#nodes.get(a)?.out.get(b);
    const ba = bothWays ? this.#nodes.get(b)?.out.get(a) : undefined;
    if (ab === undefined && ba === undefined)
      throw new RangeError(
        `Simulator.linkUp: no link ${bothWays ? "between" : "from"} ${a} ${bothWays ? "and" : "to"} ${b}`,
      );
    if (ab !== undefined) ab.up = true;
    if (ba !== undefined) ba.up = true;
    this.#trace.record(Kind.linkUp, this.#now, a, b, bothWays ? 0 : 1, null);
  }

  /**
   * Splits the network: packets cross only between nodes of the same group, until `heal()`. Nodes
   * not named in any group are cut off from everyone. Packets in flight across the cut are lost.
   */
  partition(groups: readonly (readonly NodeId[])[]): void {
    if (!Array.isArray(groups)) throw new TypeError("Simulator.partition: groups must be an array of arrays");
    const seen = new Set<number>();
    for (const g of groups) {
      if (!Array.isArray(g)) throw new TypeError("Simulator.partition: groups must be an array of arrays");
      for (const id of g) {
        checkId("Simulator.partition", id);
        if (seen.has(id)) throw new RangeError(`Simulator.partition: node ${id} is in two groups`);
        seen.add(id);
      }
    }
    for (const r of this.#nodes.values()) r.group = 0;
    groups.forEach((g, i) => {
      for (const id of g) this.#rec(id).group = i + 1;
    });
    this.#partitioned = true;
    this.#partitionGen++;
    for (const r of this.#nodes.values())
      for (const l of r.out.values()) if (l.src.group === 0 || l.src.group !== l.dst.group) l.cut++;
    this.#trace.record(Kind.partition, this.#now, groups.length, seen.size, 0, null);
  }

  /** Ends the partition. */
  heal(): void {
    this.#partitioned = false;
    this.#partitionGen++;
    this.#trace.record(Kind.heal, this.#now, 0, 0, 0, null);
  }

  get partitioned(): boolean {
    return this.#partitioned;
  }

  // ---------------------------------------------------------------- scripting

  /** Runs `fn` at virtual time `t` (>= now). Ties with other events run in scheduling order. */
  at(t: number, fn: (sim: Simulator) => void): void {
    if (typeof t !== "number" || !(t >= this.#now) || !Number.isFinite(t))
      throw new RangeError(`Simulator.at: time must be finite and >= now (${this.#now}), got ${t}`);
    if (typeof fn !== "function") throw new TypeError("Simulator.at: fn must be a function");
    const ev = this.#alloc(t, EV_ACTION);
    ev.act = fn;
    this.#push(ev);
  }

  /** Runs `fn` `ms` after now. */
  after(ms: number, fn: (sim: Simulator) => void): void {
    if (typeof ms !== "number" || !(ms >= 0))
      throw new RangeError(`Simulator.after: ms must be >= 0, got ${ms}`);
    this.at(this.#now + ms, fn);
  }

  /**
   * Adds a property checked after every event; `check` returns undefined when it holds and a
   * description of the problem when not, which makes the run throw `SimInvariantError`.
   */
  addInvariant(name: string, check: (sim: Simulator) => string | undefined): void {
    if (typeof name !== "string" || name === "")
      throw new TypeError("Simulator.addInvariant: name must be a string");
    if (typeof check !== "function") throw new TypeError("Simulator.addInvariant: check must be a function");
    this.#invariants.push({ name, check });
  }

  /** Checks every invariant now (also done after every event). */
  checkInvariants(): void {
    for (const inv of this.#invariants) {
      let r: string | undefined;
      try {
        r = inv.check(this);
      } catch (e) {
        throw this.#wrap(e, undefined, `invariant "${inv.name}"`);
      }
      if (r !== undefined)
        throw new SimInvariantError(this.seed, this.#now, inv.name, r, this.#trace.decode(20));
    }
  }

  /**
   * Schedules random faults drawn from the seed: crashes (restarted later), link flaps (both
   * directions down, then up) and partitions into two sides (healed later), with exponential gaps
   * and durations; opt-in, one-way link flaps and node stalls. Everything is repaired by `until`.
   */
  randomFaults(options: RandomFaultOptions): void {
    const { until, meanIntervalMs } = options;
    const from = options.from ?? this.#now;
    const kinds = options.kinds ?? (["crash", "linkFlap", "partition"] as const);
    const meanDur = options.meanDurationMs ?? meanIntervalMs;
    const maxCrashed = options.maxCrashed ?? Number.POSITIVE_INFINITY;
    if (!(from >= this.#now) || !Number.isFinite(from))
      throw new RangeError(`Simulator.randomFaults: from must be >= now, got ${from}`);
    if (!(until > from) || !Number.isFinite(until))
      throw new RangeError(`Simulator.randomFaults: until must be finite and > from, got ${until}`);
    if (!(meanIntervalMs > 0)) throw new RangeError("Simulator.randomFaults: meanIntervalMs must be > 0");
    if (!(meanDur > 0)) throw new RangeError("Simulator.randomFaults: meanDurationMs must be > 0");
    if (kinds.length === 0) throw new RangeError("Simulator.randomFaults: kinds is empty");
    for (const k of kinds)
      if (k !== "crash" && k !== "linkFlap" && k !== "partition" && k !== "oneWayFlap" && k !== "stall")
        throw new RangeError(`Simulator.randomFaults: unknown fault kind ${String(k)}`);
    if (options.nodes !== undefined) for (const id of options.nodes) checkId("Simulator.randomFaults", id);
    const rng = new Rng(mix(this.seed, TAG_FAULT, this.#faultSchedules++, 0));
    const crashedByMe = new Set<number>();
    const nodes = (): number[] => (options.nodes === undefined ? this.nodeIds() : [...options.nodes]);
    const end = (): number => Math.min(this.#now + rng.exponential(meanDur), until);

    const fire = (): void => {
      const kind = rng.pick(kinds);
      const ids = nodes().filter((id) => this.#nodes.get(id)?.factory !== undefined);
      if (kind === "crash") {
        const up = ids.filter((id) => this.isUp(id));
        if (up.length > 1 && crashedByMe.size < maxCrashed) {
          const id = rng.pick(up);
          this.crash(id);
          crashedByMe.add(id);
          const inc = this.incarnation(id);
          this.at(end(), () => {
            crashedByMe.delete(id);
            if (!this.isUp(id) && this.incarnation(id) === inc) this.restart(id);
          });
        }
      } else if (kind === "linkFlap") {
        const inSet = new Set(ids);
        const pairs: [number, number][] = [];
        for (const a of ids) {
          const rec = this.#nodes.get(a);
          if (rec === undefined) continue;
          for (const [b, l] of rec.out) {
            if (!inSet.has(b) || !l.up) continue;
            if (a < b || !this.#nodes.get(b)?.out.has(a)) pairs.push([a, b]);
          }
        }
        if (pairs.length > 0) {
          const [a, b] = rng.pick(pairs);
          this.linkDown(a, b);
          const ab = this.#nodes.get(a)?.out.get(b);
          const epoch = ab?.epoch ?? 0;
          this.at(end(), () => {
            const l = this.#nodes.get(a)?.out.get(b);
            if (l !== undefined && !l.up && l.epoch === epoch) this.linkUp(a, b);
          });
        }
      } else if (kind === "oneWayFlap") {
        const inSet = new Set(ids);
        const dirs: [number, number][] = [];
        for (const a of ids) {
          const rec = this.#nodes.get(a);
          if (rec === undefined) continue;
          for (const [b, l] of rec.out) if (inSet.has(b) && l.up) dirs.push([a, b]);
        }
        if (dirs.length > 0) {
          const [a, b] = rng.pick(dirs);
          this.linkDown(a, b, false);
          const epoch = this.#nodes.get(a)?.out.get(b)?.epoch ?? 0;
          this.at(end(), () => {
            const l = this.#nodes.get(a)?.out.get(b);
            if (l !== undefined && !l.up && l.epoch === epoch) this.linkUp(a, b, false);
          });
        }
      } else if (kind === "stall") {
        const up = ids.filter((id) => this.isUp(id));
        if (up.length > 0) this.stall(rng.pick(up), end() - this.#now);
      } else if (!this.#partitioned && ids.length >= 2) {
        const shuffled = rng.shuffle([...ids]);
        const cut = rng.intBetween(1, shuffled.length - 1);
        const others = this.nodeIds().filter((id) => !shuffled.includes(id));
        this.partition([[...shuffled.slice(0, cut), ...others], shuffled.slice(cut)]);
        const gen = this.#partitionGen;
        this.at(end(), () => {
          if (this.#partitioned && this.#partitionGen === gen) this.heal();
        });
      }
      const next = this.#now + rng.exponential(meanIntervalMs);
      if (next < until) this.at(next, fire);
    };
    const first = from + rng.exponential(meanIntervalMs);
    if (first < until) this.at(first, fire);
  }

  // ---------------------------------------------------------------- running

  /**
   * Processes every event up to and including time `untilMs`, then sets the clock to `untilMs`.
   * Returns the number of events processed. Without an argument it runs until no event is left,
   * which never happens while a program keeps a periodic timer.
   */
  run(untilMs: number = Number.POSITIVE_INFINITY): number {
    if (typeof untilMs !== "number" || !(untilMs >= this.#now))
      throw new RangeError(`Simulator.run: until must be >= now (${this.#now}), got ${untilMs}`);
    if (this.#running) throw new Error("Simulator.run: already running (called from inside an event?)");
    this.#running = true;
    let n = 0;
    try {
      const heap = this.#heap;
      for (;;) {
        const top = heap[0];
        if (top === undefined || top.time > untilMs) break;
        if (this.#processNext()) n++;
      }
    } finally {
      this.#running = false;
    }
    if (untilMs !== Number.POSITIVE_INFINITY) this.#now = untilMs;
    return n;
  }

  /** `run(now + ms)`. */
  runFor(ms: number): number {
    if (typeof ms !== "number" || !(ms >= 0))
      throw new RangeError(`Simulator.runFor: ms must be >= 0, got ${ms}`);
    return this.run(this.#now + ms);
  }

  /**
   * Runs until `done(sim)` holds (checked after every event) or the clock reaches `maxMs`
   * (absolute). Returns whether `done` held.
   */
  runUntil(done: (sim: Simulator) => boolean, maxMs: number): boolean {
    if (typeof maxMs !== "number" || !(maxMs >= this.#now))
      throw new RangeError(`Simulator.runUntil: maxMs must be >= now (${this.#now}), got ${maxMs}`);
    if (this.#running) throw new Error("Simulator.runUntil: already running");
    if (done(this)) return true;
    this.#running = true;
    try {
      const heap = this.#heap;
      for (;;) {
        const top = heap[0];
        if (top === undefined || top.time > maxMs) break;
        if (this.#processNext() && done(this)) return true;
      }
    } finally {
      this.#running = false;
    }
    this.#now = maxMs;
    return false;
  }

  /** Processes the next live event; returns false when there is none. */
  step(): boolean {
    if (this.#running) throw new Error("Simulator.step: already running");
    this.#running = true;
    try {
      while (this.#heap.length > 0) if (this.#processNext()) return true;
      return false;
    } finally {
      this.#running = false;
    }
  }

  /** The 32-bit FNV-1a hash over every event record of the run so far (as 8 hex digits). */
  traceHash(): string {
    return this.#trace.hash.toString(16).padStart(8, "0");
  }

  /** The most recent `max` trace records (default: all the ring keeps), oldest first. */
  trace(max?: number): TraceRecord[] {
    return this.#trace.decode(max);
  }

  // ---------------------------------------------------------------- internals

  #rec(id: number): NodeRec {
    let r = this.#nodes.get(id);
    if (r === undefined) {
      r = new NodeRec(id);
      this.#nodes.set(id, r);
    }
    return r;
  }

  #existing(where: string, id: NodeId): NodeRec {
    checkId(where, id);
    const r = this.#nodes.get(id);
    if (r === undefined || r.factory === undefined) throw new RangeError(`${where}: no node ${id}`);
    return r;
  }

  #start(rec: NodeRec): void {
    const inc = rec.inc;
    const id = rec.id;
    const host: Host = {
      id,
      clock: this.#clock,
      rng: new Rng(mix(this.seed, TAG_NODE, id, inc)),
      log: this.log === silentLogger ? silentLogger : this.log.child({ node: id, inc }),
      send: (to, data) => {
        this.#send(rec, inc, to, data);
      },
      schedule: (at, fn) => this.#schedule(rec, inc, at, fn),
    };
    rec.up = true;
    const factory = rec.factory as NodeFactory;
    try {
      rec.program = factory(host);
    } catch (e) {
      rec.up = false;
      rec.inc++;
      throw this.#wrap(e, id, "node factory");
    }
  }

  #alloc(time: number, type: number): Ev {
    if (this.#heap.length >= this.maxEvents) {
      if (this.#dead > 0) this.#compact();
      if (this.#heap.length >= this.maxEvents)
        throw new CapacityError(
          `netsim event queue (seed ${this.seed}, t=${this.#now} ms; a packet or timer storm? raise maxEvents if it is real)`,
          this.maxEvents,
        );
    }
    const ev = this.#free.pop() ?? new Ev();
    ev.time = time;
    ev.seq = this.#seq++;
    ev.type = type;
    return ev;
  }

  #release(ev: Ev): void {
    ev.gen++;
    ev.cancelled = false;
    ev.link = null;
    ev.data = null;
    ev.rec = null;
    ev.fn = null;
    ev.act = null;
    this.#free.push(ev);
  }

  #push(ev: Ev): void {
    const h = this.#heap;
    let i = h.length;
    h.push(ev);
    const t = ev.time;
    const s = ev.seq;
    while (i > 0) {
      const pi = (i - 1) >> 1;
      const p = h[pi] as Ev;
      if (p.time < t || (p.time === t && p.seq < s)) break;
      h[i] = p;
      i = pi;
    }
    h[i] = ev;
  }

  #pop(): Ev | undefined {
    const h = this.#heap;
    const top = h[0];
    const last = h.pop();
    const n = h.length;
    if (n > 0 && last !== undefined) {
      const t = last.time;
      const s = last.seq;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        let c = l;
        let ce = h[l] as Ev;
        const r = l + 1;
        if (r < n) {
          const re = h[r] as Ev;
          if (re.time < ce.time || (re.time === ce.time && re.seq < ce.seq)) {
            c = r;
            ce = re;
          }
        }
        if (t < ce.time || (t === ce.time && s < ce.seq)) break;
        h[i] = ce;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }

  /** Drops cancelled timers from the heap (their order does not matter: (time, seq) is a total order). */
  #compact(): void {
    const h = this.#heap;
    const live = h.filter((e) => !e.cancelled);
    for (const e of h) if (e.cancelled) this.#release(e);
    h.length = 0;
    this.#dead = 0;
    for (const e of live) this.#push(e);
  }

  #schedule(rec: NodeRec, inc: number, at: number, fn: () => void): Cancel {
    if (typeof at !== "number" || Number.isNaN(at)) throw new RangeError(`host.schedule: bad time ${at}`);
    if (typeof fn !== "function") throw new TypeError("host.schedule: fn must be a function");
    if (rec.inc !== inc || !rec.up || at === Number.POSITIVE_INFINITY) return noop;
    const ev = this.#alloc(Math.max(at, this.#now), EV_TIMER);
    ev.rec = rec;
    ev.inc = inc;
    ev.fn = fn;
    this.#push(ev);
    const gen = ev.gen;
    return () => {
      if (ev.gen === gen && !ev.cancelled) {
        ev.cancelled = true;
        this.#dead++;
        if (this.#dead > 4096 && this.#dead * 2 > this.#heap.length) this.#compact();
      }
    };
  }

  #drop(cause: DropCause, src: number, dst: number, link: Link | null): false {
    const st = this.#stats;
    st.dropped++;
    const d = st.drops;
    switch (cause) {
      case DropCause.loss:
        d.loss++;
        break;
      case DropCause.queue:
        d.queue++;
        break;
      case DropCause.down:
        d.down++;
        break;
      case DropCause.partition:
        d.partition++;
        break;
      case DropCause.crashed:
        d.crashed++;
        break;
      case DropCause.mtu:
        d.mtu++;
        break;
      default:
        d.noLink++;
    }
    if (link !== null) link.stats.dropped++;
    this.#trace.record(Kind.drop, this.#now, src, dst, cause, null);
    return false;
  }

  /** Puts a packet on a link; false when it was dropped at the sender's side. */
  #send(rec: NodeRec, inc: number, to: number, data: Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) throw new TypeError("host.send: data must be a Uint8Array");
    const st = this.#stats;
    const now = this.#now;
    const len = data.length;
    st.sent++;
    st.bytesSent += len;
    this.#trace.record(Kind.send, now, rec.id, to >>> 0, len, data);
    if (rec.inc !== inc || !rec.up) return this.#drop(DropCause.crashed, rec.id, to, null);
    const link = rec.out.get(to);
    if (link === undefined) return this.#drop(DropCause.noLink, rec.id, to, null);
    link.stats.sent++;
    if (!link.up) return this.#drop(DropCause.down, rec.id, to, link);
    if (this.#partitioned && (rec.group === 0 || rec.group !== link.dst.group))
      return this.#drop(DropCause.partition, rec.id, to, link);
    const p = link.p;
    if (len > p.mtu) return this.#drop(DropCause.mtu, rec.id, to, link);
    let depart = now;
    if (p.bandwidthBps > 0) {
      const wire = len + p.overheadBytes;
      const busy = Math.max(link.busyUntil, now);
      const backlog = ((busy - now) * p.bandwidthBps) / 8000;
      if (backlog + wire > p.queueBytes + 1e-6) return this.#drop(DropCause.queue, rec.id, to, link);
      depart = busy + (wire * 8000) / p.bandwidthBps;
      link.busyUntil = depart;
    }
    const rng = link.rng;
    if (p.loss > 0 && rng.next() < p.loss) return this.#drop(DropCause.loss, rec.id, to, link);
    const ge = p.ge;
    if (ge !== undefined) {
      let lost: boolean;
      if (link.geBad) {
        lost = ge.lossBad > 0 && rng.next() < ge.lossBad;
        if (rng.next() < ge.pBadToGood) link.geBad = false;
      } else {
        lost = ge.lossGood > 0 && rng.next() < ge.lossGood;
        if (rng.next() < ge.pGoodToBad) link.geBad = true;
      }
      if (lost) return this.#drop(DropCause.loss, rec.id, to, link);
    }
    let arrive = depart + p.delayMs;
    if (p.jitterMs > 0) {
      arrive += (rng.next() * 2 - 1) * p.jitterMs;
      if (arrive < depart) arrive = depart;
    }
    if (p.reorder > 0 && rng.next() < p.reorder) {
      arrive += p.reorderDelayMs;
      st.reordered++;
    } else {
      if (arrive < link.lastArrival) arrive = link.lastArrival;
      link.lastArrival = arrive;
    }
    const ev = this.#alloc(arrive, EV_DELIVER);
    ev.link = link;
    ev.epoch = link.epoch;
    ev.cut = link.cut;
    ev.data = data.slice();
    this.#push(ev);
    st.inFlight++;
    if (p.duplicate > 0 && rng.next() < p.duplicate) {
      st.duplicated++;
      st.inFlight++;
      const dup = this.#alloc(arrive, EV_DELIVER);
      dup.link = link;
      dup.epoch = link.epoch;
      dup.cut = link.cut;
      dup.data = data.slice();
      this.#push(dup);
    }
    return true;
  }

  /** Pops one event and runs it; false if it was a dead one (cancelled timer, crashed node's timer) or held by a stall. */
  #processNext(): boolean {
    const ev = this.#pop() as Ev;
    if (ev.cancelled) {
      this.#dead--;
      this.#release(ev);
      return false;
    }
    const type = ev.type;
    if (type === EV_TIMER) {
      const rec = ev.rec as NodeRec;
      if (rec.inc !== ev.inc || !rec.up) {
        this.#release(ev);
        return false;
      }
    }
    this.#now = ev.time;
    if (type === EV_RESUME) return this.#resume(ev);
    const target =
      type === EV_TIMER ? (ev.rec as NodeRec) : type === EV_DELIVER ? (ev.link as Link).dst : null;
    if (target?.stalled === true && target.up) {
      this.#hold(target, ev);
      return false;
    }
    this.#dispatch(ev);
    return true;
  }

  /** Runs one live event at the current time, then checks the invariants. */
  #dispatch(ev: Ev): void {
    const type = ev.type;
    const st = this.#stats;
    st.events++;
    if (type === EV_DELIVER) {
      const link = ev.link as Link;
      const data = ev.data as Uint8Array;
      const epoch = ev.epoch;
      const cut = ev.cut;
      this.#release(ev);
      st.inFlight--;
      const src = link.src;
      const dst = link.dst;
      if (epoch !== link.epoch) this.#drop(DropCause.down, src.id, dst.id, link);
      else if (cut !== link.cut) this.#drop(DropCause.partition, src.id, dst.id, link);
      else if (!dst.up) this.#drop(DropCause.crashed, src.id, dst.id, link);
      else {
        st.delivered++;
        st.bytesDelivered += data.length;
        link.stats.delivered++;
        link.stats.bytesDelivered += data.length;
        this.#trace.record(Kind.deliver, this.#now, dst.id, src.id, data.length, null);
        try {
          (dst.program as NodeProgram).receive(src.id, data);
        } catch (e) {
          throw this.#wrap(e, dst.id, "receive");
        }
      }
    } else if (type === EV_TIMER) {
      const rec = ev.rec as NodeRec;
      const fn = ev.fn as () => void;
      this.#release(ev);
      st.timersFired++;
      this.#trace.record(Kind.timer, this.#now, rec.id, 0, rec.inc, null);
      try {
        fn();
      } catch (e) {
        throw this.#wrap(e, rec.id, "timer callback");
      }
    } else {
      const act = ev.act as (sim: Simulator) => void;
      this.#release(ev);
      st.actions++;
      this.#trace.record(Kind.action, this.#now, 0, 0, 0, null);
      try {
        act(this);
      } catch (e) {
        throw this.#wrap(e, undefined, "scripted action");
      }
    }
    if (this.#invariants.length > 0) this.checkInvariants();
  }

  /** Queues an event for a stalled node (a packet beyond the inbox bound is dropped). */
  #hold(rec: NodeRec, ev: Ev): void {
    if (ev.type === EV_DELIVER) {
      if (rec.heldPackets >= this.stallQueuePackets) {
        const link = ev.link as Link;
        this.#release(ev);
        this.#stats.inFlight--;
        this.#drop(DropCause.queue, link.src.id, rec.id, link);
        return;
      }
      rec.heldPackets++;
    }
    rec.held.push(ev);
  }

  /**
   * The stall of `ev.rec` is over (unless it was extended or the node crashed): hands the node the
   * oldest queued event and comes back at the same time for the next, until the queue is empty.
   */
  #resume(ev: Ev): boolean {
    const rec = ev.rec as NodeRec;
    const inc = ev.inc;
    this.#release(ev);
    if (!rec.stalled || rec.inc !== inc || this.#now < rec.stalledUntil) return false;
    const next = rec.heldHead < rec.held.length ? (rec.held[rec.heldHead++] as Ev) : undefined;
    if (next === undefined || rec.heldHead >= rec.held.length) {
      rec.stalled = false;
      rec.held = [];
      rec.heldHead = 0;
      rec.heldPackets = 0;
      this.#trace.record(Kind.resume, this.#now, rec.id, 0, 0, null);
    } else {
      const again = this.#alloc(this.#now, EV_RESUME);
      again.rec = rec;
      again.inc = inc;
      this.#push(again);
    }
    if (next === undefined) return false;
    if (next.type === EV_DELIVER) rec.heldPackets = Math.max(0, rec.heldPackets - 1);
    if (next.cancelled) {
      if (this.#dead > 0) this.#dead--;
      this.#release(next);
      return false;
    }
    next.time = this.#now;
    this.#dispatch(next);
    return true;
  }

  /** A crashed node's queue is lost: its packets are dropped (cause "crashed"), its timers die. */
  #discardHeld(rec: NodeRec): void {
    for (let i = rec.heldHead; i < rec.held.length; i++) {
      const ev = rec.held[i] as Ev;
      if (ev.type === EV_DELIVER) {
        const link = ev.link as Link;
        this.#stats.inFlight--;
        this.#drop(DropCause.crashed, link.src.id, rec.id, link);
      } else if (ev.cancelled && this.#dead > 0) this.#dead--;
      this.#release(ev);
    }
    rec.stalled = false;
    rec.held = [];
    rec.heldHead = 0;
    rec.heldPackets = 0;
  }

  #wrap(e: unknown, node: number | undefined, where: string): unknown {
    if (e instanceof SimEventError || e instanceof SimInvariantError || e instanceof CapacityError) return e;
    return new SimEventError(this.seed, this.#now, node, where, e);
  }
}
