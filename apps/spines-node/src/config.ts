import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { defaultLinkConfig, type LinkConfig, resolveLinkConfig } from "@spines-ts/link-arq";
import { DAEMON_DEFAULTS } from "@spines-ts/overlay";
import { ConfigError, type NodeId } from "@spines-ts/primitives";
import { Metric } from "@spines-ts/routing";
import { resolveSessionConfig, type SessionConfig } from "@spines-ts/session";
import { KeyFileError, type KeySet, parseKeyFile } from "@spines-ts/wire/auth";
import { LineCounter, parseDocument } from "yaml";
import {
  AddressSyntaxError,
  defaultNodeId,
  type Endpoint,
  formatEndpoint,
  isNodeId,
  parseEndpoint,
  parseNodeId,
} from "./address.ts";
import { checkEmulation, type EmulationParams } from "./emulation-params.ts";
import { neighborsFromSpinesConf, parseSpinesConf } from "./spines-conf.ts";

export const VERSION = "0.0.0";
/** Spines' base port. spines-node uses one UDP port per node, by default this one. */
export const DEFAULT_PORT = 8100;

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface NeighborConfig {
  readonly id: NodeId;
  readonly endpoint: Endpoint;
  /**
   * Configured cost (1..32767, from spines.conf edges or the config file): the link's static weight
   * in routing, which advertises weight × the metric's cost (docs/routing.md §4).
   */
  readonly cost?: number;
  readonly emulation?: EmulationParams;
}

/** The daemon's resolved configuration: every field set, every value checked. */
export interface DaemonConfig {
  readonly id: NodeId;
  readonly listen: Endpoint;
  readonly neighbors: readonly NeighborConfig[];
  readonly logLevel: LogLevel;
  /** Unix control socket path. */
  readonly control: string;
  /** Unix socket for clients; undefined turns it off. */
  readonly clientSocket: string | undefined;
  /** Optional localhost TCP listener for clients. */
  readonly clientTcp: Endpoint | undefined;
  /**
   * File holding the token TCP clients present in HELLO; undefined with clientTcp: the daemon
   * generates one into `${control}.token` (mode 0600). See docs/security.md.
   */
  readonly clientToken?: string | undefined;
  /** Optional Prometheus endpoint (loopback only). */
  readonly metrics: Endpoint | undefined;
  /** The config file this came from, for SIGHUP reloads. */
  readonly configFile: string | undefined;
  readonly limits: Limits;
  /** Link tunables (link-arq `LinkConfig`), checked at load time. */
  readonly link: Partial<LinkConfig>;
  /** Session tunables (session `SessionConfig`), checked at load time. */
  readonly session: Partial<SessionConfig>;
  /** Routing metric (Spines `-w`): hops, latency, loss or explat. */
  readonly metric: Metric;
  /**
   * The overlay key file (`--key-file`, config `auth.keyFile`): with one, every datagram is signed
   * and verified (docs/security.md); undefined runs unauthenticated links (warned at start). The
   * file was read and checked when the configuration was resolved; the daemon reads it again.
   */
  readonly keyFile?: string | undefined;
  /** Config `auth.encrypt`: encrypt datagram bodies too (ChaCha20-Poly1305); needs a key file. */
  readonly encrypt?: boolean;
  /**
   * The node ids of the overlay, when the configuration lists them: config `nodes` and the Hosts of
   * an imported spines.conf, with this node and its neighbours added. Routing drops items that name
   * any other node (counted as `dropBadNode`; docs/security.md). Undefined (neither is given):
   * every node id is accepted, as a neighbours-only configuration cannot know the nodes beyond.
   */
  readonly nodes?: readonly NodeId[] | undefined;
}

/** Most node ids config `nodes` may list (the router's default bound on origins is 4096). */
export const MAX_CONFIG_NODES = 65_536;

export interface Limits {
  /** Concurrent client connections. */
  readonly maxClients: number;
  /** Concurrent control connections. */
  readonly maxControlConnections: number;
  /** Largest client-protocol frame in bytes. */
  readonly maxClientFrameBytes: number;
  /** Open handles (listeners, sessions, datagram sockets) per client connection. */
  readonly maxHandlesPerClient: number;
  /** Bytes queued towards one client before the daemon stops delivering to it and reading from it. */
  readonly clientQueueBytes: number;
  /** Milliseconds a client (or control client) paused at a full queue may read nothing before it is disconnected. */
  readonly clientStallMs: number;
}

