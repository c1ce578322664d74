/**
 * The wackamole-node configuration: a YAML or JSON file, checked key by key (unknown keys are
 * errors), then command-line flags over it. Every problem is a `ConfigError` naming the file (and
 * line), the dotted key and what was expected. The VIP table itself is checked by
 * `@spines-ts/vip` (`VipCore`'s own validation), re-anchored at the file's line.
 */
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { formatHostPort, type HostPort, isLoopback, parseHostPort } from "@spines-ts/daemon-kit";
import { ConfigError, type NodeId } from "@spines-ts/primitives";
import { type BalanceMode, VipCore } from "@spines-ts/vip";
import { expandTargets } from "@spines-ts/vip/linux";
import { LineCounter, parseDocument } from "yaml";
import { readKeyFile } from "./keyfile.ts";

export const VERSION = "0.0.0";
/** Spread's port, which Wackamole clusters used; the default membership port here. */
export const DEFAULT_PORT = 4803;
export const DEFAULT_GROUP = "wackamole";

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const PROFILES = ["default", "fast"] as const;
export type Profile = (typeof PROFILES)[number];
export const DRIVERS = ["linux", "dry-run"] as const;
export type DriverKind = (typeof DRIVERS)[number];

export interface PeerConfig {
  readonly id: NodeId;
  readonly host: string;
  readonly port: number;
}

export interface DiscoveryConfig {
  readonly address: string;
  readonly port: number;
  readonly interface?: string;
  readonly ttl?: number;
}

export interface VipsConfig {
  readonly groups: readonly { readonly name: string; readonly addresses: readonly string[] }[];
  readonly prefer: readonly string[];
  readonly matureMs: number;
  readonly holdOffMs: number;
  readonly balance: BalanceMode;
  readonly neighborShareMs: number;
}

export interface NotifyConfig {
  readonly iface: string;
  /** An address or a network ("192.0.2.1", "192.0.2.0/28", "2001:db8::1"). */
  readonly address: string;
  /** Targets per second (default 64). */
  readonly throttle?: number;
}

export interface AnnounceConfig {
  readonly count: number;
  readonly intervalMs: number;
  readonly arpMode: "request" | "reply" | "both";
  readonly refreshMs: number;
  readonly repeatAfterMs: number;
}

export interface TrackConfig {
  readonly command: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fall: number;
  readonly rise: number;
}

export interface HooksConfig {
  readonly up: string | undefined;
  readonly down: string | undefined;
  readonly timeoutMs: number;
  /** Hooks running at once; more wait in a bounded queue. */
  readonly concurrency: number;
}

export interface LimitsConfig {
  readonly maxControlConnections: number;
}

/** The daemon's resolved configuration: every field set, every value checked. */
export interface WackConfig {
  readonly id: NodeId;
  readonly group: string;
  readonly bind: HostPort;
  readonly peers: readonly PeerConfig[];
  readonly discovery: DiscoveryConfig | undefined;
  readonly profile: Profile;
  readonly auth: { readonly keyFile: string } | undefined;
  readonly vips: VipsConfig;
  readonly notify: readonly NotifyConfig[];
  readonly announce: AnnounceConfig;
  readonly driver: DriverKind;
  readonly track: TrackConfig | undefined;
  readonly hooks: HooksConfig;
  readonly control: string;
  readonly metrics: HostPort | undefined;
  readonly logLevel: LogLevel;
  readonly limits: LimitsConfig;
  /** The config file this came from (SIGHUP re-reads it). */
  readonly configFile: string | undefined;
}

/** The control socket when neither the file nor a flag names one. */
export function defaultControlPath(): string {
  return process.getuid?.() === 0
    ? "/run/wackamole-node/control.sock"
    : join(tmpdir(), "wackamole-node.sock");
}

