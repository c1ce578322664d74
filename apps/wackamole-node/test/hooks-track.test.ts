/** HookRunner and HealthTracker in-process: the queue bound, timeouts that kill the process group, fall/rise. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { silentLogger } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { HookRunner, MAX_QUEUED_HOOKS } from "../src/hooks.ts";
import { runShell } from "../src/run-command.ts";
import { HealthTracker } from "../src/track.ts";
import { tmp, waitUntil } from "./helpers.ts";

describe("HookRunner", () => {
  it("runs at most `concurrency` at once, queues a bounded number, drops and counts the rest", async () => {
    const h = new HookRunner(
      { up: "exit 0", down: undefined, timeoutMs: 10_000, concurrency: 4 },
      silentLogger,
    );
    const total = MAX_QUEUED_HOOKS + 4 + 40;
    for (let i = 0; i < total; i++) h.run("up", { WACK_GROUP: `g${i}` });
    h.run("down", { WACK_GROUP: "x" }); // no down hook configured: nothing
    expect(h.stats.started).toBe(4);
    expect(h.stats.dropped).toBe(40);
    expect(h.pending).toBe(4 + MAX_QUEUED_HOOKS);
    await h.idle();
    expect(h.stats.succeeded).toBe(4 + MAX_QUEUED_HOOKS);
    expect(h.stats.failed).toBe(0);
  }, 300_000);
});

describe("runShell", () => {
  it("kills a command (and its children) at the timeout", async () => {
    const pidFile = join(tmp(), "child.pid");
    const r = await runShell(`sleep 30 & echo $! > '${pidFile}'; sleep 30; echo never`, 300);
    expect(r.timedOut).toBe(true);
    expect(r.code).toBe(null);
    const child = Number(readFileSync(pidFile, "utf8"));
    expect(child).toBeGreaterThan(0);
    await waitUntil(
      () => {
        try {
          process.kill(child, 0);
          return true;
        } catch {
          return false;
        }
      },
      (alive) => !alive,
      "the background child killed with its process group",
    );
  });

  it("passes the environment and keeps the tail of stderr", async () => {
    const r = await runShell('echo "$WACK_GROUP" >&2; exit 3', 10_000, { WACK_GROUP: "web" });
    expect(r.code).toBe(3);
    expect(r.stderr.trim()).toBe("web");
  });
});

describe("HealthTracker", () => {
  it("turns unhealthy after `fall` failures (timeouts count) and healthy after `rise` successes", async () => {
    const changes: boolean[] = [];
    const t = new HealthTracker(
      { command: "sleep 5", intervalMs: 10, timeoutMs: 100, fall: 2, rise: 3 },
      silentLogger,
      (h) => changes.push(h),
    );
    t.start();
    await waitUntil(
      () => changes.length,
      (n) => n >= 1,
      "the fall",
    );
    expect(changes).toEqual([false]);
    expect(t.healthy).toBe(false);
    expect(t.stats.timeouts).toBeGreaterThanOrEqual(2);
    t.update({ command: "true", intervalMs: 10, timeoutMs: 5000, fall: 2, rise: 3 });
    await waitUntil(
      () => changes.length,
      (n) => n >= 2,
      "the rise",
    );
    t.stop();
    expect(changes).toEqual([false, true]);
    expect(t.stats.checks - t.stats.failures).toBeGreaterThanOrEqual(3);
  });
});
