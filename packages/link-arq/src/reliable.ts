import {
  type CongestionController,
  createController,
  DrrScheduler,
  FlowCounter,
  type FlowKey,
  TokenBucket,
} from "@spines-ts/congestion";
import { Deque, type RtoBounds, type RttEstimator, unwrap32, wrap32 } from "@spines-ts/primitives";
import {
  type LinkAck,
  LinkChannel,
  type LinkData,
  LinkDataFlag,
  MAX_ACK_RANGES,
  type OverlayHeader,
  type SackRange,
} from "@spines-ts/wire";
import { DATA_OVERHEAD_BYTES, type LinkConfig } from "./config.ts";
import { elapsedMs, tsUs } from "./seq.ts";

const INFLIGHT = 0;
const LOST = 1;
const ACKED = 2;

/**
 * A packet from `accept` on: queued (DRR) with `seq` -1, then sent and unacknowledged. One record
 * per packet for its whole life: the queue holds it as its item (issue 10: the queued record, the
 * sent record and the transmission-order entry were three objects per forwarded packet).
 */
interface SentPacket {
  seq: number;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
  /** Frame bytes on the wire. */
  readonly size: number;
  sentAt: number;
  /**
   * Sent at least LONE_GAP_FACTOR·maxAckDelay after the previous transmission, so it reaches the
   * receiver after a gap and is acked at once (`ReliableReceiver.onData`), not after the ack delay.
   */
  lone: boolean;
  txNum: number;
  txCount: number;
  state: number;
  /** Declared lost by the ack-driven detector (not by a timeout) since its last transmission. */
  fastLost: boolean;
  /**
   * Resent by the loss probe: the send time of the transmission it presumed lost (the loss counts
   * for congestion only once the resend's ack shows the original never arrived).
   */
  probedSentAt: number | undefined;
}

/** Writable notifications, as `takeWritable` returns them. */
export interface Writable {
  link: boolean;
  readonly flows: FlowKey[];
}

export interface ReliableSenderStats {
  sent: number;
  retransmitted: number;
  lostDetected: number;
  rtoFired: number;
  acked: number;
  spurious: number;
  badAcks: number;
  /** Timeouts found spurious (an ack for data sent before the timeout) and undone. */
  rtoUndone: number;
  /** Loss probes fired (packets resent because their ack was overdue; see `#armProbe`). */
  probes: number;
  /** Probes whose packet had arrived after all (the ack answered the original). */
  probesSpurious: number;
  /**
   * Acks showing that a packet the detector had declared lost had arrived after all, so the link
   * reorders (the first one ends the zero reordering window and the loss probe for good).
   */
  reorderings: number;
}

/** Slack (ms) when comparing an echoed µs timestamp with a send time. */
const TS_SLACK_MS = 0.002;

/**
 * A window counts as validated (RFC 7661), and may grow, while at least 1/VALIDATED_SHARE of it is
 * in flight when the sender runs out of data.
 */
const VALIDATED_SHARE = 4;

/** Milliseconds of the pacing rate a paced sender may send at once (its token bucket's depth). */
export const PACING_BURST_MS = 4;

/** Margin (ms) of the loss probe beyond the expected ack time, at least (else 2·RTTVAR). */
const PROBE_MARGIN_MS = 1;

/**
 * A frame arriving at least this many maxAckDelays after the previous one is lone: the receiver
 * acks it at once. At 1× (2 ms), a bulk flow sharing a drop-tail bottleneck (packets 2-4 ms apart)
 * got its first packet of each pair acked alone and lost more at the queue (netsim,
 * test/multcp.netsim.test.ts: 1.4 -> 2.0 % of its packets, its share 0.66-0.74 -> 0.54 of a fair
 * one); at 2× it is unchanged, and 100 messages/s (10 ms apart) is still lone.
 */
const RECEIVER_LONE_GAP = 2;

/**
 * A packet sent at least this many maxAckDelays after the previous one is lone for the sender's
 * loss probe (expects its ack at once): one maxAckDelay more than the receiver's rule, so a lone
 * packet is still lone at the receiver when the path's jitter shortens the gap by that much.
 */
const LONE_GAP_FACTOR = RECEIVER_LONE_GAP + 1;

/**
 * The sending half of the reliable channel: selective repeat with SACK, RACK/QUIC-style loss
 * detection (packet threshold and 9/8·RTT time threshold), an RFC 6298 RTO with a ms floor and
 * exponential back-off, a window controller, pacing, and a bounded send buffer shared fairly by
 * flows (DRR). Transmission order = retransmissions first, then new packets in DRR order.
 */
