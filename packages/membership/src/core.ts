import { ConfigError, type Logger, type NodeId, RateLimitedLog, silentLogger } from "@spines-ts/primitives";
import {
  decode,
  encode,
  MB_MAX_BATCH,
  type MbAck,
  type MbData,
  type MbFloor,
  type MbFlushState,
  type MbHeartbeat,
  MbHeartbeatFlag,
  type MbInstall,
  type MbInstallAck,
  type MbInstallEntry,
  type MbMemberRef,
  type MbNack,
  type MbOrdered,
  type MbOrderedEntry,
  type MbPropose,
  type MbReject,
  type Message,
  WireError,
} from "@spines-ts/wire";
import {
  compareViewIds,
  type Delivery,
  defaultLimits,
  groupHash,
  type Limits,
  type MembershipConfig,
  type MembershipEvent,
  NO_VIEW,
  NotJoinedError,
  profiles,
  sameViewId,
  type Timing,
  type Transmit,
  type View,
  type ViewId,
  viewKey,
} from "./types.ts";

interface Peer {
  inc: number;
  lastHeard: number;
  /** Packets from these earlier incarnations are ignored (bounded). */
  deadIncs: number[];
  left: boolean;
  hbSeq: number;
  /** Latest heartbeat summary (only from a newer hbSeq). */
  view: ViewId;
  flags: number;
  maxCounter: number;
  delivered: number;
  seqHigh: number;
}

interface Stored {
  readonly seq: number;
  readonly sender: NodeId;
  readonly senderSeq: number;
  readonly payload: Uint8Array;
}

interface Pending {
  readonly senderSeq: number;
  readonly payload: Uint8Array;
  sentAt: number;
  /** Times sent in the current view (RTT is sampled only from messages sent once: Karn). */
  tries: number;
}

interface Installed {
  readonly id: ViewId;
  readonly key: string;
  readonly members: readonly MbMemberRef[];
  readonly index: ReadonlyMap<NodeId, number>;
  readonly sequencer: NodeId;
  readonly pub: View;
}

interface Accepted {
  readonly pid: ViewId;
  readonly members: readonly MbMemberRef[];
  readonly coord: NodeId;
  readonly at: number;
  install: { msg: MbInstall; entry: MbInstallEntry; nackAt: number } | null;
}

interface Proposal {
  readonly pid: ViewId;
  readonly members: readonly MbMemberRef[];
  readonly reports: Map<NodeId, MbFlushState>;
  phase: "flush" | "install";
  readonly startedAt: number;
  phaseAt: number;
  lastSendAt: number;
  install: MbInstall | null;
  readonly acks: Set<NodeId>;
}

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

const MAX_DEAD_INCS = 4;
const MAX_NACK_BATCH = 64;

function ascending(xs: readonly { readonly id: number }[]): boolean {
  for (let i = 1; i < xs.length; i++)
    if ((xs[i - 1] as { id: number }).id >= (xs[i] as { id: number }).id) return false;
  return true;
}

