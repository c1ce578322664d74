/**
 * The control protocol and hostile input, against a daemon run in-process (the same
 * `WackamoleDaemon` the binary runs) with the dry-run driver: socket mode, replies to malformed
 * requests, bounded lines and connections, a client that never reads, garbage datagrams on the
 * membership port. The daemon must keep answering.
 */
import { createSocket } from "node:dgram";
import { existsSync, rmSync, statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { ControlClient } from "@spines-ts/daemon-kit";
import { silentLogger } from "@spines-ts/primitives";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseArgs, resolveConfig } from "../src/config.ts";
import { MAX_CONTROL_LINE } from "../src/control.ts";
import { WackamoleDaemon } from "../src/daemon.ts";
import { tmp, waitUntil, writeCluster } from "./helpers.ts";

const dir = tmp();
let daemon: WackamoleDaemon;
let control: string;

beforeAll(async () => {
  const [node] = await writeCluster(dir, 1, () => ({ limits: { maxControlConnections: 4 } }), 3);
  if (node === undefined) throw new Error("no node");
  control = node.control;
  const config = resolveConfig(parseArgs(["--config", node.config]));
  daemon = await WackamoleDaemon.start({ config, log: silentLogger });
});
afterAll(async () => {
  await daemon?.stop();
  rmSync(dir, { recursive: true, force: true });
});

function rawConnection(): Promise<{ sock: Socket; lines: string[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(control);
    const lines: string[] = [];
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      buf += d;
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        lines.push(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
      }
    });
    const closed = new Promise<void>((r) => sock.once("close", () => r()));
    sock.on("error", () => {});
    sock.once("connect", () => resolve({ sock, lines, closed }));
    sock.once("error", reject);
  });
}

describe("control socket", () => {
  it("is a socket of mode 0600", () => {
    const st = statSync(control);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
  });

  it("a single daemon holds every group once mature", async () => {
    const s = await waitUntil(
      () => daemon.status(),
      (s) => s.held.length === 3,
      "a lone node holding all 3 groups",
    );
    expect(s.view?.members).toEqual([1]);
    expect(daemon.list().every((e) => e.local && e.owner === 1)).toBe(true);
  });

  it("answers malformed requests with typed errors and stays usable", async () => {
    const c = await ControlClient.connect(control);
    try {
      expect((await c.raw("this is not json")).error?.code).toBe("ERR_CONTROL_BAD_JSON");
      expect((await c.raw("[1,2]")).error?.code).toBe("ERR_CONTROL_BAD_REQUEST");
      expect((await c.raw('{"id":1}')).error?.code).toBe("ERR_CONTROL_BAD_REQUEST");
      expect((await c.raw('{"id":2,"cmd":7}')).error?.code).toBe("ERR_CONTROL_BAD_REQUEST");
      const unknown = await c.raw('{"id":3,"cmd":"__proto__"}');
      expect(unknown.error?.code).toBe("ERR_CONTROL_UNKNOWN_COMMAND");
      expect(unknown.id).toBe(3);
      expect((await c.raw('{"id":4,"cmd":"status","extra":1}')).error?.code).toBe("ERR_CONTROL_BAD_ARGUMENT");
      expect((await c.raw('{"cmd":"constructor"}')).error?.code).toBe("ERR_CONTROL_UNKNOWN_COMMAND");
      const ok = await c.request("status");
      expect(ok.ok).toBe(true);
      expect((ok.result as { id: number }).id).toBe(1);
    } finally {
      c.close();
    }
  });

  it("bounds the line length: an over-long line gets one error, the next line is served", async () => {
    const { sock, lines } = await rawConnection();
    sock.write("x".repeat(MAX_CONTROL_LINE * 3));
    sock.write('\n{"id":9,"cmd":"list"}\n');
    await waitUntil(
      () => lines.length,
      (n) => n >= 2,
      "two replies",
    );
    expect(JSON.parse(lines[0] as string).error.code).toBe("ERR_CONTROL_LINE_TOO_LONG");
    const second = JSON.parse(lines[1] as string);
    expect(second.id).toBe(9);
    expect(second.ok).toBe(true);
    sock.destroy();
  });

  it("survives binary garbage, pipelined floods and a client that never reads", async () => {
    const g = await rawConnection();
    g.sock.write(Buffer.from([0, 255, 10, 0xc3, 0x28, 10, 13, 10]));
    await waitUntil(
      () => g.lines.length,
      (n) => n >= 2,
      "error replies to garbage",
    );
    g.sock.destroy();
    // a client that pipelines thousands of requests and never reads its replies
    const flood = await rawConnection();
    flood.sock.pause();
    flood.sock.write('{"cmd":"status"}\n'.repeat(20_000));
    // others are still served meanwhile
    const c = await ControlClient.connect(control);
    expect((await c.request("status")).ok).toBe(true);
    c.close();
    flood.sock.destroy();
  });

  it("bounds the connection count: past the limit a connection gets ERR_CONTROL_BUSY and is closed", async () => {
    const held = await Promise.all([rawConnection(), rawConnection(), rawConnection(), rawConnection()]);
    const extra = await rawConnection();
    await extra.closed;
    expect(JSON.parse(extra.lines[0] as string).error.code).toBe("ERR_CONTROL_BUSY");
    for (const h of held) h.sock.destroy();
    await Promise.all(held.map((h) => h.closed));
    await waitUntil(
      async () => {
        const c = await ControlClient.connect(control);
        try {
          return (await c.request("status")).ok;
        } finally {
          c.close();
        }
      },
      (ok) => ok,
      "service after the connections closed",
    );
  });

  it("garbage datagrams on the membership port are counted, never fatal", async () => {
    const s = createSocket("udp4");
    for (let i = 0; i < 200; i++) s.send(Buffer.from(`junk ${i} ${"z".repeat(i)}`), daemon.port, "127.0.0.1");
    s.send(Buffer.alloc(0), daemon.port, "127.0.0.1");
    await new Promise((r) => setTimeout(r, 200));
    s.close();
    const st = await waitUntil(
      () => daemon.status(),
      (st) => (st.counters.rxPackets ?? 0) >= 100,
      "the junk received",
    );
    expect(st.phase).toBe("run");
    expect(st.held.length).toBe(3);
  });

  it("stop releases every group and removes the socket file", async () => {
    await daemon.stop();
    expect(existsSync(join(dir, "n1.sock"))).toBe(false);
    expect([...daemon.vip.core.held]).toEqual([]);
    expect(daemon.counters.releases).toBe(daemon.counters.acquisitions);
  });
});
