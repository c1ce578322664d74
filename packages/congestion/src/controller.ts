/**
 * Window congestion controllers, in bytes. A controller only keeps the window; the link owns the
 * packets, detects loss and calls in. All inputs carry `now` (ms); nothing here reads a clock.
 *
 * Contract, per QUIC (RFC 9002 §7) with NewReno semantics:
 * - `onAck` for every newly acknowledged packet, with the time it was sent; packets sent before the
 *   current recovery period started do not grow the window; the window grows only when the sender
 *   was limited by it (`cwndLimited`), so an idle or application-limited link does not inflate it.
 * - `onLoss` for every packet declared lost; only the first loss of a packet sent after the last
 *   reduction starts a new loss episode (one multiplicative decrease per episode).
 * - `onRto` when the retransmission timer fires: the window collapses to the loss window.
 */
import { Bbr, type BbrOptions } from "./bbr.ts";

export interface CongestionController {
  readonly name: "newreno" | "cubic" | "rate" | "bbr";
  /** Congestion window in bytes (Infinity for the rate-capped mode). */
  readonly cwnd: number;
  readonly ssthresh: number;
  readonly inSlowStart: boolean;
  /** Number of multiplicative decreases so far (loss episodes + timeouts), less those undone. */
  readonly reductions: number;
  onAck(now: number, ackedBytes: number, sentAt: number, srttMs: number, cwndLimited: boolean): void;
  /**
   * `appFlight`: given when the sender is application-limited (it ran out of data, the window was
   * not what stopped it), the bytes it had in flight when the loss was found, the lost packet
   * included. The window is then not reduced below `appFlight` + 2 MSS as long as that stays
   * within the window of a TCP flow at the link's loss event rate (`tcpFairWindow`), so a flow
   * well below its fair share recovers a loss without waiting for the window, and a flow at or
   * above it backs off as NewReno (docs/links.md §6).
   *
   * `inRun`: true when the transmission sent just before this one was declared lost too, i.e. the
   * packet is part of a run of consecutive drops (one queue overflow instant). The N-flow window
   * counts a run of r drops as (r + 1)/2 emulated flows hit, not r (docs/congestion.md); the other
   * controllers ignore it.
   */
  onLoss(now: number, lostBytes: number, sentAt: number, appFlight?: number, inRun?: boolean): void;
  onRto(now: number): void;
  /**
   * The loss event rate seen so far (RFC 5348 §5.4 average loss interval over the last 8 loss
   * episodes, in packets; 0 before the first episode).
   */
  readonly lossEventRate: number;
  /**
   * The mean window (bytes) of `flowCount` Reno flows at `lossEventRate` (Mathis et al.:
   * MSS·√(3/(2p)) each); Infinity before the first loss episode.
   */
  readonly tcpFairWindow: number;
  /**
   * Reverts the most recent reduction (`onLoss` episode or `onRto`) when the sender has proven it
   * spurious (RFC 4015 Eifel response: the acknowledged data was never lost). A no-op when there
   * is nothing to undo; at most one level deep, and any later reduction replaces the saved state.
   */
  undo(): void;
  /** Pacing rate in bytes per ms for this window and RTT (Infinity = unpaced). */
  pacingRate(srttMs: number): number;
  /**
   * How many TCP flows the controller emulates (MulTCP, docs/congestion.md): 1 unless set, and
   * always 1 for the controllers without an N-flow mode (CUBIC, rate-capped).
   */
  readonly flowCount: number;
  /**
   * Emulate `n` TCP flows (1 ≤ n ≤ MAX_FLOW_COUNT, not necessarily an integer): NewReno then grows
   * by n segments per window of acked bytes and reduces by a factor 1 − 1/(2n) per loss episode, so
   * one window takes about n Reno flows' share of a shared bottleneck. n = 1 is plain NewReno. Takes
   * effect from the next input; the window itself is not changed. A no-op on CUBIC and rate-capped.
   */
  setFlowCount(n: number): void;
  /** Back to the initial state (the flow count too goes back to 1). */
  reset(): void;
}

/** Largest flow count `setFlowCount` accepts. */
export const MAX_FLOW_COUNT = 256;

