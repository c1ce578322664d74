import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import {
  blankLinkDataFrame,
  type DestKind,
  decode,
  decodeLinkDataInto,
  encode,
  encodeAt,
  encodeInto,
  type LinkChannel,
  type LinkData,
  LinkDataFlag,
  type Message,
  WireError,
  Writer,
} from "../src/index.ts";

const src = { sender: 0x80000001, incarnation: 0xdeadbeef };

function linkData(rng: Rng): LinkData {
  return {
    _tag: "LinkData",
    peerIncarnation: rng.uint32(),
    channel: rng.int(2 + 1) as LinkChannel,
    flags: rng.chance(0.5) ? LinkDataFlag.Retransmission : 0,
    seq: rng.uint32(),
    ts: rng.uint32(),
    header: {
      src: rng.uint32(),
      srcPort: rng.int(0xffff + 1),
      dst: rng.uint32(),
      dstPort: rng.int(0xffff + 1),
      dstKind: rng.int(2 + 1) as DestKind,
      ttl: rng.int(255 + 1),
    },
    payload: rng.bytes(rng.int(1400 + 1)),
  };
}

describe("decodeLinkDataInto", () => {
  it("fills one reused frame exactly as decode would, for 500 random LinkData frames", () => {
    const rng = new Rng(10);
    const out = blankLinkDataFrame();
    for (let i = 0; i < 500; i++) {
      const bytes = encode(src, linkData(rng));
      expect(decodeLinkDataInto(bytes, out)).toBe(true);
      const want = decode(bytes);
      expect({ ...out, msg: { ...out.msg } }).toEqual({ ...want, msg: { ...want.msg } });
    }
  });

  it("declines other types, a trailer and malformed frames (decode then names the error)", () => {
    const rng = new Rng(11);
    const out = blankLinkDataFrame();
    const other: Message = { _tag: "Datagram", header: linkData(rng).header, payload: new Uint8Array(3) };
    expect(decodeLinkDataInto(encode(src, other), out)).toBe(false);
    const signed = encode(src, linkData(rng), { keyId: 1, counter: 5, mac: new Uint8Array(16) });
    expect(decodeLinkDataInto(signed, out)).toBe(false);
    expect(decode(signed).auth?.counter).toBe(5);
    const good = encode(src, linkData(rng));
    const bad: Uint8Array[] = [
      good.subarray(0, 10),
      good.subarray(0, good.length - 1),
      Uint8Array.from([...good, 0]),
    ];
    const badChannel = good.slice();
    badChannel[20] = 3; // channel byte: 16 (frame) + 4 (peerIncarnation)
    bad.push(badChannel);
    const badFlags = good.slice();
    badFlags[21] = 0x80;
    bad.push(badFlags);
    for (const b of bad) {
      expect(decodeLinkDataInto(b, out)).toBe(false);
      expect(() => decode(b)).toThrow(WireError);
    }
  });
});

describe("shared headers", () => {
  it("consecutive identical headers decode to one object; a different one to a new object", () => {
    const rng = new Rng(12);
    const a = linkData(rng);
    const h1 = (decode(encode(src, a)).msg as LinkData).header;
    const h2 = (decode(encode(src, { ...a, seq: 9 })).msg as LinkData).header;
    expect(h2).toBe(h1);
    const h3 = (decode(encode(src, { ...a, header: { ...a.header, ttl: a.header.ttl ^ 1 } })).msg as LinkData)
      .header;
    expect(h3).not.toBe(h1);
    expect(h3).toEqual({ ...a.header, ttl: a.header.ttl ^ 1 });
  });
});

describe("encodeAt and Writer.target", () => {
  it("encodes frames one after another into the caller's buffer, the same bytes as encode", () => {
    const rng = new Rng(13);
    const buf = new Uint8Array(1 << 16);
    const w = new Writer(0).target(buf, 8);
    const frames: [number, number, Uint8Array][] = [];
    for (let i = 0; i < 20; i++) {
      const m = linkData(rng);
      const start = encodeAt(w, src, m);
      frames.push([start, w.length, encode(src, m)]);
    }
    expect(w.buffer).toBe(buf);
    expect(frames[0]?.[0]).toBe(8);
    for (const [s, e, want] of frames) expect(buf.subarray(s, e)).toEqual(want);
  });

  it("grows into a buffer of its own when the target is too small, keeping what was written", () => {
    const rng = new Rng(14);
    const small = new Uint8Array(64);
    const w = new Writer(0).target(small, 4);
    const m = linkData(rng);
    const start = encodeAt(w, src, m);
    expect(w.buffer).not.toBe(small);
    expect(w.buffer.subarray(start, w.length)).toEqual(encode(src, m));
    expect(encodeInto(new Writer(0), src, m)).toEqual(encode(src, m));
  });

  it("refuses a bad target", () => {
    const w = new Writer(0);
    expect(() => w.target(new Uint8Array(4), 5)).toThrow(RangeError);
    expect(() => w.target(new Uint8Array(4), -1)).toThrow(RangeError);
    expect(() => w.target([] as unknown as Uint8Array, 0)).toThrow(TypeError);
  });
});
