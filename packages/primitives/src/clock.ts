/** A source of time in milliseconds. Protocol cores never read a clock; their shells pass `now` in. */
export interface Clock {
  /** Milliseconds since an arbitrary, fixed origin; never goes backwards. */
  now(): number;
}

/** A clock that moves only when told to: for tests and for the simulator. */
export class ManualClock implements Clock {
  #now: number;
  constructor(start = 0) {
    this.#now = start;
  }
  now(): number {
    return this.#now;
  }
  /** Move time forward by `ms` (never backwards). */
  advance(ms: number): number {
    if (!(ms >= 0)) throw new RangeError(`ManualClock.advance: ms must be >= 0, got ${ms}`);
    this.#now += ms;
    return this.#now;
  }
  /** Jump to absolute time `t`, which must not be earlier than now. */
  set(t: number): void {
    if (!(t >= this.#now))
      throw new RangeError(`ManualClock.set: time would go backwards (${this.#now} -> ${t})`);
    this.#now = t;
  }
}
