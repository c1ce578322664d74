import { Deque, unwrap32, wrap32 } from "@spines-ts/primitives";
import {
  type LinkChannel,
  type LinkData,
  LinkDataFlag,
  MAX_NACK_SEQS,
  type OverlayHeader,
  type RealtimeNack,
} from "@spines-ts/wire";
import type { LinkConfig } from "./config.ts";
import { tsUs } from "./seq.ts";

interface HistoryEntry {
  readonly seq: number;
  readonly header: OverlayHeader;
  readonly payload: Uint8Array;
  readonly sentAt: number;
  retransmitted: boolean;
}

export interface UnreliableSenderStats {
  sent: number;
  retransmitted: number;
  nacksReceived: number;
  refusedNoToken: number;
  refusedExpired: number;
  refusedTwice: number;
}

/**
 * The sending half of the real-time and best-effort channels. Real-time keeps each packet in a
 * history for `realtimeHistoryMs` (at most `realtimeHistoryPackets`) and retransmits a NACKed one
 * once, only while it can still arrive within the history deadline, and only with a token: each new
 * packet earns `realtimeRetransmitShare` tokens, each retransmission costs one, so retransmissions
 * never exceed that share of traffic. Best-effort keeps no history.
 */
export class UnreliableSender {
  readonly channel: LinkChannel;
  readonly #cfg: LinkConfig;
  readonly #keep: boolean;
  readonly #history = new Deque<HistoryEntry>();
  #nextSeq = 0;
  #tokens = 0;
  readonly stats: UnreliableSenderStats = {
    sent: 0,
    retransmitted: 0,
    nacksReceived: 0,
    refusedNoToken: 0,
    refusedExpired: 0,
    refusedTwice: 0,
  };

  constructor(channel: LinkChannel, cfg: LinkConfig, keepHistory: boolean) {
    this.channel = channel;
    this.#cfg = cfg;
    this.#keep = keepHistory;
  }

  get historyPackets(): number {
    return this.#history.length;
  }

