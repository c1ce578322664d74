import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const MAIN = join(import.meta.dirname, "..", "src", "main.ts");

describe("pnpm demo --short", () => {
  it("runs five daemons and prints both rows with every message delivered", async () => {
    const { stdout } = await run(process.execPath, ["--import", "tsx", MAIN, "--short"], {
      cwd: join(import.meta.dirname, ".."),
      timeout: 170_000,
    });
    const row = (name: string) => stdout.split("\n").find((l) => l.startsWith(name));
    for (const name of ["hop-by-hop", "end-to-end"]) {
      const line = row(name);
      expect(line, `${name} row in:\n${stdout}`).toBeDefined();
      const m = /\s(\d+)\/(\d+)\s/.exec(line as string);
      expect(m?.[1], line).toBe(m?.[2]);
      expect(Number(m?.[2])).toBeGreaterThan(0);
    }
    expect(stdout).toContain("all daemons stopped");
    expect(stdout).toContain("rate-capped");
  }, 180_000);
});
