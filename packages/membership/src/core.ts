/**
 * The glue of the membership core: configuration, the public API, and the dispatch of inputs to
 * the three parts, which share one `CoreContext`:
 *
 * - detector.ts: peer table, liveness, reachable set, stall compensation;
 * - view-change.ts: when to change, coordinator rounds, member side of a change;
 * - ordering.ts: sequencer, delivery, acknowledgements, floors.
 */
import { ConfigError, type NodeId, silentLogger } from "@spines-ts/primitives";
import { decode, type MbHeartbeat, MbHeartbeatFlag, type Message, WireError } from "@spines-ts/wire";
import { CoreContext, type MembershipStats, u32 } from "./context.ts";
import { FailureDetector } from "./detector.ts";
import { Ordering } from "./ordering.ts";
import {
  defaultLimits,
  groupHash,
  type Limits,
  type MembershipConfig,
  type MembershipEvent,
  NO_VIEW,
  NotJoinedError,
  profiles,
  type Timing,
  type Transmit,
  type View,
  viewKey,
} from "./types.ts";
import { ViewChange } from "./view-change.ts";

export type { MembershipStats } from "./context.ts";

/**
 * The sans-IO membership core: heartbeats and failure detection, coordinator-driven view changes
 * with a flush phase (virtual synchrony), and sequencer-based total order within a view.
 *
 * Inputs: `join`, `leave`, `multicast`, `receive(from, bytes, now)`, `handleTimeout(now)`.
 * Outputs: `takeTransmits()` (datagrams), `takeEvents()` (views, transitional signals, messages),
 * `nextDeadline()` (when to call `handleTimeout` next). It never reads a clock or touches a socket.
 */
export class MembershipCore {
  readonly id: NodeId;
  readonly incarnation: number;
  readonly group: string;
  readonly groupHash: number;
  readonly timing: Timing;
  readonly limits: Limits;
  readonly stats: MembershipStats;

