/**
 * Real-kernel tests: need root (network namespaces, TUN). Under CI=true they fail when they cannot
 * run; elsewhere they are skipped without root. Timing assertions are loose on purpose (timing
 * goals belong in benchmarks).
 */
import type { ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canRun, NetlabError, requireRoot, stateDir, Testbed } from "../src/index.ts";
import { alive, run, sleep } from "../src/proc.ts";

const mustRun = process.env.CI === "true" || canRun();

/** Everything with a prefix that a testbed can leave behind. */
async function leftovers(prefix: string): Promise<string[]> {
  const found: string[] = [];
  const ns = await run(["ip", "netns", "list"]);
  for (const l of ns.stdout.split("\n")) if (l.startsWith(`${prefix}-`)) found.push(`netns ${l}`);
  const links = await run(["ip", "-o", "link", "show"]);
  for (const l of links.stdout.split("\n"))
    if (new RegExp(`^\\d+: ${prefix}\\d`).test(l)) found.push(`link ${l}`);
  const ps = await run(["ps", "-eo", "pid,args"]);
  for (const l of ps.stdout.split("\n")) {
    if (l.includes(`tun-name=${prefix}`) || l.includes(`netlab-${prefix}/emulator`))
      found.push(`process ${l.trim()}`);
  }
  if (existsSync(stateDir(prefix))) found.push(`state dir ${stateDir(prefix)}`);
  return found;
}

function pingStats(out: string): { sent: number; received: number; avgMs: number } {
  const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(out);
  return { sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), avgMs: Number(rtt?.[1] ?? Number.NaN) };
}

function readCmd(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

function procState(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0] ?? "?";
  } catch {
    return "gone";
  }
}

