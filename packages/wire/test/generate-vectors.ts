/**
 * Fills in the hex of the golden test vectors and (with --docs) the vector listing in docs/wire.md.
 *
 *   pnpm --filter @spines-ts/wire vectors            fill in missing hex; fail if a stored hex changed
 *   pnpm --filter @spines-ts/wire vectors --rewrite  also overwrite stored hex that no longer matches
 *   pnpm --filter @spines-ts/wire vectors --docs     also regenerate the listing in docs/wire.md
 *
 * A stored hex that no longer matches the encoder means the wire format changed: that needs a spec
 * change (and usually a new version or type byte), hence --rewrite is explicit.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { decode } from "../src/index.ts";
import { encodeVector, fixturesDir, loadVectorFiles, toHex } from "./vectors.ts";

const args = process.argv.slice(2);
const rewrite = args.includes("--rewrite");
const docs = args.includes("--docs");
const docsPath = join(fixturesDir, "..", "..", "..", "..", "docs", "wire.md");
const GEN_START = "<!-- generated vectors: start (pnpm --filter @spines-ts/wire vectors --docs) -->";
const GEN_END = "<!-- generated vectors: end -->";

function dump(hex: string): string {
  const lines: string[] = [];
  for (let i = 0; i < hex.length; i += 32) {
    const row = hex.slice(i, i + 32).match(/../g) ?? [];
    const left = row.slice(0, 8).join(" ");
    const right = row.slice(8).join(" ");
    lines.push(`    ${(i / 2).toString(16).padStart(4, "0")}  ${left}${right ? `  ${right}` : ""}`);
  }
  return lines.join("\n");
}

let changed = 0;
let failed = 0;
const md: string[] = [];
for (const f of loadVectorFiles()) {
  const family = f.file.replace(/\.vectors\.json$/, "");
  let dirty = false;
  for (const v of f.data.valid) {
    const hex = toHex(encodeVector(v));
    decode(Buffer.from(hex, "hex")); // must decode
    if (v.hex === undefined) {
      v.hex = hex;
      dirty = true;
      changed++;
      console.log(`${f.file}: ${v.name}: added`);
    } else if (v.hex !== hex) {
      if (rewrite) {
        v.hex = hex;
        dirty = true;
        changed++;
        console.log(`${f.file}: ${v.name}: REWRITTEN (the wire format changed)`);
      } else {
        failed++;
        console.error(
          `${f.file}: ${v.name}: stored hex differs from the encoder\n  stored  ${v.hex}\n  encoder ${hex}`,
        );
      }
    }
    md.push(
      `#### ${family}/${v.name}`,
      "",
      ...(v.note ? [v.note, ""] : []),
      `Sender ${v.sender}, incarnation ${v.incarnation}${v.sign ? `, signed with key id ${v.sign.keyId}, counter ${v.sign.counter}, key \`${v.sign.key}\`` : ""}. Message:`,
      "",
      "```json",
      JSON.stringify(v.message),
      "```",
      "",
      dump(v.hex ?? hex),
      "",
    );
  }
  for (const v of f.data.invalid ?? []) {
    md.push(
      `#### ${family}/${v.name} (invalid: \`${v.error}\`)`,
      "",
      ...(v.note ? [v.note, ""] : []),
      dump(v.hex),
      "",
    );
  }
  if (dirty) writeFileSync(f.path, `${JSON.stringify(f.data, null, 2)}\n`);
}

if (docs) {
  const text = readFileSync(docsPath, "utf8");
  const a = text.indexOf(GEN_START);
  const b = text.indexOf(GEN_END);
  if (a < 0 || b < a) {
    console.error(`docs/wire.md: markers not found:\n  ${GEN_START}\n  ${GEN_END}`);
    process.exit(1);
  }
  const body = md.join("\n").replace(/\n+$/, "");
  writeFileSync(docsPath, `${text.slice(0, a + GEN_START.length)}\n\n${body}\n\n${text.slice(b)}`);
  console.log("docs/wire.md: vector listing regenerated");
}
console.log(`${changed} vectors written, ${failed} mismatched`);
process.exit(failed > 0 ? 1 : 0);
