/** Topology description, validation and address planning (pure; no I/O). */

import type { GilbertElliott, LinkParams } from "./emulator/core.ts";
import { checkParams } from "./emulator/core.ts";
import { NetlabError } from "./errors.ts";

/** A LAN segment: a Linux bridge in its own namespace; every member gets a veth on it. */
export interface LanSpec {
  name: string;
  hosts: string[];
  /** IPv4 subnet, e.g. "10.77.0.0/24"; members get .1, .2, ... in order. */
  subnet: string;
  /** Optional IPv6 subnet, e.g. "fd77::/64"; members get ::1, ::2, ... */
  subnet6?: string;
}

/** Kernel token-bucket shaping (`tc qdisc ... tbf`) applied to both ends of a link. */
export interface Bottleneck {
  rateMbit: number;
  /** Bucket size in bytes (default 32 KiB). */
  burstBytes?: number;
  /** Maximum queueing delay in ms before tail drop (default 50). */
  latencyMs?: number;
}

/** A point-to-point link carried by the user-space emulator (socat TUN devices + emulator process). */
export interface LinkSpec {
  a: string;
  b: string;
  /** Name used by faults and `iface()`; default `${a}-${b}`. */
  name?: string;
  /** IPv4 subnet; a gets the first host address, b the second. Default 10.222.<index>.0/24. */
  subnet?: string;
  subnet6?: string;
  delayMs?: number;
  jitterMs?: number;
  lossPct?: number;
  gilbert?: GilbertElliott;
  rateMbit?: number;
  queuePackets?: number;
  reorder?: boolean;
  /** Parameters for b→a when they differ from a→b (merged over the ones above). */
  reverse?: LinkParams;
  /** Kernel tbf shaping on both TUN devices. */
  bottleneck?: Bottleneck;
  /** Emulator RNG seed for this link (default: its index + 1). */
  seed?: number;
}

export interface TopologySpec {
  /** Name prefix of every namespace, device and state file: 1–8 of [a-z0-9]; default "nl". */
  prefix?: string;
  hosts: string[];
  lans?: LanSpec[];
  links?: LinkSpec[];
  /** "auto" (default): static kernel routes along shortest paths and IP forwarding on hosts with 2+ networks. */
  routes?: "auto" | "none";
  /** sysctls set in every host namespace, e.g. { "net.ipv4.tcp_congestion_control": "cubic" }. */
  sysctls?: Record<string, string>;
  /** Nice value of the emulator and socat processes (default -10: ahead of ordinary work on a busy machine). */
  niceness?: number;
  /** Remove leftovers of an earlier run with the same prefix first (default false: error if any exist). */
  replace?: boolean;
}

export interface PlannedNet {
  kind: "lan" | "link";
  name: string;
  subnet: string;
  prefixLen: number;
  subnet6?: string;
  prefixLen6?: number;
  /** Member host -> { iface, addr, addr6 } */
  members: Map<string, { iface: string; addr: string; addr6?: string; index: number }>;
}

export interface Plan {
  prefix: string;
  hosts: string[];
  nets: PlannedNet[];
  /** host -> list of [destination subnet, via, dev] */
  routes: Map<string, { dest: string; via: string; dev: string; v6: boolean }[]>;
  forwarding: Set<string>;
}

const NAME = /^[a-z0-9][a-z0-9_]{0,10}$/;
const PREFIX = /^[a-z0-9]{1,8}$/;

export function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw new NetlabError("ERR_TOPOLOGY", `bad IPv4 address ${ip}`);
  }
  return (
    (((parts[0] as number) << 24) |
      ((parts[1] as number) << 16) |
      ((parts[2] as number) << 8) |
      (parts[3] as number)) >>>
    0
  );
}
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}
function parseCidr(s: string): { base: number; len: number } {
  const [ip, len] = s.split("/");
  const l = Number(len);
  if (ip === undefined || !Number.isInteger(l) || l < 8 || l > 30) {
    throw new NetlabError("ERR_TOPOLOGY", `bad IPv4 subnet ${s} (want a.b.c.d/8..30)`);
  }
  const mask = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, len: l };
}
function parseCidr6(s: string): { base: string; len: number } {
  const m = /^([0-9a-fA-F:]+)::\/(\d+)$/.exec(s);
  const len = Number(m?.[2]);
  if (m === null || !(len >= 16 && len <= 120)) {
    throw new NetlabError("ERR_TOPOLOGY", `bad IPv6 subnet ${s} (want e.g. fd77::/64 ending in ::)`);
  }
  return { base: m[1] as string, len };
}

