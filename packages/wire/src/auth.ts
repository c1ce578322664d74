import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { SpinesError } from "@spines-ts/primitives";
import type { Writer } from "./cursor.ts";
import { WireError, WireErrorCode } from "./errors.ts";
import { AUTH_MAC_BYTES, AUTH_TRAILER_BYTES, decodeHeader, FrameFlag } from "./frame.ts";

/** The shortest key `sign` and `verify` accept (HMAC itself takes any length; short keys are weak). */
export const AUTH_KEY_MIN_BYTES = 16;
/** The length of every key in a key file (docs/wire.md §1.3): 32 random bytes, 64 hex digits. */
export const KEY_FILE_KEY_BYTES = 32;
/** A key set holds the current (signing) key and at most one more accepted key. */
export const MAX_ACTIVE_KEYS = 2;
/** The largest counter value: the trailer counter is a u64 limited to 2^53 - 1 like every u64. */
export const MAX_AUTH_COUNTER = Number.MAX_SAFE_INTEGER;
/** The byte offset of the flags field in the frame header. */
const FLAGS_OFFSET = 4;
/** Key id (2) + counter (8): the trailer bytes before the MAC, covered by it. */
const TRAILER_PREFIX_BYTES = AUTH_TRAILER_BYTES - AUTH_MAC_BYTES;

/** Why `verify` or `FrameAuth.open` rejected a frame. */
export const VerifyFailure = {
  /** The Auth flag is clear: the frame carries no trailer. */
  Unsigned: "unsigned",
  /** The trailer names a key id that is not in the key set. */
  UnknownKey: "unknown-key",
  /** The MAC does not match the frame under the named key. */
  BadMac: "bad-mac",
  /** Authentic, but its counter was already seen from this sender incarnation, or is below the window. */
  Replay: "replay",
  /**
   * Authentic, but from an incarnation other than the sender's latest one with a counter that is not
   * above everything seen from that sender: a replay of an earlier life (or a restart whose clock went
   * backwards).
   */
  StaleIncarnation: "stale-incarnation",
} as const;
export type VerifyFailure = (typeof VerifyFailure)[keyof typeof VerifyFailure];

export type VerifyResult =
  | { readonly ok: true; readonly keyId: number; readonly counter: number }
  | { readonly ok: false; readonly reason: VerifyFailure; readonly keyId?: number };

function checkKeyId(keyId: number): void {
  if (!Number.isInteger(keyId) || keyId < 0 || keyId > 0xffff) {
    throw new RangeError(`auth key id must be an integer in [0, 65535], got ${keyId}`);
  }
}

function checkKey(keyId: number, key: Uint8Array): void {
  checkKeyId(keyId);
  if (!(key instanceof Uint8Array)) throw new TypeError(`auth key must be a Uint8Array, got ${typeof key}`);
  if (key.length < AUTH_KEY_MIN_BYTES) {
    throw new RangeError(`auth key ${keyId} is ${key.length} bytes, need at least ${AUTH_KEY_MIN_BYTES}`);
  }
}

function checkCounter(counter: number): void {
  if (!Number.isInteger(counter) || counter < 0 || counter > MAX_AUTH_COUNTER) {
    throw new RangeError(`auth counter must be an integer in [0, 2^53 - 1], got ${counter}`);
  }
}

/**
 * HMAC-SHA-256(key, data) truncated to its first 16 bytes: the MAC of the authentication trailer.
 * `data` is every byte of the frame before the MAC (header with the Auth flag set, body, key id and
 * counter).
 */
export function authMac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const full = createHmac("sha256", key).update(data).digest();
  return Uint8Array.prototype.slice.call(full, 0, AUTH_MAC_BYTES);
}

function writeCounter(out: Uint8Array, at: number, counter: number): void {
  const hi = Math.floor(counter / 0x100000000);
  const lo = counter >>> 0;
  out[at] = hi >>> 24;
  out[at + 1] = (hi >>> 16) & 0xff;
  out[at + 2] = (hi >>> 8) & 0xff;
  out[at + 3] = hi & 0xff;
  out[at + 4] = lo >>> 24;
  out[at + 5] = (lo >>> 16) & 0xff;
  out[at + 6] = (lo >>> 8) & 0xff;
  out[at + 7] = lo & 0xff;
}