/**
 * Session settings the daemon changes from the session core's defaults: `DAEMON_DEFAULTS.session`
 * of `@spines-ts/overlay` (the reasons are there), the settings the overlay netsim sweeps run.
 */
export const DAEMON_SESSION_DEFAULTS: Partial<SessionConfig> = DAEMON_DEFAULTS.session;

export const DEFAULT_LIMITS: Limits = {
  maxClients: 256,
  maxControlConnections: 16,
  maxClientFrameBytes: 1 << 20,
  maxHandlesPerClient: 1024,
  clientQueueBytes: 4 << 20,
  clientStallMs: 10_000,
};

/** What the command line says; every field optional, merged over the config file. */
export interface CliOptions {
  id?: NodeId;
  listen?: Endpoint;
  neighbors: NeighborConfig[];
  config?: string;
  /** A classic spines.conf to import Hosts and Edges from (`--spines-conf`). */
  spinesConf?: string;
  logLevel?: LogLevel;
  control?: string;
  clientSocket?: string | false;
  clientTcp?: Endpoint;
  clientToken?: string;
  metrics?: Endpoint;
  /** `--key-file FILE`. */
  keyFile?: string;
  /** `--gen-key FILE`: write a new key file (mode 0600) and exit. */
  genKey?: string;
  help: boolean;
  version: boolean;
}

export const HELP = `Usage: spines-node [options]

Run one node of a spines-ts overlay: hop-by-hop reliable UDP links to the
configured neighbours, link-state routing, and end-to-end sessions for local
clients.

Options:
  -i, --id ID                node id: 1..4294967294 or a dotted IPv4 address
                             (default: derived from --listen, as Spines does)
  -l, --listen ADDR:PORT     UDP address to listen on; IPv6 as [ADDR]:PORT
                             (default: 0.0.0.0:${DEFAULT_PORT})
  -n, --neighbor [ID@]ADDR:PORT
                             a neighbour; repeat for each (ID defaults as for --id)
  -c, --config FILE          YAML or JSON configuration file (see below), or a
                             classic spines.conf (recognised by its Hosts/Edges)
      --spines-conf FILE     import Hosts and Edges of a spines.conf; pick the
                             local host with --id N (or by the --listen address)
      --log-level LEVEL      trace|debug|info|warn|error|fatal|silent (default: info)
      --control PATH         control socket, mode 0600
                             (default: $TMPDIR/spines-node-PORT.ctl when listening
                             on 0.0.0.0 or [::], else $TMPDIR/spines-node-PORT-ID.ctl)
      --client-socket PATH   client socket (default: $TMPDIR/spines-node-PORT.sock);
                             "none" turns it off
      --client-tcp ADDR:PORT also accept clients over TCP (loopback only); they must
                             send the token in HELLO (docs/security.md)
      --client-token FILE    the token for --client-tcp (default: generated into
                             CONTROL.token, mode 0600, at every start)
      --metrics ADDR:PORT    serve Prometheus metrics (loopback only),
                             e.g. 127.0.0.1:9464
      --key-file FILE        authenticate every overlay datagram with the keys
                             in FILE (HMAC-SHA-256, replay window; docs/security.md);
                             every node of the overlay needs the same key.
                             Without it the links are unauthenticated.
      --gen-key FILE         write a new key file (one random 32-byte key,
                             mode 0600; refuses to overwrite) and exit
  -h, --help                 print this help and exit
  -V, --version              print the version and exit

Flags override the configuration file; --neighbor adds to its neighbours.
The configuration file holds the same settings (id, listen, neighbors,
logLevel, control, clientSocket, clientTcp, metrics, auth: { keyFile }), per-neighbour link
emulation, the routing metric (metric: hops|latency|loss|explat), link and
session tunables (link: {...}, session: {...}), limits, and may import the
Hosts and Edges of a classic spines.conf. A neighbour's cost (1..32767; from
Edges or "cost:") weighs its link in routing: the link advertises cost x the
metric's cost, so with "metric: hops" routes follow the configured costs:

  id: 1
  listen: 10.0.0.1:8100
  neighbors:
    - id: 2
      address: 10.0.0.2:8100
      cost: 1
      emulation: { delayMs: 20, lossPct: 1, bandwidthKbps: 10000 }
  spinesConf: { file: spines.conf, port: 8100 }

"nodes: [1, 2, 3, ...]" lists the overlay's node ids (an imported spines.conf's
Hosts count too): routing then ignores updates naming any other node
(docs/security.md). Without either, every node id is accepted.

Signals: SIGTERM and SIGINT close sessions and exit 0; SIGHUP re-reads the
configuration file and applies the log level, link emulation and costs.

Exit status: 0 after SIGTERM/SIGINT, --help or --version; 1 if the daemon
cannot start (address or socket in use); 2 for bad usage or configuration.

Control: newline-delimited JSON on the control socket; spinesctl (package
@spines-ts/spines-tools) speaks it, e.g.
  spinesctl --control /tmp/spines-node-8100.ctl status
Client protocol: docs/client-protocol.md.
`;

