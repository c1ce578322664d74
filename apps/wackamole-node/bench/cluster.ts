/**
 * A fail-over lab in network namespaces (root), shared by the namespace tests, `pnpm bench failover`
 * and `pnpm demo failover`: N server namespaces n1..nN and a client `cl` on one bridge (LAN `lan`),
 * optionally a router `r` on that bridge with a remote client `rc` on a second subnet (LAN `far`).
 *
 * - a responder in every server namespace answers UDP (its node id appended to the request) and TCP
 *   (writes its node id) on every VIP, bound in advance (`ip_nonlocal_bind`), so whichever node holds
 *   a VIP answers through it and says who it is;
 * - a prober in a client namespace sends a UDP request to every VIP every few ms and prints one line
 *   each time the node answering through a VIP changes (first reply from a new holder);
 * - `ip monitor address` in every server namespace records when each VIP was added or removed, so
 *   violations (a VIP held twice, or by nobody after fail-over completed) are found exactly;
 * - runners for wackamole-node (config files from the contract, logs parsed) and keepalived (VRRP
 *   instances, one per group).
 *
 * All processes run inside namespaces the lab created; the Testbed removes them on destroy.
 */
import type { ChildProcess } from "node:child_process";
import { appendFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Testbed } from "@spines-ts/netlab";

/** Milliseconds on one clock shared by every process here (wall-clock origin, monotonic after). */
export const now = (): number => performance.timeOrigin + performance.now();

/**
 * A wall-clock time stamp (`ip -ts`, a daemon's pino `time`) in the bench's clock (`now`, which is
 * monotonic from the process start), taken when it is read: the wall clock can be stepped or slewed
 * under a running bench (it once drifted 1.4 s from the monotonic one within a 12-minute case on
 * this VM), the monotonic one cannot; reading adds milliseconds at most.
 */
export const fromWall = (t: number): number => t - (Date.now() - now());
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const REPO = join(import.meta.dirname, "..", "..", "..");
export const WACKAMOLE_BIN = join(REPO, "apps", "wackamole-node", "bin", "wackamole-node.js");
export const WACKACTL_BIN = join(REPO, "apps", "wackamole-node", "bin", "wackactl.js");
/**
 * Every process of the lab (daemons, keepalived, responders, prober) runs at this nice value: the
 * machine is shared with other work, and a daemon starved of CPU for longer than its failure
 * timeout makes the others exclude it (netlab runs its link emulator at -10 for the same reason).
 * Both systems get the same value. FO_NICE overrides it (0: no change).
 */
export const NICE = Number(process.env.FO_NICE ?? -10);
/** FO_LOG_DIR: keep every daemon's log lines there (`n<N>.log`, appended; with the trials' timeline). */
export const LOG_DIR = process.env.FO_LOG_DIR;
/** FO_LOG_LEVEL: the daemons' log level (default info; debug logs every command with its duration). */
export const LOG_LEVEL = process.env.FO_LOG_LEVEL;
/**
 * Spawn options that run a lab process at {@link NICE} in a session of its own: plain niceness does
 * not hold across sessions when the kernel groups them (autogroups; netlab's priority.ts), and the
 * lab competes with whatever else the machine runs.
 */
const PRIO: { priority?: number } = NICE === 0 ? {} : { priority: NICE };
/**
 * Also started under `nice`: niceness is per thread on Linux, and raising the process after it
 * started reaches only its main thread, not the threads it made before (a daemon's command worker).
 */
const niced = (argv: string[]): string[] => (NICE === 0 ? argv : ["nice", "-n", String(NICE), ...argv]);

/** UDP and TCP port of the responders. */
export const SERVICE_PORT = 7007;
/** Membership port of wackamole-node. */
export const MEMBERSHIP_PORT = 4803;

/** Answers on every VIP: UDP echo + 2-byte node id; TCP: writes "<id>\n" and closes. */
const RESPONDER_JS = `
const dgram = require("node:dgram"), net = require("node:net");
const [id, port, ...vips] = process.argv.slice(1);
const tag = Buffer.from([Number(id) >> 8, Number(id) & 255]);
for (const v of vips) {
  const s = dgram.createSocket(v.includes(":") ? "udp6" : "udp4");
  s.on("error", (e) => process.stderr.write("udp " + v + ": " + e.message + "\\n"));
  s.on("message", (m, r) => s.send(Buffer.concat([m, tag]), r.port, r.address, () => {}));
  s.bind(Number(port), v);
  const t = net.createServer((c) => { c.on("error", () => {}); c.end(id + "\\n"); });
  t.on("error", (e) => process.stderr.write("tcp " + v + ": " + e.message + "\\n"));
  t.listen(Number(port), v);
}
process.stdout.write("READY\\n");
`;

