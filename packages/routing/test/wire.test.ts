import {
  decode,
  encode,
  MAX_ROUTE_ITEMS,
  ROUTE_COST_DOWN,
  type RouteAck,
  RouteItemKind,
  type RouteUpdate,
  WireError,
  WireErrorCode,
} from "@spines-ts/wire";
import fc from "fast-check";
import { describe, expect, it } from "vitest";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));

function code(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    if (e instanceof WireError) return e.code;
    throw e;
  }
  return undefined;
}

// Golden vectors, written out by hand from docs/wire.md section 4 (not produced by the encoder).
const UPDATE_HEX = `
  5350 02 20 00 00 0016 00000007 01020304
  01
  00 00000007 00000009 01020304 00000005 00000064`;
const UPDATE: RouteUpdate = {
  _tag: "RouteUpdate",
  items: [{ kind: RouteItemKind.Edge, origin: 7, key: 9, incarnation: 0x01020304, seq: 5, value: 100 }],
};
const ACK_HEX = `
  5350 02 21 00 00 0012 00000009 aabbccdd
  01
  01 00000007 e0000001 00000001 00000002`;
const ACK: RouteAck = {
  _tag: "RouteAck",
  items: [{ kind: RouteItemKind.Group, origin: 7, key: 0xe0000001, incarnation: 1, seq: 2 }],
};

const itemArb = fc.oneof(
  fc.record({
    kind: fc.constant(RouteItemKind.Edge),
    origin: fc.nat(0xffffffff),
    key: fc.nat(0xffffffff),
    incarnation: fc.nat(0xffffffff),
    seq: fc.nat(0xffffffff),
    value: fc.oneof(fc.integer({ min: 1, max: 0xfffffffe }), fc.constant(ROUTE_COST_DOWN)),
  }),
  fc.record({
    kind: fc.constant(RouteItemKind.Group),
    origin: fc.nat(0xffffffff),
    key: fc.nat(0xffffffff),
    incarnation: fc.nat(0xffffffff),
    seq: fc.nat(0xffffffff),
    value: fc.integer({ min: 0, max: 1 }),
  }),
);

describe("routing messages on the wire", () => {
  it("match the golden vectors byte for byte, both ways", () => {
    expect(hex(encode({ sender: 7, incarnation: 0x01020304 }, UPDATE))).toBe(hex(unhex(UPDATE_HEX)));
    expect(decode(unhex(UPDATE_HEX)).msg).toEqual(UPDATE);
    expect(hex(encode({ sender: 9, incarnation: 0xaabbccdd }, ACK))).toBe(hex(unhex(ACK_HEX)));
    expect(decode(unhex(ACK_HEX)).msg).toEqual(ACK);
  });

  it("round-trip any update and ack of up to 64 items", () => {
    fc.assert(
      fc.property(fc.array(itemArb, { maxLength: MAX_ROUTE_ITEMS }), (items) => {
        const u: RouteUpdate = { _tag: "RouteUpdate", items };
        expect(decode(encode({ sender: 1, incarnation: 2 }, u)).msg).toEqual(u);
        const refs = items.map(({ value: _v, ...ref }) => ref);
        const a: RouteAck = { _tag: "RouteAck", items: refs };
        expect(decode(encode({ sender: 1, incarnation: 2 }, a)).msg).toEqual(a);
      }),
      { numRuns: 200 },
    );
  });

  it("reject bad counts, kinds and values with typed codes", () => {
    const ok = unhex(UPDATE_HEX);
    const badKind = ok.slice();
    badKind[17] = 2;
    expect(code(() => decode(badKind))).toBe(WireErrorCode.FieldOutOfRange);
    const zeroCost = ok.slice();
    zeroCost.fill(0, 34, 38);
    expect(code(() => decode(zeroCost))).toBe(WireErrorCode.FieldOutOfRange);
    const countHigh = ok.slice();
    countHigh[16] = 2;
    expect(code(() => decode(countHigh))).toBe(WireErrorCode.Truncated);
    const countLow = ok.slice();
    countLow[16] = 0;
    expect(code(() => decode(countLow))).toBe(WireErrorCode.TrailingBytes);
    const tooMany = ok.slice();
    tooMany[16] = MAX_ROUTE_ITEMS + 1;
    expect(code(() => decode(tooMany))).toBe(WireErrorCode.FieldOutOfRange);
    const groupFlag = unhex(UPDATE_HEX);
    groupFlag[17] = 1; // a group item with value 100
    expect(code(() => decode(groupFlag))).toBe(WireErrorCode.FieldOutOfRange);
    expect(
      code(() =>
        encode(
          { sender: 1, incarnation: 1 },
          {
            _tag: "RouteUpdate",
            items: Array.from({ length: MAX_ROUTE_ITEMS + 1 }, () => UPDATE.items[0]!),
          },
        ),
      ),
    ).toBe(WireErrorCode.FieldOutOfRange);
  });

  it("never throw anything but WireError on random or mutated bytes", () => {
    const base = [unhex(UPDATE_HEX), unhex(ACK_HEX)];
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1 }),
        fc.array(fc.tuple(fc.nat(200), fc.nat(255)), { maxLength: 6 }),
        fc.nat(60),
        (which, muts, cut) => {
          const b = (base[which] as Uint8Array).slice(
            0,
            Math.max(0, (base[which] as Uint8Array).length - cut),
          );
          for (const [at, v] of muts) if (at < b.length && at >= 3) b[at] = v;
          try {
            decode(b);
          } catch (e) {
            expect(e).toBeInstanceOf(WireError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