const FLAG_ALIASES: Record<string, string> = {
  "-i": "--id",
  "-l": "--listen",
  "-n": "--neighbor",
  "-c": "--config",
  "-h": "--help",
  "-V": "--version",
  "--neighbour": "--neighbor",
};
const VALUE_FLAGS = new Set([
  "--id",
  "--listen",
  "--neighbor",
  "--config",
  "--spines-conf",
  "--log-level",
  "--control",
  "--client-socket",
  "--client-tcp",
  "--client-token",
  "--metrics",
  "--key-file",
  "--gen-key",
]);
const BOOL_FLAGS = new Set(["--help", "--version"]);

const CLI = "command line";

function endpointOr(source: string, key: string, text: string, defaultPort?: number): Endpoint {
  try {
    return parseEndpoint(text, defaultPort);
  } catch (e) {
    if (e instanceof AddressSyntaxError)
      throw new ConfigError(source, key, "ADDR:PORT", `${text} (${e.message})`);
    throw e;
  }
}

function loopbackEndpoint(source: string, key: string, text: string): Endpoint {
  const ep = endpointOr(source, key, text);
  if (!isLoopback(ep.address))
    throw new ConfigError(source, key, "a loopback address (127.x.x.x or ::1)", text);
  return ep;
}

export function isLoopback(address: string): boolean {
  return address === "::1" || /^127\./.test(address);
}

/** `[ID@]ADDR:PORT` */
function neighborSpec(source: string, key: string, text: string): NeighborConfig {
  const at = text.indexOf("@");
  const ep = endpointOr(source, key, at >= 0 ? text.slice(at + 1) : text, DEFAULT_PORT);
  let id: NodeId | undefined;
  if (at >= 0) {
    id = parseNodeId(text.slice(0, at));
    if (id === undefined) throw new ConfigError(source, key, "ID@ADDR:PORT with ID in 1..4294967294", text);
  } else {
    id = defaultNodeId(ep, DEFAULT_PORT);
  }
  return { id, endpoint: ep };
}

function logLevel(source: string, key: string, v: unknown): LogLevel {
  if (typeof v !== "string" || !(LOG_LEVELS as readonly string[]).includes(v)) {
    throw new ConfigError(source, key, LOG_LEVELS.join("|"), v);
  }
  return v as LogLevel;
}

