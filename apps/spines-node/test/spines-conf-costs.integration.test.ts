/**
 * Issue 11: spines.conf edge costs are honoured. Three real daemons on loopback (127.0.0.1-3, one
 * UDP port) import one spines.conf whose direct edge 1–2 costs 10 while 1–3–2 costs 2: routing
 * goes round, the control socket's `links` shows the configured and advertised costs, and a
 * reload with a cheap 1–2 edge brings the route back to the direct link. A config file's own
 * `cost:` for a neighbour overrides the imported one.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { ControlClient } from "@spines-ts/daemon-kit";
import { afterEach, describe, expect, it } from "vitest";
import { parseArgs, resolveConfig } from "../src/config.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, startInProcess, tmp, waitForAsync } from "./helpers.ts";

interface RouteView {
  dst: number;
  nextHop: number;
  cost: number;
  path?: number[];
}
interface LinkView {
  neighbor: number;
  cost: number;
  advertisedCost: number | null;
}

const conf = (c12: number) =>
  `# three hosts; the direct edge 1-2 is the expensive one\nHosts {\n 1 127.0.0.1\n 2 127.0.0.2\n 3 127.0.0.3\n}\nEdges {\n 1 2 ${c12}\n 1 3 1\n 3 2 1\n}\n`;

describe("spines.conf edge costs reach routing (real daemons on loopback)", () => {
  const daemons: SpinesDaemon[] = [];
  afterEach(async () => {
    await Promise.all(daemons.splice(0).map((d) => d.stop()));
  });

  it("a costly edge is avoided, shown by status, and a reload re-weighs it", async () => {
    const dir = tmp();
    const [port] = await freeUdpPorts(1);
    const sc = join(dir, "spines.conf");
    writeFileSync(sc, conf(10));
    const cfgFile = (id: number, extra = "") => {
      const p = join(dir, `n${id}.yaml`);
      writeFileSync(
        p,
        `id: ${id}\nlisten: 127.0.0.${id}:${port}\nmetric: hops\nlogLevel: silent\n` +
          `control: ${join(dir, `n${id}.ctl`)}\nclientSocket: ${join(dir, `n${id}.sock`)}\n` +
          `spinesConf: { file: ${JSON.stringify(sc)}, port: ${port} }\n${extra}`,
      );
      return p;
    };
    const files = [1, 2, 3].map((id) => cfgFile(id));
    const cfgs = files.map((f) => resolveConfig(parseArgs(["-c", f])));
    expect(cfgs[0]?.neighbors.map((n) => [n.id, n.cost])).toEqual([
      [2, 10],
      [3, 1],
    ]);
    for (const c of cfgs) daemons.push(await startInProcess(c));
    const ctl = await ControlClient.connect(join(dir, "n1.ctl"));
    try {
      const route = async (dst: number) => (await ctl.call<RouteView[]>("routes")).find((r) => r.dst === dst);
      // converged: 2 reached via 3 at cost 2 though 2 is a direct neighbour
      await waitForAsync(async () => (await route(2))?.cost === 2, "node 1's route to 2 via 3", 20_000);
      expect(await route(2)).toMatchObject({ dst: 2, nextHop: 3, cost: 2, path: [1, 3, 2] });
      const links = await ctl.call<LinkView[]>("links");
      expect(links.find((l) => l.neighbor === 2)).toMatchObject({ cost: 10, advertisedCost: 10 });
      expect(links.find((l) => l.neighbor === 3)).toMatchObject({ cost: 1, advertisedCost: 1 });
      // node 2 avoids the edge towards 1 as well (its own copy of the undirected edge costs 10)
      const ctl2 = await ControlClient.connect(join(dir, "n2.ctl"));
      try {
        await waitForAsync(
          async () => (await ctl2.call<RouteView[]>("routes")).find((r) => r.dst === 1)?.nextHop === 3,
          "node 2's route to 1 via 3",
          20_000,
        );
      } finally {
        ctl2.close();
      }
      // reload: the edge 1–2 becomes cheap on both ends; the direct route comes back
      writeFileSync(sc, conf(1));
      for (const [i, d] of daemons.entries()) {
        const r = d.reload(resolveConfig(parseArgs(["-c", files[i] as string])));
        if (i < 2) expect(r.applied).toContain(`neighbors.${i === 0 ? 2 : 1}.cost`);
        expect(r.needsRestart).toEqual([]);
      }
      await waitForAsync(async () => (await route(2))?.cost === 1, "node 1's direct route to 2", 20_000);
      expect(await route(2)).toMatchObject({ nextHop: 2, path: [1, 2] });
      expect((await ctl.call<LinkView[]>("links")).find((l) => l.neighbor === 2)?.cost).toBe(1);
    } finally {
      ctl.close();
    }
  });

  it("a config file's cost for a neighbour overrides spines.conf's, and a missing one keeps it", () => {
    const dir = tmp();
    const sc = join(dir, "spines.conf");
    writeFileSync(sc, conf(10));
    const base = `id: 1\nlisten: 127.0.0.1:8100\nspinesConf: { file: ${JSON.stringify(sc)}, port: 8100 }\n`;
    const own = join(dir, "own.yaml");
    writeFileSync(own, `${base}neighbors:\n  - { id: 2, address: 127.0.0.2:8100, cost: 4 }\n`);
    expect(resolveConfig(parseArgs(["-c", own])).neighbors.find((n) => n.id === 2)?.cost).toBe(4);
    const none = join(dir, "none.yaml");
    writeFileSync(none, `${base}neighbors:\n  - { id: 2, address: 127.0.0.2:8100 }\n`);
    expect(resolveConfig(parseArgs(["-c", none])).neighbors.find((n) => n.id === 2)?.cost).toBe(10);
  });
});
