import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClientProtocolError, FrameBuilder, FrameDecoder, FrameReader, Op } from "../src/client-protocol.ts";

describe("client protocol framing", () => {
  it("builds length-prefixed frames (golden bytes)", () => {
    const f = new FrameBuilder(Op.Connect).u32(7).u32(0x01020304).u16(5000).u8(1).finish();
    expect(Buffer.from(f).toString("hex")).toBe("0000000c" + "04" + "00000007" + "01020304" + "1388" + "01");
  });

  it("reassembles frames split at any points", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        (payloads, cuts) => {
          const frames = payloads.map((p) => new FrameBuilder(Op.Send).u32(1).bytes(p).finish());
          const all = Buffer.concat(frames);
          const points = [...new Set(cuts.map((c) => c % (all.length + 1)))].sort((a, b) => a - b);
          const dec = new FrameDecoder(1024);
          const out: Uint8Array[] = [];
          let prev = 0;
          for (const p of [...points, all.length]) {
            out.push(...dec.push(all.subarray(prev, p)));
            prev = p;
          }
          expect(out.length).toBe(payloads.length);
          out.forEach((f, i) => {
            const r = new FrameReader(f);
            expect(r.u8()).toBe(Op.Send);
            expect(r.u32()).toBe(1);
            expect(Buffer.from(r.rest())).toEqual(Buffer.from(payloads[i] as Uint8Array));
          });
          expect(dec.buffered).toBe(0);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("rejects zero-length and oversized frames", () => {
    expect(() => new FrameDecoder(100).push(Uint8Array.of(0, 0, 0, 0))).toThrow(ClientProtocolError);
    try {
      new FrameDecoder(100).push(Uint8Array.of(0, 0, 0, 101, 1));
      expect.unreachable();
    } catch (e) {
      expect((e as ClientProtocolError).code).toBe("ERR_FRAME_TOO_LARGE");
    }
  });

  it("short fields throw a typed error", () => {
    const r = new FrameReader(Uint8Array.of(1, 2));
    expect(() => r.u32()).toThrow(ClientProtocolError);
  });
});

describe("docs/client-protocol.md", () => {
  it("every frame of the example exchange is well formed and matches the codec", async () => {
    const { readFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const doc = readFileSync(
      join(import.meta.dirname, "..", "..", "..", "docs", "client-protocol.md"),
      "utf8",
    );
    const frames = [...doc.matchAll(/^(?:C→D|D→C) {2}(.*)$/gm)].map((m) =>
      Buffer.from(((m[1] as string).split("  ")[0] as string).replace(/ /g, ""), "hex"),
    );
    expect(frames.length).toBe(9);
    for (const f of frames) {
      const out = new FrameDecoder().push(f);
      expect(out.length, f.toString("hex")).toBe(1);
    }
    const hex = (u: Uint8Array) => Buffer.from(u).toString("hex");
    expect(hex(frames[0] as Buffer)).toBe(hex(new FrameBuilder(Op.Hello).u32(0x5350434c).u8(1).finish()));
    expect(hex(frames[2] as Buffer)).toBe(
      hex(new FrameBuilder(Op.Connect).u32(1).u32(4).u16(5000).u8(1).finish()),
    );
    expect(hex(frames[4] as Buffer)).toBe(
      hex(new FrameBuilder(Op.Send).u32(1).bytes(Buffer.from("hi")).finish()),
    );
    expect(hex(frames[8] as Buffer)).toBe(
      hex(new FrameBuilder(Op.Closed).u32(1).u8(0).str8("OK").text("session closed").finish()),
    );
  });
});