/** Parses argv (without node and script). Throws ConfigError naming the flag. */
export function parseArgs(argv: readonly string[]): CliOptions {
  const o: CliOptions = { neighbors: [], help: false, version: false };
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
      else o.version = true;
      continue;
    }
    if (!VALUE_FLAGS.has(flag)) {
      throw new ConfigError(
        CLI,
        raw,
        "a known option (see --help)",
        raw.startsWith("-") ? "unknown option" : "an argument",
      );
    }
    if (value === undefined) {
      value = argv[i + 1];
      if (value === undefined) throw new ConfigError(CLI, flag, "a value", "end of arguments");
      i++;
    }
    switch (flag) {
      case "--id": {
        const id = parseNodeId(value);
        if (id === undefined)
          throw new ConfigError(CLI, flag, "a node id from 1 to 4294967294 or an IPv4 address", value);
        o.id = id;
        break;
      }
      case "--listen":
        o.listen = endpointOr(CLI, flag, value, DEFAULT_PORT);
        break;
      case "--neighbor":
        o.neighbors.push(neighborSpec(CLI, flag, value));
        break;
      case "--config":
        o.config = value;
        break;
      case "--spines-conf":
        o.spinesConf = value;
        break;
      case "--log-level":
        o.logLevel = logLevel(CLI, flag, value);
        break;
      case "--control":
        o.control = value;
        break;
      case "--client-socket":
        o.clientSocket = value === "none" ? false : value;
        break;
      case "--client-tcp":
        o.clientTcp = loopbackEndpoint(CLI, flag, value);
        break;
      case "--client-token":
        o.clientToken = value;
        break;
      case "--metrics":
        o.metrics = loopbackEndpoint(CLI, flag, value);
        break;
      case "--key-file":
        o.keyFile = value;
        break;
      case "--gen-key":
        o.genKey = value;
        break;
    }
  }
  return o;
}

/** What a config file says, validated but not yet merged. */
export interface FileConfig {
  id?: NodeId;
  listen?: Endpoint;
  neighbors: NeighborConfig[];
  logLevel?: LogLevel;
  control?: string;
  clientSocket?: string | false;
  clientTcp?: Endpoint;
  clientToken?: string;
  metrics?: Endpoint;
  /** `auth.keyFile`, resolved against the file's directory. */
  keyFile?: string;
  /** `auth.encrypt`. */
  encrypt?: boolean;
  limits: Partial<Limits>;
  link?: Partial<LinkConfig>;
  session?: Partial<SessionConfig>;
  metric?: Metric;
  /** From `spinesConf`: resolved after the local id is known. */
  spinesConf?: { file: string; port: number };
  /** `nodes`: the overlay's node ids. */
  nodes?: NodeId[];
}

const FILE_KEYS = [
  "id",
  "listen",
  "neighbors",
  "logLevel",
  "control",
  "clientSocket",
  "clientTcp",
  "clientToken",
  "metrics",
  "limits",
  "spinesConf",
  "link",
  "session",
  "metric",
  "auth",
  "nodes",
] as const;
const NEIGHBOR_KEYS = ["id", "address", "cost", "emulation"] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describe(v: unknown): unknown {
  if (Array.isArray(v)) return "a list";
  if (isObject(v)) return "a mapping";
  return v;
}

/**
 * Reads and validates a YAML or JSON config file. Every problem is a ConfigError whose source is
 * `file:line` (when the line is known) and whose key is the dotted path, e.g. `neighbors[1].address`.
 */
export function loadConfigFile(path: string): FileConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new ConfigError(path, "(file)", "a readable file", (e as NodeJS.ErrnoException).code ?? String(e));
  }
  if (looksLikeSpinesConf(text)) {
    return { neighbors: [], limits: {}, spinesConf: { file: resolve(path), port: DEFAULT_PORT } };
  }
  return parseConfigText(text, path);
}