export class ReliableSender {
  readonly #cfg: LinkConfig;
  readonly #rtt: RttEstimator;
  readonly cc: CongestionController;
  readonly #queue: DrrScheduler<SentPacket>;
  /** Active-flow count for the N-flow (MulTCP) window; undefined when off (`maxEmulatedFlows` 1, not NewReno). */
  readonly #flowCounter: FlowCounter | undefined;
  /** A flow count set by the owner (`setFlowCount`), overriding the counted one. */
  #fixedFlows: number | undefined;
  /**
   * Unacknowledged packets by sequence number: a ring of a power of two >= `recvWindowPackets`
   * slots, slot `seq & mask` (everything unacknowledged lies in [sndUna, nextSeq), which `pump`
   * keeps shorter than the receive window). Was a Map, whose growing and shrinking with the
   * window (rehashes on set and delete) allocated about 200 bytes per forwarded packet (issue 10).
   */
  readonly #unacked: (SentPacket | undefined)[];
  readonly #mask: number;
  #unackedCount = 0;
  /**
   * Transmission order: each transmission's packet and its transmission number (`txNum` then), in
   * two parallel rings (not an entry object per transmission); an entry is stale once its packet
   * was acked, declared lost or sent again.
   */
  readonly #order = new Deque<SentPacket>(64);
  readonly #orderTx = new Deque<number>(64);
  /** The one LinkData message `pump` fills for each frame it emits (encoded at once by the link). */
  readonly #out: {
    _tag: "LinkData";
    peerIncarnation: number;
    channel: LinkChannel;
    flags: number;
    seq: number;
    ts: number;
    header: OverlayHeader;
    payload: Uint8Array;
  };
  /** The RTO's bounds from the config (one object, not one per transmission). */
  readonly #rtoBounds: RtoBounds;
  /** `onAck`'s unwrapped SACK ranges: start, end, start, end... */
  #rangeBuf = new Float64Array(2 * MAX_ACK_RANGES);
  /** What `takeWritable` returns, reused. */
  readonly #writable: Writable = { link: false, flows: [] };
  readonly #retx = new Deque<SentPacket>();
  readonly #pacer: TokenBucket | undefined;
  readonly #cap: TokenBucket | undefined;
  #unackedBytes = 0;
  #nextSeq = 0;
  #sndUna = 0;
  #peerLimit: number;
  #txCounter = 0;
  #bytesInFlight = 0;
  #largestAckedTx = -1;
  /** Transmission number of the latest packet declared lost by the detector (runs of drops). */
  #lastLossTx = -2;
  /** When the last reliable frame was sent. */
  #lastTxAt = Number.NEGATIVE_INFINITY;
  /**
   * The ack delay the peer reports for lone packets (ms, in [0, maxAckDelay]): it jumps up to a
   * larger report and decays by a quarter of the difference per smaller one. Starts at maxAckDelay,
   * the delay of a peer that does not ack lone packets at once.
   */
  #loneAckDelay: number;
  /** Set by `#ackOne` when the ack being processed echoes a lone packet. */
  #triggerLone = false;
  #backoff = 1;
  #rtoAt: number | undefined;
  /** When the last timeout fired, while it may still be proven spurious (no ack since). */
  #rtoUndoAt: number | undefined;
  #lossAt: number | undefined;
  #paceAt: number | undefined;
  /** When the oldest packet in flight is presumed lost by the loss probe (`#armProbe`). */
  #probeAt: number | undefined;
  /** A probe fired since the last ack of new data (one per ack; the RTO covers a lost probe). */
  #probeSpent = false;
  #appLimited = true;
  /**
   * Whether this link has shown reordering: an ack for a packet the detector had declared lost.
   * Until then a packet is lost as soon as one sent after it is acked (RACK with a zero
   * reordering window, RFC 8985 §6.2): a link is one path, first in, first out, and waiting the
   * usual 1/8 RTT or three packets on top of the round trip cost every recovery 2-3 ms (issue 10).
   */
  #reorderSeen = false;
  /** The last pump ran out of data (the window was not what stopped it). */
  #outOfData = true;
  #wantWritable = false;
  readonly #blockedFlows = new Set<FlowKey>();
  readonly stats: ReliableSenderStats = {
    sent: 0,
    retransmitted: 0,
    lostDetected: 0,
    rtoFired: 0,
    acked: 0,
    spurious: 0,
    badAcks: 0,
    rtoUndone: 0,
    probes: 0,
    probesSpurious: 0,
    reorderings: 0,
  };

  constructor(cfg: LinkConfig, rtt: RttEstimator, cap: TokenBucket | undefined, now: number) {
    this.#cfg = cfg;
    this.#rtt = rtt;
    this.cc = createController(cfg.congestion, cfg.mtu);
    this.#queue = new DrrScheduler<SentPacket>({
      quantum: cfg.mtu,
      maxPackets: cfg.sendBufferPackets,
      maxBytes: cfg.sendBufferBytes,
      maxPacketsPerFlow: cfg.perFlowPackets,
      maxFlows: cfg.maxFlows,
    });
    this.#rtoBounds = {
      minMs: cfg.minRtoMs,
      maxMs: cfg.maxRtoMs,
      initialMs: cfg.initialRtoMs,
      extraMs: cfg.maxAckDelayMs,
    };
    let slots = 16;
    while (slots < cfg.recvWindowPackets) slots *= 2;
    this.#unacked = new Array<SentPacket | undefined>(slots).fill(undefined);
    this.#mask = slots - 1;
    this.#out = {
      _tag: "LinkData",
      peerIncarnation: 0,
      channel: LinkChannel.Reliable,
      flags: 0,
      seq: 0,
      ts: 0,
      header: { src: 0, srcPort: 0, dst: 0, dstPort: 0, dstKind: 0, ttl: 0 },
      payload: new Uint8Array(0),
    };
    // Until the first ack, assume the peer's receive buffer is like ours.
    this.#peerLimit = ReliableSender.#initialLimit(cfg);
    this.#loneAckDelay = cfg.maxAckDelayMs;
    // BBR's rate is its pacing: it is always paced, like the rate-capped mode.
    const paced = cfg.pacing || this.cc.name === "rate" || this.cc.name === "bbr";
    this.#pacer = paced ? new TokenBucket(this.cc.pacingRate(100), 2 * cfg.mtu, now) : undefined;
    this.#cap = cap;
    this.#flowCounter =
      cfg.maxEmulatedFlows > 1 && this.cc.name === "newreno"
        ? new FlowCounter({ max: cfg.maxEmulatedFlows, periodMs: cfg.flowCountPeriodMs })
        : undefined;
  }

  /** The number of TCP flows the window emulates now (1 unless the N-flow mode is on). */
  get flowCount(): number {
    return this.cc.flowCount;
  }

  /** The active-flow count measured from the packets sent (1 when the N-flow mode is off). */
  get countedFlows(): number {
    return this.#flowCounter?.count ?? 1;
  }

  /**
   * Makes the window emulate `n` TCP flows whatever the link counts (an owner that knows better),
   * or, with undefined, goes back to the counted number. Throws RangeError outside [1, 256].
   */
  setFlowCount(n: number | undefined): void {
    this.cc.setFlowCount(n ?? this.countedFlows);
    this.#fixedFlows = n;
  }

  static #initialLimit(cfg: LinkConfig): number {
    return Math.min(cfg.recvWindowPackets, cfg.recvBufferPackets, Math.floor(cfg.recvBufferBytes / cfg.mtu));
  }

  /** Packets held (queued + unacknowledged). */
  get bufferedPackets(): number {
    return this.#queue.packets + this.#unackedCount;
  }
  get bufferedBytes(): number {
    return this.#queue.bytes + this.#unackedBytes;
  }
  get queuedPackets(): number {
    return this.#queue.packets;
  }
  /** Packets of `flow` queued and not yet sent. */
  queuedFor(flow: FlowKey): number {
    return this.#queue.flowPackets(flow);
  }
  get unackedPackets(): number {
    return this.#unackedCount;
  }
  get bytesInFlight(): number {
    return this.#bytesInFlight;
  }
  get nextSeq(): number {
    return this.#nextSeq;
  }
  get sndUna(): number {
    return this.#sndUna;
  }
  /** True when nothing is queued or unacknowledged. */
  get idle(): boolean {
    return this.#queue.packets === 0 && this.#unackedCount === 0;
  }

  #rto(): number {
    const base = this.#rtt.rto(0, this.#rtoBounds);
    return Math.min(this.#cfg.maxRtoMs, base * this.#backoff);
  }

  /** Whether a packet of `size` frame bytes for `flow` would be accepted now. */
  canAccept(flow: FlowKey, size: number): boolean {
    if (this.bufferedPackets >= this.#cfg.sendBufferPackets) return false;
    if (this.bufferedBytes + size > this.#cfg.sendBufferBytes) return false;
    return this.#queue.refusal(flow, size) === undefined;
  }

  /** Queues a packet; false (would-block) when a bound is reached. */
  accept(flow: FlowKey, header: OverlayHeader, payload: Uint8Array): boolean {
    const size = DATA_OVERHEAD_BYTES + payload.length;
    // `canAccept`, with the queue's own check done by `enqueue` (not twice per packet).
    if (
      this.bufferedPackets >= this.#cfg.sendBufferPackets ||
      this.bufferedBytes + size > this.#cfg.sendBufferBytes ||
      !this.#queue.enqueue(
        flow,
        {
          seq: -1,
          header,
          payload,
          size,
          sentAt: 0,
          lone: false,
          txNum: 0,
          txCount: 0,
          state: INFLIGHT,
          fastLost: false,
          probedSentAt: undefined,
        },
        size,
      )
    ) {
      this.#wantWritable = true;
      if (this.#queue.refusal(flow, size) === "flow-packets" && this.#blockedFlows.size < this.#cfg.maxFlows)
        this.#blockedFlows.add(flow);
      return false;
    }
    return true;
  }

  /** The unacknowledged packet `seq`, if any. */
  #unackedAt(seq: number): SentPacket | undefined {
    if (seq < this.#sndUna || seq >= this.#nextSeq) return undefined;
    const p = this.#unacked[seq & this.#mask];
    return p !== undefined && p.seq === seq ? p : undefined;
  }

  /** Whether `takeWritable` has anything to say (a cheap test before calling it). */
  get writablePending(): boolean {
    return this.#wantWritable || this.#blockedFlows.size > 0;
  }

  /**
   * Writable notifications due: the whole link when the buffer fell to 3/4 of its bounds after a
   * refusal, and single flows whose per-flow queue has room again. The object returned is reused:
   * read it before the next call.
   */
  takeWritable(): Writable {
    const w = this.#writable;
    const flows = w.flows;
    flows.length = 0;
    w.link = false;
    if (!this.writablePending) return w;
    for (const f of this.#blockedFlows) {
      if (this.#queue.flowPackets(f) < this.#cfg.perFlowPackets) {
        flows.push(f);
        this.#blockedFlows.delete(f);
      }
    }
    let link = false;
    if (
      this.#wantWritable &&
      this.bufferedPackets <= (this.#cfg.sendBufferPackets * 3) / 4 &&
      this.bufferedBytes <= (this.#cfg.sendBufferBytes * 3) / 4
    ) {
      this.#wantWritable = false;
      link = true;
    }
    w.link = link;
    return w;
  }

  /**
   * Sends what the window, the peer's credit, pacing and the rate cap allow. `emit` gets each
   * LinkData message, one reused object: encode it (or copy it) before returning. Returns the
   * number of frames produced.
   */
  pump(now: number, peerIncarnation: number, emit: (m: LinkData) => void): number {
    let n = 0;
    const srtt = this.#rtt.srttOr(this.#cfg.initialRtoMs / 3);
    if (this.#pacer) {
      const rate = this.cc.pacingRate(srtt);
      // The bucket holds PACING_BURST_MS of the rate: a sender woken late (a loaded event loop)
      // catches up that much at once instead of two packets per wake-up (issue 10).
      this.#pacer.configure(
        rate,
        Math.max(2 * this.#cfg.mtu, Math.min(this.cc.cwnd, rate * PACING_BURST_MS)),
        now,
      );
    }
    this.#paceAt = undefined;
    for (;;) {
      let p = this.#retx.peek();
      while (p !== undefined && p.state !== LOST) {
        this.#retx.shift();
        p = this.#retx.peek();
      }
      const isNew = p === undefined;
      const size = p ? p.size : this.#queue.peekBytes();
      if (size === undefined) {
        // Out of data. RFC 7661 (new CWV): the window counts as validated, and may keep growing,
        // while at least half of it is in use; only a sender using less is application-limited.
        // A steady low-rate flow (100 messages/s needs ~2 packets per 20 ms round trip) would
        // otherwise hold its window right at what it uses, and every loss halving would queue
        // its next messages behind the window (issue 10: 15-20 ms per hop at 5 % loss).
        this.#appLimited = VALIDATED_SHARE * this.#bytesInFlight < this.cc.cwnd;
        this.#outOfData = true;
        break;
      }
      this.#outOfData = false;
      if (this.#bytesInFlight > 0 && this.#bytesInFlight + size > this.cc.cwnd) {
        this.#appLimited = false;
        break;
      }
      if (isNew) {
        if (this.#nextSeq >= this.#peerLimit) break;
        if (this.#nextSeq - this.#sndUna >= this.#cfg.recvWindowPackets) break;
      }
      if (this.#pacer && !this.#pacer.canSpend(now, size)) {
        this.#paceAt = this.#pacer.nextTime(now, size);
        this.#appLimited = false;
        break;
      }
      if (this.#cap && !this.#cap.canSpend(now, size)) {
        this.#paceAt = this.#cap.nextTime(now, size);
        this.#appLimited = false;
        break;
      }
      if (p === undefined) {
        const q = this.#queue.dequeue();
        if (q === undefined) break;
        p = q.item;
        p.seq = this.#nextSeq++;
        this.#unacked[p.seq & this.#mask] = p;
        this.#unackedCount++;
        this.#unackedBytes += p.size;
        if (this.#flowCounter?.record(now, q.key, q.bytes) && this.#fixedFlows === undefined)
          this.cc.setFlowCount(this.#flowCounter.count);
      } else {
        this.#retx.shift();
        this.stats.retransmitted++;
      }
      p.state = INFLIGHT;
      p.lone = now - this.#lastTxAt >= LONE_GAP_FACTOR * this.#cfg.maxAckDelayMs;
      this.#lastTxAt = now;
      p.sentAt = now;
      p.txNum = ++this.#txCounter;
      p.txCount++;
      this.#bytesInFlight += p.size;
      this.#order.push(p);
      this.#orderTx.push(p.txNum);
      this.#pacer?.spend(now, p.size);
      this.#cap?.spend(now, p.size);
      // The timeout runs from the latest transmission (as QUIC's PTO, RFC 9002 §6.2.1, and the
      // TLP timer of RFC 8985), not only from the latest ack: a sender that transmits every few
      // ms gets its next ack one sending interval after a lost packet or ack, and an RTO of
      // SRTT + 4·RTTVAR armed at the last ack (a few ms over the RTT on a steady path) fired
      // before that ack could come (issue 10: 10-23 timeouts per link in 10 s at 100 messages/s
      // and 5 % loss, each collapsing the window). A dead link still times out: sending stops
      // when the window is full, or the link's hello timeout takes it down.
      this.#rtoAt = Math.max(this.#rtoAt ?? 0, now + this.#rto());
      this.stats.sent++;
      n++;
      const m = this.#out;
      m.peerIncarnation = peerIncarnation;
      m.flags = p.txCount > 1 ? LinkDataFlag.Retransmission : 0;
      m.seq = wrap32(p.seq);
      m.ts = tsUs(now);
      m.header = p.header;
      m.payload = p.payload;
      emit(m);
    }
    this.#armProbe();
    return n;
  }

  /**
   * Loss probe for an application-limited sender (after RACK-TLP, RFC 8985 §7, made as quick as a
   * FIFO link allows). The ack-driven detector finds a loss when a later packet's ack comes, so a
   * sender with one packet every 10 ms (100 messages/s) found each loss 10 ms after the ack was
   * due, half again the round trip a recovery should cost (issue 10). Instead, while the link has
   * shown no reordering and the sender has nothing queued, the oldest packet in flight is resent
   * (only it) when its ack is overdue: max(SRTT, latest RTT) + the peer's ack delay
   * + max(2·RTTVAR, 1 ms) after it was sent. The ack delay is maxAckDelay, except for a lone packet
   * (sent after a gap, see `LONE_GAP_FACTOR`), which the receiver acks at once: for it, the delay
   * the peer reports on such acks (about 0, or maxAckDelay from a peer that delays them).
   * Resending is not yet a congestion signal: the window is reduced when the resend's ack shows
   * the original was lost (its echo is the resend's), and not at all when the original's ack comes
   * (`probesSpurious`). One probe per ack of new data; a
   * lost probe is left to the RTO, which the resend re-arms.
   */
  #armProbe(): void {
    this.#probeAt = undefined;
    if (this.#reorderSeen || this.#probeSpent || !this.#outOfData || !this.#rtt.hasSample) return;
    for (;;) {
      const p = this.#order.peek();
      if (p === undefined) return;
      if (p.state !== INFLIGHT || p.txNum !== this.#orderTx.peek()) {
        this.#order.shift();
        this.#orderTx.shift();
        continue;
      }
      this.#probeAt = p.sentAt + this.#probeDelay(p);
      return;
    }
  }

  #probeDelay(p: SentPacket): number {
    const rtt = Math.max(this.#rtt.srttOr(0), this.#rtt.latest);
    const ackDelay = p.lone ? this.#loneAckDelay : this.#cfg.maxAckDelayMs;
    return rtt + ackDelay + Math.max(2 * this.#rtt.rttvar, PROBE_MARGIN_MS);
  }

  /**
   * The probe is due: the oldest packet in flight is resent (no window change). Only that one: a
   * stalled peer makes every ack overdue at once, and resending them all delayed new packets
   * behind a rate cap (netsim with event-loop lag, rate-capped 1,000/s at 5 %: p99 1.08 -> 1.18
   * of the model); if more were lost, the resend's ack reveals them.
   */
  #fireProbe(now: number): void {
    this.#probeAt = undefined;
    if (this.#probeSpent) return;
    for (let i = 0; i < this.#order.length; i++) {
      const p = this.#order.at(i) as SentPacket;
      if (p.state !== INFLIGHT || p.txNum !== this.#orderTx.at(i)) continue;
      if (p.sentAt + this.#probeDelay(p) > now + TS_SLACK_MS) return;
      this.#probeSpent = true;
      this.stats.probes++;
      p.probedSentAt = p.sentAt;
      this.#markLost(now, p, false);
      return;
    }
  }

  #ackOne(now: number, p: SentPacket, triggerSentAt: number): void {
    if (p.state === ACKED) return;
    if (p.lone && Math.abs(p.sentAt - triggerSentAt) <= TS_SLACK_MS) this.#triggerLone = true;
    if (p.state === INFLIGHT) this.#bytesInFlight -= p.size;
    else this.stats.spurious++;
    // Credit the transmission that was acked to the loss detector. A retransmitted packet was
    // acked by an earlier copy when the ack was triggered by a frame sent before the
    // retransmission (its echoed timestamp is older), or came sooner than a plausible round trip.
    const plausible =
      p.txCount === 1 ||
      (triggerSentAt >= p.sentAt - TS_SLACK_MS &&
        now - p.sentAt >= 0.8 * (Number.isFinite(this.#rtt.min) ? this.#rtt.min : 0));
    if (plausible && p.txNum > this.#largestAckedTx) this.#largestAckedTx = p.txNum;
    // The detector called it lost, yet the copy it had judged lost arrived: packets overtake
    // each other on this link, so from now on wait the full reordering allowance.
    if (p.fastLost === true && (p.state !== INFLIGHT || !plausible)) {
      this.#reorderSeen = true;
      this.stats.reorderings++;
    }
    if (p.probedSentAt !== undefined) {
      // A probe's resend acked by its own echo: the original was lost, a congestion signal now.
      if (plausible && p.txCount > 1)
        this.cc.onLoss(
          now,
          p.size,
          p.probedSentAt,
          this.#outOfData ? this.#bytesInFlight + p.size : undefined,
        );
      else this.stats.probesSpurious++;
      p.probedSentAt = undefined;
    }
    // A validated sender that runs out of data acks less than a window per round trip; credit
    // its acks as a window-limited sender's would be, so its window grows by the same one MSS per
    // round trip as Reno's (at most VALIDATED_SHARE times what it has in flight, the validation
    // bound), rather than by its own smaller ack count. Otherwise a steady flow at a third of its
    // share settles at a window just above its use, and each loss halving queues it (issue 10).
    const credit =
      this.#outOfData && !this.#appLimited
        ? p.size *
          Math.min(VALIDATED_SHARE, this.cc.cwnd / Math.max(this.#bytesInFlight + p.size, this.#cfg.mtu))
        : p.size;
    this.cc.onAck(now, credit, p.sentAt, this.#rtt.srttOr(this.#cfg.initialRtoMs), !this.#appLimited);
    p.state = ACKED;
    this.#unacked[p.seq & this.#mask] = undefined;
    this.#unackedCount--;
    this.#unackedBytes -= p.size;
    this.stats.acked++;
  }

  /** Processes an acknowledgement. Returns false if it was inconsistent (and ignored). */
  onAck(now: number, ack: LinkAck): boolean {
    const cum = unwrap32(ack.cumAck, this.#sndUna);
    // Full sequence numbers are never negative: a negative unwrapped ack is from no packet we sent.
    if (cum < 0 || cum > this.#nextSeq || cum < this.#sndUna - this.#cfg.recvWindowPackets) {
      this.stats.badAcks++;
      return false;
    }
    // The SACK ranges unwrapped, as start/end pairs in a reused buffer.
    const nr = ack.ranges.length;
    if (2 * nr > this.#rangeBuf.length) this.#rangeBuf = new Float64Array(2 * nr);
    const rb = this.#rangeBuf;
    for (let i = 0; i < nr; i++) {
      const g = ack.ranges[i] as SackRange;
      const s = unwrap32(g.start, cum);
      const e = unwrap32(g.end, s);
      if (s < cum || e <= s || e > this.#nextSeq) {
        this.stats.badAcks++;
        return false;
      }
      rb[2 * i] = s;
      rb[2 * i + 1] = e;
    }
    const limit = unwrap32(ack.limit, this.#nextSeq);
    if (limit > this.#peerLimit) this.#peerLimit = limit;
    // RTT from the echoed timestamp of our own clock, minus the receiver's hold time; taken below,
    // only if this ack acknowledges something new.
    const sample = elapsedMs(now, ack.echoTs) - ack.ackDelay / 1000;
    // When the frame that triggered this ack was sent (our clock, echoed back).
    const triggerSentAt = now - elapsedMs(now, ack.echoTs);
    if (this.#rtoUndoAt !== undefined && this.#acksNew(cum, nr)) {
      // The first ack of new data after a timeout: if the frame that triggered it was sent before
      // the timeout, the data was not lost, only late (event-loop or scheduling lag): undo the
      // timeout (RFC 4015 Eifel response) instead of collapsing the window and resending it all.
      if (triggerSentAt < this.#rtoUndoAt - TS_SLACK_MS) this.#undoRto();
      this.#rtoUndoAt = undefined;
    }
    const before = this.stats.acked;
    this.#triggerLone = false;
    for (let s = this.#sndUna; s < cum; s++) {
      const p = this.#unackedAt(s);
      if (p) this.#ackOne(now, p, triggerSentAt);
    }
    for (let i = 0; i < nr; i++) {
      const e = rb[2 * i + 1] as number;
      for (let q = Math.max(rb[2 * i] as number, this.#sndUna); q < e; q++) {
        const p = this.#unackedAt(q);
        if (p) this.#ackOne(now, p, triggerSentAt);
      }
    }
    while (this.#sndUna < this.#nextSeq && this.#unackedAt(this.#sndUna) === undefined) this.#sndUna++;
    // An ack that acknowledges nothing new (a periodic refresh, a window update, a duplicate)
    // echoes the frame that triggered an earlier ack: its round trip mixes that frame's old forward
    // delay with this ack's return delay, and read low after the delay grew (issue 11: 50 ms each
    // way read 75-86 ms). Only an ack of new data is a sample (RFC 7323 §4.3).
    if (this.stats.acked > before && sample > 0 && sample < 60_000) this.#rtt.sample(Math.max(sample, 0.01));
    if (this.stats.acked > before && this.#triggerLone) {
      // The peer's ack delay for a lone packet: about 0 from a receiver that acks those at once
      // (the probe then fires a margin after the round trip, as the model's 1 ms detection gap).
      const d = Math.min(this.#cfg.maxAckDelayMs, Math.max(0, ack.ackDelay / 1000));
      this.#loneAckDelay = d > this.#loneAckDelay ? d : this.#loneAckDelay + (d - this.#loneAckDelay) / 4;
    }
    if (this.stats.acked > before) {
      this.#backoff = 1;
      this.#probeSpent = false;
      this.#rtoAt = this.#bytesInFlight > 0 ? now + this.#rto() : undefined;
    }
    this.#detectLosses(now);
    return true;
  }

  /** Whether the ack (cumulative `cum`, the first `nr` ranges of `#rangeBuf`) acks anything new. */
  #acksNew(cum: number, nr: number): boolean {
    if (cum > this.#sndUna) return true;
    const rb = this.#rangeBuf;
    for (let i = 0; i < nr; i++) {
      const e = rb[2 * i + 1] as number;
      for (let q = Math.max(rb[2 * i] as number, this.#sndUna); q < e; q++)
        if (this.#unackedAt(q) !== undefined) return true;
    }
    return false;
  }

  /**
   * A timeout proved spurious: restore the window, and put the packets it declared lost and that
   * have not been resent yet back in flight (their acks are on the way).
   */
  #undoRto(): void {
    this.stats.rtoUndone++;
    this.cc.undo();
    for (let i = 0; i < this.#order.length; i++) {
      const p = this.#order.at(i) as SentPacket;
      if (p.state === LOST && p.txNum === this.#orderTx.at(i)) {
        p.state = INFLIGHT;
        this.#bytesInFlight += p.size;
      }
    }
  }

  #markLost(now: number, p: SentPacket, congestion: boolean): void {
    p.state = LOST;
    p.fastLost = congestion;
    this.#bytesInFlight -= p.size;
    this.stats.lostDetected++;
    // An application-limited sender (its last pump ran out of data) tells the controller what it
    // had in flight, the lost packet included, so the reduction leaves it room for that within
    // the TCP-fair window (docs/links.md §6): at 100 messages/s over a 20 ms link at 5 % loss,
    // halvings in consecutive round trips took the window to 2 MSS, below the 2-3 frames a round
    // trip carries, and queued the flow's messages behind it (issue 10).
    // A packet whose transmission follows a lost one continues a run of drops (one overflow of
    // the bottleneck's queue): the N-flow window counts a run of r drops as (r + 1)/2 flows hit
    // instead of r (docs/congestion.md).
    if (congestion) {
      const inRun = p.txNum === this.#lastLossTx + 1;
      this.#lastLossTx = p.txNum;
      this.cc.onLoss(
        now,
        p.size,
        p.sentAt,
        this.#outOfData ? this.#bytesInFlight + p.size : undefined,
        inRun,
      );
    }
    this.#retx.push(p);
  }

  #detectLosses(now: number): void {
    const rttBase = Math.max(this.#rtt.srttOr(0), this.#rtt.latest);
    const lossDelay = Math.max(this.#cfg.timeThreshold * rttBase, 1);
    // No reordering seen: lost once a later packet was acked and a round trip has passed.
    const minRtt = Number.isFinite(this.#rtt.min) ? this.#rtt.min : 0;
    const fast = !this.#reorderSeen;
    this.#lossAt = undefined;
    for (;;) {
      const p = this.#order.peek();
      if (p === undefined) break;
      const tx = this.#orderTx.peek() as number;
      if (p.state !== INFLIGHT || p.txNum !== tx) {
        this.#order.shift();
        this.#orderTx.shift();
        continue;
      }
      if (tx >= this.#largestAckedTx) break;
      if (
        this.#largestAckedTx - tx >= this.#cfg.packetThreshold ||
        now >= p.sentAt + lossDelay ||
        (fast && now >= p.sentAt + minRtt)
      ) {
        this.#order.shift();
        this.#orderTx.shift();
        this.#markLost(now, p, true);
        continue;
      }
      this.#lossAt = p.sentAt + lossDelay;
      break;
    }
    if (this.#bytesInFlight === 0) this.#rtoAt = undefined;
  }

  /** The earliest time this sender needs `onTimeout`. */
  nextTimeout(): number | undefined {
    let t = this.#rtoAt;
    if (this.#lossAt !== undefined && (t === undefined || this.#lossAt < t)) t = this.#lossAt;
    if (this.#paceAt !== undefined && (t === undefined || this.#paceAt < t)) t = this.#paceAt;
    if (this.#probeAt !== undefined && (t === undefined || this.#probeAt < t)) t = this.#probeAt;
    return t;
  }

  /** Loss timer and RTO. The caller pumps afterwards. */
  onTimeout(now: number): void {
    if (this.#lossAt !== undefined && now >= this.#lossAt) this.#detectLosses(now);
    if (this.#probeAt !== undefined && now >= this.#probeAt) this.#fireProbe(now);
    if (this.#rtoAt !== undefined && now >= this.#rtoAt) {
      this.#rtoAt = undefined;
      if (this.#bytesInFlight > 0) {
        this.stats.rtoFired++;
        this.cc.onRto(now);
        // Every unacknowledged packet in flight is presumed lost (SACK scoreboard, RFC 6675 §5.1).
        // Their entries stay in the transmission order (now stale) so that `#undoRto` can find
        // them again; loss detection skips and drops stale entries.
        for (let i = 0; i < this.#order.length; i++) {
          const p = this.#order.at(i) as SentPacket;
          if (p.state === INFLIGHT && p.txNum === this.#orderTx.at(i)) this.#markLost(now, p, false);
        }
        this.#lossAt = undefined;
        // Back-to-back timeouts (no ack since) are undone together, judged from the first.
        if (this.#backoff === 1 || this.#rtoUndoAt === undefined) this.#rtoUndoAt = now;
        this.#backoff = Math.min(this.#backoff * 2, 64);
      }
    }
    if (this.#paceAt !== undefined && now >= this.#paceAt) this.#paceAt = undefined;
  }

  /**
   * Forgets everything (peer restarted) and starts the sequence space at `isn` (the next packet
   * sent gets it); returns how many packets were discarded.
   */
  reset(isn = 0): number {
    const n = this.#queue.packets + this.#unackedCount;
    this.#queue.clear();
    this.#unacked.fill(undefined);
    this.#unackedCount = 0;
    this.#order.clear();
    this.#orderTx.clear();
    this.#retx.clear();
    this.#unackedBytes = 0;
    this.#nextSeq = isn;
    this.#sndUna = isn;
    this.#peerLimit = isn + ReliableSender.#initialLimit(this.#cfg);
    this.#txCounter = 0;
    this.#bytesInFlight = 0;
    this.#largestAckedTx = -1;
    this.#lastLossTx = -2;
    this.#lastTxAt = Number.NEGATIVE_INFINITY;
    this.#loneAckDelay = this.#cfg.maxAckDelayMs;
    this.#reorderSeen = false;
    this.#outOfData = true;
    this.#backoff = 1;
    this.#rtoAt = undefined;
    this.#rtoUndoAt = undefined;
    this.#lossAt = undefined;
    this.#paceAt = undefined;
    this.#probeAt = undefined;
    this.#probeSpent = false;
    this.#appLimited = true;
    this.cc.reset();
    this.#flowCounter?.reset();
    if (this.#fixedFlows !== undefined) this.cc.setFlowCount(this.#fixedFlows);
    if (n > 0) this.#wantWritable = true;
    return n;
  }
}

export interface ReliableReceiverStats {
  received: number;
  duplicates: number;
  overLimit: number;
  acksSent: number;
}

/**
 * The receiving half: remembers which sequence numbers arrived (a bitmap ring of the receive
 * window plus an ordered list of ranges above the cumulative ack), hands each new packet up once,
 * and acknowledges with a cumulative ack, SACK ranges (newest first) and a credit limit that never
 * shrinks. Acks are delayed by at most `maxAckDelayMs` or `ackEvery` packets, and sent at once on
 * reordering, a hole, a duplicate, or a frame arriving 2·`maxAckDelayMs` or more after the
 * previous one (a lone frame, `RECEIVER_LONE_GAP`).
 */
export class ReliableReceiver {
  readonly #cfg: LinkConfig;
  readonly #bits: Uint8Array;
  /** Received ranges above #cum, ascending, disjoint, non-adjacent: [start, end). */
  readonly #ranges: [number, number][] = [];
  #cum = 0;
  #highest = 0;
  #advertised = 0;
  #pending = 0;
  #ackAt: number | undefined;
  #echoTs = 0;
  #arrivedAt = 0;
  /** Timestamp and arrival time of the latest frame that brought new data. */
  #newTs = 0;
  #newAt = 0;
  #everReceived = false;
  /** When the previous reliable data frame arrived. */
  #lastArrival = Number.NEGATIVE_INFINITY;
  /** Counters for the loss meter: highest-sequence advance and original (first) transmissions received. */
  expected = 0;
  originals = 0;
  readonly stats: ReliableReceiverStats = { received: 0, duplicates: 0, overLimit: 0, acksSent: 0 };

  constructor(cfg: LinkConfig) {
    this.#cfg = cfg;
    this.#bits = new Uint8Array(cfg.recvWindowPackets);
  }

  get cumAck(): number {
    return this.#cum;
  }
  get rangeCount(): number {
    return this.#ranges.length;
  }
  get everReceived(): boolean {
    return this.#everReceived;
  }
  get lastAdvertised(): number {
    return this.#advertised;
  }
  get highest(): number {
    return this.#highest;
  }

  /** The credit limit given `free` packets of room in the receive buffer. */
  limit(free: number): number {
    let above = 0;
    for (const [s, e] of this.#ranges) above += e - s;
    const l = Math.min(this.#cum + this.#cfg.recvWindowPackets, this.#cum + above + Math.max(0, free));
    if (l > this.#advertised) this.#advertised = l;
    return this.#advertised;
  }

  #insert(seq: number): void {
    const rs = this.#ranges;
    // Most arrivals extend or follow the last range: search from the end.
    let i = rs.length - 1;
    while (i >= 0 && (rs[i] as [number, number])[0] > seq) i--;
    const prev = i >= 0 ? (rs[i] as [number, number]) : undefined;
    const next = rs[i + 1];
    if (prev && prev[1] === seq) {
      prev[1] = seq + 1;
      if (next && next[0] === seq + 1) {
        prev[1] = next[1];
        rs.splice(i + 1, 1);
      }
    } else if (next && next[0] === seq + 1) {
      next[0] = seq;
    } else {
      rs.splice(i + 1, 0, [seq, seq + 1]);
    }
  }

  /**
   * Handles a reliable data frame. Returns the full sequence number if the packet is new (to be
   * delivered), or undefined for a duplicate or a packet beyond the credit limit.
   */
  onData(now: number, d: LinkData, free: number): number | undefined {
    const seq = unwrap32(d.seq, this.#cum);
    const W = this.#cfg.recvWindowPackets;
    const duplicate = seq < this.#cum || (seq < this.#cum + W && this.#bits[seq % W] === 1);
    // A frame arriving RECEIVER_LONE_GAP·maxAckDelay or more after the previous one is acked at
    // once: the delayed ack would most likely answer it alone anyway (the next frame is likely as
    // far), only later, and its sender can then expect the ack one round trip after it sent the
    // frame (`LONE_GAP_FACTOR`), which makes its loss probe as quick as the model's detection
    // (issue 10: 100 messages/s, one frame per 10 ms).
    const lone = now - this.#lastArrival >= RECEIVER_LONE_GAP * this.#cfg.maxAckDelayMs;
    this.#lastArrival = now;
    if (this.#ackAt === undefined || !this.#everReceived) {
      // Echo the earliest frame the next ack answers (RFC 7323 §4.3): with delayed or coalesced
      // acks, a timeout is then recognisably spurious when the data sent before it arrives. A
      // duplicate brings nothing new, so its ack echoes the latest frame that did (RFC 7323 §4.3,
      // "the segment that advanced the window"), with that frame's hold time: when a lost ack made
      // the sender time out and resend data that had arrived, the answer to the resend shows the
      // original got through before the timeout and the sender undoes it (RFC 4015) instead of
      // keeping a collapsed window (issue 10).
      if (duplicate && this.#everReceived) {
        this.#echoTs = this.#newTs;
        this.#arrivedAt = this.#newAt;
      } else {
        this.#echoTs = d.ts;
        this.#arrivedAt = now;
      }
    }
    this.#everReceived = true;
    if (duplicate) {
      this.stats.duplicates++;
      this.#ackNow(now);
      return undefined;
    }
    if (seq >= this.limit(free)) {
      this.stats.overLimit++;
      this.#ackNow(now);
      return undefined;
    }
    this.#newTs = d.ts;
    this.#newAt = now;
    if (seq < this.#highest) {
      // A frame that fills a hole is echoed even if an ack was already due (RFC 7323 §4.3: the
      // segment that fills a hole is the one whose timestamp is echoed). Otherwise a retransmission
      // handled in one batch behind a newer frame was acked with that frame's older echo, which
      // the sender takes for the original's ack, i.e. reordering: on real daemons (event-loop
      // batches, 1 ms timers) every link saw it within seconds and lost its zero reordering window
      // and its loss probe, so each loss at 100 messages/s was found by the next packet's ack,
      // 10 ms later (issue 10).
      this.#echoTs = d.ts;
      this.#arrivedAt = now;
    }
    const inOrder = seq === this.#cum && this.#ranges.length === 0;
    this.#bits[seq % W] = 1;
    if (seq === this.#cum) {
      this.#bits[seq % W] = 0;
      this.#cum++;
      const first = this.#ranges[0];
      if (first && first[0] === this.#cum) {
        for (let s = first[0]; s < first[1]; s++) this.#bits[s % W] = 0;
        this.#cum = first[1];
        this.#ranges.shift();
      }
    } else {
      this.#insert(seq);
    }
    if (seq >= this.#highest) {
      this.expected += seq + 1 - this.#highest;
      this.#highest = seq + 1;
    }
    if ((d.flags & LinkDataFlag.Retransmission) === 0) this.originals++;
    this.stats.received++;
    this.#pending++;
    if (!inOrder || lone || this.#pending >= this.#cfg.ackEvery) this.#ackNow(now);
    else if (this.#ackAt === undefined) this.#ackAt = now + this.#cfg.maxAckDelayMs;
    return seq;
  }

  /** An ack is due now; an earlier due time stands (so a batch of arrivals keeps one deadline). */
  #ackNow(now: number): void {
    if (this.#ackAt === undefined || this.#ackAt > now) this.#ackAt = now;
  }

  /** When an ack is due (undefined: none pending). */
  get ackAt(): number | undefined {
    return this.#ackAt;
  }

  /** Asks for an ack at once (window update, periodic refresh). */
  requestAck(now: number): void {
    this.#ackNow(now);
  }

  /** Builds the ack and clears the pending state. */
  makeAck(now: number, peerIncarnation: number, free: number): LinkAck {
    const limit = this.limit(free);
    const ranges: SackRange[] = [];
    for (let i = this.#ranges.length - 1; i >= 0 && ranges.length < MAX_ACK_RANGES; i--) {
      const [s, e] = this.#ranges[i] as [number, number];
      ranges.push({ start: wrap32(s), end: wrap32(e) });
    }
    const delayUs = Math.min(0xffffffff, Math.max(0, Math.round((now - this.#arrivedAt) * 1000)));
    this.#pending = 0;
    this.#ackAt = undefined;
    this.stats.acksSent++;
    return {
      _tag: "LinkAck",
      peerIncarnation,
      cumAck: wrap32(this.#cum),
      limit: wrap32(limit),
      echoTs: this.#echoTs,
      ackDelay: delayUs,
      ranges,
    };
  }

  /** Forgets everything and expects the peer's sequence space to start at `isn`. */
  reset(isn = 0): void {
    this.#bits.fill(0);
    this.#ranges.length = 0;
    this.#cum = isn;
    this.#highest = isn;
    this.#advertised = isn;
    this.#pending = 0;
    this.#ackAt = undefined;
    this.#everReceived = false;
    this.#lastArrival = Number.NEGATIVE_INFINITY;
    this.expected = 0;
    this.originals = 0;
  }
}
