import { describe, expect, it } from "vitest";
import {
  DestKind,
  decode,
  decodeHeader,
  encode,
  HEADER_BYTES,
  MAX_BODY_BYTES,
  type Message,
  Reader,
  WireError,
  WireErrorCode,
  Writer,
} from "../src/index.ts";

const src = { sender: 7, incarnation: 0xdeadbeef };
const dg = {
  _tag: "Datagram" as const,
  header: { src: 1, srcPort: 80, dst: 2, dstPort: 8080, dstKind: DestKind.Node, ttl: 16 },
  payload: new Uint8Array([1, 2, 3]),
};

function wireCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof WireError) return e.code;
    throw e;
  }
  return undefined;
}

describe("frame", () => {
  it("round-trips a datagram", () => {
    const bytes = encode(src, dg);
    expect(bytes.length).toBe(HEADER_BYTES + 14 + 3);
    const f = decode(bytes);
    expect(f.sender).toBe(7);
    expect(f.incarnation).toBe(0xdeadbeef);
    expect(f.msg).toEqual(dg);
  });
  it("rejects bad magic, version, truncation and trailing bytes with typed codes", () => {
    const ok = encode(src, dg);
    const bad = ok.slice();
    bad[0] = 0;
    expect(wireCode(() => decode(bad))).toBe(WireErrorCode.BadMagic);
    const v = ok.slice();
    v[2] = 9;
    expect(wireCode(() => decode(v))).toBe(WireErrorCode.UnsupportedVersion);
    expect(wireCode(() => decode(ok.subarray(0, ok.length - 1)))).toBe(WireErrorCode.Truncated);
    const longer = new Uint8Array(ok.length + 1);
    longer.set(ok);
    expect(wireCode(() => decode(longer))).toBe(WireErrorCode.LengthMismatch);
    const t = ok.slice();
    t[3] = 0xee;
    expect(wireCode(() => decode(t))).toBe(WireErrorCode.UnknownType);
  });
});

