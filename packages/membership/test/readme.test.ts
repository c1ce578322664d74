import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { freePorts } from "./procs.ts";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

describe("README", () => {
  it("opens with an example that runs and prints what its comments say", async () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    const m = /^```ts\n([\s\S]*?)^```/m.exec(readme);
    expect(m, "README has no ts code block").not.toBeNull();
    const [p1, p2] = await freePorts(2);
    const entry = pathToFileURL(join(pkg, "src", "index.ts")).href;
    const udp = pathToFileURL(join(pkg, "src", "udp.ts")).href;
    const code = (m?.[1] ?? "")
      .replace(`from "@spines-ts/membership/udp"`, `from ${JSON.stringify(udp)}`)
      .replace(`from "@spines-ts/membership"`, `from ${JSON.stringify(entry)}`)
      .replace("port: 47101", `port: ${p1}`)
      .replace("port: 47102", `port: ${p2}`)
      .replace("bind: { port: 47100 + id }", `bind: { port: id === 1 ? ${p1} : ${p2} }`);
    const dir = mkdtempSync(join(tmpdir(), "membership-readme-"));
    try {
      const file = join(dir, "example.mts");
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], {
        cwd: pkg,
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(
        r.stdout
          .split("\n")
          .filter((l) => l !== "")
          .sort(),
      ).toEqual(['member 1 got "hello" from 1, #1 of view 1', 'member 2 got "hello" from 1, #1 of view 1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
