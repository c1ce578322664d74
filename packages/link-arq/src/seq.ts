/**
 * The links' microsecond wire timestamps (hellos, data and acks). Sequence numbers use the shared
 * 32-bit arithmetic of `@spines-ts/primitives` (`wrap32`, `unwrap32`: one meaning project-wide).
 */

const TWO32 = 0x100000000;

/** A clock reading (ms) as the µs timestamp carried on the wire. */
export function tsUs(nowMs: number): number {
  return Math.floor(nowMs * 1000) % TWO32;
}

/** Elapsed ms from wire timestamp `thenUs` to `nowMs` on the same clock (mod 2^32 µs). */
export function elapsedMs(nowMs: number, thenUs: number): number {
  let d = tsUs(nowMs) - thenUs;
  if (d < 0) d += TWO32;
  return d / 1000;
}
