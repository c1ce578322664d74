import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sign, verify } from "../src/auth.ts";
import {
  type Datagram,
  DestKind,
  decode,
  decodeHeader,
  encode,
  encodeInto,
  HEADER_BYTES,
  OVERLAY_HEADER_BYTES,
  Reader,
  WireError,
  Writer,
} from "../src/index.ts";

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const u8 = fc.nat({ max: 0xff });
const source = fc.record({ sender: u32, incarnation: u32 });
const datagram: fc.Arbitrary<Datagram> = fc.record({
  _tag: fc.constant("Datagram" as const),
  header: fc.record({
    src: u32,
    srcPort: u16,
    dst: u32,
    dstPort: u16,
    dstKind: fc.constantFrom(DestKind.Node, DestKind.Multicast, DestKind.Anycast),
    ttl: u8,
  }),
  payload: fc.uint8Array({ maxLength: 1500 }),
});

describe("round trips (fast-check)", () => {
  it("decode(encode(src, datagram)) gives back the source and the datagram", () => {
    fc.assert(
      fc.property(source, datagram, (src, m) => {
        const bytes = encode(src, m);
        expect(bytes.length).toBe(HEADER_BYTES + OVERLAY_HEADER_BYTES + m.payload.length);
        const h = decodeHeader(bytes);
        expect(h).toEqual({ type: 0x10, flags: 0, bodyLength: bytes.length - HEADER_BYTES, ...src });
        const f = decode(bytes);
        expect(f.sender).toBe(src.sender);
        expect(f.incarnation).toBe(src.incarnation);
        expect(f.msg).toEqual(m);
      }),
      { numRuns: 500 },
    );
  });

  it("encodeInto with one reused Writer gives the same bytes as encode", () => {
    const w = new Writer(8);
    fc.assert(
      fc.property(fc.array(fc.tuple(source, datagram), { minLength: 1, maxLength: 5 }), (items) => {
        for (const [src, m] of items) {
          const a = encode(src, m);
          const b = encodeInto(w, src, m);
          expect(Buffer.from(b).equals(Buffer.from(a))).toBe(true);
        }
      }),
      { numRuns: 200 },
    );
  });

  it("signed frames decode to the same message and verify; any bit flip fails", () => {
    const key = new Uint8Array(32).fill(9);
    const keys = new Map([[3, key]]);
    fc.assert(
      fc.property(source, datagram, fc.nat(), fc.maxSafeNat(), (src, m, where, counter) => {
        const signed = sign(encode(src, m), 3, key, counter);
        expect(decode(signed).auth?.counter).toBe(counter);
        expect(decode(signed).msg).toEqual(m);
        expect(verify(signed, keys).ok).toBe(true);
        const t = signed.slice();
        const bit = where % (t.length * 8);
        t[bit >> 3] = (t[bit >> 3] as number) ^ (1 << (bit & 7));
        let ok = false;
        try {
          ok = verify(t, keys).ok;
        } catch (e) {
          if (!(e instanceof WireError)) throw e;
        }
        expect(ok).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it("Writer and Reader round-trip every field type", () => {
    const field = fc.oneof(
      u8.map((v) => ["u8", v] as const),
      u16.map((v) => ["u16", v] as const),
      u32.map((v) => ["u32", v] as const),
      fc.maxSafeNat().map((v) => ["u64", v] as const),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => ["f64", v] as const),
      fc.uint8Array({ maxLength: 300 }).map((v) => ["bytes16", v] as const),
      fc
        .string({ unit: "grapheme", maxLength: 40 })
        .filter((s) => new TextEncoder().encode(s).length <= 255)
        .map((v) => ["str8", v] as const),
    );
    fc.assert(
      fc.property(fc.array(field, { maxLength: 20 }), (fields) => {
        const w = new Writer(0);
        for (const [k, v] of fields) {
          if (k === "bytes16") w.bytes16(v);
          else if (k === "str8") w.str8(v);
          else w[k](v);
        }
        const r = new Reader(w.finish());
        for (const [k, v] of fields) {
          const got = k === "bytes16" ? r.bytes16() : k === "str8" ? r.str8() : r[k]();
          expect(got).toEqual(v);
        }
        r.end("fields");
      }),
      { numRuns: 300 },
    );
  });

  it("arbitrary bytes, with or without a valid header prefix, decode or throw WireError only", () => {
    const prefix = fc.constantFrom(
      new Uint8Array(0),
      new Uint8Array([0x53, 0x50, 0x02]),
      new Uint8Array([0x53, 0x50, 0x02, 0x10, 0x00, 0x00]),
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 200 }), (p, rest) => {
        const b = new Uint8Array(p.length + rest.length);
        b.set(p);
        b.set(rest, p.length);
        try {
          decode(b);
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
          expect((e as WireError).cause).toBeUndefined();
        }
      }),
      { numRuns: 2000 },
    );
  });
});
