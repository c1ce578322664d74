import { afterEach, describe, expect, it } from "vitest";
import { CommandWorker } from "../src/command-worker.ts";
import { LoopMonitor } from "../src/loop-monitor.ts";

const quiet: Record<string, unknown> = { debug() {}, info() {}, warn() {}, error() {} };
quiet.child = () => quiet;

describe("CommandWorker: commands run from a worker thread", () => {
  let w: CommandWorker | undefined;
  afterEach(async () => {
    await w?.close();
    w = undefined;
  });

  it("runs argv without a shell and reports stdout, stderr and the exit code", async () => {
    w = new CommandWorker();
    const ok = await w.exec(["/bin/sh", "-c", "echo out; echo err >&2"]);
    expect(ok).toEqual({ code: 0, stdout: "out\n", stderr: "err\n" });
    const bad = await w.exec(["/bin/sh", "-c", "exit 3"]);
    expect(bad.code).toBe(3);
    const missing = await w.exec(["/nonexistent/command"]);
    expect(missing.code).not.toBe(0);
    expect(w.stats.commands).toBe(3);
  });

  it("runs shell commands with an environment and kills them whole when they run over", async () => {
    w = new CommandWorker();
    const r = await w.shell('test "$VIP_GROUP" = g1', 5000, { VIP_GROUP: "g1" });
    expect(r).toMatchObject({ code: 0, timedOut: false });
    const t0 = performance.now();
    const slow = await w.shell("sleep 30 & sleep 30", 200);
    expect(slow.timedOut).toBe(true);
    expect(performance.now() - t0).toBeLessThan(20_000);
  });

  it("asks stillWanted when a command's turn comes: one no longer wanted is skipped, not started", async () => {
    w = new CommandWorker();
    let wanted = true;
    // queue several behind each other; withdraw before most of them start
    const rs = Array.from({ length: 20 }, (_, i) =>
      w?.exec(["true", String(i)], { stillWanted: () => wanted }),
    );
    wanted = false;
    const out = await Promise.all(rs);
    const skipped = out.filter((r) => r?.skipped === true).length;
    expect(skipped).toBeGreaterThan(0);
    expect(skipped).toBeLessThan(20); // the first was handed over at once
    expect(w.stats.skipped).toBe(skipped);
    for (const r of out) if (r?.skipped !== true) expect(r?.code).toBe(0);
  });

  it("a command asked again while the same one waits joins it: the queue holds each command once", async () => {
    w = new CommandWorker();
    const first = w.exec(["/bin/sh", "-c", "exit 0"]);
    const same = [1, 2, 3].map(() => w?.exec(["/bin/sh", "-c", "exit 4"]));
    const out = await Promise.all([first, ...same]);
    expect(out.map((r) => r?.code)).toEqual([0, 4, 4, 4]);
    expect(w.stats.joined).toBe(2);
    expect(w.stats.commands).toBe(2);
  });

  it("refuses commands beyond its bound, and fails them all on close", async () => {
    w = new CommandWorker(2);
    const a = w.shell("sleep 5", 10_000);
    const b = w.shell("sleep 5", 10_000);
    const c = await w.exec(["true"]);
    expect(c.code).toBe(127);
    expect(w.stats.refused).toBe(1);
    await w.close();
    expect((await a).error).toMatch(/unavailable/);
    expect((await b).error).toMatch(/unavailable/);
    expect((await w.exec(["true"])).code).toBe(127);
  });

  it("replaces a worker that died; the commands it held fail, later ones run", async () => {
    w = new CommandWorker();
    expect((await w.exec(["true"])).code).toBe(0);
    const held = w.shell("sleep 5", 10_000);
    await w.crashForTest();
    expect((await held).error).toMatch(/unavailable/);
    expect(w.stats.workerRestarts).toBe(1);
    expect((await w.exec(["true"])).code).toBe(0);
  });
});

