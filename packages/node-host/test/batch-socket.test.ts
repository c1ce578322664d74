import { describe, expect, it } from "vitest";
import { BatchSocket, UdpHost } from "../src/index.ts";

/**
 * The batched socket (native addon). CI builds the addon (SPINES_NATIVE_REQUIRED=1), so there a
 * missing addon fails these tests; elsewhere they skip without it.
 */
const run = BatchSocket.available || process.env.CI === "true";

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Got {
  data: Buffer;
  address: string;
  port: number;
}

function open(address: string, got: Got[], extra: { maxQueued?: number; errors?: string[] } = {}) {
  return BatchSocket.open({
    family: address.includes(":") ? 6 : 4,
    address,
    port: 0,
    recvBufferBytes: 8 << 20,
    sendBufferBytes: 4 << 20,
    ...(extra.maxQueued !== undefined ? { maxQueued: extra.maxQueued } : {}),
    onDatagram: (data, a, port) => got.push({ data: Buffer.from(data), address: a, port }),
    onSendError: (e) => extra.errors?.push(e),
  });
}

/** Datagram i: its index in the first 4 bytes, then i & 0xff; sizes vary with `size(i)`. */
function datagram(i: number, size: number): Buffer {
  const b = Buffer.alloc(size, i & 0xff);
  b.writeUInt32BE(i, 0);
  return b;
}

