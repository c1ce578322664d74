/**
 * The configured node set on real daemons (docs/security.md): node 1 is spawned from a config file
 * listing `nodes: [1, 2]`; its neighbour 2 (no list) also has neighbour 3. Node 2 routes to 3, and
 * floods 3's items and its own edge to 3 to node 1, which drops them, counts them (`dropBadNode`
 * in `status`, `spines_routing_dropped_total{reason="badNode"}`) and has no route to 3.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { SpinesDaemon } from "../src/daemon.ts";
import {
  freeUdpPorts,
  inProcessConfig,
  type Spawned,
  spawnDaemon,
  startInProcess,
  tmp,
  waitFor,
  waitForAsync,
} from "./helpers.ts";

const started: SpinesDaemon[] = [];
let spawned: Spawned | undefined;
afterAll(async () => {
  spawned?.proc.kill("SIGTERM");
  await spawned?.exited;
  for (const d of started) await d.stop();
});

interface Status {
  counters: {
    routingStaleIncarnation: number;
    routing: { dropBadNode: number; dropVersionJump: number; itemsAccepted: number };
    links: Record<string, { unproven: number; challenges: number; forgedGoodbyes: number; ups: number }>;
  };
  memory: { rss: number; heapUsed: number };
  eventLoop: { stalls: number; maxStallMs: number; lastMinuteMaxStallMs: number; recentMaxStallMs: number };
}

describe("config `nodes` (real daemons)", () => {
  it("a routing item naming an unconfigured node is dropped and counted; configured nodes route", async () => {
    const dir = tmp();
    const [p1, p2, p3] = (await freeUdpPorts(3)) as [number, number, number];
    const control = join(dir, "n1.ctl");
    const cfgFile = join(dir, "n1.yaml");
    writeFileSync(
      cfgFile,
      [
        "id: 1",
        `listen: 127.0.0.1:${p1}`,
        `control: ${control}`,
        `clientSocket: ${join(dir, "n1.sock")}`,
        "logLevel: warn",
        "neighbors:",
        `  - 2@127.0.0.1:${p2}`,
        "nodes: [1, 2]",
        "",
      ].join("\n"),
    );
    spawned = await spawnDaemon(["-c", cfgFile], control);
    const n2 = await startInProcess(
      inProcessConfig(dir, 2, p2, [
        [1, p1],
        [3, p3],
      ]),
    );
    started.push(n2);
    started.push(await startInProcess(inProcessConfig(dir, 3, p3, [[2, p2]])));
    await waitFor(() => n2.node.hasRoute(3) && n2.node.hasRoute(1), "node 2 routes to 1 and 3", 20_000);
    const c = await spawned.ctl();
    try {
      await waitForAsync(
        async () =>
          (await c.call<Status>("status")).counters.routing.dropBadNode > 0 &&
          (await c.call<{ dst: number }[]>("routes")).some((r) => r.dst === 2),
        "node 1 to route to 2 and drop node 3's items",
        20_000,
      );
      const st = await c.call<Status>("status");
      expect(st.counters.routing.itemsAccepted).toBeGreaterThan(0);
      expect(st.counters.routing.dropVersionJump).toBe(0);
      expect(st.counters.routingStaleIncarnation).toBeGreaterThanOrEqual(0);
      expect(st.counters.links["2"]).toMatchObject({ unproven: expect.any(Number), forgedGoodbyes: 0 });
      expect(st.counters.links["2"]?.ups).toBeGreaterThan(0);
      expect(st.memory.rss).toBeGreaterThan(st.memory.heapUsed);
      expect(st.eventLoop.maxStallMs).toBeGreaterThanOrEqual(st.eventLoop.lastMinuteMaxStallMs);
      expect(st.eventLoop.lastMinuteMaxStallMs).toBeGreaterThanOrEqual(st.eventLoop.recentMaxStallMs);
      const routes = await c.call<{ dst: number }[]>("routes");
      expect(routes.map((r) => r.dst)).toEqual([2]);
      // Node 2 accepted node 3 and all is well between 1 and 2: the drop is node 1's node set.
      expect(n2.node.plane.router.stats.dropBadNode).toBe(0);
    } finally {
      c.close();
    }
  });
});