function readU32(b: Uint8Array, i: number): number {
  return (
    (b[i] as number) * 0x1000000 +
    (((b[i + 1] as number) << 16) | ((b[i + 2] as number) << 8) | (b[i + 3] as number))
  );
}

/**
 * Signs an encoded, unsigned frame: returns a new array holding the frame with the Auth flag set,
 * followed by the trailer `keyId (u16) || counter (u64) || MAC`, where the MAC is
 * HMAC-SHA-256(key, header || body || keyId || counter)[0..16) and the header already has the Auth
 * flag set. Throws WireError if `frame` is not a well-formed frame, RangeError if it is already signed
 * or the key id, key or counter are out of range.
 */
export function sign(frame: Uint8Array, keyId: number, key: Uint8Array, counter: number): Uint8Array {
  checkKey(keyId, key);
  checkCounter(counter);
  const h = decodeHeader(frame);
  if (h.flags & FrameFlag.Auth) throw new RangeError("sign: the frame already carries an auth trailer");
  const n = frame.length;
  const out = new Uint8Array(n + AUTH_TRAILER_BYTES);
  out.set(frame);
  out[FLAGS_OFFSET] = h.flags | FrameFlag.Auth;
  out[n] = keyId >>> 8;
  out[n + 1] = keyId & 0xff;
  writeCounter(out, n + 2, counter);
  out.set(authMac(key, out.subarray(0, n + TRAILER_PREFIX_BYTES)), n + TRAILER_PREFIX_BYTES);
  return out;
}

/**
 * Signs the unsigned frame held in `w` (as left by `encodeInto`) in place and returns a view of the
 * signed frame, valid until `w` is written again. No copy of the frame is made.
 */
export function signInto(w: Writer, keyId: number, key: Uint8Array, counter: number): Uint8Array {
  checkKey(keyId, key);
  checkCounter(counter);
  const h = decodeHeader(w.view());
  if (h.flags & FrameFlag.Auth) throw new RangeError("signInto: the frame already carries an auth trailer");
  w.patchU8(FLAGS_OFFSET, h.flags | FrameFlag.Auth);
  w.u16(keyId).u64(counter);
  const mac = authMac(key, w.view());
  w.bytes(mac);
  return w.view();
}

/** A key by id, or undefined. `verify` takes a Map or a KeySet. */
export interface KeyLookup {
  get(keyId: number): Uint8Array | undefined;
}

/**
 * Checks the authentication trailer of a frame against a key set (key id -> key). Returns
 * `{ ok: true, keyId, counter }` when the MAC matches, otherwise `{ ok: false, reason }` (unsigned,
 * unknown key, bad MAC). The comparison is constant-time. Throws WireError if `frame` is not a
 * well-formed frame (the same header checks as `decode`) or its counter is above 2^53 - 1; it does not
 * decode the body. It does not check replays: `FrameAuth.open` does. A receiver that requires
 * authentication drops every frame for which this is not ok, including unsigned ones.
 */
export function verify(frame: Uint8Array, keys: KeyLookup): VerifyResult {
  const h = decodeHeader(frame);
  if ((h.flags & FrameFlag.Auth) === 0) return { ok: false, reason: VerifyFailure.Unsigned };
  const at = frame.length - AUTH_TRAILER_BYTES;
  const keyId = ((frame[at] as number) << 8) | (frame[at + 1] as number);
  const key = keys.get(keyId);
  if (key === undefined) return { ok: false, reason: VerifyFailure.UnknownKey, keyId };
  checkKey(keyId, key);
  const hi = readU32(frame, at + 2);
  if (hi > 0x1fffff) {
    throw new WireError(WireErrorCode.FieldOutOfRange, "auth counter above 2^53-1", at + 2);
  }
  const counter = hi * 0x100000000 + readU32(frame, at + 6);
  const macAt = at + TRAILER_PREFIX_BYTES;
  const expected = authMac(key, frame.subarray(0, macAt));
  const got = frame.subarray(macAt, macAt + AUTH_MAC_BYTES);
  return timingSafeEqual(expected, got)
    ? { ok: true, keyId, counter }
    : { ok: false, reason: VerifyFailure.BadMac, keyId };
}

