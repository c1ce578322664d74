import type { Host } from "./host.ts";
import type { Cancel } from "./timers.ts";

/**
 * The verbs every sans-IO core speaks (docs/drivers.md). A core need not implement this interface
 * literally — `CoreDriver` is wired to a core through a `CoreBinding` — but new cores should use
 * exactly these names, and old ones are being moved to them:
 *
 * - inputs, each with the current time `now` (ms, on the host clock): `receive(...)` for a packet,
 *   `handleTimeout(now)` when the deadline passed, and application calls named for what they do;
 * - outputs: `takeTransmits()` (datagrams to send, in order), `takeEvents()` (what the owner must
 *   hear about) and `nextDeadline()` (the absolute time `handleTimeout` is due next, or `undefined`
 *   when nothing is pending — never `Infinity`).
 */
export interface SansIoCore<Transmit, Event> {
  handleTimeout(now: number): void;
  takeTransmits(): Iterable<Transmit>;
  takeEvents(): Iterable<Event>;
  nextDeadline(): number | undefined;
}

/** How a `CoreDriver` reaches its core: the three things it does after every input. */
export interface CoreBinding {
  /**
   * Hands every pending output of the core to the world: sends its transmits, dispatches its events,
   * offers its deliveries. Returns true when it handed anything over (progress). Callbacks run here
   * may feed the core more input re-entrantly; the driver then drains again, but only after a pass
   * that made progress (a pass that handed nothing over cannot change what the next one would see).
   */
  drain(): boolean;
  /** Optional: true while the core still holds output after a drain (the driver drains again). */
  hasOutput?(): boolean;
  /** The core's next deadline (absolute, host clock), or `undefined` / `Infinity` for none. */
  nextDeadline(): number | undefined;
  /**
   * The armed deadline passed: run the core's timer with `now` (never earlier than the deadline).
   * Return exactly `false` to decline (e.g. a paused process): nothing is flushed or re-armed until the next
   * `flush`.
   */
  handleTimeout(now: number): unknown;
}

/**
 * THE driver pattern for running a sans-IO core on a `Host`: after every input (a packet, the
 * timer, an application call) drain the core's outputs, then keep exactly one host timer armed for
 * the core's next deadline — cancelled and re-armed only when that deadline changes, never armed
 * for `Infinity`/`undefined`.
 *
 * Re-entrancy: an input that arrives while outputs are being drained (an event handler that sends,
 * a transmit that loops back) is applied to the core at once — cores are synchronous and may return
 * a result — but its flush is folded into the running one: the driver drains again after the
 * current pass and arms the timer once at the end.
 *
 * `stop()` cancels the timer; afterwards inputs via `input` are ignored and nothing is drained.
 */
export class CoreDriver {
  readonly #host: Pick<Host, "clock" | "schedule">;
  readonly #b: CoreBinding;
  #cancel: Cancel | undefined;
  /** The deadline the armed timer is for (as the core reported it), or undefined when disarmed. */
  #armedFor: number | undefined;
  #flushing = false;
  #again = false;
  #stopped = false;

  constructor(host: Pick<Host, "clock" | "schedule">, binding: CoreBinding) {
    this.#host = host;
    this.#b = binding;
  }

  get stopped(): boolean {
    return this.#stopped;
  }
  /** True while outputs are being drained (an input now is re-entrant). */
  get flushing(): boolean {
    return this.#flushing;
  }
  /** The deadline the host timer is armed for, or undefined when none is armed. */
  get armedFor(): number | undefined {
    return this.#armedFor;
  }

  /**
   * Applies one input to the core with the host's current time, then flushes. Returns the input's
   * result; after `stop()` the input is not applied and `undefined` is returned.
   */
  input<T>(fn: (now: number) => T): T | undefined {
    if (this.#stopped) return undefined;
    const r = fn(this.#host.clock.now());
    this.flush();
    return r;
  }

  /** Drains the core's outputs and re-arms the timer. Call after feeding the core directly. */
  flush(): void {
    if (this.#stopped) return;
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#again = false;
        const progress = this.#b.drain();
        if (this.#b.hasOutput?.()) this.#again = true;
        else if (!progress) this.#again = false;
      } while (this.#again);
    } finally {
      this.#flushing = false;
    }
    this.#arm();
  }

  /** Cancels the timer; the driver does nothing more. Idempotent. */
  stop(): void {
    this.#stopped = true;
    this.#disarm();
  }

  #disarm(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#armedFor = undefined;
  }

  #arm(): void {
    if (this.#stopped) return;
    const d = this.#b.nextDeadline();
    if (d === undefined || d === Number.POSITIVE_INFINITY || Number.isNaN(d)) {
      this.#disarm();
      return;
    }
    if (this.#cancel !== undefined && this.#armedFor === d) return;
    this.#cancel?.();
    this.#armedFor = d;
    const at = Math.max(d, this.#host.clock.now());
    this.#cancel = this.#host.schedule(at, () => {
      this.#cancel = undefined;
      this.#armedFor = undefined;
      if (this.#stopped) return;
      if (this.#b.handleTimeout(Math.max(at, this.#host.clock.now())) === false) return;
      this.flush();
    });
  }
}