  #prune(now: number): void {
    for (;;) {
      const h = this.#history.peek();
      if (h === undefined) return;
      if (
        this.#history.length > this.#cfg.realtimeHistoryPackets ||
        now - h.sentAt > this.#cfg.realtimeHistoryMs
      )
        this.#history.shift();
      else return;
    }
  }

  send(now: number, peerIncarnation: number, header: OverlayHeader, payload: Uint8Array): LinkData {
    const seq = this.#nextSeq++;
    if (this.#keep) {
      this.#history.push({ seq, header, payload, sentAt: now, retransmitted: false });
      this.#tokens = Math.min(
        this.#tokens + this.#cfg.realtimeRetransmitShare,
        1 + this.#cfg.realtimeHistoryPackets,
      );
      this.#prune(now);
    }
    this.stats.sent++;
    return {
      _tag: "LinkData",
      peerIncarnation,
      channel: this.channel,
      flags: 0,
      seq: wrap32(seq),
      ts: tsUs(now),
      header,
      payload,
    };
  }

  /** Retransmissions answering a NACK (each packet at most once, within deadline and budget). */
  onNack(
    now: number,
    peerIncarnation: number,
    nack: RealtimeNack,
    srttMs: number,
    out: (m: LinkData) => void,
  ): void {
    this.stats.nacksReceived++;
    if (!this.#keep) return;
    this.#prune(now);
    const first = this.#history.peek();
    if (first === undefined) return;
    for (const w of nack.seqs) {
      const seq = unwrap32(w, this.#nextSeq);
      const h = this.#history.at(seq - first.seq);
      if (h === undefined || h.seq !== seq) {
        this.stats.refusedExpired++;
        continue;
      }
      if (h.retransmitted) {
        this.stats.refusedTwice++;
        continue;
      }
      // It would arrive about half an RTT from now; past the deadline it is useless.
      if (now - h.sentAt + srttMs / 2 > this.#cfg.realtimeHistoryMs) {
        this.stats.refusedExpired++;
        continue;
      }
      if (this.#tokens < 1) {
        this.stats.refusedNoToken++;
        continue;
      }
      this.#tokens -= 1;
      h.retransmitted = true;
      this.stats.retransmitted++;
      out({
        _tag: "LinkData",
        peerIncarnation,
        channel: this.channel,
        flags: LinkDataFlag.Retransmission,
        seq: wrap32(seq),
        ts: tsUs(now),
        header: h.header,
        payload: h.payload,
      });
    }
  }

  reset(): void {
    this.#history.clear();
    this.#nextSeq = 0;
    this.#tokens = 0;
  }
}

export interface UnreliableReceiverStats {
  received: number;
  duplicates: number;
  tooOld: number;
  nacked: number;
  notNackedLate: number;
  recovered: number;
}

/**
 * The receiving half of the real-time and best-effort channels: duplicate suppression over a window
 * of recent sequence numbers, loss counting, and (real-time) one immediate NACK per gap, only for
 * packets whose retransmission can still arrive within the deadline.
 */
export class UnreliableReceiver {
  readonly #cfg: LinkConfig;
  readonly #nack: boolean;
  readonly #bits: Uint8Array;
  /** One past the highest sequence number received. */
  #highest = 0;
  #highestTs = 0;
  #started = false;
  expected = 0;
  originals = 0;
  readonly stats: UnreliableReceiverStats = {
    received: 0,
    duplicates: 0,
    tooOld: 0,
    nacked: 0,
    notNackedLate: 0,
    recovered: 0,
  };

  constructor(cfg: LinkConfig, nack: boolean) {
    this.#cfg = cfg;
    this.#nack = nack;
    this.#bits = new Uint8Array(cfg.unreliableWindowPackets);
  }

  /**
   * Handles a data frame; returns the full sequence number if it is new (deliver it), else
   * undefined. NACKed sequence numbers are passed to `nack`.
   */
  onData(_now: number, d: LinkData, srttMs: number, nack: (seqs: number[]) => void): number | undefined {
    const W = this.#cfg.unreliableWindowPackets;
    const seq = unwrap32(d.seq, this.#highest);
    // Full sequence numbers are never negative: a negative one precedes the sender's first packet.
    if (seq < 0) {
      this.stats.tooOld++;
      return undefined;
    }
    const retx = (d.flags & LinkDataFlag.Retransmission) !== 0;
    if (!this.#started) {
      this.#started = true;
      this.#highest = seq;
    }
    if (seq < this.#highest - W) {
      this.stats.tooOld++;
      return undefined;
    }
    if (seq < this.#highest) {
      if (this.#bits[seq % W] === 1) {
        this.stats.duplicates++;
        return undefined;
      }
      this.#bits[seq % W] = 1;
      if (retx) this.stats.recovered++;
      else this.originals++;
      this.stats.received++;
      return seq;
    }
    // A new highest: clear the bits of the sequence numbers skipped or recycled.
    const gapFrom = this.#highest;
    const jump = seq + 1 - this.#highest;
    for (let s = Math.max(gapFrom, seq + 1 - W); s <= seq; s++) this.#bits[s % W] = 0;
    this.#bits[seq % W] = 1;
    this.expected += jump;
    if (!retx) this.originals++;
    else this.stats.recovered++;
    this.stats.received++;
    const prevTs = this.#highestTs;
    this.#highest = seq + 1;
    this.#highestTs = d.ts;
    if (this.#nack && seq > gapFrom && !retx) {
      // The missing packets were sent between the previous newest one and this one. A retransmission
      // arrives about 1.5 RTT after their send time plus that spacing; past the deadline, don't ask.
      const spacing = Math.max(0, ((d.ts - prevTs + 0x100000000) % 0x100000000) / 1000);
      const missing = seq - gapFrom;
      if (spacing + 1.5 * srttMs <= this.#cfg.realtimeHistoryMs) {
        const seqs: number[] = [];
        for (let s = Math.max(gapFrom, seq - MAX_NACK_SEQS); s < seq; s++) seqs.push(wrap32(s));
        this.stats.nacked += seqs.length;
        this.stats.notNackedLate += missing - seqs.length;
        nack(seqs);
      } else {
        this.stats.notNackedLate += missing;
      }
    }
    return seq;
  }

  reset(): void {
    this.#bits.fill(0);
    this.#highest = 0;
    this.#highestTs = 0;
    this.#started = false;
    this.expected = 0;
    this.originals = 0;
  }
}
