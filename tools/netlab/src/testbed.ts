/** Testbed: builds, drives (faults) and removes a network-namespace testbed. Requires root. */
import { type ChildProcess, type SpawnOptions, spawn, spawnSync } from "node:child_process";
import { createSocket } from "node:dgram";
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { LinkParams } from "./emulator/core.ts";
import { checkParams } from "./emulator/core.ts";
import type { ControlRequest, EmulatorConfig } from "./emulator/main.ts";
import { NetlabError } from "./errors.ts";
import { raisePriority } from "./priority.ts";
import { alive, type ExecResult, have, must, run, sleep } from "./proc.ts";
import { readState, stateDir, type TestbedState, writeState } from "./state.ts";
import { linkParams, type Plan, type PlannedNet, plan, type TopologySpec } from "./topology.ts";

/**
 * Throws NetlabError("ERR_NOT_ROOT") unless this process is root and `ip netns` works, and
 * NetlabError("ERR_MISSING_TOOL") when `ip` is missing.
 */
export function requireRoot(): void {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    throw new NetlabError(
      "ERR_NOT_ROOT",
      "netlab needs root (network namespaces, TUN devices); run as root or under sudo",
    );
  }
  if (!have("ip")) throw new NetlabError("ERR_MISSING_TOOL", "`ip` (iproute2) is not installed");
  if (!existsSync("/var/run/netns") && !existsSync("/proc/self/ns/net")) {
    throw new NetlabError("ERR_NOT_ROOT", "network namespaces are not available on this kernel");
  }
}

/** True when netlab can run here (root, iproute2); never throws. */
export function canRun(): boolean {
  try {
    requireRoot();
    return true;
  } catch {
    return false;
  }
}

/** The namespace name of a host. */
export const nsName = (prefix: string, host: string): string => `${prefix}-${host}`;
const bridgeNs = (prefix: string, lan: string): string => `${prefix}-br_${lan}`;

async function netnsList(): Promise<string[]> {
  const r = await run(["ip", "netns", "list"]);
  return r.stdout
    .split("\n")
    .map((l) => l.trim().split(/\s+/)[0] ?? "")
    .filter((n) => n.length > 0);
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}

/** Pids of processes whose command line names this prefix's state dir or TUN devices. */
function strayPids(prefix: string): number[] {
  const out: number[] = [];
  const tun = new RegExp(`tun-name=${prefix}\\d+[ab],`);
  const dir = `${stateDir(prefix)}/`;
  for (const e of readdirSync("/proc")) {
    const pid = Number(e);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    const c = cmdline(pid);
    if (tun.test(c) || (c.includes(dir) && c.includes("emulator"))) out.push(pid);
  }
  return out;
}

function killPid(pid: number, sig: NodeJS.Signals = "SIGKILL"): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/**
 * Raises net.core.{r,w}mem_max (root namespace) to at least 8 MiB so the emulator's and socat's 4 MiB
 * socket buffers take effect; never lowers them.
 */
async function raiseSocketBufferLimits(): Promise<void> {
  for (const k of ["rmem_max", "wmem_max"]) {
    const f = `/proc/sys/net/core/${k}`;
    try {
      if (Number(readFileSync(f, "utf8").trim()) < 8 << 20) writeFileSync(f, String(8 << 20));
    } catch {
      // read-only /proc/sys: keep the defaults
    }
  }
}

async function allocPorts(n: number): Promise<number[]> {
  const socks = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<ReturnType<typeof createSocket>>((resolve, reject) => {
          const s = createSocket("udp4");
          s.once("error", reject);
          s.bind(0, "127.0.0.1", () => resolve(s));
        }),
    ),
  );
  const ports = socks.map((s) => s.address().port);
  await Promise.all(socks.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Sends one control request to an emulator and waits for its reply. */
export function emulatorRequest(
  port: number,
  req: ControlRequest,
  timeoutMs = 2000,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => {
      s.close();
      reject(new NetlabError("ERR_EMULATOR", `no reply from the link emulator on port ${port}`));
    }, timeoutMs);
    s.on("message", (m) => {
      clearTimeout(timer);
      s.close();
      const r = JSON.parse(m.toString("utf8")) as Record<string, unknown>;
      if (r.ok !== true) reject(new NetlabError("ERR_EMULATOR", String(r.error)));
      else resolve(r);
    });
    s.send(JSON.stringify(req), port, "127.0.0.1");
  });
}

