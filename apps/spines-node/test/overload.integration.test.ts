/**
 * Overload on real daemons (issue 10): a client floods a 500 kbit/s emulated link with datagrams
 * on the reliable link type. Every datagram the daemon accepts arrives; the rest are refused at
 * once with ERR_WOULD_BLOCK (the client is throttled), none vanishes on the way, and the daemon's
 * local queue drops nothing.
 */
import { afterAll, describe, expect, it } from "vitest";
import { LinkType, SpinesClient } from "../src/client.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

const daemons: SpinesDaemon[] = [];
afterAll(async () => {
  await Promise.all(daemons.map((d) => d.stop()));
});

describe("a datagram flood into a narrow link (real daemons)", () => {
  it("every accepted datagram arrives; the rest are refused with ERR_WOULD_BLOCK", async () => {
    const dir = tmp();
    const ports = await freeUdpPorts(2);
    // 500 kbit/s with a 32 KiB queue, on receive at node 2 (data) and node 1 (acks), 5 ms each way.
    const emulation = { delayMs: 5, bandwidthKbps: 500, queueBytes: 32 * 1024 };
    for (let i = 0; i < 2; i++) {
      const cfg = inProcessConfig(dir, i + 1, ports[i] as number, [[2 - i, ports[1 - i] as number]]);
      daemons.push(
        await startInProcess({ ...cfg, neighbors: cfg.neighbors.map((n) => ({ ...n, emulation })) }),
      );
    }
    const [d1, d2] = daemons as [SpinesDaemon, SpinesDaemon];
    await waitFor(() => d1.node.hasRoute(2) && d2.node.hasRoute(1), "routes 1 <-> 2", 20_000);
    const rx = await SpinesClient.connect({ path: d2.config.clientSocket as string });
    const tx = await SpinesClient.connect({ path: d1.config.clientSocket as string });
    const refusedCodes = new Map<string, number>();
    tx.on("protocolError", (e: { code?: string }) => {
      const c = e.code ?? "?";
      refusedCodes.set(c, (refusedCodes.get(c) ?? 0) + 1);
    });
    const seen = new Set<number>();
    let duplicates = 0;
    const drx = await rx.openDatagram(7000, { link: LinkType.Reliable });
    drx.on("message", (...args: unknown[]) => {
      const m = args.find((a) => a instanceof Uint8Array) as Uint8Array;
      const k = Buffer.from(m.buffer, m.byteOffset, m.length).readUInt32BE(0);
      if (seen.has(k)) duplicates++;
      seen.add(k);
    });
    const dtx = await tx.openDatagram(7001, { link: LinkType.Reliable });
    // 4,000 datagrams of 1,000 bytes (32 Mbit) as fast as the client connection takes them: far more
    // than the link carries in the time, and more than the daemon's queues hold.
    const total = 4000;
    for (let k = 0; k < total; k++) {
      const b = Buffer.alloc(1000);
      b.writeUInt32BE(k, 0);
      if (!dtx.send(2, 7000, b)) await tx.drained();
      if (k % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    // Every send was answered one way or the other: accepted (delivered) or refused.
    const refused = () => refusedCodes.get("ERR_WOULD_BLOCK") ?? 0;
    await waitFor(
      () => d1.sessions.stats.sent + d1.sessions.stats.wouldBlock === total,
      "all sends handled",
      30_000,
    );
    const accepted = d1.sessions.stats.sent;
    if (process.env.OVERLOAD_PRINT)
      console.log({ accepted, wouldBlock: d1.sessions.stats.wouldBlock, local: d1.status().counters });
    await waitFor(() => seen.size >= accepted, `${accepted} accepted datagrams to arrive`, 120_000);
    await waitFor(() => refused() === d1.sessions.stats.wouldBlock, "every refusal reported", 10_000);
    expect(refused()).toBeGreaterThan(0);
    expect([...refusedCodes.keys()]).toEqual(["ERR_WOULD_BLOCK"]);
    expect(accepted).toBeGreaterThan(0);
    expect(accepted + refused()).toBe(total);
    expect(seen.size).toBe(accepted);
    expect(duplicates).toBe(0);
    expect(d1.node.plane.localQueueDrops).toBe(0);
    const status = d1.status() as { counters: { localQueue: { drops: number } } };
    expect(status.counters.localQueue.drops).toBe(0);
    tx.close();
    rx.close();
  }, 240_000);
});