describe.runIf(mustRun)("Testbed on a real kernel", () => {
  const prefix = "nltest";
  let tb: Testbed;

  beforeAll(async () => {
    requireRoot();
    await Testbed.cleanup(prefix);
    // a —(10 ms emulated)— b —(emulated, 0 ms)— c, and a LAN joining c and d
    tb = await Testbed.create({
      prefix,
      hosts: ["a", "b", "c", "d"],
      links: [
        { a: "a", b: "b", delayMs: 10, subnet: "10.201.1.0/30" },
        { a: "b", b: "c", subnet: "10.201.2.0/30" },
      ],
      lans: [{ name: "lan0", hosts: ["c", "d"], subnet: "10.201.3.0/24", subnet6: "fd42::/64" }],
    });
  });
  afterAll(async () => {
    await tb?.destroy();
  });

  it("gives addresses and interfaces as planned", async () => {
    expect(tb.hostAddress("a", "a-b")).toBe("10.201.1.1");
    expect(tb.hostAddress("d", "lan0")).toBe("10.201.3.2");
    expect(tb.hostAddress6("d", "lan0")).toBe("fd42::2");
    expect(tb.iface("b", "a-b")).toBe("to-a");
    expect(tb.mac("d", "lan0")).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
    const r = await tb.exec("d", ["ip", "-o", "addr", "show", "dev", "eth-lan0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("10.201.3.2/24");
    expect(() => tb.hostAddress("zz", "lan0")).toThrow(NetlabError);
  });

  it("an emulated 10 ms link gives a ping RTT of about 2 × 10 ms", async () => {
    const r = await tb.exec("a", ["ping", "-c", "5", "-i", "0.05", "-W", "2", tb.hostAddress("b", "a-b")]);
    const s = pingStats(r.stdout);
    expect(s.received, r.stdout + r.stderr).toBe(5);
    expect(s.avgMs).toBeGreaterThanOrEqual(20);
    expect(s.avgMs).toBeLessThan(200);
  });

  it("drops about the configured fraction", async () => {
    await tb.setLink("b-c", { lossPct: 30 }, "ab");
    const before = (await tb.linkStats())["b-c"] as { ab: { received: number; droppedLoss: number } };
    const r = await tb.exec("b", [
      "ping",
      "-q",
      "-c",
      "300",
      "-i",
      "0.002",
      "-W",
      "1",
      tb.hostAddress("c", "b-c"),
    ]);
    await tb.setLink("b-c", { lossPct: 0 });
    const s = pingStats(r.stdout);
    expect(s.sent).toBe(300);
    const loss = 1 - s.received / s.sent;
    expect(loss).toBeGreaterThan(0.18);
    expect(loss).toBeLessThan(0.42);
    const after = (await tb.linkStats())["b-c"] as { ab: { received: number; droppedLoss: number } };
    // the emulator dropped every lost ping (and perhaps a few kernel packets, e.g. IPv6 router solicitations)
    const dropped = after.ab.droppedLoss - before.ab.droppedLoss;
    expect(dropped).toBeGreaterThanOrEqual(s.sent - s.received);
    expect(dropped).toBeLessThanOrEqual(s.sent - s.received + 5);
  });

  it("kernel TCP crosses two routed hops (a → b → c → d)", async () => {
    const server = tb.spawn("d", [
      process.execPath,
      "-e",
      "require('net').createServer((s) => s.pipe(s)).listen(5201, '0.0.0.0', () => console.log('up'))",
    ]);
    await new Promise<void>((resolve) => server.stdout?.once("data", () => resolve()));
    const client = [
      "const s = require('net').connect(5201, process.argv[1]);",
      "const data = Buffer.alloc(300000, 7); let got = 0;",
      "s.on('data', (d) => { got += d.length; if (got >= data.length) { console.log(got); s.destroy(); } });",
      "s.write(data);",
    ].join("\n");
    const r = await tb.exec("a", [process.execPath, "-e", client, tb.hostAddress("d", "lan0")], {
      timeoutMs: 20_000,
    });
    tb.kill(server);
    expect(r.stderr).toBe("");
    expect(Number(r.stdout.trim())).toBe(300000);
    const tr = await tb.exec("a", ["ip", "route", "get", tb.hostAddress("d", "lan0")]);
    expect(tr.stdout).toContain("via 10.201.1.2");
  });

  it("link down/up and partition/heal cut and restore traffic", async () => {
    // reachable: any reply within three tries of 3 s (a loaded machine can be slow); cut: no reply in 1 s
    const ping = async (from: string, to: string) => {
      for (let i = 0; i < 3; i++)
        if ((await tb.exec(from, ["ping", "-c", "1", "-W", "3", to])).code === 0) return true;
      return false;
    };
    const cut = async (from: string, to: string) =>
      (await tb.exec(from, ["ping", "-c", "1", "-W", "1", to])).code !== 0;
    const b = tb.hostAddress("b", "a-b");
    const d = tb.hostAddress("d", "lan0");
    expect(await ping("a", b)).toBe(true);
    await tb.linkDown("a", "a-b");
    expect(await cut("a", b)).toBe(true);
    await tb.linkUp("a", "a-b");
    expect(await ping("a", b)).toBe(true);

    await tb.linkDown("d", "lan0");
    expect(await cut("c", d)).toBe(true);
    await tb.linkUp("d", "lan0");
    expect(await ping("c", d)).toBe(true);

    await tb.partition([["a", "b", "c"], ["d"]]);
    expect(await cut("c", d)).toBe(true);
    expect(await ping("a", tb.hostAddress("c", "b-c"))).toBe(true);
    await tb.partition([["a"], ["b", "c", "d"]]);
    expect(await cut("a", b)).toBe(true);
    expect(await ping("c", d)).toBe(true);
    await tb.heal();
    expect(await ping("a", b)).toBe(true);
    expect(await ping("a", d)).toBe(true);
  });

  it("adds and removes a tbf bottleneck", async () => {
    await tb.shape("c", "lan0", { rateMbit: 5, latencyMs: 20 });
    const on = await tb.exec("c", ["tc", "qdisc", "show", "dev", tb.iface("c", "lan0")]);
    expect(on.stdout).toMatch(/tbf .*rate 5Mbit/);
    await tb.unshape("c", "lan0");
    const off = await tb.exec("c", ["tc", "qdisc", "show", "dev", tb.iface("c", "lan0")]);
    expect(off.stdout).not.toContain("tbf");
  });

  it("pauses, resumes, kills and restarts processes", async () => {
    // polls: on a loaded machine a state change can take a while to show in /proc
    // returns the state that satisfied `ok` (a second read could catch a passing D state of a process that is exec-ing)
    const until = async (pid: number, ok: (state: string) => boolean) => {
      let st = procState(pid);
      for (let i = 0; i < 100 && !ok(st); i++) {
        await sleep(50);
        st = procState(pid);
      }
      return st;
    };
    const running = (st: string) => st === "S" || st === "R";
    let p: ChildProcess = tb.spawn("c", ["sleep", "30"]);
    const pid = p.pid as number;
    for (let i = 0; i < 100 && !readCmd(pid).startsWith("sleep"); i++) await sleep(50);
    expect(await until(pid, running)).toMatch(/^[SR]$/);
    tb.pause(p);
    expect(await until(pid, (st) => st === "T")).toBe("T");
    tb.resume(p);
    expect(await until(pid, running)).toMatch(/^[SR]$/);
    p = await tb.restart(p);
    expect(alive(pid)).toBe(false);
    expect(p.pid).not.toBe(pid);
    expect(await until(p.pid as number, running)).toMatch(/^[SR]$/);
    const gone = new Promise((r) => p.once("exit", r));
    tb.kill(p);
    await gone;
    expect(alive(p.pid as number)).toBe(false);
  });

  it("destroy leaves nothing with the prefix, and is idempotent", async () => {
    expect((await leftovers(prefix)).length).toBeGreaterThan(0);
    await tb.destroy();
    await tb.destroy();
    expect(await leftovers(prefix)).toEqual([]);
    await expect(tb.linkDown("a", "a-b")).rejects.toThrow(NetlabError);
  });
});

describe.runIf(mustRun)("cleanup after a crash", () => {
  it("removes a testbed whose owner and emulator died", async () => {
    requireRoot();
    const prefix = "nlcrash";
    await Testbed.cleanup(prefix);
    const tb = await Testbed.create({
      prefix,
      hosts: ["x", "y"],
      links: [{ a: "x", b: "y", delayMs: 1 }],
    });
    expect((await tb.exec("x", ["ping", "-c", "1", "-W", "3", tb.hostAddress("y", "x-y")])).code).toBe(0);
    const sleeper = tb.spawn("y", ["sleep", "60"]);
    const emu = tb.emulatorPid as number;
    expect(alive(emu)).toBe(true);
    process.kill(emu, "SIGKILL"); // the emulator crashes ...
    await sleep(100);
    expect((await tb.exec("x", ["ping", "-c", "1", "-W", "1", tb.hostAddress("y", "x-y")])).code).not.toBe(0);
    // ... and the owner forgets the testbed (as a crashed test would): only the prefix is known.
    expect((await leftovers(prefix)).length).toBeGreaterThan(0);
    await Testbed.cleanup(prefix);
    expect(await leftovers(prefix)).toEqual([]);
    expect(alive(sleeper.pid as number)).toBe(false);
  });
});

describe("requireRoot", () => {
  it("passes as root and throws ERR_NOT_ROOT otherwise", () => {
    if (canRun()) expect(() => requireRoot()).not.toThrow();
    else expect(() => requireRoot()).toThrow(/ERR_NOT_ROOT|ERR_MISSING_TOOL/);
  });
});
