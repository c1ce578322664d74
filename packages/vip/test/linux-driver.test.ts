/**
 * The Linux driver against a fake `ip`/`arping`/`sysctl` (no root needed): the commands it issues,
 * idempotence, the crash-leftover cleanup that touches only its own marked addresses, and failures
 * reported as typed errors. The real kernel is exercised in netns.test.ts.
 */
import { describe, expect, it } from "vitest";
import { parseVipGroups } from "../src/index.ts";
import {
  type CommandOptions,
  type CommandResult,
  expandTargets,
  LinuxAddressDriver,
  type LinuxDriverError,
} from "../src/linux.ts";

interface Addr {
  dev: string;
  family: "inet" | "inet6";
  local: string;
  prefixlen: number;
  label?: string;
  metric?: number;
}

/** A tiny model of the kernel's address table, driven by the argv the driver runs. */
function fakeKernel(initial: Addr[] = []) {
  const addrs = [...initial];
  const calls: string[] = [];
  const fail = new Set<string>();
  const runner = async (argv: readonly string[]): Promise<CommandResult> => {
    const line = argv.join(" ");
    calls.push(line);
    for (const f of fail)
      if (line.startsWith(f))
        return { code: 2, stdout: "", stderr: `RTNETLINK answers: Operation not permitted` };
    if (argv[0] === "ip" && argv.includes("show") && argv.includes("addr")) {
      const dev = argv.includes("dev") ? argv[argv.indexOf("dev") + 1] : undefined;
      const fam = argv.includes("-4") ? "inet" : argv.includes("-6") ? "inet6" : undefined;
      const devs = [...new Set(addrs.map((a) => a.dev).concat(dev ? [dev] : []))].filter(
        (d) => !dev || d === dev,
      );
      const out = devs.map((d) => ({
        ifname: d,
        addr_info: addrs
          .filter((a) => a.dev === d && (!fam || a.family === fam))
          .map(({ dev: _dev, ...rest }) => rest),
      }));
      return { code: 0, stdout: JSON.stringify(out), stderr: "" };
    }
    if (argv[0] === "ip" && argv.includes("addr") && (argv.includes("add") || argv.includes("del"))) {
      const i = argv.includes("add") ? argv.indexOf("add") : argv.indexOf("del");
      const [local, len] = (argv[i + 1] as string).split("/");
      const dev = argv[argv.indexOf("dev") + 1] as string;
      const at = addrs.findIndex((a) => a.local === local && a.dev === dev);
      if (argv.includes("add")) {
        if (at >= 0) return { code: 2, stdout: "", stderr: "RTNETLINK answers: File exists" };
        const a: Addr = {
          dev,
          family: local?.includes(":") ? "inet6" : "inet",
          local: local as string,
          prefixlen: Number(len),
        };
        if (argv.includes("label")) a.label = argv[argv.indexOf("label") + 1] as string;
        if (argv.includes("metric")) a.metric = Number(argv[argv.indexOf("metric") + 1]);
        addrs.push(a);
      } else {
        if (at < 0)
          return { code: 2, stdout: "", stderr: "RTNETLINK answers: Cannot assign requested address" };
        addrs.splice(at, 1);
      }
      return { code: 0, stdout: "", stderr: "" };
    }
    if (argv[0] === "ip" && argv.includes("neigh"))
      return {
        code: 0,
        stdout: JSON.stringify([
          { dst: "10.1.0.7", dev: "eth0", lladdr: "02:00:00:00:00:07", state: ["REACHABLE"] },
          { dst: "10.1.0.8", dev: "eth0", state: ["FAILED"] },
          { dst: "fd00::9", dev: "eth0", lladdr: "02:00:00:00:00:09", state: ["STALE"] },
          { dst: "fe80::1", dev: "eth0", lladdr: "02:00:00:00:00:01", state: ["STALE"] },
        ]),
        stderr: "",
      };
    return { code: 0, stdout: "", stderr: "" }; // sysctl, arping, na6, ndisc6
  };
  return { addrs, calls, fail, runner };
}

const [web] = parseVipGroups([{ name: "web", addresses: ["eth0 10.1.0.100/32", "eth1 fd00::100/128"] }]);
const group = web as NonNullable<typeof web>;

