/**
 * Golden test vectors: the JSON files in test/fixtures/<family>.vectors.json, one per message family.
 * A valid vector holds a message as JSON (byte fields as { "$hex": "..." }), the frame source, an
 * optional signing key, and the frame's hex. An invalid vector holds hex and the WireError code that
 * decoding it must raise. `generate-vectors.ts` fills in missing hex; `golden.test.ts` checks them.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { sign } from "../src/auth.ts";
import { encode, type Message, type WireErrorCode } from "../src/index.ts";

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface ValidVector {
  name: string;
  note?: string;
  sender: number;
  incarnation: number;
  message: Json;
  /** When present the frame is signed: `sign(encode(...), keyId, hex-decoded key, counter)`. */
  sign?: { keyId: number; key: string; counter: number };
  /** The whole frame; filled in by generate-vectors.ts when missing. */
  hex?: string;
}

export interface InvalidVector {
  name: string;
  note?: string;
  hex: string;
  error: WireErrorCode;
}

export interface VectorFile {
  valid: ValidVector[];
  invalid?: InvalidVector[];
}

export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");
}

export function fromHex(s: string): Uint8Array {
  const clean = s.replace(/\s+/g, "");
  if (!/^([0-9a-f]{2})*$/i.test(clean)) throw new Error(`not hex: ${s}`);
  return new Uint8Array(Buffer.from(clean, "hex"));
}

/** Uint8Array fields become { "$hex": "..." }; everything else must already be JSON. */
export function toJson(v: unknown): Json {
  if (v instanceof Uint8Array) return { $hex: toHex(v) };
  if (Array.isArray(v)) return v.map(toJson);
  if (v !== null && typeof v === "object") {
    const out: { [k: string]: Json } = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJson(x);
    return out;
  }
  if (typeof v === "number" || typeof v === "string" || typeof v === "boolean" || v === null) return v;
  throw new Error(`cannot put ${typeof v} in a test vector`);
}

export function fromJson(j: Json): unknown {
  if (Array.isArray(j)) return j.map(fromJson);
  if (j !== null && typeof j === "object") {
    const keys = Object.keys(j);
    if (keys.length === 1 && keys[0] === "$hex" && typeof j.$hex === "string") return fromHex(j.$hex);
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(j)) out[k] = fromJson(x);
    return out;
  }
  return j;
}

/** The frame a valid vector describes, computed with the current encoder (and signer). */
export function encodeVector(v: ValidVector): Uint8Array {
  const bytes = encode({ sender: v.sender, incarnation: v.incarnation }, fromJson(v.message) as Message);
  return v.sign ? sign(bytes, v.sign.keyId, fromHex(v.sign.key), v.sign.counter) : bytes;
}

export interface LoadedFile {
  file: string;
  path: string;
  data: VectorFile;
}

export function loadVectorFiles(): LoadedFile[] {
  return readdirSync(fixturesDir)
    .filter((f) => f.endsWith(".vectors.json"))
    .sort()
    .map((file) => {
      const path = join(fixturesDir, file);
      return { file, path, data: JSON.parse(readFileSync(path, "utf8")) as VectorFile };
    });
}
