import { Deque, RttEstimator, type SpinesError, unwrap32, wrap32 } from "@spines-ts/primitives";
import {
  DestKind,
  LinkType,
  type OverlayHeader,
  ResetReason,
  type SackBlock,
  type SessionAck,
  SessionAckFlag,
  type SessionData,
  SessionDataFlag,
  type SessionMessage,
  SessionResetFlag,
} from "@spines-ts/wire";
import type { SessionConfig } from "./config.ts";
import { PeerDeadError, SessionResetError, SessionStateError } from "./errors.ts";
import type { SessionEvent, SessionInfo } from "./types.ts";

/** What a stream needs from the endpoint that owns it. */
export interface StreamContext {
  readonly nodeId: number;
  readonly config: SessionConfig;
  send(to: number, linkType: LinkType, msg: SessionMessage): void;
  /** Packets of this flow the transport takes now without queueing them (Infinity: no limit). */
  room(to: number, linkType: LinkType, srcPort: number, dstPort: number): number;
  emit(e: SessionEvent): void;
  /** The stream reached the end of its life (after linger, or at once on reset/death). */
  release(s: Stream): void;
  /** The stream's peer id became known (index it for duplicate opens and resets). */
  indexPeer(s: Stream): void;
}

interface SendSeg {
  readonly seq: number;
  data: Uint8Array;
  readonly fin: boolean;
  /** Time of the last transmission; -1 before the first. */
  lastSentAt: number;
  transmissions: number;
  sacked: boolean;
  lost: boolean;
}

interface RecvSeg {
  readonly data: Uint8Array;
  readonly fin: boolean;
}

export type StreamState = "connecting" | "open" | "finished";

const EMPTY = new Uint8Array(0);
/**
 * Received segments the stream copied out of their packets: nothing else refers to them, so a read
 * of exactly one of them hands it over instead of copying it again.
 */
const ownCopies = new WeakSet<Uint8Array>();

/**
 * One reliable byte stream between two endpoints: segment numbers end to end, cumulative plus
 * selective acks, RTT-based retransmission with RACK-style loss detection on SACK evidence, the
 * receiver's window as the cap on bytes in flight, FIN-based half-close, keepalive and dead-peer
 * detection. Owned and driven by `SessionEndpoint`; all time comes in as `now`.
 */
export class Stream {
  readonly sid: number;
  peerSid = 0;
  readonly localPort: number;
  readonly remoteNode: number;
  readonly remotePort: number;
  readonly linkType: LinkType;
  readonly initiator: boolean;
  state: StreamState;
  /** Deadline currently registered with the endpoint's timer heap. */
  deadline = Number.POSITIVE_INFINITY;
  /** Set once released from the endpoint's tables. */
  released = false;

  readonly #ctx: StreamContext;
  readonly #cfg: SessionConfig;
  readonly #header: OverlayHeader;
  readonly rtt: RttEstimator;

  // ---- send side
  readonly #segs = new Deque<SendSeg>();
  /** Segment number of #segs[0] (the oldest unacknowledged). */
  #sndUna = 0;
  /** Next segment number to transmit for the first time. */
  #sndNxt = 0;
  #sendBuffered = 0;
  #inFlight = 0;
  #lostCount = 0;
  #peerWindow: number;
  #lastAck = 0;
  #rackSentAt = Number.NEGATIVE_INFINITY;
  #backoff = 0;
  #rtoAt = Number.POSITIVE_INFINITY;
  #writeBlocked = false;
  #finQueued = false;
  #finAcked = false;
  #segmentsSent = 0;
  #segmentsRetransmitted = 0;
  /** Times new data waited because the transport had no room (`StreamContext.room`). */
  transportBlocked = 0;
  /** Times new data waited for the peer's window. */
  windowBlocked = 0;

  // ---- receive side
  #rcvNxt = 0;
  readonly #ooo = new Map<number, RecvSeg>();
  /** The keys of #ooo in ascending order (for SACK blocks without sorting per ack). */
  #oooKeys: number[] = [];
  #oooBytes = 0;
  readonly #readQ: Uint8Array[] = [];
  #readOff = 0;
  #unread = 0;
  #peerFinSeq: number | undefined = undefined;
  #eofSignalled = false;
  #ackPending = 0;
  #ackAt = Number.POSITIVE_INFINITY;
  #lastAdvWindow: number;
  #appClosed = false;
  #readableSignalled = false;