/**
 * Sends a 12-byte request (u32 seq, f64 send time) to every VIP every interval; prints
 * "C <vip index> <node> <sent ms> <received ms>" when the answering node of a VIP changes, and on
 * any stdin line "S <json [node, ms since its last reply, replies] per VIP>" (the age is taken by
 * the prober itself, so a slow pipe or a busy reader does not age it).
 */
const PROBER_JS = `
const dgram = require("node:dgram");
const [iv, port, ...vips] = process.argv.slice(1);
const now = () => performance.timeOrigin + performance.now();
const last = vips.map(() => [-1, 0, 0]);
const socks = vips.map((v, i) => {
  const s = dgram.createSocket(v.includes(":") ? "udp6" : "udp4");
  s.on("error", () => {});
  s.on("message", (m) => {
    if (m.length < 14) return;
    const t = now(), node = m.readUInt16BE(12), L = last[i];
    L[2]++;
    if (node !== L[0]) { L[0] = node; process.stdout.write("C " + i + " " + node + " " + m.readDoubleLE(4).toFixed(3) + " " + t.toFixed(3) + "\\n"); }
    L[1] = t;
  });
  s.connect(Number(port), v);
  return s;
});
let seq = 0;
setInterval(() => {
  seq++;
  for (const s of socks) {
    const b = Buffer.alloc(12); b.writeUInt32BE(seq >>> 0, 0); b.writeDoubleLE(now(), 4);
    try { s.send(b, () => {}); } catch {}
  }
}, Number(iv));
process.stdin.on("data", () => process.stdout.write("S " + JSON.stringify(last.map((l) => [l[0], now() - l[1], l[2]])) + "\\n"));
process.stdout.write("READY\\n");
`;

/** One-shot check from a client: UDP and TCP through every VIP; prints {vip: {udp, tcp}} (node ids or null). */
const ASK_JS = `
const dgram = require("node:dgram"), net = require("node:net");
const [port, timeoutMs, ...vips] = process.argv.slice(1);
const one = (v) => Promise.all([
  new Promise((res) => {
    const s = dgram.createSocket(v.includes(":") ? "udp6" : "udp4");
    const done = (x) => { clearInterval(iv); clearTimeout(to); s.close(); res(x); };
    s.on("error", () => {});
    s.on("message", (m) => m.length >= 14 && done(m.readUInt16BE(12)));
    const send = () => { const b = Buffer.alloc(12); try { s.send(b, Number(port), v); } catch {} };
    const iv = setInterval(send, 50); const to = setTimeout(() => done(null), Number(timeoutMs)); send();
  }),
  new Promise((res) => {
    const c = net.connect({ port: Number(port), host: v, timeout: Number(timeoutMs) });
    let d = ""; c.on("data", (x) => (d += x)); c.on("end", () => res(Number(d.trim()) || null));
    c.on("error", () => res(null)); c.on("timeout", () => { c.destroy(); res(null); });
  }),
]).then(([udp, tcp]) => [v, { udp, tcp }]);
Promise.all(vips.map(one)).then((r) => process.stdout.write(JSON.stringify(Object.fromEntries(r)) + "\\n"));
`;

export interface VipGroupSpec {
  name: string;
  /** Addresses with prefix length, e.g. "10.240.0.101/32", "fd40:240::101/128". */
  addresses: string[];
}

export interface LabOptions {
  /** netlab prefix (1-8 of [a-z0-9]). */
  prefix: string;
  nodes: number;
  /** Second octet of the cluster subnet 10.<net>.0.0/24 (the far subnet uses net + 1). */
  net: number;
  groups: VipGroupSpec[];
  /** Add a router `r` on the cluster LAN and a remote client `rc` behind it. */
  router?: boolean;
}

/** Builds the default group table: `count` groups, each with `v4` IPv4 and `v6` IPv6 addresses. */
export function makeGroups(net: number, count: number, v4: number, v6: number): VipGroupSpec[] {
  let k = 0;
  return Array.from({ length: count }, (_, g) => {
    const addresses: string[] = [];
    for (let i = 0; i < v4; i++) addresses.push(`10.${net}.0.${100 + k++}/32`);
    for (let i = 0; i < v6; i++) addresses.push(`fd40:${net}::${(0x100 + k++).toString(16)}/128`);
    return { name: `g${g + 1}`, addresses };
  });
}

export interface AddrEvent {
  t: number;
  node: number;
  vip: string;
  add: boolean;
}

