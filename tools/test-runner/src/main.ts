/**
 * `pnpm test`: runs every vitest project once and closes with one plain line,
 * `N passed, N failed` (`, N skipped` when any were skipped), totalling every test that ran.
 * Extra arguments go to vitest (for example a project filter: `pnpm test --project wire`).
 *
 * Two phases: first everything but the solo tests, side by side as vitest schedules them; then the
 * solo tests (`test/**\/*.solo.test.ts`: whole clusters in network namespaces whose membership
 * timeouts are a few hundred ms) one file at a time, on a machine no longer busy with the rest.
 * `SPINES_TEST_PHASE=all|solo` runs one phase (vitest.config.ts reads it).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

interface VitestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
  numTotalTestSuites: number;
  success: boolean;
}

interface Phase {
  summary: VitestJson | undefined;
  status: number | null;
}

function runPhase(phase: "all" | "solo", extra: readonly string[]): Phase {
  const dir = mkdtempSync(join(tmpdir(), "spines-test-"));
  const out = join(dir, "vitest.json");
  const args = [
    "exec",
    "vitest",
    "run",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${out}`,
    "--passWithNoTests",
    ...(phase === "solo" ? ["--no-file-parallelism"] : []),
    ...extra,
  ];
  const res = spawnSync("pnpm", args, {
    stdio: "inherit",
    env: { ...process.env, SPINES_TEST_PHASE: phase },
  });
  let summary: VitestJson | undefined;
  try {
    summary = JSON.parse(readFileSync(out, "utf8")) as VitestJson;
  } catch {
    summary = undefined;
  }
  rmSync(dir, { recursive: true, force: true });
  return { summary, status: res.status };
}

const extra = process.argv.slice(2);
const wanted = process.env.SPINES_TEST_PHASE;
const phases = (wanted === "all" || wanted === "solo" ? [wanted] : ["all", "solo"]) as ("all" | "solo")[];
let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;
for (const p of phases) {
  if (p === "solo") console.log("\n--- solo tests (one file at a time) ---\n");
  const r = runPhase(p, extra);
  const s = r.summary;
  if (s === undefined) {
    console.log(`vitest wrote no report for the ${p} phase (it crashed or found nothing to run)`);
    failed++;
    broken = true;
    continue;
  }
  // A suite that fails to load (syntax error, failed import) has no tests; count it as a failure.
  passed += s.numPassedTests;
  failed += s.numFailedTests + (s.numFailedTests === 0 ? s.numFailedTestSuites : 0);
  skipped += s.numPendingTests + s.numTodoTests;
  if (r.status !== 0 && s.numFailedTests === 0 && s.numFailedTestSuites === 0 && s.numTotalTestSuites > 0)
    broken = true;
}
const total = passed + failed;
console.log(`${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || total === 0 || broken ? 1 : 0);