  // ---- liveness and lifetime
  #lastHeard: number;
  #lastProbeAt = Number.NEGATIVE_INFINITY;
  #openedAt: number;
  #openSends = 0;
  #lastOpenAt = Number.NEGATIVE_INFINITY;
  /** Acceptor: something other than an Open arrived from the initiator, so it has our Accept. */
  #peerConfirmed = false;
  #lastAcceptAt = Number.NEGATIVE_INFINITY;
  #closeAt = Number.POSITIVE_INFINITY;
  #lingerUntil = Number.POSITIVE_INFINITY;

  constructor(
    ctx: StreamContext,
    init: {
      sid: number;
      peerSid?: number;
      localPort: number;
      remoteNode: number;
      remotePort: number;
      linkType: LinkType;
      initiator: boolean;
      peerWindow: number;
      now: number;
    },
  ) {
    this.#ctx = ctx;
    this.#cfg = ctx.config;
    this.sid = init.sid;
    this.peerSid = init.peerSid ?? 0;
    this.localPort = init.localPort;
    this.remoteNode = init.remoteNode;
    this.remotePort = init.remotePort;
    this.linkType = init.linkType;
    this.initiator = init.initiator;
    this.state = init.initiator ? "connecting" : "open";
    this.#peerWindow = init.peerWindow;
    this.#lastAdvWindow = this.#cfg.receiveBufferBytes;
    this.#lastHeard = init.now;
    this.#openedAt = init.now;
    // Back-off is capped so that at least eight retransmissions fit in the dead-peer timeout.
    const maxRto = Math.max(
      this.#cfg.minRtoMs,
      Math.min(this.#cfg.maxRtoMs, this.#cfg.deadPeerTimeoutMs / 8),
    );
    this.rtt = new RttEstimator({
      initialMs: this.#cfg.initialRtoMs,
      minMs: this.#cfg.minRtoMs,
      maxMs: maxRto,
    });
    this.#header = {
      src: ctx.nodeId,
      srcPort: init.localPort,
      dst: init.remoteNode,
      dstPort: init.remotePort,
      dstKind: DestKind.Node,
      ttl: this.#cfg.ttl,
    };
  }

  // ------------------------------------------------------------------ handshake