export interface ChangeEvent {
  vip: number;
  node: number;
  sentMs: number;
  recvMs: number;
}

const MONITOR = /^\[(\S+)\] (Deleted )?\d+: \S+\s+inet6? ([0-9a-f.:]+)\//;

/** `[time] 7: p3@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> ...`: the port and its flags. */
const LINK_MONITOR = /^\[(\S+)\] \d+: ([^:@\s]+)(?:@\S+)?: <([^>]*)>/;

/** One line of `ip -ts -o monitor link`: the time (ms), the port, and whether it is down now. */
export function parseLinkEvent(line: string): { t: number; port: string; down: boolean } | undefined {
  const m = LINK_MONITOR.exec(line);
  if (m === null) return undefined;
  const [date, frac] = (m[1] as string).split(".");
  const t = fromWall(Date.parse(`${date}Z`) + Number(`0.${frac ?? "0"}`) * 1000);
  if (!Number.isFinite(t)) return undefined;
  return { t, port: m[2] as string, down: !(m[3] as string).split(",").includes("UP") };
}

/**
 * When port `port` first went down at or after `from` (ms, this host's clock), or undefined when
 * the monitor has not reported it (yet).
 */
export function portDownAt(
  events: readonly { t: number; port: string; down: boolean }[],
  port: string,
  from: number,
): number | undefined {
  for (const e of events) if (e.port === port && e.down && e.t >= from) return e.t;
  return undefined;
}

/** Reads lines of a child's stdout. */
function lines(p: ChildProcess, on: (l: string) => void): void {
  let buf = "";
  p.stdout?.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    for (let i = buf.indexOf("\n"); i >= 0; i = buf.indexOf("\n")) {
      on(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    if (buf.length > 1 << 20) buf = "";
  });
}

function waitLine(p: ChildProcess, re: RegExp, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let err = "";
    p.stderr?.setEncoding("utf8").on("data", (d: string) => {
      if (err.length < 4000) err += d;
    });
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${ms} ms: ${err}`)), ms);
    lines(p, (l) => {
      if (re.test(l)) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    p.once("exit", (c) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${c}: ${err}`));
    });
  });
}

