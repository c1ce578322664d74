/**
 * The layering of docs/architecture.md, checked: each published package depends on (and its
 * sources import) only the workspace packages its row allows.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = join(import.meta.dirname, "..", "..", "..");

/** The "may import" column of docs/architecture.md. */
const ALLOWED: Record<string, readonly string[]> = {
  primitives: [],
  wire: ["primitives"],
  netsim: ["primitives"],
  "node-host": ["primitives"],
  "daemon-kit": ["primitives"],
  congestion: ["primitives"],
  "link-arq": ["primitives", "wire", "congestion"],
  routing: ["primitives", "wire"],
  session: ["primitives", "wire"],
  overlay: ["primitives", "wire", "congestion", "link-arq", "routing", "session"],
  client: ["primitives", "wire"],
  membership: ["primitives", "wire", "node-host"],
  vip: ["primitives", "wire", "membership"],
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

function importedWorkspacePackages(file: string): Set<string> {
  const text = readFileSync(file, "utf8");
  const out = new Set<string>();
  for (const m of text.matchAll(/from\s+["']@spines-ts\/([a-z0-9-]+)/g)) out.add(m[1] as string);
  for (const m of text.matchAll(/import\(\s*["']@spines-ts\/([a-z0-9-]+)/g)) out.add(m[1] as string);
  return out;
}

describe("package layering (docs/architecture.md)", () => {
  const packages = readdirSync(join(ROOT, "packages")).sort();

  it("every package under packages/ has a row", () => {
    expect(packages.filter((p) => !(p in ALLOWED))).toEqual([]);
  });

  for (const pkg of packages) {
    it(`${pkg}: dependencies and imports stay within its row`, () => {
      const allowed = new Set(ALLOWED[pkg] ?? []);
      const manifest = JSON.parse(readFileSync(join(ROOT, "packages", pkg, "package.json"), "utf8")) as {
        dependencies?: Record<string, string>;
      };
      const deps = Object.keys(manifest.dependencies ?? {})
        .filter((d) => d.startsWith("@spines-ts/"))
        .map((d) => d.slice("@spines-ts/".length));
      expect(deps.filter((d) => !allowed.has(d))).toEqual([]);
      const bad: string[] = [];
      for (const file of sources(join(ROOT, "packages", pkg, "src"))) {
        for (const dep of importedWorkspacePackages(file)) {
          if (dep !== pkg && !allowed.has(dep))
            bad.push(`${file.slice(ROOT.length + 1)} imports @spines-ts/${dep}`);
        }
      }
      expect(bad).toEqual([]);
    });
  }

  it("membership reaches node-host only from its ./udp shell", () => {
    const bad = sources(join(ROOT, "packages", "membership", "src"))
      .filter((f) => !f.endsWith("udp.ts"))
      .filter((f) => importedWorkspacePackages(f).has("node-host"));
    expect(bad).toEqual([]);
  });
});
