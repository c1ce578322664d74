/**
 * The Linux address driver (`@spines-ts/vip/linux`): the only file of the package that touches the
 * operating system. It raises and lowers VIPs with `ip addr`, announces them with `arping`
 * (iputils: gratuitous ARP requests and/or replies) and, for IPv6, with the kernel's unsolicited
 * neighbour advertisement (`ndisc_notify`) plus `na6` (ipv6toolkit) for repeats, notifies
 * configured targets and neighbours learned from the other members directly (`arping` / `ndisc6`
 * from the VIP), and removes addresses a crashed earlier run left behind. docs/vip.md §5.
 */
import { execFile } from "node:child_process";
import { SpinesError } from "@spines-ts/primitives";
import type { VipNeighbor } from "@spines-ts/wire";
import { Address4, Address6 } from "ip-address";
import type { VipAddress, VipGroup } from "./config.ts";
import type { AddressDriver } from "./driver.ts";

/** Result of one command. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Not run: `stillWanted` said no when its turn came. */
  readonly skipped?: boolean;
}

export interface CommandOptions {
  /**
   * Asked right before the command starts (a runner may queue it): false skips it. An announcement
   * of a VIP released meanwhile must not go out late — it would point neighbours back at us after
   * the new holder announced.
   */
  readonly stillWanted?: () => boolean;
  /**
   * Commands to start as soon as this one has run (whatever its status), without a round trip
   * through the caller; their outcome is not reported. The driver passes them only to a runner whose
   * `followUps` property is true (the first announcement of an address right after its `ip addr
   * add`: on a busy host each trip back through the daemon and each process start it makes cost
   * tens of ms, and clients reach the new holder only once they heard the announcement).
   */
  readonly followUps?: readonly (readonly string[])[];
}

/** Runs a command (argv, no shell). Never rejects: a failure is a non-zero `code`. */
export type CommandRunner = ((
  argv: readonly string[],
  options?: CommandOptions,
) => Promise<CommandResult>) & {
  /** True when the runner starts `CommandOptions.followUps`. */
  readonly followUps?: boolean;
};

/** A result for a command `stillWanted` skipped. */
export const SKIPPED: CommandResult = { code: 0, stdout: "", stderr: "", skipped: true };

/** Runs commands on this machine with `execFile` (no shell), 10 s timeout. */
export const execRunner: CommandRunner = (argv, options) =>
  new Promise((resolve) => {
    if (options?.stillWanted?.() === false) {
      resolve(SKIPPED);
      return;
    }
    const [cmd, ...args] = argv;
    execFile(cmd as string, args, { timeout: 10_000, maxBuffer: 4 << 20 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === "number" ? err.code : 127;
      resolve({
        code,
        stdout: String(stdout),
        stderr: String(stderr || (err && err.code !== undefined ? err.message : "")),
      });
    });
  });

/** Waits for every promise; then throws the first failure (so no operation is left running). */
async function settleAll(ps: readonly Promise<void>[]): Promise<void> {
  const rs = await Promise.allSettled(ps);
  for (const r of rs) if (r.status === "rejected") throw r.reason;
}

/** Runs every command inside a network namespace (`ip netns exec NAME ...`); for tests and labs. */
export function netnsRunner(ns: string, inner: CommandRunner = execRunner): CommandRunner {
  return (argv, options) => inner(["ip", "netns", "exec", ns, ...argv], options);
}

/** A command the driver ran failed (or a tool it needs is missing). */
export class LinuxDriverError extends SpinesError {
  readonly argv: readonly string[];
  readonly exitCode: number;
  readonly stderr: string;
  constructor(what: string, argv: readonly string[], r: CommandResult) {
    super(
      "ERR_VIP_DRIVER",
      `${what}: \`${argv.join(" ")}\` exited ${r.code}${r.stderr ? `: ${r.stderr.trim().slice(0, 300)}` : ""}`,
    );
    this.name = "LinuxDriverError";
    this.argv = argv;
    this.exitCode = r.code;
    this.stderr = r.stderr;
  }
}

