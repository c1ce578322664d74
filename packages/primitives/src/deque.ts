import { CapacityError } from "./errors.ts";

/**
 * A bounded double-ended queue on a growable ring buffer: O(1) push/shift at both ends and O(1)
 * indexed access, never copying on shift. `maxLength` (default unbounded — the owner then enforces
 * its own bound) makes `push`/`unshift` throw `CapacityError` when full; check `isFull` first.
 */
export class Deque<T> {
  readonly maxLength: number;
  #buf: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 16, maxLength = Number.POSITIVE_INFINITY) {
    if (!(maxLength >= 0)) throw new RangeError(`Deque: maxLength must be >= 0, got ${maxLength}`);
    let cap = 1;
    while (cap < initialCapacity) cap *= 2;
    this.#buf = new Array<T | undefined>(cap);
    this.maxLength = maxLength;
  }

  get length(): number {
    return this.#size;
  }

  get isFull(): boolean {
    return this.#size >= this.maxLength;
  }

  #grow(): void {
    if (this.#size >= this.maxLength) throw new CapacityError("deque", this.maxLength);
    if (this.#size < this.#buf.length) return;
    const old = this.#buf;
    const nb = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) nb[i] = old[(this.#head + i) & (old.length - 1)];
    this.#buf = nb;
    this.#head = 0;
  }

  /** Appends at the back. */
  push(x: T): void {
    this.#grow();
    this.#buf[(this.#head + this.#size) & (this.#buf.length - 1)] = x;
    this.#size++;
  }

  /** Prepends at the front. */
  unshift(x: T): void {
    this.#grow();
    this.#head = (this.#head - 1) & (this.#buf.length - 1);
    this.#buf[this.#head] = x;
    this.#size++;
  }

  /** Removes and returns the front element. */
  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const x = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#size--;
    return x;
  }

  /** Removes and returns the back element. */
  pop(): T | undefined {
    if (this.#size === 0) return undefined;
    const i = (this.#head + this.#size - 1) & (this.#buf.length - 1);
    const x = this.#buf[i];
    this.#buf[i] = undefined;
    this.#size--;
    return x;
  }

  /** The front element, or undefined. */
  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[this.#head];
  }

  /** The back element, or undefined. */
  last(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[(this.#head + this.#size - 1) & (this.#buf.length - 1)];
  }

  /** The i-th element from the front (0-based), or undefined. */
  at(i: number): T | undefined {
    if (!(i >= 0 && i < this.#size)) return undefined;
    return this.#buf[(this.#head + i) & (this.#buf.length - 1)];
  }

  clear(): void {
    this.#buf.fill(undefined);
    this.#head = 0;
    this.#size = 0;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.#size; i++) yield this.#buf[(this.#head + i) & (this.#buf.length - 1)] as T;
  }
}