export const HELP = `Usage: wackamole-node --config FILE [options]

N-way IP fail-over (after Wackamole, Johns Hopkins): the members of a cluster
agree on membership views and share a table of virtual IP groups; every group
is held by exactly one member of each connected component, and taken over
(with ARP / neighbour announcements) when its holder fails.

Options:
  -c, --config FILE            YAML or JSON configuration (see docs/wackamole-node.md)
      --id N                   this node's id, 1..65535
      --bind HOST:PORT         membership UDP socket (IPv6 as [ADDR]:PORT)
      --control PATH           control socket for wackactl (mode 0600)
      --metrics ADDR:PORT      Prometheus metrics, loopback only ("none": off)
      --profile default|fast   membership timing (crash detected in ~0.35 s / ~0.13 s)
      --driver linux|dry-run   linux: ip/arping/na6 (root); dry-run: only log
      --log-level LEVEL        trace|debug|info|warn|error|fatal|silent
      --check                  validate the configuration and exit (0 ok, 2 bad)
      --import-wackamole-conf FILE
                               print the YAML equivalent of a classic
                               wackamole.conf and exit
      --gen-key FILE           write a new membership key file (mode 0600) and exit
  -h, --help                   print this help and exit
  -V, --version                print the version and exit

Flags override the configuration file. Minimal file:

  id: 1
  bind: { host: 10.0.0.1, port: 4803 }
  peers: [{ id: 2, host: 10.0.0.2, port: 4803 }]
  auth: { keyFile: /etc/wackamole-node/cluster.key }
  vips:
    groups:
      - { name: web, addresses: ["eth0 10.0.0.100/24"] }
  control: { socket: /run/wackamole-node/control.sock }

Signals: SIGHUP reloads the file (VIP table, track, hooks, notify, log level;
id and bind changes are refused); SIGTERM/SIGINT release every VIP and exit 0.
Control: wackactl [--socket PATH] [--json] status|list|fail|succeed|balance

Exit status: 0 normal; 1 cannot start (socket in use, no permission);
2 bad usage or configuration.
`;

/** What the command line says. */
export interface CliOptions {
  config?: string;
  id?: NodeId;
  bind?: HostPort;
  control?: string;
  metrics?: HostPort | false;
  profile?: Profile;
  driver?: DriverKind;
  logLevel?: LogLevel;
  check: boolean;
  importConf?: string;
  genKey?: string;
  help: boolean;
  version: boolean;
}

const CLI = "command line";
const FLAG_ALIASES: Record<string, string> = { "-c": "--config", "-h": "--help", "-V": "--version" };
const VALUE_FLAGS = new Set([
  "--config",
  "--id",
  "--bind",
  "--control",
  "--metrics",
  "--profile",
  "--driver",
  "--log-level",
  "--import-wackamole-conf",
  "--gen-key",
]);
const BOOL_FLAGS = new Set(["--help", "--version", "--check"]);

function oneOf<T extends string>(source: string, key: string, list: readonly T[], v: unknown): T {
  if (typeof v !== "string" || !(list as readonly string[]).includes(v))
    throw new ConfigError(source, key, list.join("|"), v);
  return v as T;
}

function nodeId(source: string, key: string, v: unknown): NodeId {
  const n = typeof v === "string" && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 65535)
    throw new ConfigError(source, key, "an integer node id in 1..65535", v);
  return n;
}

function hostPort(source: string, key: string, text: string, defaultPort?: number): HostPort {
  try {
    return parseHostPort(text, defaultPort);
  } catch (e) {
    throw new ConfigError(source, key, '"ADDR:PORT"', `${text} (${(e as Error).message})`);
  }
}

function loopback(source: string, key: string, text: string): HostPort {
  const hp = hostPort(source, key, text);
  if (!isLoopback(hp.host))
    throw new ConfigError(source, key, "a loopback address (127.x.x.x or [::1])", text);
  return hp;
}

/** Parses argv (without node and script). Throws ConfigError naming the flag. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { check: false, help: false, version: false };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i] ?? "";
    let flag = raw;
    let value: string | undefined;
    const eq = raw.indexOf("=");
    if (raw.startsWith("--") && eq > 0) {
      flag = raw.slice(0, eq);
      value = raw.slice(eq + 1);
    }
    flag = FLAG_ALIASES[flag] ?? flag;
    if (BOOL_FLAGS.has(flag)) {
      if (value !== undefined) throw new ConfigError(CLI, flag, "no value", value);
      if (flag === "--help") o.help = true;
      else if (flag === "--version") o.version = true;
      else o.check = true;
      continue;
    }
    if (!VALUE_FLAGS.has(flag))
      throw new ConfigError(
        CLI,
        raw,
        "a known option (see --help)",
        raw.startsWith("-") ? "unknown option" : "an argument",
      );
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined) throw new ConfigError(CLI, flag, "a value", "end of arguments");
      i++;
    }
    switch (flag) {
      case "--config":
        o.config = value;
        break;
      case "--id":
        o.id = nodeId(CLI, flag, value);
        break;
      case "--bind":
        o.bind = hostPort(CLI, flag, value, DEFAULT_PORT);
        break;
      case "--control":
        if (value === "") throw new ConfigError(CLI, flag, "a path", value);
        o.control = resolve(value);
        break;
      case "--metrics":
        o.metrics = value === "none" ? false : loopback(CLI, flag, value);
        break;
      case "--profile":
        o.profile = oneOf(CLI, flag, PROFILES, value);
        break;
      case "--driver":
        o.driver = oneOf(CLI, flag, DRIVERS, value);
        break;
      case "--log-level":
        o.logLevel = oneOf(CLI, flag, LOG_LEVELS, value);
        break;
      case "--import-wackamole-conf":
        o.importConf = value;
        break;
      case "--gen-key":
        o.genKey = value;
        break;
    }
  }
  return o;
}

/** What a config file says, validated; merged with flags by `resolveConfig`. */
export type FileConfig = Partial<Omit<WackConfig, "configFile">>;

