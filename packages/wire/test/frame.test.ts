import { describe, expect, it } from "vitest";
import { DestKind, decode, encode, HEADER_BYTES, WireError, WireErrorCode } from "../src/index.ts";

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
