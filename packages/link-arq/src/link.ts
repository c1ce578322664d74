import { type FlowKey, TokenBucket } from "@spines-ts/congestion";
import { Deque, type NodeId, type Rng, RttEstimator } from "@spines-ts/primitives";
import {
  blankLinkDataFrame,
  decode,
  decodeLinkDataInto,
  encodeAt,
  encodeInto,
  type Frame,
  type FrameSource,
  type Hello,
  HelloFlag,
  LinkChannel,
  type LinkMessage,
  type OverlayHeader,
  WireError,
  Writer,
} from "@spines-ts/wire";
import { DATA_OVERHEAD_BYTES, type LinkConfig, resolveLinkConfig } from "./config.ts";
import { ReliableReceiver, ReliableSender } from "./reliable.ts";
import { elapsedMs, tsUs } from "./seq.ts";
import { type Delivery, type LinkEvent, type LinkMetrics, type LinkState, SendResult } from "./types.ts";
import { UnreliableReceiver, UnreliableSender } from "./unreliable.ts";

export interface LinkOptions {
  /** Our node id (the frame sender). */
  readonly local: NodeId;
  /** The neighbour's node id. */
  readonly peer: NodeId;
  /** Our incarnation: a random non-zero 32-bit id drawn once per process start. */
  readonly incarnation: number;
  readonly config?: Partial<LinkConfig>;
  /** Creation time (ms). */
  readonly now: number;
  /** Seeded randomness (the first hello's offset, the handshake nonces). */
  readonly rng: Rng;
}

export interface LinkStats {
  framesIn: number;
  framesOut: number;
  decodeErrors: number;
  foreign: number;
  staleIncarnation: number;
  /** Frames from an incarnation of the peer not (yet) proven by a nonce echo; dropped. */
  unproven: number;
  /** Hellos sent at once to challenge an unproven incarnation (or to prove ours). */
  challenges: number;
  /** Goodbyes that did not echo our nonce (forged or stale); ignored. */
  forgedGoodbyes: number;
  notForUs: number;
  badAcks: number;
  deliveriesDropped: number;
  eventsDropped: number;
  restarts: number;
  /** Hellos saying the peer had not heard ours for a dead timeout (a one-way link). */
  oneWay: number;
  ups: number;
  downs: number;
}

const MAX_EVENTS = 4096;
/**
 * The path RTT is the least hello RTT sample of the last 5-10 s (two half-window buckets): the
 * propagation round trip without the queueing the overlay's own traffic adds, so routing costs
 * built from it do not chase that queue (issue 10: routes flapped under one stream). A bucket in
 * which every sample was taken while our own data crossed the link (no data sent or received for
 * the sample's round trip) does not push older, lower samples out: a standing queue of our own
 * traffic never raises the path RTT; it rises once samples on an unloaded link say so.
 */
const PATH_RTT_HALF_WINDOW_MS = 5000;
const RETIRED_KEEP = 4;
const NO_ECHO = 0xffffffff;

/** Large frames are encoded here and copied (a link's `#emit` never runs inside another's encode). */
const frameWriter = new Writer(2048);
/**
 * Frames are encoded straight into a shared slab (a view each) instead of a fresh ArrayBuffer per
 * frame: an ArrayBuffer per datagram was the largest allocation cost of a transit daemon (issue 10),
 * and encoding elsewhere and copying in cost a second view and a copy per frame. A slab is never
 * written again where a view was handed out (a new slab is started when it is full), so a frame
 * stays valid for as long as anyone holds it, like a fresh buffer; a slab is freed with its last
 * frame. Larger frames get a buffer of their own.
 */
const SLAB_BYTES = 64 * 1024;
const SLAB_MAX_FRAME = SLAB_BYTES / 16;
/** Bytes beyond a data frame's payload, or of any other link frame, a frame takes at most (a bound). */
const FRAME_BOUND_EXTRA = 512;
let slab = new Uint8Array(SLAB_BYTES);
let slabAt = 0;
const slabWriter = new Writer(0);

/** Encodes `msg` into a buffer the caller may keep (see `slab`). */
function encodeOwned(src: FrameSource, msg: LinkMessage): Uint8Array {
  const bound = (msg._tag === "LinkData" ? msg.payload.length : 0) + FRAME_BOUND_EXTRA;
  if (bound > SLAB_MAX_FRAME) return encodeInto(frameWriter, src, msg).slice();
  if (slabAt + bound > SLAB_BYTES) {
    slab = new Uint8Array(SLAB_BYTES);
    slabAt = 0;
  }
  const start = encodeAt(slabWriter.target(slab, slabAt), src, msg);
  const end = slabWriter.length;
  // The bound was wrong and the writer grew into a buffer of its own: copy the frame out of it.
  if (slabWriter.buffer !== slab) return slabWriter.buffer.slice(start, end);
  slabAt = (end + 7) & ~7;
  return slab.subarray(start, end);
}

