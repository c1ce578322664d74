import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("README", () => {
  it("opens with a netsim example that runs and prints what its comments say", () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    const m = /^```ts\n([\s\S]*?)^```/m.exec(readme);
    expect(m, "README has no ts code block").not.toBeNull();
    const code = (m?.[1] ?? "")
      .replace(
        `from "@spines-ts/vip"`,
        `from ${JSON.stringify(pathToFileURL(join(pkg, "src", "index.ts")).href)}`,
      )
      .replace(
        `from "@spines-ts/netsim"`,
        `from ${JSON.stringify(pathToFileURL(join(pkg, "..", "netsim", "src", "index.ts")).href)}`,
      );
    const expected = [...code.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((x) => x[1]);
    expect(expected).toHaveLength(2);
    const dir = mkdtempSync(join(tmpdir(), "vip-readme-"));
    try {
      const file = join(dir, "example.ts");
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: pkg, encoding: "utf8" });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.split("\n").filter((l) => l !== "")).toEqual(expected);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