/** Polls `cond` until it returns a value other than undefined/false; throws with `describe()` on timeout. */
export async function waitFor<T>(
  cond: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  describe: () => Promise<string> | string,
  everyMs = 50,
): Promise<T> {
  const end = now() + timeoutMs;
  for (;;) {
    const r = await cond();
    if (r !== undefined && r !== false) return r;
    if (now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${await describe()}`);
    await sleep(everyMs);
  }
}

/** The namespaces, responders, prober and address monitors of one fail-over lab. */
export class FailoverLab {
  readonly tb: Testbed;
  readonly opts: LabOptions;
  readonly dir: string;
  readonly vips: string[];
  readonly addrEvents: AddrEvent[] = [];
  /** Bridge port state changes (`ip monitor link` in the LAN's namespace): when a cut happened. */
  readonly linkEvents: { t: number; port: string; down: boolean }[] = [];
  readonly changes: ChangeEvent[] = [];
  /** Address sets per node at {@link startMonitors} time. */
  initial = new Map<number, Set<string>>();
  initialAt = 0;
  private prober?: ChildProcess;
  private statusWaiters: ((s: [number, number, number][]) => void)[] = [];

  private constructor(tb: Testbed, opts: LabOptions) {
    this.tb = tb;
    this.opts = opts;
    this.dir = `/tmp/fo-lab-${opts.prefix}`;
    this.vips = opts.groups.flatMap((g) => g.addresses.map((a) => a.split("/")[0] as string));
  }

  static async create(opts: LabOptions): Promise<FailoverLab> {
    const servers = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    const lanHosts = [...servers, "cl", ...(opts.router === true ? ["r"] : [])];
    await Testbed.cleanup(opts.prefix);
    const tb = await Testbed.create({
      prefix: opts.prefix,
      hosts: [...lanHosts, ...(opts.router === true ? ["rc"] : [])],
      lans: [
        { name: "lan", hosts: lanHosts, subnet: `10.${opts.net}.0.0/24`, subnet6: `fd40:${opts.net}::/64` },
        ...(opts.router === true
          ? [
              {
                name: "far",
                hosts: ["r", "rc"],
                subnet: `10.${opts.net + 1}.0.0/24`,
                subnet6: `fd40:${opts.net + 1}::/64`,
              },
            ]
          : []),
      ],
      // responders bind every VIP in advance
      sysctls: { "net.ipv4.ip_nonlocal_bind": "1", "net.ipv6.ip_nonlocal_bind": "1" },
    });
    const lab = new FailoverLab(tb, opts);
    rmSync(lab.dir, { recursive: true, force: true });
    mkdirSync(lab.dir, { recursive: true, mode: 0o700 });
    return lab;
  }

  get nodes(): number[] {
    return Array.from({ length: this.opts.nodes }, (_, i) => i + 1);
  }
  host(node: number): string {
    return `n${node}`;
  }
  get iface(): string {
    return this.tb.iface("n1", "lan");
  }
  address(node: number): string {
    return this.tb.hostAddress(this.host(node), "lan");
  }
  mac(node: number): string {
    return this.tb.mac(this.host(node), "lan");
  }
  /** Node whose MAC this is (0 when none). */
  nodeOfMac(mac: string | undefined): number {
    return this.nodes.find((n) => this.mac(n) === mac) ?? 0;
  }

  async startResponders(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        const p = this.tb.spawn(
          this.host(n),
          niced([process.execPath, "-e", RESPONDER_JS, String(n), String(SERVICE_PORT), ...this.vips]),
          { ...PRIO, stdio: ["ignore", "pipe", "pipe"] },
        );
        await waitLine(p, /^READY/, 60_000, `responder on n${n}`);
      }),
    );
  }

  /** Starts the prober in `host` ("cl" or "rc"), one request per VIP every `intervalMs`. */
  async startProber(host = "cl", intervalMs = 5): Promise<void> {
    const p = this.tb.spawn(
      host,
      niced([process.execPath, "-e", PROBER_JS, String(intervalMs), String(SERVICE_PORT), ...this.vips]),
      { ...PRIO, stdio: ["pipe", "pipe", "pipe"] },
    );
    lines(p, (l) => {
      if (l.startsWith("C ")) {
        const [, vip, node, sent, recv] = l.split(" ");
        this.changes.push({
          vip: Number(vip),
          node: Number(node),
          sentMs: Number(sent),
          recvMs: Number(recv),
        });
        if (this.changes.length > 200_000) this.changes.splice(0, 100_000);
      } else if (l.startsWith("S ")) {
        const s = JSON.parse(l.slice(2)) as [number, number, number][]; // [node, age ms, replies]
        for (const w of this.statusWaiters.splice(0)) w(s);
      }
    });
    await waitLine(p, /^READY/, 60_000, `prober on ${host}`);
    this.prober = p;
  }

  /** Per VIP: [node that answered last, ms since that reply (prober's clock), replies]. */
  proberStatus(): Promise<[number, number, number][]> {
    const p = this.prober;
    if (p === undefined) throw new Error("no prober running");
    return new Promise((resolve) => {
      this.statusWaiters.push(resolve);
      p.stdin?.write("?\n");
    });
  }

  /** Starts `ip monitor address` in every server namespace and snapshots the current addresses. */
  async startMonitors(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        // niced like the rest: its time stamps are taken when it reads the event
        const p = this.tb.spawn(this.host(n), niced(["ip", "-ts", "-o", "monitor", "address"]), {
          ...PRIO,
          stdio: ["ignore", "pipe", "pipe"],
        });
        lines(p, (l) => {
          const m = MONITOR.exec(l);
          if (m === null || !this.vips.includes(m[3] as string)) return;
          const [date, frac] = (m[1] as string).split(".");
          const t = fromWall(Date.parse(`${date}Z`) + Number(`0.${frac ?? "0"}`) * 1000);
          this.addrEvents.push({ t, node: n, vip: m[3] as string, add: m[2] === undefined });
          if (this.addrEvents.length > 100_000) this.addrEvents.splice(0, 50_000);
        });
      }),
    );
    // the bridge's ports: a cut (`linkDown`) is an `ip` process the bench starts, which on a loaded
    // host runs milliseconds to tens of milliseconds later; a crash trial counts from the kernel's
    // port-down event instead of from the request
    const { ns } = this.tb.lanPort(this.host(1), "lan");
    const lp = this.tb.spawn(this.host(1), niced(["ip", "-n", ns, "-ts", "-o", "monitor", "link"]), {
      ...PRIO,
      stdio: ["ignore", "pipe", "pipe"],
    });
    lines(lp, (l) => {
      const e = parseLinkEvent(l);
      if (e === undefined) return;
      this.linkEvents.push(e);
      if (this.linkEvents.length > 10_000) this.linkEvents.splice(0, 5_000);
    });
    await sleep(200);
    this.initialAt = now();
    const h = await this.held();
    this.initial = h;
  }

  /** VIPs present on each node's interface now (`ip addr` in every server namespace). */
  async held(): Promise<Map<number, Set<string>>> {
    const out = new Map<number, Set<string>>();
    await Promise.all(
      this.nodes.map(async (n) => {
        const a = await this.tb.addresses(this.host(n), "lan");
        out.set(n, new Set(a.filter((x) => this.vips.includes(x))));
      }),
    );
    return out;
  }

  /** For each VIP, the nodes (among `among`) holding it. */
  async holders(among: readonly number[] = this.nodes): Promise<Map<string, number[]>> {
    const h = await this.held();
    const out = new Map<string, number[]>(this.vips.map((v) => [v, []]));
    for (const n of among) for (const v of h.get(n) ?? []) out.get(v)?.push(n);
    return out;
  }

  /** For each group, its holders among `among`; a group counts as held by a node holding all its addresses. */
  async groupHolders(among: readonly number[] = this.nodes): Promise<Map<string, number[]>> {
    const h = await this.held();
    const out = new Map<string, number[]>();
    for (const g of this.opts.groups) {
      const vs = g.addresses.map((a) => a.split("/")[0] as string);
      out.set(
        g.name,
        among.filter((n) => vs.some((v) => h.get(n)?.has(v))),
      );
      // a partial holding (some addresses of a group on one node, some on another) shows as 2+ holders
    }
    return out;
  }

  /** One-shot UDP and TCP request through every VIP from `host`; node ids that answered (null: none). */
  async ask(
    host: string,
    timeoutMs = 2000,
  ): Promise<Record<string, { udp: number | null; tcp: number | null }>> {
    const r = await this.tb.exec(
      host,
      [process.execPath, "-e", ASK_JS, String(SERVICE_PORT), String(timeoutMs), ...this.vips],
      { timeoutMs: timeoutMs + 30_000 },
    );
    if (r.code !== 0) throw new Error(`ask from ${host} failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as Record<string, { udp: number | null; tcp: number | null }>;
  }

  /** MAC in `host`'s neighbour cache for `vip` (on its LAN `net`). */
  async neighbourMac(host: string, vip: string, net = "lan"): Promise<string | undefined> {
    return (await this.tb.neighbour(host, net, vip))?.mac;
  }

  async destroy(): Promise<void> {
    await this.tb.destroy();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Violations

export interface ViolationInput {
  events: readonly AddrEvent[];
  /** Address sets per node at `from` (or earlier, then events before `from` are applied). */
  initial: Map<number, Set<string>>;
  initialAt: number;
  vips: readonly string[];
  from: number;
  to: number;
  /** Nodes of the component being checked, with the time each stops counting (its daemon died). */
  members: Map<number, number>;
  /** Per VIP, the time after which it must be held exactly once (fail-over completed); others: `from`. */
  settledAt: Map<string, number>;
  /**
   * Whether b is in a's component at time t (wackamole-node: in a's installed view); two holders
   * are in one component when each is in the other's. Default: always (keepalived has no views).
   * Two holders in different components (a membership flap split the cluster) are counted as
   * `splitHolds`, not as violations.
   */
  sameComponent?: (a: number, b: number, t: number) => boolean;
}

export interface ViolationResult {
  /** Distinct moments a VIP was held by two or more members (any time in the window). */
  twice: number;
  /** Distinct moments a VIP was held by no member after its fail-over completed. */
  nobody: number;
  /** VIPs still present on nodes whose daemon is dead (not counted as violations). */
  stale: number;
  /**
   * Distinct moments a VIP was held by two members that were in different components then (one
   * missing from the other's view: a membership flap). Allowed by the contract (one holder per
   * component), reported beside the violations.
   */
  splitHolds: number;
  /** The first violations and split holds: VIP, kind, time after the fault (for the log). */
  details: string[];
}

/** Replays `ip monitor` events over [from, to] and counts violations for one component. */
export function countViolations(x: ViolationInput): ViolationResult {
  const sets = new Map<number, Set<string>>();
  for (const [n, s] of x.initial) sets.set(n, new Set(s));
  const evs = x.events.filter((e) => e.t > x.initialAt && e.t <= x.to).sort((a, b) => a.t - b.t);
  const state = new Map<string, "ok" | "twice" | "nobody" | "split">();
  let twice = 0;
  let nobody = 0;
  let split = 0;
  const details: string[] = [];
  const check = (t: number) => {
    if (t < x.from) return;
    for (const v of x.vips) {
      const hs: number[] = [];
      for (const [n, dead] of x.members) if (t < dead && sets.get(n)?.has(v)) hs.push(n);
      const c = hs.length;
      const settle = x.settledAt.get(v) ?? x.from;
      const same = x.sameComponent;
      const together =
        same === undefined || hs.some((a, i) => hs.slice(i + 1).some((b) => same(a, b, t) && same(b, a, t)));
      const s = c >= 2 ? (together ? "twice" : "split") : c === 0 && t >= settle ? "nobody" : "ok";
      if (s !== (state.get(v) ?? "ok")) {
        if (s === "twice") twice++;
        if (s === "nobody") nobody++;
        if (s === "split") split++;
        if (s !== "ok" && details.length < 10)
          details.push(
            `${v} ${s} at +${(t - x.from).toFixed(1)} ms (settled +${(settle - x.from).toFixed(1)})`,
          );
      }
      state.set(v, s);
    }
  };
  check(x.from);
  const times = new Set<number>([
    ...x.settledAt.values(),
    ...[...x.members.values()].filter(Number.isFinite),
  ]);
  const marks = [...times].filter((t) => t > x.from && t <= x.to).sort((a, b) => a - b);
  let mi = 0;
  for (const e of evs) {
    while (mi < marks.length && (marks[mi] as number) < e.t) check(marks[mi++] as number);
    const s = sets.get(e.node) ?? new Set<string>();
    if (e.add) s.add(e.vip);
    else s.delete(e.vip);
    sets.set(e.node, s);
    check(e.t);
  }
  while (mi < marks.length) check(marks[mi++] as number);
  let stale = 0;
  for (const [n, dead] of x.members) if (dead <= x.to) stale += sets.get(n)?.size ?? 0;
  return { twice, nobody, splitHolds: split, stale, details };
}

// ---------------------------------------------------------------------------------------------
// wackamole-node

export interface WackOptions {
  profile: "default" | "fast";
  matureMs: number;
  holdOffMs: number;
  balance?:
    | { mode: "immediate" }
    | { mode: "off" }
    | { mode: "periodic"; intervalMs: number; maxMoves: number };
  /** Extra notify targets (the router's address). */
  notify?: string[];
  announce?: { count: number; intervalMs: number };
  logLevel?: string;
}

export interface WackLog {
  t: number;
  msg: string;
  group?: string;
  view?: unknown;
  members?: unknown;
  [k: string]: unknown;
}

/** The wackamole-node daemons of a lab. */
export class WackCluster {
  readonly lab: FailoverLab;
  readonly opts: WackOptions;
  readonly procs = new Map<number, ChildProcess>();
  readonly logs = new Map<number, WackLog[]>();
  readonly stderr = new Map<number, string>();
  /** Time each node's current process exited (absent while it runs). */
  readonly exitedAt = new Map<number, number>();

  constructor(lab: FailoverLab, opts: WackOptions) {
    this.lab = lab;
    this.opts = opts;
  }

  configFile(n: number): string {
    return join(this.lab.dir, `n${n}.json`);
  }
  socket(n: number): string {
    return join(this.lab.dir, `n${n}.sock`);
  }

  writeConfigs(): void {
    const lab = this.lab;
    for (const n of lab.nodes) {
      const cfg = {
        id: n,
        group: `fo-${lab.opts.prefix}`,
        bind: { host: lab.address(n), port: MEMBERSHIP_PORT },
        peers: lab.nodes.map((p) => ({ id: p, host: lab.address(p), port: MEMBERSHIP_PORT })),
        profile: this.opts.profile,
        vips: {
          groups: lab.opts.groups.map((g) => ({
            name: g.name,
            addresses: g.addresses.map((a) => `${lab.iface} ${a}`),
          })),
          matureMs: this.opts.matureMs,
          holdOffMs: this.opts.holdOffMs,
          ...(this.opts.balance !== undefined ? { balance: this.opts.balance } : {}),
        },
        ...(this.opts.notify !== undefined && this.opts.notify.length > 0
          ? { notify: this.opts.notify.map((address) => ({ iface: lab.iface, address })) }
          : {}),
        ...(this.opts.announce !== undefined ? { announce: this.opts.announce } : {}),
        driver: "linux",
        control: { socket: this.socket(n) },
        log: { level: LOG_LEVEL ?? this.opts.logLevel ?? "info" },
      };
      writeFileSync(this.configFile(n), `${JSON.stringify(cfg, null, 2)}\n`, { mode: 0o600 });
    }
  }

  /** Starts node n's daemon (again). Resolves once the process runs (not when it joined). */
  start(n: number): ChildProcess {
    const p = this.lab.tb.spawn(
      this.lab.host(n),
      niced([process.execPath, WACKAMOLE_BIN, "--config", this.configFile(n)]),
      {
        ...PRIO,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.procs.set(n, p);
    this.exitedAt.delete(n);
    const log = this.logs.get(n) ?? [];
    this.logs.set(n, log);
    // views of an earlier process of this node do not count for this one (see viewOf)
    log.push({ t: now(), msg: "(process started)" });
    const keep = LOG_DIR === undefined ? undefined : join(LOG_DIR, `n${n}.log`);
    if (keep !== undefined) mkdirSync(LOG_DIR as string, { recursive: true });
    lines(p, (l) => {
      if (keep !== undefined) appendFileSync(keep, `${l}\n`);
      if (!l.startsWith("{")) return;
      try {
        const j = JSON.parse(l) as Record<string, unknown>;
        // The line's own time (pino: wall-clock ms when the daemon logged it), not the moment this
        // process read it: on a loaded host the pipe is read tens of ms late, and a view installed
        // before an address event would seem to come after it (viewAt, sameComponent).
        const t = typeof j.time === "number" && Number.isFinite(j.time) ? fromWall(j.time) : now();
        log.push({ ...j, t, msg: String(j.msg ?? "") });
        if (log.length > 20_000) log.splice(0, 10_000);
      } catch {
        // not a log line
      }
    });
    p.stderr?.setEncoding("utf8").on("data", (d: string) => {
      const s = (this.stderr.get(n) ?? "") + d;
      this.stderr.set(n, s.slice(-8000));
    });
    p.once("exit", () => {
      if (this.procs.get(n) === p) this.exitedAt.set(n, now());
    });
    return p;
  }

  startAll(): void {
    this.writeConfigs();
    for (const n of this.lab.nodes) this.start(n);
  }

  running(n: number): boolean {
    const p = this.procs.get(n);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /**
   * Members of the last view node n installed at or before time t (from its log, as the lab read
   * it), or undefined (no view yet, or a process start in between).
   */
  viewAt(n: number, t: number): number[] | undefined {
    const log = this.logs.get(n) ?? [];
    let found: number[] | undefined;
    for (const e of log) {
      if (e.t > t) break;
      if (e.msg === "(process started)") found = undefined;
      else if (e.msg === "view installed" && Array.isArray(e.members)) found = e.members as number[];
    }
    return found;
  }

  /** Members of the last view node n's current process installed (from its log), or undefined. */
  viewOf(n: number): number[] | undefined {
    const log = this.logs.get(n) ?? [];
    for (let i = log.length - 1; i >= 0; i--) {
      const e = log[i] as WackLog;
      if (e.msg === "(process started)") return undefined;
      if (e.msg === "view installed") {
        const m = e.members;
        const ids = (x: unknown[]) =>
          x.map((y) =>
            typeof y === "object" && y !== null ? Number((y as { id?: unknown }).id) : Number(y),
          );
        if (Array.isArray(m)) return ids(m);
        const v = e.view as { members?: unknown } | undefined;
        if (v !== undefined && Array.isArray(v.members)) return ids(v.members);
      }
    }
    return undefined;
  }

  /** Runs `wackactl ARGS` against node n (inside its namespace); throws when it fails. */
  async ctl(n: number, args: string[]): Promise<string> {
    const r = await this.lab.tb.exec(
      this.lab.host(n),
      [process.execPath, WACKACTL_BIN, "--socket", this.socket(n), ...args],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0) throw new Error(`wackactl ${args.join(" ")} on n${n}: exit ${r.code}: ${r.stderr}`);
    return r.stdout;
  }

  /** `wackactl --json status` of node n (inside its namespace). */
  async status(n: number): Promise<Record<string, unknown> | undefined> {
    const r = await this.lab.tb.exec(
      this.lab.host(n),
      [process.execPath, WACKACTL_BIN, "--socket", this.socket(n), "--json", "status"],
      { timeoutMs: 30_000 },
    );
    if (r.code !== 0) return undefined;
    try {
      return JSON.parse(r.stdout) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  }

  /** Kills node n's daemon and resolves when it has exited. */
  async stop(n: number, signal: NodeJS.Signals): Promise<number | null> {
    const p = this.procs.get(n);
    if (p === undefined || !this.running(n)) return p?.exitCode ?? null;
    const gone = new Promise<number | null>((r) => p.once("exit", (c) => r(c)));
    p.kill(signal);
    return gone;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.lab.nodes.map((n) => this.stop(n, "SIGTERM")));
  }

  /** Last lines of node n's log and stderr, for error messages. */
  tail(n: number): string {
    const log = (this.logs.get(n) ?? []).slice(-8).map((e) => JSON.stringify(e));
    return `n${n}: ${log.join("\n  ")}\n  stderr: ${(this.stderr.get(n) ?? "").slice(-1500)}`;
  }
}

// ---------------------------------------------------------------------------------------------
// keepalived

export interface KeepalivedOptions {
  /** Advertisement interval in seconds (1: VRRPv2, the default; fractions need VRRPv3). */
  advertInt: number;
}

/** keepalived (VRRP) on every server: one instance per VIP group, group k mastered by node k mod N. */
export class KeepalivedCluster {
  readonly lab: FailoverLab;
  readonly opts: KeepalivedOptions;
  readonly procs = new Map<number, ChildProcess>();
  readonly exitedAt = new Map<number, number>();
  readonly output = new Map<number, string>();

  constructor(lab: FailoverLab, opts: KeepalivedOptions) {
    this.lab = lab;
    this.opts = opts;
  }

  /** Priority of node n (1-based) for group k (0-based): the master is node k mod N + 1. */
  priority(n: number, k: number): number {
    const N = this.lab.opts.nodes;
    const rank = (n - 1 - (k % N) + N) % N;
    return 200 - rank * 10;
  }

  config(n: number): string {
    const lab = this.lab;
    const v3 = !Number.isInteger(this.opts.advertInt);
    const inst = lab.opts.groups.map((g, k) => {
      const v4 = g.addresses.filter((a) => !a.includes(":"));
      const v6 = g.addresses.filter((a) => a.includes(":"));
      const vips = [...v4, ...v6].map((a) => `    ${a} dev ${lab.iface}`).join("\n");
      return `vrrp_instance ${g.name} {
  state BACKUP
  interface ${lab.iface}
  virtual_router_id ${k + 1}
  priority ${this.priority(n, k)}
  advert_int ${this.opts.advertInt}
  virtual_ipaddress {
${vips}
  }
}
`;
    });
    return `# generated by apps/wackamole-node/bench/cluster.ts
global_defs {
  router_id n${n}
  vrrp_version ${v3 ? 3 : 2}
  enable_script_security
}
${inst.join("\n")}`;
  }

  private files(n: number): { conf: string; pid: string; vrrp: string } {
    const d = this.lab.dir;
    return {
      conf: join(d, `ka-n${n}.conf`),
      pid: join(d, `ka-n${n}.pid`),
      vrrp: join(d, `ka-n${n}-vrrp.pid`),
    };
  }

  start(n: number): ChildProcess {
    const f = this.files(n);
    writeFileSync(f.conf, this.config(n));
    // the previous process is gone (stop waited for it), but its killed VRRP child may not be
    // reaped yet: keepalived would take that zombie's pid file for a running daemon and exit
    rmSync(f.pid, { force: true });
    rmSync(f.vrrp, { force: true });
    const p = this.lab.tb.spawn(
      this.lab.host(n),
      niced(["keepalived", "-n", "-l", "-P", "-f", f.conf, "-p", f.pid, "-r", f.vrrp, "-i", `n${n}`]),
      { ...PRIO, stdio: ["ignore", "pipe", "pipe"] },
    );
    this.procs.set(n, p);
    this.exitedAt.delete(n);
    const keep = (d: string) => this.output.set(n, ((this.output.get(n) ?? "") + d).slice(-8000));
    p.stdout?.setEncoding("utf8").on("data", keep);
    p.stderr?.setEncoding("utf8").on("data", keep);
    p.once("exit", () => {
      if (this.procs.get(n) === p) this.exitedAt.set(n, now());
    });
    return p;
  }

  startAll(): void {
    for (const n of this.lab.nodes) this.start(n);
  }

  running(n: number): boolean {
    const p = this.procs.get(n);
    return p !== undefined && p.exitCode === null && p.signalCode === null;
  }

  /**
   * SIGTERM: keepalived's own shutdown (priority-0 adverts, addresses removed). SIGKILL: the VRRP
   * child and the parent are both killed at once (a parent killed alone takes its child down cleanly).
   */
  async stop(n: number, signal: NodeJS.Signals): Promise<number | null> {
    const p = this.procs.get(n);
    if (p === undefined || !this.running(n)) return p?.exitCode ?? null;
    const gone = new Promise<number | null>((r) => p.once("exit", (c) => r(c)));
    if (signal === "SIGKILL") {
      try {
        process.kill(Number(readFileSync(this.files(n).vrrp, "utf8").trim()), "SIGKILL");
      } catch {
        // no child (yet)
      }
    }
    p.kill(signal);
    return gone;
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.lab.nodes.map((n) => this.stop(n, "SIGTERM")));
  }

  tail(n: number): string {
    return `n${n}: ${(this.output.get(n) ?? "").slice(-1500)}`;
  }
}