// ---------------------------------------------------------------------------------------------
// Key sets and key files

/** One key of a key set. */
export interface AuthKey {
  readonly id: number;
  /** At least 16 bytes; key files hold 32. */
  readonly key: Uint8Array;
}

/**
 * The keys of an overlay or membership group: the current key, which signs, and at most one more
 * (the next or the previous key), which is accepted too, so keys roll node by node without a flag
 * day (docs/security.md "Key rotation"). Immutable.
 */
export class KeySet implements KeyLookup {
  /** The key that signs. */
  readonly current: AuthKey;
  /** Every accepted key, current first. */
  readonly keys: readonly AuthKey[];
  readonly #byId: Map<number, Uint8Array>;

  /** `keys[0]` signs; every key is accepted. 1-2 keys with distinct ids. Throws RangeError/TypeError. */
  constructor(keys: readonly AuthKey[]) {
    if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_ACTIVE_KEYS) {
      throw new RangeError(
        `a key set holds 1 to ${MAX_ACTIVE_KEYS} keys, got ${Array.isArray(keys) ? keys.length : typeof keys}`,
      );
    }
    this.#byId = new Map();
    const copy: AuthKey[] = [];
    for (const k of keys) {
      checkKey(k.id, k.key);
      if (this.#byId.has(k.id)) throw new RangeError(`key id ${k.id} appears twice in the key set`);
      const key = Uint8Array.prototype.slice.call(k.key) as Uint8Array;
      this.#byId.set(k.id, key);
      copy.push(Object.freeze({ id: k.id, key }));
    }
    this.keys = Object.freeze(copy);
    this.current = copy[0] as AuthKey;
  }

  /** The key with this id, if accepted. */
  get(keyId: number): Uint8Array | undefined {
    return this.#byId.get(keyId);
  }

  has(keyId: number): boolean {
    return this.#byId.has(keyId);
  }

  /** The accepted key ids, current first (never the key bytes: safe to log). */
  ids(): number[] {
    return this.keys.map((k) => k.id);
  }

  /** Signs an unsigned frame with the current key (see `sign`). */
  sign(frame: Uint8Array, counter: number): Uint8Array {
    return sign(frame, this.current.id, this.current.key, counter);
  }

  /** Signs the frame in `w` in place with the current key (see `signInto`). */
  signInto(w: Writer, counter: number): Uint8Array {
    return signInto(w, this.current.id, this.current.key, counter);
  }

  /** Checks a frame's trailer against every key of the set (see `verify`). */
  verify(frame: Uint8Array): VerifyResult {
    return verify(frame, this);
  }

  /** The same keys with `id` moved first (it signs from now on). Throws RangeError if absent. */
  withCurrent(id: number): KeySet {
    const k = this.keys.find((x) => x.id === id);
    if (k === undefined) throw new RangeError(`key id ${id} is not in the key set`);
    return new KeySet([k, ...this.keys.filter((x) => x.id !== id)]);
  }
}

/** Why a key file was refused. */
export const KeyFileErrorCode = {
  /** A line is not `<keyId> <64 hex digits>`, or a key id is out of range or repeated. */
  Syntax: "ERR_KEY_FILE_SYNTAX",
  /** No key at all. */
  Empty: "ERR_KEY_FILE_EMPTY",
  /** More than two keys. */
  TooManyKeys: "ERR_KEY_FILE_TOO_MANY_KEYS",
} as const;
export type KeyFileErrorCode = (typeof KeyFileErrorCode)[keyof typeof KeyFileErrorCode];

/** A key file could not be parsed; `line` is 1-based when the problem is on one line. */
export class KeyFileError extends SpinesError {
  override readonly code: KeyFileErrorCode;
  readonly line: number | undefined;
  constructor(code: KeyFileErrorCode, message: string, line?: number) {
    super(code, line === undefined ? message : `key file line ${line}: ${message}`);
    this.name = "KeyFileError";
    this.code = code;
    this.line = line;
  }
}