describe("LinuxAddressDriver (fake kernel)", () => {
  it("adds marked addresses (IPv4 label, IPv6 metric + nodad), prepares sysctls, announces in both ARP forms", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({ runner: k.runner, announce: { count: 2, intervalMs: 1 } });
    await d.acquire(group, []);
    expect(k.addrs).toEqual([
      { dev: "eth0", family: "inet", local: "10.1.0.100", prefixlen: 32, label: "eth0:vip" },
      { dev: "eth1", family: "inet6", local: "fd00::100", prefixlen: 128, metric: 4137 },
    ]);
    expect(k.calls).toContain("sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1");
    expect(k.calls).toContain("sysctl -qw net.ipv6.conf.eth1.ndisc_notify=1");
    expect(k.calls).toContain("ip -6 addr add fd00::100/128 dev eth1 nodad metric 4137");
    await new Promise((r) => setTimeout(r, 50));
    const arp = k.calls.filter((c) => c.startsWith("arping"));
    expect(arp.filter((c) => c.includes(" -U ")).length).toBe(2);
    expect(arp.filter((c) => c.includes(" -A ")).length).toBe(2);
    // IPv6: the kernel sends no NA for a nodad address: count NAs with na6 (override flag, target LLA option)
    expect(k.calls.filter((c) => c.startsWith("na6")).length).toBe(2);
    expect(k.calls).toContain("na6 -i eth1 -s fd00::100 -d ff02::1 -t fd00::100 -o -e");
    d.close();
  });

  it("gives a runner that starts follow-ups the first announcement round with the ip addr add", async () => {
    const k = fakeKernel();
    const follows: string[][] = [];
    const runner = Object.assign(
      (argv: readonly string[], o?: CommandOptions) => {
        for (const f of o?.followUps ?? []) follows.push([argv.join(" "), f.join(" ")]);
        return k.runner(argv);
      },
      { followUps: true },
    );
    const d = new LinuxAddressDriver({ runner, announce: { count: 2, intervalMs: 1, repeatAfterMs: 0 } });
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 50));
    expect(follows).toEqual([
      ["ip -4 addr add 10.1.0.100/32 dev eth0 label eth0:vip", "arping -q -U -c 1 -I eth0 10.1.0.100"],
      ["ip -4 addr add 10.1.0.100/32 dev eth0 label eth0:vip", "arping -q -A -c 1 -I eth0 10.1.0.100"],
      [
        "ip -6 addr add fd00::100/128 dev eth1 nodad metric 4137",
        "na6 -i eth1 -s fd00::100 -d ff02::1 -t fd00::100 -o -e",
      ],
    ]);
    // the second round is the driver's own, as before (count 2 = one follow-up round + one more)
    const arp = k.calls.filter((c) => c.startsWith("arping"));
    expect(arp).toEqual(["arping -q -U -c 1 -I eth0 10.1.0.100", "arping -q -A -c 1 -I eth0 10.1.0.100"]);
    expect(k.calls.filter((c) => c.startsWith("na6")).length).toBe(1);
    d.close();
  });

  it("reannounce: announces a held group again, nothing for a group it does not hold", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({ runner: k.runner, announce: { count: 1, intervalMs: 1 } });
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 20));
    const count = () => k.calls.filter((c) => c.startsWith("arping") || c.startsWith("na6")).length;
    expect(count()).toBe(3);
    d.reannounce(group);
    await new Promise((r) => setTimeout(r, 20));
    expect(count()).toBe(6);
    await d.release(group);
    d.reannounce(group);
    await new Promise((r) => setTimeout(r, 20));
    expect(count()).toBe(6);
    d.close();
  });

  it("is idempotent: acquiring a held group and releasing a free one succeed without duplicate changes", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({ runner: k.runner, announce: { count: 0 } });
    await d.acquire(group, []);
    await d.acquire(group, []); // the kernel answers "File exists": accepted
    expect(k.addrs).toHaveLength(2);
    // one command per address and operation, no query first (a fail-over waits for fewer commands)
    expect(k.calls.filter((c) => c.includes("addr add"))).toHaveLength(4);
    expect(k.calls.filter((c) => c.includes("addr show"))).toHaveLength(0);
    await d.release(group);
    await d.release(group); // "Cannot assign requested address": accepted
    expect(k.addrs).toHaveLength(0);
    expect(k.calls.filter((c) => c.includes("addr del"))).toHaveLength(4);
  });

  it("prepare sets each interface's options once, ahead of the first acquire", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({ runner: k.runner, announce: { count: 0 } });
    await Promise.all([d.prepare([group]), d.prepare([group])]);
    const sysctls = () => k.calls.filter((c) => c.startsWith("sysctl"));
    expect(sysctls()).toEqual([
      "sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1",
      "sysctl -qw net.ipv6.conf.eth1.ndisc_notify=1",
    ]);
    await d.acquire(group, []);
    expect(sysctls()).toHaveLength(2);
    // a failed one is retried by the next acquire
    const k2 = fakeKernel();
    k2.fail.add("sysctl -qw net.ipv4");
    const d2 = new LinuxAddressDriver({ runner: k2.runner, announce: { count: 0 } });
    await expect(d2.prepare([group])).rejects.toThrow(/prepare eth0/);
    k2.fail.clear();
    await d2.acquire(group, []);
    expect(k2.calls.filter((c) => c.startsWith("sysctl -qw net.ipv4"))).toHaveLength(2);
  });

  it("an announcement still queued when its VIP is released is skipped, not sent late", async () => {
    const k = fakeKernel();
    // a runner that holds announcements in a queue (a busy host) and asks stillWanted when it starts them
    const queued: { argv: readonly string[]; wanted?: () => boolean; done: (r: CommandResult) => void }[] =
      [];
    const sent: string[] = [];
    const runner = (argv: readonly string[], o?: { stillWanted?: () => boolean }): Promise<CommandResult> => {
      if (argv[0] !== "arping" && argv[0] !== "na6" && argv[0] !== "ndisc6") return k.runner(argv);
      return new Promise((done) =>
        queued.push({ argv, done, ...(o?.stillWanted ? { wanted: o.stillWanted } : {}) }),
      );
    };
    const drain = () => {
      for (const q of queued.splice(0)) {
        if (q.wanted?.() === false) q.done({ code: 0, stdout: "", stderr: "", skipped: true });
        else {
          sent.push(q.argv.join(" "));
          q.done({ code: 0, stdout: "", stderr: "" });
        }
      }
    };
    const errors: Error[] = [];
    const d = new LinuxAddressDriver({
      runner,
      announce: { count: 1, intervalMs: 1 },
      notify: [{ iface: "eth0", targets: "10.1.0.1" }],
      onError: (e) => errors.push(e),
    });
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 10));
    expect(queued.length).toBeGreaterThan(0);
    await d.release(group);
    drain();
    await new Promise((r) => setTimeout(r, 10));
    drain();
    expect(sent).toEqual([]);
    expect(errors).toEqual([]);
    // held again: its announcements go out
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 10));
    drain();
    await new Promise((r) => setTimeout(r, 10));
    drain();
    expect(sent.filter((c) => c.startsWith("arping -q -U"))).toEqual([
      "arping -q -U -c 1 -I eth0 10.1.0.100",
    ]);
    expect(sent).toContain("arping -q -c 1 -w 1 -s 10.1.0.100 -I eth0 10.1.0.1");
    d.close();
  });

  it("sends one more round repeatAfterMs after the acquire, only while the group is still held", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({
      runner: k.runner,
      announce: { count: 1, intervalMs: 1, repeatAfterMs: 30 },
      notify: [{ iface: "eth0", targets: "10.1.0.1" }],
    });
    const garp = () => k.calls.filter((c) => c.startsWith("arping -q -U")).length;
    const notified = () => k.calls.filter((c) => c.endsWith("-I eth0 10.1.0.1")).length;
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 10));
    expect([garp(), notified()]).toEqual([1, 1]);
    await new Promise((r) => setTimeout(r, 80));
    expect([garp(), notified()]).toEqual([2, 2]);
    // released before the second round: none
    await d.release(group);
    await d.acquire(group, []);
    await d.release(group);
    await new Promise((r) => setTimeout(r, 80));
    expect(garp()).toBe(3);
    d.close();
  });

  it("cleanup removes only addresses carrying its mark", async () => {
    const k = fakeKernel([
      { dev: "eth0", family: "inet", local: "10.1.0.1", prefixlen: 24 }, // the host's own
      { dev: "eth0", family: "inet", local: "10.1.0.100", prefixlen: 32, label: "eth0:vip" }, // ours, left by a crash
      { dev: "eth0", family: "inet", local: "10.1.0.101", prefixlen: 32, label: "eth0:other" }, // someone else's
      { dev: "eth1", family: "inet6", local: "fd00::100", prefixlen: 128, metric: 4137 }, // ours
      { dev: "eth1", family: "inet6", local: "fd00::1", prefixlen: 64, metric: 256 }, // the host's own
    ]);
    const d = new LinuxAddressDriver({ runner: k.runner });
    expect(await d.cleanup()).toEqual(["eth0 10.1.0.100/32", "eth1 fd00::100/128"]);
    expect(k.addrs.map((a) => a.local)).toEqual(["10.1.0.1", "10.1.0.101", "fd00::1"]);
    expect(await d.cleanup()).toEqual([]);
  });

  it("a failing command rejects with a LinuxDriverError naming the command and its stderr", async () => {
    const k = fakeKernel();
    k.fail.add("ip -4 addr add");
    const d = new LinuxAddressDriver({ runner: k.runner, announce: { count: 0 } });
    const err = (await d.acquire(group, []).catch((e) => e)) as LinuxDriverError;
    expect(err.name).toBe("LinuxDriverError");
    expect(err.code).toBe("ERR_VIP_DRIVER");
    expect(err.message).toMatch(/ip -4 addr add 10\.1\.0\.100\/32 .*Operation not permitted/);
  });

  it("background announcement failures are reported through onError, not dropped", async () => {
    const k = fakeKernel();
    k.fail.add("arping");
    const errors: LinuxDriverError[] = [];
    const d = new LinuxAddressDriver({
      runner: k.runner,
      announce: { count: 1, arpMode: "request" },
      onError: (e) => errors.push(e),
    });
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 30));
    expect(errors.length).toBe(1);
    expect(errors[0]?.argv[0]).toBe("arping");
  });

  it("notifies configured targets with a throttle and neighbours learned from other members in the VIP's network", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({
      runner: k.runner,
      announce: { count: 0 },
      notify: [
        { iface: "eth0", targets: "10.1.0.0/30", throttle: 100 },
        { iface: "eth1", targets: "fd00::1" },
      ],
    });
    const nb = [
      { ip: new Uint8Array([10, 1, 0, 42]), mac: new Uint8Array([2, 0, 0, 0, 0, 42]) },
      { ip: new Uint8Array([192, 168, 9, 9]), mac: new Uint8Array([2, 0, 0, 0, 0, 43]) }, // another network: skipped
    ];
    await d.acquire(group, nb);
    await new Promise((r) => setTimeout(r, 30));
    const direct = k.calls.filter((c) => c.startsWith("arping -q -c 1 -w 1") || c.startsWith("ndisc6"));
    expect(direct).toEqual([
      "arping -q -c 1 -w 1 -s 10.1.0.100 -I eth0 10.1.0.1",
      "arping -q -c 1 -w 1 -s 10.1.0.100 -I eth0 10.1.0.2",
      "arping -q -c 1 -w 1 -s 10.1.0.100 -I eth0 10.1.0.42",
      "ndisc6 -q -1 -r 1 -w 300 -s fd00::100 fd00::1 eth1",
    ]);
  });

  it("samples the neighbour cache (entries with a MAC, not link-local, not failed)", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({ runner: k.runner });
    const s = await d.sampleNeighbors();
    expect(s.map((e) => [Array.from(e.ip).length, Array.from(e.mac)[5]])).toEqual([
      [4, 7],
      [16, 9],
    ]);
  });

  it("re-announces held groups every refreshMs, and stops after release and close", async () => {
    const k = fakeKernel();
    const d = new LinuxAddressDriver({
      runner: k.runner,
      announce: { count: 1, arpMode: "request", refreshMs: 20 },
    });
    await d.acquire(group, []);
    await new Promise((r) => setTimeout(r, 110));
    const v4 = (): number => k.calls.filter((c) => c.startsWith("arping -q -U")).length;
    const v6 = (): number => k.calls.filter((c) => c.startsWith("na6")).length;
    expect(v4()).toBeGreaterThanOrEqual(3); // the announcement plus refreshes
    expect(v6()).toBeGreaterThanOrEqual(2); // refreshes (the first NA is the kernel's)
    await d.release(group);
    const after = v4();
    await new Promise((r) => setTimeout(r, 60));
    expect(v4()).toBe(after);
    d.close();
  });

  it("validates its options and the label length", () => {
    expect(() => new LinuxAddressDriver({ tag: "bad tag" })).toThrow(RangeError);
    expect(() => new LinuxAddressDriver({ metric: 0 })).toThrow(RangeError);
    expect(() => new LinuxAddressDriver({ announce: { count: -1 } })).toThrow(RangeError);
    expect(() => new LinuxAddressDriver().label("averyveryverylongif")).toThrow(RangeError);
    expect(expandTargets("10.0.0.0/29")).toHaveLength(6);
    expect(expandTargets("fd00::/126")).toHaveLength(4);
  });
});
