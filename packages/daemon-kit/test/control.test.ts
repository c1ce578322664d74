import { mkdtempSync, rmSync, statSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "@spines-ts/primitives";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  argNumber,
  argString,
  ControlError,
  ControlServer,
  type ControlServerOptions,
} from "../src/control.ts";
import { ControlClient } from "../src/control-client.ts";

let dir: string;
let srv: ControlServer | undefined;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "daemon-kit-ctl-"));
});
afterEach(async () => {
  vi.useRealTimers();
  await srv?.close();
  srv = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const commands = {
  add: (a: Record<string, unknown>) => argNumber(a, "x", { min: 0 }) + argNumber(a, "y"),
  hello: (a: Record<string, unknown>) => `hello ${argString(a, "name")}`,
  slow: async () => {
    await new Promise((r) => setImmediate(r));
    return "late";
  },
  refuse: () => {
    throw new ControlError("ERR_NOT_RUNNING", "not now");
  },
  crash: () => {
    throw new Error("bug");
  },
  cycle: () => {
    const o: Record<string, unknown> = {};
    o.self = o;
    return o;
  },
  big: () => "z".repeat(256 * 1024),
};

async function start(opts: Partial<ControlServerOptions> = {}): Promise<string> {
  const path = join(dir, "sub", "ctl.sock");
  srv = new ControlServer({ commands, log: silentLogger, maxConnections: 2, dirMode: 0o700, ...opts });
  await srv.listen(path);
  return path;
}

function raw(path: string): Promise<{ sock: Socket; lines: string[]; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect(path);
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

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 20_000 && !cond(); i++) await new Promise((r) => setImmediate(r));
}

describe("ControlServer and ControlClient", () => {
  it("listens 0600 in a folder it creates 0700, and answers in order", async () => {
    const path = await start();
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "sub")).mode & 0o777).toBe(0o700);
    const c = await ControlClient.connect(path);
    try {
      const replies = await Promise.all([
        c.request("slow"),
        c.call("add", { x: 1, y: 2 }),
        c.call("hello", { name: "kit" }),
      ]);
      expect(replies[0]).toMatchObject({ ok: true, result: "late" });
      expect(replies.slice(1)).toEqual([3, "hello kit"]);
      await expect(c.call("refuse")).rejects.toMatchObject({ code: "ERR_NOT_RUNNING", message: "not now" });
      await expect(c.call("add", { x: -1, y: 2 })).rejects.toMatchObject({
        code: "ERR_CONTROL_BAD_ARGUMENT",
      });
      await expect(c.call("crash")).rejects.toMatchObject({ code: "ERR_CONTROL_INTERNAL" });
      await expect(c.call("cycle")).rejects.toMatchObject({ code: "ERR_CONTROL_INTERNAL" });
    } finally {
      c.close();
    }
  });

  it("answers malformed requests with typed errors and stays usable", async () => {
    const c = await ControlClient.connect(await start());
    try {
      expect((await c.raw("not json")).error?.code).toBe("ERR_CONTROL_BAD_JSON");
      expect((await c.raw("[1]")).error?.code).toBe("ERR_CONTROL_BAD_REQUEST");
      expect(await c.raw('{"id":5}')).toMatchObject({
        id: 5,
        ok: false,
        error: { code: "ERR_CONTROL_BAD_REQUEST" },
      });
      const unknown = await c.raw(`{"id":6,"cmd":"${"q".repeat(1000)}"}`);
      expect(unknown.error?.code).toBe("ERR_CONTROL_UNKNOWN_COMMAND");
      expect(unknown.error?.message.length).toBeLessThan(200);
      expect((await c.raw('{"cmd":"__proto__"}')).error?.code).toBe("ERR_CONTROL_UNKNOWN_COMMAND");
      expect(await c.call("add", { x: 2, y: 2 })).toBe(4);
      expect(srv?.stats).toMatchObject({ connections: 1, requests: 6, errors: 5 });
    } finally {
      c.close();
    }
  });

  it("bounds the line: one error for an over-long line, the next line is served", async () => {
    const path = await start({ maxLineBytes: 1024 });
    const { sock, lines } = await raw(path);
    sock.write("x".repeat(5000));
    sock.write('\n{"id":9,"cmd":"add","x":1,"y":1}\n');
    await until(() => lines.length >= 2);
    expect(JSON.parse(lines[0] as string).error.code).toBe("ERR_CONTROL_LINE_TOO_LONG");
    expect(JSON.parse(lines[1] as string)).toEqual({ id: 9, ok: true, result: 2 });
    sock.destroy();
  });

  it("refuses connections past maxConnections with ERR_CONTROL_BUSY", async () => {
    const path = await start();
    const held = [await raw(path), await raw(path)];
    const extra = await raw(path);
    await extra.closed;
    expect(JSON.parse(extra.lines[0] as string).error.code).toBe("ERR_CONTROL_BUSY");
    expect(srv?.stats.refused).toBe(1);
    for (const h of held) h.sock.destroy();
  });

  it("pauses a client that does not read its replies, then disconnects it after stallMs", async () => {
    const path = await start({ maxQueueBytes: 1 << 20, stallMs: 10_000 });
    const { sock, closed } = await raw(path);
    sock.pause(); // never read
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    sock.write('{"cmd":"big"}\n'.repeat(64));
    await until(() => (srv?.stats.pausedSlowClient ?? 0) > 0);
    expect(srv?.stats.pausedSlowClient).toBe(1);
    const answered = srv?.stats.requests ?? 0;
    expect(answered).toBeLessThan(64); // the rest waits: no replies are made for a paused client
    await vi.advanceTimersByTimeAsync(10_000 - 1);
    expect(srv?.stats.disconnectedSlowClient).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(srv?.stats.disconnectedSlowClient).toBe(1);
    await until(() => srv?.stats.connections === 0);
    expect(srv?.stats.connections).toBe(0);
    sock.resume(); // reads what was sent before the hang-up, then sees it
    await closed;
  });
});

describe("ControlServer: a pipelined burst does not starve the event loop", () => {
  it("answers thousands of pipelined requests in slices, with the event loop running in between", async () => {
    let handled = 0;
    const ticks: number[] = [];
    const path = join(dir, "burst.sock");
    srv = new ControlServer({
      commands: {
        n: () => {
          handled++;
          return handled;
        },
      },
      log: silentLogger,
      maxConnections: 2,
    });
    await srv.listen(path);
    const timer = setInterval(() => ticks.push(handled), 0);
    const { sock, lines } = await raw(path);
    const N = 2000;
    sock.write(`${Array.from({ length: N }, (_, i) => JSON.stringify({ id: i, cmd: "n" })).join("\n")}\n`);
    await vi.waitFor(() => expect(lines.length).toBe(N), { timeout: 60_000, interval: 20 });
    clearInterval(timer);
    sock.destroy();
    // the timer ran while the burst was being answered, not only before or after it
    expect(ticks.some((h) => h > 0 && h < N)).toBe(true);
    expect(JSON.parse(lines.at(-1) as string).result).toBe(N);
  });
});