  readonly #c: CoreContext;
  readonly #fd: FailureDetector;
  readonly #ord: Ordering;
  readonly #vc: ViewChange;
  readonly #announce: boolean;
  #nextHeartbeatAt = 0;
  #hbSeq = 0;

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
    this.#announce = config.announce ?? false;
    const configuredPeers: NodeId[] = [];
    for (const p of config.peers ?? []) {
      if (!u32(p)) throw new ConfigError(src, "peers", "u32 node ids", p);
      if (p !== this.id && !configuredPeers.includes(p)) configuredPeers.push(p);
    }
    if (configuredPeers.length > this.limits.maxPeers)
      throw new ConfigError(src, "peers", `at most ${this.limits.maxPeers} peers`, configuredPeers.length);
    const log = (config.log ?? silentLogger).child({ member: config.id });
    this.#c = new CoreContext(this.id, this.incarnation, this.groupHash, this.timing, this.limits, log);
    this.stats = this.#c.stats;
    this.#fd = new FailureDetector(this.#c, configuredPeers);
    this.#ord = new Ordering(this.#c, {
      blocked: () => this.#vc.accepted !== null,
      bufferedWhileBlocked: (now) => this.#vc.trySync(now),
    });
    this.#vc = new ViewChange(this.#c, this.#fd, this.#ord);
  }

  // ---------------------------------------------------------------- public API

  get joined(): boolean {
    return this.#c.state === "joined";
  }

  /** The installed view, or undefined before the first one. */
  get view(): View | undefined {
    return this.#ord.view?.pub;
  }

  /** True while a view change is in progress at this member (multicasts wait). */
  get blocked(): boolean {
    return this.#vc.accepted !== null;
  }

  get pendingCount(): number {
    return this.#ord.pending.length;
  }

  /** How many multicasts this member has accepted (its last senderSeq). */
  get sentCount(): number {
    return this.#ord.nextSenderSeq - 1;
  }

  /**
   * Data retransmission timeout: `retransmitMs`, stretched up to 2x when measured round trips
   * (queueing under CPU load) are longer, so a busy sequencer is not flooded with duplicates.
   */
  get dataRtoMs(): number {
    return this.#ord.dataRtoMs;
  }

  /** Starts participating: heartbeats go out at once, so peers see the join without a timeout. */
  join(now: number): void {
    this.#checkNow(now);
    if (this.#c.state !== "idle") throw new NotJoinedError("join (already joined or left)");
    this.#c.state = "joined";
    this.#c.lastActivity = now;
    this.#vc.joinedAt = now;
    this.#nextHeartbeatAt = now;
    this.#c.dirty = true;
    this.handleTimeout(now);
  }

  /** Leaves gracefully: tells every peer (no timeout needed on their side) and stops. */
  leave(now: number): void {
    this.#checkNow(now);
    const c = this.#c;
    if (c.state !== "joined") throw new NotJoinedError("leave");
    const bytes = c.encode({ _tag: "MbLeave", group: this.groupHash });
    for (const p of this.#fd.heartbeatTargets()) {
      c.transmits.push({ to: p, data: bytes });
      c.transmits.push({ to: p, data: bytes }); // one duplicate against loss
    }
    if (this.#announce) c.transmits.push({ to: null, data: bytes });
    c.state = "left";
    this.#ord.clear();
    this.#vc.clear();
    c.events.push({ type: "left" });
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
    if (this.#c.state !== "joined") throw new NotJoinedError("multicast");
    return this.#ord.enqueue(payload, now);
  }

  /** Adds a peer to heartbeat (for example one found by discovery). Returns false when the table is full. */
  addPeer(id: NodeId): boolean {
    if (!u32(id)) throw new RangeError(`addPeer: id must be a u32, got ${id}`);
    return this.#fd.addPeer(id);
  }

  takeTransmits(): Transmit[] {
    const t = this.#c.transmits;
    this.#c.transmits = [];
    return t;
  }

  takeEvents(): MembershipEvent[] {
    const e = this.#c.events;
    this.#c.events = [];
    return e;
  }

  /** When `handleTimeout` must next be called (absolute time), or undefined when idle. */
  nextDeadline(): number | undefined {
    const c = this.#c;
    if (c.state !== "joined") return undefined;
    let t = this.#fd.nextExpiry(c.lastActivity, this.#nextHeartbeatAt);
    if (this.#vc.busy() || this.#ord.busy()) t = Math.min(t, c.lastActivity + this.timing.retransmitMs);
    if (this.#ord.ackAt < t) t = this.#ord.ackAt;
    if (this.#vc.wakeAt > c.lastActivity && this.#vc.wakeAt < t) t = this.#vc.wakeAt;
    return t;
  }

  /** A printable summary of the state (for debugging and failure reports). */
  snapshot(): Record<string, unknown> {
    const ord = this.#ord;
    const acc = this.#vc.accepted;
    const pr = this.#vc.proposal;
    return {
      id: this.id,
      inc: this.incarnation,
      state: this.#c.state,
      view: ord.view ? { key: ord.view.key, members: ord.view.pub.members } : null,
      delivered: ord.delivered,
      seqHigh: ord.seqHigh,
      stable: ord.stable,
      buffered: ord.buffer.size,
      pending: ord.pending.length,
      accepted: acc ? { pid: viewKey(acc.pid), installing: acc.install !== null } : null,
      proposal: pr
        ? {
            pid: viewKey(pr.pid),
            phase: pr.phase,
            members: pr.members.map((m) => m.id),
            reports: [...pr.reports.keys()],
          }
        : null,
      peers: [...this.#fd.peers.entries()].map(([id, p]) => ({
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
    const c = this.#c;
    if (c.state !== "joined") return;
    this.#fd.noteActivity(now);
    let frame: ReturnType<typeof decode>;
    try {
      frame = decode(bytes);
    } catch (e) {
      this.stats.badPackets++;
      if (e instanceof WireError) c.rl.debug(now, "decode", { from, code: e.code }, "bad membership packet");
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
    const peer = this.#fd.touchPeer(sender, frame.incarnation, now, create);
    if (peer === undefined) return;
    try {
      switch (msg._tag) {
        case "MbHeartbeat":
          this.#vc.noteCounter(msg.maxCounter);
          if (this.#fd.onHeartbeat(peer, msg)) this.#ord.onPeerHeartbeat(sender, msg, now);
          break;
        case "MbLeave":
          peer.left = true;
          c.dirty = true;
          break;
        case "MbPropose":
          this.#vc.onPropose(sender, msg, now);
          break;
        case "MbReject":
          this.#vc.onReject(msg);
          break;
        case "MbFlushState":
          this.#vc.onFlushState(sender, msg, now);
          break;
        case "MbInstall":
          this.#vc.onInstall(sender, msg, now);
          break;
        case "MbInstallAck":
          this.#vc.onInstallAck(sender, msg);
          break;
        case "MbData":
          this.#ord.onData(sender, msg, now);
          break;
        case "MbOrdered":
          this.#ord.onOrdered(msg, now);
          break;
        case "MbNack":
          this.#ord.onNack(sender, msg);
          break;
        case "MbAck":
          this.#ord.onAck(sender, msg);
          break;
        default:
          this.stats.badPackets++;
      }
    } catch (e) {
      // A peer's packet must never take the core down; anything thrown here is a bug or bad input.
      this.stats.badPackets++;
      c.rl.debug(now, "handler", { from, tag: msg._tag, err: String(e) }, "membership packet rejected");
    }
    if (this.#fd.greet !== undefined) {
      // a new peer (or a restarted one): answer its heartbeat at once, so a joiner learns within a
      // round trip that a group with a view exists (and does not wait out its join grace)
      const to = this.#fd.greet;
      this.#fd.greet = undefined;
      if (msg._tag === "MbHeartbeat") this.#sendHeartbeats(to);
    }
    if (c.dirty) this.#vc.check(now);
  }

  handleTimeout(now: number): void {
    this.#checkNow(now);
    if (this.#c.state !== "joined") return;
    this.#fd.noteActivity(now);
    if (now >= this.#nextHeartbeatAt) {
      this.#sendHeartbeats();
      this.#nextHeartbeatAt = now + this.timing.heartbeatIntervalMs;
    }
    this.#vc.check(now);
    this.#vc.onTimer(now);
    this.#ord.onTimer(now);
    if (this.#c.dirty) this.#vc.check(now);
  }

  // ---------------------------------------------------------------- helpers

  #checkNow(now: number): void {
    if (typeof now !== "number" || !Number.isFinite(now))
      throw new TypeError(`now must be a finite number, got ${now}`);
  }

  #sendHeartbeats(only?: NodeId): void {
    const c = this.#c;
    const v = this.#ord.view;
    let flags = 0;
    if (v) flags |= MbHeartbeatFlag.InView;
    if (v && v.sequencer === this.id) flags |= MbHeartbeatFlag.Sequencer;
    if (this.#vc.accepted) flags |= MbHeartbeatFlag.Flushing;
    const hb: MbHeartbeat = {
      _tag: "MbHeartbeat",
      group: this.groupHash,
      hbSeq: this.#hbSeq,
      flags,
      view: v ? v.id : NO_VIEW,
      maxCounter: this.#vc.maxCounter,
      delivered: this.#ord.delivered,
      seqHigh: this.#ord.seqHigh,
    };
    this.#hbSeq = (this.#hbSeq + 1) >>> 0;
    const bytes = c.encode(hb);
    if (only !== undefined) {
      c.transmits.push({ to: only, data: bytes });
      return;
    }
    for (const p of this.#fd.heartbeatTargets()) c.transmits.push({ to: p, data: bytes });
    if (this.#announce) c.transmits.push({ to: null, data: bytes });
  }
}
