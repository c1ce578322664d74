/**
 * @spines-ts/client against real daemons on loopback: streams (net idioms, back-pressure), datagrams,
 * multicast with two receivers, anycast, server accept, and the errors (missing daemon, refused
 * port, unreachable node, a peer that dies, abort, bad ports).
 */
import {
  ClientRangeError,
  connect,
  createServer,
  createSocket,
  type DatagramSource,
  SpinesClient,
  type SpinesStream,
} from "@spines-ts/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Node, startOverlay, waitFor } from "./helpers.ts";

/** Reads to the end of the stream without destroying it. */
function readAll(s: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    s.on("data", (c: Buffer) => parts.push(c));
    s.once("end", () => resolve(Buffer.concat(parts)));
    s.once("error", reject);
  });
}

function errorOf(s: NodeJS.EventEmitter): Promise<Error & { code?: string }> {
  return new Promise((resolve) => s.once("error", resolve));
}

describe("@spines-ts/client on a line of four daemons 1-2-3-4", () => {
  let nodes: Map<number, Node>;
  let stop: () => Promise<void>;
  const sock = (id: number) => ({ path: (nodes.get(id) as Node).socket });

  beforeAll(async () => {
    ({ nodes, stop } = await startOverlay(
      [1, 2, 3, 4],
      [
        [1, 2],
        [2, 3],
        [3, 4],
      ],
      // A connect timeout far above the test's: an unreachable node must be answered at once.
      { session: { connectTimeoutMs: 600_000 } },
    ));
  });
  afterAll(async () => {
    await stop?.();
  });

  it("runs a stream across three hops in net idioms: createServer/'connection', connect/'connect', half-close", async () => {
    const server = createServer({ daemon: sock(3) }, (s) => {
      // Echo, upper-cased, then end our side once the peer ended.
      const parts: Buffer[] = [];
      s.on("data", (c: Buffer) => parts.push(c));
      s.once("end", () => s.end(Buffer.concat(parts).toString().toUpperCase()));
    });
    await new Promise<void>((r) => server.listen(5000, r));
    expect(server.address()).toEqual({ node: 3, port: 5000 });
    const s = connect({ node: 3, port: 5000, daemon: sock(1) });
    // Written before the session is open: held until 'connect'.
    s.write("hello ");
    await new Promise<void>((r) => s.once("connect", r));
    expect(s.remoteNode).toBe(3);
    expect(s.localPort).toBeGreaterThanOrEqual(40000);
    const big = "x".repeat(200_000);
    s.end(big);
    expect((await readAll(s)).toString()).toBe(`HELLO ${big.toUpperCase()}`);
    await new Promise((r) => (s.destroyed ? r(null) : s.once("close", r)));
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("bounds the daemon's memory while a reader is paused and 50 MB are offered, then delivers every byte", async () => {
    const rx = nodes.get(2) as Node;
    const limit = rx.daemon.config.limits.clientQueueBytes;
    const server = createServer({ daemon: sock(2) });
    const accepted = new Promise<SpinesStream>((r) => server.once("connection", r));
    await new Promise<void>((r) => server.listen(5001, r));
    const s = connect({ node: 2, port: 5001, daemon: sock(1) });
    await new Promise<void>((r) => s.once("connect", r));
    const peer = await accepted;
    peer.pause();
    let received = 0;
    peer.on("data", (c: Buffer) => {
      received += c.length;
    });
    peer.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const offered = 50 * 1024 * 1024;
    let written = 0;
    // Offer until 50 MB went in or the writer has been blocked for 2 s (back-pressure reached it).
    while (written < offered) {
      if (!s.write(chunk)) {
        const drained = await Promise.race([
          new Promise((r) => s.once("drain", () => r(true))),
          new Promise((r) => setTimeout(() => r(false), 2000)),
        ]);
        written += chunk.length;
        if (!drained) break;
      } else written += chunk.length;
    }
    expect(written).toBeLessThan(offered);
    expect(received).toBe(0);
    // What the stalled pipeline holds end to end (writer's buffers, both daemons, the reader's).
    const tx = (nodes.get(1) as Node).daemon;
    const [info] = tx.sessions.sessions().filter((x) => x.remotePort === 5001);
    // The sender's daemon holds at most its session's send buffer.
    expect(info?.sendBuffered).toBeLessThanOrEqual(tx.config.session.sendBufferBytes ?? 256 * 1024);
    // So the stalled pipeline holds about the reader daemon's client queue plus a few buffers.
    expect(written).toBeLessThanOrEqual(limit + 4 * 1024 * 1024);
    const peak = rx.daemon.clients.stats.peakClientQueueBytes;
    // The receiving daemon queues at most its per-client limit plus one read towards the client.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(limit + 1024 * 1024);
    // Resume: everything written arrives.
    peer.resume();
    const ended = new Promise((r) => peer.once("end", r));
    s.end();
    await ended;
    expect(received).toBe(written);
    peer.end();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it("sends datagrams in dgram idioms: bind, send, 'message' with the source", async () => {
    const a = createSocket({ daemon: sock(1) });
    const b = createSocket({ daemon: sock(4) });
    await new Promise<void>((r) => b.bind(7001, r));
    const got: [string, DatagramSource][] = [];
    b.on("message", (m: Buffer, r: DatagramSource) => got.push([m.toString(), r]));
    await new Promise<void>((r) => a.bind(7000, r));
    for (let i = 0; got.length === 0 && i < 2000; i++) {
      a.send("ping", 7001, 4);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(got[0]?.[0]).toBe("ping");
    expect(got[0]?.[1]).toMatchObject({ node: 1, port: 7000, size: 4 });
    expect(got[0]?.[1].group).toBeUndefined();
    // To a node nobody routes to: ERR_UNREACHABLE at once, as an 'error' event.
    const err = errorOf(a);
    a.send("nowhere", 7001, 99);
    expect(await err).toMatchObject({ code: "ERR_UNREACHABLE" });
    expect(a.sendErrors).toBe(1);
    a.close();
    b.close();
  });

  it("delivers multicast to two receivers, and stops after dropMembership", async () => {
    const group = 100;
    const r2 = createSocket({ daemon: sock(2) }).bind(7100);
    const r4 = createSocket({ daemon: sock(4) }).bind(7100);
    await r2.addMembership(group);
    await r4.addMembership(group);
    const seen = { 2: [] as string[], 4: [] as string[] };
    r2.on("message", (m: Buffer, r: DatagramSource) => {
      expect(r.group).toBe(group);
      seen[2].push(m.toString());
    });
    r4.on("message", (m: Buffer, r: DatagramSource) => {
      expect(r).toMatchObject({ group, node: 1 });
      seen[4].push(m.toString());
    });
    const tx = createSocket({ daemon: sock(1) });
    // Group state floods with routing: send until both members got a copy.
    for (let i = 0; (seen[2].length === 0 || seen[4].length === 0) && i < 2000; i++) {
      tx.sendToGroup(`m${i}`, 7100, group);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen[2].length).toBeGreaterThan(0);
    expect(seen[4].length).toBeGreaterThan(0);
    await r4.dropMembership(group);
    // Once node 1 stops listing node 4, node 4 gets no more copies while node 2 still does.
    await waitFor(async () => {
      const { ControlClient } = await import("@spines-ts/spines-node");
      const c = await ControlClient.connect((nodes.get(1) as Node).control);
      try {
        const gs = (await c.call("groups")) as { group: number; members: number[] }[];
        return JSON.stringify(gs.find((g) => g.group === group)?.members) === "[2]";
      } finally {
        c.close();
      }
    }, "node 4 to leave the group");
    const before4 = seen[4].length;
    const before2 = seen[2].length;
    for (let i = 0; seen[2].length < before2 + 5 && i < 2000; i++) {
      tx.sendToGroup("after", 7100, group);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(seen[2].length).toBeGreaterThanOrEqual(before2 + 5);
    expect(seen[4].slice(before4)).not.toContain("after");
    for (const s of [tx, r2, r4]) s.close();
  });

  it("sends anycast to the nearest member, and to the next one when it leaves", async () => {
    const group = 200;
    const r2 = createSocket({ daemon: sock(2) }).bind(7200);
    const r4 = createSocket({ daemon: sock(4) }).bind(7200);
    const got: number[] = [];
    r2.on("message", () => got.push(2));
    r4.on("message", () => got.push(4));
    await r2.addMembership(group);
    await r4.addMembership(group);
    const tx = createSocket({ daemon: sock(1) });
    tx.on("error", () => {}); // no member known yet: ERR_UNREACHABLE until the group state arrives
    // Wait until node 1 knows both members, then anycast: node 2 is one hop away, node 4 three.
    const { ControlClient } = await import("@spines-ts/spines-node");
    const members = async () => {
      const c = await ControlClient.connect((nodes.get(1) as Node).control);
      try {
        const gs = (await c.call("groups")) as { group: number; members: number[] }[];
        return JSON.stringify(gs.find((g) => g.group === group)?.members ?? []);
      } finally {
        c.close();
      }
    };
    await waitFor(async () => (await members()) === "[2,4]", "both members at node 1");
    for (let i = 0; got.length < 3 && i < 2000; i++) {
      tx.sendAnycast("any", 7200, group);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(got.length).toBeGreaterThanOrEqual(3);
    expect(new Set(got)).toEqual(new Set([2]));
    await r2.dropMembership(group);
    await waitFor(async () => (await members()) === "[4]", "node 2 to leave");
    got.length = 0;
    for (let i = 0; got.length < 3 && i < 2000; i++) {
      tx.sendAnycast("any", 7200, group);
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(new Set(got)).toEqual(new Set([4]));
    for (const s of [tx, r2, r4]) s.close();
  });

  it("answers a connect to a node that is not in the routing table at once with ERR_UNREACHABLE", async () => {
    // Before the fix the daemon tried to open the session until its connect timeout (ERR_TIMED_OUT).
    const s = connect({ node: 99, port: 5000, daemon: sock(1) });
    expect(await errorOf(s)).toMatchObject({ code: "ERR_UNREACHABLE" });
    const c = await SpinesClient.connect(sock(1));
    await expect(c.connect(99, 5000)).rejects.toMatchObject({ code: "ERR_UNREACHABLE" });
    await expect(c.route(99)).rejects.toMatchObject({ code: "ERR_UNREACHABLE" });
    expect(await c.route(4)).toEqual({ path: [1, 2, 3, 4], cost: expect.any(Number) });
    c.close();
  });

  it("refuses a connect to a port nobody listens on", async () => {
    const s = connect({ node: 3, port: 4999, daemon: sock(1) });
    expect(await errorOf(s)).toMatchObject({ code: "ERR_REFUSED" });
  });

  it("fails with ERR_DAEMON_UNAVAILABLE when no daemon listens there", async () => {
    const path = "/nonexistent/spines-node.sock";
    await expect(SpinesClient.connect({ path })).rejects.toMatchObject({
      code: "ERR_DAEMON_UNAVAILABLE",
      cause: { code: "ENOENT" },
    });
    const s = connect({ node: 3, port: 5000, daemon: { path } });
    expect(await errorOf(s)).toMatchObject({ code: "ERR_DAEMON_UNAVAILABLE" });
    const d = createSocket({ daemon: { path } });
    const e = errorOf(d);
    d.bind(0);
    expect(await e).toMatchObject({ code: "ERR_DAEMON_UNAVAILABLE" });
  });

  it("rejects ports outside 0..65535 instead of wrapping them", async () => {
    // Before the fix openDatagram(70000) bound port 4464 (70000 mod 65536).
    const c = await SpinesClient.connect(sock(1));
    await expect(c.openDatagram(70000)).rejects.toBeInstanceOf(ClientRangeError);
    await expect(c.listen(-1)).rejects.toMatchObject({ code: "ERR_BAD_ARGUMENT" });
    await expect(c.connect(3, 65536)).rejects.toBeInstanceOf(RangeError);
    expect(() => createSocket({ daemon: c }).bind(70000)).toThrow(ClientRangeError);
    expect(() => connect({ node: 3, port: 0, daemon: c })).toThrow(RangeError);
    expect(() => createServer({ daemon: c }).listen(65536)).toThrow(RangeError);
    expect(() => createSocket({ daemon: c }).send(Buffer.alloc(65537), 5, 3)).toThrow(
      expect.objectContaining({ code: "ERR_TOO_LARGE" }),
    );
    // The client is still usable, and no port 4464 was taken.
    const d = await c.openDatagram(4464);
    expect(d.port).toBe(4464);
    await d.close();
    c.close();
  });

  it("aborts a connect with its AbortSignal", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(SpinesClient.connect(sock(1), { signal: ac.signal })).rejects.toMatchObject({
      name: "AbortError",
      code: "ABORT_ERR",
    });
    const ac2 = new AbortController();
    const s = connect({ node: 3, port: 5000, daemon: sock(1), signal: ac2.signal });
    ac2.abort();
    expect(await errorOf(s)).toMatchObject({ name: "AbortError" });
  });
});

describe("@spines-ts/client when the peer dies", () => {
  it("destroys the stream with ERR_TIMED_OUT once the dead peer is detected", async () => {
    const { nodes, stop } = await startOverlay([1, 2], [[1, 2]], {
      session: { keepaliveIntervalMs: 200, deadPeerTimeoutMs: 1500 },
    });
    try {
      const n1 = nodes.get(1) as Node;
      const n2 = nodes.get(2) as Node;
      const server = createServer({ daemon: { path: n2.socket } });
      server.on("error", () => {}); // node 2's daemon stops at the end
      const accepted = new Promise<SpinesStream>((r) => server.once("connection", r));
      await new Promise<void>((r) => server.listen(5000, r));
      const s = connect({ node: 2, port: 5000, daemon: { path: n1.socket } });
      await new Promise<void>((r) => s.once("connect", r));
      const peer = await accepted;
      peer.on("error", () => {}); // destroyed when node 2's daemon stops
      s.write("before");
      const first = await new Promise<Buffer>((r) => peer.once("data", r));
      expect(first.toString()).toBe("before");
      const err = errorOf(s);
      // Node 2 dies without a goodbye: its UDP socket closes, nothing more is sent.
      await n2.daemon.host.close();
      expect(await err).toMatchObject({ code: "ERR_TIMED_OUT" });
      expect(s.destroyed).toBe(true);
    } finally {
      await stop();
    }
  });
});
