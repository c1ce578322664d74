import { readFileSync } from "node:fs";
import { join } from "node:path";
import { LinkType as WireLinkType } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import {
  ClientErrorCode,
  ClientProtocolError,
  ClientRangeError,
  checkId,
  checkLink,
  checkPort,
  FrameBuilder,
  FrameDecoder,
  FrameReader,
  LinkType,
  Op,
} from "../src/protocol.ts";

describe("client protocol codec", () => {
  it("round-trips every field type", () => {
    const f = new FrameBuilder(Op.Connect).u32(7).u32(4).u16(5000).u8(1).str8("ok").text("hé").finish();
    const [frame] = new FrameDecoder().push(f);
    const r = new FrameReader(frame as Uint8Array);
    expect([r.u8(), r.u32(), r.u32(), r.u16(), r.u8(), r.str8(), r.text()]).toEqual([
      Op.Connect,
      7,
      4,
      5000,
      1,
      "ok",
      "hé",
    ]);
  });

  it("reassembles frames split at any point and keeps at most one frame buffered", () => {
    const frames = [1, 200, 5000].map((n) =>
      new FrameBuilder(Op.Send, n).u32(1).bytes(new Uint8Array(n)).finish(),
    );
    const all = Buffer.concat(frames);
    for (let cut = 1; cut < all.length; cut += 97) {
      const d = new FrameDecoder();
      const out = [...d.push(all.subarray(0, cut)), ...d.push(all.subarray(cut))];
      expect(out.map((x) => x.length)).toEqual([6, 205, 5005]);
      expect(d.buffered).toBe(0);
    }
  });

  it("rejects a zero or oversized length with a typed error", () => {
    expect(() => new FrameDecoder(100).push(Uint8Array.of(0, 0, 0, 0))).toThrow(ClientProtocolError);
    try {
      new FrameDecoder(100).push(Uint8Array.of(0, 0, 1, 0, 1));
    } catch (e) {
      expect((e as ClientProtocolError).code).toBe(ClientErrorCode.FrameTooLarge);
    }
    expect(() => new FrameReader(Uint8Array.of(1)).u32()).toThrow(ClientProtocolError);
  });

  it("numbers link types as the wire does", () => {
    expect(LinkType).toBe(WireLinkType);
    expect(LinkType).toEqual({ BestEffort: 0, Reliable: 1, RealTime: 2 });
  });

  it("validates ports, ids and link types instead of wrapping them", () => {
    expect(checkPort(0)).toBe(0);
    expect(checkPort(65535)).toBe(65535);
    for (const bad of [70000, 65536, -1, 1.5, Number.NaN, "80"]) {
      expect(() => checkPort(bad), String(bad)).toThrow(ClientRangeError);
    }
    expect(() => checkPort(0, "port", false)).toThrow(RangeError);
    expect(checkId(1)).toBe(1);
    for (const bad of [0, 0xffffffff, -3, 2.5]) expect(() => checkId(bad)).toThrow(ClientRangeError);
    expect(checkLink(2)).toBe(2);
    expect(() => checkLink(3)).toThrow(ClientRangeError);
    try {
      checkPort(70000);
    } catch (e) {
      expect((e as ClientRangeError).code).toBe("ERR_BAD_ARGUMENT");
    }
  });
});

describe("docs/client-protocol.md", () => {
  const doc = readFileSync(join(import.meta.dirname, "..", "..", "..", "docs", "client-protocol.md"), "utf8");

  it("lists every op code the codec defines, with its value", () => {
    const rows = new Map(
      [...doc.matchAll(/^\| 0x([0-9A-F]{2}) \| ([A-Z_]+) +\|/gm)].map((m) => [
        Number.parseInt(m[1] as string, 16),
        m[2],
      ]),
    );
    for (const [name, value] of Object.entries(Op)) {
      const docName = rows.get(value);
      expect(docName, name).toBeDefined();
      expect((docName as string).replace(/_/g, "").toLowerCase()).toBe(name.toLowerCase());
    }
  });

  it("has an example exchange whose frames decode", () => {
    const frames = [...doc.matchAll(/^(?:C→D|D→C) {2}(.*)$/gm)].map((m) =>
      Buffer.from(((m[1] as string).split("  ")[0] as string).replace(/ /g, ""), "hex"),
    );
    expect(frames.length).toBeGreaterThanOrEqual(9);
    for (const f of frames) expect(new FrameDecoder().push(f).length, f.toString("hex")).toBe(1);
  });
});
