import { MinHeap } from "./heap.ts";

/** Cancels a scheduled callback; calling it twice, or after the callback ran, does nothing. */
export type Cancel = () => void;

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  live: boolean;
}

/**
 * Many logical timers on one real one: the shells keep a single setTimeout armed for
 * `nextDeadline()` and call `runDue(now)` when it fires; the simulator drives it with virtual time.
 * Callbacks due at the same instant run in the order they were scheduled.
 */
export class TimerQueue {
  readonly #heap = new MinHeap<Entry>((a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq));
  #seq = 0;
  #live = 0;

  /** Number of pending (not cancelled) timers. */
  get pending(): number {
    return this.#live;
  }

  schedule(at: number, fn: () => void): Cancel {
    const e: Entry = { at, seq: this.#seq++, fn, live: true };
    this.#heap.push(e);
    this.#live++;
    return () => {
      if (e.live) {
        e.live = false;
        this.#live--;
      }
    };
  }

  /** The earliest pending deadline, or undefined when nothing is pending. */
  nextDeadline(): number | undefined {
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined) return undefined;
      if (top.live) return top.at;
      this.#heap.pop();
    }
  }

  /** Runs every callback due at or before `now`; returns how many ran. */
  runDue(now: number): number {
    let n = 0;
    for (;;) {
      const top = this.#heap.peek();
      if (top === undefined || top.at > now) return n;
      this.#heap.pop();
      if (!top.live) continue;
      top.live = false;
      this.#live--;
      n++;
      top.fn();
    }
  }

  clear(): void {
    this.#heap.clear();
    this.#live = 0;
  }
}
