import { type Cancel, type Host, TimerQueue } from "@spines-ts/primitives";
import type { UdpHost } from "../src/index.ts";

/**
 * A deliberately broken host for the compliance suite's own test: a `UdpHost` whose timers run on
 * the arming algorithm UdpHost had before node-host (spines-node's udp-host.ts at commit aece546),
 * copied as it was. After any timer fires with only `schedule(Infinity)` left, it arms
 * `setTimeout(Infinity)`, which Node clamps to 1 ms, so it wakes every millisecond forever; and it
 * waits for sub-millisecond deadlines with a loop of `setImmediate`s.
 */
export class LegacyTimerHost implements Host {
  readonly inner: UdpHost;
  wakeups = 0;
  readonly #timers = new TimerQueue();
  #timer: NodeJS.Timeout | undefined;
  #immediate: NodeJS.Immediate | undefined;
  #armedAt = Number.POSITIVE_INFINITY;
  #closed = false;
  #firing = false;

  constructor(inner: UdpHost) {
    this.inner = inner;
  }
  get id() {
    return this.inner.id;
  }
  get clock() {
    return this.inner.clock;
  }
  get rng() {
    return this.inner.rng;
  }
  get log() {
    return this.inner.log;
  }
  send(to: number, data: Uint8Array): void {
    this.inner.send(to, data);
  }
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    if (this.#immediate !== undefined) clearImmediate(this.#immediate);
    this.#timers.clear();
    await this.inner.close();
  }

  // ---- the old algorithm, unchanged except for counting wakeups
  schedule(at: number, fn: () => void): Cancel {
    const cancel = this.#timers.schedule(at, fn);
    if (at < this.#armedAt && !this.#firing) this.#arm();
    return cancel;
  }

  #arm(): void {
    if (this.#closed) return;
    const next = this.#timers.nextDeadline();
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    if (next === undefined) {
      this.#armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    this.#armedAt = next;
    const delay = next - this.clock.now();
    if (delay < 1) {
      this.#immediate ??= setImmediate(this.#fireImmediate);
    } else {
      this.#timer = setTimeout(this.#fire, Math.floor(delay));
    }
  }

  readonly #fireImmediate = (): void => {
    this.#immediate = undefined;
    if (this.#armedAt - this.clock.now() >= 1 && this.#timer === undefined) {
      this.wakeups++;
      this.#arm();
      return;
    }
    this.#fire();
  };

  readonly #fire = (): void => {
    this.wakeups++;
    this.#timer = undefined;
    if (this.#immediate !== undefined) {
      clearImmediate(this.#immediate);
      this.#immediate = undefined;
    }
    this.#armedAt = Number.POSITIVE_INFINITY;
    this.#firing = true;
    for (;;) {
      try {
        this.#timers.runDue(this.clock.now());
        break;
      } catch {
        // counted by nobody: the old host counted timerErrors on its own stats
      }
    }
    this.#firing = false;
    this.#arm();
  };
}