/** Bound of the table of spawned processes (exited ones are dropped first when it is full). */
const MAX_CHILDREN = 1024;

interface Spawned {
  host: string;
  argv: string[];
  opts: SpawnOptions & { priority?: number };
}

/** A network-namespace testbed. Create with {@link Testbed.create}; remove with {@link Testbed.destroy}. */
export class Testbed {
  readonly prefix: string;
  private readonly plan: Plan;
  private readonly state: TestbedState;
  private readonly children = new Map<ChildProcess, Spawned>();
  private destroyed = false;

  private constructor(p: Plan, state: TestbedState) {
    this.plan = p;
    this.prefix = p.prefix;
    this.state = state;
  }

  /** Builds a testbed. On failure everything created so far is removed and the error rethrown. */
  static async create(spec: TopologySpec): Promise<Testbed> {
    requireRoot();
    const p = plan(spec);
    if ((spec.links ?? []).length > 0 && !have("socat")) {
      throw new NetlabError("ERR_MISSING_TOOL", "emulated links need socat (apt-get install -y socat)");
    }
    const existing = (await netnsList()).filter((n) => n.startsWith(`${p.prefix}-`));
    if (existing.length > 0 || readState(p.prefix) !== undefined) {
      if (spec.replace === true) await Testbed.cleanup(p.prefix);
      else {
        throw new NetlabError(
          "ERR_TOPOLOGY",
          `prefix "${p.prefix}" is in use (${existing.join(", ") || "state file"}); run \`netlab down --prefix ${p.prefix}\` or pass replace: true`,
        );
      }
    }
    const state: TestbedState = {
      prefix: p.prefix,
      createdAt: new Date().toISOString(),
      spec: { ...spec, prefix: p.prefix },
      socats: [],
      down: [],
    };
    writeState(state);
    const tb = new Testbed(p, state);
    try {
      await tb.build(spec);
    } catch (e) {
      await Testbed.cleanup(p.prefix);
      throw e;
    }
    return tb;
  }

  /** Attaches to a testbed created by another process (e.g. `netlab up`), from its state file. */
  static attach(prefix: string): Testbed {
    requireRoot();
    const s = readState(prefix);
    if (s === undefined)
      throw new NetlabError("ERR_TOPOLOGY", `no testbed with prefix "${prefix}" (no state file)`);
    return new Testbed(plan(s.spec), s);
  }

  /** Removes everything with this prefix: processes in its namespaces, emulator, socat, namespaces, state. */
  static async cleanup(prefix: string): Promise<void> {
    requireRoot();
    const s = readState(prefix);
    const pids = new Set<number>(strayPids(prefix));
    if (s?.emulator !== undefined && cmdline(s.emulator.pid).includes("emulator")) pids.add(s.emulator.pid);
    for (const pid of s?.socats ?? []) if (cmdline(pid).includes("socat")) pids.add(pid);
    const spaces = (await netnsList()).filter((n) => n.startsWith(`${prefix}-`));
    for (const ns of spaces) {
      const r = await run(["ip", "netns", "pids", ns]);
      for (const l of r.stdout.split("\n")) if (/^\d+$/.test(l.trim())) pids.add(Number(l.trim()));
    }
    for (const pid of pids) killPid(pid);
    for (let i = 0; i < 50 && [...pids].some(alive); i++) await sleep(20);
    await Promise.all(spaces.map((ns) => run(["ip", "netns", "del", ns])));
    // TUN devices not yet moved into a namespace when a crash happened.
    const links = await run(["ip", "-o", "link", "show"]);
    const re = new RegExp(`^\\d+: (${prefix}\\d+[ab])[:@]`);
    for (const l of links.stdout.split("\n")) {
      const m = re.exec(l);
      if (m?.[1]) await run(["ip", "link", "del", m[1]]);
    }
    rmSync(stateDir(prefix), { recursive: true, force: true });
  }

