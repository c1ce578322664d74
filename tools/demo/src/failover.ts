/**
 * `pnpm demo failover`: wackamole-node in network namespaces (needs root). Three daemons n1..n3 and a
 * client on one bridge share four virtual IPs (two groups with an IPv4 and an IPv6 address each, one
 * group with two IPv4 addresses, one with one). Every node runs a responder on every VIP that says
 * which node answered; the client asks every VIP every 5 ms. The node holding the first group is
 * killed with SIGKILL, and the demo prints the timeline: the fault, the survivors' new view, each
 * VIP acquired (daemon log and `ip monitor`), and the client's first reply from the new holder.
 *
 * Without root it says what it needs and exits 0. Everything (namespaces, processes) is removed on
 * exit, also on Ctrl-C. `--profile fast` uses the fast membership profile.
 */
import { canRun } from "@spines-ts/netlab";
import {
  FailoverLab,
  now,
  sleep,
  type VipGroupSpec,
  WackCluster,
  waitFor,
} from "../../../apps/wackamole-node/bench/cluster.ts";

const NET = 247;

export async function runFailoverDemo(args: readonly string[]): Promise<number> {
  if (!canRun()) {
    process.stdout.write(
      "pnpm demo failover: skipped. It builds network namespaces (a bridge, three wackamole-node daemons and a\n" +
        "client) and moves addresses with `ip addr`, which needs root: run it as root (sudo pnpm demo failover)\n" +
        "on Linux with iproute2, arping, ndisc6 and ipv6toolkit (na6) installed.\n",
    );
    return 0;
  }
  const profile =
    args.includes("--profile") && args[args.indexOf("--profile") + 1] === "fast" ? "fast" : "default";
  const groups: VipGroupSpec[] = [
    { name: "web", addresses: [`10.${NET}.0.100/32`, `fd40:${NET}::100/128`] },
    { name: "api", addresses: [`10.${NET}.0.101/32`, `fd40:${NET}::101/128`] },
    { name: "mail", addresses: [`10.${NET}.0.102/32`, `10.${NET}.0.103/32`] },
    { name: "dns", addresses: [`10.${NET}.0.104/32`] },
  ];
  const t0 = now();
  process.stdout.write(
    `failover demo: three wackamole-node daemons (membership profile ${profile}) and a client in network namespaces,\n` +
      `${groups.length} VIP groups: ${groups.map((g) => `${g.name} [${g.addresses.map((a) => a.split("/")[0]).join(", ")}]`).join("; ")}\n`,
  );
  const lab = await FailoverLab.create({ prefix: "fod", nodes: 3, net: NET, groups });
  const w = new WackCluster(lab, {
    profile,
    matureMs: 1000,
    holdOffMs: 1000,
    balance: { mode: "immediate" },
  });
  const cleanup = async () => {
    await w.stopAll().catch(() => {});
    await lab.destroy();
  };
  const onSignal = () => void cleanup().then(() => process.exit(130));
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    await lab.startResponders();
    await lab.startProber("cl", 5);
    await lab.startMonitors();
    w.startAll();
    process.stdout.write(
      "starting the daemons and waiting until every VIP is held once and answers the client...\n",
    );
    const holders = await waitFor(
      async () => {
        if (!lab.nodes.every((n) => (w.viewOf(n) ?? []).length === 3)) return undefined;
        const h = await lab.holders();
        const st = await lab.proberStatus();
        const ok = lab.vips.every((v, i) => {
          const hs = h.get(v) ?? [];
          const s = st[i] as [number, number, number];
          return hs.length === 1 && s[0] === hs[0] && s[1] < 300;
        });
        return ok ? h : undefined;
      },
      180_000,
      () => `a steady state\n${lab.nodes.map((n) => w.tail(n)).join("\n")}`,
      200,
    );
    await sleep(1500); // balancing done, announcements over
    const before = await lab.holders();
    for (const g of groups) {
      const v = g.addresses[0]?.split("/")[0] as string;
      process.stdout.write(`  ${g.name.padEnd(5)} on n${(before.get(v) ?? holders.get(v) ?? [])[0]}\n`);
    }
    const victim = (before.get(lab.vips[0] as string) ?? [])[0] as number;
    const moved = lab.vips.filter((v) => before.get(v)?.[0] === victim);
    const survivors = lab.nodes.filter((n) => n !== victim);
    const mark = lab.addrEvents.length;
    const logMarks = new Map(lab.nodes.map((n) => [n, (w.logs.get(n) ?? []).length]));
    process.stdout.write(`\nkilling n${victim} (SIGKILL); it held ${moved.join(", ")}\n`);
    const fault = now();
    void w.stop(victim, "SIGKILL");
    const first = new Map<string, { t: number; node: number }>();
    await waitFor(
      () => {
        for (const e of lab.changes) {
          const v = lab.vips[e.vip] as string;
          if (e.recvMs > fault && e.node !== victim && moved.includes(v) && !first.has(v))
            first.set(v, { t: e.recvMs, node: e.node });
        }
        return first.size === moved.length;
      },
      60_000,
      () => `the client's first replies from the survivors (${first.size}/${moved.length})`,
      20,
    );
    await sleep(300);
    type Row = { t: number; what: string };
    const rows: Row[] = [{ t: fault, what: `fault: n${victim} killed (SIGKILL)` }];
    for (const n of survivors) {
      for (const e of (w.logs.get(n) ?? []).slice(logMarks.get(n))) {
        const t = typeof e.time === "number" ? e.time : e.t;
        if (e.msg === "view installed")
          rows.push({ t, what: `n${n}: view installed, members [${(w.viewOf(n) ?? []).join(", ")}]` });
        else if (e.msg === "vip acquired")
          rows.push({ t, what: `n${n}: vip acquired ${String(e.group)} (daemon log)` });
      }
    }
    for (const e of lab.addrEvents.slice(mark))
      if (e.add && e.node !== victim) rows.push({ t: e.t, what: `n${e.node}: ${e.vip} up (ip monitor)` });
    for (const [v, f] of first)
      rows.push({ t: f.t, what: `client: first reply through ${v}, from n${f.node}` });
    rows.sort((a, b) => a.t - b.t);
    process.stdout.write("\n  ms after fault  event\n");
    for (const r of rows) process.stdout.write(`  ${(r.t - fault).toFixed(1).padStart(13)}  ${r.what}\n`);
    const worst = Math.max(...[...first.values()].map((f) => f.t - fault));
    process.stdout.write(
      `\nevery VIP of n${victim} answered the client from a survivor within ${worst.toFixed(0)} ms ` +
        `(the machine's load average is ${(await import("node:os")).loadavg()[0]?.toFixed(1)}; timings on a busy machine are longer).\n` +
        `note: a daemon killed with SIGKILL cannot remove its addresses; they stay on n${victim}'s interface until it restarts.\n` +
        `done in ${((now() - t0) / 1000).toFixed(1)} s; namespaces and processes removed.\n`,
    );
    return 0;
  } catch (e) {
    process.stderr.write(`failover demo: ${(e as Error).message}\n`);
    return 1;
  } finally {
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    await cleanup();
  }
}
