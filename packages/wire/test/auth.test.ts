import { describe, expect, it } from "vitest";
import {
  authMac,
  FrameAuth,
  formatKeyFile,
  generateKeyFile,
  KeyFileError,
  KeyFileErrorCode,
  KeySet,
  parseKeyFile,
  ReplayGuard,
  sign as signC,
  signInto as signIntoC,
  VerifyFailure,
  verify,
} from "../src/auth.ts";
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
// the tests below predate the counter; they sign with counter 7 unless they say otherwise
const sign = (f: Uint8Array, id: number, k: Uint8Array, c = 7) => signC(f, id, k, c);
const signInto = (w: Writer, id: number, k: Uint8Array, c = 7) => signIntoC(w, id, k, c);
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

  it("signs: flag set, body length unchanged, trailer = key id + counter + MAC over every byte before it", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 1, key1, 0x0102030405);
    expect(AUTH_TRAILER_BYTES).toBe(26);
    expect(signed.length).toBe(plain.length + AUTH_TRAILER_BYTES);
    expect(signed[4]).toBe(0x01);
    expect(toHex(signed.subarray(5, plain.length))).toBe(toHex(plain.subarray(5)));
    expect(toHex(signed.subarray(plain.length, plain.length + 10))).toBe("00010000000102030405");
    const covered = signed.subarray(0, plain.length + 10);
    expect(toHex(signed.subarray(plain.length + 10))).toBe(toHex(authMac(key1, covered)));
    // a MAC over the header *without* the flag would differ: the flag is covered
    const noFlag = covered.slice();
    noFlag[4] = 0;
    expect(toHex(authMac(key1, noFlag))).not.toBe(toHex(signed.subarray(plain.length + 10)));
    const f = decode(signed);
    expect(f.msg).toEqual(dg);
    expect(f.auth?.keyId).toBe(1);
    expect(f.auth?.counter).toBe(0x0102030405);
    expect(toHex(f.auth?.mac ?? new Uint8Array())).toBe(toHex(signed.subarray(plain.length + 10)));
  });

  it("verifies with the right key and rejects unsigned, unknown key and bad MAC", () => {
    const plain = encode(src, dg);
    const signed = sign(plain, 2, key2);
    expect(verify(signed, keys)).toEqual({ ok: true, keyId: 2, counter: 7 });
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
    expect(stripped[4]).toBe(1);
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
    expect(() => sign(plain, 1, key1, -1)).toThrow(RangeError);
    expect(() => sign(plain, 1, key1, 2 ** 53)).toThrow(RangeError);
    expect(() => sign(plain, 1, key1, 1.5)).toThrow(RangeError);
    // a counter above 2^53 - 1 in a received frame is malformed, not a bad MAC
    const big = signed.slice();
    big[plain.length + 2] = 0xff;
    try {
      verify(big, keys);
      expect.unreachable();
    } catch (e) {
      expect((e as WireError).code).toBe(WireErrorCode.FieldOutOfRange);
    }
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

const HEX_A = `${"00".repeat(31)}01`;
const HEX_B = "ab".repeat(32);

describe("key files", () => {
  it("parses ids, keys, comments and blank lines; the first key signs, both verify", () => {
    const ks = parseKeyFile(`# overlay keys\n\n  7 ${HEX_A}   # current\r\n9 ${HEX_B.toUpperCase()}\n`);
    expect(ks.ids()).toEqual([7, 9]);
    expect(ks.current.id).toBe(7);
    expect(toHex(ks.get(9) ?? new Uint8Array())).toBe(HEX_B);
    const plain = encode(src, dg);
    const signed = ks.sign(plain, 1);
    expect(decode(signed).auth?.keyId).toBe(7);
    expect(ks.verify(signed)).toEqual({ ok: true, keyId: 7, counter: 1 });
    // a node holding the keys the other way round signs with 9 and still accepts 7
    const rev = parseKeyFile(`9 ${HEX_B}\n7 ${HEX_A}\n`);
    expect(rev.verify(signed).ok).toBe(true);
    expect(ks.verify(rev.sign(plain, 2)).ok).toBe(true);
    // a node that only has key 9 refuses key 7
    expect(parseKeyFile(`9 ${HEX_B}`).verify(signed)).toEqual({ ok: false, reason: "unknown-key", keyId: 7 });
    expect(ks.withCurrent(9).current.id).toBe(9);
  });

  it("round-trips through formatKeyFile, and generateKeyFile makes a fresh 32-byte key", () => {
    const ks = parseKeyFile(`7 ${HEX_A}\n9 ${HEX_B}\n`);
    const again = parseKeyFile(formatKeyFile(ks));
    expect(again.keys.map((k) => [k.id, toHex(k.key)])).toEqual([
      [7, HEX_A],
      [9, HEX_B],
    ]);
    const g1 = parseKeyFile(generateKeyFile());
    const g2 = parseKeyFile(generateKeyFile(42));
    expect(g1.current.id).toBe(1);
    expect(g2.current.id).toBe(42);
    expect(g1.current.key.length).toBe(32);
    expect(toHex(g1.current.key)).not.toBe(toHex(g2.current.key));
    expect(() => generateKeyFile(70000)).toThrow(RangeError);
  });

  const bad: [string, string, KeyFileErrorCode, number | undefined][] = [
    ["empty", "# nothing\n\n", KeyFileErrorCode.Empty, undefined],
    ["short key", `1 ${HEX_A}\n2 abcd\n`, KeyFileErrorCode.Syntax, 2],
    ["non-hex key", `1 ${"zz".repeat(32)}`, KeyFileErrorCode.Syntax, 1],
    ["id out of range", `\n70000 ${HEX_A}`, KeyFileErrorCode.Syntax, 2],
    ["negative id", `-1 ${HEX_A}`, KeyFileErrorCode.Syntax, 1],
    ["three fields", `1 ${HEX_A} extra`, KeyFileErrorCode.Syntax, 1],
    ["key only", HEX_A, KeyFileErrorCode.Syntax, 1],
    ["duplicate id", `1 ${HEX_A}\n1 ${HEX_B}`, KeyFileErrorCode.Syntax, 2],
    ["three keys", `1 ${HEX_A}\n2 ${HEX_B}\n3 ${HEX_A}`, KeyFileErrorCode.TooManyKeys, 3],
  ];
  for (const [name, text, code, line] of bad) {
    it(`refuses a key file: ${name}`, () => {
      try {
        parseKeyFile(text);
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(KeyFileError);
        expect((e as KeyFileError).code).toBe(code);
        expect((e as KeyFileError).line).toBe(line);
        // never echoes key material
        expect((e as Error).message).not.toContain(HEX_B);
        if (line !== undefined) expect((e as Error).message).toContain(`line ${line}`);
      }
    });
  }

  it("KeySet refuses bad key lists", () => {
    expect(() => new KeySet([])).toThrow(RangeError);
    const k = { id: 1, key: key1 };
    expect(() => new KeySet([k, { id: 2, key: key2 }, { id: 3, key: key2 }])).toThrow(RangeError);
    expect(() => new KeySet([k, { id: 1, key: key2 }])).toThrow(RangeError);
    expect(() => new KeySet([{ id: 1, key: new Uint8Array(8) }])).toThrow(RangeError);
  });
});

describe("replay guard", () => {
  it("accepts each counter once per incarnation, within a sliding window", () => {
    const g = new ReplayGuard({ window: 64 });
    expect(g.accept(5, 100, 1000)).toBeUndefined();
    expect(g.accept(5, 100, 1000)).toBe("replay");
    expect(g.accept(5, 100, 1003)).toBeUndefined();
    expect(g.accept(5, 100, 1001)).toBeUndefined(); // reordered, inside the window
    expect(g.accept(5, 100, 1001)).toBe("replay");
    expect(g.accept(5, 100, 1002)).toBeUndefined();
    expect(g.accept(5, 100, 1100)).toBeUndefined(); // jump: 1036 and below fall out of the window
    expect(g.accept(5, 100, 1036)).toBe("replay");
    expect(g.accept(5, 100, 1037)).toBeUndefined();
    expect(g.accept(5, 100, 1037)).toBe("replay");
    // a sender of its own
    expect(g.accept(6, 100, 1000)).toBeUndefined();
  });

  it("believes a new incarnation only with a counter above everything seen from the sender", () => {
    const g = new ReplayGuard();
    expect(g.accept(5, 1, 5000)).toBeUndefined();
    expect(g.accept(5, 1, 5001)).toBeUndefined();
    // a replayed frame of an earlier life (lower counter) is refused and changes nothing
    expect(g.accept(5, 2, 4000)).toBe("stale-incarnation");
    expect(g.accept(5, 1, 5002)).toBeUndefined();
    // a restart starts its counter at a later clock reading
    expect(g.accept(5, 3, 9000)).toBeUndefined();
    expect(g.accept(5, 1, 5003)).toBe("stale-incarnation");
    expect(g.accept(5, 3, 9000)).toBe("replay");
  });

  it("stays within maxSenders and counts evictions", () => {
    const g = new ReplayGuard({ maxSenders: 3 });
    for (let s = 0; s < 10; s++) expect(g.accept(s, 1, 1)).toBeUndefined();
    expect(g.stats()).toEqual({ senders: 3, evicted: 7 });
    expect(() => new ReplayGuard({ window: 33 })).toThrow(RangeError);
  });
});

describe("FrameAuth", () => {
  it("seals with increasing counters and opens each frame once; counts every drop reason", () => {
    const ks = new KeySet([{ id: 1, key: key1 }]);
    const a = new FrameAuth(ks, { counterStart: 1_000_000 });
    const b = new FrameAuth(ks, { counterStart: 5 });
    const plain = encode(src, dg);
    const f1 = a.seal(plain);
    const w = new Writer(64);
    encodeInto(w, src, dg);
    const f2 = a.sealInto(w).slice();
    expect(decode(f1).auth?.counter).toBe(1_000_000);
    expect(decode(f2).auth?.counter).toBe(1_000_001);
    expect(b.open(f2).ok).toBe(true);
    expect(b.open(f1).ok).toBe(true); // reordered
    expect(b.open(f1)).toEqual({ ok: false, reason: "replay", keyId: 1 });
    expect(b.open(plain)).toEqual({ ok: false, reason: "unsigned" });
    const flipped = f1.slice();
    flipped[16] = (flipped[16] as number) ^ 1;
    expect(b.open(flipped)).toEqual({ ok: false, reason: "bad-mac", keyId: 1 });
    const zeroMac = f1.slice();
    zeroMac.fill(0, zeroMac.length - 16);
    expect(b.open(zeroMac).ok).toBe(false);
    expect(b.open(signC(plain, 3, key1, 99)).ok).toBe(false);
    expect(b.open(signC(plain, 1, key2, 2_000_000)).ok).toBe(false); // wrong key under a known id
    // an earlier life of sender 1 with a lower counter
    expect(b.open(signC(encode({ sender: 1, incarnation: 7 }, dg), 1, key1, 10))).toEqual({
      ok: false,
      reason: "stale-incarnation",
      keyId: 1,
    });
    expect(b.stats()).toEqual({
      signed: 0,
      accepted: 2,
      unsigned: 1,
      unknownKey: 1,
      badMac: 3,
      replay: 1,
      staleIncarnation: 1,
      replayEvicted: 0,
    });
    expect(b.dropped).toBe(7);
    expect(a.stats().signed).toBe(2);
  });
});

describe("FrameAuth encrypt mode (ChaCha20-Poly1305)", () => {
  it("encrypts the body, decodes after open, refuses tampering, replays and mac-mode peers", () => {
    const ks = new KeySet([{ id: 1, key: key1 }]);
    const a = new FrameAuth(ks, { counterStart: 100, mode: "encrypt" });
    const b = new FrameAuth(ks, { counterStart: 5, mode: "encrypt" });
    const macOnly = new FrameAuth(ks, { counterStart: 5 });
    const plain = encode(src, dg);
    const sealed = a.seal(plain);
    expect(sealed.length).toBe(plain.length + AUTH_TRAILER_BYTES);
    // header in clear (with the flag), body not
    expect(toHex(sealed.subarray(5, 16))).toBe(toHex(plain.subarray(5, 16)));
    expect(toHex(sealed.subarray(16, plain.length))).not.toBe(toHex(plain.subarray(16)));
    expect(Buffer.from(sealed).includes(Buffer.from("hello"))).toBe(false);
    const r = b.open(sealed);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.counter).toBe(100);
    expect(decode(r.frame).msg).toEqual(dg);
    expect(b.open(sealed).ok).toBe(false); // replay
    for (const at of [3, 9, 14, 20, sealed.length - 20, sealed.length - 1]) {
      const t = sealed.slice();
      t[at] = (t[at] as number) ^ 0x10;
      expect(new FrameAuth(ks, { counterStart: 1, mode: "encrypt" }).open(t).ok, `byte ${at}`).toBe(false);
    }
    // the same key in mac mode refuses it (the tag is no HMAC), and encrypt mode refuses signed frames
    expect(macOnly.open(sealed)).toMatchObject({ ok: false, reason: "bad-mac" });
    expect(new FrameAuth(ks, { counterStart: 1, mode: "encrypt" }).open(ks.sign(plain, 1))).toMatchObject({
      ok: false,
      reason: "bad-mac",
    });
    // another incarnation of the same sender gets another sub-key: same counter, other ciphertext
    const other = new FrameAuth(ks, { counterStart: 100, mode: "encrypt" }).seal(
      encode({ sender: 1, incarnation: 0x1234 }, dg),
    );
    expect(toHex(other.subarray(16, plain.length))).not.toBe(toHex(sealed.subarray(16, plain.length)));
    expect(() => new FrameAuth(ks, { counterStart: 1, mode: "rot13" as "mac" })).toThrow(RangeError);
    const w = new Writer(64);
    encodeInto(w, src, dg);
    const viaWriter = a.sealInto(w);
    const r2 = b.open(viaWriter);
    expect(r2.ok && decode(r2.frame).msg).toEqual(dg);
  });
});
