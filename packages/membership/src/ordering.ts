/**
 * Ordering within a view (docs/membership.md §4-§5): pending multicasts and their go-back-N window
 * to the sequencer, the sequencer's numbering (sender FIFO, flow control against `maxUnstable`),
 * in-order delivery with NACK gap filling, acknowledgements and stability, the previous view's
 * retained buffer (served to holder NACKs during a view change) and the per-sender floors that keep
 * a message from being delivered twice across views.
 */
import { type NodeId, RttEstimator } from "@spines-ts/primitives";
import {
  MB_MAX_BATCH,
  type MbAck,
  type MbData,
  type MbHeartbeat,
  type MbMemberRef,
  type MbNack,
  type MbOrdered,
  type MbOrderedEntry,
} from "@spines-ts/wire";
import { type CoreContext, MAX_NACK_BATCH } from "./context.ts";
import { type Delivery, sameViewId, type View, type ViewId, viewKey } from "./types.ts";

export interface Stored {
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

/** An installed view as the core keeps it. */
export interface Installed {
  readonly id: ViewId;
  readonly key: string;
  readonly members: readonly MbMemberRef[];
  readonly index: ReadonlyMap<NodeId, number>;
  readonly sequencer: NodeId;
  readonly pub: View;
}

export interface OrderingHooks {
  /** True while a view change is in progress at this member (deliver nothing, send no data). */
  blocked(): boolean;
  /** An ordered message was buffered while blocked: the install's sync may progress. */
  bufferedWhileBlocked(now: number): void;
}

export class Ordering {
  readonly #c: CoreContext;
  readonly #hooks: OrderingHooks;
  // the installed view and its delivery state
  view: Installed | null = null;
  delivered = 0;
  seqHigh = 0;
  stable = 0;
  buffer = new Map<number, Stored>();
  #lastAcked = 0;
  ackAt = Number.POSITIVE_INFINITY;
  #nackAt = 0;
  #retained: { key: string; buffer: Map<number, Stored> } | null = null;
  // sequencer state (when this member is the view's sequencer)
  #nextSeq = 1;
  #expected = new Map<NodeId, number>();
  #acks = new Map<NodeId, number>();
  #tailResendAt = new Map<NodeId, number>();
  /** Round trips of own multicasts (send to self-delivery), as in TCP (RFC 6298). */
  #rtt = new RttEstimator();
  #lastDataRetransmitAt = Number.NEGATIVE_INFINITY;
  // sender state
  nextSenderSeq = 1;
  /** Highest senderSeq delivered per sender incarnation ("id/inc"), across views (bounded). */
  readonly floors = new Map<string, number>();
  /** At the sequencer: per member, the senderSeq its ordering starts above in this view. */
  #startFloors = new Map<NodeId, number>();
  pending: Pending[] = [];
  #wantDrain = false;

  constructor(c: CoreContext, hooks: OrderingHooks) {
    this.#c = c;
    this.#hooks = hooks;
  }

  /** Queues a multicast; false (and a `drain` event later) when `maxPending` are waiting. */
  enqueue(payload: Uint8Array, now: number): boolean {
    if (this.pending.length >= this.#c.limits.maxPending) {
      this.#wantDrain = true;
      return false;
    }
    if (this.nextSenderSeq > 0xffffffff) throw new RangeError("multicast: sender sequence space exhausted");
    this.pending.push({
      senderSeq: this.nextSenderSeq++,
      payload: payload.slice(),
      sentAt: Number.NEGATIVE_INFINITY,
      tries: 0,
    });
    this.sendData(now);
    return true;
  }

  /** Drops everything queued or buffered (the member left). */
  clear(): void {
    this.pending = [];
    this.buffer.clear();
    this.#retained = null;
  }