const KEY_LINE = /^(\d{1,5})\s+([0-9a-fA-F]{64})$/;

/**
 * Parses a key file: one key per line, `<keyId> <64 hex digits>` (key id decimal 0-65535, key 32
 * bytes), blank lines and `#` comments (whole line or after the key) ignored. The first key is the
 * current (signing) key; an optional second is accepted too (rotation). Throws KeyFileError with the
 * line number; never echoes key material in its messages.
 */
export function parseKeyFile(text: string): KeySet {
  if (typeof text !== "string") throw new TypeError(`parseKeyFile expects a string, got ${typeof text}`);
  const keys: AuthKey[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const hash = (lines[i] as string).indexOf("#");
    const line = (hash >= 0 ? (lines[i] as string).slice(0, hash) : (lines[i] as string)).trim();
    if (line === "") continue;
    const m = KEY_LINE.exec(line);
    if (m === null) {
      const fields = line.split(/\s+/);
      const why =
        fields.length !== 2
          ? `expected "<keyId> <64 hex digits>", got ${fields.length} field(s)`
          : !/^\d+$/.test(fields[0] as string)
            ? "the key id must be a decimal integer"
            : `the key must be exactly 64 hex digits (32 bytes), got ${(fields[1] as string).length} character(s)${/^[0-9a-fA-F]*$/.test(fields[1] as string) ? "" : " with non-hex digits"}`;
      throw new KeyFileError(KeyFileErrorCode.Syntax, why, lineNo);
    }
    const id = Number(m[1]);
    if (id > 0xffff) throw new KeyFileError(KeyFileErrorCode.Syntax, `key id ${id} is above 65535`, lineNo);
    if (keys.some((k) => k.id === id)) {
      throw new KeyFileError(KeyFileErrorCode.Syntax, `key id ${id} appears twice`, lineNo);
    }
    if (keys.length === MAX_ACTIVE_KEYS) {
      throw new KeyFileError(
        KeyFileErrorCode.TooManyKeys,
        `at most ${MAX_ACTIVE_KEYS} keys (current and next); remove retired keys`,
        lineNo,
      );
    }
    keys.push({ id, key: new Uint8Array(Buffer.from(m[2] as string, "hex")) });
  }
  if (keys.length === 0) throw new KeyFileError(KeyFileErrorCode.Empty, "the key file holds no key");
  return new KeySet(keys);
}

/** Writes a key set in the key file format `parseKeyFile` reads (current key first). */
export function formatKeyFile(keys: KeySet): string {
  const lines = [
    "# spines-ts key file: <keyId> <32-byte key in hex>; the first key signs, a second is accepted too.",
  ];
  for (const k of keys.keys)
    lines.push(`${k.id} ${Buffer.from(k.key.buffer, k.key.byteOffset, k.key.byteLength).toString("hex")}`);
  return `${lines.join("\n")}\n`;
}

/** A key file holding one fresh random 32-byte key (node:crypto randomBytes) under `keyId` (default 1). */
export function generateKeyFile(keyId = 1): string {
  checkKeyId(keyId);
  return formatKeyFile(new KeySet([{ id: keyId, key: new Uint8Array(randomBytes(KEY_FILE_KEY_BYTES)) }]));
}

// ---------------------------------------------------------------------------------------------
// Replay protection

/** Counters of a replay guard. */
export interface ReplayStats {
  /** Senders tracked now. */
  senders: number;
  /** Senders forgotten to make room (each lets one replay of that sender through, at most). */
  evicted: number;
}

interface SenderWindow {
  incarnation: number;
  /** The highest counter accepted from this incarnation. */
  top: number;
  /** Bit (c mod window) set when counter c in (top - window, top] was accepted. */
  bits: Uint32Array;
}

export interface ReplayGuardOptions {
  /** Bits of the sliding window per sender, a multiple of 32 (default 1024). */
  window?: number;
  /** Senders tracked at most (default 4096); the oldest-added is forgotten when a new one arrives. */
  maxSenders?: number;
}

