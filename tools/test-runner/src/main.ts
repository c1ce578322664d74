/**
 * `pnpm test`: runs every vitest project once and closes with one plain line,
 * `N passed, N failed` (`, N skipped` when any were skipped), totalling every test that ran.
 * Extra arguments go to vitest (for example a project filter: `pnpm test --project wire`).
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
  success: boolean;
}

const dir = mkdtempSync(join(tmpdir(), "spines-test-"));
const out = join(dir, "vitest.json");
const args = [
  "exec",
  "vitest",
  "run",
  "--reporter=default",
  "--reporter=json",
  `--outputFile.json=${out}`,
  ...process.argv.slice(2),
];
const res = spawnSync("pnpm", args, { stdio: "inherit" });

let summary: VitestJson | undefined;
try {
  summary = JSON.parse(readFileSync(out, "utf8")) as VitestJson;
} catch {
  summary = undefined;
}
rmSync(dir, { recursive: true, force: true });

if (summary === undefined) {
  console.log("vitest wrote no report (it crashed or found nothing to run)");
  console.log("0 passed, 1 failed");
  process.exit(1);
}
// A suite that fails to load (syntax error, failed import) has no tests; count it as a failure.
const failed = summary.numFailedTests + (summary.numFailedTests === 0 ? summary.numFailedTestSuites : 0);
const skipped = summary.numPendingTests + summary.numTodoTests;
const total = summary.numPassedTests + failed;
console.log(`${summary.numPassedTests} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || total === 0 || res.status !== 0 ? 1 : 0);