const TOP_KEYS = [
  "id",
  "group",
  "bind",
  "peers",
  "discovery",
  "profile",
  "auth",
  "vips",
  "notify",
  "announce",
  "driver",
  "track",
  "hooks",
  "control",
  "metrics",
  "log",
  "limits",
] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): unknown {
  if (Array.isArray(v)) return "a list";
  if (isObject(v)) return "a mapping";
  return v;
}

type Seg = string | number;

/**
 * Reads and validates a YAML or JSON config file. Errors name `file:line`, the dotted key
 * (`vips.groups[1].addresses[0]`) and the problem.
 */
export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, "(file)", "a readable file", (e as NodeJS.ErrnoException).code ?? String(e));
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, path: string): FileConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const pos = lc.linePos(first.pos[0]);
    throw new ConfigError(
      `${path}:${pos.line}:${pos.col}`,
      "(syntax)",
      "valid YAML or JSON",
      first.message.split("\n")[0],
    );
  }
  const where = (segments: Seg[]): string => {
    const node = doc.getIn(segments, true) as { range?: [number, number, number] } | undefined;
    const at = node?.range?.[0];
    if (at === undefined) return segments.length > 0 ? where(segments.slice(0, -1)) : path;
    return `${path}:${lc.linePos(at).line}`;
  };
  const keyText = (segments: Seg[]): string =>
    segments.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("") || "(root)";
  const fail = (segments: Seg[], expected: string, found: unknown): never => {
    throw new ConfigError(where(segments), keyText(segments), expected, describe(found));
  };
  const obj = (segs: Seg[], v: unknown, keys: readonly string[]): Record<string, unknown> => {
    if (!isObject(v)) return fail(segs, "a mapping", v);
    for (const k of Object.keys(v))
      if (!keys.includes(k)) fail([...segs, k], `one of ${keys.join(", ")}`, "an unknown key");
    return v;
  };
  const str = (segs: Seg[], v: unknown, max = 4096): string =>
    typeof v === "string" && v.length > 0 && v.length <= max
      ? v
      : fail(segs, `a string of 1..${max} characters`, v);
  const int = (segs: Seg[], v: unknown, min: number, max: number): number =>
    typeof v === "number" && Number.isInteger(v) && v >= min && v <= max
      ? v
      : fail(segs, `an integer in ${min}..${max}`, v);
  const ms = (segs: Seg[], v: unknown, min = 0, max = 86_400_000): number =>
    typeof v === "number" && Number.isFinite(v) && v >= min && v <= max
      ? v
      : fail(segs, `a number of milliseconds in ${min}..${max}`, v);
  const ip = (segs: Seg[], v: unknown): string => {
    const s = str(segs, v, 64);
    try {
      return parseHostPort(s, 0).host;
    } catch {
      return fail(segs, "an IPv4 or IPv6 address", v);
    }
  };
  const port = (segs: Seg[], v: unknown): number => int(segs, v, 0, 65535);
  const base = dirname(resolve(path));

  const root: unknown = doc.toJS();
  const out: { -readonly [K in keyof FileConfig]: FileConfig[K] } = {};
  if (root === null || root === undefined) return out;
  const r = obj([], root, TOP_KEYS);

  if (r.id !== undefined)
    out.id =
      typeof r.id === "number" ? int(["id"], r.id, 1, 65535) : fail(["id"], "an integer in 1..65535", r.id);
  if (r.group !== undefined) {
    const g = str(["group"], r.group, 32);
    if (!/^[A-Za-z0-9_.-]+$/.test(g)) fail(["group"], "a group name of A-Z a-z 0-9 _ . -", g);
    out.group = g;
  }
  if (r.bind !== undefined) {
    const b = obj(["bind"], r.bind, ["host", "port"]);
    out.bind = {
      host: b.host === undefined ? "0.0.0.0" : ip(["bind", "host"], b.host),
      port: b.port === undefined ? DEFAULT_PORT : port(["bind", "port"], b.port),
    };
  }
  if (r.peers !== undefined) {
    if (!Array.isArray(r.peers)) fail(["peers"], "a list of { id, host, port }", r.peers);
    const peers = r.peers as unknown[];
    if (peers.length > 1024) fail(["peers"], "at most 1024 peers", peers.length);
    const seen = new Set<number>();
    out.peers = peers.map((p, i) => {
      const o = obj(["peers", i], p, ["id", "host", "port"]);
      const id =
        o.id === undefined
          ? fail(["peers", i, "id"], "a node id", undefined)
          : int(["peers", i, "id"], o.id, 1, 65535);
      if (seen.has(id)) fail(["peers", i, "id"], "a node id not listed before", id);
      seen.add(id);
      if (o.host === undefined) fail(["peers", i, "host"], "an IPv4 or IPv6 address", undefined);
      return {
        id,
        host: ip(["peers", i, "host"], o.host),
        port: o.port === undefined ? DEFAULT_PORT : int(["peers", i, "port"], o.port, 1, 65535),
      };
    });
  }
  if (r.discovery !== undefined) {
    const d = obj(["discovery"], r.discovery, ["address", "port", "interface", "ttl"]);
    if (d.address === undefined)
      fail(["discovery", "address"], "a multicast group or broadcast address", undefined);
    out.discovery = {
      address: ip(["discovery", "address"], d.address),
      port: d.port === undefined ? DEFAULT_PORT + 1 : int(["discovery", "port"], d.port, 1, 65535),
      ...(d.interface !== undefined ? { interface: ip(["discovery", "interface"], d.interface) } : {}),
      ...(d.ttl !== undefined ? { ttl: int(["discovery", "ttl"], d.ttl, 0, 255) } : {}),
    };
  }
  if (r.profile !== undefined) {
    if (typeof r.profile !== "string" || !(PROFILES as readonly string[]).includes(r.profile))
      fail(["profile"], PROFILES.join("|"), r.profile);
    out.profile = r.profile as Profile;
  }
  if (r.auth !== undefined) {
    const a = obj(["auth"], r.auth, ["keyFile"]);
    if (a.keyFile === undefined) fail(["auth", "keyFile"], "the path of a key file", undefined);
    out.auth = { keyFile: resolve(base, str(["auth", "keyFile"], a.keyFile)) };
  }
  if (r.vips !== undefined) {
    const v = obj(["vips"], r.vips, [
      "groups",
      "prefer",
      "matureMs",
      "holdOffMs",
      "balance",
      "neighborShareMs",
    ]);
    if (v.groups === undefined) fail(["vips", "groups"], "a list of { name, addresses }", undefined);
    if (!Array.isArray(v.groups)) fail(["vips", "groups"], "a list of { name, addresses }", v.groups);
    const groups = (v.groups as unknown[]).map((g, i) => {
      const o = obj(["vips", "groups", i], g, ["name", "addresses"]);
      if (o.name === undefined) fail(["vips", "groups", i, "name"], "a group name", undefined);
      if (!Array.isArray(o.addresses))
        fail(["vips", "groups", i, "addresses"], 'a list of "iface address/len"', o.addresses);
      return {
        name: str(["vips", "groups", i, "name"], o.name, 64),
        addresses: (o.addresses as unknown[]).map((a, j) =>
          str(["vips", "groups", i, "addresses", j], a, 128),
        ),
      };
    });
    let prefer: string[] = [];
    if (v.prefer !== undefined) {
      if (!Array.isArray(v.prefer)) fail(["vips", "prefer"], "a list of group names", v.prefer);
      prefer = (v.prefer as unknown[]).map((p, i) => str(["vips", "prefer", i], p, 64));
    }
    let balance: BalanceMode = { mode: "periodic", intervalMs: 4000, movesPerRound: 1 };
    if (v.balance !== undefined) {
      const b = obj(["vips", "balance"], v.balance, ["mode", "intervalMs", "maxMoves"]);
      const mode = b.mode ?? "periodic";
      if (mode === "off" || mode === "immediate") {
        for (const k of ["intervalMs", "maxMoves"])
          if (b[k] !== undefined) fail(["vips", "balance", k], `no ${k} with mode ${mode}`, b[k]);
        balance = { mode };
      } else if (mode === "periodic") {
        balance = {
          mode,
          intervalMs:
            b.intervalMs === undefined ? 4000 : ms(["vips", "balance", "intervalMs"], b.intervalMs, 1),
          movesPerRound:
            b.maxMoves === undefined ? 1 : int(["vips", "balance", "maxMoves"], b.maxMoves, 1, 1024),
        };
      } else fail(["vips", "balance", "mode"], "off|immediate|periodic", mode);
    }
    const vips: VipsConfig = {
      groups,
      prefer,
      matureMs: v.matureMs === undefined ? 5000 : ms(["vips", "matureMs"], v.matureMs),
      holdOffMs: v.holdOffMs === undefined ? 10_000 : ms(["vips", "holdOffMs"], v.holdOffMs),
      balance,
      neighborShareMs:
        v.neighborShareMs === undefined ? 60_000 : ms(["vips", "neighborShareMs"], v.neighborShareMs),
    };
    // The table's own rules (addresses, unique names, bounds, prefer names): VipCore's validation.
    try {
      new VipCore(vips, 1);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      const segs = e.key
        .replace(/\[(\d+)\]/g, ".$1")
        .split(".")
        .filter((s) => s !== "")
        .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
      const body = e.message.slice(`${e.source}: ${e.key}: `.length);
      const cut = body.lastIndexOf(", found ");
      const expected = body.slice("expected ".length, cut < 0 ? undefined : cut);
      const found = cut < 0 ? "?" : body.slice(cut + ", found ".length);
      const full: Seg[] = ["vips", ...segs];
      throw new ConfigError(where(full), keyText(full), expected, found.replace(/^"(.*)"$/, "$1"));
    }
    out.vips = vips;
  }
  if (r.notify !== undefined) {
    if (!Array.isArray(r.notify)) fail(["notify"], "a list of { iface, address }", r.notify);
    out.notify = (r.notify as unknown[]).map((n, i) => {
      const o = obj(["notify", i], n, ["iface", "address", "throttle"]);
      const iface = str(["notify", i, "iface"], o.iface, 15);
      if (!/^[A-Za-z0-9_.-]{1,15}$/.test(iface)) fail(["notify", i, "iface"], "an interface name", iface);
      const address = str(["notify", i, "address"], o.address, 64);
      try {
        expandTargets(address, 1);
      } catch (e) {
        fail(
          ["notify", i, "address"],
          "an address or network (a.b.c.d[/len], x::y[/len])",
          `${address} (${(e as Error).message})`,
        );
      }
      return {
        iface,
        address,
        ...(o.throttle !== undefined
          ? { throttle: int(["notify", i, "throttle"], o.throttle, 1, 100_000) }
          : {}),
      };
    });
    if (out.notify.length > 256) fail(["notify"], "at most 256 entries", out.notify.length);
  }
  if (r.announce !== undefined) {
    const a = obj(["announce"], r.announce, ["count", "intervalMs", "arpMode", "refreshMs", "repeatAfterMs"]);
    out.announce = {
      count: a.count === undefined ? 3 : int(["announce", "count"], a.count, 0, 100),
      intervalMs: a.intervalMs === undefined ? 200 : ms(["announce", "intervalMs"], a.intervalMs, 0, 60_000),
      arpMode:
        a.arpMode === undefined
          ? "both"
          : oneOf(
              where(["announce", "arpMode"]),
              "announce.arpMode",
              ["request", "reply", "both"] as const,
              a.arpMode,
            ),
      refreshMs: a.refreshMs === undefined ? 0 : ms(["announce", "refreshMs"], a.refreshMs),
      repeatAfterMs:
        a.repeatAfterMs === undefined ? 1000 : ms(["announce", "repeatAfterMs"], a.repeatAfterMs, 0, 60_000),
    };
  }
  if (r.driver !== undefined) out.driver = oneOf(where(["driver"]), "driver", DRIVERS, r.driver);
  if (r.track !== undefined) {
    const t = obj(["track"], r.track, ["command", "intervalMs", "timeoutMs", "fall", "rise"]);
    if (t.command === undefined) fail(["track", "command"], "a shell command", undefined);
    out.track = {
      command: str(["track", "command"], t.command),
      intervalMs: t.intervalMs === undefined ? 1000 : ms(["track", "intervalMs"], t.intervalMs, 10),
      timeoutMs: t.timeoutMs === undefined ? 2000 : ms(["track", "timeoutMs"], t.timeoutMs, 10),
      fall: t.fall === undefined ? 2 : int(["track", "fall"], t.fall, 1, 1000),
      rise: t.rise === undefined ? 2 : int(["track", "rise"], t.rise, 1, 1000),
    };
  }
  if (r.hooks !== undefined) {
    const h = obj(["hooks"], r.hooks, ["up", "down", "timeoutMs", "concurrency"]);
    out.hooks = {
      up: h.up === undefined ? undefined : str(["hooks", "up"], h.up),
      down: h.down === undefined ? undefined : str(["hooks", "down"], h.down),
      timeoutMs: h.timeoutMs === undefined ? 10_000 : ms(["hooks", "timeoutMs"], h.timeoutMs, 10),
      concurrency: h.concurrency === undefined ? 4 : int(["hooks", "concurrency"], h.concurrency, 1, 64),
    };
  }
  if (r.control !== undefined) {
    const c = obj(["control"], r.control, ["socket"]);
    if (c.socket === undefined) fail(["control", "socket"], "a socket path", undefined);
    out.control = resolve(base, str(["control", "socket"], c.socket, 100));
  }
  if (r.metrics !== undefined) {
    const m = obj(["metrics"], r.metrics, ["listen"]);
    if (m.listen === undefined) fail(["metrics", "listen"], '"ADDR:PORT" on loopback', undefined);
    const text = str(["metrics", "listen"], m.listen, 64);
    let hp: HostPort;
    try {
      hp = parseHostPort(text);
    } catch (e) {
      return fail(["metrics", "listen"], '"ADDR:PORT"', `${text} (${(e as Error).message})`);
    }
    if (!isLoopback(hp.host)) fail(["metrics", "listen"], "a loopback address (127.x.x.x or [::1])", text);
    out.metrics = hp;
  }
  if (r.log !== undefined) {
    const l = obj(["log"], r.log, ["level"]);
    if (l.level !== undefined)
      out.logLevel = oneOf(where(["log", "level"]), "log.level", LOG_LEVELS, l.level);
  }
  if (r.limits !== undefined) {
    const l = obj(["limits"], r.limits, ["maxControlConnections"]);
    out.limits = {
      maxControlConnections:
        l.maxControlConnections === undefined
          ? 16
          : int(["limits", "maxControlConnections"], l.maxControlConnections, 1, 1024),
    };
  }
  return out;
}

