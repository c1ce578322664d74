/**
 * Three real daemons (bin/wackamole-node.js) on loopback UDP with the dry-run driver: they agree on a
 * view and cover every group exactly once; a SIGKILLed daemon's groups are taken over by the
 * survivors; `wackactl fail` / `succeed` / `balance` work; SIGTERM releases every VIP and exits 0;
 * metrics are served on loopback. Observed through the control socket and the real `wackactl --json`.
 */
import { describe, expect, it } from "vitest";
import {
  type ClusterNode,
  CTL_BIN,
  coveredOnce,
  execFileP,
  freeTcpPort,
  type Spawned,
  scratchCluster,
  spawnDaemon,
  waitUntil,
  writeCluster,
} from "./helpers.ts";

const NAMES = ["g1", "g2", "g3", "g4", "g5", "g6"];
const { dir, daemons } = scratchCluster();

async function wackactlJson<T>(node: ClusterNode, cmd: string): Promise<T> {
  const r = await execFileP(process.execPath, [CTL_BIN, "--socket", node.control, "--json", cmd], {
    timeout: 60_000,
  });
  return JSON.parse(r.stdout) as T;
}

describe("a 3-daemon loopback cluster (dry-run driver)", () => {
  let nodes: ClusterNode[];
  let metricsPort: number;

  it("starts, agrees on one view and covers every group exactly once", async () => {
    metricsPort = await freeTcpPort();
    nodes = await writeCluster(dir, 3, (id) =>
      id === 1 ? { metrics: { listen: `127.0.0.1:${metricsPort}` } } : {},
    );
    for (const n of nodes) daemons.push(await spawnDaemon(n));
    const all = await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) =>
        ss.every((s) => s.phase === "run" && s.view?.members.length === 3) &&
        new Set(ss.map((s) => s.view?.id)).size === 1 &&
        coveredOnce(ss, NAMES) &&
        ss.every((s) => s.held.length === 2),
      "one 3-member view covering each group once, 2 groups each (balance: immediate)",
    );
    expect(all.map((s) => s.view?.members)).toEqual([
      [1, 2, 3],
      [1, 2, 3],
      [1, 2, 3],
    ]);
    // the real wackactl agrees with the in-process client
    const st = await wackactlJson<{ id: number; view: { members: number[] }; held: string[] }>(
      nodes[0] as ClusterNode,
      "status",
    );
    expect(st.id).toBe(1);
    expect(st.view.members).toEqual([1, 2, 3]);
    const list = await wackactlJson<{ group: string; owner: number; local: boolean; addresses: string[] }[]>(
      nodes[1] as ClusterNode,
      "list",
    );
    expect(list.map((e) => e.group)).toEqual(NAMES);
    expect(list.find((e) => e.group === "g1")?.addresses).toEqual(["lo 10.77.0.1/32", "lo fd77::1/128"]);
    for (const e of list) expect(e.local).toBe(e.owner === 2);
    // the log lines of the contract
    const d1 = daemons[0] as Spawned;
    expect(d1.logs.some((l) => l.msg === "view installed" && Array.isArray(l.members))).toBe(true);
    expect(d1.logs.some((l) => l.msg === "vip acquired" && typeof l.group === "string")).toBe(true);
  });

  it("serves Prometheus metrics on loopback", async () => {
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/^wackamole_view_members 3$/m);
    expect(body).toMatch(/^wackamole_groups_held 2$/m);
    expect(body).toMatch(/^wackamole_views_total [1-9]\d*$/m);
    for (const m of [
      "wackamole_failovers_total",
      'wackamole_notifications_total{kind="address"}',
      "wackamole_track_healthy 1",
    ])
      expect(body).toContain(m);
    const notFound = await fetch(`http://127.0.0.1:${metricsPort}/nope`);
    expect(notFound.status).toBe(404);
  });

  it("after SIGKILL of one daemon the survivors take over its groups", async () => {
    const victim = daemons[2] as Spawned;
    const lost = (await victim.status()).held;
    expect(lost.length).toBeGreaterThan(0);
    victim.proc.kill("SIGKILL");
    await victim.exited;
    const survivors = daemons.slice(0, 2);
    const ss = await waitUntil(
      () => Promise.all(survivors.map((d) => d.status())),
      (ss) => ss.every((s) => s.view?.members.length === 2 && s.phase === "run") && coveredOnce(ss, NAMES),
      "the two survivors covering every group",
    );
    for (const g of lost) expect(ss.some((s) => s.held.includes(g))).toBe(true);
    const failovers = ss.reduce((a, s) => a + (s.counters.failovers ?? 0), 0);
    expect(failovers).toBeGreaterThanOrEqual(lost.length);
    const body = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(body).toMatch(/^wackamole_view_members 2$/m);
  });

  it("the killed daemon restarts and rejoins; balancing gives it groups again", async () => {
    const again = await spawnDaemon(nodes[2] as ClusterNode);
    daemons[2] = again;
    await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) =>
        ss.every((s) => s.view?.members.length === 3) &&
        coveredOnce(ss, NAMES) &&
        ss.every((s) => s.held.length === 2),
      "3 members, 2 groups each again",
    );
  });

  it("wackactl fail gives every VIP up; succeed brings the node back", async () => {
    const d2 = daemons[1] as Spawned;
    const r = await wackactlJson<{ adminFailed: boolean }>(d2.node, "fail");
    expect(r.adminFailed).toBe(true);
    const others = [daemons[0] as Spawned, daemons[2] as Spawned];
    await waitUntil(
      async () => ({ me: await d2.status(), others: await Promise.all(others.map((d) => d.status())) }),
      (v) => v.me.held.length === 0 && v.me.phase === "failed" && coveredOnce(v.others, NAMES),
      "node 2 out, the others covering everything",
    );
    const balanceWhileFailed = await execFileP(process.execPath, [
      CTL_BIN,
      "-s",
      d2.node.control,
      "balance",
    ]).catch((e: { code: number; stderr: string }) => e);
    expect((balanceWhileFailed as { code: number }).code).toBe(1);
    expect((balanceWhileFailed as { stderr: string }).stderr).toContain("out of the cluster");
    await wackactlJson(d2.node, "succeed");
    await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) =>
        ss.every((s) => s.view?.members.length === 3) &&
        coveredOnce(ss, NAMES) &&
        ss.every((s) => s.held.length === 2),
      "node 2 back with its share",
    );
    const b = await wackactlJson<{ requested: boolean }>(d2.node, "balance");
    expect(b.requested).toBe(true);
  });

  it("SIGTERM releases every VIP of the stopping daemon and exits 0; the others take them", async () => {
    const d1 = daemons[0] as Spawned;
    const held = (await d1.status()).held;
    expect(held.length).toBeGreaterThan(0);
    d1.proc.kill("SIGTERM");
    const exit = await d1.exited;
    expect(exit.code).toBe(0);
    const released = d1.logs.filter((l) => l.msg === "vip released").map((l) => l.group);
    for (const g of held) expect(released).toContain(g);
    const acquired = d1.logs.filter((l) => l.msg === "vip acquired").length;
    expect(released.length).toBe(acquired); // everything it ever raised, it lowered
    const rest = daemons.slice(1);
    await waitUntil(
      () => Promise.all(rest.map((d) => d.status())),
      (ss) => ss.every((s) => s.view?.members.length === 2) && coveredOnce(ss, NAMES),
      "the other two covering everything",
    );
  });

  it("wackactl says clearly when the daemon is not running", async () => {
    const e = await execFileP(process.execPath, [CTL_BIN, "--socket", `${dir}/nobody.sock`, "status"]).catch(
      (x: { code: number; stderr: string }) => x,
    );
    expect((e as { code: number }).code).toBe(1);
    expect((e as { stderr: string }).stderr).toMatch(/not running/);
  });
});
