/**
 * The payload form of session messages (docs/wire.md §5.10): golden vectors in the `payload` and
 * `payloadInvalid` arrays of fixtures/session.vectors.json, and the tie to the frame form: for every
 * valid session frame vector, the payload form is the frame body with the overlay header replaced by
 * the type byte.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { WireError } from "../src/errors.ts";
import type { OverlayHeader } from "../src/messages/data.ts";
import { decodeSessionPayload, encodeSessionPayload, type SessionMessage } from "../src/messages/session.ts";
import { fixturesDir, fromHex, fromJson, type Json, toHex } from "./vectors.ts";

interface PayloadVector {
  name: string;
  message: Json;
  hex: string;
}
interface PayloadInvalid {
  name: string;
  header: OverlayHeader;
  hex: string;
  error: string;
}
interface FrameVector {
  name: string;
  message: Json;
  hex: string;
}

const file = JSON.parse(readFileSync(join(fixturesDir, "session.vectors.json"), "utf8")) as {
  valid: FrameVector[];
  payload: PayloadVector[];
  payloadInvalid: PayloadInvalid[];
};

const FRAME_HEADER = 16;
const OVERLAY_HEADER = 14;

describe("session payload form (golden vectors)", () => {
  it("has vectors", () => {
    expect(file.payload.length).toBeGreaterThan(0);
    expect(file.payloadInvalid.length).toBeGreaterThan(0);
  });

  for (const v of file.payload) {
    it(`${v.name}: encodes to the stored bytes and decodes back`, () => {
      const msg = fromJson(v.message) as SessionMessage;
      expect(toHex(encodeSessionPayload(msg))).toBe(v.hex);
      expect(decodeSessionPayload(msg.header, fromHex(v.hex))).toEqual(msg);
    });
  }

  for (const v of file.valid) {
    it(`${v.name}: payload form = type byte + frame body after the overlay header`, () => {
      const frame = fromHex(v.hex);
      const msg = fromJson(v.message) as SessionMessage;
      const payload = encodeSessionPayload(msg);
      expect(payload[0]).toBe(frame[3]);
      expect(toHex(payload.subarray(1))).toBe(toHex(frame.subarray(FRAME_HEADER + OVERLAY_HEADER)));
      expect(decodeSessionPayload(msg.header, payload)).toEqual(msg);
    });
  }

  for (const v of file.payloadInvalid) {
    it(`${v.name}: rejected with ${v.error}`, () => {
      let err: unknown;
      try {
        decodeSessionPayload(v.header, fromHex(v.hex));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(WireError);
      expect((err as WireError).code).toBe(v.error);
    });
  }

  it("never throws anything but WireError on random bytes", () => {
    const h: OverlayHeader = { src: 1, srcPort: 2, dst: 3, dstPort: 4, dstKind: 0, ttl: 9 };
    let seed = 12345;
    const next = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed >>> 24;
    };
    for (let i = 0; i < 2000; i++) {
      const b = new Uint8Array(next() % 40);
      for (let j = 0; j < b.length; j++) b[j] = next();
      if (b.length > 0) b[0] = 0x30 + (next() % 8);
      try {
        const m = decodeSessionPayload(h, b);
        expect(toHex(encodeSessionPayload(m))).toBe(toHex(b));
      } catch (e) {
        expect(e).toBeInstanceOf(WireError);
      }
    }
  });
});