describe("LoopMonitor", () => {
  it("counts stalls beyond the threshold, keeps the longest and warns at most once per interval", () => {
    let t = 0;
    const warned: number[] = [];
    const log = { ...quiet, warn: (o: { stallMs: number }) => warned.push(o.stallMs) } as never;
    expect(typeof (quiet.child as () => unknown)()).toBe("object");
    const m = new LoopMonitor(log, {
      tickMs: 20,
      stallMs: 50,
      warnMs: 200,
      logEveryMs: 10_000,
      clock: () => t,
    });
    m.start();
    m.stop();
    const tick = (dt: number) => {
      t += dt;
      m.tick();
    };
    tick(20);
    tick(60); // 40 late: not a stall
    expect(m.stats.stalls).toBe(0);
    tick(100); // 80 late
    tick(520); // 500 late: warns
    tick(420); // 400 late: within the log interval, counted only
    expect(m.stats).toEqual({ stalls: 3, maxStallMs: 500 });
    expect(warned).toEqual([500]);
    tick(9_700); // 9,680 late, 10,120 ms after the first warning
    expect(warned).toEqual([500, 9_680]);
    expect(m.stats.maxStallMs).toBe(9_680);
  });
});

describe("CommandPool", () => {
  it("runs address changes on the urgent worker and announcements, queries and shells on the other", async () => {
    const { CommandPool, isUrgent } = await import("../src/command-worker.ts");
    expect(isUrgent(["ip", "-4", "addr", "add", "10.0.0.1/32", "dev", "eth0"])).toBe(true);
    expect(isUrgent(["ip", "-6", "addr", "del", "fd00::1/128", "dev", "eth0"])).toBe(true);
    expect(isUrgent(["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"])).toBe(true);
    expect(isUrgent(["ip", "-j", "addr", "show"])).toBe(false);
    expect(isUrgent(["arping", "-q", "-U", "-c", "1", "-I", "eth0", "10.0.0.1"])).toBe(false);
    const p = new CommandPool();
    try {
      await p.runner(["/bin/sh", "-c", "true"]);
      await p.shell("true", 5000);
      expect(p.urgent.reduce((n, w) => n + w.stats.commands, 0)).toBe(0);
      expect(p.background.reduce((n, w) => n + w.stats.commands, 0)).toBe(2);
      expect(p.stats.commands).toBe(2);
    } finally {
      await p.close();
    }
  });
});

