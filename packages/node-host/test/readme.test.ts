import { spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");

async function freePort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

describe("README", () => {
  it("opens with an example that runs and prints what its last comment says", async () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    expect(readme.startsWith("# @spines-ts/node-host\n\n```ts\n")).toBe(true);
    const port = await freePort(); // the example's fixed port may be taken on a shared machine
    const code = (/^```ts\n([\s\S]*?)^```/m.exec(readme)?.[1] ?? "")
      .replace(`from "@spines-ts/node-host"`, `from "../src/index.ts"`)
      .replace("port: 47_123", `port: ${port}`);
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