function flowCountArg(n: number): number {
  if (typeof n !== "number" || !Number.isFinite(n) || n < 1 || n > MAX_FLOW_COUNT)
    throw new RangeError(`flow count must be a number in [1, ${MAX_FLOW_COUNT}], got ${String(n)}`);
  return n;
}

/**
 * Segments of room an application-limited sender keeps after a loss beside what it had in flight
 * (the lost packet included): its retransmission is outstanding for a round trip while the new
 * packets of that round trip and the detection wait go out. With 1, a 100 packets/s flow on a
 * 20 ms link at 5 % loss still waited for the window after losses in consecutive round trips
 * (netsim: 11.74 ms mean against the model's 11.58); with 2 it meets the model.
 */
const APP_LIMITED_ALLOWANCE = 2;

/**
 * Consecutive drops one emulated flow loses in a run (N-flow window): a TCP flow with delayed acks
 * (an ack every second segment, RFC 5681 §4.2) sends its packets two at a time, so a run of drops
 * at a full drop-tail queue takes two packets from each flow it hits.
 */
const RUN_PACKETS_PER_FLOW = 2;

/** RFC 5348 §5.4 weights of the 8 most recent loss intervals. */
const LOSS_INTERVAL_WEIGHTS = [1, 1, 1, 1, 0.8, 0.6, 0.4, 0.2] as const;

/**
 * Loss event rate estimator (TFRC, RFC 5348 §5.4): packets are counted between loss events (the
 * first loss of each loss episode); the rate is 1 / the weighted mean of the last 8 intervals,
 * with the open interval (packets since the last event) counted when it raises the mean. Before
 * the first event the rate is 0. Pure: the caller says when a packet or an event happens.
 */
export class LossEventRate {
  /** Closed intervals in packets, most recent first (at most 8). */
  readonly #closed: number[] = [];
  #open = 0;

  /** One packet sent and resolved (acked or lost). */
  packet(): void {
    this.#open++;
  }

  /** A loss event: closes the open interval (the lost packet ends it). */
  event(): void {
    this.#closed.unshift(Math.max(1, this.#open));
    if (this.#closed.length > LOSS_INTERVAL_WEIGHTS.length) this.#closed.pop();
    this.#open = 0;
  }

  get events(): number {
    return this.#closed.length;
  }

  /** Loss events per packet, 0 before the first event. */
  get rate(): number {
    const c = this.#closed;
    if (c.length === 0) return 0;
    // I_tot1: the closed intervals; I_tot0: the open one first, shifting the others by one.
    let tot1 = 0;
    let w1 = 0;
    let tot0 = this.#open * LOSS_INTERVAL_WEIGHTS[0];
    let w0 = LOSS_INTERVAL_WEIGHTS[0] as number;
    for (let i = 0; i < c.length; i++) {
      const wi = LOSS_INTERVAL_WEIGHTS[i] as number;
      tot1 += (c[i] as number) * wi;
      w1 += wi;
      if (i + 1 < LOSS_INTERVAL_WEIGHTS.length) {
        const wn = LOSS_INTERVAL_WEIGHTS[i + 1] as number;
        tot0 += (c[i] as number) * wn;
        w0 += wn;
      }
    }
    const mean = Math.max(tot1 / w1, tot0 / w0);
    return 1 / mean;
  }

  reset(): void {
    this.#closed.length = 0;
    this.#open = 0;
  }
}

export interface WindowOptions {
  /** Maximum segment size in bytes (the link's largest data frame). Default 1,200. */
  readonly mss?: number;
  /** Initial window in segments. Default 10 (RFC 6928). */
  readonly initialWindow?: number;
  /** Smallest window after a loss, in segments. Default 2. */
  readonly minWindow?: number;
  /** Window after a retransmission timeout, in segments. Default 1. */
  readonly lossWindow?: number;
  /** Largest window in bytes (a link's buffer bounds it anyway). Default 64 MiB. */
  readonly maxWindowBytes?: number;
  /** Pacing gain in slow start and in congestion avoidance. Defaults 2 and 1.25 (as Linux). */
  readonly pacingGainSlowStart?: number;
  readonly pacingGainAvoidance?: number;
}

function intOpt(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min)
    throw new RangeError(`${name} must be a finite number >= ${min}, got ${v}`);
  return v;
}

