import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const bin = join(import.meta.dirname, "..", "bin", "netlab.mjs");
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000 });

describe("netlab CLI", () => {
  it("prints help and exits 0 with --help", () => {
    const r = cli("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("netlab up <topology.json|yaml>");
    expect(r.stdout).toContain("netlab fault");
  });

  it("rejects bad usage with exit 2 and a typed message", () => {
    const r = cli("frobnicate");
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("ERR_USAGE");
    const up = cli("up");
    expect(up.status).toBe(2);
    expect(up.stderr).toContain("needs a topology file");
  });
});
