/** Spines' ephemeral virtual-port range (inclusive). */
export const EPHEMERAL_PORT_MIN = 40_000;
export const EPHEMERAL_PORT_MAX = 60_000;

/**
 * Round-robin picker of free numbers in an inclusive range (ephemeral ports): each `pick` starts
 * after the previous pick, so a just-released port is not reused at once. Deterministic (no rng).
 */
export class EphemeralPicker {
  readonly min: number;
  readonly max: number;
  #next: number;

  constructor(min = EPHEMERAL_PORT_MIN, max = EPHEMERAL_PORT_MAX) {
    if (!Number.isInteger(min) || !Number.isInteger(max) || min > max)
      throw new RangeError(`EphemeralPicker: bad range ${min}..${max}`);
    this.min = min;
    this.max = max;
    this.#next = min;
  }

  /** The number of candidates in the range. */
  get span(): number {
    return this.max - this.min + 1;
  }

  /** The first number from the cursor on for which `isFree` holds, or undefined when none is. */
  pick(isFree: (n: number) => boolean): number | undefined {
    for (let i = 0; i < this.span; i++) {
      const p = this.#next;
      this.#next = p >= this.max ? this.min : p + 1;
      if (isFree(p)) return p;
    }
    return undefined;
  }
}
