/**
 * Watches this process's event loop: a short interval timer that notes how late it fires. A stall
 * (GC, a synchronous spawn, the whole machine starved of CPU) is time in which no heartbeat was sent
 * or read, so the other members may exclude this node; the stalls are counted, the longest is kept,
 * and one longer than `warnMs` is logged (at most once per `logEveryMs`), so an operator can tell
 * "the network lost us" from "this host could not run us".
 */
import type { Logger } from "@spines-ts/primitives";

export interface LoopStats {
  /** Stalls longer than `stallMs` beyond the tick. */
  stalls: number;
  /** The longest stall seen (ms). */
  maxStallMs: number;
}

export class LoopMonitor {
  readonly stats: LoopStats = { stalls: 0, maxStallMs: 0 };
  readonly #tickMs: number;
  readonly #stallMs: number;
  readonly #warnMs: number;
  readonly #logEveryMs: number;
  readonly #log: Logger;
  readonly #clock: () => number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #last = 0;
  #lastLog = -Infinity;

  constructor(
    log: Logger,
    opts: {
      tickMs?: number;
      stallMs?: number;
      warnMs?: number;
      logEveryMs?: number;
      clock?: () => number;
    } = {},
  ) {
    this.#log = log;
    this.#tickMs = opts.tickMs ?? 20;
    this.#stallMs = opts.stallMs ?? 50;
    this.#warnMs = opts.warnMs ?? 200;
    this.#logEveryMs = opts.logEveryMs ?? 10_000;
    this.#clock = opts.clock ?? (() => performance.now());
  }

  start(): void {
    if (this.#timer !== undefined) return;
    this.#last = this.#clock();
    this.#timer = setInterval(() => this.tick(), this.#tickMs);
    this.#timer.unref?.();
  }

  /** One tick (called by the timer; public for tests). */
  tick(): void {
    const t = this.#clock();
    const stall = t - this.#last - this.#tickMs;
    this.#last = t;
    if (stall <= this.#stallMs) return;
    this.stats.stalls++;
    if (stall > this.stats.maxStallMs) this.stats.maxStallMs = Math.round(stall);
    if (stall > this.#warnMs && t - this.#lastLog >= this.#logEveryMs) {
      this.#lastLog = t;
      this.#log.warn(
        { stallMs: Math.round(stall), stalls: this.stats.stalls },
        "event loop stalled: heartbeats were late (is the host overloaded?)",
      );
    }
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