abstract class WindowBase {
  readonly mss: number;
  protected readonly initialWindow: number;
  protected readonly minWindowBytes: number;
  protected readonly lossWindowBytes: number;
  protected readonly maxWindowBytes: number;
  readonly #gainSS: number;
  readonly #gainCA: number;
  protected window: number;
  protected thresh = Number.POSITIVE_INFINITY;
  /** Sent-time boundary of the current recovery period (-Infinity: none). */
  protected recoveryStart = Number.NEGATIVE_INFINITY;
  protected nReductions = 0;
  /** Bytes acked in congestion avoidance not yet turned into window growth. */
  protected caAcc = 0;
  /** True from a timeout until the next ack: back-to-back timeouts keep the state before the first. */
  protected rtoChain = false;
  /** Emulated TCP flows (MulTCP); 1 = a single flow. Only NewReno uses it. */
  protected flows = 1;
  /** Loss events per packet, for the application-limited floor (`appFloor`). */
  protected readonly lossEvents = new LossEventRate();
  /** State before the last reduction, for `undo`. */
  #saved:
    | { window: number; thresh: number; recoveryStart: number; caAcc: number; reductions: number }
    | undefined;

  constructor(o: WindowOptions) {
    this.mss = intOpt("mss", o.mss, 1200, 64);
    this.initialWindow = intOpt("initialWindow", o.initialWindow, 10, 1) * this.mss;
    this.minWindowBytes = intOpt("minWindow", o.minWindow, 2, 1) * this.mss;
    this.lossWindowBytes = intOpt("lossWindow", o.lossWindow, 1, 1) * this.mss;
    this.maxWindowBytes = intOpt("maxWindowBytes", o.maxWindowBytes, 64 * 1024 * 1024, this.mss);
    this.#gainSS = intOpt("pacingGainSlowStart", o.pacingGainSlowStart, 2, 1);
    this.#gainCA = intOpt("pacingGainAvoidance", o.pacingGainAvoidance, 1.25, 1);
    this.window = this.initialWindow;
  }

  get cwnd(): number {
    return this.window;
  }
  get ssthresh(): number {
    return this.thresh;
  }
  get inSlowStart(): boolean {
    return this.window < this.thresh;
  }
  get reductions(): number {
    return this.nReductions;
  }
  get flowCount(): number {
    return this.flows;
  }
  get lossEventRate(): number {
    return this.lossEvents.rate;
  }
  get tcpFairWindow(): number {
    const p = this.lossEvents.rate;
    return p > 0 ? this.flows * this.mss * Math.sqrt(1.5 / p) : Number.POSITIVE_INFINITY;
  }

  /**
   * The least window after a loss of an application-limited sender that had `appFlight` bytes
   * in flight: that plus `APP_LIMITED_ALLOWANCE` MSS, but never more than the TCP-fair window at
   * the loss event rate, so the flow's rate stays within a TCP flow's (RFC 5348's definition of
   * TCP-friendly). 0 for a window-limited sender (undefined).
   */
  protected appFloor(appFlight: number | undefined): number {
    if (appFlight === undefined || !(appFlight >= 0)) return 0;
    return Math.min(this.maxWindowBytes, appFlight + APP_LIMITED_ALLOWANCE * this.mss, this.tcpFairWindow);
  }

  /** CUBIC has no N-flow mode: it checks the argument and stays at one flow. NewReno overrides. */
  setFlowCount(n: number): void {
    flowCountArg(n);
  }

  pacingRate(srttMs: number): number {
    const g = this.inSlowStart ? this.#gainSS : this.#gainCA;
    return (g * this.window) / Math.max(srttMs, 0.1);
  }

  reset(): void {
    this.window = this.initialWindow;
    this.thresh = Number.POSITIVE_INFINITY;
    this.recoveryStart = Number.NEGATIVE_INFINITY;
    this.nReductions = 0;
    this.caAcc = 0;
    this.#saved = undefined;
    this.rtoChain = false;
    this.flows = 1;
    this.lossEvents.reset();
  }

