/**
 * How a SpinesStream ends its session (docs/client-protocol.md CLOSE): a stream whose both
 * directions ended cleanly (it ended its side, and read the peer's end) is released with a graceful
 * CLOSE how=0, so the daemon still delivers what it has not sent yet; only a stream destroyed before
 * that (or with an error) resets the session (how=2). Before, the auto-destroy after a clean
 * half-close sent a reset, which discarded the reply still waiting in the daemon (issue 10).
 */
import { mkdtempSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SpinesClient } from "../src/client.ts";
import { CloseHow, FrameBuilder, FrameDecoder, FrameReader, Op } from "../src/protocol.ts";

const HANDLE = 5;

/** A daemon that opens every session at once and records each CLOSE's `how`. */
async function fakeDaemon(): Promise<{
  path: string;
  closes: number[];
  conn: () => Socket;
  server: Server;
}> {
  const path = join(mkdtempSync(join(tmpdir(), "spc-")), "d.sock");
  const closes: number[] = [];
  let socket: Socket | undefined;
  const server = createServer((s) => {
    socket = s;
    const dec = new FrameDecoder();
    s.on("data", (chunk: Buffer) => {
      for (const f of dec.push(chunk)) {
        const r = new FrameReader(f);
        const op = r.u8();
        if (op === Op.Hello) {
          s.write(
            new FrameBuilder(Op.HelloOk)
              .u8(1)
              .u32(9)
              .u32(1 << 20)
              .finish(),
          );
        } else if (op === Op.Connect) {
          const req = r.u32();
          s.write(new FrameBuilder(Op.Ok).u32(req).u32(HANDLE).u16(40000).finish());
        } else if (op === Op.Close) {
          const req = r.u32();
          r.u32();
          closes.push(r.u8());
          s.write(new FrameBuilder(Op.Ok).u32(req).finish());
        }
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
  return { path, closes, conn: () => socket as Socket, server };
}

const tick = () => new Promise((r) => setTimeout(r, 20));

describe("SpinesStream close", () => {
  let cleanup: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await cleanup?.();
    cleanup = undefined;
  });

  async function open() {
    const d = await fakeDaemon();
    const c = await SpinesClient.connect({ path: d.path });
    const s = await c.connect(3, 5000);
    cleanup = async () => {
      c.close();
      await new Promise<void>((r) => d.server.close(() => r()));
      d.conn()?.destroy();
    };
    return { d, s };
  }

  it("closes gracefully (how=0), not reset, after ending its side and reading the peer's end", async () => {
    const { d, s } = await open();
    s.on("data", () => {});
    const ended = new Promise((r) => s.once("end", r));
    d.conn().write(new FrameBuilder(Op.End).u32(HANDLE).finish());
    await ended;
    s.end("reply");
    await new Promise((r) => s.once("close", r));
    await tick();
    expect(d.closes).toEqual([CloseHow.ShutdownWrite, CloseHow.Close]);
  });

  it("resets (how=2) when destroyed before the peer's end, even after ending its side", async () => {
    const { d, s } = await open();
    s.on("data", () => {});
    s.end("request");
    await new Promise((r) => s.once("finish", r));
    s.destroy();
    await tick();
    expect(d.closes).toEqual([CloseHow.ShutdownWrite, CloseHow.Reset]);
  });

  it("resets (how=2) when destroyed while open", async () => {
    const { d, s } = await open();
    s.destroy();
    await tick();
    expect(d.closes).toEqual([CloseHow.Reset]);
  });
});
