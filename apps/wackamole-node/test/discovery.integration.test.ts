/**
 * Discovery: two daemons with no peer list find each other through a multicast group on loopback
 * (heartbeats also go to the group; a member heard there is learned as a peer) and share the groups.
 */
import { describe, expect, it } from "vitest";
import {
  coveredOnce,
  freeUdpPorts,
  scratchCluster,
  spawnDaemon,
  waitUntil,
  writeCluster,
} from "./helpers.ts";

const { dir, daemons } = scratchCluster();

describe("discovery", () => {
  it("members without peers find each other through a multicast group and share the groups", async () => {
    const [dport] = (await freeUdpPorts(1)) as [number];
    const nodes = await writeCluster(
      dir,
      2,
      () => ({
        peers: [],
        discovery: { address: "239.255.42.77", port: dport, interface: "127.0.0.1", ttl: 0 },
      }),
      4,
    );
    for (const n of nodes) daemons.push(await spawnDaemon(n));
    const ss = await waitUntil(
      () => Promise.all(daemons.map((d) => d.status())),
      (ss) =>
        ss.every((s) => s.view?.members.join() === "1,2") &&
        coveredOnce(ss, ["g1", "g2", "g3", "g4"]) &&
        ss.every((s) => s.held.length === 2),
      "one view of both, 2 groups each",
    );
    expect(ss.map((s) => s.id)).toEqual([1, 2]);
  });
});
