/**
 * `pnpm bench <name> [--quick] [args]`: finds `<packages|apps>/*\/bench/<name>.bench.ts` and runs it.
 * `pnpm bench` alone lists the benchmarks; `pnpm bench <name> --help` prints the benchmark's own
 * description (the doc comment at the top of its file) without running it.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
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
const text = readFileSync(file, "utf8");
if ((rest.includes("--help") || rest.includes("-h")) && !text.includes('"--help"')) {
  // A benchmark's usage is the doc comment that opens its file; print it instead of running it
  // (a benchmark that handles --help itself gets the flag).
  const doc = /\/\*\*([\s\S]*?)\*\//.exec(text)?.[1];
  const lines = (doc ?? " * (no description)").split("\n").map((l) => l.replace(/^\s*\* ?/, ""));
  console.log(`pnpm bench ${name}  (${file.slice(root.length + 1)})\n\n${lines.join("\n").trim()}`);
  process.exit(0);
}
// -h means --help for every benchmark, also for those that only look for --help.
const args = rest.map((a) => (a === "-h" ? "--help" : a));
const r = spawnSync(process.execPath, ["--import", "tsx", file, ...args], { stdio: "inherit", cwd: root });
process.exit(r.status ?? 1);
