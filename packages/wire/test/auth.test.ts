import { describe, expect, it } from "vitest";
import { authMac, sign, signInto, VerifyFailure, verify } from "../src/auth.ts";
import {
  AUTH_TRAILER_BYTES,
  DestKind,
  decode,
  encode,
  encodeInto,
  WireError,
  WireErrorCode,
  Writer,
} from "../src/index.ts";
import { fromHex, toHex } from "./vectors.ts";

const key1 = fromHex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
const key2 = new Uint8Array(32).fill(0x42);
const keys = new Map([
  [1, key1],
  [2, key2],
]);
const src = { sender: 1, incarnation: 0xdeadbeef };
const dg = {
  _tag: "Datagram" as const,
  header: { src: 1, srcPort: 5000, dst: 2, dstPort: 6000, dstKind: DestKind.Node, ttl: 16 },
  payload: new TextEncoder().encode("hello"),
};

describe("authentication trailer", () => {
  it("truncates HMAC-SHA-256 to 16 bytes as RFC 4231 test case 5", () => {
    const mac = authMac(new Uint8Array(20).fill(0x0c), new TextEncoder().encode("Test With Truncation"));
    expect(toHex(mac)).toBe("a3b6167473100ee06e0c796c2955552b");
  });

  it("signs: flag set, body length unchanged, trailer = key id + MAC over every byte before it", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 1, key1);
    expect(signed.length).toBe(plain.length + AUTH_TRAILER_BYTES);
    expect(signed[4]).toBe(0x01);
    expect(toHex(signed.subarray(5, plain.length))).toBe(toHex(plain.subarray(5)));
    expect(toHex(signed.subarray(plain.length, plain.length + 2))).toBe("0001");
    const covered = signed.subarray(0, plain.length);
    expect(toHex(signed.subarray(plain.length + 2))).toBe(toHex(authMac(key1, covered)));
    // a MAC over the header *without* the flag would differ: the flag is covered
    expect(toHex(authMac(key1, plain))).not.toBe(toHex(signed.subarray(plain.length + 2)));
    const f = decode(signed);
    expect(f.msg).toEqual(dg);
    expect(f.auth?.keyId).toBe(1);
    expect(toHex(f.auth?.mac ?? new Uint8Array())).toBe(toHex(signed.subarray(plain.length + 2)));
  });

  it("verifies with the right key and rejects unsigned, unknown key and bad MAC", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 2, key2);
    expect(verify(signed, keys)).toEqual({ ok: true, keyId: 2 });
    expect(verify(plain, keys)).toEqual({ ok: false, reason: VerifyFailure.Unsigned });
    expect(verify(sign(plain, 7, key1), keys)).toEqual({
      ok: false,
      reason: VerifyFailure.UnknownKey,
      keyId: 7,
    });
    // right id, wrong key
    expect(verify(sign(plain, 1, key2), keys)).toEqual({ ok: false, reason: VerifyFailure.BadMac, keyId: 1 });
  });

  it("detects a change to any byte of a signed frame", () => {
    const signed = sign(encode(src, dg), 1, key1);
    for (let i = 0; i < signed.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const t = signed.slice();
        t[i] = (t[i] as number) ^ bit;
        let ok = false;
        try {
          ok = verify(t, keys).ok;
        } catch (e) {
          expect(e).toBeInstanceOf(WireError);
        }
        expect(ok, `byte ${i} bit ${bit}`).toBe(false);
      }
    }
  });

  it("stripping the trailer and clearing the flag yields an unsigned frame, not a valid one", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 1, key1);
    const stripped = signed.slice(0, plain.length);
    stripped[4] = 0;
    expect(verify(stripped, keys)).toEqual({ ok: false, reason: VerifyFailure.Unsigned });
  });

  it("signInto signs in place and matches sign", () => {
    const w = new Writer(16);
    const plain = encode(src, dg);
    encodeInto(w, src, dg);
    const view = signInto(w, 1, key1);
    expect(toHex(view)).toBe(toHex(sign(plain, 1, key1)));
  });

  it("refuses bad arguments with TypeError/RangeError and malformed frames with WireError", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 1, key1);
    expect(() => sign(signed, 1, key1)).toThrow(RangeError);
    expect(() => sign(plain, 1, new Uint8Array(15))).toThrow(RangeError);
    expect(() => sign(plain, 0x10000, key1)).toThrow(RangeError);
    expect(() => sign(plain, -1, key1)).toThrow(RangeError);
    expect(() => sign(plain, 1, "secret" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => verify(signed, new Map([[1, new Uint8Array(4)]]))).toThrow(RangeError);
    try {
      verify(signed.subarray(0, signed.length - 1), keys);
      expect.unreachable();
    } catch (e) {
      expect((e as WireError).code).toBe(WireErrorCode.Truncated);
    }
    try {
      sign(plain.subarray(0, 10), 1, key1);
      expect.unreachable();
    } catch (e) {
      expect((e as WireError).code).toBe(WireErrorCode.Truncated);
    }
  });
});
