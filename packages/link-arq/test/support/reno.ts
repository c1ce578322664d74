/**
 * The baseline for the fairness and throughput comparisons: a plain end-to-end NewReno flow
 * (RFC 5681 + RFC 6582) written directly against `Host`, as a TCP sender and receiver would behave:
 * ack every segment with the cumulative ack, fast retransmit on 3 duplicate acks, NewReno partial
 * acks, RFC 6298 RTO with Linux's 200 ms floor and exponential back-off, go-back-N after a timeout.
 * No SACK, no pacing. Segments carry [kind u8][seq u32][ts f64] and padding to `segmentBytes`.
 */
import type { Cancel, Host, NodeId } from "@spines-ts/primitives";

const DATA = 1;
const ACK = 2;

export interface RenoOptions {
  /** Bytes per segment on the wire (the same size as the link's frames, for a fair comparison). */
  readonly segmentBytes: number;
  readonly minRtoMs?: number;
  readonly initialWindow?: number;
  /** How a segment leaves the node (e.g. wrapped for a router). */
  readonly transmit: (bytes: Uint8Array) => void;
}

/** Sends an unlimited backlog of segments. */
export class RenoSender {
  readonly #host: Host;
  readonly #o: RenoOptions;
  readonly mss: number;
  cwnd: number;
  ssthresh = Number.POSITIVE_INFINITY;
  #una = 0;
  #nxt = 0;
  #high = 0;
  #dup = 0;
  #recover = -1;
  #inRecovery = false;
  #srtt: number | undefined;
  #rttvar = 0;
  #backoff = 1;
  #rtoCancel: Cancel | undefined;
  #caAcc = 0;
  readonly #sentAt = new Map<number, number>();
  readonly #retransmitted = new Set<number>();
  timeouts = 0;
  fastRetransmits = 0;
  running = true;

  constructor(host: Host, o: RenoOptions) {
    this.#host = host;
    this.#o = o;
    this.mss = o.segmentBytes;
    this.cwnd = (o.initialWindow ?? 10) * this.mss;
  }

  get acked(): number {
    return this.#una;
  }

