/** 32-bit wire values: sequence numbers and microsecond timestamps. */

const TWO32 = 0x100000000;

/**
 * The full sequence number whose low 32 bits are `wire`, nearest to `ref` (as QUIC decodes
 * packet numbers). Internally sequence numbers never wrap; only the wire form does.
 */
export function unwrap32(wire: number, ref: number): number {
  const base = ref - (ref % TWO32);
  let v = base + wire;
  if (v - ref > TWO32 / 2) v -= TWO32;
  else if (ref - v > TWO32 / 2) v += TWO32;
  return v < 0 ? v + TWO32 : v;
}

/** The wire form of a full sequence number. */
export function wire32(seq: number): number {
  return seq % TWO32;
}

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