describe("CommandPool batches the commands of one event-loop turn", () => {
  it("splits the stderr of `ip -force -batch` among its lines", async () => {
    const { splitIpBatch } = await import("../src/command-worker.ts");
    const r = splitIpBatch(3, {
      code: 1,
      stdout: "",
      stderr: "Error: ipv4: Address already assigned.\nCommand failed -:2\n",
    });
    expect(r.map((x) => x.code)).toEqual([0, 2, 0]);
    expect(r[1]?.stderr).toMatch(/already assigned/);
    // ip itself did not run: every line failed
    expect(splitIpBatch(2, { code: 127, stdout: "", stderr: "spawn ip ENOENT" }).map((x) => x.code)).toEqual([
      127, 127,
    ]);
  });

  it("runs address changes as one `ip -batch` and announcements as one shell, with per-command results", async () => {
    const { mkdtempSync, readFileSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "wack-pool-"));
    // a fake `ip`: records its argv and stdin; a line containing "bad" fails as ip -force does
    writeFileSync(
      join(dir, "ip"),
      `#!/bin/sh\necho "$@" >> "${dir}/ip.log"\nif [ "$3" != "-" ]; then exec < "$3"; fi\nn=0\nwhile read -r l; do n=$((n+1)); echo "$l" >> "${dir}/ip.log"; case "$l" in *bad*) echo "Error: bad address" >&2; echo "Command failed $3:$n" >&2;; esac; done\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, "arping"), `#!/bin/sh\necho "$@" >> "${dir}/arping.log"\nexit $4\n`, {
      mode: 0o755,
    });
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    const { CommandPool } = await import("../src/command-worker.ts");
    const p = new CommandPool({ spare: false }); // the spare has its own test
    process.env.PATH = path;
    try {
      const [a, b, c] = await Promise.all([
        p.runner(["ip", "-4", "addr", "add", "10.0.0.1/32", "dev", "eth0", "label", "eth0:vip"], {
          followUps: [["arping", "-q", "-U", "-c", "0", "10.0.0.1"]],
        }),
        p.runner(["ip", "-4", "addr", "add", "bad", "dev", "eth0"]),
        p.runner(["ip", "-6", "addr", "del", "fd00::1/128", "dev", "eth0"]),
      ]);
      expect([a?.code, b?.code, c?.code]).toEqual([0, 2, 0]);
      expect(b?.stderr).toMatch(/bad address/);
      const log = readFileSync(join(dir, "ip.log"), "utf8").split("\n");
      expect(log.slice(-4), log.join("|")).toEqual([
        "addr add 10.0.0.1/32 dev eth0 label eth0:vip",
        "addr add bad dev eth0",
        "addr del fd00::1/128 dev eth0",
        "",
      ]);
      expect(log[log.length - 5]).toBe("-force -batch -");
      expect(p.batchStats.ipBatches).toBe(1);
      expect(p.runner.followUps).toBe(true);
      // the follow-up started from the same job, after the batch
      for (
        let i = 0;
        i < 300 && readFileSync(join(dir, "arping.log"), { encoding: "utf8", flag: "a+" }) === "";
        i++
      )
        await new Promise((r) => setTimeout(r, 10));
      expect(readFileSync(join(dir, "arping.log"), "utf8")).toBe("-q -U -c 0 10.0.0.1\n");
      // announcements: one shell, each command's own exit status (the fake exits with its 4th arg)
      let wanted = true;
      const rs = await Promise.all([
        p.runner(["arping", "-q", "-U", "-c", "0", "x y'z"]),
        p.runner(["arping", "-q", "-A", "-c", "3", "b"]),
        p.runner(["arping", "-q", "-A", "-c", "0", "c"], { stillWanted: () => wanted }),
        (() => {
          wanted = false;
          return p.runner(["arping", "-q", "-A", "-c", "0", "d"]);
        })(),
      ]);
      expect(rs.map((r) => [r.code, r.skipped === true])).toEqual([
        [0, false],
        [3, false],
        [0, true],
        [0, false],
      ]);
      expect(p.batchStats.announceBatches).toBe(1);
      expect(readFileSync(join(dir, "arping.log"), "utf8")).toContain("-q -U -c 0 x y'z");
    } finally {
      await p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("CommandPool sends announcements as frames through a running socat", () => {
  it("sends a fail-over's first announcements and later rounds as frames, commands only without a sender", async () => {
    const { mkdtempSync, readFileSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { announcementFrame, parseMac } = await import("@spines-ts/vip/linux");
    const dir = mkdtempSync(join(tmpdir(), "wack-frames-"));
    // a fake `ip`: the link query answers for eth0 only; batches are read and logged
    writeFileSync(
      join(dir, "ip"),
      `#!/bin/sh\ncase "$*" in "-j link show dev eth0") echo '[{"ifindex":7,"ifname":"eth0","address":"02:00:00:00:00:07"}]'; exit 0;; "-j link show dev "*) echo 'Device does not exist' >&2; exit 1;; esac\nif [ "$3" != "-" ]; then exec < "$3"; fi\nn=0\nwhile read -r l; do n=$((n+1)); echo "$l" >> "${dir}/ip.log"; [ "$l" = wackamole-done ] && echo "Command failed $3:$n" >&2; done; exit 0\n`,
      { mode: 0o755 },
    );
    writeFileSync(join(dir, "arping"), `#!/bin/sh\necho "$@" >> "${dir}/arping.log"\n`, { mode: 0o755 });
    // a fake socat: logs its arguments, copies the FIFO (its 4th argument, OPEN:<fifo>,rdonly) to a file
    writeFileSync(
      join(dir, "socat"),
      `#!/bin/sh\necho "$@" >> "${dir}/socat.log"\nf=\${4#OPEN:}; f=\${f%,rdonly}\ncat "$f" >> "${dir}/frames.bin"\n`,
      { mode: 0o755 },
    );
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    const { CommandPool } = await import("../src/command-worker.ts");
    const p = new CommandPool();
    try {
      p.prepareAnnouncements([
        { iface: "eth0", family: 4 },
        { iface: "nosuch0", family: 4 },
      ]);
      const arp = ["arping", "-q", "-U", "-c", "1", "-I", "eth0", "10.0.0.1"];
      // the eth0 sender runs once its socat has the FIFO open; nosuch0 has none (no such link)
      for (let i = 0; i < 1500 && p.frameSenders.length === 0; i++)
        await new Promise((r) => setTimeout(r, 10));
      expect(p.frameSenders).toEqual(["4:eth0"]);
      const r = await p.runner(
        ["ip", "-4", "addr", "add", "10.0.0.1/32", "dev", "eth0", "label", "eth0:vip"],
        {
          followUps: [arp, ["arping", "-q", "-A", "-c", "1", "-I", "eth0", "10.0.0.1"]],
        },
      );
      expect(r.code).toBe(0);
      // a later round goes as a frame too; one on an interface without a sender runs arping
      const later = await p.runner(["arping", "-q", "-A", "-c", "1", "-I", "eth0", "10.0.0.2"]);
      const other = await p.runner(["arping", "-q", "-U", "-c", "1", "-I", "nosuch0", "10.0.0.3"]);
      expect([later.code, other.code]).toEqual([0, 0]);
      const mac = parseMac("02:00:00:00:00:07") as Uint8Array;
      const want = Buffer.concat(
        [
          { kind: "arp-request", address: "10.0.0.1" },
          { kind: "arp-reply", address: "10.0.0.1" },
          { kind: "arp-reply", address: "10.0.0.2" },
        ].map((a) =>
          announcementFrame(
            { kind: a.kind as "arp-request" | "arp-reply", iface: "eth0", address: a.address },
            mac,
          ),
        ),
      );
      for (
        let i = 0;
        i < 200 && readFileSync(join(dir, "frames.bin"), { flag: "a+" }).length < want.length;
        i++
      )
        await new Promise((r) => setTimeout(r, 10));
      expect(
        readFileSync(join(dir, "frames.bin")).toString("hex"),
        readFileSync(join(dir, "socat.log"), "utf8"),
      ).toBe(want.toString("hex"));
      // socat was started for ARP frames on ifindex 7: -b 60, protocol 0x0806
      expect(readFileSync(join(dir, "socat.log"), "utf8")).toMatch(
        /^-u -b 60 OPEN:.*,rdonly SOCKET-SENDTO:17:3:0:x0806070000000100000/m,
      );
      expect(p.frameStats.frames).toBe(3);
      expect(p.frameStats.fallbacks).toBeGreaterThanOrEqual(1);
      expect(readFileSync(join(dir, "arping.log"), "utf8")).toBe("-q -U -c 1 -I nosuch0 10.0.0.3\n");
    } finally {
      process.env.PATH = path;
      await p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("CommandPool keeps a spare `ip -batch` waiting", () => {
  it("runs a batch on the waiting spare, starts the next one, and falls back while none waits", async () => {
    const { mkdtempSync, readFileSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "wack-spare-"));
    writeFileSync(
      join(dir, "ip"),
      `#!/bin/sh\necho "start $*" >> "${dir}/ip.log"\nif [ "$3" != "-" ]; then exec < "$3"; fi\nn=0\nwhile read -r l; do n=$((n+1)); echo "$l" >> "${dir}/ip.log"; case "$l" in *bad*) echo "Error: bad" >&2; echo "Command failed $3:$n" >&2;; wackamole-done) echo 'Object "wackamole-done" is unknown' >&2; echo "Command failed $3:$n" >&2;; esac; done; exit 1\n`,
      { mode: 0o755 },
    );
    const path = process.env.PATH;
    process.env.PATH = `${dir}:${path}`;
    const { CommandPool } = await import("../src/command-worker.ts");
    const p = new CommandPool({ socat: false });
    try {
      const starts = () =>
        readFileSync(join(dir, "ip.log"), { encoding: "utf8", flag: "a+" }).match(/^start/gm)?.length ?? 0;
      for (let i = 0; i < 300 && starts() < 1; i++) await new Promise((r) => setTimeout(r, 10));
      await new Promise((r) => setTimeout(r, 50));
      const [a, b] = await Promise.all([
        p.runner(["ip", "-4", "addr", "add", "bad", "dev", "eth0"]),
        p.runner(["ip", "-4", "addr", "add", "10.0.0.2/32", "dev", "eth0"]),
      ]);
      expect([a.code, b.code]).toEqual([2, 0]);
      expect(a.stderr).toMatch(/Error: bad/);
      expect(p.batchStats.spareBatches).toBe(1);
      // right away: the next spare is still starting, so this batch starts its own `ip` (or, if
      // the spare was quick, uses it): either way the result is the same
      const c = await p.runner(["ip", "-4", "addr", "del", "bad", "dev", "eth0"]);
      expect(c.code).toBe(2);
      for (let i = 0; i < 300 && !/ip-2\.fifo/.test(readFileSync(join(dir, "ip.log"), "utf8")); i++)
        await new Promise((r) => setTimeout(r, 10));
      const log = readFileSync(join(dir, "ip.log"), "utf8");
      expect(log).toMatch(
        /^start -force -batch \/.*ip-1\.fifo\naddr add bad dev eth0\naddr add 10\.0\.0\.2\/32 dev eth0\nwackamole-done\n/m,
      );
      expect(log).toMatch(/^start -force -batch \/.*ip-2\.fifo$/m);
    } finally {
      process.env.PATH = path;
      await p.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("starts the next spare once the batch is done, not while `ip` runs it", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const dir = mkdtempSync(join(tmpdir(), "wack-spare-"));
    // an `ip` that takes 100 ms per line: long enough to see what starts meanwhile
    writeFileSync(
      join(dir, "ip"),
      `#!/bin/sh\nexec < "$3"\nn=0\nwhile read -r l; do n=$((n+1)); sleep 0.1; case "$l" in wackamole-done) echo "Command failed $3:$n" >&2;; esac; done\n`,
      { mode: 0o755 },
    );
    const { CommandShell } = await import("../src/command-shell.ts");
    const { IpSpare } = await import("../src/ip-spare.ts");
    const sh = new CommandShell();
    const spare = new IpSpare(sh, join(dir, "ip"));
    try {
      let r: Promise<unknown> | undefined;
      for (let i = 0; i < 300 && r === undefined; i++) {
        await new Promise((res) => setTimeout(res, 10));
        r = spare.run(["addr add 10.0.0.9/32 dev eth0"]);
      }
      expect(r).toBeDefined();
      expect(spare.stats.starts).toBe(1);
      await new Promise((res) => setTimeout(res, 60)); // the batch still runs
      expect(spare.stats.starts).toBe(1);
      expect(await r).toMatchObject({ code: 0 });
      for (let i = 0; i < 100 && spare.stats.starts < 2; i++) await new Promise((res) => setTimeout(res, 10));
      expect(spare.stats.starts).toBe(2);
    } finally {
      spare.close();
      sh.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("CommandShell", () => {
  it("runs jobs with their output and status, and removes the directories of daemons that are gone", async () => {
    const { mkdirSync, existsSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { join } = await import("node:path");
    const { execFileSync, spawnSync } = await import("node:child_process");
    const dead = spawnSync("true").pid as number; // exited: its pid names no process (unless reused)
    execFileSync("true");
    const stale = join(tmpdir(), `wackamole-sh-${dead}-test`);
    mkdirSync(stale, { recursive: true });
    const { CommandShell } = await import("../src/command-shell.ts");
    const sh = new CommandShell();
    try {
      expect(existsSync(stale)).toBe(false);
      const r = await sh.run("echo out; echo err >&2; exit 3");
      expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
    } finally {
      sh.close();
    }
  });

  it("reaps its finished jobs: a long-running shell does not collect zombies", async () => {
    const { readFileSync } = await import("node:fs");
    const { CommandShell } = await import("../src/command-shell.ts");
    const sh = new CommandShell();
    try {
      for (let i = 0; i < 40; i++) expect((await sh.run("true")).code).toBe(0);
      const pid = sh.pid as number;
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/);
      const zombies = children.filter((c) => {
        try {
          const st = readFileSync(`/proc/${c}/stat`, "utf8");
          return st.slice(st.lastIndexOf(")") + 2).startsWith("Z");
        } catch {
          return false; // reaped meanwhile
        }
      });
      // only the jobs that ended after the last one was written may wait (40 without the reaping)
      expect(zombies.length).toBeLessThanOrEqual(2);
    } finally {
      sh.close();
    }
  });
});
