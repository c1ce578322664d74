import { createHmac, timingSafeEqual } from "node:crypto";
import type { Writer } from "./cursor.ts";
import { AUTH_MAC_BYTES, AUTH_TRAILER_BYTES, decodeHeader, FrameFlag } from "./frame.ts";

/** The shortest key `sign` and `verify` accept (HMAC itself takes any length; short keys are weak). */
export const AUTH_KEY_MIN_BYTES = 16;
/** The byte offset of the flags field in the frame header. */
const FLAGS_OFFSET = 4;

/** Why `verify` rejected a frame. */
export const VerifyFailure = {
  /** The Auth flag is clear: the frame carries no trailer. */
  Unsigned: "unsigned",
  /** The trailer names a key id that is not in the key set. */
  UnknownKey: "unknown-key",
  /** The MAC does not match the frame under the named key. */
  BadMac: "bad-mac",
} as const;
export type VerifyFailure = (typeof VerifyFailure)[keyof typeof VerifyFailure];

export type VerifyResult =
  | { readonly ok: true; readonly keyId: number }
  | { readonly ok: false; readonly reason: VerifyFailure; readonly keyId?: number };

function checkKey(keyId: number, key: Uint8Array): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffff) {
    throw new RangeError(`auth key id must be an integer in [0, 65535], got ${keyId}`);
  }
  if (!(key instanceof Uint8Array)) throw new TypeError(`auth key must be a Uint8Array, got ${typeof key}`);
  if (key.length < AUTH_KEY_MIN_BYTES) {
    throw new RangeError(`auth key ${keyId} is ${key.length} bytes, need at least ${AUTH_KEY_MIN_BYTES}`);
  }
}

/**
 * HMAC-SHA-256(key, data) truncated to its first 16 bytes: the MAC of the authentication trailer.
 * `data` is every byte of the frame before the trailer (header with the Auth flag set, then body).
 */
export function authMac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const full = createHmac("sha256", key).update(data).digest();
  return Uint8Array.prototype.slice.call(full, 0, AUTH_MAC_BYTES);
}

/**
 * Signs an encoded, unsigned frame: returns a new array holding the frame with the Auth flag set,
 * followed by the trailer `keyId (u16) || HMAC-SHA-256(key, header || body)[0..16)`, where the header
 * already has the Auth flag set. Throws WireError if `frame` is not a well-formed frame, RangeError if
 * it is already signed or the key id or key are out of range.
 */
export function sign(frame: Uint8Array, keyId: number, key: Uint8Array): Uint8Array {
  checkKey(keyId, key);
  const h = decodeHeader(frame);
  if (h.flags & FrameFlag.Auth) throw new RangeError("sign: the frame already carries an auth trailer");
  const n = frame.length;
  const out = new Uint8Array(n + AUTH_TRAILER_BYTES);
  out.set(frame);
  out[FLAGS_OFFSET] = h.flags | FrameFlag.Auth;
  const mac = authMac(key, out.subarray(0, n));
  out[n] = keyId >>> 8;
  out[n + 1] = keyId & 0xff;
  out.set(mac, n + 2);
  return out;
}

/**
 * Signs the unsigned frame held in `w` (as left by `encodeInto`) in place and returns a view of the
 * signed frame, valid until `w` is written again. No copy of the frame is made.
 */
export function signInto(w: Writer, keyId: number, key: Uint8Array): Uint8Array {
  checkKey(keyId, key);
  const h = decodeHeader(w.view());
  if (h.flags & FrameFlag.Auth) throw new RangeError("signInto: the frame already carries an auth trailer");
  w.patchU8(FLAGS_OFFSET, h.flags | FrameFlag.Auth);
  const mac = authMac(key, w.view());
  w.u16(keyId).bytes(mac);
  return w.view();
}

/**
 * Checks the authentication trailer of a frame against a key set (key id -> key). Returns
 * `{ ok: true, keyId }` when the MAC matches, otherwise `{ ok: false, reason }`. The comparison is
 * constant-time. Throws WireError if `frame` is not a well-formed frame (the same header checks as
 * `decode`); it does not decode the body. A receiver that requires authentication drops every frame
 * for which this is not ok, including unsigned ones.
 */
export function verify(frame: Uint8Array, keys: ReadonlyMap<number, Uint8Array>): VerifyResult {
  const h = decodeHeader(frame);
  if ((h.flags & FrameFlag.Auth) === 0) return { ok: false, reason: VerifyFailure.Unsigned };
  const at = frame.length - AUTH_TRAILER_BYTES;
  const keyId = ((frame[at] as number) << 8) | (frame[at + 1] as number);
  const key = keys.get(keyId);
  if (key === undefined) return { ok: false, reason: VerifyFailure.UnknownKey, keyId };
  checkKey(keyId, key);
  const expected = authMac(key, frame.subarray(0, at));
  const got = frame.subarray(at + 2, at + 2 + AUTH_MAC_BYTES);
  return timingSafeEqual(expected, got)
    ? { ok: true, keyId }
    : { ok: false, reason: VerifyFailure.BadMac, keyId };
}
