/**
 * A binary min-heap ordered by `less`. Ties are broken by insertion order when the caller includes
 * a sequence number in its comparison (the simulator and timer queue do), which keeps runs
 * deterministic.
 */
export class MinHeap<T> {
  readonly #items: T[] = [];
  readonly less: (a: T, b: T) => boolean;
  constructor(less: (a: T, b: T) => boolean) {
    this.less = less;
  }

  get size(): number {
    return this.#items.length;
  }

  peek(): T | undefined {
    return this.#items[0];
  }

  push(item: T): void {
    const xs = this.#items;
    xs.push(item);
    let i = xs.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(xs[i] as T, xs[p] as T)) break;
      const t = xs[i] as T;
      xs[i] = xs[p] as T;
      xs[p] = t;
      i = p;
    }
  }

  pop(): T | undefined {
    const xs = this.#items;
    const top = xs[0];
    const last = xs.pop();
    if (xs.length > 0 && last !== undefined) {
      xs[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < xs.length && this.less(xs[l] as T, xs[m] as T)) m = l;
        if (r < xs.length && this.less(xs[r] as T, xs[m] as T)) m = r;
        if (m === i) break;
        const t = xs[i] as T;
        xs[i] = xs[m] as T;
        xs[m] = t;
        i = m;
      }
    }
    return top;
  }

  clear(): void {
    this.#items.length = 0;
  }
}