/** `Link.receive` decodes LinkData frames into this one (read during `handleFrame`, never kept). */
const receiveFrame = blankLinkDataFrame();

interface Held extends Delivery {
  readonly reliable: boolean;
  readonly bytes: number;
}

/** The default flow key: the overlay source and destination session. */
export function flowKeyOf(h: OverlayHeader): FlowKey {
  return `${h.src}:${h.srcPort}>${h.dst}:${h.dstPort}`;
}

function u32(name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffffffff)
    throw new RangeError(`${name} must be an unsigned 32-bit integer, got ${String(v)}`);
  return v;
}

/**
 * One overlay link to one neighbour, sans-IO. Inputs: frames from the neighbour
 * (`handleFrame`/`receive`), application sends (`send`), and timer fires (`handleTimeout`), each
 * with `now` in ms. Outputs: frames to transmit (`takeTransmits`), the next deadline
 * (`nextDeadline`), received packets (`consumeDeliveries`) and events (`takeEvents`).
 *
 * It runs liveness (hellos, dead timeout, hold-down, restart detection by incarnation), RTT and
 * loss measurement, and three channels: reliable (selective-repeat ARQ with congestion control and
 * DRR), real-time (one bounded-latency retransmission) and best-effort. See docs/links.md.
 */
export class Link {
  readonly local: NodeId;
  readonly peer: NodeId;
  readonly incarnation: number;
  readonly config: LinkConfig;
  readonly rtt = new RttEstimator();
  readonly reliable: ReliableSender;
  readonly reliableIn: ReliableReceiver;
  readonly realtime: UnreliableSender;
  readonly realtimeIn: UnreliableReceiver;
  readonly bestEffort: UnreliableSender;
  readonly bestEffortIn: UnreliableReceiver;
  readonly stats: LinkStats = {
    framesIn: 0,
    framesOut: 0,
    decodeErrors: 0,
    foreign: 0,
    staleIncarnation: 0,
    unproven: 0,
    challenges: 0,
    forgedGoodbyes: 0,
    notForUs: 0,
    badAcks: 0,
    deliveriesDropped: 0,
    eventsDropped: 0,
    restarts: 0,
    oneWay: 0,
    ups: 0,
    downs: 0,
  };
  readonly #cap: TokenBucket | undefined;
  #state: LinkState = "down";
  #peerInc = 0;
  readonly #rng: Rng;
  /** Our challenge in every hello, and the one before it (still accepted as an echo). */
  #nonce = 0;
  #prevNonce = 0;
  #nonceAt: number;
  /** The newest nonce of the proven peer (echoed in our hellos), and of an unproven one. */
  #peerNonce = 0;
  #candNonce = 0;
  #challengeAt = Number.NEGATIVE_INFINITY;
  readonly #retired: number[] = [];
  #lastHeard = Number.NEGATIVE_INFINITY;
  #confirm = 0;
  #holdUntil = Number.NEGATIVE_INFINITY;
  #nextHelloAt: number;
  #helloSeq = 0;
  #peerHelloTs: number | undefined;
  #peerHelloAt = 0;
  /** The newest hello sequence number heard from the peer (loss metering over hellos). */
  #peerHelloSeq: number | undefined;
  /** Hellos of the peer expected (sequence advance) and received, for the loss meter. */
  #helloExpected = 0;
  #helloReceived = 0;
  #lossIn = 0;
  #lossOut = 0;
  #pathMinCur = Number.POSITIVE_INFINITY;
  #pathMinPrev = Number.POSITIVE_INFINITY;
  /** The current bucket holds a sample taken while no data of ours crossed the link. */
  #pathCleanCur = false;
  #pathBucketAt: number;
  /** When data last crossed the link either way (ms). */
  #lastDataAt = Number.NEGATIVE_INFINITY;
  #meterExpected = 0;
  #meterOriginals = 0;
  #nextMetricsAt: number;
  #now: number;
  /** Frames to send, oldest first (a ring: no array per drain). */
  readonly #transmits = new Deque<Uint8Array>(64);
  #events: LinkEvent[] = [];
  /** Received packets not yet consumed, oldest first (a ring that keeps its room). */
  readonly #held = new Deque<Held>(64);
  #consuming = false;
  #relHeld = 0;
  #relHeldBytes = 0;
  #unrelHeld = 0;
  #unrelHeldBytes = 0;
  /** The frame source of everything this link sends. */
  readonly #src: FrameSource;
  /** `#emit` bound once, for the reliable sender's pump (not a closure per input). */
  readonly #emitData = (m: LinkMessage): void => this.#emit(m);

