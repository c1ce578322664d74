import { createSocket } from "node:dgram";
import { MemoryLogger } from "@spines-ts/primitives";
import { afterEach, describe, expect, it } from "vitest";
import { UdpHost } from "../src/index.ts";

const hosts: UdpHost[] = [];
afterEach(async () => {
  await Promise.all(hosts.splice(0).map((h) => h.close()));
});

async function pair(address: string) {
  const a = await UdpHost.open({ id: 1, listen: { address, port: 0 }, seed: 1 });
  const b = await UdpHost.open({ id: 2, listen: { address, port: 0 }, seed: 2 });
  hosts.push(a, b);
  a.setPeer(2, b.address());
  b.setPeer(1, a.address());
  return { a, b };
}

function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const tick = () => {
      if (cond()) resolve();
      else if (Date.now() - t0 > ms) reject(new Error(`timed out waiting for ${what}`));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe("UdpHost", () => {
  it.each(["127.0.0.1", "::1"])("exchanges datagrams between peers over %s", async (address) => {
    const { a, b } = await pair(address);
    const got: [number, string][] = [];
    b.attach({ receive: (from, data) => got.push([from, Buffer.from(data).toString()]) });
    const buf = Buffer.from("hello");
    a.send(2, buf);
    buf.write("XXXXX"); // the host copied it
    a.send(2, Buffer.from("again"));
    await waitFor(() => got.length === 2, "two datagrams");
    expect(got).toEqual([
      [1, "hello"],
      [1, "again"],
    ]);
    expect(a.stats.txPackets).toBe(2);
    expect(b.stats.rxPackets).toBe(2);
  });

  it("a dual-stack socket reaches IPv4 peers", async () => {
    const v6 = await UdpHost.open({ id: 1, listen: { address: "::", port: 0 } });
    const v4 = await UdpHost.open({ id: 2, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(v6, v4);
    v6.setPeer(2, v4.address());
    v4.setPeer(1, { address: "127.0.0.1", port: v6.address().port });
    const got: number[] = [];
    v6.attach({ receive: (from) => got.push(from) });
    v4.attach({ receive: (from) => got.push(from) });
    v6.send(2, Uint8Array.of(1));
    v4.send(1, Uint8Array.of(2));
    await waitFor(() => got.length === 2, "both directions");
    expect(got.sort()).toEqual([1, 2]);
  });

  it("counts datagrams from unknown endpoints and handler errors, and keeps serving", async () => {
    const log = new MemoryLogger();
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, log });
    hosts.push(h);
    const raw = createSocket("udp4");
    await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
    const rawPort = (raw.address() as { port: number }).port;
    let n = 0;
    h.attach({
      receive: (_from, data) => {
        n++;
        if (data[0] === 0xff) throw new Error("boom");
      },
    });
    raw.send(Uint8Array.of(1), h.address().port, "127.0.0.1");
    await waitFor(() => h.stats.rxUnknownPeer === 1, "unknown peer counted");
    h.setPeer(9, { address: "127.0.0.1", port: rawPort });
    for (let i = 0; i < 20; i++) raw.send(Uint8Array.of(0xff), h.address().port, "127.0.0.1");
    raw.send(Uint8Array.of(1), h.address().port, "127.0.0.1");
    await waitFor(() => n === 21, "all delivered");
    expect(h.stats.rxHandlerErrors).toBe(20);
    // Rate-limited: 5 per second get logged.
    expect(log.records.filter((r) => r.msg?.includes("threw")).length).toBeLessThanOrEqual(5);
    raw.close();
  });

  it("runs timers in deadline order on one real timer, and survives a throwing callback", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    hosts.push(h);
    const now = h.clock.now();
    const order: number[] = [];
    h.schedule(now + 30, () => order.push(3));
    h.schedule(now + 10, () => order.push(1));
    const cancel = h.schedule(now + 15, () => order.push(99));
    h.schedule(now + 20, () => {
      order.push(2);
      throw new Error("timer boom");
    });
    h.schedule(now + 20, () => order.push(2.5));
    cancel();
    await waitFor(() => order.length === 4, "timers");
    expect(order).toEqual([1, 2, 2.5, 3]);
    expect(h.stats.timerErrors).toBe(1);
    expect(h.pendingTimers).toBe(0);
  });
});
