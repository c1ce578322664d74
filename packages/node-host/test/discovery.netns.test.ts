import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

/**
 * Discovery between two network namespaces joined by a veth pair (real interfaces with the
 * MULTICAST and BROADCAST flags, unlike lo): IPv4 multicast, IPv4 broadcast and IPv6 multicast.
 * Needs root and iproute2; outside CI it skips without them, under CI=true it fails.
 */
const pkg = join(dirname(fileURLToPath(import.meta.url)), "..");
const tag = `h1d${process.pid % 100_000}`;
const nsA = `${tag}a`;
const nsB = `${tag}b`;
const net = 1 + (process.pid % 250);
const v4 = (i: number) => `10.202.${net}.${i}`;
const v6 = (i: number) => `fd00:202:${net.toString(16)}::${i}`;

function ip(...args: string[]): { ok: boolean; err: string } {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  return { ok: r.status === 0, err: `${r.stderr ?? ""}${r.error?.message ?? ""}` };
}

let setupError: string | undefined;

beforeAll(() => {
  if (process.getuid?.() !== 0) {
    setupError = "needs root";
    return;
  }
  const steps: string[][] = [
    ["netns", "add", nsA],
    ["netns", "add", nsB],
    ["link", "add", `${tag}x`, "type", "veth", "peer", "name", `${tag}y`],
    ["link", "set", `${tag}x`, "netns", nsA],
    ["link", "set", `${tag}y`, "netns", nsB],
    ["-n", nsA, "addr", "add", `${v4(1)}/24`, "brd", "+", "dev", `${tag}x`],
    ["-n", nsB, "addr", "add", `${v4(2)}/24`, "brd", "+", "dev", `${tag}y`],
    ["-n", nsA, "addr", "add", `${v6(1)}/64`, "dev", `${tag}x`, "nodad"],
    ["-n", nsB, "addr", "add", `${v6(2)}/64`, "dev", `${tag}y`, "nodad"],
    ["-n", nsA, "link", "set", `${tag}x`, "up"],
    ["-n", nsB, "link", "set", `${tag}y`, "up"],
    ["-n", nsA, "link", "set", "lo", "up"],
    ["-n", nsB, "link", "set", "lo", "up"],
  ];
  for (const s of steps) {
    const r = ip(...s);
    if (!r.ok) {
      setupError = `ip ${s.join(" ")}: ${r.err.trim()}`;
      return;
    }
  }
});

afterAll(() => {
  ip("netns", "del", nsA);
  ip("netns", "del", nsB);
});

function side(ns: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(
      "ip",
      ["netns", "exec", ns, process.execPath, "--import", "tsx", "test/netns-peer.mts", ...args],
      {
        cwd: pkg,
      },
    );
    let out = "";
    let err = "";
    c.stdout.on("data", (d) => (out += d));
    c.stderr.on("data", (d) => (err += d));
    c.on("close", (code) => resolve({ code, out, err }));
  });
}

const cases = [
  { name: "IPv4 multicast", group: "239.255.77.1", addr: v4, iface: v4, kind: "multicast" },
  { name: "IPv4 broadcast", group: `10.202.${net}.255`, addr: v4, iface: () => "", kind: "broadcast" },
  {
    name: "IPv6 multicast",
    group: "ff02::114",
    addr: v6,
    iface: (i: number) => `::%${tag}${i === 1 ? "x" : "y"}`,
    kind: "multicast",
  },
] as const;

describe("DiscoverySocket between network namespaces", () => {
  for (const c of cases) {
    it(`${c.name}: each side learns the other's unicast endpoint and greets it`, async (ctx) => {
      if (setupError !== undefined) {
        if (process.env.CI === "true") throw new Error(`netns test cannot run under CI: ${setupError}`);
        ctx.skip();
        return;
      }
      const port = "47200";
      const [a, b] = await Promise.all([
        side(nsA, ["1", "2", c.addr(1), c.group, port, c.iface(1)]),
        side(nsB, ["2", "1", c.addr(2), c.group, port, c.iface(2)]),
      ]);
      expect(a.err, "side a stderr").toBe("");
      expect(b.err, "side b stderr").toBe("");
      expect(a.code).toBe(0);
      expect(b.code).toBe(0);
      expect(JSON.parse(a.out)).toEqual({ id: 1, learnedFrom: `${c.addr(2)}:7000`, kind: c.kind });
      expect(JSON.parse(b.out)).toEqual({ id: 2, learnedFrom: `${c.addr(1)}:7000`, kind: c.kind });
    });
  }
});