/**
 * A sliding window of accepted counters per sender (docs/wire.md §1.3 "Replay protection"): a frame is
 * accepted when its counter is new in the window of its sender's current incarnation. A frame of
 * another incarnation is accepted (and replaces the state) only when its counter is above every
 * counter seen from that sender, so frames of an earlier life cannot be replayed: senders start their
 * counter at a clock reading (`FrameAuth`). Call only for frames whose MAC verified. Bounded.
 */
export class ReplayGuard {
  readonly #window: number;
  readonly #maxSenders: number;
  readonly #senders = new Map<number, SenderWindow>();
  #evicted = 0;

  constructor(opts: ReplayGuardOptions = {}) {
    const window = opts.window ?? 1024;
    const maxSenders = opts.maxSenders ?? 4096;
    if (!Number.isInteger(window) || window < 32 || window % 32 !== 0 || window > 65536) {
      throw new RangeError(`replay window must be a multiple of 32 in [32, 65536], got ${window}`);
    }
    if (!Number.isInteger(maxSenders) || maxSenders < 1) {
      throw new RangeError(`maxSenders must be a positive integer, got ${maxSenders}`);
    }
    this.#window = window;
    this.#maxSenders = maxSenders;
  }

  /**
   * Checks and records one authentic frame's counter. Returns undefined when it is fresh (now
   * recorded), or why it is refused.
   */
  accept(
    sender: number,
    incarnation: number,
    counter: number,
  ): typeof VerifyFailure.Replay | typeof VerifyFailure.StaleIncarnation | undefined {
    const s = this.#senders.get(sender);
    if (s === undefined) {
      if (this.#senders.size >= this.#maxSenders) {
        const oldest = this.#senders.keys().next().value as number;
        this.#senders.delete(oldest);
        this.#evicted++;
      }
      const fresh: SenderWindow = { incarnation, top: counter, bits: new Uint32Array(this.#window / 32) };
      this.#set(fresh, counter);
      this.#senders.set(sender, fresh);
      return undefined;
    }
    if (s.incarnation !== incarnation) {
      if (counter <= s.top) return VerifyFailure.StaleIncarnation;
      s.incarnation = incarnation;
      s.top = counter;
      s.bits.fill(0);
      this.#set(s, counter);
      return undefined;
    }
    if (counter > s.top) {
      const gap = counter - s.top;
      if (gap >= this.#window) s.bits.fill(0);
      else for (let c = s.top + 1; c < counter; c++) this.#clear(s, c);
      s.top = counter;
      this.#set(s, counter);
      return undefined;
    }
    if (s.top - counter >= this.#window) return VerifyFailure.Replay;
    const i = counter % this.#window;
    const word = i >>> 5;
    const bit = 1 << (i & 31);
    if (((s.bits[word] as number) & bit) !== 0) return VerifyFailure.Replay;
    s.bits[word] = (s.bits[word] as number) | bit;
    return undefined;
  }

  #set(s: SenderWindow, c: number): void {
    const i = c % this.#window;
    s.bits[i >>> 5] = (s.bits[i >>> 5] as number) | (1 << (i & 31));
  }

  #clear(s: SenderWindow, c: number): void {
    const i = c % this.#window;
    s.bits[i >>> 5] = (s.bits[i >>> 5] as number) & ~(1 << (i & 31));
  }

  /** Forgets a sender (for example a neighbour removed from the configuration). */
  forget(sender: number): void {
    this.#senders.delete(sender);
  }

  stats(): ReplayStats {
    return { senders: this.#senders.size, evicted: this.#evicted };
  }
}

// ---------------------------------------------------------------------------------------------
// The frame authenticator a node puts between its protocol cores and its socket

/** Counters of a `FrameAuth`. */
export interface FrameAuthStats {
  /** Frames signed. */
  signed: number;
  /** Frames that verified and were fresh. */
  accepted: number;
  /** Dropped: no trailer. */
  unsigned: number;
  /** Dropped: key id not in the key set. */
  unknownKey: number;
  /** Dropped: the MAC did not match. */
  badMac: number;
  /** Dropped: a counter already seen (or below the window) from that sender incarnation. */
  replay: number;
  /** Dropped: an earlier incarnation of the sender (replay of a previous life). */
  staleIncarnation: number;
  /** Senders forgotten by the replay guard to stay within its bound. */
  replayEvicted: number;
}

/** How `FrameAuth` protects frames (docs/wire.md §1.3). */
export const AuthMode = {
  /** HMAC-SHA-256/16 over the frame: integrity and origin, the body in clear (the default). */
  Mac: "mac",
  /**
   * ChaCha20-Poly1305 (RFC 8439): the body is encrypted, the header and trailer prefix are
   * authenticated as associated data, and the MAC field holds the Poly1305 tag. Every node of the
   * overlay must use the same mode.
   */
  Encrypt: "encrypt",
} as const;
export type AuthMode = (typeof AuthMode)[keyof typeof AuthMode];

/** Bytes of the sub-key cache of encrypt mode (one 32-byte key per sender incarnation). */
const MAX_AEAD_SUBKEYS = 4096;
const AEAD_LABEL = new TextEncoder().encode("spines-ts aead v1");

/**
 * The ChaCha20-Poly1305 key of one sender incarnation under one overlay key:
 * HMAC-SHA-256(K, "spines-ts aead v1" || sender u32 || incarnation u32). Nonces (sender u32 ||
 * counter u64) then repeat only if one incarnation reused a counter, never across restarts.
 */
export function aeadSubkey(key: Uint8Array, sender: number, incarnation: number): Uint8Array {
  const ids = new Uint8Array(8);
  const dv = new DataView(ids.buffer);
  dv.setUint32(0, sender);
  dv.setUint32(4, incarnation);
  return new Uint8Array(createHmac("sha256", key).update(AEAD_LABEL).update(ids).digest());
}

function aeadNonce(frame: Uint8Array, counterAt: number): Uint8Array {
  const n = new Uint8Array(12);
  n.set(frame.subarray(8, 12), 0); // sender
  n.set(frame.subarray(counterAt, counterAt + 8), 4); // counter
  return n;
}

export interface FrameAuthOptions {
  /**
   * The counter of the first frame this node signs. It must be above every counter this node signed
   * in earlier lives: use a clock reading in microseconds (`Date.now() * 1000`; under netsim the
   * virtual clock), as the receiver's replay guard refuses a new incarnation whose counter is not above
   * the old one's.
   */
  counterStart: number;
  /** Options of the replay guard. */
  replay?: ReplayGuardOptions;
  /** `mac` (default) or `encrypt` (ChaCha20-Poly1305: the body is encrypted too). */
  mode?: AuthMode;
}

export type OpenResult =
  | {
      readonly ok: true;
      readonly keyId: number;
      readonly counter: number;
      /**
       * The frame to decode: the input itself in `mac` mode; in `encrypt` mode a new array, the
       * input with its body decrypted (flag and trailer kept, so it decodes like a signed frame).
       */
      readonly frame: Uint8Array;
    }
  | { readonly ok: false; readonly reason: VerifyFailure; readonly keyId?: number };

/**
 * Signs every frame a node sends (current key, increasing counter) and checks every frame it receives
 * (trailer under any key of the set, then the replay window of the sender's incarnation). Pure apart
 * from node:crypto: the caller provides the counter start. Counts every outcome in `stats`.
 */
export class FrameAuth {
  #keys: KeySet;
  #counter: number;
  readonly #replay: ReplayGuard;
  readonly mode: AuthMode;
  /** Encrypt mode: sub-keys by "keyId:sender:incarnation" (bounded; oldest forgotten first). */
  readonly #subkeys = new Map<string, Uint8Array>();
  readonly #stats: Omit<FrameAuthStats, "replayEvicted"> = {
    signed: 0,
    accepted: 0,
    unsigned: 0,
    unknownKey: 0,
    badMac: 0,
    replay: 0,
    staleIncarnation: 0,
  };

  constructor(keys: KeySet, opts: FrameAuthOptions) {
    if (!(keys instanceof KeySet)) throw new TypeError("FrameAuth: keys must be a KeySet (see parseKeyFile)");
    checkCounter(opts.counterStart);
    this.#keys = keys;
    this.#counter = Math.floor(opts.counterStart);
    this.#replay = new ReplayGuard(opts.replay);
    const mode = opts.mode ?? AuthMode.Mac;
    if (mode !== AuthMode.Mac && mode !== AuthMode.Encrypt)
      throw new RangeError(`FrameAuth: mode must be "mac" or "encrypt", got ${String(mode)}`);
    this.mode = mode;
  }

  #subkey(keyId: number, key: Uint8Array, sender: number, incarnation: number): Uint8Array {
    const name = `${keyId}:${sender}:${incarnation}`;
    let k = this.#subkeys.get(name);
    if (k === undefined) {
      if (this.#subkeys.size >= MAX_AEAD_SUBKEYS) {
        this.#subkeys.delete(this.#subkeys.keys().next().value as string);
      }
      k = aeadSubkey(key, sender, incarnation);
      this.#subkeys.set(name, k);
    }
    return k;
  }

  /** Encrypt mode: the frame with the Auth flag, the body encrypted, the trailer with the tag. */
  #encrypt(frame: Uint8Array, counter: number): Uint8Array {
    const h = decodeHeader(frame);
    if (h.flags & FrameFlag.Auth) throw new RangeError("seal: the frame already carries an auth trailer");
    const n = frame.length;
    const out = new Uint8Array(n + AUTH_TRAILER_BYTES);
    out.set(frame.subarray(0, 16));
    out[FLAGS_OFFSET] = h.flags | FrameFlag.Auth;
    const { id, key } = this.#keys.current;
    out[n] = id >>> 8;
    out[n + 1] = id & 0xff;
    writeCounter(out, n + 2, counter);
    const c = createCipheriv(
      "chacha20-poly1305",
      this.#subkey(id, key, h.sender, h.incarnation),
      aeadNonce(out, n + 2),
      {
        authTagLength: AUTH_MAC_BYTES,
      },
    );
    c.setAAD(Buffer.concat([out.subarray(0, 16), out.subarray(n, n + TRAILER_PREFIX_BYTES)]), {
      plaintextLength: n - 16,
    });
    const body = c.update(frame.subarray(16));
    c.final();
    out.set(body, 16);
    out.set(c.getAuthTag(), n + TRAILER_PREFIX_BYTES);
    return out;
  }

