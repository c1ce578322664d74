import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { DiscoverySocket, isMulticastAddress, UdpHost } from "../src/index.ts";

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

/** A UDP port that was free a moment ago (the discovery sockets share it with SO_REUSEADDR). */
async function freePort(): Promise<number> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
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

async function discovery(group: string, port: number, extra: { via?: UdpHost } = {}) {
  const d = await DiscoverySocket.open({ group, port, interface: "127.0.0.1", ttl: 0, ...extra });
  open.push(d);
  const heard: [string, string, number][] = [];
  d.onMessage = (data, from) => heard.push([Buffer.from(data).toString(), from.address, from.port]);
  return { d, heard };
}

describe("DiscoverySocket", () => {
  it("tells multicast groups from broadcast addresses", () => {
    expect(isMulticastAddress("239.255.42.99")).toBe(true);
    expect(isMulticastAddress("224.0.0.1")).toBe(true);
    expect(isMulticastAddress("ff02::1")).toBe(true);
    expect(isMulticastAddress("192.168.1.255")).toBe(false);
    expect(isMulticastAddress("240.0.0.1")).toBe(false);
  });

  it("multicasts announcements to every member on the loopback interface", async () => {
    const port = await freePort();
    const a = await discovery("239.255.42.99", port);
    const b = await discovery("239.255.42.99", port);
    expect(a.d.kind).toBe("multicast");
    a.d.announce(Buffer.from("hello from a"));
    await waitFor(() => a.heard.length === 1 && b.heard.length === 1, "both members hear it");
    expect(b.heard[0]?.[0]).toBe("hello from a");
    expect(b.heard[0]?.[1]).toBe("127.0.0.1");
    expect(b.heard[0]?.[2]).toBe(port); // sent from the discovery socket itself
  });

  it("with `via`, announcements carry the host's unicast endpoint, which the receiver can adopt as a peer", async () => {
    const port = await freePort();
    const ha = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 } });
    const hb = await UdpHost.open({ id: 2, listen: { address: "127.0.0.1", port: 0 } });
    open.push(ha, hb);
    const a = await discovery("239.255.42.98", port, { via: ha });
    const b = await discovery("239.255.42.98", port, { via: hb });
    // A toy announcement: the sender's node id as text. b learns a from it.
    b.d.onMessage = (data, from) => {
      const id = Number(Buffer.from(data).toString());
      if (id !== hb.id) hb.setPeer(id, from);
    };
    a.d.announce(Buffer.from(String(ha.id)));
    await waitFor(() => hb.peer(1) !== undefined, "b learns a");
    expect(hb.peer(1)).toEqual(ha.address());
    // b can now reach a directly, and a learns b from the first datagram.
    const got: number[] = [];
    ha.onUnknownPeer = (data) => data[0];
    ha.attach({ receive: (from) => got.push(from) });
    hb.send(1, Uint8Array.of(2));
    await waitFor(() => got.length === 1, "a hears b");
    expect(got).toEqual([2]);
    expect(ha.peer(2)).toEqual(hb.address());
    // With loopback on, a hears its own announcement too (receivers filter themselves out by id).
    expect(a.heard).toEqual([["1", "127.0.0.1", ha.address().port]]);
  });

  it("broadcasts on the loopback broadcast address", async () => {
    const port = await freePort();
    const a = await discovery("127.255.255.255", port);
    const b = await discovery("127.255.255.255", port);
    expect(a.d.kind).toBe("broadcast");
    b.d.announce(Buffer.from("bcast"));
    await waitFor(() => a.heard.length >= 1, "a hears the broadcast");
    expect(a.heard[0]?.[0]).toBe("bcast");
  });

  it("bounds announcement size, counts handler errors and sends after close, and rejects bad options", async () => {
    const port = await freePort();
    const a = await discovery("239.255.42.97", port);
    const b = await discovery("239.255.42.97", port);
    b.d.onMessage = (data) => {
      if (data[0] === 1) throw new Error("boom");
      b.heard.push(["ok", "", 0]);
    };
    a.d.announce(new Uint8Array(a.d.maxBytes + 1));
    expect(a.d.stats.txTooBig).toBe(1);
    a.d.announce(Uint8Array.of(1));
    a.d.announce(Uint8Array.of(2));
    await waitFor(() => b.heard.length === 1, "the second announcement");
    expect(b.d.stats.rxHandlerErrors).toBe(1);
    await a.d.close();
    a.d.announce(Uint8Array.of(2));
    expect(a.d.stats.txAfterClose).toBe(1);
    await expect(DiscoverySocket.open({ group: "not-an-ip", port })).rejects.toThrow(RangeError);
    await expect(DiscoverySocket.open({ group: "239.1.1.1", port: 0 })).rejects.toThrow(RangeError);
    await expect(DiscoverySocket.open({ group: "fe80::1", port })).rejects.toThrow(/broadcast/);
    const v6host = await UdpHost.open({ id: 9, listen: { address: "::1", port: 0 } });
    open.push(v6host);
    await expect(DiscoverySocket.open({ group: "239.1.1.1", port, via: v6host })).rejects.toThrow(/family/);
  });
});
