/**
 * A sub-millisecond one-shot timer. Node's `setTimeout` counts in whole milliseconds against a
 * loop clock that is itself truncated to the millisecond, so a deadline 9.6 ms away fires anywhere
 * from 9 to 11 ms later, and nothing below 1 ms can be waited for without spinning. Measured
 * through one 10 ms link of the netlab emulator, `setTimeout` delivery added 0.49–0.72 ms per
 * packet and this timer 0.41–0.55 (the rest is socat, TUN and the stack); the netns latency bench's
 * 4-hop stream at 5 % loss went from 1.25× to 1.12× the model with it (issue 13).
 *
 * A worker thread sleeps in `Atomics.wait` with a fractional-millisecond timeout (a futex with a
 * nanosecond deadline) and posts one message when the deadline passes; the message wakes the main
 * event loop at once. The main thread moves the deadline by writing it into shared memory and
 * bumping a generation counter, which wakes the worker to re-read it. Both threads read the same
 * clock, CLOCK_MONOTONIC through `process.hrtime` ({@link monoMs}). One worker serves every timer of
 * the process; it is unref'd and never keeps a process alive.
 */
import { Worker } from "node:worker_threads";

/** Milliseconds of CLOCK_MONOTONIC (the same clock in every thread of the process). */
export function monoMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

// Shared layout: Int32 [0] generation, [1] stop flag; Float64 at byte 8: the deadline (monoMs), or
// Infinity for none. Plain JS (run with `eval`), so the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const i32 = new Int32Array(workerData, 0, 2);
const f64 = new Float64Array(workerData, 8, 1);
const mono = () => { const t = process.hrtime(); return t[0] * 1e3 + t[1] / 1e6; };
for (;;) {
  if (Atomics.load(i32, 1) !== 0) break;
  const gen = Atomics.load(i32, 0);
  const deadline = f64[0];
  if (!(deadline < Infinity)) { Atomics.wait(i32, 0, gen); continue; }
  const wait = deadline - mono();
  if (wait > 0) { Atomics.wait(i32, 0, gen, wait); continue; }
  parentPort.postMessage(gen);
  Atomics.wait(i32, 0, gen);
}
`;

/** A deadline moved earlier by less than this (ms) fires that much late rather than wake the worker. */
const LAZY_MS = 0.005;

/** The one worker of the process and the timers it serves (created on first use). */
class SharedWorker {
  readonly #i32: Int32Array;
  readonly #f64: Float64Array;
  readonly #armed = new Set<PreciseTimer>();
  /** The deadline the worker waits for (NaN: must be rewritten, the worker is parked after a fire). */
  #workerAt = Number.POSITIVE_INFINITY;
  online = false;

  constructor() {
    const shared = new SharedArrayBuffer(16);
    this.#i32 = new Int32Array(shared, 0, 2);
    this.#f64 = new Float64Array(shared, 8, 1);
    this.#f64[0] = Number.POSITIVE_INFINITY;
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: shared });
    worker.once("online", () => {
      this.online = true;
    });
    worker.on("message", () => this.#fire());
    worker.unref();
  }

  set(t: PreciseTimer, armed: boolean): void {
    if (armed) this.#armed.add(t);
    else this.#armed.delete(t);
    this.#update();
  }

  #update(): void {
    let min = Number.POSITIVE_INFINITY;
    for (const t of this.#armed) if (t.at < min) min = t.at;
    if (min === this.#workerAt) return;
    // A deadline that moved later (or went away) is left to the worker: it wakes at the old one,
    // `#fire` finds nothing due and writes the new one. Telling it now would cost a futex wake and
    // a thread switch per move, and a busy host moves its deadline every turn (issue 10: 6 % of a
    // transit daemon's main thread). Earlier by less than LAZY_MS counts as no move.
    if (min >= this.#workerAt - LAZY_MS) return;
    this.#workerAt = min;
    this.#f64[0] = min;
    Atomics.add(this.#i32, 0, 1);
    Atomics.notify(this.#i32, 0);
  }

  #fire(): void {
    const now = monoMs();
    const due: PreciseTimer[] = [];
    for (const t of this.#armed) if (t.at <= now) due.push(t);
    for (const t of due) {
      this.#armed.delete(t);
      t.fired();
    }
    this.#workerAt = Number.NaN; // the worker waits for a new generation after every message
    this.#update();
    for (const t of due) t.run();
  }
}

let shared: SharedWorker | undefined;
const sharedWorker = (): SharedWorker => {
  shared ??= new SharedWorker();
  return shared;
};

/**
 * One deadline at a time; any number of them share the process's one worker thread, which waits
 * for the earliest.
 */
export class PreciseTimer {
  readonly #onFire: () => void;
  #at = Number.POSITIVE_INFINITY;

  /** `onFire` runs on the main thread once the armed deadline has passed. */
  constructor(onFire: () => void) {
    this.#onFire = onFire;
    sharedWorker();
  }

  /**
   * Whether the worker thread runs (it takes some tens of ms to start, and the first deadline armed
   * before then fires only once it has): a caller that must not wait that long keeps its old timer
   * until this is true.
   */
  static get ready(): boolean {
    return sharedWorker().online;
  }

  /** The armed deadline (monoMs), Infinity when none. */
  get at(): number {
    return this.#at;
  }

  /** Fire at `at` (monoMs); replaces any earlier arming. Infinity disarms. */
  arm(at: number): void {
    if (at === this.#at) return;
    this.#at = at;
    sharedWorker().set(this, at < Number.POSITIVE_INFINITY);
  }

  /** Disarms (the shared worker stays; it is unref'd and never keeps the process alive). */
  close(): void {
    this.arm(Number.POSITIVE_INFINITY);
  }

  /** @internal The worker found this timer due: disarmed before any callback runs. */
  fired(): void {
    this.#at = Number.POSITIVE_INFINITY;
  }

  /** @internal */
  run(): void {
    this.#onFire();
  }
}
