import { isIPv4 } from "node:net";
import { ConfigError, type NodeId } from "@spines-ts/primitives";
import { isNodeId } from "./address.ts";

/** The parts of a classic Spines `spines.conf` that spines-node uses. */
export interface SpinesConf {
  /** Node id to IPv4 address, in file order. */
  readonly hosts: ReadonlyMap<NodeId, string>;
  /** Edges as written; with `Directed_Edges = False` (the default) each stands for both directions. */
  readonly edges: readonly { readonly a: NodeId; readonly b: NodeId; readonly cost: number }[];
  readonly directed: boolean;
  /** Every `key = value` setting, as text (most are for features spines-node does not have). */
  readonly settings: ReadonlyMap<string, string>;
}

const TRUE = new Set(["true", "yes", "on", "1"]);
const FALSE = new Set(["false", "no", "off", "0"]);
/** Settings that turn on security features spines-node does not have (IT_LinkCrypto, IT_IntrusionToleranceMode, ...). */
const UNSUPPORTED_SECURITY = /crypto|encrypt|intrusiontolerance/i;

/**
 * Parses the `Hosts { id ip ... }` and `Edges { a b cost ... }` sections and `key = value` lines of a
 * Spines 5.x configuration file. `#` starts a comment. Errors are ConfigErrors whose source is
 * `file:line`. Unlike Spines, ids are not capped at 50 (any id from 1 to 2^32-2).
 */
export function parseSpinesConf(text: string, file = "spines.conf"): SpinesConf {
  const hosts = new Map<NodeId, string>();
  const edges: { a: NodeId; b: NodeId; cost: number }[] = [];
  const settings = new Map<string, string>();
  const settingLines = new Map<string, number>();
  let section: "Hosts" | "Edges" | undefined;
  let pendingSection: "Hosts" | "Edges" | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    let line = (lines[i] ?? "").replace(/#.*$/, "").trim();
    if (line === "") continue;
    if (section === undefined) {
      const m = /^(Hosts|Edges)\b\s*(\{)?\s*(.*)$/i.exec(line);
      if (pendingSection !== undefined) {
        if (!line.startsWith("{")) throw new ConfigError(where, pendingSection, `"{"`, line);
        section = pendingSection;
        pendingSection = undefined;
        line = line.slice(1).trim();
      } else if (m) {
        const name = (m[1] ?? "").toLowerCase() === "hosts" ? "Hosts" : "Edges";
        if (m[2] === undefined) {
          if ((m[3] ?? "") !== "") throw new ConfigError(where, name, `"{"`, m[3]);
          pendingSection = name;
          continue;
        }
        section = name;
        line = (m[3] ?? "").trim();
      } else {
        const kv = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line);
        if (!kv) throw new ConfigError(where, "(syntax)", `"Hosts {", "Edges {" or "key = value"`, line);
        const key = kv[1] ?? "";
        const value = (kv[2] ?? "").trim();
        if (value === "") throw new ConfigError(where, key, 'a value after "="', "nothing");
        settings.set(key, value);
        settingLines.set(key, i + 1);
        continue;
      }
    }
    // Inside a section: entries until "}", which may end a line that also holds an entry.
    let closes = false;
    const close = line.indexOf("}");
    if (close >= 0) {
      if (line.slice(close + 1).trim() !== "") {
        throw new ConfigError(where, section, 'nothing after "}"', line.slice(close + 1).trim());
      }
      closes = true;
      line = line.slice(0, close).trim();
    }
    if (line !== "") {
      const tok = line.split(/\s+/);
      if (section === "Hosts") {
        if (tok.length % 2 !== 0) throw new ConfigError(where, "Hosts", 'pairs of "id address"', line);
        for (let j = 0; j < tok.length; j += 2) {
          const id = Number(tok[j]);
          const ip = tok[j + 1] ?? "";
          if (!isNodeId(id)) throw new ConfigError(where, "Hosts", "a node id from 1 to 4294967294", tok[j]);
          if (!isIPv4(ip)) throw new ConfigError(where, `Hosts.${id}`, "an IPv4 address", ip);
          if (hosts.has(id)) throw new ConfigError(where, `Hosts.${id}`, "each id once", "a duplicate");
          hosts.set(id, ip);
        }
      } else {
        if (tok.length !== 3) throw new ConfigError(where, "Edges", '"id1 id2 cost"', line);
        const [a, b, cost] = tok.map(Number) as [number, number, number];
        if (!isNodeId(a)) throw new ConfigError(where, "Edges", "a node id", tok[0]);
        if (!isNodeId(b)) throw new ConfigError(where, "Edges", "a node id", tok[1]);
        if (a === b) throw new ConfigError(where, `Edges.${a}-${b}`, "two different nodes", line);
        if (!Number.isInteger(cost) || cost < 1 || cost > 32767) {
          throw new ConfigError(where, `Edges.${a}-${b}`, "a cost from 1 to 32767", tok[2]);
        }
        edges.push({ a, b, cost });
      }
    }
    if (closes) section = undefined;
  }
  if (section !== undefined || pendingSection !== undefined) {
    throw new ConfigError(`${file}:${lines.length}`, section ?? pendingSection ?? "", '"}"', "end of file");
  }
  for (const e of edges) {
    for (const id of [e.a, e.b]) {
      if (!hosts.has(id))
        throw new ConfigError(file, `Edges.${e.a}-${e.b}`, `host ${id} listed in Hosts`, "no such host");
    }
  }
  const d = settings.get("Directed_Edges");
  let directed = false;
  if (d !== undefined) {
    if (TRUE.has(d.toLowerCase())) directed = true;
    else if (!FALSE.has(d.toLowerCase())) throw new ConfigError(file, "Directed_Edges", "True or False", d);
  }
  for (const [key, value] of settings) {
    // Spines' link authentication/encryption and intrusion-tolerant modes: spines-node has none of
    // them, so a file that turns one on must not start as if its links were protected.
    if (UNSUPPORTED_SECURITY.test(key) && !FALSE.has(value.toLowerCase())) {
      throw new ConfigError(
        `${file}:${settingLines.get(key) ?? 0}`,
        key,
        "False: spines-node does not support Spines' link authentication, encryption or intrusion-tolerant modes (nothing would be authenticated)",
        value,
      );
    }
  }
  return { hosts, edges, directed, settings };
}

