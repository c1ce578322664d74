import { join } from "node:path";
import { silentLogger } from "@spines-ts/primitives";
import { afterAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, tmp, waitFor } from "./helpers.ts";

const daemons: SpinesDaemon[] = [];
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});

describe("an IPv6 overlay", () => {
  it("carries a session across a transit node on ::1", async () => {
    const dir = tmp();
    const [p1, p2, p3] = (await freeUdpPorts(3, "::1")) as [number, number, number];
    const v6 = (id: number, port: number, nbs: [number, number][]) => {
      const c = inProcessConfig(dir, id, port, []);
      return {
        ...c,
        listen: { address: "::1", port },
        neighbors: nbs.map(([nid, np]) => ({ id: nid, endpoint: { address: "::1", port: np } })),
        control: join(dir, `v6-${id}.ctl`),
        clientSocket: join(dir, `v6-${id}.sock`),
      };
    };
    // 1 - 2 - 3
    for (const cfg of [
      v6(1, p1, [[2, p2]]),
      v6(2, p2, [
        [1, p1],
        [3, p3],
      ]),
      v6(3, p3, [[2, p2]]),
    ]) {
      daemons.push(await SpinesDaemon.start({ config: cfg, log: silentLogger }));
    }
    const [d1, d2, d3] = daemons as [SpinesDaemon, SpinesDaemon, SpinesDaemon];
    expect(d1.bound.udp).toBe(`[::1]:${p1}`);
    await waitFor(() => d1.node.routes().some((r) => r.dst === 3), "a route 1 -> 3");
    const rx = await SpinesClient.connect({ path: d3.config.clientSocket as string });
    const tx = await SpinesClient.connect({ path: d1.config.clientSocket as string });
    const l = await rx.listen(7000);
    const [s, peer] = await Promise.all([tx.connect(3, 7000), l.accept()]);
    let got = "";
    peer.on("data", (b: Buffer) => {
      got += b.toString();
    });
    const ended = new Promise((r) => peer.once("end", r));
    const text = "over IPv6 ".repeat(5000);
    s.end(text);
    await ended;
    expect(got).toBe(text);
    expect(d2.node.counters.forwarded).toBeGreaterThan(0);
    // Datagrams cross the transit too (best-effort: resend until one arrives).
    const drx = await rx.openDatagram(7001);
    const dtx = await tx.openDatagram(0, { link: 0 });
    const dgrams: string[] = [];
    drx.on("message", (data: Uint8Array, src: { node: number; port: number }) => {
      dgrams.push(`${src.node}:${src.port}:${data.length}`);
    });
    const big = new Uint8Array(20_000).fill(5); // fragmented and reassembled by the session layer
    for (let i = 0; dgrams.length === 0 && i < 200; i++) {
      dtx.send(3, 7001, big);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(dgrams[0]).toBe(`1:${dtx.port}:20000`);
    // Group state floods too: a group joined on node 3 shows on node 1 with its member.
    d3.node.join(7);
    await waitFor(
      () => JSON.stringify(d1.node.groups()) === JSON.stringify([{ group: 7, members: [3] }]),
      "group 7 on node 1",
    );
    tx.close();
    rx.close();
  });
});
