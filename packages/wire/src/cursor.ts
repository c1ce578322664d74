import { WireError, WireErrorCode } from "./errors.ts";

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
/** The largest buffer a Writer grows to (a frame is at most 16 + 65,535 + 18 bytes; this leaves room). */
const MAX_WRITER_CAPACITY = 1 << 24;

/**
 * Appends big-endian fields to a growable buffer. One Writer is reused for many messages
 * (`reset()`), so encoding allocates only the final copy, or nothing with `view()`.
 */
export class Writer {
  #buf: Uint8Array;
  #dv: DataView;
  #pos = 0;

  constructor(initialCapacity = 2048) {
    if (!Number.isInteger(initialCapacity) || initialCapacity < 0 || initialCapacity > MAX_WRITER_CAPACITY) {
      throw new RangeError(
        `Writer capacity must be an integer in [0, ${MAX_WRITER_CAPACITY}], got ${initialCapacity}`,
      );
    }
    this.#buf = new Uint8Array(initialCapacity);
    this.#dv = new DataView(this.#buf.buffer);
  }

  get length(): number {
    return this.#pos;
  }

  reset(): this {
    this.#pos = 0;
    return this;
  }

  /**
   * Writes on into `buf` (not a copy) from offset `at`, forgetting what was written before: for
   * encoding frames one after another into a buffer the caller owns and hands out views of. A
   * write past the end of `buf` grows into a fresh buffer as usual (`buffer` then is not `buf`).
   */
  target(buf: Uint8Array, at: number): this {
    if (!(buf instanceof Uint8Array))
      throw new TypeError(`Writer.target expects a Uint8Array, got ${typeof buf}`);
    if (!Number.isInteger(at) || at < 0 || at > buf.length)
      throw new RangeError(`Writer.target: offset ${at} is not within 0..${buf.length}`);
    if (buf !== this.#buf) {
      this.#buf = buf;
      this.#dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    }
    this.#pos = at;
    return this;
  }

  /** The buffer written to (the one given to `target`, until a write outgrows it). */
  get buffer(): Uint8Array {
    return this.#buf;
  }

  #ensure(n: number): void {
    const need = this.#pos + n;
    if (need <= this.#buf.length) return;
    if (need > MAX_WRITER_CAPACITY) {
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `message would need ${need} bytes, more than the writer limit ${MAX_WRITER_CAPACITY}`,
      );
    }
    // max(64, ...): a writer created with capacity 0 must still grow (0 * 2 stays 0).
    let cap = Math.max(64, this.#buf.length * 2);
    while (cap < need) cap *= 2;
    const nb = new Uint8Array(cap);
    nb.set(this.#buf.subarray(0, this.#pos));
    this.#buf = nb;
    this.#dv = new DataView(nb.buffer);
  }

  static #range(name: string, v: number, max: number): void {
    if (!Number.isInteger(v) || v < 0 || v > max) {
      throw new WireError(
        WireErrorCode.FieldOutOfRange,
        `${name} must be an integer in [0, ${max}], got ${v}`,
      );
    }
  }

  u8(v: number): this {
    Writer.#range("u8", v, 0xff);
    this.#ensure(1);
    this.#buf[this.#pos++] = v;
    return this;
  }

  u16(v: number): this {
    Writer.#range("u16", v, 0xffff);
    this.#ensure(2);
    const b = this.#buf;
    const p = this.#pos;
    b[p] = v >>> 8;
    b[p + 1] = v;
    this.#pos = p + 2;
    return this;
  }

  u32(v: number): this {
    Writer.#range("u32", v, 0xffffffff);
    this.#ensure(4);
    const b = this.#buf;
    const p = this.#pos;
    b[p] = v >>> 24;
    b[p + 1] = v >>> 16;
    b[p + 2] = v >>> 8;
    b[p + 3] = v;
    this.#pos = p + 4;
    return this;
  }

  /** An unsigned integer up to 2^53-1 stored in 8 bytes. */
  u64(v: number): this {
    Writer.#range("u64", v, Number.MAX_SAFE_INTEGER);
    this.#ensure(8);
    this.#dv.setUint32(this.#pos, Math.floor(v / 0x100000000));
    this.#dv.setUint32(this.#pos + 4, v >>> 0);
    this.#pos += 8;
    return this;
  }

  f64(v: number): this {
    if (!Number.isFinite(v))
      throw new WireError(WireErrorCode.FieldOutOfRange, `f64 must be finite, got ${v}`);
    this.#ensure(8);
    this.#dv.setFloat64(this.#pos, v);
    this.#pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    if (!(b instanceof Uint8Array)) throw new TypeError(`Writer.bytes expects a Uint8Array, got ${typeof b}`);
    this.#ensure(b.length);
    this.#buf.set(b, this.#pos);
    this.#pos += b.length;
    return this;
  }

  /** A u16 length followed by that many bytes. */
  bytes16(b: Uint8Array): this {
    this.u16(b.length);
    return this.bytes(b);
  }

  /** A UTF-8 string behind a u8 length (at most 255 bytes). */
  str8(s: string): this {
    if (typeof s !== "string") throw new TypeError(`Writer.str8 expects a string, got ${typeof s}`);
    const b = utf8Encoder.encode(s);
    if (b.length > 0xff) throw new WireError(WireErrorCode.FieldOutOfRange, `string longer than 255 bytes`);
    this.u8(b.length);
    return this.bytes(b);
  }

  /** Overwrites a u16 at an earlier position (for length fields written after their body). */
  patchU16(at: number, v: number): void {
    Writer.#range("u16", v, 0xffff);
    this.#checkPatch(at, 2);
    this.#dv.setUint16(at, v);
  }

  /** Overwrites a u8 at an earlier position (for example a flags byte). */
  patchU8(at: number, v: number): void {
    Writer.#range("u8", v, 0xff);
    this.#checkPatch(at, 1);
    this.#buf[at] = v;
  }

  #checkPatch(at: number, n: number): void {
    if (!Number.isInteger(at) || at < 0 || at + n > this.#pos) {
      throw new RangeError(`patch of ${n} bytes at ${at} is outside the ${this.#pos} bytes written`);
    }
  }