describe.runIf(run)("BatchSocket (native recvmmsg / sendmmsg / UDP GSO+GRO)", () => {
  it("loads (CI builds it)", () => {
    expect(BatchSocket.unavailableReason).toBeUndefined();
    expect(BatchSocket.available).toBe(true);
  });

  it("delivers a burst of mixed sizes sent in one turn: every datagram whole, in order, few syscalls", async () => {
    const gotA: Got[] = [];
    const gotB: Got[] = [];
    const a = open("127.0.0.1", gotA);
    const b = open("127.0.0.1", gotB);
    try {
      const bp = b.address().port;
      // runs of equal sizes (GSO candidates), runs ended by a shorter datagram, lone odd sizes,
      // an empty datagram and a 9,000-byte one
      const size = (i: number) =>
        i === 500 ? 0 : i === 501 ? 9000 : i % 97 === 0 ? 333 : i % 50 < 40 ? 1362 : 40 + (i % 7);
      const n = 2000;
      const sent: Buffer[] = [];
      for (let i = 0; i < n; i++) {
        const d = i === 500 ? Buffer.alloc(0) : datagram(i, Math.max(4, size(i)));
        sent.push(d);
        a.send(d, bp, "127.0.0.1");
      }
      await waitFor(() => gotB.length === n, `${n} datagrams`);
      expect(gotB.length).toBe(n);
      for (let i = 0; i < n; i++) {
        expect(gotB[i]?.data.equals(sent[i] as Buffer), `datagram ${i}`).toBe(true);
        expect(gotB[i]?.port).toBe(a.address().port);
        expect(gotB[i]?.address).toBe("127.0.0.1");
      }
      // one turn's sends leave in one send call (sendmmsg) per 1,024, the GSO runs come back coalesced
      expect(a.stats.txBatches).toBe(2);
      expect(b.stats.rxBatches).toBeLessThan(n / 10);
      if (b.info().gro) expect(b.stats.rxCoalesced).toBeGreaterThan(0);
    } finally {
      a.close();
      b.close();
    }
  });

  it("takes at most 512 datagrams per readable event, however few records they came in", async () => {
    const got: Got[] = [];
    const a = open("127.0.0.1", []);
    const b = open("127.0.0.1", got);
    try {
      const n = 2000; // equal sizes: about 44 GSO messages of 46 datagrams, as many GRO records
      for (let i = 0; i < n; i++) a.send(datagram(i, 1400), b.address().port, "127.0.0.1");
      await waitFor(() => got.length === n, `${n} datagrams`);
      expect(got.every((g, i) => g.data.readUInt32BE(0) === i)).toBe(true);
      if (b.info().gro) expect(b.stats.rxCoalesced).toBeGreaterThan(20);
      // all queued before the receiver looked: without the budget one callback took them all
      expect(b.stats.rxBatches).toBeGreaterThanOrEqual(Math.ceil(n / 512));
    } finally {
      a.close();
      b.close();
    }
  });

  it("sends a lone datagram at the end of its turn (nothing waits for a batch to fill)", async () => {
    const got: Got[] = [];
    const a = open("127.0.0.1", []);
    const b = open("127.0.0.1", got);
    try {
      a.send(datagram(1, 100), b.address().port, "127.0.0.1");
      await Promise.resolve();
      await Promise.resolve();
      // the microtask flush ran before any timer or I/O turn
      expect(a.stats.txBatches).toBe(1);
      await waitFor(() => got.length === 1, "the datagram");
    } finally {
      a.close();
      b.close();
    }
  });

  it("IPv6 and a dual-stack socket reached over IPv4 (the source reads as the IPv4-mapped address)", async () => {
    const got6: Got[] = [];
    const a6 = open("::1", []);
    const b6 = open("::", got6);
    const a4 = open("127.0.0.1", []);
    try {
      const p = b6.address().port;
      a6.send(datagram(6, 64), p, "::1");
      a4.send(datagram(4, 64), p, "::ffff:127.0.0.1".slice(7));
      await waitFor(() => got6.length === 2, "both datagrams");
      const by = new Map(got6.map((g) => [g.data.readUInt32BE(0), g]));
      expect(by.get(6)?.address).toBe("::1");
      expect(by.get(6)?.port).toBe(a6.address().port);
      expect(by.get(4)?.address).toBe("::ffff:127.0.0.1");
      expect(by.get(4)?.port).toBe(a4.address().port);
    } finally {
      a6.close();
      b6.close();
      a4.close();
    }
  });

  it("drops beyond its queue bound and reports refused sends, and keeps working", async () => {
    const got: Got[] = [];
    const errors: string[] = [];
    const a = open("127.0.0.1", [], { maxQueued: 10, errors });
    const b = open("127.0.0.1", got);
    try {
      const bp = b.address().port;
      for (let i = 0; i < 25; i++) a.send(datagram(i, 200), bp, "127.0.0.1");
      expect(a.stats.txQueueDrops).toBe(15);
      await waitFor(() => got.length === 10, "the 10 queued");
      expect(got.map((g) => g.data.readUInt32BE(0))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
      errors.length = 0;
      a.send(datagram(1, 70_000), bp, "127.0.0.1"); // too big for UDP
      a.send(datagram(2, 10), 0, "127.0.0.1"); // port 0
      a.send(datagram(3, 10), bp, "127.0.0.1"); // fine, after two refusals in the same batch
      await waitFor(() => got.length === 11, "the good one");
      expect(errors.sort()).toEqual(["EINVAL", "EMSGSIZE"]);
      expect(got[10]?.data.readUInt32BE(0)).toBe(3);
    } finally {
      a.close();
      b.close();
    }
  });

  it("resolves a host name, and stops at close (no callback, no send afterwards)", async () => {
    const got: Got[] = [];
    const a = open("127.0.0.1", []);
    const b = open("127.0.0.1", got);
    const bp = b.address().port;
    a.send(datagram(1, 10), bp, "localhost");
    await waitFor(() => got.length === 1, "the datagram sent by name");
    b.close();
    expect(() => b.address()).toThrow(/closed/);
    a.send(datagram(2, 10), bp, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 50));
    expect(got.length).toBe(1);
    a.close();
    a.close(); // idempotent
    a.send(datagram(3, 10), 9, "127.0.0.1"); // ignored after close
  });

  it("UdpHost over it: io reads batch, datagrams flow, and bind errors read like dgram's", async () => {
    const a = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, io: "batch" });
    const b = await UdpHost.open({ id: 2, listen: { address: "127.0.0.1", port: 0 }, io: "batch" });
    try {
      expect(a.io).toBe("batch");
      a.setPeer(2, b.address());
      b.setPeer(1, a.address());
      const got: number[] = [];
      b.attach({ receive: (from, d) => got.push(from * 1000 + (d[0] ?? 0)) });
      for (let i = 0; i < 100; i++) a.send(2, Uint8Array.of(i));
      await waitFor(() => got.length === 100, "100 datagrams");
      expect(got).toEqual(Array.from({ length: 100 }, (_, i) => 2000 + i - 1000));
      expect(a.stats.txBatches).toBe(1);
      expect(a.stats.txPackets).toBe(100);
      await expect(UdpHost.open({ id: 3, listen: a.address(), io: "batch" })).rejects.toMatchObject({
        code: "EADDRINUSE",
        message: expect.stringMatching(/^bind EADDRINUSE 127\.0\.0\.1:\d+$/),
      });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});

describe("UdpHost io selection", () => {
  it("dgram on request, and a bad value is a RangeError", async () => {
    const h = await UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, io: "dgram" });
    expect(h.io).toBe("dgram");
    await h.close();
    await expect(
      UdpHost.open({ id: 1, listen: { address: "127.0.0.1", port: 0 }, io: "fast" as never }),
    ).rejects.toThrow(RangeError);
  });
});