/** Targets notified directly on every acquire of a VIP on `iface` (Wackamole's `Notify`). */
export interface NotifyEntry {
  readonly iface: string;
  /** An address or a network ("192.0.2.1", "192.0.2.0/28", "2001:db8::1"). At most 4,096 targets. */
  readonly targets: string;
  /** At most this many targets per second (default 64). */
  readonly throttle?: number;
}

export interface LinuxDriverOptions {
  /** IPv4 VIPs get the label `<iface>:<tag>` (the mark `cleanup` looks for). Default "vip". */
  readonly tag?: string;
  /** IPv6 VIPs get this address metric (the mark `cleanup` looks for). Default 4137. */
  readonly metric?: number;
  /** Gratuitous announcements on acquire. */
  readonly announce?: {
    /** Packets per form (default 3). */
    readonly count?: number;
    /** Between packets (default 200 ms). */
    readonly intervalMs?: number;
    /** ARP forms: REQUEST (RFC 5227 announcement), REPLY, or both (default "both"). */
    readonly arpMode?: "request" | "reply" | "both";
    /** Re-announce every held VIP this often (0: never, the default). */
    readonly refreshMs?: number;
    /**
     * One more round (gratuitous forms and the configured notify targets) this long after the
     * acquire, while the VIP is still held (0: none). It corrects neighbours that a late packet of
     * the previous holder pointed back at it (an announcement started just before its release and
     * sent late on a busy host); keepalived's `garp_master_delay` does the same. Default 1,000 ms;
     * none when `count` is 0.
     */
    readonly repeatAfterMs?: number;
  };
  readonly notify?: readonly NotifyEntry[];
  /** Notify neighbours learned from the other members (shared ARP cache) within the VIP's /24 or /64. Default true. */
  readonly notifyNeighbors?: boolean;
  /** Send repeated IPv6 NAs with `na6` (else only the kernel's one, via ndisc_notify). Default true. */
  readonly na6?: boolean;
  readonly runner?: CommandRunner;
  /** Reports failures of background work (announcements, refreshes). Default: ignored. */
  readonly onError?: (err: LinuxDriverError) => void;
}

interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
  label?: string;
  metric?: number;
}

function ipBytes(address: string): Uint8Array {
  if (address.includes(":")) return new Uint8Array(new Address6(address).toUnsignedByteArray().slice(-16));
  return new Uint8Array(new Address4(address).toArray());
}

function macBytes(mac: string): Uint8Array | undefined {
  const parts = mac.split(":");
  if (parts.length !== 6) return undefined;
  const b = parts.map((p) => Number.parseInt(p, 16));
  return b.every((x) => Number.isInteger(x) && x >= 0 && x <= 255) ? new Uint8Array(b) : undefined;
}

function ipText(b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join(".");
  return Address6.fromUnsignedByteArray(Array.from(b)).correctForm();
}

/** Addresses of `spec` ("a.b.c.d", "a.b.c.d/len", IPv6 likewise), at most `max`. */
export function expandTargets(spec: string, max = 4096): string[] {
  if (spec.includes(":")) {
    const a = new Address6(spec);
    if (a.subnetMask === 128 || !spec.includes("/"))
      return [new Address6(a.addressMinusSuffix ?? spec).correctForm()];
    const start = a.startAddress().bigInt();
    const end = a.endAddress().bigInt();
    const out: string[] = [];
    for (let x = start; x <= end && out.length < max; x++) out.push(Address6.fromBigInt(x).correctForm());
    return out;
  }
  const a = new Address4(spec);
  if (!spec.includes("/") || a.subnetMask === 32) return [a.correctForm()];
  const s = Number(a.startAddress().bigInt());
  const e = Number(a.endAddress().bigInt());
  const out: string[] = [];
  // skip the network and broadcast addresses of a real subnet
  for (let x = s + (a.subnetMask < 31 ? 1 : 0); x <= e - (a.subnetMask < 31 ? 1 : 0) && out.length < max; x++)
    out.push([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255].join("."));
  return out;
}