describe("frame layout and validation", () => {
  it("lays out header and Datagram fields big-endian at the documented offsets (built by hand)", () => {
    const m = {
      _tag: "Datagram" as const,
      header: {
        src: 0x01020304,
        srcPort: 0x0506,
        dst: 0x0708090a,
        dstPort: 0x0b0c,
        dstKind: DestKind.Anycast,
        ttl: 0x0d,
      },
      payload: new Uint8Array([0xaa, 0xbb]),
    };
    const bytes = encode({ sender: 0x11223344, incarnation: 0x55667788 }, m);
    // magic, version, type, flags, reserved, length, sender, incarnation | src, srcPort, dst, dstPort, kind, ttl, payload
    const expected = [
      0x53, 0x50, 0x02, 0x10, 0x00, 0x00, 0x00, 16, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x01,
      0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x02, 0x0d, 0xaa, 0xbb,
    ];
    expect([...bytes]).toEqual(expected);
    const h = decodeHeader(bytes);
    expect(h).toEqual({ type: 0x10, flags: 0, bodyLength: 16, sender: 0x11223344, incarnation: 0x55667788 });
  });

  it("rejects unknown flags, a non-zero reserved byte, a short Datagram body and a bad dstKind", () => {
    const ok = encode(src, dg);
    const f = ok.slice();
    f[4] = 0x02;
    expect(wireCode(() => decode(f))).toBe(WireErrorCode.FieldOutOfRange);
    const r = ok.slice();
    r[5] = 1;
    expect(wireCode(() => decode(r))).toBe(WireErrorCode.FieldOutOfRange);
    const k = ok.slice();
    k[HEADER_BYTES + 12] = 3;
    expect(wireCode(() => decode(k))).toBe(WireErrorCode.FieldOutOfRange);
    // length field says 13: the body ends one byte inside the overlay header
    const s = ok.slice(0, HEADER_BYTES + 13);
    s[7] = 13;
    expect(wireCode(() => decode(s))).toBe(WireErrorCode.Truncated);
    expect(wireCode(() => decode(new Uint8Array(0)))).toBe(WireErrorCode.Truncated);
    // Auth flag without trailer
    const a = ok.slice();
    a[4] = 1;
    expect(wireCode(() => decode(a))).toBe(WireErrorCode.Truncated);
  });

  it("refuses unencodable values with FieldOutOfRange and unknown tags with UnknownType", () => {
    expect(wireCode(() => encode({ sender: 2 ** 32, incarnation: 0 }, dg))).toBe(
      WireErrorCode.FieldOutOfRange,
    );
    expect(wireCode(() => encode({ sender: -1, incarnation: 0 }, dg))).toBe(WireErrorCode.FieldOutOfRange);
    expect(wireCode(() => encode({ sender: 1.5, incarnation: 0 }, dg))).toBe(WireErrorCode.FieldOutOfRange);
    const badKind = { ...dg, header: { ...dg.header, dstKind: 300 as DestKind } };
    expect(wireCode(() => encode(src, badKind))).toBe(WireErrorCode.FieldOutOfRange);
    const big = { ...dg, payload: new Uint8Array(MAX_BODY_BYTES - 14 + 1) };
    expect(wireCode(() => encode(src, big))).toBe(WireErrorCode.FieldOutOfRange);
    const max = { ...dg, payload: new Uint8Array(MAX_BODY_BYTES - 14) };
    expect(decode(encode(src, max)).msg).toEqual(max);
    const unknown = { _tag: "Nope" } as unknown as Message;
    expect(wireCode(() => encode(src, unknown))).toBe(WireErrorCode.UnknownType);
  });

  it("throws TypeError, not WireError, when decode is given something other than a Uint8Array", () => {
    expect(() => decode("5350" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => decode(null as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => encode(src, null as unknown as Message)).toThrow(TypeError);
  });

  it("decodes from a view at a non-zero byteOffset and aliases the payload", () => {
    const ok = encode(src, dg);
    const big = new Uint8Array(ok.length + 7);
    big.set(ok, 7);
    const f = decode(big.subarray(7));
    expect(f.msg).toEqual(dg);
    if (f.msg._tag !== "Datagram") throw new Error("not a Datagram");
    expect(f.msg.payload.buffer).toBe(big.buffer);
  });
});

describe("Writer and Reader", () => {
  it("grows from capacity 0 and 1", () => {
    for (const cap of [0, 1]) {
      const w = new Writer(cap);
      w.u32(0xdeadbeef).bytes(new Uint8Array(100)).u8(7);
      expect(w.length).toBe(105);
      expect(w.view()[104]).toBe(7);
    }
    expect(() => new Writer(-1)).toThrow(RangeError);
    expect(() => new Writer(1.5)).toThrow(RangeError);
  });

  it("checks patch positions and byte arguments", () => {
    const w = new Writer();
    w.u16(0);
    w.patchU16(0, 0xabcd);
    w.patchU8(1, 0xef);
    expect([...w.view()]).toEqual([0xab, 0xef]);
    expect(() => w.patchU16(1, 0)).toThrow(RangeError);
    expect(() => w.patchU8(2, 0)).toThrow(RangeError);
    expect(() => w.bytes([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
  });

  it("refuses a range outside its bytes and negative lengths", () => {
    const b = new Uint8Array(10);
    expect(() => new Reader(b, 0, 11)).toThrow(RangeError);
    expect(() => new Reader(b, 5, 4)).toThrow(RangeError);
    expect(() => new Reader(b).reset(b, -1)).toThrow(RangeError);
    const r = new Reader(b, 2, 6);
    expect(wireCode(() => r.bytes(-1))).toBe(WireErrorCode.FieldOutOfRange);
    expect(r.offset).toBe(2);
    expect(wireCode(() => r.u64())).toBe(WireErrorCode.Truncated);
    r.u32();
    expect(wireCode(() => r.u8())).toBe(WireErrorCode.Truncated);
  });

  it("reports trailing bytes, u64 above 2^53-1, non-finite f64 and bad UTF-8", () => {
    const r = new Reader(new Uint8Array([1, 2, 3]));
    r.u8();
    expect(wireCode(() => r.end("test"))).toBe(WireErrorCode.TrailingBytes);
    const big = new Writer().u32(0x00200000).u32(0).finish();
    expect(wireCode(() => new Reader(big).u64())).toBe(WireErrorCode.FieldOutOfRange);
    const nan = new Uint8Array(8);
    new DataView(nan.buffer).setFloat64(0, Number.NaN);
    expect(wireCode(() => new Reader(nan).f64())).toBe(WireErrorCode.FieldOutOfRange);
    expect(wireCode(() => new Reader(new Uint8Array([2, 0xc3, 0x28])).str8())).toBe(
      WireErrorCode.FieldOutOfRange,
    );
    expect(wireCode(() => new Writer().f64(Number.POSITIVE_INFINITY))).toBe(WireErrorCode.FieldOutOfRange);
    expect(wireCode(() => new Writer().u64(2 ** 53))).toBe(WireErrorCode.FieldOutOfRange);
    expect(wireCode(() => new Writer().str8("x".repeat(256)))).toBe(WireErrorCode.FieldOutOfRange);
  });
});