/** Emulator parameters of a link spec, for a→b and b→a. */
export function linkParams(l: LinkSpec): { ab: LinkParams; ba: LinkParams } {
  const ab: LinkParams = {};
  for (const k of [
    "delayMs",
    "jitterMs",
    "lossPct",
    "gilbert",
    "rateMbit",
    "queuePackets",
    "reorder",
  ] as const) {
    if (l[k] !== undefined) (ab as Record<string, unknown>)[k] = l[k];
  }
  return { ab, ba: { ...ab, ...(l.reverse ?? {}) } };
}

/** Validates a topology and plans names, addresses and routes. Throws NetlabError("ERR_TOPOLOGY"). */
export function plan(spec: TopologySpec): Plan {
  const bad = (m: string): never => {
    throw new NetlabError("ERR_TOPOLOGY", m);
  };
  const prefix = spec.prefix ?? "nl";
  if (!PREFIX.test(prefix)) bad(`prefix "${prefix}" must be 1-8 characters of [a-z0-9]`);
  if (!Array.isArray(spec.hosts) || spec.hosts.length === 0) bad("hosts must be a non-empty list");
  const hosts = new Set<string>();
  for (const h of spec.hosts) {
    if (typeof h !== "string" || !NAME.test(h)) bad(`host name "${h}" must match ${NAME}`);
    if (hosts.has(h)) bad(`duplicate host ${h}`);
    if (h.startsWith("br_")) bad(`host name "${h}" is reserved (br_ is used for LAN bridges)`);
    hosts.add(h);
  }
  const nets: PlannedNet[] = [];
  const netNames = new Set<string>();
  const ifaces = new Map<string, Set<string>>();
  const useIface = (h: string, i: string) => {
    const s = ifaces.get(h) ?? new Set<string>();
    if (s.has(i)) bad(`host ${h} would get two interfaces named ${i}; give the links distinct names`);
    s.add(i);
    ifaces.set(h, s);
  };
  const addr6 = (base: string, i: number) => `${base}::${i.toString(16)}`;
  for (const lan of spec.lans ?? []) {
    if (!NAME.test(lan.name)) bad(`LAN name "${lan.name}" must match ${NAME}`);
    if (netNames.has(lan.name)) bad(`duplicate network name ${lan.name}`);
    netNames.add(lan.name);
    const { base, len } = parseCidr(lan.subnet);
    const s6 = lan.subnet6 === undefined ? undefined : parseCidr6(lan.subnet6);
    if (lan.hosts.length > 2 ** (32 - len) - 2) bad(`LAN ${lan.name}: subnet too small`);
    const members = new Map<string, { iface: string; addr: string; addr6?: string; index: number }>();
    lan.hosts.forEach((h, i) => {
      if (!hosts.has(h)) bad(`LAN ${lan.name}: unknown host ${h}`);
      if (members.has(h)) bad(`LAN ${lan.name}: host ${h} listed twice`);
      const iface = `eth-${lan.name}`.slice(0, 15);
      useIface(h, iface);
      members.set(h, {
        iface,
        addr: intToIp(base + i + 1),
        ...(s6 ? { addr6: addr6(s6.base, i + 1) } : {}),
        index: i,
      });
    });
    nets.push({
      kind: "lan",
      name: lan.name,
      subnet: `${intToIp(base)}/${len}`,
      prefixLen: len,
      ...(s6 ? { subnet6: `${s6.base}::/${s6.len}`, prefixLen6: s6.len } : {}),
      members,
    });
  }
  (spec.links ?? []).forEach((l, i) => {
    if (!hosts.has(l.a) || !hosts.has(l.b)) bad(`link ${l.a}-${l.b}: unknown host`);
    if (l.a === l.b) bad(`link ${l.a}-${l.b}: both ends on one host`);
    const name = l.name ?? `${l.a}-${l.b}`;
    if (!/^[a-z0-9][a-z0-9_-]{0,22}$/.test(name)) bad(`link name "${name}" is not valid`);
    if (netNames.has(name)) bad(`duplicate network name ${name}`);
    netNames.add(name);
    const { ab, ba } = linkParams(l);
    const problems = [...checkParams(ab), ...checkParams(ba)];
    if (problems.length > 0) bad(`link ${name}: ${problems.join("; ")}`);
    if (i > 255) bad("at most 256 links");
    const { base, len } = parseCidr(l.subnet ?? `10.222.${i}.0/24`);
    const s6 = l.subnet6 === undefined ? undefined : parseCidr6(l.subnet6);
    const ia = l.name === undefined ? `to-${l.b}` : `l-${l.name}`.slice(0, 15);
    const ib = l.name === undefined ? `to-${l.a}` : `l-${l.name}`.slice(0, 15);
    useIface(l.a, ia.slice(0, 15));
    useIface(l.b, ib.slice(0, 15));
    const members = new Map<string, { iface: string; addr: string; addr6?: string; index: number }>();
    members.set(l.a, {
      iface: ia.slice(0, 15),
      addr: intToIp(base + 1),
      ...(s6 ? { addr6: addr6(s6.base, 1) } : {}),
      index: 0,
    });
    members.set(l.b, {
      iface: ib.slice(0, 15),
      addr: intToIp(base + 2),
      ...(s6 ? { addr6: addr6(s6.base, 2) } : {}),
      index: 1,
    });
    nets.push({
      kind: "link",
      name,
      subnet: `${intToIp(base)}/${len}`,
      prefixLen: len,
      ...(s6 ? { subnet6: `${s6.base}::/${s6.len}`, prefixLen6: s6.len } : {}),
      members,
    });
  });

  // Shortest-path static routes (BFS over hosts; a network is one hop).
  const routes = new Map<string, { dest: string; via: string; dev: string; v6: boolean }[]>();
  const forwarding = new Set<string>();
  if ((spec.routes ?? "auto") === "auto") {
    for (const h of hosts) {
      const netsOf = (x: string) => nets.filter((n) => n.members.has(x));
      if (netsOf(h).length >= 2) forwarding.add(h);
      // first[x] = { net, gw } the first hop from h towards x
      const first = new Map<string, { net: PlannedNet; gw: string }>();
      const dist = new Map<string, number>([[h, 0]]);
      const queue = [h];
      while (queue.length > 0) {
        const x = queue.shift() as string;
        for (const n of netsOf(x)) {
          for (const y of n.members.keys()) {
            if (dist.has(y)) continue;
            dist.set(y, (dist.get(x) as number) + 1);
            first.set(y, x === h ? { net: n, gw: y } : (first.get(x) as { net: PlannedNet; gw: string }));
            queue.push(y);
          }
        }
      }
      const list: { dest: string; via: string; dev: string; v6: boolean }[] = [];
      for (const n of nets) {
        if (n.members.has(h)) continue;
        let best: string | undefined;
        for (const y of n.members.keys()) {
          const d = dist.get(y);
          if (d !== undefined && (best === undefined || d < (dist.get(best) as number))) best = y;
        }
        if (best === undefined) continue;
        const f = first.get(best) as { net: PlannedNet; gw: string };
        const gw = f.net.members.get(f.gw) as { addr: string; addr6?: string };
        const dev = (f.net.members.get(h) as { iface: string }).iface;
        list.push({ dest: n.subnet, via: gw.addr, dev, v6: false });
        if (n.subnet6 !== undefined && gw.addr6 !== undefined)
          list.push({ dest: n.subnet6, via: gw.addr6, dev, v6: true });
      }
      routes.set(h, list);
    }
  }
  return { prefix, hosts: [...hosts], nets, routes, forwarding };
}
