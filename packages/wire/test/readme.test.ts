import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("README", () => {
  it("opens with an example that runs and prints what its comments say", () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    const m = /^```ts\n([\s\S]*?)^```/m.exec(readme);
    expect(m, "README has no ts code block").not.toBeNull();
    const entry = pathToFileURL(join(pkg, "src", "index.ts")).href;
    const code = (m?.[1] ?? "").replace(`from "@spines-ts/wire"`, `from ${JSON.stringify(entry)}`);
    const dir = mkdtempSync(join(tmpdir(), "wire-readme-"));
    try {
      const file = join(dir, "example.ts");
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], { cwd: pkg, encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout.split("\n")).toEqual([
        "535002100000001300000001deadbeef000000011388000000021770001068656c6c6f",
        "1 6000 hello",
        "true frame is 20 bytes, header says 35 (at byte 20)",
        "",
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
