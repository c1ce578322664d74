/**
 * The bins as users run them: `pnpm exec <tool>` from the repository root, no build step.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "..", "..", "..");

function exec(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn("pnpm", ["exec", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => {
      stdout += d;
    });
    p.stderr.on("data", (d: Buffer) => {
      stderr += d;
    });
    p.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}

const TOOLS = ["spines-node", "spinesctl", "spines-ping", "spines-traceroute", "spines-send", "spines-recv"];

describe("pnpm exec <tool> in the workspace", () => {
  it("runs every bin: --help prints its usage and exits 0", async () => {
    const rs = await Promise.all(TOOLS.map((t) => exec([t, "--help"])));
    rs.forEach((r, i) => {
      const tool = TOOLS[i] as string;
      expect(r.stderr, tool).not.toMatch(/ERR_MODULE_NOT_FOUND|not found/i);
      expect(r.status, tool).toBe(0);
      expect(r.stdout, tool).toMatch(new RegExp(`^Usage: ${tool} `));
    });
  }, 300_000);

  it("exits 2 with a hint on a bad flag, and 1 when the daemon is missing", async () => {
    const [bad, missing] = await Promise.all([
      exec(["spines-ping", "--no-such-flag", "2"]),
      exec(["spinesctl", "--control", "/nonexistent/spines.ctl", "status"]),
    ]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/Try 'spines-ping --help'/);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/ERR_DAEMON_UNAVAILABLE/);
  }, 300_000);
});