/** A neighbour as the importer derives it. */
export interface ImportedNeighbor {
  readonly id: NodeId;
  readonly address: string;
  readonly cost: number;
}

/**
 * Picks the local node (by id, or else by its address) and returns the edges that touch it as
 * neighbours. With directed edges, a neighbour is any node with an edge in either direction, and the
 * cost is that of the outgoing edge when there is one.
 */
export function neighborsFromSpinesConf(
  conf: SpinesConf,
  local: { id?: NodeId; address?: string },
  file = "spines.conf",
): { localId: NodeId; neighbors: ImportedNeighbor[] } {
  let localId = local.id;
  if (localId === undefined) {
    for (const [id, ip] of conf.hosts) if (ip === local.address) localId = id;
    if (localId === undefined) {
      throw new ConfigError(
        file,
        "Hosts",
        `an entry for the local address ${local.address ?? "(none)"}`,
        "none",
      );
    }
  } else if (!conf.hosts.has(localId)) {
    throw new ConfigError(file, "Hosts", `an entry for the local node id ${localId}`, "none");
  }
  const out = new Map<NodeId, ImportedNeighbor>();
  for (const e of conf.edges) {
    let peer: NodeId | undefined;
    let outgoing = false;
    if (e.a === localId) {
      peer = e.b;
      outgoing = true;
    } else if (e.b === localId) {
      peer = e.a;
      outgoing = !conf.directed;
    }
    if (peer === undefined) continue;
    const prev = out.get(peer);
    if (prev === undefined || outgoing) {
      out.set(peer, { id: peer, address: conf.hosts.get(peer) ?? "", cost: e.cost });
    }
  }
  return { localId, neighbors: [...out.values()].sort((x, y) => x.id - y.id) };
}