/** A classic Spines configuration file: a `Hosts {` or `Edges {` section opens a line. */
export function looksLikeSpinesConf(text: string): boolean {
  return /^[ \t]*(Hosts|Edges)[ \t]*(\{|\r?$)/im.test(text);
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
  const where = (segments: (string | number)[]): string => {
    const node = doc.getIn(segments, true) as { range?: [number, number, number] } | undefined;
    const at = node?.range?.[0];
    if (at === undefined) {
      // Fall back to the parent's line.
      if (segments.length > 1) return where(segments.slice(0, -1));
      return path;
    }
    return `${path}:${lc.linePos(at).line}`;
  };
  const fail = (segments: (string | number)[], expected: string, found: unknown): never => {
    const key = segments.map((s, i) => (typeof s === "number" ? `[${s}]` : i === 0 ? s : `.${s}`)).join("");
    throw new ConfigError(where(segments), key, expected, describe(found));
  };
  /** A ConfigError from a core's own validation, re-anchored at this file's line and key path. */
  const rewrap = (e: ConfigError, segments: string[]): never => {
    const body = e.message.slice(`${e.source}: ${e.key}: `.length);
    const cut = body.lastIndexOf(", found ");
    const expected = body.slice("expected ".length, cut < 0 ? undefined : cut);
    const foundText = cut < 0 ? "?" : body.slice(cut + ", found ".length);
    let found: unknown = foundText;
    try {
      found = JSON.parse(foundText);
    } catch {
      // not JSON: keep the text
    }
    throw new ConfigError(where(segments), segments.join("."), expected, found);
  };
  const root: unknown = doc.toJS();
  const out: FileConfig = { neighbors: [], limits: {} };
  if (root === null || root === undefined) return out;
  if (!isObject(root)) return fail([], "a mapping at the top level", root);
  for (const k of Object.keys(root)) {
    if (!(FILE_KEYS as readonly string[]).includes(k))
      fail([k], `one of ${FILE_KEYS.join(", ")}`, "an unknown key");
  }
  const str = (k: string, v: unknown): string =>
    typeof v === "string" && v !== "" ? v : fail([k], "a string", v);
  const ep = (segs: (string | number)[], v: unknown, defaultPort?: number): Endpoint => {
    if (typeof v !== "string") return fail(segs, '"ADDR:PORT"', v);
    try {
      return parseEndpoint(v, defaultPort);
    } catch (e) {
      return fail(segs, '"ADDR:PORT"', `${v} (${(e as Error).message})`);
    }
  };
  const lb = (k: string, v: unknown): Endpoint => {
    const e = ep([k], v);
    if (!isLoopback(e.address)) fail([k], "a loopback address (127.x.x.x or ::1)", v);
    return e;
  };
  const idOf = (segs: (string | number)[], v: unknown): NodeId => {
    if (isNodeId(v)) return v;
    if (typeof v === "string") {
      const id = parseNodeId(v);
      if (id !== undefined) return id;
    }
    return fail(segs, "a node id from 1 to 4294967294 or an IPv4 address", v);
  };
  if (root.id !== undefined) out.id = idOf(["id"], root.id);
  if (root.listen !== undefined) out.listen = ep(["listen"], root.listen, DEFAULT_PORT);
  if (root.logLevel !== undefined) {
    if (typeof root.logLevel !== "string" || !(LOG_LEVELS as readonly string[]).includes(root.logLevel)) {
      fail(["logLevel"], LOG_LEVELS.join("|"), root.logLevel);
    }
    out.logLevel = root.logLevel as LogLevel;
  }
  const base = dirname(resolve(path));
  if (root.control !== undefined) out.control = resolve(base, str("control", root.control));
  if (root.clientSocket !== undefined) {
    out.clientSocket =
      root.clientSocket === false || root.clientSocket === "none"
        ? false
        : resolve(base, str("clientSocket", root.clientSocket));
  }
  if (root.clientTcp !== undefined) out.clientTcp = lb("clientTcp", root.clientTcp);
  if (root.clientToken !== undefined) out.clientToken = resolve(base, str("clientToken", root.clientToken));
  if (root.metrics !== undefined) out.metrics = lb("metrics", root.metrics);
  if (root.auth !== undefined) {
    if (!isObject(root.auth)) fail(["auth"], "a mapping { keyFile, encrypt }", root.auth);
    const a = root.auth as Record<string, unknown>;
    for (const k of Object.keys(a))
      if (k !== "keyFile" && k !== "encrypt") fail(["auth", k], "keyFile or encrypt", "an unknown key");
    if (typeof a.keyFile !== "string" || a.keyFile === "")
      fail(["auth", "keyFile"], "a file name", a.keyFile);
    out.keyFile = resolve(base, a.keyFile as string);
    if (a.encrypt !== undefined) {
      if (typeof a.encrypt !== "boolean") fail(["auth", "encrypt"], "true or false", a.encrypt);
      out.encrypt = a.encrypt as boolean;
    }
  }
  if (root.neighbors !== undefined) {
    if (!Array.isArray(root.neighbors)) fail(["neighbors"], "a list", root.neighbors);
    const seen = new Set<NodeId>();
    for (const [i, n] of (root.neighbors as unknown[]).entries()) {
      let nb: NeighborConfig;
      if (typeof n === "string") {
        nb = neighborSpec(where(["neighbors", i]), `neighbors[${i}]`, n);
      } else if (isObject(n)) {
        for (const k of Object.keys(n)) {
          if (!(NEIGHBOR_KEYS as readonly string[]).includes(k)) {
            fail(["neighbors", i, k], `one of ${NEIGHBOR_KEYS.join(", ")}`, "an unknown key");
          }
        }
        if (n.address === undefined) fail(["neighbors", i], 'an "address" key', "none");
        const endpoint = ep(["neighbors", i, "address"], n.address, DEFAULT_PORT);
        const id =
          n.id === undefined ? defaultNodeId(endpoint, DEFAULT_PORT) : idOf(["neighbors", i, "id"], n.id);
        const entry: { id: NodeId; endpoint: Endpoint; cost?: number; emulation?: EmulationParams } = {
          id,
          endpoint,
        };
        if (n.cost !== undefined) {
          if (typeof n.cost !== "number" || !Number.isInteger(n.cost) || n.cost < 1 || n.cost > 32767) {
            fail(["neighbors", i, "cost"], "an integer from 1 to 32767", n.cost);
          }
          entry.cost = n.cost as number;
        }
        if (n.emulation !== undefined) {
          const r = checkEmulation(n.emulation);
          if (!r.ok) {
            fail(["neighbors", i, "emulation", ...(r.key === "" ? [] : [r.key])], r.expected, r.found);
          } else entry.emulation = r.params;
        }
        nb = entry;
      } else {
        nb = fail(["neighbors", i], '"ID@ADDR:PORT" or a mapping with id and address', n);
      }
      if (seen.has(nb.id))
        fail(["neighbors", i], "each neighbour id once", `a second neighbour with id ${nb.id}`);
      seen.add(nb.id);
      out.neighbors.push(nb);
    }
  }
  if (root.limits !== undefined) {
    if (!isObject(root.limits)) fail(["limits"], "a mapping", root.limits);
    const lim = root.limits as Record<string, unknown>;
    for (const [k, v] of Object.entries(lim)) {
      if (!(k in DEFAULT_LIMITS))
        fail(["limits", k], `one of ${Object.keys(DEFAULT_LIMITS).join(", ")}`, "an unknown key");
      if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 1 << 30) {
        fail(["limits", k], "an integer from 1 to 1073741824", v);
      }
      (out.limits as Record<string, number>)[k] = v as number;
    }
    if ((out.limits.maxClientFrameBytes ?? DEFAULT_LIMITS.maxClientFrameBytes) < 70_000) {
      fail(
        ["limits", "maxClientFrameBytes"],
        "at least 70000 (a 64 KiB datagram must fit)",
        out.limits.maxClientFrameBytes,
      );
    }
  }
  if (root.link !== undefined) {
    if (!isObject(root.link)) fail(["link"], "a mapping of link settings", root.link);
    for (const k of Object.keys(root.link as object)) {
      if (!(k in defaultLinkConfig))
        fail(["link", k], `a link setting (${Object.keys(defaultLinkConfig).join(", ")})`, "an unknown key");
    }
    try {
      resolveLinkConfig(root.link as Partial<LinkConfig>, "link");
    } catch (e) {
      if (e instanceof ConfigError) rewrap(e, ["link", ...e.key.split(".")]);
      throw e;
    }
    out.link = root.link as Partial<LinkConfig>;
  }
  if (root.session !== undefined) {
    if (!isObject(root.session)) fail(["session"], "a mapping of session settings", root.session);
    try {
      resolveSessionConfig({ ...DAEMON_SESSION_DEFAULTS, ...(root.session as Partial<SessionConfig>) });
    } catch (e) {
      if (e instanceof ConfigError) rewrap(e, ["session", e.key]);
      throw e;
    }
    out.session = root.session as Partial<SessionConfig>;
  }
  if (root.metric !== undefined) {
    const metrics = Object.values(Metric) as string[];
    if (typeof root.metric !== "string" || !metrics.includes(root.metric))
      fail(["metric"], metrics.join("|"), root.metric);
    out.metric = root.metric as Metric;
  }
  if (root.nodes !== undefined) {
    if (!Array.isArray(root.nodes)) fail(["nodes"], "a list of node ids", root.nodes);
    const list = root.nodes as unknown[];
    if (list.length > MAX_CONFIG_NODES)
      fail(["nodes"], `at most ${MAX_CONFIG_NODES} node ids`, `${list.length} ids`);
    out.nodes = list.map((v, i) => idOf(["nodes", i], v));
  }
  if (root.spinesConf !== undefined) {
    const sc = root.spinesConf;
    let file: string;
    let port = DEFAULT_PORT;
    if (typeof sc === "string") file = sc;
    else if (isObject(sc)) {
      for (const k of Object.keys(sc)) {
        if (k !== "file" && k !== "port") fail(["spinesConf", k], "file or port", "an unknown key");
      }
      if (typeof sc.file !== "string") return fail(["spinesConf", "file"], "a file name", sc.file);
      file = sc.file;
      if (sc.port !== undefined) {
        if (typeof sc.port !== "number" || !Number.isInteger(sc.port) || sc.port < 1 || sc.port > 65535) {
          fail(["spinesConf", "port"], "a port from 1 to 65535", sc.port);
        }
        port = sc.port as number;
      }
    } else return fail(["spinesConf"], "a file name or { file, port }", sc);
    out.spinesConf = { file: resolve(base, file), port };
  }
  return out;
}

