/**
 * `pnpm bench <name> [--quick] [args]`: finds `<packages|apps>/*\/bench/<name>.bench.ts` and runs it.
 * `pnpm bench` alone lists the benchmarks.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function all(): Map<string, string> {
  const found = new Map<string, string>();
  for (const group of ["packages", "apps", "tools"]) {
    const g = join(root, group);
    if (!existsSync(g)) continue;
    for (const pkg of readdirSync(g)) {
      const b = join(g, pkg, "bench");
      if (!existsSync(b)) continue;
      for (const f of readdirSync(b)) {
        const m = /^(.+)\.bench\.ts$/.exec(f);
        if (m?.[1]) found.set(m[1], join(b, f));
      }
    }
  }
  return found;
}

const [name, ...rest] = process.argv.slice(2);
const benches = all();
if (name === undefined || name === "--help" || name === "-h") {
  console.log("usage: pnpm bench <name> [--quick] [args...]\n\nbenchmarks:");
  for (const [n, f] of [...benches].sort()) console.log(`  ${n.padEnd(14)} ${f.slice(root.length + 1)}`);
  process.exit(name === undefined ? 1 : 0);
}
const file = benches.get(name);
if (file === undefined) {
  console.error(
    `pnpm bench: no benchmark named "${name}"; known: ${[...benches.keys()].sort().join(", ") || "none"}`,
  );
  process.exit(2);
}
const r = spawnSync(process.execPath, ["--import", "tsx", file, ...rest], { stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
