/**
 * 32-bit sequence arithmetic, with ONE meaning throughout spines-ts (docs/drivers.md):
 *
 * - Inside a core, sequence numbers are plain integers that never wrap ("full" numbers).
 * - On the wire they are sent modulo 2^32 (`wrap32`).
 * - A receiver turns a wire value back into a full number with `unwrap32(wire, ref)`: the integer
 *   congruent to `wire` modulo 2^32 that lies nearest to `ref`, its current position (as QUIC
 *   decodes packet numbers). Both sides keep fewer than 2^31 numbers in flight, so this is
 *   unambiguous. At exactly 2^31 away the candidate in `ref`'s own 2^32 block wins. The result
 *   MAY BE NEGATIVE (a wire value just "before" a space that starts near 0): callers whose space
 *   starts at 0 treat a negative number as older than anything they sent.
 * - `seqDiff`, `seqLt` and `seqLe` compare two WIRE values by serial-number arithmetic (RFC 1982):
 *   `seqDiff(a, b)` is the signed distance from b to a in [-2^31, 2^31).
 */

const M = 2 ** 32;

/** The 32-bit wire form of a full sequence number (any integer, negative too) in [0, 2^32). */
export function wrap32(n: number): number {
  const r = n % M;
  return r < 0 ? r + M : r;
}

/** The full number ≡ `wire` (mod 2^32) nearest to `ref`; may be negative. See the module doc. */
export function unwrap32(wire: number, ref: number): number {
  const r = ref % M;
  const c = ref - (r < 0 ? r + M : r) + wire;
  if (c < ref - M / 2) return c + M;
  if (c > ref + M / 2) return c - M;
  return c;
}

/** The signed distance from wire value `b` to wire value `a`, in [-2^31, 2^31). */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** Wire value `a` comes before `b` (serial-number arithmetic). */
export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

/** Wire value `a` comes before or equals `b` (serial-number arithmetic). */
export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}