/**
 * Merges the command line over the config file, fills in defaults, imports spines.conf neighbours,
 * and checks the whole. `readFile` is injectable for tests.
 */
export function resolveConfig(cli: CliOptions, env: { tmpdir?: string } = {}): DaemonConfig {
  const fileCfg: FileConfig =
    cli.config !== undefined ? loadConfigFile(cli.config) : { neighbors: [], limits: {} };
  const src = cli.config ?? CLI;
  const listen = cli.listen ?? fileCfg.listen ?? { address: "0.0.0.0", port: DEFAULT_PORT };
  let id = cli.id ?? fileCfg.id;
  const neighbors = new Map<NodeId, NeighborConfig>();
  // The overlay's node ids when the configuration lists them (config `nodes`, spines.conf Hosts).
  let nodes: Set<NodeId> | undefined = fileCfg.nodes !== undefined ? new Set(fileCfg.nodes) : undefined;
  const spinesConf =
    cli.spinesConf !== undefined ? { file: resolve(cli.spinesConf), port: DEFAULT_PORT } : fileCfg.spinesConf;
  if (spinesConf !== undefined) {
    const { file, port } = spinesConf;
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (e) {
      throw new ConfigError(
        file,
        "(file)",
        "a readable spines.conf",
        (e as NodeJS.ErrnoException).code ?? String(e),
      );
    }
    const conf = parseSpinesConf(text, file);
    if (id === undefined && (listen.address === "0.0.0.0" || listen.address === "::")) {
      throw new ConfigError(
        file,
        "Hosts",
        "the local host: give --id N (a Hosts id) or --listen with this host's address",
        `no --id, listening on ${listen.address}`,
      );
    }
    const local = neighborsFromSpinesConf(
      conf,
      id !== undefined ? { id } : { address: listen.address },
      file,
    );
    id = local.localId;
    nodes ??= new Set();
    for (const h of conf.hosts.keys()) nodes.add(h);
    for (const n of local.neighbors) {
      neighbors.set(n.id, { id: n.id, endpoint: { address: n.address, port }, cost: n.cost });
    }
  }
  for (const n of fileCfg.neighbors) {
    // a file entry for a spines.conf neighbour keeps the imported cost unless it gives its own
    const prev = neighbors.get(n.id);
    neighbors.set(n.id, n.cost === undefined && prev?.cost !== undefined ? { ...n, cost: prev.cost } : n);
  }
  for (const n of cli.neighbors) {
    const prev = neighbors.get(n.id);
    neighbors.set(n.id, prev === undefined ? n : { ...prev, endpoint: n.endpoint });
  }
  id ??= defaultNodeId(listen, DEFAULT_PORT);
  if (neighbors.has(id))
    throw new ConfigError(src, "neighbors", `no neighbour with the node's own id ${id}`, id);
  const v6 = listen.address.includes(":");
  const wildcard = listen.address === "0.0.0.0" || listen.address === "::";
  const at = new Map<string, NodeId>();
  for (const n of neighbors.values()) {
    const where = formatEndpoint(n.endpoint);
    if (n.endpoint.port === 0)
      throw new ConfigError(src, `neighbors.${n.id}`, "a neighbour port from 1 to 65535", where);
    const other = at.get(where);
    if (other !== undefined)
      throw new ConfigError(
        src,
        `neighbors.${n.id}`,
        `an address no other neighbour has (${other} has it)`,
        where,
      );
    at.set(where, n.id);
    const local =
      n.endpoint.port === listen.port &&
      (n.endpoint.address === listen.address || (wildcard && isLoopback(n.endpoint.address)));
    if (local) throw new ConfigError(src, `neighbors.${n.id}`, "an address other than the node's own", where);
    if (!v6 && n.endpoint.address.includes(":")) {
      throw new ConfigError(
        src,
        `neighbors.${n.id}`,
        "an IPv4 neighbour address when listening on IPv4 (listen on [::] for both)",
        formatEndpoint(n.endpoint),
      );
    }
  }
  const dir = env.tmpdir ?? tmpdir();
  // Several nodes on one machine (e.g. imported from one spines.conf) listen on their own addresses:
  // their default socket names carry the node id so that they do not collide.
  const stem = wildcard ? `spines-node-${listen.port}` : `spines-node-${listen.port}-${id}`;
  const control = cli.control ?? fileCfg.control ?? join(dir, `${stem}.ctl`);
  const cs = cli.clientSocket ?? fileCfg.clientSocket;
  const clientSocket = cs === false ? undefined : (cs ?? join(dir, `${stem}.sock`));
  for (const [key, path] of [
    ["control", control],
    ["clientSocket", clientSocket],
  ] as const) {
    if (path !== undefined && !existsSync(dirname(path)))
      throw new ConfigError(
        src,
        key,
        "a socket path in an existing directory",
        `${dirname(path)} does not exist`,
      );
  }
  return {
    id,
    listen,
    neighbors: [...neighbors.values()],
    logLevel: cli.logLevel ?? fileCfg.logLevel ?? "info",
    control,
    clientSocket,
    clientTcp: cli.clientTcp ?? fileCfg.clientTcp,
    clientToken: cli.clientToken ?? fileCfg.clientToken,
    metrics: cli.metrics ?? fileCfg.metrics,
    configFile: cli.config,
    limits: { ...DEFAULT_LIMITS, ...fileCfg.limits },
    link: { ...DAEMON_DEFAULTS.link, ...fileCfg.link },
    session: { ...DAEMON_SESSION_DEFAULTS, ...fileCfg.session },
    metric: fileCfg.metric ?? DAEMON_DEFAULTS.metric,
    encrypt: fileCfg.encrypt ?? false,
    keyFile: checkKeyFile(
      cli.keyFile !== undefined ? resolve(cli.keyFile) : fileCfg.keyFile,
      cli.keyFile !== undefined ? "--key-file" : "auth.keyFile",
    ),
    // this node and every neighbour belong to the overlay whatever the lists say
    ...(nodes !== undefined
      ? { nodes: [...new Set([id, ...neighbors.keys(), ...nodes])].sort((a, b) => a - b) }
      : {}),
  };
}

/**
 * Reads and parses an overlay key file (docs/wire.md §1.3). Every problem is a ConfigError naming the
 * file (and line) and never showing key material.
 */
export function readKeyFile(file: string, key = "--key-file"): KeySet {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(file, key, "a readable key file", (e as NodeJS.ErrnoException).code ?? String(e));
  }
  try {
    return parseKeyFile(text);
  } catch (e) {
    if (e instanceof KeyFileError) {
      throw new ConfigError(
        e.line === undefined ? file : `${file}:${e.line}`,
        key,
        'lines "<keyId> <64 hex digits>" (1 or 2 keys; spines-node --gen-key FILE makes one)',
        e.message,
      );
    }
    throw e;
  }
}

function checkKeyFile(file: string | undefined, key: string): string | undefined {
  if (file !== undefined) readKeyFile(file, key);
  return file;
}
