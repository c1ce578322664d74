import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import {
  CLIENT_MAGIC,
  FrameBuilder,
  FrameDecoder,
  FrameReader,
  LinkType,
  Op,
} from "../src/client-protocol.ts";
import type { SpinesDaemon } from "../src/daemon.ts";
import { freeUdpPorts, inProcessConfig, startInProcess, tmp, waitFor } from "./helpers.ts";

/** Reads to the end of the stream without destroying it (for-await would abort the write side). */
function read(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = "";
    stream.on("data", (c: Buffer) => {
      s += c.toString();
    });
    stream.once("end", () => resolve(s));
    stream.once("error", reject);
  });
}

describe("client interface (in process)", () => {
  let a: SpinesDaemon;
  let b: SpinesDaemon;
  const dir = tmp();

  beforeAll(async () => {
    const [pa, pb] = (await freeUdpPorts(2)) as [number, number];
    a = await startInProcess(inProcessConfig(dir, 1, pa, [[2, pb]]));
    b = await startInProcess(inProcessConfig(dir, 2, pb, [[1, pa]]));
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
  });

  it("runs a session between two clients of one daemon, both directions, with half-close", async () => {
    const c1 = await SpinesClient.connect({ path: a.config.clientSocket as string });
    const c2 = await SpinesClient.connect({ path: a.config.clientSocket as string });
    expect(c1.node).toBe(1);
    const l = await c2.listen(5000);
    expect(l.port).toBe(5000);
    const [s, peer] = await Promise.all([c1.connect(1, 5000), l.accept()]);
    expect(peer.remotePort).toBe(s.localPort);
    const big = "x".repeat(300_000);
    s.end(`hello ${big}`);
    expect(await read(peer)).toBe(`hello ${big}`);
    peer.end("bye");
    expect(await read(s)).toBe("bye");
    await waitFor(() => a.sessions.sessions().length === 0, "sessions gone");
    c1.close();
    c2.close();
  });

  it("refuses a connect to a port nobody listens on, and a port in use", async () => {
    const c = await SpinesClient.connect({ path: a.config.clientSocket as string });
    await expect(c.connect(1, 4999)).rejects.toMatchObject({ code: "ERR_REFUSED" });
    await c.listen(6000);
    await expect(c.listen(6000)).rejects.toMatchObject({ code: "ERR_PORT_IN_USE" });
    const eph = await c.listen(0);
    expect(eph.port).toBeGreaterThanOrEqual(40000);
    c.close();
  });

  it("sends datagrams between daemons that are neighbours", async () => {
    const ca = await SpinesClient.connect({ path: a.config.clientSocket as string });
    const cb = await SpinesClient.connect({ path: b.config.clientSocket as string });
    const da = await ca.openDatagram(7000);
    const db = await cb.openDatagram(7001);
    const got: string[] = [];
    db.on("message", (data: Uint8Array, src: { node: number; port: number }) => {
      got.push(`${src.node}:${src.port}:${Buffer.from(data).toString()}`);
    });
    // Best-effort loopback UDP: resend until something arrives (no fixed sleeps).
    for (let i = 0; got.length === 0 && i < 200; i++) {
      da.send(2, 7001, Buffer.from("ping"));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(got[0]).toBe("1:7000:ping");
    // To a node that is not reachable: an error event, no crash.
    const err = new Promise((r) => ca.once("protocolError", r));
    da.send(99, 7001, Buffer.from("nowhere"));
    expect(await err).toMatchObject({ code: "ERR_UNREACHABLE" });
    ca.close();
    cb.close();
  });

  it("answers malformed frames with typed errors and keeps serving", async () => {
    const sock = connect(a.config.clientSocket as string);
    await new Promise((r) => sock.once("connect", r));
    const dec = new FrameDecoder();
    const frames: FrameReader[] = [];
    sock.on("data", (d) => {
      for (const f of dec.push(d)) frames.push(new FrameReader(f));
    });
    const next = async () => {
      await waitFor(() => frames.length > 0, "a frame");
      return frames.shift() as FrameReader;
    };
    const errorOf = async () => {
      const r = await next();
      expect(r.u8()).toBe(Op.Error);
      r.u32();
      return r.str8();
    };
    // Anything before HELLO is refused.
    sock.write(new FrameBuilder(Op.Ping).u32(1).finish());
    expect(await errorOf()).toBe("ERR_HELLO_REQUIRED");
    sock.write(new FrameBuilder(Op.Hello).u32(CLIENT_MAGIC).u8(9).finish());
    expect(await errorOf()).toBe("ERR_VERSION_MISMATCH");
    sock.write(new FrameBuilder(Op.Hello).u32(CLIENT_MAGIC).u8(1).finish());
    expect((await next()).u8()).toBe(Op.HelloOk);
    sock.write(new FrameBuilder(0x77 as Op).u32(1).finish());
    expect(await errorOf()).toBe("ERR_UNKNOWN_OP");
    sock.write(new FrameBuilder(Op.Listen).u32(2).u8(1).finish()); // too short
    expect(await errorOf()).toBe("ERR_BAD_FRAME");
    sock.write(new FrameBuilder(Op.Listen).u32(2).u16(0).u8(9).u16(1).finish());
    expect(await errorOf()).toBe("ERR_BAD_ARGUMENT");
    sock.write(new FrameBuilder(Op.Send).u32(12345).bytes(Uint8Array.of(1)).finish());
    expect(await errorOf()).toBe("ERR_BAD_HANDLE");
    sock.write(new FrameBuilder(Op.Connect).u32(3).u32(1).u16(0).u8(LinkType.Reliable).finish());
    expect(await errorOf()).toBe("ERR_BAD_ARGUMENT");
    // Still serving.
    sock.write(new FrameBuilder(Op.Ping).u32(4).finish());
    const ok = await next();
    expect(ok.u8()).toBe(Op.Ok);
    expect(ok.u32()).toBe(4);
    // A frame over the limit loses the framing: error, then the daemon hangs up.
    const closed = new Promise((r) => sock.once("close", r));
    sock.write(Uint8Array.of(0x7f, 0, 0, 0, Op.Ping));
    expect(await errorOf()).toBe("ERR_FRAME_TOO_LARGE");
    await closed;
    // Other clients are unaffected.
    const c = await SpinesClient.connect({ path: a.config.clientSocket as string });
    await c.ping();
    c.close();
    expect(a.clients.stats.protocolErrors).toBeGreaterThanOrEqual(7);
  });

  it("survives random well-framed requests and keeps serving", async () => {
    const { Rng } = await import("@spines-ts/primitives");
    const rng = new Rng(11);
    const sock = connect(a.config.clientSocket as string);
    await new Promise((r) => sock.once("connect", r));
    let replies = 0;
    const dec = new FrameDecoder(1 << 24);
    sock.on("data", (d) => {
      replies += dec.push(d).length;
    });
    sock.write(new FrameBuilder(Op.Hello).u32(CLIENT_MAGIC).u8(1).finish());
    for (let i = 0; i < 500; i++) {
      // Mostly known ops with random bodies, some unknown ops.
      const op = rng.chance(0.8) ? rng.intBetween(Op.Listen, Op.Ping) : rng.intBetween(0, 255);
      sock.write(new FrameBuilder(op as Op).bytes(rng.bytes(rng.intBetween(0, 24))).finish());
    }
    sock.write(new FrameBuilder(Op.Ping).u32(0xabcdef).finish());
    await waitFor(() => replies > 300, "replies to the random requests");
    const c = await SpinesClient.connect({ path: a.config.clientSocket as string });
    await c.ping();
    c.close();
    sock.destroy();
  });

  it("cleans up a client's handles when it disconnects", async () => {
    const c = await SpinesClient.connect({ path: a.config.clientSocket as string });
    const l = await c.listen(6100);
    const s = await c.connect(1, 6100);
    await l.accept();
    expect(a.sessions.sessions().length).toBeGreaterThanOrEqual(2);
    c.close();
    await waitFor(() => a.sessions.sessions().length === 0, "sessions closed after disconnect");
    expect(s.localPort).toBeGreaterThan(0);
    const c2 = await SpinesClient.connect({ path: a.config.clientSocket as string });
    await c2.listen(6100); // the port is free again
    c2.close();
  });
});

describe("client interface over localhost TCP", () => {
  it("serves the same protocol on --client-tcp", async () => {
    const dir = tmp();
    const [p] = (await freeUdpPorts(1)) as [number];
    const d = await startInProcess({
      ...inProcessConfig(dir, 9, p),
      clientSocket: undefined,
      clientTcp: { address: "127.0.0.1", port: 0 },
    });
    try {
      expect(d.bound.clientTcp).toBeGreaterThan(0);
      // TCP clients present the token the daemon wrote next to its control socket (docs/security.md).
      const token = readFileSync(d.bound.clientTokenFile as string, "utf8");
      const c = await SpinesClient.connect(
        { host: "127.0.0.1", port: d.bound.clientTcp as number },
        { token },
      );
      expect(c.node).toBe(9);
      await c.ping();
      const l = await c.listen(0);
      const [s, peer] = await Promise.all([c.connect(9, l.port), l.accept()]);
      s.end("tcp");
      expect(await read(peer)).toBe("tcp");
      c.close();
    } finally {
      await d.stop();
    }
  });
});
