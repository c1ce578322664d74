const M = 2 ** 32;

/** The 32-bit wire form of an unwrapped sequence number. */
export function wrap32(n: number): number {
  return n % M;
}

/**
 * The unwrapped number whose low 32 bits are `wire` and which lies closest to `expected`
 * (both sides keep at most 2^31 numbers in flight, so this is unambiguous). May be negative.
 */
export function unwrap32(wire: number, expected: number): number {
  const c = expected - (expected % M) + wire;
  if (c < expected - M / 2) return c + M;
  if (c > expected + M / 2) return c - M;
  return c;
}