function inPrefix(vip: VipAddress, ip: string, len4 = 24, len6 = 64): boolean {
  try {
    if (vip.family === 4)
      return !ip.includes(":") && new Address4(ip).isInSubnet(new Address4(`${vip.address}/${len4}`));
    return ip.includes(":") && new Address6(ip).isInSubnet(new Address6(`${vip.address}/${len6}`));
  } catch {
    return false;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Raises, announces and lowers VIP groups on Linux. Idempotent: acquiring a present address or
 * releasing an absent one succeeds. Every failed command rejects the operation with a
 * `LinuxDriverError` (the runner reports it); background announcements report through `onError`.
 * Call `cleanup()` once at start to remove addresses an earlier crashed run left (only those with
 * this driver's mark) and `close()` at the end to stop refreshes.
 */
export class LinuxAddressDriver implements AddressDriver {
  readonly tag: string;
  readonly metric: number;
  readonly count: number;
  readonly intervalMs: number;
  readonly arpMode: "request" | "reply" | "both";
  readonly refreshMs: number;
  readonly repeatAfterMs: number;
  readonly notify: readonly NotifyEntry[];
  readonly notifyNeighbors: boolean;
  readonly na6: boolean;
  readonly #run: CommandRunner;
  readonly #onError: (err: LinuxDriverError) => void;
  /** Per group: a generation number; background work of an older generation stops. */
  readonly #gen = new Map<string, number>();
  readonly #held = new Map<string, VipGroup>();
  /** Per "family:iface": its sysctl done or under way (a failed one is forgotten, to be retried). */
  readonly #sysctlDone = new Map<string, Promise<void>>();
  #refresh: ReturnType<typeof setInterval> | undefined;
  /** Commands run (bounded, newest last), for diagnostics and tests. */
  readonly history: string[] = [];

  constructor(options: LinuxDriverOptions = {}) {
    this.tag = options.tag ?? "vip";
    if (!/^[A-Za-z0-9_-]{1,8}$/.test(this.tag))
      throw new RangeError(`tag must be 1-8 of [A-Za-z0-9_-], got ${this.tag}`);
    this.metric = options.metric ?? 4137;
    if (!Number.isInteger(this.metric) || this.metric < 1 || this.metric > 0xffffffff)
      throw new RangeError(`metric must be an integer in [1, 2^32-1], got ${this.metric}`);
    const a = options.announce ?? {};
    this.count = a.count ?? 3;
    this.intervalMs = a.intervalMs ?? 200;
    this.arpMode = a.arpMode ?? "both";
    this.refreshMs = a.refreshMs ?? 0;
    this.repeatAfterMs = a.repeatAfterMs ?? 1000;
    if (!(this.repeatAfterMs >= 0)) throw new RangeError(`announce.repeatAfterMs must be >= 0`);
    if (!Number.isInteger(this.count) || this.count < 0 || this.count > 100)
      throw new RangeError(`announce.count must be in 0..100`);
    if (!(this.intervalMs >= 0)) throw new RangeError(`announce.intervalMs must be >= 0`);
    if (!(this.refreshMs >= 0)) throw new RangeError(`announce.refreshMs must be >= 0`);
    this.notify = options.notify ?? [];
    for (const n of this.notify) expandTargets(n.targets, 1); // validates (throws AddressError)
    this.notifyNeighbors = options.notifyNeighbors ?? true;
    this.na6 = options.na6 ?? true;
    this.#run = options.runner ?? execRunner;
    this.#onError = options.onError ?? (() => {});
    if (this.refreshMs > 0) {
      this.#refresh = setInterval(() => this.#refreshAll(), this.refreshMs);
      this.#refresh.unref?.();
    }
  }

  /** The IPv4 label for an interface, checked against the kernel's 15-character limit. */
  label(iface: string): string {
    const l = `${iface}:${this.tag}`;
    if (l.length > 15) throw new RangeError(`label ${l} is longer than 15 characters: use a shorter tag`);
    return l;
  }

  async acquire(group: VipGroup, neighbors: readonly VipNeighbor[] = []): Promise<void> {
    const gen = (this.#gen.get(group.name) ?? 0) + 1;
    this.#gen.set(group.name, gen);
    this.#held.set(group.name, group);
    // The addresses of a group go up together, one command each: an address already there is
    // "File exists" (idempotent), so no query first; a fail-over waits for the slowest one only.
    // A runner that can start the first round of announcements itself, right after the address is
    // up, gets it as follow-ups of the `ip addr add`; the later rounds are ours as before.
    const early = this.#run.followUps === true && this.count > 0;
    await settleAll(
      group.addresses.map(async (a) => {
        await this.#prepare(a);
        const argv =
          a.family === 4
            ? ["ip", "-4", "addr", "add", a.cidr, "dev", a.iface, "label", this.label(a.iface)]
            : ["ip", "-6", "addr", "add", a.cidr, "dev", a.iface, "nodad", "metric", String(this.metric)];
        const follow = early ? this.#gratuitousArgv(a) : [];
        const r = await this.#exec(argv, follow.length > 0 ? { followUps: follow } : undefined);
        if (r.code !== 0 && !/File exists|already assigned/i.test(r.stderr))
          throw new LinuxDriverError(`acquire ${group.name}`, argv, r);
      }),
    );
    // Announce in the background; a release or a new acquire of the group stops it.
    void this.#announce(group, gen, neighbors, early ? 1 : 0);
  }

  async release(group: VipGroup): Promise<void> {
    this.#gen.set(group.name, (this.#gen.get(group.name) ?? 0) + 1);
    this.#held.delete(group.name);
    // together, one command each: an address already gone is "Cannot assign requested address"
    await settleAll(
      group.addresses.map(async (a) => {
        const argv = ["ip", a.family === 4 ? "-4" : "-6", "addr", "del", a.cidr, "dev", a.iface];
        const r = await this.#exec(argv);
        if (r.code !== 0 && !/Cannot assign requested address|not found/i.test(r.stderr))
          throw new LinuxDriverError(`release ${group.name}`, argv, r);
      }),
    );
  }

  /**
   * Removes every address carrying this driver's mark (IPv4 label `<iface>:<tag>`, IPv6 metric),
   * left by an earlier run that crashed. Returns what it removed ("iface address/len").
   */
  async cleanup(): Promise<string[]> {
    const argv = ["ip", "-j", "addr", "show"];
    const r = await this.#exec(argv);
    if (r.code !== 0) throw new LinuxDriverError("cleanup", argv, r);
    const removed: string[] = [];
    for (const link of JSON.parse(r.stdout || "[]") as { ifname: string; addr_info?: IpAddrInfo[] }[]) {
      for (const ai of link.addr_info ?? []) {
        const mine =
          (ai.family === "inet" && ai.label === `${link.ifname}:${this.tag}`) ||
          (ai.family === "inet6" && ai.metric === this.metric);
        if (!mine) continue;
        const cidr = `${ai.local}/${ai.prefixlen}`;
        const del = ["ip", ai.family === "inet" ? "-4" : "-6", "addr", "del", cidr, "dev", link.ifname];
        const d = await this.#exec(del);
        if (d.code !== 0 && !/Cannot assign requested address/i.test(d.stderr))
          throw new LinuxDriverError("cleanup", del, d);
        removed.push(`${link.ifname} ${cidr}`);
      }
    }
    return removed;
  }

  /** The kernel's neighbour cache (entries with a MAC), at most 1,024, to share with the group. */
  async sampleNeighbors(): Promise<VipNeighbor[]> {
    const argv = ["ip", "-j", "neigh", "show"];
    const r = await this.#exec(argv);
    if (r.code !== 0) throw new LinuxDriverError("sample neighbours", argv, r);
    const out: VipNeighbor[] = [];
    for (const n of JSON.parse(r.stdout || "[]") as { dst: string; lladdr?: string; state?: string[] }[]) {
      if (out.length >= 1024) break;
      if (n.lladdr === undefined || (n.state ?? []).some((s) => s === "FAILED" || s === "INCOMPLETE"))
        continue;
      if (n.dst.toLowerCase().startsWith("fe80")) continue;
      const mac = macBytes(n.lladdr);
      if (mac === undefined) continue;
      try {
        out.push({ ip: ipBytes(n.dst), mac });
      } catch {
        // not an address we can carry
      }
    }
    return out;
  }

  /**
   * Announces a group this driver holds again: one round of gratuitous ARP / NA, or with `neighbors`
   * everything acquire does (rounds and direct notifications); does nothing for a group it does not hold. For the keeper of a group after a merge: the
   * other component's holder announced the same addresses, and clients still point at it.
   */
  reannounce(group: VipGroup, neighbors: readonly VipNeighbor[] = []): void {
    const gen = this.#gen.get(group.name);
    if (gen === undefined || !this.#held.has(group.name)) return;
    // one round of each gratuitous form (cheap: a merge may come with a busy machine)
    const wanted = () => this.#alive(group, gen);
    if (neighbors.length === 0)
      for (const a of group.addresses) for (const p of this.#gratuitous(a, wanted)) void p;
    else void this.#announce(group, gen, neighbors);
  }

  /** Stops the refresh timer and background announcements (does not release anything). */
  close(): void {
    if (this.#refresh !== undefined) clearInterval(this.#refresh);
    this.#refresh = undefined;
    for (const k of this.#gen.keys()) this.#gen.set(k, (this.#gen.get(k) ?? 0) + 1);
  }

  // ------------------------------------------------------------------ internals

  async #exec(argv: readonly string[], options?: CommandOptions): Promise<CommandResult> {
    this.history.push(argv.join(" "));
    for (const f of options?.followUps ?? []) this.history.push(f.join(" "));
    if (this.history.length > 2000) this.history.splice(0, 1000);
    return this.#run(argv, options);
  }

  /**
   * Sets the interface options the groups' addresses need (once per family and interface), so the
   * first fail-over does not wait for them; `acquire` does it too when it was not done.
   */
  async prepare(groups: readonly VipGroup[]): Promise<void> {
    await settleAll(groups.flatMap((g) => g.addresses.map((a) => this.#prepare(a))));
  }

  #prepare(a: VipAddress): Promise<void> {
    const key = `${a.family}:${a.iface}`;
    const known = this.#sysctlDone.get(key);
    if (known !== undefined) return known;
    // IPv4: removing a primary address must not take the secondaries with it (Wackamole's alias
    // cascade). IPv6: the kernel sends an unsolicited NA when a nodad address is added.
    const argv =
      a.family === 4
        ? ["sysctl", "-qw", `net.ipv4.conf.${a.iface}.promote_secondaries=1`]
        : ["sysctl", "-qw", `net.ipv6.conf.${a.iface}.ndisc_notify=1`];
    const p = this.#exec(argv).then((r) => {
      if (r.code !== 0) {
        this.#sysctlDone.delete(key);
        throw new LinuxDriverError(`prepare ${a.iface}`, argv, r);
      }
    });
    this.#sysctlDone.set(key, p);
    return p;
  }

  #alive(group: VipGroup, gen: number): boolean {
    return this.#gen.get(group.name) === gen;
  }

  /** Fires a command without waiting for it (arping lingers ~1 s after its packet); reports failures. */
  #fire(
    what: string,
    argv: readonly string[],
    wanted: () => boolean,
    okCodes: readonly number[] = [0],
  ): Promise<void> {
    return this.#exec(argv, { stillWanted: wanted }).then((r) => {
      if (r.skipped !== true && !okCodes.includes(r.code)) this.#onError(new LinuxDriverError(what, argv, r));
    });
  }

  /** `first`: rounds already sent (as follow-ups of the `ip addr add`). */
  async #announce(group: VipGroup, gen: number, neighbors: readonly VipNeighbor[], first = 0): Promise<void> {
    const pending: Promise<void>[] = [];
    const wanted = () => this.#alive(group, gen);
    for (let i = first; i < this.count && this.#alive(group, gen); i++) {
      if (i > 0) await sleep(this.intervalMs);
      if (!this.#alive(group, gen)) break;
      for (const a of group.addresses) pending.push(...this.#gratuitous(a, wanted));
    }
    // Direct notification: configured targets, then neighbours any member has seen.
    for (const a of group.addresses) {
      for (const n of this.notify) {
        if (n.iface !== a.iface) continue;
        const targets = expandTargets(n.targets).filter(
          (t) => t.includes(":") === (a.family === 6) && t !== a.address,
        );
        const perSecond = Math.max(1, n.throttle ?? 64);
        for (let k = 0; k < targets.length && this.#alive(group, gen); k++) {
          if (k > 0 && k % perSecond === 0) await sleep(1000);
          pending.push(this.#direct(a, targets[k] as string, wanted));
        }
      }
      if (this.notifyNeighbors)
        for (const nb of neighbors) {
          if (!this.#alive(group, gen)) break;
          const ip = ipText(nb.ip);
          if (ip !== a.address && inPrefix(a, ip)) pending.push(this.#direct(a, ip, wanted));
        }
    }
    if (this.repeatAfterMs > 0 && this.count > 0) {
      await sleep(this.repeatAfterMs);
      for (const a of group.addresses) {
        if (!this.#alive(group, gen)) break;
        pending.push(...this.#gratuitous(a, wanted));
        for (const n of this.notify) {
          if (n.iface !== a.iface) continue;
          for (const t of expandTargets(n.targets).filter(
            (t) => t.includes(":") === (a.family === 6) && t !== a.address,
          ))
            pending.push(this.#direct(a, t, wanted));
        }
      }
    }
    await Promise.all(pending);
  }

  #gratuitous(a: VipAddress, wanted: () => boolean): Promise<void>[] {
    const what = `announce ${a.address}`;
    return this.#gratuitousArgv(a).map((argv) => this.#fire(what, argv, wanted));
  }

  /** One round of gratuitous announcements of `a` (commands). */
  #gratuitousArgv(a: VipAddress): string[][] {
    if (a.family === 4) {
      const out: string[][] = [];
      if (this.arpMode !== "reply") out.push(["arping", "-q", "-U", "-c", "1", "-I", a.iface, a.address]);
      if (this.arpMode !== "request") out.push(["arping", "-q", "-A", "-c", "1", "-I", a.iface, a.address]);
      return out;
    }
    // The kernel sends no unsolicited NA for an address added with nodad (ndisc_notify covers link
    // changes only), so na6 sends every round, the first included.
    if (!this.na6) return [];
    return [["na6", "-i", a.iface, "-s", a.address, "-d", "ff02::1", "-t", a.address, "-o", "-e"]];
  }

  /** Tells one neighbour directly: an ARP request / neighbour solicitation from the VIP to it. */
  #direct(a: VipAddress, target: string, wanted: () => boolean): Promise<void> {
    const what = `notify ${target} of ${a.address}`;
    // exit 1 = the neighbour did not answer: it still processed our packet if it is there
    if (a.family === 4)
      return this.#fire(
        what,
        ["arping", "-q", "-c", "1", "-w", "1", "-s", a.address, "-I", a.iface, target],
        wanted,
        [0, 1],
      );
    return this.#fire(
      what,
      ["ndisc6", "-q", "-1", "-r", "1", "-w", "300", "-s", a.address, target, a.iface],
      wanted,
      [0, 1, 2],
    );
  }

  #refreshAll(): void {
    for (const g of this.#held.values()) {
      const gen = this.#gen.get(g.name);
      const wanted = () => this.#gen.get(g.name) === gen && this.#held.has(g.name);
      for (const a of g.addresses) for (const p of this.#gratuitous(a, wanted)) void p;
    }
  }
}

export {
  type Announcement,
  type AnnouncementKind,
  announcementArgv,
  announcementFrame,
  FRAME_BYTES,
  parseAnnouncement,
  parseMac,
} from "./frames.ts";
