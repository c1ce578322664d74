/**
 * The seed corpus: every valid frame of the golden wire vectors (packages/wire/test/fixtures, see
 * docs/wire.md §8), grouped by message family, plus the invalid vectors as they are.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const fixturesDir = join(
  dirname(fileURLToPath(import.meta.url)),
  "..",
  "..",
  "..",
  "packages",
  "wire",
  "test",
  "fixtures",
);

export interface SeedFrame {
  /** `<family>/<vector name>`. */
  readonly name: string;
  readonly family: string;
  readonly bytes: Uint8Array;
}

export interface Corpus {
  readonly valid: readonly SeedFrame[];
  readonly invalid: readonly SeedFrame[];
  /** Valid frames by family (data, frame, link, routing, session, membership, vip). */
  readonly byFamily: ReadonlyMap<string, readonly SeedFrame[]>;
}

interface VectorFileJson {
  valid: { name: string; hex?: string }[];
  invalid?: { name: string; hex: string }[];
}

function fromHex(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s.replace(/\s+/g, ""), "hex"));
}

/** Loads the golden vectors. Throws when the fixtures are missing or hold no valid frame. */
export function loadCorpus(dir = fixturesDir): Corpus {
  const valid: SeedFrame[] = [];
  const invalid: SeedFrame[] = [];
  const byFamily = new Map<string, SeedFrame[]>();
  for (const f of readdirSync(dir).sort()) {
    const m = /^(.+)\.vectors\.json$/.exec(f);
    if (!m?.[1]) continue;
    const family = m[1];
    const data = JSON.parse(readFileSync(join(dir, f), "utf8")) as VectorFileJson;
    for (const v of data.valid) {
      if (!v.hex) continue;
      const s = { name: `${family}/${v.name}`, family, bytes: fromHex(v.hex) };
      valid.push(s);
      const l = byFamily.get(family) ?? [];
      l.push(s);
      byFamily.set(family, l);
    }
    for (const v of data.invalid ?? [])
      invalid.push({ name: `${family}/${v.name}`, family, bytes: fromHex(v.hex) });
  }
  if (valid.length === 0) throw new Error(`no golden vectors with hex found in ${dir}`);
  return { valid, invalid, byFamily };
}