  #rto(): number {
    const base = this.#srtt === undefined ? 1000 : this.#srtt + Math.max(4 * this.#rttvar, 1);
    return Math.min(60_000, Math.max(this.#o.minRtoMs ?? 200, base) * this.#backoff);
  }

  #xmit(seq: number): void {
    const now = this.#host.clock.now();
    const b = new Uint8Array(this.#o.segmentBytes);
    const dv = new DataView(b.buffer);
    dv.setUint8(0, DATA);
    dv.setUint32(1, seq);
    dv.setFloat64(5, now);
    if (this.#sentAt.has(seq)) this.#retransmitted.add(seq);
    this.#sentAt.set(seq, now);
    this.#o.transmit(b);
    if (!this.#rtoCancel) this.#armRto();
  }

  #armRto(): void {
    this.#rtoCancel?.();
    this.#rtoCancel = this.#host.schedule(this.#host.clock.now() + this.#rto(), () => this.#onRto());
  }

  start(): void {
    this.#pump();
  }

  #pump(): void {
    if (!this.running) return;
    while ((this.#nxt - this.#una) * this.mss + this.mss <= this.cwnd) {
      this.#xmit(this.#nxt);
      this.#nxt++;
      if (this.#nxt > this.#high) this.#high = this.#nxt;
    }
  }

  #onRto(): void {
    this.#rtoCancel = undefined;
    if (this.#una >= this.#high) return;
    this.timeouts++;
    const flight = (this.#nxt - this.#una) * this.mss;
    this.ssthresh = Math.max(flight / 2, 2 * this.mss);
    this.cwnd = this.mss;
    this.#backoff = Math.min(this.#backoff * 2, 64);
    this.#inRecovery = false;
    this.#dup = 0;
    this.#recover = this.#high - 1;
    this.#nxt = this.#una; // go-back-N
    this.#xmit(this.#nxt);
    this.#nxt++;
  }

  receive(data: Uint8Array): void {
    if (data.length < 5 || data[0] !== ACK) return;
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const ack = dv.getUint32(1);
    const now = this.#host.clock.now();
    if (ack > this.#una) {
      // RTT from the newest acked segment that was never retransmitted (Karn).
      const s = ack - 1;
      const t = this.#sentAt.get(s);
      if (t !== undefined && !this.#retransmitted.has(s)) {
        const r = now - t;
        if (this.#srtt === undefined) {
          this.#srtt = r;
          this.#rttvar = r / 2;
        } else {
          this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
          this.#srtt = 0.875 * this.#srtt + 0.125 * r;
        }
      }
      for (let q = this.#una; q < ack; q++) {
        this.#sentAt.delete(q);
        this.#retransmitted.delete(q);
      }
      const newly = (ack - this.#una) * this.mss;
      this.#una = ack;
      if (this.#nxt < this.#una) this.#nxt = this.#una;
      this.#backoff = 1;
      this.#dup = 0;
      if (this.#inRecovery) {
        if (ack > this.#recover) {
          this.#inRecovery = false;
          this.cwnd = Math.min(
            this.ssthresh,
            Math.max((this.#nxt - this.#una) * this.mss, this.mss) + this.mss,
          );
        } else {
          // Partial ack: retransmit the next hole, deflate.
          this.#xmit(this.#una);
          this.cwnd = Math.max(this.cwnd - newly + this.mss, this.mss);
        }
      } else if (this.cwnd < this.ssthresh) {
        this.cwnd += Math.min(newly, this.mss);
      } else {
        this.#caAcc += newly;
        if (this.#caAcc >= this.cwnd) {
          this.#caAcc -= this.cwnd;
          this.cwnd += this.mss;
        }
      }
      if (this.#una < this.#high) this.#armRto();
      else {
        this.#rtoCancel?.();
        this.#rtoCancel = undefined;
      }
    } else if (ack === this.#una && this.#una < this.#nxt) {
      this.#dup++;
      if (this.#dup === 3 && !this.#inRecovery && ack > this.#recover) {
        this.fastRetransmits++;
        const flight = (this.#nxt - this.#una) * this.mss;
        this.ssthresh = Math.max(flight / 2, 2 * this.mss);
        this.#recover = this.#high - 1;
        this.#inRecovery = true;
        this.#xmit(this.#una);
        this.cwnd = this.ssthresh + 3 * this.mss;
      } else if (this.#inRecovery) {
        this.cwnd += this.mss;
      }
    }
    this.#pump();
  }
}

/** Acks every segment with the next expected sequence number; counts in-order goodput. */
export class RenoReceiver {
  readonly #transmit: (bytes: Uint8Array) => void;
  readonly #host: Host;
  #next = 0;
  readonly #ooo = new Set<number>();
  /** Segments delivered in order. */
  delivered = 0;
  readonly deliveredAt: number[] = [];

  constructor(host: Host, transmit: (bytes: Uint8Array) => void) {
    this.#host = host;
    this.#transmit = transmit;
  }

  receive(data: Uint8Array): void {
    if (data.length < 13 || data[0] !== DATA) return;
    const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const seq = dv.getUint32(1);
    if (seq >= this.#next && seq < this.#next + 100_000) {
      this.#ooo.add(seq);
      while (this.#ooo.delete(this.#next)) {
        this.#next++;
        this.delivered++;
      }
    }
    const a = new Uint8Array(5);
    a[0] = ACK;
    new DataView(a.buffer).setUint32(1, this.#next);
    this.#transmit(a);
    void this.#host;
  }
}

/** Tunnel envelope for the raw routers: [final destination u32][original sender u32][bytes]. */
export function wrap(dst: NodeId, src: NodeId, bytes: Uint8Array): Uint8Array {
  const b = new Uint8Array(8 + bytes.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, dst);
  dv.setUint32(4, src);
  b.set(bytes, 8);
  return b;
}

export function unwrap(b: Uint8Array): { dst: NodeId; src: NodeId; bytes: Uint8Array } | undefined {
  if (b.length < 8) return undefined;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return { dst: dv.getUint32(0), src: dv.getUint32(4), bytes: b.subarray(8) };
}
