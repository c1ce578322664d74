import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BatchSocket } from "../src/index.ts";

/**
 * The batched socket when the kernel's send buffer fills: a namespace whose only interface is a
 * veth end behind a 100 Mbit/s tbf, a 16 KiB socket buffer and 3,000 datagrams of 1,200 bytes sent
 * in one turn. The kernel takes part of the batch and refuses the rest (EAGAIN); the socket must
 * hold it, wait until writable and send it all, in order, dropping nothing. Needs root and
 * iproute2; outside CI it skips without them, under CI=true it fails.
 */
const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const ns = `h1b${process.pid % 100_000}`;
const N = 3000;

function run(...args: string[]): { ok: boolean; out: string; err: string } {
  const r = spawnSync(args[0] as string, args.slice(1), { encoding: "utf8" });
  return { ok: r.status === 0, out: r.stdout ?? "", err: `${r.stderr ?? ""}${r.error?.message ?? ""}` };
}

let setupError: string | undefined;

beforeAll(() => {
  if (process.getuid?.() !== 0) {
    setupError = "needs root";
    return;
  }
  if (!BatchSocket.available) {
    setupError = `no addon: ${BatchSocket.unavailableReason}`;
    return;
  }
  const steps: string[][] = [
    ["ip", "netns", "add", ns],
    ["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
    ["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "-n", ns, "addr", "add", "10.203.0.1/24", "dev", "v0"],
    ["ip", "-n", ns, "link", "set", "v0", "up"],
    ["ip", "-n", ns, "link", "set", "v1", "up"],
    ["ip", "-n", ns, "neigh", "add", "10.203.0.2", "lladdr", "02:00:00:00:00:02", "dev", "v0"],
    [
      "ip",
      "netns",
      "exec",
      ns,
      "tc",
      "qdisc",
      "add",
      "dev",
      "v0",
      "root",
      "tbf",
      "rate",
      "100mbit",
      "burst",
      "16kb",
      "limit",
      "64kb",
    ],
  ];
  for (const s of steps) {
    const r = run(...s);
    if (!r.ok) {
      setupError = `${s.join(" ")}: ${r.err.trim()}`;
      return;
    }
  }
});

afterAll(() => {
  run("ip", "netns", "del", ns);
});

describe("BatchSocket with a full send buffer", () => {
  it("holds what the kernel refused, sends it when writable, drops nothing", async (ctx) => {
    if (setupError !== undefined) {
      if (process.env.CI === "true") throw new Error(`netns test cannot run under CI: ${setupError}`);
      ctx.skip();
      return;
    }
    const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
      const c = spawn(
        "ip",
        [
          "netns",
          "exec",
          ns,
          process.execPath,
          "--import",
          "tsx",
          "test/batch-full.mts",
          "10.203.0.1",
          "10.203.0.2",
          String(N),
        ],
        { cwd: pkg },
      );
      let out = "";
      let err = "";
      c.stdout.on("data", (d) => (out += d));
      c.stderr.on("data", (d) => (err += d));
      c.on("close", (code) => resolve({ code, out, err }));
    });
    expect(r.err).toBe("");
    expect(r.code).toBe(0);
    const st = JSON.parse(r.out) as {
      txBatches: number;
      txQueueDrops: number;
      errors: string[];
      sentAtFirst: number;
    };
    expect(st.errors).toEqual([]);
    expect(st.txQueueDrops).toBe(0);
    // one turn's sends, yet more than one send call: the kernel refused part of the batch, and
    // the socket waited for writable and called again
    expect(st.txBatches).toBeGreaterThan(1);
    // every datagram left through the interface
    const q = run("ip", "netns", "exec", ns, "tc", "-s", "qdisc", "show", "dev", "v0");
    const sent = Number(/Sent \d+ bytes (\d+) pkt/.exec(q.out)?.[1] ?? -1);
    expect(sent, q.out).toBe(N);
  }, 30_000);
});
