/**
 * A growable ring-buffer double-ended queue: O(1) push/shift at both ends. Used by the schedulers
 * and link buffers so that queue operations never copy arrays.
 */
export class Deque<T> {
  #buf: (T | undefined)[];
  #head = 0;
  #size = 0;

  constructor(initialCapacity = 16) {
    let cap = 1;
    while (cap < initialCapacity) cap *= 2;
    this.#buf = new Array<T | undefined>(cap);
  }

  get length(): number {
    return this.#size;
  }

  #grow(): void {
    const old = this.#buf;
    const nb = new Array<T | undefined>(old.length * 2);
    for (let i = 0; i < this.#size; i++) nb[i] = old[(this.#head + i) & (old.length - 1)];
    this.#buf = nb;
    this.#head = 0;
  }

  push(x: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#buf[(this.#head + this.#size) & (this.#buf.length - 1)] = x;
    this.#size++;
  }

  unshift(x: T): void {
    if (this.#size === this.#buf.length) this.#grow();
    this.#head = (this.#head - 1) & (this.#buf.length - 1);
    this.#buf[this.#head] = x;
    this.#size++;
  }

  shift(): T | undefined {
    if (this.#size === 0) return undefined;
    const x = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & (this.#buf.length - 1);
    this.#size--;
    return x;
  }

  peek(): T | undefined {
    return this.#size === 0 ? undefined : this.#buf[this.#head];
  }

  /** The i-th element from the front (0-based), or undefined. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#size) return undefined;
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
