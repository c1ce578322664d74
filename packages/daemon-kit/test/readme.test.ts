import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("README", () => {
  it("opens with an example that runs and prints what its last comment says", () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    expect(readme.startsWith("# @spines-ts/daemon-kit\n\n```ts\n")).toBe(true);
    const code = (/^```ts\n([\s\S]*?)^```/m.exec(readme)?.[1] ?? "").replace(
      `from "@spines-ts/daemon-kit"`,
      `from "../src/index.ts"`,
    );
    const expected = /^\/\/ prints: (.*)$/m.exec(code)?.[1];
    expect(expected).toBeDefined();
    const file = join(pkg, "test", `.readme-example-${process.pid}.mts`);
    try {
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], {
        cwd: pkg,
        encoding: "utf8",
        timeout: 20_000,
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(expected);
    } finally {
      rmSync(file, { force: true });
    }
  });
});