/** File, then flags. Throws ConfigError for anything missing or inconsistent. */
export function resolveConfig(cli: CliOptions): WackConfig {
  const source = cli.config ?? CLI;
  const f: FileConfig = cli.config !== undefined ? loadConfigFile(cli.config) : {};
  const id = cli.id ?? f.id;
  if (id === undefined)
    throw new ConfigError(source, "id", "this node's id (config `id` or --id)", "nothing");
  if (f.vips === undefined) throw new ConfigError(source, "vips", "a VIP table (vips.groups)", "nothing");
  const bind = cli.bind ?? f.bind ?? { host: "0.0.0.0", port: DEFAULT_PORT };
  const peers = (f.peers ?? []).filter((p) => p.id !== id);
  for (const p of peers)
    if (p.host === bind.host && p.port === bind.port)
      throw new ConfigError(
        source,
        "peers",
        `peers other than this node's own bind address ${formatHostPort(bind)}`,
        `peer ${p.id}`,
      );
  const driver = cli.driver ?? f.driver ?? "linux";
  if (driver === "linux" && cli.importConf === undefined && process.platform !== "linux")
    throw new ConfigError(source, "driver", 'dry-run (the "linux" driver needs Linux)', driver);
  if (f.auth !== undefined) readKeyFile(f.auth.keyFile);
  return {
    id,
    group: f.group ?? DEFAULT_GROUP,
    bind,
    peers,
    discovery: f.discovery,
    profile: cli.profile ?? f.profile ?? "default",
    auth: f.auth,
    vips: f.vips,
    notify: f.notify ?? [],
    announce: f.announce ?? { count: 3, intervalMs: 200, arpMode: "both", refreshMs: 0, repeatAfterMs: 1000 },
    driver,
    track: f.track,
    hooks: f.hooks ?? { up: undefined, down: undefined, timeoutMs: 10_000, concurrency: 4 },
    control: cli.control ?? f.control ?? defaultControlPath(),
    metrics: cli.metrics === false ? undefined : (cli.metrics ?? f.metrics),
    logLevel: cli.logLevel ?? f.logLevel ?? "info",
    limits: f.limits ?? { maxControlConnections: 16 },
    configFile: cli.config === undefined ? undefined : resolve(cli.config),
  };
}
