import { afterAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

const daemons: SpinesDaemon[] = [];
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});

describe("a stream over a lossy, bursty, delayed 3-hop path (receive-side emulation)", () => {
  it("arrives complete and in order", async () => {
    const dir = tmp();
    const ports = await freeUdpPorts(4);
    const emulation = { lossPct: 5, burstPct: 30, delayMs: 5, jitterMs: 2 };
    for (let i = 0; i < 4; i++) {
      const nb: [number, number][] = [];
      if (i > 0) nb.push([i, ports[i - 1] as number]);
      if (i < 3) nb.push([i + 2, ports[i + 1] as number]);
      const cfg = inProcessConfig(dir, i + 1, ports[i] as number, nb);
      daemons.push(
        await startInProcess({ ...cfg, neighbors: cfg.neighbors.map((n) => ({ ...n, emulation })) }),
      );
    }
    const [d1, , , d4] = daemons as [SpinesDaemon, SpinesDaemon, SpinesDaemon, SpinesDaemon];
    await waitFor(() => d1.node.routes().some((r) => r.dst === 4), "a route 1 -> 4", 20_000);
    const rx = await SpinesClient.connect({ path: d4.config.clientSocket as string });
    const tx = await SpinesClient.connect({ path: d1.config.clientSocket as string });
    const l = await rx.listen(8000);
    const [s, peer] = await Promise.all([tx.connect(4, 8000), l.accept()]);
    const data = Buffer.alloc(300_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    const chunks: Buffer[] = [];
    peer.on("data", (b: Buffer) => chunks.push(b));
    const ended = new Promise((r) => peer.once("end", r));
    s.end(data);
    await ended;
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    // The emulators really dropped packets on the way.
    const lost = daemons.reduce(
      (a, d) => a + d.emulator.links().reduce((b, n) => b + (d.emulator.stats(n)?.lost ?? 0), 0),
      0,
    );
    expect(lost).toBeGreaterThan(0);
    tx.close();
    rx.close();
  }, 60_000);
});
