import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createDaemonLogger } from "../src/logger.ts";

describe("createDaemonLogger", () => {
  it("writes JSON lines at or above its level, and a level change reaches children", () => {
    const dir = mkdtempSync(join(tmpdir(), "daemon-kit-log-"));
    const file = join(dir, "log");
    const fd = openSync(file, "w");
    try {
      const l = createDaemonLogger("info", fd);
      const child = l.log.child({ part: "x" });
      l.log.debug("hidden");
      l.log.info({ a: 1 }, "shown");
      child.warn("child shown");
      l.setLevel("debug");
      expect(l.level).toBe("debug");
      child.debug({ b: 2 }, "child debug");
      l.setLevel("silent");
      child.error("hidden too");
      l.flush();
      const lines = readFileSync(file, "utf8")
        .trim()
        .split("\n")
        .map((s) => JSON.parse(s) as Record<string, unknown>);
      expect(lines.map((r) => r.msg)).toEqual(["shown", "child shown", "child debug"]);
      expect(lines[0]).toMatchObject({ level: 30, a: 1, pid: process.pid });
      expect(lines[1]).toMatchObject({ level: 40, part: "x" });
      expect(lines[2]).toMatchObject({ level: 20, part: "x", b: 2 });
    } finally {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