  /** A view of the bytes written so far; valid until the next write or reset. */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#pos);
  }

  /** A copy of the bytes written so far. */
  finish(): Uint8Array {
    return this.#buf.slice(0, this.#pos);
  }
}

/** Reads big-endian fields from a byte range, throwing WireError(truncated) past the end. */
export class Reader {
  #bytes: Uint8Array;
  /** Created on first use (f64 only), so integer-only decoding allocates no DataView. */
  #dv: DataView | undefined;
  #pos: number;
  #end: number;

  constructor(bytes: Uint8Array, start = 0, end = bytes.length) {
    Reader.#checkRange(bytes, start, end);
    this.#bytes = bytes;
    this.#dv = undefined;
    this.#pos = start;
    this.#end = end;
  }

  static #checkRange(bytes: Uint8Array, start: number, end: number): void {
    if (!(bytes instanceof Uint8Array))
      throw new TypeError(`Reader expects a Uint8Array, got ${typeof bytes}`);
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      start < 0 ||
      start > end ||
      end > bytes.length
    ) {
      throw new RangeError(`Reader range [${start}, ${end}) is not within 0..${bytes.length}`);
    }
  }

  /** Points the reader at new bytes (so one Reader can be reused). */
  reset(bytes: Uint8Array, start = 0, end = bytes.length): this {
    Reader.#checkRange(bytes, start, end);
    this.#bytes = bytes;
    this.#dv = undefined;
    this.#pos = start;
    this.#end = end;
    return this;
  }

  get offset(): number {
    return this.#pos;
  }

  get remaining(): number {
    return this.#end - this.#pos;
  }

  #need(n: number, what: string): void {
    if (!(n >= 0) || !Number.isInteger(n)) {
      // A length computed from peer data went negative or fractional: bad input, not a crash.
      throw new WireError(WireErrorCode.FieldOutOfRange, `bad ${what} length ${n}`, this.#pos);
    }
    if (this.#pos + n > this.#end) {
      throw new WireError(
        WireErrorCode.Truncated,
        `truncated ${what}: need ${n} bytes, have ${this.#end - this.#pos}`,
        this.#pos,
      );
    }
  }

  #u32at(p: number): number {
    const b = this.#bytes;
    return (
      (b[p] as number) * 0x1000000 +
      (((b[p + 1] as number) << 16) | ((b[p + 2] as number) << 8) | (b[p + 3] as number))
    );
  }

  u8(): number {
    this.#need(1, "u8");
    return this.#bytes[this.#pos++] as number;
  }

  u16(): number {
    this.#need(2, "u16");
    const b = this.#bytes;
    const p = this.#pos;
    const v = ((b[p] as number) << 8) | (b[p + 1] as number);
    this.#pos = p + 2;
    return v;
  }

  u32(): number {
    this.#need(4, "u32");
    const v = this.#u32at(this.#pos);
    this.#pos += 4;
    return v;
  }

  u64(): number {
    this.#need(8, "u64");
    const hi = this.#u32at(this.#pos);
    const lo = this.#u32at(this.#pos + 4);
    if (hi > 0x1fffff) throw new WireError(WireErrorCode.FieldOutOfRange, "u64 above 2^53-1", this.#pos);
    this.#pos += 8;
    return hi * 0x100000000 + lo;
  }

  f64(): number {
    this.#need(8, "f64");
    const b = this.#bytes;
    this.#dv ??= new DataView(b.buffer, b.byteOffset, b.byteLength);
    const v = this.#dv.getFloat64(this.#pos);
    if (!Number.isFinite(v)) throw new WireError(WireErrorCode.FieldOutOfRange, "f64 not finite", this.#pos);
    this.#pos += 8;
    return v;
  }

  /** `n` bytes as a view into the datagram (no copy). */
  bytes(n: number): Uint8Array {
    this.#need(n, "bytes");
    const b = this.#bytes.subarray(this.#pos, this.#pos + n);
    this.#pos += n;
    return b;
  }

  bytes16(): Uint8Array {
    return this.bytes(this.u16());
  }

  str8(): string {
    const b = this.bytes(this.u8());
    try {
      return utf8Decoder.decode(b);
    } catch {
      throw new WireError(WireErrorCode.FieldOutOfRange, "string is not valid UTF-8", this.#pos - b.length);
    }
  }

  /** Everything left up to the end of the range (no copy). */
  rest(): Uint8Array {
    return this.bytes(this.#end - this.#pos);
  }

  /** Throws unless the range was read exactly to its end. */
  end(what: string): void {
    if (this.#pos !== this.#end) {
      throw new WireError(
        WireErrorCode.TrailingBytes,
        `${this.#end - this.#pos} trailing bytes after ${what}`,
        this.#pos,
      );
    }
  }
}