  /** Encrypt mode: verify the tag and decrypt; undefined when the tag does not match. */
  #decrypt(frame: Uint8Array, keyId: number, key: Uint8Array): Uint8Array | undefined {
    const at = frame.length - AUTH_TRAILER_BYTES;
    const d = createDecipheriv(
      "chacha20-poly1305",
      this.#subkey(keyId, key, readU32(frame, 8), readU32(frame, 12)),
      aeadNonce(frame, at + 2),
      { authTagLength: AUTH_MAC_BYTES },
    );
    d.setAuthTag(frame.subarray(at + TRAILER_PREFIX_BYTES));
    d.setAAD(Buffer.concat([frame.subarray(0, 16), frame.subarray(at, at + TRAILER_PREFIX_BYTES)]), {
      plaintextLength: at - 16,
    });
    const body = d.update(frame.subarray(16, at));
    try {
      d.final();
    } catch {
      return undefined;
    }
    const out = frame.slice();
    out.set(body, 16);
    return out;
  }

  get keys(): KeySet {
    return this.#keys;
  }

  /** Replaces the key set (rotation at run time); counters and replay windows are kept. */
  setKeys(keys: KeySet): void {
    if (!(keys instanceof KeySet)) throw new TypeError("FrameAuth.setKeys: keys must be a KeySet");
    this.#keys = keys;
  }

  #next(): number {
    if (this.#counter >= MAX_AUTH_COUNTER) throw new RangeError("auth counter exhausted");
    return this.#counter++;
  }

  /** Signs (or, in encrypt mode, encrypts and tags) an unsigned frame: a new array. Throws like `sign`. */
  seal(frame: Uint8Array): Uint8Array {
    const out =
      this.mode === AuthMode.Encrypt
        ? this.#encrypt(frame, this.#next())
        : this.#keys.sign(frame, this.#next());
    this.#stats.signed++;
    return out;
  }

  /** Signs the unsigned frame in `w` in place; the view is valid until `w` is written again. */
  sealInto(w: Writer): Uint8Array {
    if (this.mode === AuthMode.Encrypt) return this.seal(w.view());
    const out = this.#keys.signInto(w, this.#next());
    this.#stats.signed++;
    return out;
  }

  /**
   * Verifies a received frame's trailer and its freshness; counts the outcome. Throws WireError (and
   * counts nothing) when the header is malformed: the caller counts that like any decode error.
   */
  open(frame: Uint8Array): OpenResult {
    if (this.mode === AuthMode.Encrypt) return this.#openEncrypted(frame);
    const v = verify(frame, this.#keys);
    if (!v.ok) {
      if (v.reason === VerifyFailure.Unsigned) this.#stats.unsigned++;
      else if (v.reason === VerifyFailure.UnknownKey) this.#stats.unknownKey++;
      else this.#stats.badMac++;
      return v;
    }
    // verify checked the header: sender at byte 8, incarnation at byte 12
    const bad = this.#replay.accept(readU32(frame, 8), readU32(frame, 12), v.counter);
    if (bad !== undefined) {
      if (bad === VerifyFailure.Replay) this.#stats.replay++;
      else this.#stats.staleIncarnation++;
      return { ok: false, reason: bad, keyId: v.keyId };
    }
    this.#stats.accepted++;
    return { ok: true, keyId: v.keyId, counter: v.counter, frame };
  }

  /**
   * Whether the frame's MAC (or tag) verifies under the key set, without counting it or touching the
   * replay window (for a shell that must decide whether to learn a sender before `open`). False for
   * a malformed frame.
   */
  isAuthentic(frame: Uint8Array): boolean {
    try {
      if (this.mode === AuthMode.Mac) return verify(frame, this.#keys).ok;
      const h = decodeHeader(frame);
      if ((h.flags & FrameFlag.Auth) === 0) return false;
      const at = frame.length - AUTH_TRAILER_BYTES;
      const keyId = ((frame[at] as number) << 8) | (frame[at + 1] as number);
      const key = this.#keys.get(keyId);
      return (
        key !== undefined &&
        readU32(frame, at + 2) <= 0x1fffff &&
        this.#decrypt(frame, keyId, key) !== undefined
      );
    } catch {
      return false;
    }
  }

  #openEncrypted(frame: Uint8Array): OpenResult {
    const h = decodeHeader(frame);
    if ((h.flags & FrameFlag.Auth) === 0) {
      this.#stats.unsigned++;
      return { ok: false, reason: VerifyFailure.Unsigned };
    }
    const at = frame.length - AUTH_TRAILER_BYTES;
    const keyId = ((frame[at] as number) << 8) | (frame[at + 1] as number);
    const key = this.#keys.get(keyId);
    if (key === undefined) {
      this.#stats.unknownKey++;
      return { ok: false, reason: VerifyFailure.UnknownKey, keyId };
    }
    const hi = readU32(frame, at + 2);
    if (hi > 0x1fffff)
      throw new WireError(WireErrorCode.FieldOutOfRange, "auth counter above 2^53-1", at + 2);
    const counter = hi * 0x100000000 + readU32(frame, at + 6);
    const plain = this.#decrypt(frame, keyId, key);
    if (plain === undefined) {
      this.#stats.badMac++;
      return { ok: false, reason: VerifyFailure.BadMac, keyId };
    }
    const bad = this.#replay.accept(h.sender, h.incarnation, counter);
    if (bad !== undefined) {
      if (bad === VerifyFailure.Replay) this.#stats.replay++;
      else this.#stats.staleIncarnation++;
      return { ok: false, reason: bad, keyId };
    }
    this.#stats.accepted++;
    return { ok: true, keyId, counter, frame: plain };
  }

  /** The counter the next signed frame will carry. */
  get nextCounter(): number {
    return this.#counter;
  }

  stats(): FrameAuthStats {
    return { ...this.#stats, replayEvicted: this.#replay.stats().evicted };
  }

  /** Frames dropped so far, all reasons together. */
  get dropped(): number {
    const s = this.#stats;
    return s.unsigned + s.unknownKey + s.badMac + s.replay + s.staleIncarnation;
  }
}