  constructor(o: LinkOptions) {
    this.local = u32("local", o.local);
    this.peer = u32("peer", o.peer);
    this.incarnation = u32("incarnation", o.incarnation);
    if (this.incarnation === 0) throw new RangeError("incarnation must be non-zero");
    this.#src = { sender: this.local, incarnation: this.incarnation };
    if (typeof o.now !== "number" || !Number.isFinite(o.now))
      throw new TypeError("now must be a finite number");
    this.config = resolveLinkConfig(o.config);
    const c = this.config;
    this.#now = o.now;
    this.#cap =
      c.rateCapBytesPerMs === undefined
        ? undefined
        : new TokenBucket(c.rateCapBytesPerMs, c.rateCapBurstBytes, o.now);
    this.reliable = new ReliableSender(c, this.rtt, this.#cap, o.now);
    this.reliableIn = new ReliableReceiver(c);
    this.realtime = new UnreliableSender(LinkChannel.Realtime, c, true);
    this.realtimeIn = new UnreliableReceiver(c, true);
    this.bestEffort = new UnreliableSender(LinkChannel.BestEffort, c, false);
    this.bestEffortIn = new UnreliableReceiver(c, false);
    this.#rng = o.rng;
    this.#nonceAt = o.now;
    this.#nonce = this.#drawNonce();
    this.#nextHelloAt = o.now + o.rng.uniform(0, c.helloIntervalMs);
    this.#nextMetricsAt = o.now + c.metricsIntervalMs;
    this.#pathBucketAt = o.now;
  }

  get state(): LinkState {
    return this.#state;
  }
  /** The neighbour's current incarnation (0 before first contact). */
  get peerIncarnation(): number {
    return this.#peerInc;
  }
  get lastHeard(): number {
    return this.#lastHeard;
  }
  /** Received packets not yet consumed. */
  get pendingDeliveries(): number {
    return this.#held.length;
  }
  get heldReliable(): { packets: number; bytes: number } {
    return { packets: this.#relHeld, bytes: this.#relHeldBytes };
  }

  /**
   * The least hello RTT sample of the last 5-10 s (ms), undefined without one: the round trip
   * without queueing, for routing costs.
   */
  get pathRtt(): number | undefined {
    this.#rotatePath(this.#now);
    const m = Math.min(this.#pathMinCur, this.#pathMinPrev);
    return Number.isFinite(m) ? m : undefined;
  }

  #rotatePath(now: number): void {
    if (now < this.#pathBucketAt + PATH_RTT_HALF_WINDOW_MS) return;
    if (now >= this.#pathBucketAt + 2 * PATH_RTT_HALF_WINDOW_MS) {
      // No sample for a whole window: start over.
      this.#pathMinPrev = Number.POSITIVE_INFINITY;
      this.#pathMinCur = Number.POSITIVE_INFINITY;
      this.#pathCleanCur = false;
      this.#pathBucketAt = now;
      return;
    }
    // A bucket of loaded samples only keeps the older minimum alive (see PATH_RTT_HALF_WINDOW_MS).
    this.#pathMinPrev = this.#pathCleanCur ? this.#pathMinCur : Math.min(this.#pathMinPrev, this.#pathMinCur);
    this.#pathMinCur = Number.POSITIVE_INFINITY;
    this.#pathCleanCur = false;
    this.#pathBucketAt += PATH_RTT_HALF_WINDOW_MS;
  }

  metrics(): LinkMetrics {
    const pathRtt = this.pathRtt;
    return {
      ...(pathRtt !== undefined ? { pathRtt } : {}),
      srtt: this.rtt.srtt,
      rttvar: this.rtt.rttvar,
      minRtt: Number.isFinite(this.rtt.min) ? this.rtt.min : undefined,
      lossOut: this.#lossOut,
      lossIn: this.#lossIn,
      cwnd: this.reliable.cc.cwnd,
      bytesInFlight: this.reliable.bytesInFlight,
      flows: this.reliable.flowCount,
    };
  }

  #event(e: LinkEvent): void {
    if (this.#events.length >= MAX_EVENTS) {
      this.stats.eventsDropped++;
      return;
    }
    this.#events.push(e);
  }

  #emit(msg: LinkMessage): void {
    this.#transmits.push(encodeOwned(this.#src, msg));
    this.stats.framesOut++;
  }

  #relFree(): number {
    const c = this.config;
    return Math.max(
      0,
      Math.min(
        c.recvBufferPackets - this.#relHeld,
        Math.floor((c.recvBufferBytes - this.#relHeldBytes) / c.mtu),
      ),
    );
  }

  /** Decodes and handles one datagram from the neighbour; malformed input is counted and dropped. */
  receive(bytes: Uint8Array, now: number): void {
    let f: Frame;
    if (decodeLinkDataInto(bytes, receiveFrame)) f = receiveFrame;
    else {
      try {
        f = decode(bytes);
      } catch (e) {
        if (e instanceof WireError) {
          this.stats.decodeErrors++;
          return;
        }
        throw e;
      }
    }
    this.handleFrame(f, now);
  }

  /** Handles a decoded frame (the owner demultiplexes by sender and message family). */
  handleFrame(f: Frame, now: number): void {
    this.#tick(now);
    if (f.sender !== this.peer) {
      this.stats.foreign++;
      return;
    }
    const m = f.msg;
    if (m._tag !== "Hello" && m._tag !== "LinkData" && m._tag !== "LinkAck" && m._tag !== "RealtimeNack") {
      this.stats.foreign++;
      return;
    }
    const inc = f.incarnation;
    if (inc === 0 || this.#retired.includes(inc)) {
      this.stats.staleIncarnation++;
      return;
    }
    this.#rotateNonce(now);
    if (inc !== this.#peerInc) {
      // An incarnation we have not proven: only a hello echoing our nonce proves it (the peer
      // receives at its address); until then the proven one, if any, keeps working.
      if (m._tag !== "Hello" || !this.#prove(now, inc, m)) {
        this.stats.unproven++;
        return;
      }
    } else if (m._tag === "Hello" && (m.flags & HelloFlag.Goodbye) !== 0 && !this.#echoes(m, true)) {
      this.stats.forgedGoodbyes++;
      return;
    }
    this.stats.framesIn++;
    this.#lastHeard = now;
    switch (m._tag) {
      case "Hello":
        this.#onHello(now, m);
        break;
      case "LinkData": {
        if (m.peerIncarnation !== this.incarnation) {
          this.stats.notForUs++;
          break;
        }
        this.#onData(now, m);
        break;
      }
      case "LinkAck":
        if (m.peerIncarnation !== this.incarnation) {
          this.stats.notForUs++;
          break;
        }
        if (!this.reliable.onAck(now, m)) this.stats.badAcks++;
        break;
      case "RealtimeNack":
        if (m.peerIncarnation !== this.incarnation) {
          this.stats.notForUs++;
          break;
        }
        if (this.#state === "up")
          this.realtime.onNack(now, this.#peerInc, m, this.rtt.srttOr(this.config.realtimeHistoryMs), (d) =>
            this.#emitCapped(now, d),
          );
        break;
    }
    this.#afterInput(now);
  }

  #emitCapped(now: number, d: LinkMessage & { _tag: "LinkData" }): void {
    const size = DATA_OVERHEAD_BYTES + d.payload.length;
    if (this.#cap && !this.#cap.canSpend(now, size)) return;
    this.#cap?.spend(now, size);
    this.#emit(d);
  }

  #onData(now: number, d: LinkMessage & { _tag: "LinkData" }): void {
    this.#lastDataAt = now;
    const bytes = d.payload.length + DATA_OVERHEAD_BYTES;
    if (d.channel === LinkChannel.Reliable) {
      const seq = this.reliableIn.onData(now, d, this.#relFree());
      if (seq === undefined) return;
      this.#relHeld++;
      this.#relHeldBytes += bytes;
      this.#held.push({
        channel: d.channel,
        header: d.header,
        payload: d.payload,
        seq,
        receivedAt: now,
        reliable: true,
        bytes,
      });
      return;
    }
    const rx = d.channel === LinkChannel.Realtime ? this.realtimeIn : this.bestEffortIn;
    const seq = rx.onData(now, d, this.rtt.srttOr(this.config.realtimeHistoryMs), (seqs) => {
      this.#emit({ _tag: "RealtimeNack", peerIncarnation: this.#peerInc, seqs });
    });
    if (seq === undefined) return;
    const c = this.config;
    if (this.#unrelHeld >= c.recvBufferPackets || this.#unrelHeldBytes + bytes > c.recvBufferBytes) {
      this.stats.deliveriesDropped++;
      return;
    }
    this.#unrelHeld++;
    this.#unrelHeldBytes += bytes;
    this.#held.push({
      channel: d.channel,
      header: d.header,
      payload: d.payload,
      seq,
      receivedAt: now,
      reliable: false,
      bytes,
    });
  }

  /** A nonce we issued recently: the current one or the one before. */
  #echoes(h: Hello, goodbye: boolean): boolean {
    // A Goodbye carries no nonce of its own: a hello with the Goodbye bit flipped is not one.
    if (goodbye && h.nonce !== 0) return false;
    return h.nonceEcho !== 0 && (h.nonceEcho === this.#nonce || h.nonceEcho === this.#prevNonce);
    // (#prevNonce is 0 right after a nonce is spent, and 0 never matches.)
  }

  #drawNonce(): number {
    let n: number;
    do n = this.#rng.uint32() >>> 0;
    while (n === 0 || n === this.#nonce);
    return n;
  }

  /** A fresh nonce every dead timeout (an echo stays valid for one to two of them), or `force`. */
  #rotateNonce(now: number, force = false): void {
    if (!force && now < this.#nonceAt + this.config.deadTimeoutMs) return;
    this.#prevNonce = this.#nonce;
    this.#nonce = this.#drawNonce();
    this.#nonceAt = now;
  }

  /**
   * A hello from an unproven incarnation `inc` of the peer. It proves the incarnation when it
   * echoes our nonce: adopted (a restart when another one was proven), and true. Otherwise the
   * peer is challenged with a hello echoing its nonce (rate-limited), and false.
   */
  #prove(now: number, inc: number, h: Hello): boolean {
    if ((h.flags & HelloFlag.Goodbye) !== 0) return false;
    if (h.nonce !== 0) this.#candNonce = h.nonce;
    if (!this.#echoes(h, false)) {
      this.#challenge(now, this.#candNonce);
      return false;
    }
    if (this.#peerInc !== 0) this.#restart(now, inc);
    else {
      this.#peerInc = inc;
      this.#startReliable();
    }
    this.#peerNonce = h.nonce;
    this.#candNonce = 0;
    // The echoed nonce is spent: a copy of this hello proves nothing later.
    this.#rotateNonce(now, true);
    this.#prevNonce = 0;
    return true;
  }

  /** An immediate hello echoing `echo`, at most one per `challengeIntervalMs`. */
  #challenge(now: number, echo: number): void {
    if (now < this.#challengeAt + this.config.challengeIntervalMs) return;
    this.#challengeAt = now;
    this.stats.challenges++;
    this.#sendHello(now, 0, echo);
  }

  #onHello(now: number, h: Hello): void {
    if (h.nonce !== 0) this.#peerNonce = h.nonce;
    // The peer has not proven us (a restart of ours, or first contact): answer now, not at the
    // next hello, so the handshake takes round trips rather than hello intervals.
    if (h.peerIncarnation !== this.incarnation && (h.flags & HelloFlag.Goodbye) === 0)
      this.#challenge(now, this.#peerNonce);
    this.#peerHelloTs = h.ts;
    this.#peerHelloAt = now;
    this.#lossOut = h.lossIn / 65535;
    if ((h.flags & HelloFlag.Goodbye) !== 0) {
      this.#goodbye(now);
      return;
    }
    this.#meterHello(h.seq);
    if (h.peerIncarnation === this.incarnation) {
      // `echoDelay` is how long the peer has gone without hearing one of our hellos. A dead
      // timeout of it means our direction is broken although theirs works (a one-way failure):
      // the link is down for both ends, so neither routes over it (issue 11).
      if (h.echoDelay !== NO_ECHO && h.echoDelay / 1000 >= this.config.deadTimeoutMs) {
        this.#confirm = 0;
        this.stats.oneWay++;
        if (this.#state === "up") {
          this.#state = "down";
          this.stats.downs++;
          this.#holdUntil = now + this.config.holdDownMs;
          this.#event({ type: "down", at: now, reason: "oneway" });
        }
        return;
      }
      if (h.echoDelay !== NO_ECHO) {
        const sample = elapsedMs(now, h.echoTs) - h.echoDelay / 1000;
        if (sample > 0 && sample < 60_000) {
          this.rtt.sample(sample);
          this.#rotatePath(now);
          if (sample < this.#pathMinCur) this.#pathMinCur = sample;
          // Clean: nothing of ours was sent for two of its round trips, so no data of ours sent
          // before the hello can still have been queued ahead of it (one round trip is not
          // enough: data sent just before the hello waits in the same bottleneck queue).
          if (now - this.#lastDataAt > 2 * sample) this.#pathCleanCur = true;
        }
      }
      this.#confirm++;
    } else {
      this.#confirm = 0;
    }
    if (
      this.#state === "down" &&
      this.#confirm >= this.config.upAfterHellos &&
      now >= this.#holdUntil &&
      this.rtt.hasSample
    ) {
      this.#state = "up";
      this.stats.ups++;
      this.#event({ type: "up", at: now });
    }
  }

  /**
   * Counts one hello of the peer in the loss meter: hellos flow whether or not data does, so the
   * loss estimate keeps decaying towards the current loss on an idle link. A gap longer than a dead
   * timeout's worth of hellos was an outage (the link went down), not a loss rate: the meter
   * restarts there. Old or duplicate hellos are not counted.
   */
  #meterHello(seq: number): void {
    const last = this.#peerHelloSeq;
    if (last === undefined) {
      this.#peerHelloSeq = seq;
      this.#helloExpected++;
      this.#helloReceived++;
      return;
    }
    const gap = (seq - last) >>> 0;
    if (gap === 0 || gap >= 0x80000000) return;
    this.#peerHelloSeq = seq;
    this.#helloReceived++;
    const outage = Math.ceil(this.config.deadTimeoutMs / this.config.helloIntervalMs);
    this.#helloExpected += gap > outage ? 1 : gap;
  }

  #retire(inc: number): void {
    this.#retired.push(inc);
    if (this.#retired.length > RETIRED_KEEP) this.#retired.shift();
  }

  /** The first sequence number of the reliable channel from `sender` to `receiver` (incarnations). */
  #isn(sender: number, receiver: number): number {
    const fixed = this.config.initialSequence;
    if (fixed !== undefined) return fixed;
    let h = Math.imul(sender ^ 0x9e3779b9, 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13) ^ receiver, 0xc2b2ae35);
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    return (h ^ (h >>> 13)) >>> 0;
  }

  /** Starts both reliable directions at their ISNs for the current peer incarnation (channels idle). */
  #startReliable(): number {
    const discarded = this.reliable.reset(this.#isn(this.incarnation, this.#peerInc));
    this.reliableIn.reset(this.#isn(this.#peerInc, this.incarnation));
    return discarded;
  }

  #resetChannels(): number {
    const discarded = this.#startReliable();
    this.realtime.reset();
    this.realtimeIn.reset();
    this.bestEffort.reset();
    this.bestEffortIn.reset();
    this.#meterExpected = 0;
    this.#meterOriginals = 0;
    this.#helloExpected = 0;
    this.#helloReceived = 0;
    this.#peerHelloSeq = undefined;
    this.#confirm = 0;
    this.#peerHelloTs = undefined;
    // Packets already received stay deliverable: they were accepted exactly once.
    return discarded;
  }

  #restart(now: number, inc: number): void {
    const old = this.#peerInc;
    this.#retire(old);
    this.#peerInc = inc;
    const discarded = this.#resetChannels();
    this.stats.restarts++;
    if (this.#state === "up") {
      this.#state = "down";
      this.stats.downs++;
      this.#event({ type: "down", at: now, reason: "restart" });
    }
    this.#event({ type: "restart", at: now, oldIncarnation: old, newIncarnation: inc, discarded });
  }

  #goodbye(now: number): void {
    // Not retired: the same incarnation may prove itself again (a Goodbye altered on the path
    // costs an outage of a handshake, not the link). The spent nonce is replaced.
    this.#peerInc = 0;
    this.#peerNonce = 0;
    this.#rotateNonce(now, true);
    this.#prevNonce = 0;
    this.#resetChannels();
    if (this.#state === "up") {
      this.#state = "down";
      this.stats.downs++;
      this.#event({ type: "down", at: now, reason: "goodbye" });
    }
  }

  /** Offers a packet to a channel. See `SendResult`. */
  send(
    channel: LinkChannel,
    header: OverlayHeader,
    payload: Uint8Array,
    now: number,
    flow?: FlowKey,
  ): SendResult {
    if (channel !== 0 && channel !== 1 && channel !== 2)
      throw new RangeError(`unknown channel ${String(channel)}`);
    if (!(payload instanceof Uint8Array)) throw new TypeError("payload must be a Uint8Array");
    if (typeof header !== "object" || header === null) throw new TypeError("header must be an OverlayHeader");
    this.#tick(now);
    const size = DATA_OVERHEAD_BYTES + payload.length;
    if (size > this.config.mtu) return SendResult.TooBig;
    if (this.#state !== "up") return SendResult.Down;
    this.#lastDataAt = now;
    if (channel === LinkChannel.Reliable) {
      if (!this.reliable.accept(flow ?? flowKeyOf(header), header, payload)) return SendResult.WouldBlock;
      this.#afterInput(now);
      return SendResult.Ok;
    }
    if (this.#cap && !this.#cap.canSpend(now, size)) return SendResult.WouldBlock;
    this.#cap?.spend(now, size);
    const tx = channel === LinkChannel.Realtime ? this.realtime : this.bestEffort;
    this.#emit(tx.send(now, this.#peerInc, header, payload));
    return SendResult.Ok;
  }

  /**
   * The number of TCP flows the reliable channel's window emulates (MulTCP, docs/congestion.md):
   * by default the active flows the link counts from the flow keys of what it sends, capped at
   * `maxEmulatedFlows`. `setFlowCount(n)` imposes n (1 to 256) instead, undefined goes back to the
   * count. CUBIC and the rate mode stay at 1.
   */
  get flowCount(): number {
    return this.reliable.flowCount;
  }
  setFlowCount(n: number | undefined): void {
    this.reliable.setFlowCount(n);
  }

  /** Whether `send` on the reliable channel would accept a packet of this payload size now. */
  canSend(payloadBytes: number, flow: FlowKey): boolean {
    return this.#state === "up" && this.reliable.canAccept(flow, DATA_OVERHEAD_BYTES + payloadBytes);
  }

  /**
   * Offers each held delivery to `take`, oldest first; those it accepts (returns true) are removed.
   * A packet it refuses stays held (back-pressure: the receive credit shrinks) and is offered again
   * next time. Returns how many were taken.
   */
  consumeDeliveries(now: number, take: (d: Delivery) => boolean): number {
    this.#tick(now);
    const held = this.#held;
    const n = held.length;
    // Not re-entered (from `take`): the outer call is offering these very packets.
    if (n === 0 || this.#consuming) return 0;
    // The n packets held now are taken off the front one by one while `take` runs (it may send on
    // this link, and packets arriving meanwhile are pushed behind them); those refused go back to
    // the front afterwards, in order, ahead of the arrivals.
    this.#consuming = true;
    let keep: Held[] | undefined;
    let taken = 0;
    let relFreed = false;
    try {
      for (let i = 0; i < n; i++) {
        const d = held.shift() as Held;
        if (take(d)) {
          taken++;
          if (d.reliable) {
            this.#relHeld--;
            this.#relHeldBytes -= d.bytes;
            relFreed = true;
          } else {
            this.#unrelHeld--;
            this.#unrelHeldBytes -= d.bytes;
          }
        } else if (keep === undefined) keep = [d];
        else keep.push(d);
      }
    } finally {
      // Refused packets (and any not offered, if `take` threw) stay ahead of those that arrived
      // while `take` ran.
      if (keep !== undefined) for (let i = keep.length - 1; i >= 0; i--) held.unshift(keep[i] as Held);
      this.#consuming = false;
    }
    if (relFreed && this.reliableIn.everReceived) {
      // A window update when the credit the sender knows of is nearly used up.
      const before = this.reliableIn.lastAdvertised;
      const after = this.reliableIn.limit(this.#relFree());
      if (
        after > before &&
        before - this.reliableIn.highest <= Math.max(1, this.config.recvBufferPackets / 4)
      )
        this.reliableIn.requestAck(now);
      this.#afterInput(now);
    }
    return taken;
  }

  /** Timers: hellos, dead timeout, loss/RTO/pacing, delayed acks, metrics. */
  handleTimeout(now: number): void {
    this.#tick(now);
    const c = this.config;
    this.#rotateNonce(now);
    if (now >= this.#nextHelloAt) {
      this.#sendHello(now, 0, this.#peerNonce);
      this.#nextHelloAt += c.helloIntervalMs;
      if (this.#nextHelloAt <= now) this.#nextHelloAt = now + c.helloIntervalMs;
      if (this.reliableIn.everReceived) this.reliableIn.requestAck(now);
    }
    if (this.#state === "up" && now >= this.#lastHeard + c.deadTimeoutMs) {
      this.#state = "down";
      this.stats.downs++;
      this.#holdUntil = now + c.holdDownMs;
      this.#confirm = 0;
      this.#event({ type: "down", at: now, reason: "timeout" });
    }
    if (now >= this.#nextMetricsAt) {
      this.#nextMetricsAt = now + c.metricsIntervalMs;
      this.#event({ type: "metrics", at: now, ...this.metrics() });
    }
    this.reliable.onTimeout(now);
    this.#afterInput(now, true);
  }

  #sendHello(now: number, flags: number, echoNonce: number): void {
    // Fold the packets (data and the peer's hellos) expected and received since the last hello
    // into the loss estimate.
    const exp =
      this.reliableIn.expected + this.realtimeIn.expected + this.bestEffortIn.expected + this.#helloExpected;
    const orig =
      this.reliableIn.originals +
      this.realtimeIn.originals +
      this.bestEffortIn.originals +
      this.#helloReceived;
    const dE = exp - this.#meterExpected;
    const dO = orig - this.#meterOriginals;
    this.#meterExpected = exp;
    this.#meterOriginals = orig;
    if (dE > 0) {
      const a = 1 - (1 - this.config.lossEwmaAlpha) ** dE;
      this.#lossIn = (1 - a) * this.#lossIn + a * Math.min(1, Math.max(0, (dE - dO) / dE));
    }
    const echo = this.#peerHelloTs;
    this.#emit({
      _tag: "Hello",
      peerIncarnation: this.#peerInc,
      seq: this.#helloSeq++ % 0x100000000,
      ts: tsUs(now),
      echoTs: echo ?? 0,
      echoDelay:
        echo === undefined ? NO_ECHO : Math.min(NO_ECHO - 1, Math.round((now - this.#peerHelloAt) * 1000)),
      nonce: (flags & HelloFlag.Goodbye) !== 0 ? 0 : this.#nonce,
      nonceEcho: echoNonce,
      lossIn: Math.round(this.#lossIn * 65535),
      flags,
    });
  }

  /** Announces a shutdown to the neighbour (a Hello with the Goodbye flag); the link goes down. */
  close(now: number): void {
    this.#tick(now);
    this.#sendHello(now, HelloFlag.Goodbye, this.#peerNonce);
    if (this.#state === "up") {
      this.#state = "down";
      this.stats.downs++;
      this.#event({ type: "down", at: now, reason: "goodbye" });
    }
  }

  /**
   * After any input: send what the reliable sender may, and a due ack. With `ackCoalescing`, an
   * ack due during frame or application input waits for the timer (`nextDeadline` is then `now`),
   * which a driver runs after the rest of the batch of input it is handling, so one ack covers
   * the batch.
   */
  #afterInput(now: number, timer = false): void {
    if (this.#state === "up") this.reliable.pump(now, this.#peerInc, this.#emitData);
    const at = this.reliableIn.ackAt;
    if (at !== undefined && now >= at && this.#peerInc !== 0 && (timer || !this.config.ackCoalescing))
      this.#emit(this.reliableIn.makeAck(now, this.#peerInc, this.#relFree()));
    if (!this.reliable.writablePending) return;
    const w = this.reliable.takeWritable();
    for (const flow of w.flows) this.#event({ type: "writable", at: now, flow });
    if (w.link) this.#event({ type: "writable", at: now });
  }

  #tick(now: number): void {
    if (typeof now !== "number" || Number.isNaN(now))
      throw new TypeError(`now must be a number, got ${String(now)}`);
    if (now < this.#now) throw new RangeError(`time went backwards: ${this.#now} -> ${now}`);
    this.#now = now;
  }

  /**
   * The earliest time `handleTimeout` must be called (the shared verb; docs/drivers.md). Never
   * undefined: a link always has a hello due.
   */
  nextDeadline(): number {
    let t = Math.min(this.#nextHelloAt, this.#nextMetricsAt);
    if (this.#state === "up") t = Math.min(t, this.#lastHeard + this.config.deadTimeoutMs);
    const s = this.reliable.nextTimeout();
    if (s !== undefined && s < t) t = s;
    const a = this.reliableIn.ackAt;
    if (a !== undefined && a < t && this.#peerInc !== 0) t = a;
    return t;
  }

  /** True when frames or events are waiting to be taken. */
  get hasOutput(): boolean {
    return this.#transmits.length > 0 || this.#events.length > 0;
  }
  /** True when frames are waiting to be taken. */
  get hasTransmits(): boolean {
    return this.#transmits.length > 0;
  }
  /** True when events are waiting to be taken. */
  get hasEvents(): boolean {
    return this.#events.length > 0;
  }

  /** Frames to send to the neighbour, in order; the caller sends them all. */
  takeTransmits(): Uint8Array[] {
    const t: Uint8Array[] = [];
    for (let b = this.#transmits.shift(); b !== undefined; b = this.#transmits.shift()) t.push(b);
    return t;
  }

  /** The next frame to send to the neighbour (`takeTransmits` one at a time, no array). */
  takeTransmit(): Uint8Array | undefined {
    return this.#transmits.shift();
  }

  takeEvents(): LinkEvent[] {
    const e = this.#events;
    this.#events = [];
    return e;
  }
}
