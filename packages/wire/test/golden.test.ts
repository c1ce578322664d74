import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { verify } from "../src/auth.ts";
import {
  dataMessages,
  decode,
  encode,
  FrameFlag,
  linkMessages,
  type Message,
  membershipMessages,
  registry,
  routingMessages,
  sessionMessages,
  vipMessages,
  WireError,
} from "../src/index.ts";
import { fixturesDir, fromHex, fromJson, loadVectorFiles, toHex } from "./vectors.ts";

const files = loadVectorFiles();
const valid = files.flatMap((f) => f.data.valid.map((v) => ({ file: f.file, v })));
const invalid = files.flatMap((f) => (f.data.invalid ?? []).map((v) => ({ file: f.file, v })));

describe("golden vectors (test/fixtures/*.vectors.json)", () => {
  it("has vector files", () => {
    expect(files.map((f) => f.file)).toContain("data.vectors.json");
    expect(valid.length).toBeGreaterThan(0);
  });

  it.each(valid.map(({ file, v }) => [`${file}: ${v.name}`, v] as const))("%s", (_, v) => {
    expect(v.hex, `no hex: run pnpm --filter @spines-ts/wire vectors`).toBeTypeOf("string");
    const bytes = fromHex(v.hex ?? "");
    const msg = fromJson(v.message) as Message;
    // decode(hex) equals the message and its source
    const f = decode(bytes);
    expect(f.msg).toEqual(msg);
    expect(f.sender).toBe(v.sender);
    expect(f.incarnation).toBe(v.incarnation);
    expect(f.type).toBe(registry.byTag(msg._tag)?.type);
    // encode(message) equals hex (before signing), and signing gives the stored trailer
    const unsigned = encode({ sender: v.sender, incarnation: v.incarnation }, msg);
    if (v.sign) {
      expect(f.flags & FrameFlag.Auth).toBe(FrameFlag.Auth);
      expect(f.auth?.keyId).toBe(v.sign.keyId);
      const keys = new Map([[v.sign.keyId, fromHex(v.sign.key)]]);
      expect(verify(bytes, keys)).toEqual({ ok: true, keyId: v.sign.keyId, counter: v.sign.counter });
      expect(f.auth?.counter).toBe(v.sign.counter);
      // the signed frame is the unsigned one with the flag set, plus the trailer
      const expectUnsigned = bytes.slice(0, unsigned.length);
      expectUnsigned[4] = (expectUnsigned[4] as number) & ~FrameFlag.Auth;
      expect(toHex(expectUnsigned)).toBe(toHex(unsigned));
      expect(bytes.length).toBe(unsigned.length + 26);
    } else {
      expect(f.flags).toBe(0);
      expect(f.auth).toBeUndefined();
      expect(toHex(unsigned)).toBe(v.hex);
    }
  });

  it.each(invalid.map(({ file, v }) => [`${file}: ${v.name} -> ${v.error}`, v] as const))("%s", (_, v) => {
    let caught: unknown;
    try {
      decode(fromHex(v.hex));
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(WireError);
    expect((caught as WireError).code).toBe(v.error);
  });

  it("covers every registered message type with at least one valid vector", () => {
    const covered = new Set<number>();
    for (const { v } of valid) {
      if (v.hex !== undefined) covered.add(decode(fromHex(v.hex)).type);
    }
    const missing = registry.specs
      .filter((s) => !covered.has(s.type))
      .map((s) => `${s.tag} (0x${s.type.toString(16).padStart(2, "0")})`);
    expect(
      missing,
      `messages without a golden vector: add them to packages/wire/test/fixtures/<family>.vectors.json ` +
        `and run pnpm --filter @spines-ts/wire vectors (see packages/wire/README.md)`,
    ).toEqual([]);
  });

  it("keeps every family inside its type-byte range", () => {
    const ranges = [
      ["data", dataMessages, 0x10, 0x10],
      ["link", linkMessages, 0x11, 0x1f],
      ["routing", routingMessages, 0x20, 0x2f],
      ["session", sessionMessages, 0x30, 0x3f],
      ["membership", membershipMessages, 0x40, 0x4f],
      ["vip", vipMessages, 0x50, 0x5f],
    ] as const;
    const outside: string[] = [];
    let n = 0;
    for (const [family, specs, lo, hi] of ranges) {
      for (const s of specs) {
        n++;
        if (s.type < lo || s.type > hi) outside.push(`${family}: ${s.tag} 0x${s.type.toString(16)}`);
      }
    }
    expect(outside).toEqual([]);
    expect(n).toBe(registry.specs.length);
  });

  it("docs/wire.md lists vectors whose hex matches the fixtures", () => {
    const doc = readFileSync(join(fixturesDir, "..", "..", "..", "..", "docs", "wire.md"), "utf8");
    const a = doc.indexOf("<!-- section: vectors");
    const b = doc.indexOf("<!-- end: vectors -->");
    const section = doc.slice(a, b);
    const byName = new Map<string, string>();
    for (const f of files) {
      const family = f.file.replace(/\.vectors\.json$/, "");
      for (const v of [...f.data.valid, ...(f.data.invalid ?? [])])
        byName.set(`${family}/${v.name}`, v.hex ?? "");
    }
    const blocks = [...section.matchAll(/^#### (\S+)[^\n]*\n([\s\S]*?)(?=^#### |$(?![\s\S]))/gm)];
    expect(blocks.length).toBeGreaterThanOrEqual(byName.size > 0 ? 5 : 0);
    for (const [, name, body] of blocks) {
      const hex = [...(body ?? "").matchAll(/^ {4}[0-9a-f]{4}((?: {1,2}[0-9a-f]{2})+)$/gm)]
        .map((m) => (m[1] ?? "").replace(/\s+/g, ""))
        .join("");
      expect(byName.has(name ?? ""), `docs vector ${name} is not in the fixtures`).toBe(true);
      expect(hex, `docs vector ${name}`).toBe(byName.get(name ?? ""));
    }
  });
});