  private async build(spec: TopologySpec): Promise<void> {
    const { prefix, hosts, nets } = this.plan;
    const links = nets.filter((x) => x.kind === "link");
    const emulator = links.length > 0 ? this.startEmulator(spec, links) : undefined;
    // a failure elsewhere must not leave this promise unobserved
    emulator?.catch(() => {});
    await Promise.all(
      hosts.map(async (h) => {
        const ns = nsName(prefix, h);
        await must(["ip", "netns", "add", ns]);
        await must(["ip", "-n", ns, "link", "set", "lo", "up"]);
        const sysctls: Record<string, string> = {
          "net.ipv4.conf.all.rp_filter": "0",
          "net.ipv4.conf.default.rp_filter": "0",
          ...(this.plan.forwarding.has(h)
            ? { "net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1" }
            : {}),
          ...(spec.sysctls ?? {}),
        };
        await must([
          "ip",
          "netns",
          "exec",
          ns,
          "sysctl",
          "-qw",
          ...Object.entries(sysctls).map(([k, v]) => `${k}=${v}`),
        ]);
      }),
    );
    await Promise.all(nets.filter((x) => x.kind === "lan").map((n) => this.buildLan(n)));
    if (emulator !== undefined) {
      const cfg = await emulator;
      await Promise.all(
        links.map((n, i) => this.buildLinkEnds(spec, n, i, cfg.links[i] as EmulatorConfig["links"][number])),
      );
    }
    for (const [h, list] of this.plan.routes) {
      const ns = nsName(prefix, h);
      for (const r of list) {
        await must([
          "ip",
          ...(r.v6 ? ["-6"] : []),
          "-n",
          ns,
          "route",
          "replace",
          r.dest,
          "via",
          r.via,
          "dev",
          r.dev,
        ]);
      }
    }
    writeState(this.state);
  }

  private async addAddrs(
    ns: string,
    iface: string,
    n: PlannedNet,
    m: { addr: string; addr6?: string },
  ): Promise<void> {
    await must(["ip", "-n", ns, "addr", "add", `${m.addr}/${n.prefixLen}`, "dev", iface]);
    if (m.addr6 !== undefined) {
      await must(["ip", "-n", ns, "addr", "add", `${m.addr6}/${n.prefixLen6}`, "dev", iface, "nodad"]);
    }
    await must(["ip", "-n", ns, "link", "set", iface, "up"]);
  }

  private async buildLan(n: PlannedNet): Promise<void> {
    const br = bridgeNs(this.prefix, n.name);
    await must(["ip", "netns", "add", br]);
    await must(["ip", "-n", br, "link", "add", "br0", "type", "bridge", "forward_delay", "0"]);
    await must(["ip", "-n", br, "link", "set", "br0", "up"]);
    await Promise.all(
      [...n.members].map(async ([h, m]) => {
        const ns = nsName(this.prefix, h);
        const port = `p${m.index}`;
        await must([
          "ip",
          "-n",
          ns,
          "link",
          "add",
          m.iface,
          "type",
          "veth",
          "peer",
          "name",
          port,
          "netns",
          br,
        ]);
        await must(["ip", "-n", br, "link", "set", port, "master", "br0"]);
        await must(["ip", "-n", br, "link", "set", port, "up"]);
        await this.addAddrs(ns, m.iface, n, m);
      }),
    );
  }

  private emulatorEntry(): string[] {
    const here = import.meta.url;
    if (here.endsWith(".ts")) {
      return ["--import", import.meta.resolve("tsx"), fileURLToPath(new URL("./emulator/main.ts", here))];
    }
    return [fileURLToPath(new URL("./emulator/main.js", here))];
  }