  /** Saves the state a reduction is about to change (see `undo`). */
  protected save(): void {
    this.#saved = {
      window: this.window,
      thresh: this.thresh,
      recoveryStart: this.recoveryStart,
      caAcc: this.caAcc,
      reductions: this.nReductions,
    };
  }

  undo(): void {
    const s = this.#saved;
    if (s === undefined) return;
    this.#saved = undefined;
    this.rtoChain = false;
    // Never shrink: the window may have grown since the reduction.
    this.window = Math.max(this.window, s.window);
    this.thresh = s.thresh;
    this.recoveryStart = s.recoveryStart;
    this.caAcc = s.caAcc;
    this.nReductions = s.reductions;
    this.onUndo();
  }

  /** Subclass state to restore on `undo`. */
  protected onUndo(): void {}

  protected inRecovery(sentAt: number): boolean {
    return sentAt <= this.recoveryStart;
  }

  onRto(now: number): void {
    if (!this.rtoChain) this.save();
    this.rtoChain = true;
    this.thresh = Math.max(this.window / 2, this.minWindowBytes);
    this.window = this.lossWindowBytes;
    this.recoveryStart = now;
    this.caAcc = 0;
    this.nReductions++;
  }
}

/**
 * NewReno (RFC 5681/6582 as framed by RFC 9002 §7): slow start, AIMD(1, 1/2), byte counting. With
 * `setFlowCount(n)` it is MulTCP (Crowcroft & Oechslin, 1998): the aggregate of n Reno flows in
 * congestion avoidance, growing n segments per RTT, and losing 1/(2n) of the window per emulated
 * flow a loss episode hits: the first loss of an episode hits one, each further packet lost from
 * the same window of data hits one more (the flows' packets are interleaved), up to all n (a
 * halving, as n flows that all lose at once at a drop-tail queue), except that a packet continuing
 * a run of consecutive drops (`inRun`) hits only half a flow more: a run of r drops hits (r + 1)/2
 * flows, as it would flows sending two packets at a time. docs/congestion.md.
 */
export class NewReno extends WindowBase implements CongestionController {
  readonly name = "newreno" as const;
  /** Window before the current loss episode's first reduction. */
  #episodeWindow = 0;
  /** Emulated flows the current episode has hit (Infinity: no more cuts in this episode). */
  #episodeHits = Number.POSITIVE_INFINITY;
  /** The previous episode's start: losses of data sent before it belong to an older episode. */
  #episodeFloor = Number.NEGATIVE_INFINITY;

  constructor(o: WindowOptions = {}) {
    super(o);
  }

  override reset(): void {
    super.reset();
    this.#episodeHits = Number.POSITIVE_INFINITY;
    this.#episodeFloor = Number.NEGATIVE_INFINITY;
  }

  protected override onUndo(): void {
    this.#episodeHits = Number.POSITIVE_INFINITY;
  }

  override onRto(now: number): void {
    super.onRto(now);
    this.#episodeHits = Number.POSITIVE_INFINITY;
  }

  override setFlowCount(n: number): void {
    this.flows = flowCountArg(n);
  }

  onAck(_now: number, ackedBytes: number, sentAt: number, _srtt: number, cwndLimited: boolean): void {
    this.rtoChain = false;
    this.lossEvents.packet();
    if (this.inRecovery(sentAt) || !cwndLimited) return;
    if (this.window < this.thresh) {
      // Slow start doubles the window per RTT whatever n (n flows each doubling double their sum).
      this.window = Math.min(this.maxWindowBytes, this.window + ackedBytes);
      return;
    }
    // n segments per window of acked bytes (n = 1: one, as Reno).
    this.caAcc += ackedBytes * this.flows;
    while (this.caAcc >= this.window) {
      this.caAcc -= this.window;
      this.window = Math.min(this.maxWindowBytes, this.window + this.mss);
    }
  }

