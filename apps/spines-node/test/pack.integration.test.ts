/**
 * Every published package packs, and the packed tarballs install and run without the workspace:
 * build (tsc -b), check each `publishConfig.exports` target exists in dist/, `pnpm pack` every
 * non-private package, `npm install` the tarballs into an empty folder (third-party dependencies come
 * from the npm registry or npm's cache), run the installed `spines-node --version`, and send a stream
 * through the installed daemon with the installed `@spines-ts/client`.
 */
import { execFile } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { freeUdpPorts } from "./helpers.ts";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..", "..");
const work = mkdtempSync(join(tmpdir(), "spines-pack-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

interface Manifest {
  name: string;
  version?: string;
  private?: boolean;
  bin?: Record<string, string>;
  publishConfig?: { exports?: Record<string, { types?: string; default?: string }> };
}

function workspacePackages(): { dir: string; manifest: Manifest }[] {
  const out: { dir: string; manifest: Manifest }[] = [];
  for (const group of ["packages", "apps", "tools"]) {
    for (const name of readdirSync(join(ROOT, group)).sort()) {
      const file = join(ROOT, group, name, "package.json");
      if (!existsSync(file)) continue;
      out.push({
        dir: join(ROOT, group, name),
        manifest: JSON.parse(readFileSync(file, "utf8")) as Manifest,
      });
    }
  }
  return out;
}

describe("packing", () => {
  it("every workspace package has a version (pnpm pack resolves workspace:* to it)", () => {
    const missing = workspacePackages()
      .filter((p) => typeof p.manifest.version !== "string")
      .map((p) => p.manifest.name);
    expect(missing).toEqual([]);
  });

  it("builds, packs every published package, installs the tarballs alone and runs the daemon", async () => {
    const build = await run("pnpm", ["exec", "tsc", "-b", "tsconfig.json"], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    }).catch((e: { stdout?: string; message: string }) => ({ stdout: e.stdout ?? e.message, failed: true }));
    expect("failed" in build ? build.stdout : "").toBe("");
    const published = workspacePackages().filter((p) => p.manifest.private !== true);
    expect(published.map((p) => p.manifest.name)).toContain("@spines-ts/spines-node");
    // dist/ is produced and publishConfig.exports point into it.
    const broken: string[] = [];
    for (const { dir, manifest } of published) {
      for (const [sub, target] of Object.entries(manifest.publishConfig?.exports ?? {})) {
        for (const file of [target.types, target.default]) {
          if (file === undefined || !file.startsWith("./dist/") || !existsSync(join(dir, file)))
            broken.push(`${manifest.name} ${sub}: ${file}`);
        }
      }
    }
    expect(broken).toEqual([]);
    const tarballs = join(work, "tarballs");
    const failures: string[] = [];
    for (const { dir, manifest } of published) {
      try {
        await run("pnpm", ["pack", "--pack-destination", tarballs], { cwd: dir });
      } catch (e) {
        failures.push(`${manifest.name}: ${String((e as { stderr?: string }).stderr ?? e).slice(0, 300)}`);
      }
    }
    expect(failures).toEqual([]);
    const files = readdirSync(tarballs).filter((f) => f.endsWith(".tgz"));
    expect(files.length).toBe(published.length);
    const app = join(work, "app");
    cpSync(join(import.meta.dirname, "fixtures", "pack-probe.mjs"), join(app, "probe.mjs"));
    writeFileSync(join(app, "package.json"), '{ "name": "pack-probe", "private": true, "type": "module" }\n');
    await run(
      "npm",
      ["install", "--no-audit", "--no-fund", "--loglevel=error", ...files.map((f) => join(tarballs, f))],
      { cwd: app, maxBuffer: 16 << 20 },
    );
    const version = await run(join(app, "node_modules", ".bin", "spines-node"), ["--version"], { cwd: app });
    expect(version.stdout).toMatch(/^spines-node \d+\.\d+\.\d+/);
    const [port] = await freeUdpPorts(1);
    const probe = await run(process.execPath, ["probe.mjs", String(port), "hello from the tarballs"], {
      cwd: app,
      timeout: 30_000,
    });
    expect(probe.stdout).toContain("received: hello from the tarballs");
  }, 300_000);

  it("`pnpm exec spines-node --version` works from the repository root", async () => {
    const r = await run("pnpm", ["exec", "spines-node", "--version"], { cwd: ROOT });
    expect(r.stdout).toMatch(/^spines-node \d+\.\d+\.\d+/);
  });
});