  /** A heartbeat from a member of our view: its ack (at the sequencer) and tail-loss hint. */
  onPeerHeartbeat(from: NodeId, hb: MbHeartbeat, now: number): void {
    const v = this.view;
    if (v && sameViewId(hb.view, v.id)) {
      if (v.sequencer === this.#c.id && v.index.has(from)) this.#noteAck(from, hb.delivered);
      if (hb.seqHigh > this.seqHigh) this.seqHigh = hb.seqHigh;
      if (this.seqHigh > this.delivered && !this.#hooks.blocked()) this.#nackAt = Math.min(this.#nackAt, now);
    }
  }

  /** Delivers buffered messages of the current view in order, up to `target`. */
  deliverUpTo(target: number): void {
    while (this.delivered < target) {
      const m = this.buffer.get(this.delivered + 1);
      if (m === undefined) break;
      this.#deliver(m);
    }
  }

  /**
   * Switches to a newly installed view: the old view's buffer is retained for holder NACKs and
   * every per-view counter restarts. `startFloors` are the install's per-member floors.
   */
  startView(view: Installed, startFloors: Map<NodeId, number>): void {
    const old = this.view;
    if (old) this.#retained = { key: old.key, buffer: this.buffer };
    this.view = view;
    this.delivered = 0;
    this.seqHigh = 0;
    this.stable = 0;
    this.buffer = new Map();
    this.#lastAcked = 0;
    this.ackAt = Number.POSITIVE_INFINITY;
    this.#nackAt = Number.POSITIVE_INFINITY;
    this.#nextSeq = 1;
    this.#expected = new Map();
    this.#startFloors = startFloors;
    this.#acks = new Map();
    this.#tailResendAt = new Map();
  }

  /** After an install: own messages up to `floor` were delivered elsewhere; the rest are resent. */
  afterInstall(floor: number): void {
    while (this.pending.length > 0 && (this.pending[0] as Pending).senderSeq <= floor) {
      this.pending.shift();
      this.#c.stats.deliveredElsewhere++;
    }
    if (this.#wantDrain && this.pending.length < this.#c.limits.maxPending) {
      this.#wantDrain = false;
      this.#c.events.push({ type: "drain" });
    }
    for (const p of this.pending) {
      p.sentAt = Number.NEGATIVE_INFINITY;
      p.tries = 0;
    }
  }

  /** Sends due pending messages (never sent, or past the RTO) to the sequencer. */
  sendData(now: number): void {
    const c = this.#c;
    const v = this.view;
    if (v === null || this.#hooks.blocked() || c.state !== "joined") return;
    const firstPending = this.pending[0]?.senderSeq ?? this.nextSenderSeq;
    const rto = this.#dataRto();
    // a snapshot: local ordering (this member is the sequencer) delivers and shifts `pending`
    const due: Pending[] = [];
    for (const p of this.pending.slice(0, c.limits.window)) {
      if (now - p.sentAt < rto) continue;
      if (p.tries > 0) {
        c.stats.dataRetransmits++;
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
      if (this.view !== v || this.#hooks.blocked()) return;
      if (v.sequencer === c.id) this.onData(c.id, d, now);
      else c.send(v.sequencer, d);
    };
    for (const p of due) {
      const last = run[run.length - 1];
      const size = 2 + p.payload.length;
      if (
        last !== undefined &&
        (p.senderSeq !== last.senderSeq + 1 ||
          bytes + size > c.limits.batchBytes ||
          run.length >= MB_MAX_BATCH)
      )
        flush();
      run.push(p);
      bytes += size;
    }
    flush();
  }

  onData(from: NodeId, d: MbData, now: number): void {
    const c = this.#c;
    const v = this.view;
    if (v === null || v.sequencer !== c.id || this.#hooks.blocked() || !sameViewId(d.view, v.id)) return;
    if (!v.index.has(from)) return;
    let exp = this.#expected.get(from) ?? Math.max(d.firstPending, (this.#startFloors.get(from) ?? 0) + 1);
    if (d.firstPending > exp) exp = d.firstPending;
    const firstSeq = this.#nextSeq;
    const out: MbOrderedEntry[] = [];
    for (let i = 0; i < d.payloads.length; i++) {
      const senderSeq = d.firstSenderSeq + i;
      const payload = d.payloads[i] as Uint8Array;
      if (senderSeq < exp) continue; // a duplicate: already ordered
      if (senderSeq > exp || payload.length > c.limits.maxPayloadBytes) break; // ahead of a gap
      if (this.#nextSeq - 1 - this.stable >= c.limits.maxUnstable) {
        c.stats.flowControlDrops++;
        break;
      }
      exp++;
      this.#nextSeq++;
      out.push({ sender: from, senderSeq, payload });
    }
    this.#expected.set(from, exp);
    if (out.length === 0) return; // the sender retransmits, in order
    const stable = this.stable;
    this.#sendOrdered(null, v.id, firstSeq, stable, out);
    this.onOrdered({ _tag: "MbOrdered", view: v.id, firstSeq, stable, entries: out }, now);
  }

  /** Sends ordered entries (consecutive seqs from `firstSeq`) in datagrams of at most `batchBytes`. */
  #sendOrdered(
    to: NodeId | null,
    view: ViewId,
    firstSeq: number,
    stable: number,
    entries: readonly MbOrderedEntry[],
  ): void {
    const c = this.#c;
    const v = this.view;
    let start = 0;
    while (start < entries.length) {
      let end = start;
      let bytes = 0;
      while (end < entries.length && end - start < MB_MAX_BATCH) {
        const size = 10 + (entries[end] as MbOrderedEntry).payload.length;
        if (end > start && bytes + size > c.limits.batchBytes) break;
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
      const data = c.encode(o);
      if (to !== null) c.transmits.push({ to, data });
      else if (v !== null) for (const m of v.members) if (m.id !== c.id) c.transmits.push({ to: m.id, data });
      start = end;
    }
  }

  onOrdered(o: MbOrdered, now: number): void {
    const c = this.#c;
    const v = this.view;
    if (v === null || !sameViewId(o.view, v.id)) return;
    if (o.stable > this.stable) this.#advanceStable(Math.min(o.stable, this.delivered));
    let own = false;
    for (let i = 0; i < o.entries.length; i++) {
      const e = o.entries[i] as MbOrderedEntry;
      const seq = o.firstSeq + i;
      if (!v.index.has(e.sender)) continue;
      if (seq > this.seqHigh) this.seqHigh = seq;
      if (seq <= this.delivered || this.buffer.has(seq)) continue;
      if (seq > this.delivered + c.limits.maxUnstable) continue;
      this.buffer.set(seq, { seq, sender: e.sender, senderSeq: e.senderSeq, payload: e.payload });
      if (e.sender === c.id) own = true;
    }
    if (this.#hooks.blocked()) {
      this.#hooks.bufferedWhileBlocked(now);
      return; // blocked: deliver nothing until the install says how far
    }
    while (true) {
      const m = this.buffer.get(this.delivered + 1);
      if (m === undefined) break;
      this.#deliver(m);
    }
    if (this.seqHigh > this.delivered) this.#nackAt = Math.min(this.#nackAt, now);
    if (own && this.pending.length > 0) this.sendData(now); // refill the window
    if (this.delivered > this.#lastAcked) {
      if (this.delivered - this.#lastAcked >= 32) this.#sendAck();
      else if (this.ackAt === Number.POSITIVE_INFINITY) this.ackAt = now + c.timing.retransmitMs / 2;
    }
  }

  #deliver(m: Stored): void {
    const c = this.#c;
    const v = this.view as Installed;
    this.delivered = m.seq;
    const sinc = v.members[v.index.get(m.sender) as number]?.inc ?? 0;
    const fk = `${m.sender}/${sinc}`;
    if (!this.floors.has(fk) && this.floors.size >= 4 * c.limits.maxPeers) {
      const oldest = this.floors.keys().next().value;
      if (oldest !== undefined) this.floors.delete(oldest);
    }
    this.floors.set(fk, m.senderSeq);
    c.stats.delivered++;
    const d: Delivery = {
      view: v.id,
      seq: m.seq,
      sender: m.sender,
      senderSeq: m.senderSeq,
      payload: m.payload,
    };
    c.events.push({ type: "message", message: d });
    if (m.sender === c.id) {
      const head = this.pending[0];
      // Karn, strengthened for go-back-N: a message sent before any retransmission may have
      // waited behind the lost one, so only messages sent after the last retransmission count
      if (
        head !== undefined &&
        head.senderSeq === m.senderSeq &&
        head.tries === 1 &&
        head.sentAt > this.#lastDataRetransmitAt
      )
        this.#rtt.sample(c.lastActivity - head.sentAt);
      while (this.pending.length > 0 && (this.pending[0] as Pending).senderSeq <= m.senderSeq)
        this.pending.shift();
      if (this.#wantDrain && this.pending.length < c.limits.maxPending) {
        this.#wantDrain = false;
        c.events.push({ type: "drain" });
      }
    }
    if (v.sequencer === c.id) this.#noteAck(c.id, m.seq);
  }

  #sendAck(): void {
    const v = this.view;
    this.ackAt = Number.POSITIVE_INFINITY;
    if (v === null) return;
    this.#lastAcked = this.delivered;
    if (v.sequencer === this.#c.id) return;
    this.#c.send(v.sequencer, { _tag: "MbAck", view: v.id, delivered: this.delivered });
  }

  onAck(from: NodeId, a: MbAck): void {
    const v = this.view;
    if (v === null || v.sequencer !== this.#c.id || !sameViewId(a.view, v.id) || !v.index.has(from)) return;
    this.#noteAck(from, a.delivered);
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
    const base = this.#c.timing.retransmitMs;
    return this.#rtt.rto(0, { initialMs: base, minMs: base, maxMs: 2 * base, granularityMs: 0 });
  }

  #noteAck(from: NodeId, delivered: number): void {
    const v = this.view as Installed;
    const prev = this.#acks.get(from) ?? 0;
    if (delivered <= prev) return;
    this.#tailResendAt.set(from, this.#c.lastActivity + 2 * this.#c.timing.retransmitMs);
    this.#acks.set(from, Math.min(delivered, this.#nextSeq - 1));
    let min = Number.POSITIVE_INFINITY;
    for (const m of v.members) min = Math.min(min, this.#acks.get(m.id) ?? 0);
    if (min > this.stable) this.#advanceStable(min);
  }

  #advanceStable(to: number): void {
    for (let s = this.stable + 1; s <= to; s++) this.buffer.delete(s);
    this.stable = to;
  }

  /** Answers a NACK from the current view's buffer or the retained previous one. */
  onNack(from: NodeId, n: MbNack): void {
    let buf: Map<number, Stored> | undefined;
    const k = viewKey(n.view);
    if (this.view && this.view.key === k) buf = this.buffer;
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
      this.#c.stats.orderedRetransmits++;
      run.push({ sender: m.sender, senderSeq: m.senderSeq, payload: m.payload });
    }
  }

  /** Work the ordering layer still has to finish (keeps the retransmission timer running). */
  busy(): boolean {
    return (
      this.pending.length > 0 ||
      this.seqHigh > this.delivered ||
      (this.view !== null && this.view.sequencer === this.#c.id && this.stable < this.#nextSeq - 1)
    );
  }

  /** Acks due any time; when not blocked: gap NACKs, tail resends (sequencer), data resends. */
  onTimer(now: number): void {
    const c = this.#c;
    const rto = c.timing.retransmitMs;
    if (this.ackAt <= now) this.#sendAck();
    const v = this.view;
    if (v === null || this.#hooks.blocked()) return;
    if (this.seqHigh > this.delivered && now >= this.#nackAt && v.sequencer !== c.id) {
      this.#nackAt = now + rto;
      const from = this.delivered + 1;
      c.send(v.sequencer, {
        _tag: "MbNack",
        view: v.id,
        from,
        to: Math.min(this.seqHigh, from + MAX_NACK_BATCH - 1),
      });
    }
    if (v.sequencer === c.id) {
      // tail loss: resend to members whose acks lag
      const high = this.#nextSeq - 1;
      for (const m of v.members) {
        if (m.id === c.id) continue;
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
        this.onNack(m.id, { _tag: "MbNack", view: v.id, from: a + 1, to: Math.min(high, a + 8) });
      }
    }
    this.sendData(now);
  }
}
