/**
 * Hostile local clients against spawned daemons (issue 12): connections reset past the client
 * limit, clients that never read their replies, SIGTERM with refused connections still open, and
 * `--client-tcp` without its token. Each scenario reproduces a finding that crashed, bloated or hung
 * the daemon before the bounds of docs/security.md.
 */
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { SpinesClient } from "@spines-ts/client";
import { afterEach, describe, expect, it } from "vitest";
import { freeTcpPort, freeUdpPorts, type Spawned, spawnDaemon, tmp } from "./helpers.ts";

const spawned: Spawned[] = [];
const sockets: Socket[] = [];

afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const d of spawned.splice(0)) if (d.proc.exitCode === null) d.proc.kill("SIGKILL");
});

async function daemon(extra: string[] = []): Promise<{ d: Spawned; dir: string; tcp: number }> {
  const dir = tmp();
  const [udp] = (await freeUdpPorts(1)) as [number];
  const tcp = await freeTcpPort();
  const control = join(dir, "n.ctl");
  const d = await spawnDaemon(
    [
      "--id",
      "1",
      "--listen",
      `127.0.0.1:${udp}`,
      "--control",
      control,
      "--client-socket",
      join(dir, "n.sock"),
      "--client-tcp",
      `127.0.0.1:${tcp}`,
      "--log-level",
      "warn",
      ...extra,
    ],
    control,
  );
  spawned.push(d);
  return { d, dir, tcp };
}

/** Resident set size of a process in bytes (Linux /proc). */
function rss(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}

async function status(d: Spawned): Promise<Record<string, unknown>> {
  const c = await d.ctl();
  try {
    const r = await c.request("status");
    return r.result as Record<string, unknown>;
  } finally {
    c.close();
  }
}

function open(port: number, path?: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = path !== undefined ? connect(path) : connect(port, "127.0.0.1");
    sockets.push(s);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const HELLO = Buffer.concat([u32(6), Buffer.from([0x01]), u32(0x5350434c), Buffer.from([1])]);

/** Opens `n` idle TCP client connections and waits until the daemon counts `expect` clients. */
async function fill(d: Spawned, tcp: number, n: number, expected: number): Promise<Socket[]> {
  const out: Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = await open(tcp);
    s.on("error", () => {});
    out.push(s);
  }
  let clients = -1;
  for (let i = 0; i < 200 && clients !== expected; i++) {
    clients = (await status(d)).clients as number;
    if (clients !== expected) await new Promise((r) => setTimeout(r, 25));
  }
  expect(clients).toBe(expected);
  return out;
}

/**
 * Writes `chunk` to `sock` without reading anything back, until `totalBytes` are written, the
 * daemon disconnects, or `ms` pass. Returns what was written, whether the daemon closed the
 * connection, and the daemon's peak RSS growth; gives up early once the growth passes `abortGrowth`
 * (the unbounded daemon would take the machine's memory).
 */
