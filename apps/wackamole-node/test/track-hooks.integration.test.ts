/**
 * Health checks and hooks on two real daemons (dry-run driver): while node 1's track command
 * fails it gives up every VIP and node 2 takes them; when it passes again node 1 takes part again.
 * Hooks run on every up and down with the event in the environment; a failing hook is counted and
 * logged, never fatal.
 */
import { existsSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  coveredOnce,
  freeTcpPort,
  type Spawned,
  scratchCluster,
  spawnDaemon,
  waitUntil,
  writeCluster,
} from "./helpers.ts";

const NAMES = ["g1", "g2", "g3", "g4"];
const { dir, daemons } = scratchCluster();

const healthy = join(dir, "healthy");
const hookLog = join(dir, "hooks.log");

function hookLines(): string[] {
  return existsSync(hookLog)
    ? readFileSync(hookLog, "utf8")
        .split("\n")
        .filter((l) => l !== "")
    : [];
}

describe("track and hooks", () => {
  let metricsPort: number;

  it("both nodes share the groups; up hooks ran with the group's addresses", async () => {
    writeFileSync(healthy, "");
    metricsPort = await freeTcpPort();
    const nodes = await writeCluster(
      dir,
      2,
      (id) =>
        id === 1
          ? {
              track: { command: `test -f '${healthy}'`, intervalMs: 100, timeoutMs: 5000, fall: 2, rise: 2 },
              hooks: {
                up: `echo "$WACK_EVENT $WACK_GROUP $WACK_NODE_ID $WACK_ADDRESSES" >> '${hookLog}'`,
                down: `echo "$WACK_EVENT $WACK_GROUP $WACK_NODE_ID $WACK_ADDRESSES" >> '${hookLog}'`,
                concurrency: 1,
              },
              metrics: { listen: `127.0.0.1:${metricsPort}` },
            }
          : { hooks: { up: "exit 3", down: "sleep 30", timeoutMs: 200 } },
      4,
    );
    for (const n of nodes) daemons.push(await spawnDaemon(n));
    const ss = await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) =>
        ss.every((s) => s.view?.members.length === 2) &&
        coveredOnce(ss, NAMES) &&
        ss.every((s) => s.held.length === 2),
      "2 groups each",
    );
    const mine = ss[0]?.held ?? [];
    await waitUntil(
      () => hookLines(),
      (lines) => mine.every((g) => lines.some((l) => l.startsWith(`up ${g} 1 `))),
      "an up hook per group held by node 1",
    );
    const g1 = hookLines().find((l) => l.startsWith("up g1 "));
    if (g1 !== undefined) expect(g1).toBe("up g1 1 10.77.0.1/32 fd77::1/128");
  });

  it("a failing track check gives every VIP up; the other node takes them", async () => {
    const [d1, d2] = daemons as [Spawned, Spawned];
    const before = (await d1.status()).held;
    unlinkSync(healthy);
    const v = await waitUntil(
      async () => ({ me: await d1.status(), other: await d2.status() }),
      (v) =>
        !v.me.healthy &&
        v.me.held.length === 0 &&
        v.other.held.length === 4 &&
        v.other.view?.members.length === 1,
      "node 1 unhealthy and empty, node 2 holding everything",
    );
    expect(v.me.phase).toBe("failed");
    expect(v.me.counters.trackFailures).toBeGreaterThanOrEqual(2);
    await waitUntil(
      () => hookLines(),
      (lines) => before.every((g) => lines.some((l) => l.startsWith(`down ${g} 1 `))),
      "a down hook per group node 1 gave up",
    );
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/^wackamole_track_healthy 0$/m);
    expect(body).toMatch(/^wackamole_groups_held 0$/m);
    expect(d1.logs.some((l) => l.msg === "track failing")).toBe(true);
    // succeed cannot override a failing check
    const r = await d1.call<{ joining: boolean }>("succeed");
    expect(r.joining).toBe(false);
  });

  it("when the check passes again the node takes part again", async () => {
    writeFileSync(healthy, "");
    const ss = await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) => ss[0]?.healthy === true && coveredOnce(ss, NAMES) && ss.every((s) => s.held.length === 2),
      "node 1 healthy with 2 groups again",
    );
    expect(ss[0]?.phase).toBe("run");
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/^wackamole_track_healthy 1$/m);
  });

  it("failing and hanging hooks are counted and logged; the daemon carries on", async () => {
    const d2 = daemons[1] as Spawned;
    const s = await waitUntil(
      () => d2.status(),
      (s) => (s.counters.hooksFailed ?? 0) >= 2,
      "node 2's failing hooks counted",
    );
    expect(s.phase).toBe("run");
    expect(d2.logs.some((l) => l.msg === "hook failed" && (l.code === 3 || l.timedOut === true))).toBe(true);
  });
});