  /** Initiator: send (or resend) the open. */
  sendOpen(now: number): void {
    this.#openSends++;
    this.#lastOpenAt = now;
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionOpen",
      header: this.#header,
      sid: this.sid,
      window: this.#window(),
      linkType: this.linkType,
    });
    this.#rtoAt = now + this.rtt.rto(this.#backoff);
  }

  /** Acceptor: answer an open (first or duplicate). */
  sendAccept(now = this.#lastAcceptAt): void {
    this.#lastAcceptAt = now;
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionAccept",
      header: this.#header,
      dstSid: this.peerSid,
      sid: this.sid,
      window: this.#window(),
    });
  }

  onAccept(now: number, peerSid: number, window: number): void {
    this.#lastHeard = now;
    if (this.state !== "connecting") return;
    this.peerSid = peerSid;
    this.state = "open";
    this.#peerWindow = window;
    if (this.#openSends === 1) this.rtt.sample(now - this.#openedAt);
    this.#backoff = 0;
    this.#rtoAt = Number.POSITIVE_INFINITY;
    this.#ctx.indexPeer(this);
    this.#ctx.emit({ type: "connected", sid: this.sid });
    this.#flush(now);
  }

  // ------------------------------------------------------------------ application calls

  write(now: number, bytes: Uint8Array): number {
    if (this.state === "finished") throw new SessionStateError(`session ${this.sid} is closed`);
    if (this.#finQueued) throw new SessionStateError(`session ${this.sid} was shut down for writing`);
    const room = this.#cfg.sendBufferBytes - this.#sendBuffered;
    const n = Math.min(room, bytes.length);
    if (n < bytes.length) this.#writeBlocked = true;
    if (n <= 0) return 0;
    const mss = this.#cfg.mss;
    let off = 0;
    const tail = this.#segs.last();
    if (tail !== undefined && tail.lastSentAt < 0 && !tail.fin && tail.data.length < mss) {
      const k = Math.min(mss - tail.data.length, n);
      const merged = new Uint8Array(tail.data.length + k);
      merged.set(tail.data);
      merged.set(bytes.subarray(0, k), tail.data.length);
      tail.data = merged;
      off = k;
    }
    while (off < n) {
      const k = Math.min(mss, n - off);
      this.#segs.push(this.#newSeg(bytes.slice(off, off + k), false));
      off += k;
    }
    this.#sendBuffered += n;
    if (this.state === "open") this.#flush(now);
    return n;
  }

  read(now: number, max: number): Uint8Array {
    this.#readableSignalled = false;
    if (this.#unread === 0) return EMPTY;
    const want = Math.min(max, this.#unread);
    let out: Uint8Array;
    const first = this.#readQ[0] as Uint8Array;
    if (this.#readOff === 0 && first.length === want && ownCopies.has(first)) {
      // A whole queued segment that is our own copy already (`#deliverInOrder`): hand it over.
      out = first;
      this.#readQ.shift();
    } else if (first.length - this.#readOff >= want) {
      out = first.slice(this.#readOff, this.#readOff + want);
      this.#readOff += want;
      if (this.#readOff === first.length) {
        this.#readQ.shift();
        this.#readOff = 0;
      }
    } else {
      out = new Uint8Array(want);
      let got = 0;
      while (got < want) {
        const b = this.#readQ[0] as Uint8Array;
        const k = Math.min(b.length - this.#readOff, want - got);
        out.set(b.subarray(this.#readOff, this.#readOff + k), got);
        got += k;
        this.#readOff += k;
        if (this.#readOff === b.length) {
          this.#readQ.shift();
          this.#readOff = 0;
        }
      }
    }
    this.#unread -= want;
    this.#afterConsume(now);
    return out;
  }

  /** Half-close: no more writes; a FIN follows the buffered data. */
  shutdown(now: number): void {
    if (this.state === "finished") throw new SessionStateError(`session ${this.sid} is closed`);
    if (this.#finQueued) return;
    this.#finQueued = true;
    this.#segs.push(this.#newSeg(EMPTY, true));
    if (this.state === "open") this.#flush(now);
    this.#maybeFinish(now);
  }

  /** Full close: shutdown, and discard whatever arrives from now on. */
  close(now: number): void {
    if (this.state === "finished") return;
    this.#appClosed = true;
    this.#readQ.length = 0;
    this.#readOff = 0;
    this.#unread = 0;
    this.shutdown(now);
    this.#afterConsume(now);
    this.#armCloseTimer(now);
    this.#maybeFinish(now);
  }

  /** After close(), once our FIN is acknowledged, the peer gets closeTimeoutMs to finish its side. */
  #armCloseTimer(now: number): void {
    if (this.#appClosed && this.#finAcked && this.#closeAt === Number.POSITIVE_INFINITY) {
      this.#closeAt = now + this.#cfg.closeTimeoutMs;
    }
  }

  /** Abort: tell the peer and end at once. */
  reset(now: number): void {
    if (this.state !== "finished") this.#sendReset(ResetReason.Application);
    this.#end(now, undefined, true);
  }

  /** Initiator: the open was refused. */
  failConnect(now: number, error: SpinesError): void {
    this.#end(now, error, true);
  }

  get isAppClosed(): boolean {
    return this.#appClosed;
  }

  // ------------------------------------------------------------------ packets

  /**
   * Initiator still waiting for the Accept, but the acceptor already sends on the session: the
   * Accept was lost. Ask again now rather than at the next open retry.
   */
  #acceptLost(now: number): void {
    if (now >= this.#lastOpenAt + Math.max(1, this.rtt.rto(0) / 4)) this.sendOpen(now);
  }

  onData(now: number, m: SessionData): void {
    this.#lastHeard = now;
    if (this.state === "connecting") {
      this.#acceptLost(now);
      return;
    }
    this.#peerConfirmed = true;
    this.#onAckFields(now, m.ack, m.window, undefined);
    this.#receiveSegment(now, m);
    this.#flush(now);
    this.#maybeFinish(now);
  }

  #receiveSegment(now: number, m: SessionData): void {
    const seq = unwrap32(m.seq, this.#rcvNxt);
    const fin = (m.flags & SessionDataFlag.Fin) !== 0;
    const len = m.payload.length;
    if (seq < this.#rcvNxt) {
      this.#sendAck(now, 0);
      return;
    }
    if (this.#peerFinSeq !== undefined && seq > this.#peerFinSeq) return;
    if (seq === this.#rcvNxt) {
      if (!this.#appClosed && this.#unread + len > this.#cfg.receiveBufferBytes) {
        // Only a peer ignoring our window gets here: keep what fits in order, drop the rest.
        this.#sendAck(now, 0);
        return;
      }
      // Out-of-order data held beyond the window is evicted to make room for the in-order segment.
      while (this.#unread + this.#oooBytes + len > this.#cfg.receiveBufferBytes && this.#ooo.size > 0) {
        this.#evictHighest();
      }
      const hadOoo = this.#ooo.size > 0;
      this.#deliverInOrder(m.payload, fin, seq);
      let next = this.#ooo.get(this.#rcvNxt);
      while (next !== undefined) {
        this.#ooo.delete(this.#rcvNxt);
        this.#oooKeys.shift(); // the smallest key is always the one delivered next
        this.#oooBytes -= next.data.length;
        this.#deliverInOrder(next.data, next.fin, this.#rcvNxt);
        next = this.#ooo.get(this.#rcvNxt);
      }
      if ((hadOoo && !this.#lazySack()) || fin || this.#peerFinSeq !== undefined) this.#sendAck(now, 0);
      else this.#ackLater(now);
      this.#afterDeliver(now);
    } else {
      if (!this.#ooo.has(seq)) {
        const fits =
          this.#unread + this.#oooBytes + len <= this.#cfg.receiveBufferBytes &&
          this.#ooo.size < this.#cfg.maxOutOfOrderSegments &&
          seq - this.#rcvNxt < 2 ** 30;
        if (fits) {
          this.#ooo.set(seq, { data: len === 0 ? EMPTY : m.payload.slice(), fin });
          this.#insertKey(seq);
          this.#oooBytes += len;
          if (fin) this.#peerFinSeq = seq;
        }
      }
      if (fin || !this.#lazySack()) this.#sendAck(now, 0, seq);
      else this.#ackLater(now);
    }
  }

  /**
   * Over reliable links an out-of-order segment (and the one that fills the hole) is acknowledged
   * like an in-order one: the links are recovering the hole, and the sender waits a whole RTO before
   * it counts a hole as lost (`reliableReorderRtos`), so an ack per segment would only add packets.
   */
  #lazySack(): boolean {
    return (
      this.linkType === LinkType.Reliable &&
      !this.#cfg.reliableSackAtOnce &&
      this.#cfg.reliableReorderRtos > 0
    );
  }

  #ackLater(now: number): void {
    this.#ackPending++;
    if (this.#ackPending >= this.#cfg.ackEvery) this.#sendAck(now, 0);
    else if (this.#ackAt === Number.POSITIVE_INFINITY) this.#ackAt = now + this.#cfg.ackDelayMs;
  }

  onAck(now: number, m: SessionAck): void {
    this.#lastHeard = now;
    if (this.state === "connecting") {
      this.#acceptLost(now);
      return;
    }
    this.#peerConfirmed = true;
    this.#onAckFields(now, m.ack, m.window, m.sack);
    if ((m.flags & SessionAckFlag.Probe) !== 0) this.#sendAck(now, 0);
    this.#flush(now);
    this.#maybeFinish(now);
  }

  onReset(now: number, reason: number): void {
    // LAST-ACK: we have the peer's FIN and sent ours. A peer frees its state only after it got all
    // our data and our FIN, so its "no such session" means our final ack(s) were lost after its
    // linger: the close is complete (RFC 793 likewise closes quietly on a reset in LAST-ACK).
    const last = this.#segs.last();
    const finSent = last?.fin === true && last.transmissions > 0;
    if (reason === ResetReason.NoSession && this.#peerDone() && (finSent || this.#finAcked)) {
      this.#finAcked = true;
      this.#segs.clear();
      this.#sndUna = this.#sndNxt;
      this.#inFlight = this.#sendBuffered = this.#lostCount = 0;
      this.#rtoAt = this.#ackAt = Number.POSITIVE_INFINITY;
      // Quiet from now on; the application may still read what it has not read yet.
      this.#maybeFinish(now);
      return;
    }
    this.#end(
      now,
      new SessionResetError(
        reason,
        `session ${this.sid} with ${this.remoteNode}:${this.remotePort} reset by peer (reason ${reason})`,
      ),
      false,
    );
  }

  // ------------------------------------------------------------------ timers

  /** The earliest time this stream needs `onTimer`. */
  nextDeadline(): number {
    if (this.state === "finished") return this.#lingerUntil;
    // Both directions finished on the wire: only the application's reading is left, and the peer
    // may already have freed its state, so the session stays silent (no probes, no dead-peer timer).
    if (this.#finAcked && this.#peerDone()) return Number.POSITIVE_INFINITY;
    let d = Math.min(this.#rtoAt, this.#ackAt, this.#finAcked ? this.#closeAt : Number.POSITIVE_INFINITY);
    if (this.state === "connecting") return Math.min(d, this.#openedAt + this.#cfg.connectTimeoutMs);
    d = Math.min(d, this.#lastHeard + this.#cfg.deadPeerTimeoutMs);
    if (this.#inFlight === 0 && this.#rtoAt === Number.POSITIVE_INFINITY) {
      d = Math.min(d, Math.max(this.#lastHeard, this.#lastProbeAt) + this.#cfg.keepaliveIntervalMs);
    }
    return d;
  }

  onTimer(now: number, connectTimeout: () => SpinesError): void {
    if (this.state === "finished") {
      if (now >= this.#lingerUntil) this.#release();
      return;
    }
    if (this.state === "connecting") {
      if (now >= this.#openedAt + this.#cfg.connectTimeoutMs) {
        this.#end(now, connectTimeout(), false);
        return;
      }
      if (now >= this.#rtoAt) {
        this.#backoff++;
        this.sendOpen(now);
      }
      return;
    }
    if (this.#finAcked && this.#peerDone()) return;
    if (now >= this.#lastHeard + this.#cfg.deadPeerTimeoutMs) {
      this.#end(now, new PeerDeadError(this.remoteNode, this.remotePort, now - this.#lastHeard), false);
      return;
    }
    if (this.#finAcked && now >= this.#closeAt) {
      // Closed by the application, all our data delivered, and the peer never finished its side.
      this.#sendReset(ResetReason.CloseTimeout);
      this.#end(now, undefined, true);
      return;
    }
    if (now >= this.#ackAt) this.#sendAck(now, 0);
    if (now >= this.#rtoAt) this.#onRto(now);
    if (
      this.#inFlight === 0 &&
      this.#rtoAt === Number.POSITIVE_INFINITY &&
      now >= Math.max(this.#lastHeard, this.#lastProbeAt) + this.#cfg.keepaliveIntervalMs
    ) {
      this.#lastProbeAt = now;
      this.#sendAck(now, SessionAckFlag.Probe);
    }
  }

  #onRto(now: number): void {
    const oldest = this.#segs.at(0);
    if (this.#sndNxt > this.#sndUna && oldest !== undefined) {
      // Retransmit only the oldest; its ack dates every earlier-sent hole as lost (RACK), so a
      // route change is repaired within one round trip instead of by a go-back-N burst.
      this.#backoff++;
      if (oldest.sacked) oldest.sacked = false;
      if (!oldest.lost) {
        oldest.lost = true;
        this.#lostCount++;
      }
      this.#rtoAt = Number.POSITIVE_INFINITY;
      this.#flush(now);
      this.#rtoAt = now + this.rtt.rto(this.#backoff);
      return;
    }
    if (this.#sndNxt < this.#sndUna + this.#segs.length) {
      // Window-blocked with data waiting: probe for a window update.
      this.#backoff++;
      this.#lastProbeAt = now;
      this.#sendAck(now, SessionAckFlag.Probe);
      this.#rtoAt = now + this.rtt.rto(this.#backoff);
      return;
    }
    this.#rtoAt = Number.POSITIVE_INFINITY;
  }

  // ------------------------------------------------------------------ internals: send side

  #newSeg(data: Uint8Array, fin: boolean): SendSeg {
    return {
      seq: this.#sndUna + this.#segs.length,
      data,
      fin,
      lastSentAt: -1,
      transmissions: 0,
      sacked: false,
      lost: false,
    };
  }

  #onAckFields(now: number, ackWire: number, window: number, sack: readonly SackBlock[] | undefined): void {
    const ack = unwrap32(ackWire, this.#sndUna);
    if (ack < this.#sndUna || ack > this.#sndNxt) return;
    if (ack > this.#lastAck || (ack === this.#lastAck && window > this.#peerWindow)) {
      this.#peerWindow = window;
    }
    if (ack > this.#lastAck) this.#lastAck = ack;
    let sampleSentAt = Number.NEGATIVE_INFINITY;
    let delivered = false;
    const advanced = ack > this.#sndUna;
    while (this.#sndUna < ack) {
      const s = this.#segs.shift() as SendSeg;
      this.#sndUna++;
      this.#sendBuffered -= s.data.length;
      this.#inFlight -= s.data.length;
      if (s.lost) this.#lostCount--;
      if (s.fin) this.#finAcked = true;
      if (!s.sacked) {
        delivered = true;
        if (s.lastSentAt > this.#rackSentAt) this.#rackSentAt = s.lastSentAt;
        if (s.transmissions === 1 && s.lastSentAt > sampleSentAt) sampleSentAt = s.lastSentAt;
      }
    }
    if (sack !== undefined) {
      for (const b of sack) {
        const start = Math.max(unwrap32(b.start, ack), ack);
        const end = Math.min(unwrap32(b.end, ack), this.#sndNxt);
        for (let q = start; q < end; q++) {
          const s = this.#segs.at(q - this.#sndUna) as SendSeg;
          if (s.sacked) continue;
          s.sacked = true;
          delivered = true;
          if (s.lost) {
            s.lost = false;
            this.#lostCount--;
          }
          if (s.lastSentAt > this.#rackSentAt) this.#rackSentAt = s.lastSentAt;
          if (s.transmissions === 1 && s.lastSentAt > sampleSentAt) sampleSentAt = s.lastSentAt;
        }
      }
    }
    if (sampleSentAt > Number.NEGATIVE_INFINITY) this.rtt.sample(now - sampleSentAt);
    if (advanced) {
      this.#backoff = 0;
      this.#rtoAt = this.#sndNxt > this.#sndUna ? now + this.rtt.rto(0) : Number.POSITIVE_INFINITY;
    } else if (this.#rtoAt === Number.POSITIVE_INFINITY && this.#sndNxt > this.#sndUna) {
      this.#rtoAt = now + this.rtt.rto(this.#backoff);
    }
    if (delivered) this.#detectLoss();
    this.#armCloseTimer(now);
    if (this.#writeBlocked && this.#sendBuffered <= this.#cfg.sendBufferBytes / 2) {
      this.#writeBlocked = false;
      this.#ctx.emit({ type: "writable", sid: this.sid });
    }
  }

  /**
   * Marks as lost every segment sent a reordering window before a segment that was delivered. Over
   * reliable links the window is `reliableReorderRtos` RTOs: the links recover their own losses, and
   * a segment they are still recovering is late, not lost.
   */
  #detectLoss(): void {
    const srtt = this.rtt.srtt ?? 0;
    const k = this.linkType === LinkType.Reliable ? this.#cfg.reliableReorderRtos : 0;
    const reo = Math.max(1, srtt / 4, k * this.rtt.rto(0));
    const limit = this.#rackSentAt - reo;
    const n = this.#sndNxt - this.#sndUna;
    for (let i = 0; i < n; i++) {
      const s = this.#segs.at(i) as SendSeg;
      // Segments are first sent in number order: past the first once-sent segment that is too
      // recent, every later segment was (first) sent later still.
      if (s.lastSentAt >= limit) {
        if (s.transmissions === 1) break;
        continue;
      }
      if (s.sacked || s.lost) continue;
      s.lost = true;
      this.#lostCount++;
    }
  }

  #transmit(now: number, s: SendSeg): void {
    const ackWire = wrap32(this.#rcvNxt);
    const window = this.#window();
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionData",
      header: this.#header,
      dstSid: this.peerSid,
      flags: s.fin ? SessionDataFlag.Fin : 0,
      seq: wrap32(s.seq),
      ack: ackWire,
      window,
      payload: s.data,
    });
    if (s.transmissions > 0) this.#segmentsRetransmitted++;
    this.#segmentsSent++;
    s.transmissions++;
    s.lastSentAt = now;
    // The cumulative ack rode along; SACK information still needs its own ack when out of order.
    if (this.#ooo.size === 0) {
      this.#ackPending = 0;
      this.#ackAt = Number.POSITIVE_INFINITY;
    }
    this.#lastAdvWindow = window;
  }

  /** The transport has room again: send what `room` held back. */
  transportWritable(now: number): void {
    if (this.state === "open" && (this.#lostCount > 0 || this.#sndNxt - this.#sndUna < this.#segs.length))
      this.#flush(now);
  }

  #flush(now: number): void {
    if (this.state !== "open") return;
    // Segments only as fast as the transport takes them, retransmissions included: what it cannot
    // send at once stays here (the writer blocks), not in a queue where the retransmission timer
    // would run and queue the same segments again behind themselves (issue 10).
    let room = Number.POSITIVE_INFINITY;
    if (this.#lostCount > 0 || this.#sndNxt - this.#sndUna < this.#segs.length)
      room = this.#ctx.room(this.remoteNode, this.linkType, this.#header.srcPort, this.#header.dstPort);
    let retransmitted = false;
    if (this.#lostCount > 0) {
      const n = this.#sndNxt - this.#sndUna;
      for (let i = 0; i < n && this.#lostCount > 0; i++) {
        const s = this.#segs.at(i) as SendSeg;
        if (!s.lost) continue;
        if (room < 1) {
          this.transportBlocked++;
          break;
        }
        room--;
        s.lost = false;
        this.#lostCount--;
        this.#transmit(now, s);
        retransmitted = true;
      }
    }
    let sentNew = false;
    for (;;) {
      const s = this.#segs.at(this.#sndNxt - this.#sndUna);
      if (s === undefined) break;
      const len = s.data.length;
      if (len > 0 && this.#inFlight + len > this.#peerWindow) {
        this.windowBlocked++;
        break;
      }
      if (room < 1) {
        this.transportBlocked++;
        break;
      }
      room--;
      this.#inFlight += len;
      this.#sndNxt++;
      this.#transmit(now, s);
      sentNew = true;
    }
    if ((sentNew || retransmitted) && !this.initiator && !this.#peerConfirmed && now > this.#lastAcceptAt) {
      // The initiator drops our segments until it has the Accept, which may have been lost.
      this.sendAccept(now);
    }
    if ((sentNew || this.#sndNxt > this.#sndUna) && this.#rtoAt === Number.POSITIVE_INFINITY) {
      this.#rtoAt = now + this.rtt.rto(this.#backoff);
    }
    if (this.#sndNxt === this.#sndUna && this.#sndNxt < this.#sndUna + this.#segs.length) {
      // Blocked by a zero or small window with nothing in flight: the RTO timer doubles as the probe.
      if (this.#rtoAt === Number.POSITIVE_INFINITY) this.#rtoAt = now + this.rtt.rto(this.#backoff);
    }
  }

  #sendReset(reason: number): void {
    if (this.state === "connecting") {
      this.#ctx.send(this.remoteNode, this.linkType, {
        _tag: "SessionReset",
        header: this.#header,
        sid: this.sid,
        flags: 0,
        reason,
      });
      return;
    }
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionReset",
      header: this.#header,
      sid: this.peerSid,
      flags: SessionResetFlag.Yours,
      reason,
    });
  }

  // ------------------------------------------------------------------ internals: receive side

  #window(): number {
    return Math.max(0, Math.min(0xffffffff, this.#cfg.receiveBufferBytes - this.#unread));
  }

  #insertKey(k: number): void {
    const a = this.#oooKeys;
    let lo = 0;
    let hi = a.length;
    if (hi === 0 || (a[hi - 1] as number) < k) {
      a.push(k);
      return;
    }
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((a[mid] as number) < k) lo = mid + 1;
      else hi = mid;
    }
    a.splice(lo, 0, k);
  }

  #evictHighest(): void {
    const hi = this.#oooKeys.pop() as number;
    const s = this.#ooo.get(hi) as RecvSeg;
    this.#ooo.delete(hi);
    this.#oooBytes -= s.data.length;
    if (s.fin) this.#peerFinSeq = undefined;
  }

  #deliverInOrder(data: Uint8Array, fin: boolean, seq: number): void {
    this.#rcvNxt = seq + 1;
    if (fin) this.#peerFinSeq = seq;
    if (data.length > 0 && !this.#appClosed) {
      if (data.byteOffset === 0 && data.buffer.byteLength === data.length) this.#readQ.push(data);
      else {
        const copy = data.slice();
        ownCopies.add(copy);
        this.#readQ.push(copy);
      }
      this.#unread += data.length;
    }
  }

  #afterDeliver(now: number): void {
    // One "readable" per read cycle: the next comes after the application called read().
    if (this.#unread > 0 && !this.#appClosed && !this.#readableSignalled) {
      this.#readableSignalled = true;
      this.#ctx.emit({ type: "readable", sid: this.sid });
    }
    this.#checkEof(now);
  }

  #peerDone(): boolean {
    return this.#peerFinSeq !== undefined && this.#rcvNxt > this.#peerFinSeq;
  }

  #afterConsume(now: number): void {
    const w = this.#window();
    const mss = this.#cfg.mss;
    if (
      this.state === "open" &&
      !this.#peerDone() &&
      (w >= this.#lastAdvWindow + 2 * mss || (this.#lastAdvWindow < mss && w >= mss))
    ) {
      this.#sendAck(now, 0);
    }
    this.#checkEof(now);
    this.#maybeFinish(now);
  }

  #checkEof(_now: number): void {
    if (
      !this.#eofSignalled &&
      this.#peerFinSeq !== undefined &&
      this.#rcvNxt > this.#peerFinSeq &&
      this.#unread === 0
    ) {
      this.#eofSignalled = true;
      if (!this.#appClosed) this.#ctx.emit({ type: "end", sid: this.sid });
    }
  }

  #sackBlocks(recent: number | undefined): SackBlock[] {
    if (this.#ooo.size === 0) return [];
    const keys = this.#oooKeys;
    const ranges: { start: number; end: number }[] = [];
    for (const k of keys) {
      const last = ranges[ranges.length - 1];
      if (last !== undefined && last.end === k) last.end = k + 1;
      else ranges.push({ start: k, end: k + 1 });
    }
    let first = -1;
    if (recent !== undefined) first = ranges.findIndex((r) => r.start <= recent && recent < r.end);
    const ordered =
      first > 0 ? [ranges[first] as SackBlock, ...ranges.filter((_, i) => i !== first)] : ranges;
    return ordered.slice(0, 16).map((r) => ({ start: wrap32(r.start), end: wrap32(r.end) }));
  }

  #sendAck(_now: number, flags: number, recent?: number): void {
    const window = this.#window();
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionAck",
      header: this.#header,
      dstSid: this.peerSid,
      flags,
      ack: wrap32(this.#rcvNxt),
      window,
      sack: this.#sackBlocks(recent),
    });
    this.#ackPending = 0;
    this.#ackAt = Number.POSITIVE_INFINITY;
    this.#lastAdvWindow = window;
  }

  // ------------------------------------------------------------------ lifetime

  #maybeFinish(now: number): void {
    if (this.state !== "open") return;
    if (this.#finAcked && this.#peerDone() && (this.#appClosed || this.#eofSignalled)) {
      this.#end(now, undefined, false);
    }
  }

  /** Ends the session for the application; lingers to answer retransmitted FINs after a clean close. */
  #end(now: number, error: SpinesError | undefined, immediate: boolean): void {
    if (this.state === "finished") return;
    const clean = error === undefined && !immediate && this.#finAcked;
    this.state = "finished";
    this.#segs.clear();
    this.#readQ.length = 0;
    this.#ooo.clear();
    this.#oooKeys = [];
    this.#rtoAt = this.#ackAt = this.#closeAt = Number.POSITIVE_INFINITY;
    this.#ctx.emit({ type: "closed", sid: this.sid, error });
    if (clean && this.#cfg.lingerMs > 0) this.#lingerUntil = now + this.#cfg.lingerMs;
    else this.#release();
  }

  /** While lingering: a retransmitted FIN (or anything) gets our final cumulative ack. */
  onDataWhileFinished(now: number): void {
    this.#lastHeard = now;
    this.#ctx.send(this.remoteNode, this.linkType, {
      _tag: "SessionAck",
      header: this.#header,
      dstSid: this.peerSid,
      flags: 0,
      ack: wrap32(this.#rcvNxt),
      window: this.#cfg.receiveBufferBytes,
      sack: [],
    });
  }

  #release(): void {
    if (this.released) return;
    this.released = true;
    this.#lingerUntil = Number.POSITIVE_INFINITY;
    this.#ctx.release(this);
  }

  info(): SessionInfo {
    return {
      sid: this.sid,
      state: this.state,
      localPort: this.localPort,
      remoteNode: this.remoteNode,
      remotePort: this.remotePort,
      linkType: this.linkType,
      srttMs: this.rtt.srtt,
      rtoMs: this.rtt.rto(this.#backoff),
      sendBuffered: this.#sendBuffered,
      inFlight: this.#inFlight,
      peerWindow: this.#peerWindow,
      unread: this.#unread,
      outOfOrderBytes: this.#oooBytes,
      outOfOrderSegments: this.#ooo.size,
      segmentsSent: this.#segmentsSent,
      segmentsRetransmitted: this.#segmentsRetransmitted,
      transportBlocked: this.transportBlocked,
      windowBlocked: this.windowBlocked,
      localFinished: this.#finAcked,
      peerFinished: this.#peerFinSeq !== undefined && this.#rcvNxt > this.#peerFinSeq,
    };
  }
}
