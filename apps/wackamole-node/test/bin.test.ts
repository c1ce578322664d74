/** The bins run through `pnpm exec` from the repository root, and wackactl's usage errors. */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { APP, CTL_BIN, execFileP } from "./helpers.ts";

const ROOT = join(APP, "..", "..");

describe("bins", () => {
  it("`pnpm exec wackamole-node --version` and `pnpm exec wackactl --help` work from the root", async () => {
    const v = await execFileP("pnpm", ["exec", "wackamole-node", "--version"], { cwd: ROOT });
    expect(v.stdout).toMatch(/^wackamole-node \d+\.\d+\.\d+/);
    const h = await execFileP("pnpm", ["exec", "wackactl", "--help"], { cwd: ROOT });
    expect(h.stdout).toMatch(/^Usage: wackactl /);
    expect(h.stdout).toContain("status     this node");
  });

  it("wackactl: bad usage exits 2 with a message naming the problem", async () => {
    const cases: [string[], RegExp][] = [
      [[], /COMMAND: expected status\|list\|fail\|succeed\|balance, found "nothing"/],
      [["reboot"], /COMMAND: expected status\|list\|fail\|succeed\|balance, found "reboot"/],
      [["--frobnicate", "status"], /--frobnicate: expected a known option/],
      [["status", "list"], /list: expected one command/],
      [
        ["--config", join(APP, "missing.yaml"), "status"],
        /missing\.yaml: \(file\): expected a readable file/,
      ],
    ];
    for (const [args, re] of cases) {
      const e = await execFileP(process.execPath, [CTL_BIN, ...args]).catch(
        (x: { code: number; stderr: string }) => x,
      );
      expect((e as { code: number }).code, args.join(" ")).toBe(2);
      expect((e as { stderr: string }).stderr, args.join(" ")).toMatch(re);
    }
  });

  it("wackactl --config reads the socket path from a config file", async () => {
    const e = await execFileP(process.execPath, [
      CTL_BIN,
      "--config",
      join(APP, "examples", "loopback", "n2.yaml"),
      "status",
    ]).catch((x: { code: number; stderr: string }) => x);
    // nobody runs that example here: the error names its socket
    expect((e as { code: number }).code).toBe(1);
    expect((e as { stderr: string }).stderr).toContain("cannot connect to /tmp/wackamole-n2.sock");
  });
});