  onLoss(now: number, _lostBytes: number, sentAt: number, appFlight?: number, inRun?: boolean): void {
    this.lossEvents.packet();
    if (this.inRecovery(sentAt)) {
      // N-flow mode: one more emulated flow hit by this episode, if the packet was sent after the
      // previous episode began (n = 1: the first loss already hit the only flow). A packet that
      // continues a run of consecutive drops (one overflow of a drop-tail queue) hits half a flow
      // more: independent TCP flows send in bursts and lose a burst's tail together (kernel Reno
      // flows lost 1.9-2.2 packets per reduction in the fairness bench), so a run of r drops across
      // flows sending RUN_PACKETS_PER_FLOW packets at a time hits (r + 1)/2 of them on average (at
      // a random alignment), not r.
      const n = this.flows;
      if (this.#episodeHits < n && sentAt > this.#episodeFloor) {
        const before = this.#episodeHits;
        this.#episodeHits = Math.min(n, before + (inRun === true ? 1 / RUN_PACKETS_PER_FLOW : 1));
        const cut = ((this.#episodeHits - before) / (2 * n)) * this.#episodeWindow;
        this.window = Math.max(
          this.window - cut,
          this.minWindowBytes,
          Math.min(this.window, this.appFloor(appFlight)),
        );
        this.thresh = this.window;
        this.caAcc = 0;
      }
      return;
    }
    this.save();
    this.lossEvents.event();
    this.#episodeFloor = this.recoveryStart;
    this.#episodeWindow = this.window;
    this.#episodeHits = Math.min(1, this.flows);
    this.recoveryStart = now;
    // One of n equal flows halves: the sum loses 1/(2n) of itself (n = 1: a halving). An
    // application-limited sender keeps room for what it was sending, within the TCP-fair window
    // (never more than it had).
    this.thresh = Math.max(
      this.window * (1 - 1 / (2 * this.flows)),
      this.minWindowBytes,
      Math.min(this.window, this.appFloor(appFlight)),
    );
    this.window = this.thresh;
    this.caAcc = 0;
    this.nReductions++;
  }
}

export interface CubicOptions extends WindowOptions {
  /** RFC 9438 C, default 0.4. */
  readonly c?: number;
  /** RFC 9438 beta_cubic, default 0.7. */
  readonly beta?: number;
  /** Fast convergence (RFC 9438 §4.7), default true. */
  readonly fastConvergence?: boolean;
}

/** CUBIC (RFC 9438) with the Reno-friendly region and fast convergence. */
export class Cubic extends WindowBase implements CongestionController {
  readonly name = "cubic" as const;
  readonly #c: number;
  readonly #beta: number;
  readonly #fast: boolean;
  /** Window before the last reduction, in segments. */
  #wMax = 0;
  #k = 0;
  /** Start of the current congestion-avoidance epoch (ms), or undefined. */
  #epoch: number | undefined;
  /** Reno-friendly estimate, in segments. */
  #wEst = 0;

  constructor(o: CubicOptions = {}) {
    super(o);
    this.#c = intOpt("c", o.c, 0.4, 0.01);
    this.#beta = intOpt("beta", o.beta, 0.7, 0.1);
    if (this.#beta >= 1) throw new RangeError(`beta must be < 1, got ${this.#beta}`);
    this.#fast = o.fastConvergence ?? true;
  }

  override reset(): void {
    super.reset();
    this.#cubicSaved = undefined;
    this.#wMax = 0;
    this.#k = 0;
    this.#epoch = undefined;
    this.#wEst = 0;
  }

  onAck(now: number, ackedBytes: number, sentAt: number, srttMs: number, cwndLimited: boolean): void {
    this.rtoChain = false;
    this.lossEvents.packet();
    if (this.inRecovery(sentAt) || !cwndLimited) return;
    if (this.window < this.thresh) {
      this.window = Math.min(this.maxWindowBytes, this.window + ackedBytes);
      return;
    }
    const mss = this.mss;
    const cwndSeg = this.window / mss;
    if (this.#epoch === undefined) {
      this.#epoch = now;
      if (this.#wMax <= cwndSeg) {
        this.#wMax = cwndSeg;
        this.#k = 0;
      } else {
        this.#k = Math.cbrt((this.#wMax - cwndSeg) / this.#c);
      }
      this.#wEst = cwndSeg;
    }
    const t = (now - this.#epoch + srttMs) / 1000;
    const target = this.#c * (t - this.#k) ** 3 + this.#wMax;
    const alpha = (3 * (1 - this.#beta)) / (1 + this.#beta);
    this.#wEst += (alpha * ackedBytes) / this.window;
    let next: number;
    if (target < this.#wEst) {
      next = this.#wEst * mss;
    } else {
      const bounded = Math.min(target, 1.5 * cwndSeg);
      next = this.window + ((bounded - cwndSeg) / cwndSeg) * ackedBytes;
    }
    this.window = Math.min(this.maxWindowBytes, Math.max(this.window, next));
  }

  #cubicSaved: { wMax: number; k: number; epoch: number | undefined; wEst: number } | undefined;

  #saveCubic(): void {
    this.#cubicSaved = { wMax: this.#wMax, k: this.#k, epoch: this.#epoch, wEst: this.#wEst };
  }

  protected override onUndo(): void {
    const s = this.#cubicSaved;
    if (s === undefined) return;
    this.#cubicSaved = undefined;
    this.#wMax = s.wMax;
    this.#k = s.k;
    this.#epoch = s.epoch;
    this.#wEst = s.wEst;
  }

  onLoss(now: number, _lostBytes: number, sentAt: number, appFlight?: number): void {
    this.lossEvents.packet();
    if (this.inRecovery(sentAt)) return;
    this.save();
    this.#saveCubic();
    this.lossEvents.event();
    this.recoveryStart = now;
    const cwndSeg = this.window / this.mss;
    this.#wMax = this.#fast && cwndSeg < this.#wMax ? (cwndSeg * (1 + this.#beta)) / 2 : cwndSeg;
    this.window = Math.max(
      this.window * this.#beta,
      this.minWindowBytes,
      Math.min(this.window, this.appFloor(appFlight)),
    );
    this.thresh = this.window;
    this.#epoch = undefined;
    this.nReductions++;
  }

  override onRto(now: number): void {
    if (!this.rtoChain) this.#saveCubic();
    const cwndSeg = this.window / this.mss;
    this.#wMax = cwndSeg;
    this.#epoch = undefined;
    super.onRto(now);
    this.thresh = Math.max(cwndSeg * this.mss * this.#beta, this.minWindowBytes);
  }
}

/**
 * No loss-based window: the link sends at a fixed rate (Spines 5.x's default, for dedicated
 * networks). Loss and timeouts are counted but do not slow it down.
 */
export class RateCapped implements CongestionController {
  readonly name = "rate" as const;
  readonly cwnd = Number.POSITIVE_INFINITY;
  readonly ssthresh = Number.POSITIVE_INFINITY;
  readonly inSlowStart = false;
  readonly #rate: number;
  #losses = 0;

  /** @param rateBytesPerMs the sending rate (bytes per ms = kB/s) */
  constructor(rateBytesPerMs: number) {
    if (!(rateBytesPerMs > 0)) throw new RangeError(`RateCapped: rate must be > 0, got ${rateBytesPerMs}`);
    this.#rate = rateBytesPerMs;
  }
  get reductions(): number {
    return 0;
  }
  readonly lossEventRate = 0;
  readonly tcpFairWindow = Number.POSITIVE_INFINITY;
  /** Losses and timeouts seen (for metrics only). */
  get losses(): number {
    return this.#losses;
  }
  onAck(): void {}
  onLoss(): void {
    this.#losses++;
  }
  onRto(): void {
    this.#losses++;
  }
  undo(): void {}
  get flowCount(): number {
    return 1;
  }
  setFlowCount(n: number): void {
    flowCountArg(n);
  }
  pacingRate(): number {
    return this.#rate;
  }
  reset(): void {
    this.#losses = 0;
  }
}

export type CongestionConfig =
  | { readonly kind: "newreno"; readonly options?: WindowOptions }
  | { readonly kind: "cubic"; readonly options?: CubicOptions }
  | { readonly kind: "rate"; readonly rateBytesPerMs: number }
  | { readonly kind: "bbr"; readonly options?: BbrOptions };

/** Builds a controller from its configuration. */
export function createController(cfg: CongestionConfig, mss?: number): CongestionController {
  switch (cfg.kind) {
    case "newreno":
      return new NewReno({ ...(mss === undefined ? {} : { mss }), ...cfg.options });
    case "cubic":
      return new Cubic({ ...(mss === undefined ? {} : { mss }), ...cfg.options });
    case "rate":
      return new RateCapped(cfg.rateBytesPerMs);
    case "bbr":
      return new Bbr({ ...(mss === undefined ? {} : { mss }), ...cfg.options });
    default:
      throw new TypeError(`unknown congestion controller ${(cfg as { kind: unknown }).kind}`);
  }
}