async function flood(
  sock: Socket,
  chunk: Buffer,
  pid: number,
  opts: { totalBytes: number; ms: number; abortGrowth: number },
): Promise<{ written: number; closed: boolean; growth: number }> {
  const base = rss(pid);
  let growth = 0;
  let closed = false;
  sock.on("error", () => {});
  sock.once("close", () => {
    closed = true;
  });
  sock.pause(); // never read
  const t0 = Date.now();
  let written = 0;
  const sample = setInterval(() => {
    try {
      growth = Math.max(growth, rss(pid) - base);
    } catch {
      // the daemon is gone; the test reports it
    }
  }, 50);
  try {
    while (!closed && written < opts.totalBytes && Date.now() - t0 < opts.ms && growth < opts.abortGrowth) {
      if (sock.writableLength > 0) {
        // The daemon is not reading: wait (we never queue more than one chunk here).
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      sock.write(chunk);
      written += chunk.length;
    }
    // A daemon that paused our input disconnects us within its stall bound.
    const until = Date.now() + 15_000;
    while (!closed && growth < opts.abortGrowth && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    clearInterval(sample);
  }
  growth = Math.max(growth, rss(pid) - base);
  return { written, closed, growth };
}

const MB = 1 << 20;

describe("hostile local clients (spawned daemon)", () => {
  it("survives connections past the client limit that close with a reset", async () => {
    const { d, tcp } = await daemon();
    await fill(d, tcp, 256, 256);
    const extra: Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const s = await open(tcp);
      s.on("error", () => {});
      s.write(Buffer.alloc(1000, 0x41));
      extra.push(s);
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of extra) s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 500));
    expect(d.proc.exitCode, d.stderr()).toBeNull();
    const st = await status(d);
    const cp = (st.counters as { clientProtocol: { refused: number } }).clientProtocol;
    expect(cp.refused).toBeGreaterThanOrEqual(40);
  }, 60_000);

  it("exits within 5 s of SIGTERM with refused connections that sent data still open", async () => {
    const { d, tcp } = await daemon();
    await fill(d, tcp, 256, 256);
    for (let i = 0; i < 20; i++) {
      const s = await open(tcp);
      s.on("error", () => {});
      s.pause();
      s.write(Buffer.alloc(64 * 1024, 0x41));
    }
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    d.proc.kill("SIGTERM");
    const r = await Promise.race([
      d.exited,
      new Promise<"hung">((res) => setTimeout(() => res("hung"), 5_000)),
    ]);
    expect(r, `still running ${Date.now() - t0} ms after SIGTERM`).toEqual({ code: 0, signal: null });
  }, 60_000);

  it("bounds the memory of a client that sends PINGs and never reads, then disconnects it", async () => {
    const { d, dir } = await daemon();
    const s = await open(0, join(dir, "n.sock"));
    s.write(HELLO);
    const ping = Buffer.concat([u32(5), Buffer.from([0x09]), u32(7)]);
    const chunk = Buffer.concat(Array.from({ length: MB / ping.length }, () => ping));
    const pid = d.proc.pid as number;
    const r = await flood(s, chunk, pid, { totalBytes: 200 * MB, ms: 60_000, abortGrowth: 400 * MB });
    expect(d.proc.exitCode, d.stderr()).toBeNull();
    if (process.env.SPINES_TEST_VERBOSE) console.info(`${expect.getState().currentTestName}:`, r);
    expect(
      r.growth,
      `RSS grew ${(r.growth / MB).toFixed(0)} MiB after ${(r.written / MB).toFixed(0)} MiB of PINGs`,
    ).toBeLessThan(100 * MB);
    expect(r.closed, "the non-reading client was disconnected").toBe(true);
    const cp = (await status(d)).counters as { clientProtocol: Record<string, number> };
    expect(cp.clientProtocol.disconnectedSlowClient).toBeGreaterThanOrEqual(1);
    expect((await status(d)).clients).toBe(0);
  }, 120_000);

  it("bounds the memory of a control client that sends status and never reads, then disconnects it", async () => {
    const { d, dir } = await daemon();
    const s = await open(0, join(dir, "n.ctl"));
    const line = Buffer.from('{"cmd":"status"}\n');
    const chunk = Buffer.concat(Array.from({ length: Math.floor(MB / line.length) }, () => line));
    const pid = d.proc.pid as number;
    const r = await flood(s, chunk, pid, { totalBytes: 200 * MB, ms: 60_000, abortGrowth: 400 * MB });
    expect(d.proc.exitCode, d.stderr()).toBeNull();
    if (process.env.SPINES_TEST_VERBOSE) console.info(`${expect.getState().currentTestName}:`, r);
    expect(
      r.growth,
      `RSS grew ${(r.growth / MB).toFixed(0)} MiB after ${(r.written / MB).toFixed(0)} MiB of status requests`,
    ).toBeLessThan(100 * MB);
    expect(r.closed, "the non-reading control client was disconnected").toBe(true);
    const st = await status(d);
    const ctl = (st.counters as { control: Record<string, number> }).control;
    expect(ctl.disconnectedSlowClient).toBeGreaterThanOrEqual(1);
  }, 120_000);

  it("refuses a --client-tcp HELLO without the token and accepts the token file's", async () => {
    const { d, dir, tcp } = await daemon();
    const s = await open(tcp);
    const got: Buffer[] = [];
    s.on("data", (b: Buffer) => got.push(b));
    const closed = new Promise<void>((r) => s.once("close", () => r()));
    s.on("error", () => {});
    s.write(HELLO);
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    const reply = Buffer.concat(got);
    expect(reply.length).toBeGreaterThan(5);
    expect(reply[4], "an ERROR frame, not HELLO_OK").not.toBe(0x81);
    expect(reply.toString("latin1")).toContain("ERR_UNAUTHORIZED");
    expect(s.destroyed || s.readableEnded).toBe(true);

    const tokenFile = join(dir, "n.ctl.token");
    expect(existsSync(tokenFile)).toBe(true);
    expect(statSync(tokenFile).mode & 0o777).toBe(0o600);
    const token = readFileSync(tokenFile, "utf8").trim();
    await expect(
      SpinesClient.connect({ host: "127.0.0.1", port: tcp }, { token: "0".repeat(64) }),
    ).rejects.toMatchObject({ code: "ERR_UNAUTHORIZED" });
    const c = await SpinesClient.connect({ host: "127.0.0.1", port: tcp }, { token });
    expect(c.node).toBe(1);
    await c.close();
    // The Unix client socket (mode 0600) needs no token.
    const u = await SpinesClient.connect({ path: join(dir, "n.sock") });
    await u.close();
    expect(d.proc.exitCode).toBeNull();
    // The generated token file goes with the daemon.
    d.proc.kill("SIGTERM");
    expect(await d.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(tokenFile)).toBe(false);
  }, 60_000);

  it("takes the --client-tcp token from --client-token FILE, and refuses to start with a short one", async () => {
    const keys = tmp();
    const good = join(keys, "good.token");
    writeFileSync(good, "correct horse battery staple\n", { mode: 0o600 });
    const { dir, tcp } = await daemon(["--client-token", good]);
    expect(existsSync(join(dir, "n.ctl.token")), "no token generated when one is given").toBe(false);
    const c = await SpinesClient.connect(
      { host: "127.0.0.1", port: tcp },
      { token: "correct horse battery staple" },
    );
    expect(c.node).toBe(1);
    await c.close();
    await expect(
      SpinesClient.connect({ host: "127.0.0.1", port: tcp }, { token: "wrong horse battery staple" }),
    ).rejects.toMatchObject({ code: "ERR_UNAUTHORIZED" });

    const short = join(keys, "short.token");
    writeFileSync(short, "abc\n", { mode: 0o600 });
    await expect(daemon(["--client-token", short])).rejects.toThrow(/shorter than 16/);
  }, 60_000);
});
