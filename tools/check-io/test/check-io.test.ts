import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { checkRepo, checkSource, globToRegExp, isShell } from "../src/check.ts";

const main = join(dirname(fileURLToPath(import.meta.url)), "..", "src", "main.ts");
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A throw-away repository with the given files. */
function repo(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "check-io-"));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

const rules = (text: string) => checkSource("x.ts", text).map((v) => `${v.rule}:${v.text}`);

describe("check-io", () => {
  it("flags each of the four kinds of I/O, however it is spelled", () => {
    expect(rules(`import { createSocket } from "node:dgram";`)).toEqual([
      'node-import:import of "node:dgram"',
    ]);
    expect(rules(`import fs from "fs";`)).toEqual(['node-import:import of "fs"']);
    expect(rules(`export { x } from "node:os";`)).toEqual(['node-import:import of "node:os"']);
    expect(rules(`const m = await import("node:crypto");`)).toEqual(['node-import:import of "node:crypto"']);
    expect(rules(`type T = import("node:net").Socket;`)).toEqual(['node-import:import of "node:net"']);
    expect(rules(`const t = Date.now();`)).toEqual(["clock:Date.now"]);
    expect(rules(`const t = new Date();`)).toEqual(["clock:new Date()"]);
    expect(rules(`const f = globalThis.Date.now;`)).toEqual(["clock:Date.now"]);
    expect(rules(`const t = performance.now();`)).toEqual(["clock:performance.now"]);
    expect(rules(`setTimeout(() => {}, 5);`)).toEqual(["timer:setTimeout"]);
    expect(rules(`globalThis.setTimeout(() => {}, 5);`)).toEqual(["timer:globalThis.setTimeout"]);
    expect(rules(`const s = setInterval; setImmediate(f);`)).toEqual([
      "timer:setInterval",
      "timer:setImmediate",
    ]);
    expect(rules(`const r = Math.random();`)).toEqual(["random:Math.random"]);
    expect(rules(`const r = Math["random"]();`)).toEqual(["random:Math.random"]);
  });

  it("leaves pure code, comments, strings and look-alike names alone", () => {
    expect(
      rules(`
        // Date.now() and setTimeout are not allowed here; "Math.random" neither.
        import { Rng } from "@spines-ts/primitives";
        import type { X } from "./node:thing.ts";
        const d = new Date(0);
        const o = { setTimeout: 1, now: () => 0 };
        o.setTimeout;
        class C { setTimeout() {} }
        host.schedule(at, fn);
        clock.now();
        rng.random();
        const s = "setTimeout(Date.now())";
      `),
    ).toEqual([]);
  });

  it("matches shell patterns", () => {
    expect(globToRegExp("packages/vip/src/linux*.ts").test("packages/vip/src/linux-arp.ts")).toBe(true);
    expect(globToRegExp("packages/vip/src/linux*.ts").test("packages/vip/src/sub/linux.ts")).toBe(false);
    expect(isShell("packages/node-host/src/deep/udp.ts")).toBe(true);
    expect(isShell("packages/primitives/src/system-clock.ts")).toBe(true);
    expect(isShell("packages/primitives/src/clock.ts")).toBe(false);
  });

  it("fails on a planted violation in a package's src and passes once it is removed or in a shell", () => {
    const files = {
      "packages/core/src/index.ts": "export const x = 1;\n",
      "packages/core/src/bad.ts": "export const t = () => Date.now();\n",
      "packages/core/test/ok.test.ts": "setTimeout(() => {}, 1);\n", // tests are not sans-IO code
      "packages/node-host/src/udp.ts":
        'import { createSocket } from "node:dgram";\nsetTimeout(() => {}, 1);\n',
      "packages/primitives/src/system-clock.ts": 'import { performance } from "node:perf_hooks";\n',
    };
    const bad = repo(files);
    expect(checkRepo(bad).map((v) => `${v.file}:${v.line}:${v.rule}`)).toEqual([
      "packages/core/src/bad.ts:1:clock",
    ]);
    const r = spawnSync(process.execPath, ["--import", "tsx", main, bad], { encoding: "utf8" });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("packages/core/src/bad.ts:1:");

    const { "packages/core/src/bad.ts": _, ...clean } = files;
    const good = repo(clean);
    expect(checkRepo(good)).toEqual([]);
    const r2 = spawnSync(process.execPath, ["--import", "tsx", main, good], { encoding: "utf8" });
    expect(r2.stderr).toBe("");
    expect(r2.status).toBe(0);
  });
});
