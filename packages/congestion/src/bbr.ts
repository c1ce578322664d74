/**
 * A model-based controller after BBR v1 (Cardwell et al., "BBR: Congestion-Based Congestion
 * Control", ACM Queue 2016; draft-cardwell-iccrg-bbr-congestion-control-00): the link paces at its
 * estimate of the bottleneck bandwidth (the largest delivery rate of the last 10 rounds) and keeps
 * at most two bandwidth-delay products in flight (the bandwidth times the smallest RTT of the last
 * 10 s). Losses do not cut the rate. Opt-in (`{ kind: "bbr" }`), for links that share bottlenecks
 * with BBR traffic: a loss-based (NewReno/CUBIC) link gets a small fraction of its share there,
 * as any loss-based flow does (docs/benchmarks.md, fairness), and BBR is in turn known to take more
 * than its share from loss-based flows in shallow buffers (Ware et al., IMC 2019). The default
 * links stay NewReno.
 *
 * Sans-IO and driven through the same `CongestionController` calls as the window controllers: the
 * delivery rate is measured from the acks themselves, as the bytes acked over the last min-RTT
 * (a small ring of ack points), so the link needs no per-packet delivery bookkeeping; the largest
 * such sample of each round trip (a round ends when a packet sent after it began is acked) enters
 * the 10-round max filter. A sample over one min-RTT sees the 1.25 probing phase's rate; one per
 * whole round averaged it with the 0.75 phase and never grew. States: STARTUP (pacing gain 2/ln 2 until the
 * bandwidth stops growing by 25 % for 3 rounds), DRAIN (the inverse gain for one round), PROBE_BW
 * (gains 1.25, 0.75, then 1 for six phases of one min-RTT each), PROBE_RTT (4 segments in flight
 * for 200 ms when the min-RTT is 10 s old).
 */
import type { CongestionController } from "./controller.ts";

export interface BbrOptions {
  /** Maximum segment size in bytes. Default 1,200. */
  readonly mss?: number;
  /** Initial window in segments. Default 10. */
  readonly initialWindow?: number;
  /** Largest window in bytes. Default 64 MiB. */
  readonly maxWindowBytes?: number;
}

const STARTUP_GAIN = 2 / Math.LN2;
const CWND_GAIN = 2;
const PROBE_GAINS = [1.25, 0.75, 1, 1, 1, 1, 1, 1] as const;
const BW_WINDOW_ROUNDS = 10;
const MIN_RTT_WINDOW_MS = 10_000;
const PROBE_RTT_MS = 200;
const MIN_PIPE_SEGMENTS = 4;
const FULL_BW_GROWTH = 1.25;
const FULL_BW_ROUNDS = 3;
/** Ack points kept for the delivery-rate window (one per min-RTT / RING_STEP at most). */
const RING = 64;
const RING_STEP = 32;

type Mode = "startup" | "drain" | "probe-bw" | "probe-rtt";

export class Bbr implements CongestionController {
  readonly name = "bbr" as const;
  readonly mss: number;
  readonly #initialWindow: number;
  readonly #maxWindow: number;
  #mode: Mode = "startup";
  /** Delivery-rate samples (bytes/ms) of the last rounds, newest last; app-limited ones only when they raise the max. */
  #bwSamples: number[] = [];
  #minRtt = Number.POSITIVE_INFINITY;
  #minRttAt = 0;
  #delivered = 0;
  #roundStart = Number.NaN;
  #roundDelivered = 0;
  #roundLimited = false;
  /** Largest delivery-rate sample of the current round (bytes/ms). */
  #roundMax = 0;
  readonly #ringT = new Float64Array(RING);
  readonly #ringD = new Float64Array(RING);
  #ringN = 0;
  #ringHead = 0;
  #rounds = 0;
  #fullBw = 0;
  #fullBwRounds = 0;
  #cycle = 0;
  #cycleStart = 0;
  #probeRttUntil = Number.NaN;
  #afterRto = false;
  #losses = 0;
  #timeouts = 0;