function u32(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

/**
 * The sans-IO membership core: heartbeats and failure detection, coordinator-driven view changes
 * with a flush phase (virtual synchrony), and sequencer-based total order within a view.
 *
 * Inputs: `join`, `leave`, `multicast`, `receive(from, bytes, now)`, `handleTimeout(now)`.
 * Outputs: `drainTransmits()` (datagrams), `drainEvents()` (views, transitional signals, messages),
 * `nextDeadline()` (when to call `handleTimeout` next). It never reads a clock or touches a socket.
 */
export class MembershipCore {
  readonly id: NodeId;
  readonly incarnation: number;
  readonly group: string;
  readonly groupHash: number;
  readonly timing: Timing;
  readonly limits: Limits;
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

  readonly #log: Logger;
  readonly #rl: RateLimitedLog;
  readonly #announce: boolean;
  readonly #configuredPeers: NodeId[];
  readonly #peers = new Map<NodeId, Peer>();
  #transmits: Transmit[] = [];
  #events: MembershipEvent[] = [];

  #state: "idle" | "joined" | "left" = "idle";
  #lastActivity = 0;
  #joinedAt = 0;
  #nextHeartbeatAt = 0;
  #hbSeq = 0;
  #maxCounter = 0;
  #dirty = true;
  #forceChange = false;
  #greet: NodeId | undefined = undefined;

  // the installed view and its delivery state
  #view: Installed | null = null;
  #delivered = 0;
  #seqHigh = 0;
  #stable = 0;
  #buffer = new Map<number, Stored>();
  #lastAcked = 0;
  #ackAt = Number.POSITIVE_INFINITY;
  #nackAt = 0;
  #retained: { key: string; buffer: Map<number, Stored> } | null = null;
  // sequencer state (when this member is the view's sequencer)
  #nextSeq = 1;
  #expected = new Map<NodeId, number>();
  #acks = new Map<NodeId, number>();
  #tailResendAt = new Map<NodeId, number>();
  #srtt: number | undefined = undefined;
  #rttvar = 0;
  #lastDataRetransmitAt = Number.NEGATIVE_INFINITY;
  // sender state
  #nextSenderSeq = 1;
  /** Highest senderSeq delivered per sender incarnation ("id/inc"), across views (bounded). */
  readonly #floors = new Map<string, number>();
  /** At the sequencer: per member, the senderSeq its ordering starts above in this view. */
  #startFloors = new Map<NodeId, number>();
  #pending: Pending[] = [];
  #wantDrain = false;
  // view change
  #accepted: Accepted | null = null;
  #transitionalSent = false;
  #proposal: Proposal | null = null;

  constructor(config: MembershipConfig) {
    const src = "MembershipConfig";
    if (!u32(config.id)) throw new ConfigError(src, "id", "a u32", config.id);
    if (!u32(config.incarnation) || config.incarnation === 0)
      throw new ConfigError(src, "incarnation", "a nonzero u32", config.incarnation);
    if (typeof config.group !== "string" || config.group.length === 0)
      throw new ConfigError(src, "group", "a non-empty string", config.group);
    const profile = config.profile ?? "default";
    const base = profiles[profile];
    if (base === undefined)
      throw new ConfigError(src, "profile", `one of ${Object.keys(profiles).join(", ")}`, profile);
    this.timing = { ...base, ...(config.timing ?? {}) };
    for (const [k, v] of Object.entries(this.timing)) {
      if (!(typeof v === "number" && Number.isFinite(v) && v > 0))
        throw new ConfigError(src, `timing.${k}`, "a positive number of ms", v);
    }
    if (this.timing.failureTimeoutMs <= this.timing.heartbeatIntervalMs)
      throw new ConfigError(
        src,
        "timing.failureTimeoutMs",
        "more than heartbeatIntervalMs",
        this.timing.failureTimeoutMs,
      );
    this.limits = { ...defaultLimits, ...(config.limits ?? {}) };
    for (const [k, v] of Object.entries(this.limits)) {
      if (!(Number.isInteger(v) && v > 0)) throw new ConfigError(src, `limits.${k}`, "a positive integer", v);
    }
    if (this.limits.maxPayloadBytes > 60_000)
      throw new ConfigError(src, "limits.maxPayloadBytes", "at most 60000", this.limits.maxPayloadBytes);
    this.id = config.id;
    this.incarnation = config.incarnation;
    this.group = config.group;
    this.groupHash = groupHash(config.group);
    this.#log = (config.log ?? silentLogger).child({ member: config.id });
    this.#rl = new RateLimitedLog(this.#log);
    this.#announce = config.announce ?? false;
    this.#configuredPeers = [];
    for (const p of config.peers ?? []) {
      if (!u32(p)) throw new ConfigError(src, "peers", "u32 node ids", p);
      if (p !== this.id && !this.#configuredPeers.includes(p)) this.#configuredPeers.push(p);
    }
    if (this.#configuredPeers.length > this.limits.maxPeers)
      throw new ConfigError(
        src,
        "peers",
        `at most ${this.limits.maxPeers} peers`,
        this.#configuredPeers.length,
      );
  }

  // ---------------------------------------------------------------- public API

  get joined(): boolean {
    return this.#state === "joined";
  }

  /** The installed view, or undefined before the first one. */
  get view(): View | undefined {
    return this.#view?.pub;
  }

  /** True while a view change is in progress at this member (multicasts wait). */
  get blocked(): boolean {
    return this.#accepted !== null;
  }

  get pendingCount(): number {
    return this.#pending.length;
  }

  /** How many multicasts this member has accepted (its last senderSeq). */
  get sentCount(): number {
    return this.#nextSenderSeq - 1;
  }

  /** Starts participating: heartbeats go out at once, so peers see the join without a timeout. */
  join(now: number): void {
    this.#checkNow(now);
    if (this.#state !== "idle") throw new NotJoinedError("join (already joined or left)");
    this.#state = "joined";
    this.#lastActivity = now;
    this.#joinedAt = now;
    this.#nextHeartbeatAt = now;
    this.#dirty = true;
    this.handleTimeout(now);
  }

  /** Leaves gracefully: tells every peer (no timeout needed on their side) and stops. */
  leave(now: number): void {
    this.#checkNow(now);
    if (this.#state !== "joined") throw new NotJoinedError("leave");
    const bytes = this.#encode({ _tag: "MbLeave", group: this.groupHash });
    for (const p of this.#heartbeatTargets()) {
      this.#transmits.push({ to: p, data: bytes });
      this.#transmits.push({ to: p, data: bytes }); // one duplicate against loss
    }
    if (this.#announce) this.#transmits.push({ to: null, data: bytes });
    this.#state = "left";
    this.#pending = [];
    this.#buffer.clear();
    this.#retained = null;
    this.#accepted = null;
    this.#proposal = null;
    this.#events.push({ type: "left" });
  }

  /**
   * Multicasts `payload` to the group in total order (delivered to every member of the view,
   * this one included). Returns false, without queueing, when `limits.maxPending` multicasts are
   * already waiting; a `drain` event follows when there is room.
   */
  multicast(payload: Uint8Array, now: number): boolean {
    this.#checkNow(now);
    if (!(payload instanceof Uint8Array)) throw new TypeError("multicast: payload must be a Uint8Array");
    if (payload.length > this.limits.maxPayloadBytes)
      throw new RangeError(
        `multicast: payload of ${payload.length} bytes exceeds ${this.limits.maxPayloadBytes}`,
      );
    if (this.#state !== "joined") throw new NotJoinedError("multicast");
    if (this.#pending.length >= this.limits.maxPending) {
      this.#wantDrain = true;
      return false;
    }
    if (this.#nextSenderSeq > 0xffffffff) throw new RangeError("multicast: sender sequence space exhausted");
    this.#pending.push({
      senderSeq: this.#nextSenderSeq++,
      payload: payload.slice(),
      sentAt: Number.NEGATIVE_INFINITY,
      tries: 0,
    });
    this.#sendData(now);
    return true;
  }

  /** Adds a peer to heartbeat (for example one found by discovery). Returns false when the table is full. */
  addPeer(id: NodeId): boolean {
    if (!u32(id)) throw new RangeError(`addPeer: id must be a u32, got ${id}`);
    if (id === this.id || this.#configuredPeers.includes(id)) return true;
    if (this.#configuredPeers.length >= this.limits.maxPeers) return false;
    this.#configuredPeers.push(id);
    return true;
  }

  drainTransmits(): Transmit[] {
    const t = this.#transmits;
    this.#transmits = [];
    return t;
  }

  drainEvents(): MembershipEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }

  /** When `handleTimeout` must next be called (absolute time), or undefined when idle. */
  nextDeadline(): number | undefined {
    if (this.#state !== "joined") return undefined;
    let t = this.#nextHeartbeatAt;
    const timeout = this.timing.failureTimeoutMs;
    for (const p of this.#peers.values()) {
      if (!p.left) {
        const d = p.lastHeard + timeout;
        if (d > this.#lastActivity && d < t) t = d;
      }
    }
    if (this.#busy()) t = Math.min(t, this.#lastActivity + this.timing.retransmitMs);
    if (this.#ackAt < t) t = this.#ackAt;
    return t;
  }

  /** A printable summary of the state (for debugging and failure reports). */
  snapshot(): Record<string, unknown> {
    return {
      id: this.id,
      inc: this.incarnation,
      state: this.#state,
      view: this.#view ? { key: this.#view.key, members: this.#view.pub.members } : null,
      delivered: this.#delivered,
      seqHigh: this.#seqHigh,
      stable: this.#stable,
      buffered: this.#buffer.size,
      pending: this.#pending.length,
      accepted: this.#accepted
        ? { pid: viewKey(this.#accepted.pid), installing: this.#accepted.install !== null }
        : null,
      proposal: this.#proposal
        ? {
            pid: viewKey(this.#proposal.pid),
            phase: this.#proposal.phase,
            members: this.#proposal.members.map((m) => m.id),
            reports: [...this.#proposal.reports.keys()],
          }
        : null,
      peers: [...this.#peers.entries()].map(([id, p]) => ({
        id,
        lastHeard: p.lastHeard,
        left: p.left,
        view: viewKey(p.view),
      })),
    };
  }

  // ---------------------------------------------------------------- inputs

  receive(from: NodeId, bytes: Uint8Array, now: number): void {
    this.#checkNow(now);
    if (this.#state !== "joined") return;
    this.#noteActivity(now);
    let frame: ReturnType<typeof decode>;
    try {
      frame = decode(bytes);
    } catch (e) {
      this.stats.badPackets++;
      if (e instanceof WireError)
        this.#rl.debug(now, "decode", { from, code: e.code }, "bad membership packet");
      return;
    }
    const sender = frame.sender;
    if (sender === this.id) return;
    const msg = frame.msg as Message;
    if (!msg._tag.startsWith("Mb")) {
      this.stats.badPackets++;
      return;
    }
    if (
      (msg._tag === "MbHeartbeat" || msg._tag === "MbLeave" || msg._tag === "MbPropose") &&
      msg.group !== this.groupHash
    ) {
      this.stats.foreignGroup++;
      return;
    }
    // only group-checked messages may introduce a peer; the rest must come from a known one
    const create = msg._tag === "MbHeartbeat" || msg._tag === "MbPropose";
    const peer = this.#touchPeer(sender, frame.incarnation, now, create);
    if (peer === undefined) return;
    try {
      switch (msg._tag) {
        case "MbHeartbeat":
          this.#onHeartbeat(sender, peer, msg, now);
          break;
        case "MbLeave":
          peer.left = true;
          this.#dirty = true;
          break;
        case "MbPropose":
          this.#onPropose(sender, msg, now);
          break;
        case "MbReject":
          this.#onReject(msg, now);
          break;
        case "MbFlushState":
          this.#onFlushState(sender, msg, now);
          break;
        case "MbInstall":
          this.#onInstall(sender, msg, now);
          break;
        case "MbInstallAck":
          this.#onInstallAck(sender, msg);
          break;
        case "MbData":
          this.#onData(sender, msg, now);
          break;
        case "MbOrdered":
          this.#onOrdered(msg, now);
          break;
        case "MbNack":
          this.#onNack(sender, msg);
          break;
        case "MbAck":
          this.#onAck(sender, msg);
          break;
        default:
          this.stats.badPackets++;
      }
    } catch (e) {
      // A peer's packet must never take the core down; anything thrown here is a bug or bad input.
      this.stats.badPackets++;
      this.#rl.debug(now, "handler", { from, tag: msg._tag, err: String(e) }, "membership packet rejected");
    }
    if (this.#greet !== undefined) {
      // a new peer (or a restarted one): answer its heartbeat at once, so a joiner learns within a
      // round trip that a group with a view exists (and does not wait out its join grace)
      const to = this.#greet;
      this.#greet = undefined;
      if (msg._tag === "MbHeartbeat") this.#sendHeartbeats(to);
    }
    if (this.#dirty) this.#checkMembership(now);
  }

  handleTimeout(now: number): void {
    this.#checkNow(now);
    if (this.#state !== "joined") return;
    this.#noteActivity(now);
    if (now >= this.#nextHeartbeatAt) {
      this.#sendHeartbeats();
      this.#nextHeartbeatAt = now + this.timing.heartbeatIntervalMs;
    }
    this.#checkMembership(now);
    this.#retransmit(now);
  }

  // ---------------------------------------------------------------- peers, heartbeats, detection

  #checkNow(now: number): void {
    if (typeof now !== "number" || !Number.isFinite(now))
      throw new TypeError(`now must be a finite number, got ${now}`);
  }

  /**
   * A gap in our own activity (GC pause, SIGSTOP, a busy event loop) is time we could not hear
   * anyone: it must not count against the peers, so their silence clocks are shifted by it.
   */
  #noteActivity(now: number): void {
    const gap = now - this.#lastActivity;
    const expected = Math.min(this.timing.heartbeatIntervalMs, this.timing.retransmitMs) + 5;
    if (gap > expected + this.timing.heartbeatIntervalMs) {
      const shift = gap - expected;
      this.stats.stalls++;
      for (const p of this.#peers.values()) p.lastHeard = Math.min(now, p.lastHeard + shift);
    }
    this.#lastActivity = now;
  }

  #touchPeer(id: NodeId, inc: number, now: number, create: boolean): Peer | undefined {
    let p = this.#peers.get(id);
    if (p === undefined) {
      if (!create) return undefined;
      if (this.#peers.size >= this.limits.maxPeers) {
        this.#rl.debug(now, "peers-full", { id }, "peer table full");
        return undefined;
      }
      p = {
        inc,
        lastHeard: now,
        deadIncs: [],
        left: false,
        hbSeq: -1,
        view: NO_VIEW,
        flags: 0,
        maxCounter: 0,
        delivered: 0,
        seqHigh: 0,
      };
      this.#peers.set(id, p);
      this.#dirty = true;
      this.#greet = id;
      return p;
    }
    if (p.inc !== inc) {
      if (p.deadIncs.includes(inc) || !create) return undefined; // late packet from a dead incarnation
      p.deadIncs.push(p.inc);
      if (p.deadIncs.length > MAX_DEAD_INCS) p.deadIncs.shift();
      p.inc = inc;
      p.left = false;
      p.hbSeq = -1;
      p.view = NO_VIEW;
      p.flags = 0;
      p.delivered = 0;
      p.seqHigh = 0;
      this.#dirty = true;
      this.#greet = id;
    }
    if (p.left) return undefined;
    const wasAlive = this.#isAlive(p, now);
    p.lastHeard = now;
    if (!wasAlive) this.#dirty = true;
    return p;
  }

  /** A live peer has a view: the group exists, so a joiner that is its lowest id proposes at once. */
  #groupExists(now: number): boolean {
    for (const p of this.#peers.values())
      if (this.#isAlive(p, now) && (p.flags & MbHeartbeatFlag.InView) !== 0) return true;
    return false;
  }

  #joinGraceMs(): number {
    return Math.min(2 * this.timing.heartbeatIntervalMs, this.timing.failureTimeoutMs);
  }

  #isAlive(p: Peer, now: number): boolean {
    // the same expression as the deadline in nextDeadline(), so a wake-up at it sees the expiry
    return !p.left && now < p.lastHeard + this.timing.failureTimeoutMs;
  }

  #heartbeatTargets(): NodeId[] {
    const out = new Set<NodeId>(this.#configuredPeers);
    for (const [id, p] of this.#peers) if (!p.left) out.add(id);
    return [...out];
  }

  #sendHeartbeats(only?: NodeId): void {
    const v = this.#view;
    let flags = 0;
    if (v) flags |= MbHeartbeatFlag.InView;
    if (v && v.sequencer === this.id) flags |= MbHeartbeatFlag.Sequencer;
    if (this.#accepted) flags |= MbHeartbeatFlag.Flushing;
    const hb: MbHeartbeat = {
      _tag: "MbHeartbeat",
      group: this.groupHash,
      hbSeq: this.#hbSeq,
      flags,
      view: v ? v.id : NO_VIEW,
      maxCounter: this.#maxCounter,
      delivered: this.#delivered,
      seqHigh: this.#seqHigh,
    };
    this.#hbSeq = (this.#hbSeq + 1) >>> 0;
    const bytes = this.#encode(hb);
    if (only !== undefined) {
      this.#transmits.push({ to: only, data: bytes });
      return;
    }
    for (const p of this.#heartbeatTargets()) this.#transmits.push({ to: p, data: bytes });
    if (this.#announce) this.#transmits.push({ to: null, data: bytes });
  }

  #onHeartbeat(from: NodeId, peer: Peer, hb: MbHeartbeat, now: number): void {
    if (hb.maxCounter > this.#maxCounter) this.#maxCounter = hb.maxCounter;
    if (hb.hbSeq <= peer.hbSeq) return; // an older summary, reordered
    peer.hbSeq = hb.hbSeq;
    const changed = !sameViewId(peer.view, hb.view) || peer.flags !== hb.flags;
    peer.view = hb.view;
    peer.flags = hb.flags;
    peer.maxCounter = hb.maxCounter;
    peer.delivered = hb.delivered;
    peer.seqHigh = hb.seqHigh;
    if (changed) this.#dirty = true;
    const v = this.#view;
    if (v && sameViewId(hb.view, v.id)) {
      if (v.sequencer === this.id && v.index.has(from)) this.#noteAck(from, hb.delivered);
      if (hb.seqHigh > this.#seqHigh) this.#seqHigh = hb.seqHigh;
      if (this.#seqHigh > this.#delivered && this.#accepted === null)
        this.#nackAt = Math.min(this.#nackAt, now);
    }
  }

  /** The members this node would put in a view now: itself and every live peer, lowest ids first. */
  #reachable(now: number): MbMemberRef[] {
    const out: MbMemberRef[] = [{ id: this.id, inc: this.incarnation }];
    for (const [id, p] of this.#peers) if (this.#isAlive(p, now)) out.push({ id, inc: p.inc });
    out.sort((a, b) => a.id - b.id);
    if (out.length > this.limits.maxMembers) {
      const mine = out.findIndex((m) => m.id === this.id);
      out.length = this.limits.maxMembers;
      if (mine >= this.limits.maxMembers) out[out.length - 1] = { id: this.id, inc: this.incarnation };
    }
    return out;
  }

  /** Decides whether this member must start a view change (only the lowest reachable id does). */
  #checkMembership(now: number): void {
    this.#dirty = false;
    if (this.#state !== "joined") return;
    const reach = this.#reachable(now);
    const pr = this.#proposal;
    if (pr !== null) {
      // a proposed member failed during the view change: restart at once (cascade)
      const dead = pr.members.some(
        (m) => m.id !== this.id && !reach.some((r) => r.id === m.id && r.inc === m.inc),
      );
      if (pr.phase === "flush" && dead) {
        this.#startProposal(now, reach);
        return;
      }
      if (pr.phase === "flush" && now - pr.phaseAt > this.timing.viewChangeTimeoutMs) {
        // members that never answered are treated as failed until heard from again
        for (const m of pr.members) {
          if (m.id !== this.id && !pr.reports.has(m.id)) {
            const p = this.#peers.get(m.id);
            if (p) p.lastHeard = Number.NEGATIVE_INFINITY;
          }
        }
        this.#startProposal(now, this.#reachable(now));
        return;
      }
      if (pr.phase === "install") {
        const done = pr.acks.size >= pr.members.length;
        if (!done && now - pr.phaseAt <= this.timing.viewChangeTimeoutMs) return;
        this.#proposal = null;
      } else {
        return;
      }
    }
    if (reach[0]?.id !== this.id) return; // not the coordinator
    // a joiner gives the group a moment to propose to it before it forms a view of its own
    // (a group that exists proposes to a joiner at once: its coordinator has a view)
    if (this.#view === null && now - this.#joinedAt < this.#joinGraceMs() && !this.#groupExists(now)) return;
    const acc = this.#accepted;
    if (acc !== null && acc.coord !== this.id) {
      const coordAlive = reach.some((r) => r.id === acc.coord);
      if (coordAlive && now - acc.at <= this.timing.viewChangeTimeoutMs) return; // let it finish
    }
    if (acc !== null && acc.coord === this.id && acc.install !== null) return; // syncing my own install
    if (this.#needChange(now, reach)) this.#startProposal(now, reach);
  }

  #needChange(now: number, reach: readonly MbMemberRef[]): boolean {
    if (this.#forceChange) return true;
    const v = this.#view;
    if (v === null) return true;
    if (this.#accepted !== null) return true; // a stalled view change
    if (v.members.length !== reach.length) return true;
    for (let i = 0; i < reach.length; i++) {
      const a = reach[i] as MbMemberRef;
      const b = v.members[i] as MbMemberRef;
      if (a.id !== b.id || a.inc !== b.inc) return true;
    }
    // a member that moved on (or refused our install) while we stayed
    for (const m of v.members) {
      if (m.id === this.id) continue;
      const p = this.#peers.get(m.id);
      if (p === undefined || p.hbSeq < 0) continue;
      if (
        p.maxCounter >= v.id.counter &&
        !sameViewId(p.view, v.id) &&
        (p.flags & MbHeartbeatFlag.Flushing) === 0
      ) {
        if (now - p.lastHeard < this.timing.failureTimeoutMs) return true;
      }
    }
    return false;
  }

  // ---------------------------------------------------------------- view change: coordinator side

  #startProposal(now: number, members: MbMemberRef[]): void {
    this.#forceChange = false;
    if (members[0]?.id !== this.id) {
      // a lower member is reachable now: it coordinates
      this.#proposal = null;
      return;
    }
    this.#maxCounter =
      Math.max(this.#maxCounter, this.#view?.id.counter ?? 0, this.#accepted?.pid.counter ?? 0) + 1;
    if (this.#maxCounter > 0xffffffff) this.#maxCounter = 0xffffffff; // not reachable in practice
    const pid: ViewId = { counter: this.#maxCounter, coord: this.id, coordInc: this.incarnation };
    this.#proposal = {
      pid,
      members,
      reports: new Map(),
      phase: "flush",
      startedAt: now,
      phaseAt: now,
      lastSendAt: now,
      install: null,
      acks: new Set(),
    };
    this.stats.proposalsStarted++;
    const msg: MbPropose = { _tag: "MbPropose", group: this.groupHash, pid, members };
    const bytes = this.#encode(msg);
    for (const m of members) if (m.id !== this.id) this.#transmits.push({ to: m.id, data: bytes });
    this.#onPropose(this.id, msg, now);
  }

  #onReject(msg: MbReject, now: number): void {
    if (msg.maxCounter > this.#maxCounter) this.#maxCounter = msg.maxCounter;
    const pr = this.#proposal;
    if (pr && sameViewId(pr.pid, msg.pid) && pr.phase === "flush") {
      this.#proposal = null;
      this.#forceChange = true;
      this.#dirty = true;
      void now;
    }
  }

  #onFlushState(from: NodeId, msg: MbFlushState, now: number): void {
    const pr = this.#proposal;
    if (pr === null || pr.phase !== "flush" || !sameViewId(pr.pid, msg.pid)) return;
    if (!pr.members.some((m) => m.id === from)) return;
    pr.reports.set(from, msg);
    if (pr.reports.size < pr.members.length) return;
    // everyone answered: per old view, the highest delivered prefix becomes everyone's target
    const best = new Map<string, { target: number; holder: NodeId }>();
    for (const [id, r] of pr.reports) {
      const k = viewKey(r.oldView);
      const b = best.get(k);
      if (b === undefined || r.delivered > b.target) best.set(k, { target: r.delivered, holder: id });
    }
    const floor = new Map<string, number>();
    for (const r of pr.reports.values()) {
      for (const f of r.floors) {
        const k = `${f.id}/${f.inc}`;
        if (f.senderSeq > (floor.get(k) ?? 0)) floor.set(k, f.senderSeq);
      }
    }
    const entries: MbInstallEntry[] = pr.members.map((m) => {
      const r = pr.reports.get(m.id) as MbFlushState;
      const b = best.get(viewKey(r.oldView)) as { target: number; holder: NodeId };
      const fl = floor.get(`${m.id}/${m.inc}`) ?? 0;
      return { id: m.id, inc: m.inc, oldView: r.oldView, target: b.target, holder: b.holder, floor: fl };
    });
    const install: MbInstall = { _tag: "MbInstall", pid: pr.pid, entries };
    pr.install = install;
    pr.phase = "install";
    pr.phaseAt = now;
    pr.lastSendAt = now;
    const bytes = this.#encode(install);
    for (const m of pr.members) if (m.id !== this.id) this.#transmits.push({ to: m.id, data: bytes });
    this.#onInstall(this.id, install, now);
  }

  #onInstallAck(from: NodeId, msg: MbInstallAck): void {
    const pr = this.#proposal;
    if (pr === null || pr.phase !== "install" || !sameViewId(pr.pid, msg.pid)) return;
    if (msg.ok) {
      pr.acks.add(from);
    } else {
      this.stats.installsRefused++;
      this.#proposal = null;
      this.#forceChange = true;
      this.#dirty = true;
    }
  }

  // ---------------------------------------------------------------- view change: member side

  #onPropose(from: NodeId, msg: MbPropose, now: number): void {
    if (msg.pid.counter > this.#maxCounter) this.#maxCounter = msg.pid.counter;
    if (msg.pid.coord !== from) return;
    if (!msg.members.some((m) => m.id === this.id && m.inc === this.incarnation)) return;
    if (msg.members.length > this.limits.maxMembers || !ascending(msg.members)) return;
    if (msg.members[0]?.id !== from) return; // the coordinator is the lowest member
    const reject = (): void => {
      if (from !== this.id)
        this.#send(from, { _tag: "MbReject", pid: msg.pid, maxCounter: this.#maxCounter });
    };
    if (this.#view && compareViewIds(msg.pid, this.#view.id) <= 0) {
      reject();
      return;
    }
    const acc = this.#accepted;
    if (acc !== null) {
      const c = compareViewIds(msg.pid, acc.pid);
      if (c < 0) {
        reject();
        return;
      }
      if (c === 0) {
        if (acc.install === null) this.#sendFlushState(from, msg.pid, acc.members);
        return;
      }
    }
    // accept: block, signal, report
    if (this.#proposal && compareViewIds(this.#proposal.pid, msg.pid) < 0) this.#proposal = null;
    if (!this.#transitionalSent) {
      this.#transitionalSent = true;
      this.#events.push({ type: "transitional", view: this.#view ? this.#view.id : NO_VIEW });
    }
    this.#accepted = { pid: msg.pid, members: msg.members, coord: from, at: now, install: null };
    this.#sendFlushState(from, msg.pid, msg.members);
  }

  #sendFlushState(to: NodeId, pid: ViewId, members: readonly MbMemberRef[]): void {
    const floors: MbFloor[] = [];
    for (const m of members) {
      const f = this.#floors.get(`${m.id}/${m.inc}`);
      if (f !== undefined) floors.push({ id: m.id, inc: m.inc, senderSeq: f });
    }
    const fs: MbFlushState = {
      _tag: "MbFlushState",
      pid,
      oldView: this.#view ? this.#view.id : NO_VIEW,
      delivered: this.#delivered,
      floors,
    };
    if (to === this.id) this.#onFlushState(this.id, fs, this.#lastActivity);
    else this.#send(to, fs);
  }

  #onInstall(from: NodeId, msg: MbInstall, now: number): void {
    const acc = this.#accepted;
    if (acc === null || !sameViewId(acc.pid, msg.pid) || from !== msg.pid.coord) {
      if (from === this.id || from !== msg.pid.coord) return;
      if (this.#view && sameViewId(this.#view.id, msg.pid)) {
        this.#send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: true }); // our ack was lost
      } else if (msg.entries.some((e) => e.id === this.id && e.inc === this.incarnation)) {
        // we moved on to a newer proposal (or never got this one's): tell the coordinator now
        // rather than let it wait out its install phase
        this.#send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: false });
      }
      return;
    }
    if (acc.install !== null) return; // duplicate
    if (msg.entries.length > this.limits.maxMembers || !ascending(msg.entries) || msg.entries[0]?.id !== from)
      return;
    const entry = msg.entries.find((e) => e.id === this.id && e.inc === this.incarnation);
    if (entry === undefined) return;
    const mine = this.#view ? this.#view.id : NO_VIEW;
    if (!sameViewId(entry.oldView, mine) || this.#delivered > entry.target) {
      // our state moved since we reported it: refuse; the coordinator starts another round
      this.stats.installsRefused++;
      this.#accepted = null;
      if (from !== this.id) this.#send(from, { _tag: "MbInstallAck", pid: msg.pid, ok: false });
      else {
        this.#proposal = null;
        this.#forceChange = true;
        this.#dirty = true;
      }
      this.#sendData(now);
      return;
    }
    acc.install = { msg, entry, nackAt: now };
    this.#trySync(now);
  }

  /** Completes the old view up to the install target (asking the holder for gaps), then installs. */
  #trySync(now: number): void {
    const acc = this.#accepted;
    if (acc === null || acc.install === null) return;
    const { entry } = acc.install;
    while (this.#delivered < entry.target) {
      const m = this.#buffer.get(this.#delivered + 1);
      if (m === undefined) break;
      this.#deliver(m);
    }
    if (this.#delivered < entry.target) {
      if (now >= acc.install.nackAt && this.#view) {
        acc.install.nackAt = now + this.timing.retransmitMs;
        const to = Math.min(entry.target, this.#delivered + MAX_NACK_BATCH);
        this.#send(entry.holder, { _tag: "MbNack", view: this.#view.id, from: this.#delivered + 1, to });
      }
      return;
    }
    this.#installView(acc.install.msg, entry, now);
  }

  #installView(msg: MbInstall, entry: MbInstallEntry, now: number): void {
    const old = this.#view;
    if (old) this.#retained = { key: old.key, buffer: this.#buffer };
    const members: MbMemberRef[] = msg.entries.map((e) => ({ id: e.id, inc: e.inc }));
    const index = new Map<NodeId, number>();
    for (const [i, m] of members.entries()) index.set(m.id, i);
    const myKey = viewKey(entry.oldView);
    const transitional =
      entry.oldView.counter === 0
        ? [this.id]
        : msg.entries.filter((e) => viewKey(e.oldView) === myKey).map((e) => e.id);
    const key = viewKey(msg.pid);
    const pub: View = {
      id: msg.pid,
      key,
      members: members.map((m) => m.id),
      incarnations: members.map((m) => m.inc),
      myIndex: index.get(this.id) as number,
      transitional,
      previous: old ? old.id : NO_VIEW,
    };
    this.#view = { id: msg.pid, key, members, index, sequencer: (members[0] as MbMemberRef).id, pub };
    this.#delivered = 0;
    this.#seqHigh = 0;
    this.#stable = 0;
    this.#buffer = new Map();
    this.#lastAcked = 0;
    this.#ackAt = Number.POSITIVE_INFINITY;
    this.#nackAt = Number.POSITIVE_INFINITY;
    this.#nextSeq = 1;
    this.#expected = new Map();
    this.#startFloors = new Map(msg.entries.map((e) => [e.id, e.floor]));
    this.#acks = new Map();
    this.#tailResendAt = new Map();
    this.#accepted = null;
    this.#transitionalSent = false;
    this.#forceChange = false;
    this.stats.viewsInstalled++;
    this.#events.push({ type: "view", view: pub });
    const coord = msg.pid.coord;
    if (coord !== this.id) this.#send(coord, { _tag: "MbInstallAck", pid: msg.pid, ok: true });
    else if (this.#proposal && sameViewId(this.#proposal.pid, msg.pid)) this.#proposal.acks.add(this.id);
    // own messages that members of this view already delivered elsewhere are done
    while (this.#pending.length > 0 && (this.#pending[0] as Pending).senderSeq <= entry.floor) {
      this.#pending.shift();
      this.stats.deliveredElsewhere++;
    }
    if (this.#wantDrain && this.#pending.length < this.limits.maxPending) {
      this.#wantDrain = false;
      this.#events.push({ type: "drain" });
    }
    for (const p of this.#pending) {
      p.sentAt = Number.NEGATIVE_INFINITY;
      p.tries = 0;
    }
    this.#dirty = true;
    this.#sendData(now);
  }

  // ---------------------------------------------------------------- ordering within a view

  #sendData(now: number): void {
    const v = this.#view;
    if (v === null || this.#accepted !== null || this.#state !== "joined") return;
    const firstPending = this.#pending[0]?.senderSeq ?? this.#nextSenderSeq;
    const rto = this.#dataRto();
    // a snapshot: local ordering (this member is the sequencer) delivers and shifts #pending
    const due: Pending[] = [];
    for (const p of this.#pending.slice(0, this.limits.window)) {
      if (now - p.sentAt < rto) continue;
      if (p.tries > 0) {
        this.stats.dataRetransmits++;
        this.#lastDataRetransmitAt = now;
      }
      p.sentAt = now;
      p.tries++;
      due.push(p);
    }
    // consecutive senderSeqs go together, up to `batchBytes` of payload per datagram
    let run: Pending[] = [];
    let bytes = 0;
    const flush = (): void => {
      const first = run[0];
      if (first === undefined) return;
      const d: MbData = {
        _tag: "MbData",
        view: v.id,
        firstPending,
        firstSenderSeq: first.senderSeq,
        payloads: run.map((p) => p.payload),
      };
      run = [];
      bytes = 0;
      if (this.#view !== v || this.#accepted !== null) return;
      if (v.sequencer === this.id) this.#onData(this.id, d, now);
      else this.#send(v.sequencer, d);
    };
    for (const p of due) {
      const last = run[run.length - 1];
      const size = 2 + p.payload.length;
      if (
        last !== undefined &&
        (p.senderSeq !== last.senderSeq + 1 ||
          bytes + size > this.limits.batchBytes ||
          run.length >= MB_MAX_BATCH)
      )
        flush();
      run.push(p);
      bytes += size;
    }
    flush();
  }

  #onData(from: NodeId, d: MbData, now: number): void {
    const v = this.#view;
    if (v === null || v.sequencer !== this.id || this.#accepted !== null || !sameViewId(d.view, v.id)) return;
    if (!v.index.has(from)) return;
    let exp = this.#expected.get(from) ?? Math.max(d.firstPending, (this.#startFloors.get(from) ?? 0) + 1);
    if (d.firstPending > exp) exp = d.firstPending;
    const firstSeq = this.#nextSeq;
    const out: MbOrderedEntry[] = [];
    for (let i = 0; i < d.payloads.length; i++) {
      const senderSeq = d.firstSenderSeq + i;
      const payload = d.payloads[i] as Uint8Array;
      if (senderSeq < exp) continue; // a duplicate: already ordered
      if (senderSeq > exp || payload.length > this.limits.maxPayloadBytes) break; // ahead of a gap
      if (this.#nextSeq - 1 - this.#stable >= this.limits.maxUnstable) {
        this.stats.flowControlDrops++;
        break;
      }
      exp++;
      this.#nextSeq++;
      out.push({ sender: from, senderSeq, payload });
    }
    this.#expected.set(from, exp);
    if (out.length === 0) return; // the sender retransmits, in order
    const stable = this.#stable;
    this.#sendOrdered(null, v.id, firstSeq, stable, out);
    this.#onOrdered({ _tag: "MbOrdered", view: v.id, firstSeq, stable, entries: out }, now);
  }

  /** Sends ordered entries (consecutive seqs from `firstSeq`) in datagrams of at most `batchBytes`. */
  #sendOrdered(
    to: NodeId | null,
    view: ViewId,
    firstSeq: number,
    stable: number,
    entries: readonly MbOrderedEntry[],
  ): void {
    const v = this.#view;
    let start = 0;
    while (start < entries.length) {
      let end = start;
      let bytes = 0;
      while (end < entries.length && end - start < MB_MAX_BATCH) {
        const size = 10 + (entries[end] as MbOrderedEntry).payload.length;
        if (end > start && bytes + size > this.limits.batchBytes) break;
        bytes += size;
        end++;
      }
      const o: MbOrdered = {
        _tag: "MbOrdered",
        view,
        firstSeq: firstSeq + start,
        stable,
        entries: entries.slice(start, end),
      };
      const data = this.#encode(o);
      if (to !== null) this.#transmits.push({ to, data });
      else if (v !== null)
        for (const m of v.members) if (m.id !== this.id) this.#transmits.push({ to: m.id, data });
      start = end;
    }
  }

  #onOrdered(o: MbOrdered, now: number): void {
    const v = this.#view;
    if (v === null || !sameViewId(o.view, v.id)) return;
    if (o.stable > this.#stable) this.#advanceStable(Math.min(o.stable, this.#delivered));
    let own = false;
    for (let i = 0; i < o.entries.length; i++) {
      const e = o.entries[i] as MbOrderedEntry;
      const seq = o.firstSeq + i;
      if (!v.index.has(e.sender)) continue;
      if (seq > this.#seqHigh) this.#seqHigh = seq;
      if (seq <= this.#delivered || this.#buffer.has(seq)) continue;
      if (seq > this.#delivered + this.limits.maxUnstable) continue;
      this.#buffer.set(seq, { seq, sender: e.sender, senderSeq: e.senderSeq, payload: e.payload });
      if (e.sender === this.id) own = true;
    }
    if (this.#accepted !== null) {
      if (this.#accepted.install !== null) this.#trySync(now);
      return; // blocked: deliver nothing until the install says how far
    }
    while (true) {
      const m = this.#buffer.get(this.#delivered + 1);
      if (m === undefined) break;
      this.#deliver(m);
    }
    if (this.#seqHigh > this.#delivered) this.#nackAt = Math.min(this.#nackAt, now);
    if (own && this.#pending.length > 0) this.#sendData(now); // refill the window
    if (this.#delivered > this.#lastAcked) {
      if (this.#delivered - this.#lastAcked >= 32) this.#sendAck();
      else if (this.#ackAt === Number.POSITIVE_INFINITY) this.#ackAt = now + this.timing.retransmitMs / 2;
    }
  }

  #deliver(m: Stored): void {
    const v = this.#view as Installed;
    this.#delivered = m.seq;
    const sinc = v.members[v.index.get(m.sender) as number]?.inc ?? 0;
    const fk = `${m.sender}/${sinc}`;
    if (!this.#floors.has(fk) && this.#floors.size >= 4 * this.limits.maxPeers) {
      const oldest = this.#floors.keys().next().value;
      if (oldest !== undefined) this.#floors.delete(oldest);
    }
    this.#floors.set(fk, m.senderSeq);
    this.stats.delivered++;
    const d: Delivery = {
      view: v.id,
      seq: m.seq,
      sender: m.sender,
      senderSeq: m.senderSeq,
      payload: m.payload,
    };
    this.#events.push({ type: "message", message: d });
    if (m.sender === this.id) {
      const head = this.#pending[0];
      // Karn, strengthened for go-back-N: a message sent before any retransmission may have
      // waited behind the lost one, so only messages sent after the last retransmission count
      if (
        head !== undefined &&
        head.senderSeq === m.senderSeq &&
        head.tries === 1 &&
        head.sentAt > this.#lastDataRetransmitAt
      )
        this.#sampleRtt(this.#lastActivity - head.sentAt);
      while (this.#pending.length > 0 && (this.#pending[0] as Pending).senderSeq <= m.senderSeq)
        this.#pending.shift();
      if (this.#wantDrain && this.#pending.length < this.limits.maxPending) {
        this.#wantDrain = false;
        this.#events.push({ type: "drain" });
      }
    }
    if (v.sequencer === this.id) this.#noteAck(this.id, m.seq);
  }

  #sendAck(): void {
    const v = this.#view;
    this.#ackAt = Number.POSITIVE_INFINITY;
    if (v === null) return;
    this.#lastAcked = this.#delivered;
    if (v.sequencer === this.id) return;
    this.#send(v.sequencer, { _tag: "MbAck", view: v.id, delivered: this.#delivered });
  }

  #onAck(from: NodeId, a: MbAck): void {
    const v = this.#view;
    if (v === null || v.sequencer !== this.id || !sameViewId(a.view, v.id) || !v.index.has(from)) return;
    this.#noteAck(from, a.delivered);
  }

  /** Round-trip estimate of own multicasts (send to self-delivery), as in TCP (RFC 6298). */
  #sampleRtt(r: number): void {
    if (!(r >= 0)) return;
    if (this.#srtt === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
  }

  /**
   * Data retransmission timeout: `retransmitMs`, stretched up to 2x when measured round trips
   * (queueing under CPU load) are longer, so a busy sequencer is not flooded with duplicates.
   * Capped low because samples also include NACK-recovered losses of the ordered copy.
   */
  get dataRtoMs(): number {
    return this.#dataRto();
  }

  #dataRto(): number {
    const base = this.timing.retransmitMs;
    if (this.#srtt === undefined) return base;
    return Math.min(2 * base, Math.max(base, this.#srtt + 4 * this.#rttvar));
  }

  #noteAck(from: NodeId, delivered: number): void {
    const v = this.#view as Installed;
    const prev = this.#acks.get(from) ?? 0;
    if (delivered <= prev) return;
    this.#tailResendAt.set(from, this.#lastActivity + 2 * this.timing.retransmitMs);
    this.#acks.set(from, Math.min(delivered, this.#nextSeq - 1));
    let min = Number.POSITIVE_INFINITY;
    for (const m of v.members) min = Math.min(min, this.#acks.get(m.id) ?? 0);
    if (min > this.#stable) this.#advanceStable(min);
  }

  #advanceStable(to: number): void {
    for (let s = this.#stable + 1; s <= to; s++) this.#buffer.delete(s);
    this.#stable = to;
  }

  #onNack(from: NodeId, n: MbNack): void {
    let buf: Map<number, Stored> | undefined;
    const k = viewKey(n.view);
    if (this.#view && this.#view.key === k) buf = this.#buffer;
    else if (this.#retained && this.#retained.key === k) buf = this.#retained.buffer;
    if (buf === undefined) return;
    const to = Math.min(n.to, n.from + MAX_NACK_BATCH - 1);
    let run: MbOrderedEntry[] = [];
    let runStart = n.from;
    for (let s = n.from; s <= to + 1; s++) {
      const m = s <= to ? buf.get(s) : undefined;
      if (m === undefined) {
        if (run.length > 0) this.#sendOrdered(from, n.view, runStart, 0, run);
        run = [];
        runStart = s + 1;
        continue;
      }
      this.stats.orderedRetransmits++;
      run.push({ sender: m.sender, senderSeq: m.senderSeq, payload: m.payload });
    }
  }

  // ---------------------------------------------------------------- timers

  #busy(): boolean {
    return (
      this.#pending.length > 0 ||
      this.#proposal !== null ||
      this.#accepted !== null ||
      this.#seqHigh > this.#delivered ||
      (this.#view !== null && this.#view.sequencer === this.id && this.#stable < this.#nextSeq - 1)
    );
  }

  #retransmit(now: number): void {
    const rto = this.timing.retransmitMs;
    const pr = this.#proposal;
    if (pr !== null && now - pr.lastSendAt >= rto) {
      pr.lastSendAt = now;
      if (pr.phase === "flush") {
        const bytes = this.#encode({
          _tag: "MbPropose",
          group: this.groupHash,
          pid: pr.pid,
          members: pr.members,
        });
        for (const m of pr.members)
          if (m.id !== this.id && !pr.reports.has(m.id)) this.#transmits.push({ to: m.id, data: bytes });
      } else if (pr.install) {
        const bytes = this.#encode(pr.install);
        for (const m of pr.members)
          if (m.id !== this.id && !pr.acks.has(m.id)) this.#transmits.push({ to: m.id, data: bytes });
      }
    }
    const acc = this.#accepted;
    if (acc !== null) {
      if (acc.install !== null) this.#trySync(now);
      if (this.#accepted === acc && now - acc.at > 2 * this.timing.viewChangeTimeoutMs) {
        // the coordinator (or the holder we sync from) vanished: unblock; a new round will follow
        this.#accepted = null;
        this.#dirty = true;
      }
    }
    if (this.#ackAt <= now) this.#sendAck();
    const v = this.#view;
    if (v !== null && this.#accepted === null) {
      if (this.#seqHigh > this.#delivered && now >= this.#nackAt && v.sequencer !== this.id) {
        this.#nackAt = now + rto;
        const from = this.#delivered + 1;
        this.#send(v.sequencer, {
          _tag: "MbNack",
          view: v.id,
          from,
          to: Math.min(this.#seqHigh, from + MAX_NACK_BATCH - 1),
        });
      }
      if (v.sequencer === this.id) {
        // tail loss: resend to members whose acks lag
        const high = this.#nextSeq - 1;
        for (const m of v.members) {
          if (m.id === this.id) continue;
          const a = this.#acks.get(m.id) ?? 0;
          if (a >= high) {
            this.#tailResendAt.delete(m.id);
            continue;
          }
          const at = this.#tailResendAt.get(m.id);
          if (at === undefined) {
            this.#tailResendAt.set(m.id, now + 2 * rto);
            continue;
          }
          if (now < at) continue;
          this.#tailResendAt.set(m.id, now + 2 * rto);
          this.#onNack(m.id, { _tag: "MbNack", view: v.id, from: a + 1, to: Math.min(high, a + 8) });
        }
      }
      this.#sendData(now);
    }
    if (this.#dirty) this.#checkMembership(now);
  }

  // ---------------------------------------------------------------- output helpers

  #encode(m: Message): Uint8Array {
    return encode({ sender: this.id, incarnation: this.incarnation }, m);
  }

  #send(to: NodeId, m: Message): void {
    this.#transmits.push({ to, data: this.#encode(m) });
  }
}
