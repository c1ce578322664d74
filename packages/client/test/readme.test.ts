import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const pkg = join(import.meta.dirname, "..");
const root = join(pkg, "..", "..");

/** Resolves once something accepts connections on the Unix socket `path`. */
async function waitForSocket(path: string, proc: ChildProcess, ms = 30_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`spines-node exited with ${proc.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = createConnection(path);
      s.once("connect", () => {
        s.destroy();
        resolve(true);
      });
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - t0 > ms) throw new Error(`no daemon at ${path} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("README", () => {
  const dir = mkdtempSync(join(tmpdir(), "client-readme-"));
  let daemon: ChildProcess | undefined;
  afterAll(() => {
    daemon?.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  });

  it("opens with an example that runs as written from the repository root, against a daemon", async () => {
    const readme = readFileSync(join(pkg, "README.md"), "utf8");
    expect(readme.startsWith("# @spines-ts/client\n\n```ts\n")).toBe(true);
    const code = /^```ts\n([\s\S]*?)^```/m.exec(readme)?.[1] ?? "";
    const expected = [...code.matchAll(/^\/\/ prints: (.*)$/gm)].map((m) => m[1]);
    expect(expected.length).toBe(2);
    const socket = join(dir, "client.sock");
    // The daemon as a user starts it (the bin, from the repository root); UDP port 0: any free one.
    daemon = spawn(
      process.execPath,
      [
        join(root, "apps", "spines-node", "bin", "spines-node.js"),
        "--id",
        "7",
        "--listen",
        "127.0.0.1:0",
        "--client-socket",
        socket,
        "--control",
        join(dir, "control.sock"),
        "--log-level",
        "silent",
      ],
      { cwd: root, stdio: "ignore" },
    );
    await waitForSocket(socket, daemon);
    const file = join(root, `.readme-client-example-${process.pid}.ts`);
    try {
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--import", "tsx", file], {
        cwd: root,
        encoding: "utf8",
        env: { ...process.env, SPINES_NODE_SOCKET: socket },
        timeout: 60_000,
      });
      expect(r.stderr).toBe("");
      expect(r.status).toBe(0);
      expect(r.stdout.trim().split("\n")).toEqual(expected.map((l) => (l as string).replace("NODE", "7")));
    } finally {
      rmSync(file, { force: true });
    }
  });
});
