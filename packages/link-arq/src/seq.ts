/**
 * 32-bit wire values of the links. Sequence numbers use the shared arithmetic of
 * `@spines-ts/primitives` (`wrap32`, `unwrap32`: one meaning project-wide, see its `seq.ts`);
 * what is link-specific here is the microsecond timestamp carried in hellos, data and acks.
 */
import { wrap32 } from "@spines-ts/primitives";

export { unwrap32, wrap32 } from "@spines-ts/primitives";

const TWO32 = 0x100000000;

/**
 * The wire form of a full sequence number.
 * @deprecated use `wrap32` from `@spines-ts/primitives` (same function).
 */
export const wire32: (seq: number) => number = wrap32;

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
