/**
 * The Linux driver on a real kernel, in network namespaces (root): hosts a and b and a client on
 * one bridge. The driver adds, announces and removes IPv4 and IPv6 VIPs; when a VIP moves from a
 * to b, the gratuitous ARP / unsolicited NA updates the client's neighbour entry to b's MAC without
 * the client sending anything. Under CI=true these tests fail (never skip) when they cannot run;
 * elsewhere they are skipped without root.
 */
import { canRun, requireRoot, Testbed } from "@spines-ts/netlab";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseVipGroups, type VipGroup } from "../src/index.ts";
import { LinuxAddressDriver, type LinuxDriverError, netnsRunner } from "../src/linux.ts";

const mustRun = process.env.CI === "true" || canRun();
const PREFIX = "h5vip";
const VIP4 = "10.213.0.100";
const VIP6 = "fd13:213::100";

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe.runIf(mustRun)("Linux driver in network namespaces", () => {
  let tb: Testbed;
  let group: VipGroup;
  const errors: LinuxDriverError[] = [];
  const drivers: LinuxAddressDriver[] = [];

  const driverOn = (host: string): LinuxAddressDriver => {
    const d = new LinuxAddressDriver({
      runner: netnsRunner(tb.ns(host)),
      announce: { count: 3, intervalMs: 100 },
      onError: (e) => errors.push(e),
    });
    drivers.push(d);
    return d;
  };

  async function addrs(host: string): Promise<{ local: string; label?: string; metric?: number }[]> {
    const r = await tb.exec(host, ["ip", "-j", "addr", "show", "dev", tb.iface(host, "lan0")]);
    expect(r.code).toBe(0);
    return (
      (JSON.parse(r.stdout) as { addr_info: { local: string; label?: string; metric?: number }[] }[])[0]
        ?.addr_info ?? []
    );
  }

  async function neighMac(ip: string): Promise<string | undefined> {
    const r = await tb.exec("client", ["ip", "-j", "neigh", "show", ip, "dev", tb.iface("client", "lan0")]);
    const e = (JSON.parse(r.stdout || "[]") as { lladdr?: string }[])[0];
    return e?.lladdr;
  }

  async function waitMac(ip: string, mac: string, ms = 5000): Promise<string | undefined> {
    const end = Date.now() + ms;
    let got = await neighMac(ip);
    while (got !== mac && Date.now() < end) {
      await sleep(50);
      got = await neighMac(ip);
    }
    return got;
  }

  beforeAll(async () => {
    requireRoot();
    await Testbed.cleanup(PREFIX);
    tb = await Testbed.create({
      prefix: PREFIX,
      hosts: ["a", "b", "client"],
      lans: [
        { name: "lan0", hosts: ["a", "b", "client"], subnet: "10.213.0.0/24", subnet6: "fd13:213::/64" },
      ],
    });
    // the same interface name in every host (netlab names it after the LAN)
    const iface = tb.iface("a", "lan0");
    expect(tb.iface("b", "lan0")).toBe(iface);
    group = parseVipGroups([
      { name: "web", addresses: [`${iface} ${VIP4}/32`, `${iface} ${VIP6}/128`] },
    ])[0] as VipGroup;
  }, 60_000);

  afterAll(async () => {
    for (const d of drivers) d.close();
    await tb?.destroy();
    await Testbed.cleanup(PREFIX);
  });

  it("adds IPv4 and IPv6 VIPs with its marks, idempotently, and removes them", async () => {
    const a = driverOn("a");
    await a.acquire(group, []);
    await a.acquire(group, []); // idempotent
    let list = await addrs("a");
    const v4 = list.find((x) => x.local === VIP4);
    const v6 = list.find((x) => x.local === VIP6);
    expect(v4?.label).toBe(`${tb.iface("a", "lan0")}:vip`);
    expect(v6?.metric).toBe(a.metric);
    // reachable from the client on both families
    expect((await tb.exec("client", ["ping", "-c", "1", "-W", "2", VIP4])).code).toBe(0);
    expect((await tb.exec("client", ["ping", "-6", "-c", "1", "-W", "2", VIP6])).code).toBe(0);
    await a.release(group);
    await a.release(group); // idempotent
    list = await addrs("a");
    expect(list.some((x) => x.local === VIP4 || x.local === VIP6)).toBe(false);
  });

  it("moving a VIP from a to b updates the client's neighbour entries to b's MAC without client traffic", async () => {
    const a = driverOn("a");
    const b = driverOn("b");
    const macA = tb.mac("a", "lan0");
    const macB = tb.mac("b", "lan0");
    expect(macA).not.toBe(macB);
    await a.acquire(group, []);
    // the client talks to the VIP, so it has entries for a
    expect((await tb.exec("client", ["ping", "-c", "1", "-W", "2", VIP4])).code).toBe(0);
    expect((await tb.exec("client", ["ping", "-6", "-c", "1", "-W", "2", VIP6])).code).toBe(0);
    expect(await neighMac(VIP4)).toBe(macA);
    expect(await neighMac(VIP6)).toBe(macA);
    // fail-over: a releases, b acquires and announces; the client sends nothing meanwhile
    await a.release(group);
    await b.acquire(group, []);
    expect(await waitMac(VIP4, macB)).toBe(macB);
    expect(await waitMac(VIP6, macB)).toBe(macB);
    await b.release(group);
    await sleep(300); // let background announcements end before checking for errors
    expect(errors.map((e) => e.message)).toEqual([]);
  });

  it("without announcements the client keeps the old MAC (so the test above can fail)", async () => {
    const b = driverOn("b");
    const silent = new LinuxAddressDriver({ runner: netnsRunner(tb.ns("a")), announce: { count: 0 } });
    drivers.push(silent);
    const macA = tb.mac("a", "lan0");
    const macB = tb.mac("b", "lan0");
    const v4only = parseVipGroups([
      { name: "web4", addresses: [`${tb.iface("a", "lan0")} ${VIP4}/32`] },
    ])[0] as VipGroup;
    await b.acquire(v4only, []);
    expect((await tb.exec("client", ["ping", "-c", "1", "-W", "2", VIP4])).code).toBe(0);
    expect(await neighMac(VIP4)).toBe(macB);
    await b.release(v4only);
    await silent.acquire(v4only, []);
    await sleep(1000);
    expect(await neighMac(VIP4)).toBe(macB); // stale: nobody told the client
    expect(macA).not.toBe(macB);
    await silent.release(v4only);
  });

  it("on start, cleanup removes the addresses a crashed run left, and only those", async () => {
    const crashed = driverOn("b");
    await crashed.acquire(group, []);
    crashed.close(); // the process "dies" without releasing
    const other = "10.213.0.201";
    expect(
      (await tb.exec("b", ["ip", "addr", "add", `${other}/32`, "dev", tb.iface("b", "lan0")])).code,
    ).toBe(0);
    const fresh = driverOn("b");
    const removed = await fresh.cleanup();
    expect(removed.sort()).toEqual(
      [`${tb.iface("b", "lan0")} ${VIP4}/32`, `${tb.iface("b", "lan0")} ${VIP6}/128`].sort(),
    );
    const list = await addrs("b");
    expect(list.some((x) => x.local === VIP4 || x.local === VIP6)).toBe(false);
    expect(list.some((x) => x.local === other)).toBe(true);
  });
});
