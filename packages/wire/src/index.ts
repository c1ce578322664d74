/**
 * @packageDocumentation
 * The spines-ts wire codec. Every datagram is one frame: a 16-byte header (magic "SP", version,
 * message type, flags, body length, sender node id, sender incarnation), the message body, and an
 * optional authentication trailer. `encode` and `decode` turn messages (plain objects with a `_tag`)
 * into bytes and back; malformed input throws `WireError` and nothing else. The authentication
 * trailer (HMAC-SHA-256 truncated to 16 bytes) is added and checked by `sign` and `verify` from the
 * `@spines-ts/wire/auth` subpath (it needs `node:crypto`; this root is pure). The format is
 * specified in docs/wire.md.
 */
export { Reader, Writer } from "./cursor.ts";
export { WireError, WireErrorCode } from "./errors.ts";
export {
  AUTH_MAC_BYTES,
  AUTH_TRAILER_BYTES,
  type AuthTrailer,
  blankLinkDataFrame,
  decode,
  decodeHeader,
  decodeLinkDataInto,
  encode,
  encodeAt,
  encodeInto,
  type Frame,
  FrameFlag,
  type FrameHeader,
  type FrameSource,
  HEADER_BYTES,
  type LinkDataFrame,
  MAGIC,
  MAX_BODY_BYTES,
  registry,
  VERSION,
} from "./frame.ts";
export { isLinkType, LinkType } from "./link-type.ts";
export * from "./messages/data.ts";
export { allMessageSpecs, type Message } from "./messages/index.ts";
export * from "./messages/link.ts";
export * from "./messages/membership.ts";
export * from "./messages/routing.ts";
export * from "./messages/session.ts";
export * from "./messages/vip.ts";
export { defineMessage, type MessageSpec, Registry, type Tagged } from "./registry.ts";