  private async startEmulator(spec: TopologySpec, links: PlannedNet[]): Promise<EmulatorConfig> {
    const dir = stateDir(this.prefix);
    const specs = spec.links ?? [];
    await raiseSocketBufferLimits();
    const ports = await allocPorts(links.length * 4 + 1);
    const cfg: EmulatorConfig = { links: [], controlPort: ports[links.length * 4] as number };
    links.forEach((n, i) => {
      const ls = specs[i];
      if (ls === undefined) throw new NetlabError("ERR_TOPOLOGY", "link plan mismatch");
      const { ab, ba } = linkParams(ls);
      cfg.links.push({
        id: n.name,
        portA: ports[i * 4] as number,
        portB: ports[i * 4 + 1] as number,
        peerA: ports[i * 4 + 2] as number,
        peerB: ports[i * 4 + 3] as number,
        ab,
        ba,
        seed: ls.seed ?? i + 1,
      });
    });
    const cfgFile = join(dir, "emulator.json");
    writeFileSync(cfgFile, JSON.stringify(cfg));
    const log = openSync(join(dir, "emulator.log"), "a");
    const emu = spawn(process.execPath, [...this.emulatorEntry(), cfgFile], {
      detached: true,
      stdio: ["ignore", "pipe", log],
    });
    closeSync(log);
    const controlPort = await new Promise<number>((resolve, reject) => {
      let buf = "";
      const timer = setTimeout(
        () => reject(new NetlabError("ERR_EMULATOR", `emulator did not start; see ${dir}/emulator.log`)),
        15_000,
      );
      emu.stdout?.setEncoding("utf8").on("data", (d: string) => {
        buf += d;
        const m = /READY (\d+)/.exec(buf);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      emu.on("exit", (code) => {
        clearTimeout(timer);
        reject(new NetlabError("ERR_EMULATOR", `emulator exited with ${code}; see ${dir}/emulator.log`));
      });
    });
    emu.stdout?.destroy();
    emu.removeAllListeners("exit");
    emu.unref();
    if (emu.pid === undefined) throw new NetlabError("ERR_EMULATOR", "emulator has no pid");
    raisePriority(emu.pid, spec.niceness ?? -10);
    this.state.emulator = { pid: emu.pid, controlPort };
    writeState(this.state);

    return cfg;
  }

  private async buildLinkEnds(
    spec: TopologySpec,
    n: PlannedNet,
    i: number,
    l: EmulatorConfig["links"][number],
  ): Promise<void> {
    const dir = stateDir(this.prefix);
    const ends: [string, number, number, string][] = [...n.members.keys()].map((h, k) => [
      h,
      k === 0 ? l.portA : l.portB,
      k === 0 ? l.peerA : l.peerB,
      `${this.prefix}${i}${k === 0 ? "a" : "b"}`,
    ]);
    await Promise.all(
      ends.map(async ([host, emuPort, myPort, tun]) => {
        const slog = openSync(join(dir, `socat-${tun}.log`), "a");
        const s = spawn(
          "socat",
          [
            "-b",
            "65536",
            `TUN,tun-name=${tun},iff-no-pi,tun-type=tun`,
            `UDP4-DATAGRAM:127.0.0.1:${emuPort},bind=127.0.0.1:${myPort},rcvbuf=4194304,sndbuf=4194304`,
          ],
          { detached: true, stdio: ["ignore", "ignore", slog] },
        );
        closeSync(slog);
        s.unref();
        if (s.pid === undefined) throw new NetlabError("ERR_COMMAND", "cannot start socat");
        raisePriority(s.pid, spec.niceness ?? -10);
        this.state.socats.push(s.pid);
        writeState(this.state);
        let ok = false;
        for (let t = 0; t < 250 && !ok; t++) {
          ok = (await run(["ip", "link", "show", "dev", tun])).code === 0;
          if (!ok) {
            if (!alive(s.pid)) break;
            await sleep(20);
          }
        }
        if (!ok)
          throw new NetlabError("ERR_COMMAND", `socat did not create ${tun}; see ${dir}/socat-${tun}.log`);
        const ns = nsName(this.prefix, host);
        const m = n.members.get(host) as { iface: string; addr: string; addr6?: string };
        await must(["ip", "link", "set", tun, "netns", ns]);
        await must(["ip", "-n", ns, "link", "set", tun, "name", m.iface, "txqueuelen", "5000"]);
        await this.addAddrs(ns, m.iface, n, m);
        const bn = (spec.links ?? [])[i]?.bottleneck;
        if (bn !== undefined) await this.shape(host, n.name, bn);
      }),
    );
  }

  private net(name: string): PlannedNet {
    const n = this.plan.nets.find((x) => x.name === name);
    if (n === undefined) throw new NetlabError("ERR_UNKNOWN_NET", `no LAN or link named ${name}`);
    return n;
  }
  private member(host: string, net: string): { iface: string; addr: string; addr6?: string; index: number } {
    this.ns(host);
    const m = this.net(net).members.get(host);
    if (m === undefined) throw new NetlabError("ERR_UNKNOWN_NET", `host ${host} is not on ${net}`);
    return m;
  }
  private live(): void {
    if (this.destroyed) throw new NetlabError("ERR_DESTROYED", "testbed was destroyed");
  }

  /** Host names. */
  get hosts(): readonly string[] {
    return this.plan.hosts;
  }
  /** Names of LANs and links. */
  get nets(): readonly string[] {
    return this.plan.nets.map((n) => n.name);
  }
  /** The namespace of a host (for `ip netns exec`). */
  ns(host: string): string {
    if (!this.plan.hosts.includes(host)) throw new NetlabError("ERR_UNKNOWN_HOST", `no host ${host}`);
    return nsName(this.prefix, host);
  }
  /**
   * The namespace holding LAN `net`'s bridge and the bridge's port for `host` (what
   * {@link linkDown} sets down): watch `ip -n NS -ts monitor link` there to time a cut.
   */
  lanPort(host: string, net: string): { ns: string; port: string } {
    const n = this.net(net);
    if (n.kind !== "lan") throw new NetlabError("ERR_USAGE", `${net} is not a LAN`);
    return { ns: bridgeNs(this.prefix, net), port: `p${this.member(host, net).index}` };
  }
  /** IPv4 address of `host` on LAN or link `net`. */
  hostAddress(host: string, net: string): string {
    return this.member(host, net).addr;
  }
  /** IPv6 address of `host` on `net` (throws when the net has no subnet6). */
  hostAddress6(host: string, net: string): string {
    const a = this.member(host, net).addr6;
    if (a === undefined) throw new NetlabError("ERR_UNKNOWN_NET", `${net} has no IPv6 subnet`);
    return a;
  }
  /** Interface name inside the host's namespace. */
  iface(host: string, net: string): string {
    return this.member(host, net).iface;
  }
  /** MAC address of the host's interface on a LAN (TUN links have none: returns ""). */
  mac(host: string, net: string): string {
    const r = spawnSync("ip", ["-n", this.ns(host), "-j", "link", "show", "dev", this.iface(host, net)], {
      encoding: "utf8",
    });
    if (r.status !== 0)
      throw new NetlabError("ERR_COMMAND", `cannot read the MAC of ${host} on ${net}: ${r.stderr}`);
    const j = JSON.parse(r.stdout) as { address?: string; link_type?: string }[];
    return j[0]?.link_type === "ether" ? (j[0]?.address ?? "") : "";
  }

  /**
   * Addresses on the host's interface on `net` as `ip addr` shows them now (IPv4 and IPv6, without
   * the prefix length), e.g. to check which host holds a virtual address.
   */
  async addresses(host: string, net: string): Promise<string[]> {
    const r = await this.exec(host, ["ip", "-j", "addr", "show", "dev", this.iface(host, net)]);
    if (r.code !== 0)
      throw new NetlabError("ERR_COMMAND", `cannot read the addresses of ${host} on ${net}: ${r.stderr}`);
    const j = JSON.parse(r.stdout || "[]") as { addr_info?: { local?: string }[] }[];
    return (j[0]?.addr_info ?? []).map((a) => a.local ?? "").filter((a) => a !== "");
  }

  /**
   * The host's neighbour-cache entry (`ip neigh`) for `ip` on its interface on `net`: the link-layer
   * address and the state, or undefined when there is no entry (or it has no address: INCOMPLETE/FAILED).
   */
  async neighbour(
    host: string,
    net: string,
    ip: string,
  ): Promise<{ mac: string; state: string } | undefined> {
    const r = await this.exec(host, ["ip", "-j", "neigh", "show", ip, "dev", this.iface(host, net)]);
    if (r.code !== 0) return undefined;
    const e = (JSON.parse(r.stdout || "[]") as { lladdr?: string; state?: string[] }[])[0];
    if (e?.lladdr === undefined) return undefined;
    return { mac: e.lladdr, state: (e.state ?? []).join(",") };
  }

  /** Runs argv inside the host's namespace; resolves with output and exit code, never rejects. */
  exec(
    host: string,
    argv: readonly string[],
    opts: { timeoutMs?: number; input?: string } = {},
  ): Promise<ExecResult> {
    return run(["ip", "netns", "exec", this.ns(host), ...argv], { timeoutMs: 60_000, ...opts });
  }

  /**
   * Starts argv inside the host's namespace (the pid is the program's own: `ip netns exec` execs it).
   * With `priority` (a niceness, e.g. -10) the process runs in a session of its own at that niceness,
   * its autogroup included (see priority.ts: plain niceness does not hold across sessions).
   */
  spawn(
    host: string,
    argv: readonly string[],
    opts: SpawnOptions & { priority?: number } = {},
  ): ChildProcess {
    this.live();
    const { priority, ...spawnOpts } = opts;
    const c = spawn("ip", ["netns", "exec", this.ns(host), ...argv], {
      ...spawnOpts,
      ...(priority !== undefined ? { detached: true } : {}),
    });
    if (priority !== undefined && c.pid !== undefined) raisePriority(c.pid, priority);
    // records are kept after exit (restart() needs them); the table is bounded by forgetting exited ones
    if (this.children.size >= MAX_CHILDREN) {
      for (const [k] of this.children)
        if (k.exitCode !== null || k.signalCode !== null) this.children.delete(k);
    }
    this.children.set(c, { host, argv: [...argv], opts });
    return c;
  }

  /** Fault: stop a process (SIGSTOP). */
  pause(p: ChildProcess): void {
    if (p.pid !== undefined) killPid(p.pid, "SIGSTOP");
  }
  /** Fault: continue a paused process (SIGCONT). */
  resume(p: ChildProcess): void {
    if (p.pid !== undefined) killPid(p.pid, "SIGCONT");
  }
  /** Fault: kill a process. */
  kill(p: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): void {
    if (p.pid !== undefined) killPid(p.pid, signal);
  }
  /** Fault: kill a process started by {@link spawn} and start it again with the same arguments. */
  async restart(p: ChildProcess, signal: NodeJS.Signals = "SIGKILL"): Promise<ChildProcess> {
    const s = this.children.get(p);
    if (s === undefined)
      throw new NetlabError("ERR_USAGE", "restart() takes a process started by this testbed");
    if (p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((r) => p.once("exit", () => r()));
      this.kill(p, signal);
      await gone;
    }
    this.children.delete(p);
    return this.spawn(s.host, s.argv, s.opts);
  }

  /** Fault: cut a host off a LAN (its bridge port goes down) or an emulated link (drops both ways). */
  async linkDown(host: string, net: string): Promise<void> {
    await this.setDown(host, net, true);
  }
  /** Undoes {@link linkDown}. */
  async linkUp(host: string, net: string): Promise<void> {
    await this.setDown(host, net, false);
  }

  private async setDown(host: string, net: string, down: boolean): Promise<void> {
    this.live();
    const m = this.member(host, net);
    const n = this.net(net);
    const key = `${host}/${net}`;
    this.state.down = this.state.down.filter((k) => k !== key);
    if (down) this.state.down.push(key);
    writeState(this.state);
    if (n.kind === "lan") {
      await must([
        "ip",
        "-n",
        bridgeNs(this.prefix, net),
        "link",
        "set",
        `p${m.index}`,
        down ? "down" : "up",
      ]);
    } else await this.syncLinks();
  }

  private groupOf(host: string): number {
    const groups = this.state.partition;
    if (groups === undefined) return 0;
    const g = groups.findIndex((x) => x.includes(host));
    return g === -1 ? groups.length : g;
  }

  private async syncLinks(): Promise<void> {
    const port = this.state.emulator?.controlPort;
    if (port === undefined) return;
    for (const n of this.plan.nets.filter((x) => x.kind === "link")) {
      const [a, b] = [...n.members.keys()] as [string, string];
      const up =
        !this.state.down.includes(`${a}/${n.name}`) &&
        !this.state.down.includes(`${b}/${n.name}`) &&
        this.groupOf(a) === this.groupOf(b);
      await emulatorRequest(port, { op: "set", link: n.name, params: { up } });
    }
  }

  /**
   * Fault: split the hosts into groups that cannot reach each other (hosts not listed form one more
   * group). LAN ports move to one bridge per group; emulated links between groups drop everything.
   */
  async partition(groups: string[][]): Promise<void> {
    this.live();
    for (const g of groups) for (const h of g) this.ns(h);
    this.state.partition = groups.map((g) => [...g]);
    writeState(this.state);
    await this.applyLanGroups();
    await this.syncLinks();
  }

  /** Undoes {@link partition}. */
  async heal(): Promise<void> {
    this.live();
    delete this.state.partition;
    writeState(this.state);
    await this.applyLanGroups();
    await this.syncLinks();
  }

  private async applyLanGroups(): Promise<void> {
    for (const n of this.plan.nets.filter((x) => x.kind === "lan")) {
      const br = bridgeNs(this.prefix, n.name);
      const existing = (await run(["ip", "-n", br, "-o", "link", "show", "type", "bridge"])).stdout;
      for (const [h, m] of n.members) {
        const g = this.groupOf(h);
        const bridge = g === 0 ? "br0" : `br${g}`;
        if (!existing.includes(` ${bridge}:`) && !existing.includes(` ${bridge}@`)) {
          await run(["ip", "-n", br, "link", "add", bridge, "type", "bridge", "forward_delay", "0"]);
          await run(["ip", "-n", br, "link", "set", bridge, "up"]);
        }
        await must(["ip", "-n", br, "link", "set", `p${m.index}`, "master", bridge]);
      }
    }
  }

  /** Changes an emulated link's parameters at run time (both directions unless `dir` is given). */
  async setLink(net: string, params: LinkParams, dir: "ab" | "ba" | "both" = "both"): Promise<void> {
    this.live();
    const n = this.net(net);
    if (n.kind !== "link") throw new NetlabError("ERR_UNKNOWN_NET", `${net} is a LAN, not an emulated link`);
    const problems = checkParams(params);
    if (problems.length > 0) throw new NetlabError("ERR_TOPOLOGY", problems.join("; "));
    const port = this.state.emulator?.controlPort;
    if (port === undefined) throw new NetlabError("ERR_EMULATOR", "no emulator running");
    await emulatorRequest(port, { op: "set", link: net, dir, params });
  }

  /** Counters of the emulated links (received, delivered, dropped per direction). */
  async linkStats(): Promise<Record<string, unknown>> {
    const port = this.state.emulator?.controlPort;
    if (port === undefined) return {};
    return (await emulatorRequest(port, { op: "stats" })).stats as Record<string, unknown>;
  }

  /** Kernel shaping: a `tbf` qdisc on the host's interface on `net` (a bottleneck). */
  async shape(
    host: string,
    net: string,
    b: { rateMbit: number; burstBytes?: number; latencyMs?: number },
  ): Promise<void> {
    await must([
      "tc",
      "-n",
      this.ns(host),
      "qdisc",
      "replace",
      "dev",
      this.iface(host, net),
      "root",
      "tbf",
      "rate",
      `${b.rateMbit}mbit`,
      "burst",
      String(b.burstBytes ?? 32768),
      "latency",
      `${b.latencyMs ?? 50}ms`,
    ]);
  }
  /** Removes {@link shape}. */
  async unshape(host: string, net: string): Promise<void> {
    await run(["tc", "-n", this.ns(host), "qdisc", "del", "dev", this.iface(host, net), "root"]);
  }

  /** The emulator's pid (for crash tests), if the testbed has emulated links. */
  get emulatorPid(): number | undefined {
    return this.state.emulator?.pid;
  }

  /** Removes everything the testbed created. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const c of this.children.keys()) if (c.exitCode === null && c.signalCode === null) this.kill(c);
    await Testbed.cleanup(this.prefix);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
