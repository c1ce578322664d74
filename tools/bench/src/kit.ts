/**
 * The benchmark kit. A benchmark is a file `<package>/bench/<name>.bench.ts` that calls
 * `runBench(name, fn)`. `fn` measures the system and a baseline in the same run and returns tables
 * for people and data for machines; the kit prints the tables, shows progress on a terminal, and
 * writes `bench/results/<name>.json`.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export interface Table {
  title: string;
  columns: string[];
  rows: (string | number)[][];
  /** Lines printed under the table (model, units, caveats). */
  notes?: string[];
}

export interface BenchReport {
  tables: Table[];
  /** What goes into the JSON file under `data`. */
  data: unknown;
}

export interface BenchContext {
  /** `--quick`: a smaller run for smoke tests; figures are less precise. */
  readonly quick: boolean;
  /** Extra command-line arguments after the benchmark name. */
  readonly args: readonly string[];
  /** Reports progress in [0, 1]; shown on a terminal, ignored otherwise. */
  progress(fraction: number, label?: string): void;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function fmt(v: string | number): string {
  if (typeof v === "string") return v;
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  const abs = Math.abs(v);
  return abs >= 100 ? v.toFixed(1) : abs >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

export function renderTable(t: Table): string {
  const cells = [t.columns, ...t.rows.map((r) => r.map(fmt))];
  const widths = t.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) =>
    r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  const out = [
    `\n${t.title}`,
    line(t.columns),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...cells.slice(1).map(line),
  ];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join("\n");
}

export async function runBench(
  name: string,
  fn: (ctx: BenchContext) => Promise<BenchReport> | BenchReport,
): Promise<void> {
  const argv = process.argv.slice(2);
  const quick = argv.includes("--quick");
  const tty = process.stderr.isTTY === true;
  const started = performance.now();
  let lastDraw = 0;
  const ctx: BenchContext = {
    quick,
    args: argv,
    progress(fraction, label) {
      if (!tty) return;
      const now = performance.now();
      if (now - started < 2000 || now - lastDraw < 200) return;
      lastDraw = now;
      const pct = Math.round(Math.min(1, Math.max(0, fraction)) * 100);
      process.stderr.write(`\r${name}: ${String(pct).padStart(3)}% ${label ?? ""}`.padEnd(70));
    },
  };
  const report = await fn(ctx);
  if (tty) process.stderr.write(`\r${" ".repeat(72)}\r`);
  for (const t of report.tables) console.log(renderTable(t));
  const dir = join(repoRoot, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}.json`);
  const cpu = cpus()[0];
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        name,
        date: new Date().toISOString(),
        quick,
        durationSec: (performance.now() - started) / 1000,
        host: { node: process.version, cpus: cpus().length, cpuModel: cpu?.model ?? "unknown" },
        tables: report.tables,
        data: report.data,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${file}`);
}

/** Runs `fn` repeatedly for about `ms` milliseconds and returns operations per second. */
export function opsPerSec(fn: () => void, ms: number, batch = 1000): number {
  for (let i = 0; i < batch; i++) fn(); // warm up
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < batch; i++) fn();
    n += batch;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

/** Basic statistics of a sample. */
export function stats(xs: readonly number[]): {
  n: number;
  mean: number;
  sd: number;
  p50: number;
  p99: number;
  max: number;
} {
  const n = xs.length;
  if (n === 0)
    return { n: 0, mean: Number.NaN, sd: Number.NaN, p50: Number.NaN, p99: Number.NaN, max: Number.NaN };
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / n;
  const sd = Math.sqrt(s.reduce((a, b) => a + (b - mean) ** 2, 0) / n);
  const q = (p: number) => s[Math.min(n - 1, Math.floor(p * n))] as number;
  return { n, mean, sd, p50: q(0.5), p99: q(0.99), max: s[n - 1] as number };
}
