/**
 * @packageDocumentation
 * The spines-ts wire codec. Every datagram is one frame: a 16-byte header (magic "SP", version,
 * message type, flags, body length, sender node id, sender incarnation), the message body, and an
 * optional authentication trailer. `encode` and `decode` turn messages (plain objects with a `_tag`)
 * into bytes and back; malformed input throws `WireError` and nothing else. `sign` and `verify` add and
 * check the authentication trailer (HMAC-SHA-256 truncated to 16 bytes). The format is specified in
 * docs/wire.md.
 */
export {
  AUTH_KEY_MIN_BYTES,
  authMac,
  sign,
  signInto,
  VerifyFailure,
  type VerifyResult,
  verify,
} from "./auth.ts";
export { Reader, Writer } from "./cursor.ts";
export { WireError, WireErrorCode } from "./errors.ts";
export {
  AUTH_MAC_BYTES,
  AUTH_TRAILER_BYTES,
  type AuthTrailer,
  decode,
  decodeHeader,
  encode,
  encodeInto,
  type Frame,
  FrameFlag,
  type FrameHeader,
  type FrameSource,
  HEADER_BYTES,
  MAGIC,
  MAX_BODY_BYTES,
  registry,
  VERSION,
} from "./frame.ts";
export * from "./messages/data.ts";
export { allMessageSpecs, type Message } from "./messages/index.ts";
export * from "./messages/link.ts";
export * from "./messages/membership.ts";
export * from "./messages/routing.ts";
export * from "./messages/session.ts";
export * from "./messages/vip.ts";
export { defineMessage, type MessageSpec, Registry, type Tagged } from "./registry.ts";