  constructor(o: BbrOptions = {}) {
    const mss = o.mss ?? 1200;
    if (!(Number.isFinite(mss) && mss >= 64)) throw new RangeError(`Bbr: mss must be >= 64, got ${mss}`);
    this.mss = mss;
    const iw = o.initialWindow ?? 10;
    if (!(Number.isFinite(iw) && iw >= 1)) throw new RangeError(`Bbr: initialWindow must be >= 1, got ${iw}`);
    this.#initialWindow = iw * mss;
    this.#maxWindow = o.maxWindowBytes ?? 64 * 1024 * 1024;
    if (!(this.#maxWindow >= mss)) throw new RangeError(`Bbr: maxWindowBytes must be >= mss`);
  }

  /** The bottleneck bandwidth estimate, bytes per ms (0 before the first round). */
  get bandwidth(): number {
    let m = 0;
    for (const b of this.#bwSamples) if (b > m) m = b;
    return m;
  }

  /** Round trips measured so far. */
  get rounds(): number {
    return this.#rounds;
  }

  get minRtt(): number {
    return this.#minRtt;
  }

  get mode(): Mode {
    return this.#mode;
  }

  get cwnd(): number {
    if (this.#afterRto) return this.mss;
    if (this.#mode === "probe-rtt") return MIN_PIPE_SEGMENTS * this.mss;
    const bw = this.bandwidth;
    if (bw === 0 || !Number.isFinite(this.#minRtt)) return this.#initialWindow;
    const gain = this.#mode === "startup" ? STARTUP_GAIN : CWND_GAIN;
    const w = gain * bw * this.#minRtt + 3 * this.mss;
    return Math.min(this.#maxWindow, Math.max(MIN_PIPE_SEGMENTS * this.mss, w));
  }

  readonly ssthresh = Number.POSITIVE_INFINITY;

  get inSlowStart(): boolean {
    return this.#mode === "startup";
  }

  /** BBR does not reduce on loss; timeouts are counted here. */
  get reductions(): number {
    return this.#timeouts;
  }

  /** Losses seen (for metrics only: they do not change the rate). */
  get losses(): number {
    return this.#losses;
  }

  readonly lossEventRate = 0;
  readonly tcpFairWindow = Number.POSITIVE_INFINITY;

  get flowCount(): number {
    return 1;
  }

  setFlowCount(n: number): void {
    if (!(typeof n === "number" && Number.isFinite(n) && n >= 1))
      throw new RangeError(`flow count must be a number >= 1, got ${String(n)}`);
  }

  #pacingGain(): number {
    switch (this.#mode) {
      case "startup":
        return STARTUP_GAIN;
      case "drain":
        return 1 / STARTUP_GAIN;
      case "probe-rtt":
        return 1;
      default:
        return PROBE_GAINS[this.#cycle] as number;
    }
  }

  pacingRate(srttMs: number): number {
    const bw = this.bandwidth;
    if (bw === 0) {
      const rtt = Number.isFinite(this.#minRtt) ? this.#minRtt : srttMs;
      return (STARTUP_GAIN * this.#initialWindow) / Math.max(1, rtt);
    }
    return this.#pacingGain() * bw;
  }

  onAck(now: number, ackedBytes: number, sentAt: number, _srttMs: number, cwndLimited: boolean): void {
    this.#afterRto = false;
    this.#delivered += ackedBytes;
    if (!cwndLimited) this.#roundLimited = true;
    if ((this.#mode === "probe-bw" || this.#mode === "drain") && now - this.#minRttAt > MIN_RTT_WINDOW_MS) {
      this.#mode = "probe-rtt";
      this.#probeRttUntil = now + Math.max(PROBE_RTT_MS, Number.isFinite(this.#minRtt) ? this.#minRtt : 0);
      this.#minRtt = Number.POSITIVE_INFINITY; // re-measured with 4 segments in flight
    }
    const rtt = now - sentAt;
    if (rtt >= 0 && rtt <= this.#minRtt) {
      this.#minRtt = rtt;
      this.#minRttAt = now;
    }
    this.#sampleRate(now);
    if (Number.isNaN(this.#roundStart)) {
      this.#startRound(now);
      return;
    }
    if (sentAt >= this.#roundStart && now > this.#roundStart) this.#endRound(now);
    this.#advance(now);
  }

  /** Records this ack point and takes the delivery rate over the last min-RTT (or round). */
  #sampleRate(now: number): void {
    const span = Number.isFinite(this.#minRtt) ? Math.max(this.#minRtt, 1) : Number.NaN;
    const newest = this.#ringN === 0 ? -1 : (this.#ringHead + RING - 1) % RING;
    if (newest < 0 || Number.isNaN(span) || now - (this.#ringT[newest] as number) >= span / RING_STEP) {
      this.#ringT[this.#ringHead] = now;
      this.#ringD[this.#ringHead] = this.#delivered;
      this.#ringHead = (this.#ringHead + 1) % RING;
      if (this.#ringN < RING) this.#ringN++;
    }
    if (Number.isNaN(span)) return;
    // the newest point at least one min-RTT old
    for (let k = 1; k <= this.#ringN; k++) {
      const i = (this.#ringHead + RING - k) % RING;
      const dt = now - (this.#ringT[i] as number);
      if (dt >= span) {
        const rate = (this.#delivered - (this.#ringD[i] as number)) / dt;
        if (rate > this.#roundMax) this.#roundMax = rate;
        return;
      }
    }
  }

  #startRound(now: number): void {
    this.#roundStart = now;
    this.#roundDelivered = this.#delivered;
    this.#roundLimited = false;
    this.#roundMax = 0;
  }

  #endRound(now: number): void {
    const whole = (this.#delivered - this.#roundDelivered) / (now - this.#roundStart);
    const sample = Math.max(whole, this.#roundMax);
    const max = this.bandwidth;
    // An application-limited round says little about the bottleneck unless it delivered more.
    if (!this.#roundLimited || sample > max) this.#bwSamples.push(sample);
    else this.#bwSamples.push(max);
    if (this.#bwSamples.length > BW_WINDOW_ROUNDS) this.#bwSamples.shift();
    this.#rounds++;
    if (this.#mode === "startup") {
      const bw = this.bandwidth;
      if (bw >= this.#fullBw * FULL_BW_GROWTH) {
        this.#fullBw = bw;
        this.#fullBwRounds = 0;
      } else if (!this.#roundLimited && ++this.#fullBwRounds >= FULL_BW_ROUNDS) {
        this.#mode = "drain";
      }
    } else if (this.#mode === "drain") {
      this.#enterProbeBw(now);
    }
    this.#startRound(now);
  }

  #enterProbeBw(now: number): void {
    this.#mode = "probe-bw";
    this.#cycle = 2; // start at gain 1, not in the probing phases
    this.#cycleStart = now;
  }

  #advance(now: number): void {
    if (
      this.#mode === "probe-bw" &&
      Number.isFinite(this.#minRtt) &&
      now - this.#cycleStart >= this.#minRtt
    ) {
      this.#cycle = (this.#cycle + 1) % PROBE_GAINS.length;
      this.#cycleStart = now;
    } else if (this.#mode === "probe-rtt" && now >= this.#probeRttUntil) {
      this.#minRttAt = now;
      this.#enterProbeBw(now);
    }
  }

  onLoss(): void {
    this.#losses++;
  }

  onRto(): void {
    this.#timeouts++;
    this.#afterRto = true;
  }

  undo(): void {}

  reset(): void {
    this.#mode = "startup";
    this.#bwSamples = [];
    this.#minRtt = Number.POSITIVE_INFINITY;
    this.#minRttAt = 0;
    this.#delivered = 0;
    this.#roundStart = Number.NaN;
    this.#roundDelivered = 0;
    this.#roundLimited = false;
    this.#roundMax = 0;
    this.#ringN = 0;
    this.#ringHead = 0;
    this.#rounds = 0;
    this.#fullBw = 0;
    this.#fullBwRounds = 0;
    this.#cycle = 0;
    this.#cycleStart = 0;
    this.#probeRttUntil = Number.NaN;
    this.#afterRto = false;
    this.#losses = 0;
    this.#timeouts = 0;
  }
}
