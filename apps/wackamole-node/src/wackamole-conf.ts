/**
 * Importer for the classic `wackamole.conf` (Wackamole 2.1, Johns Hopkins; grammar of its
 * `config_gram.l` / `config_gram.y` and the `wackamole.conf(5)` manual): `Spread`,
 * `SpreadRetryInterval`, `Group`, `Control`, `Mature`, `Balance { AcquisitionsPerRound = N|all
 * Interval = T }`, `Arp-Cache`, `Prefer`, `Notify`, `VirtualInterfaces` (also `VIFs`, `VIPs`), and
 * the hook and logging directives (noted, not imported). `#` starts a comment, keywords are
 * case-insensitive, times are an integer with `s`, `m` or `h`, addresses `[if:]a.b.c.d/len[nNN]`.
 *
 * `parseWackamoleConf` returns the settings; `importWackamoleConf` prints the equivalent
 * wackamole-node YAML with notes on what did not carry over. Errors are `ConfigError`s naming
 * `file:line`, the directive and the problem.
 */
import { ConfigError } from "@spines-ts/primitives";
import { stringify } from "yaml";

export interface ClassicAddress {
  readonly iface: string | undefined;
  readonly address: string;
  readonly prefixLength: number;
  /** The `nNN` ARP-target network hint. */
  readonly hint: number | undefined;
}

export interface ClassicNotify {
  readonly kind: "address" | "arp-cache";
  readonly address?: ClassicAddress;
  readonly throttle?: number;
  readonly ping: boolean;
}

export interface ClassicConf {
  spread?: { port: number; host: string | undefined };
  spreadRetryMs?: number;
  group?: string;
  control?: string;
  matureMs?: number;
  balance?: { perRound: number | "all"; intervalMs: number | undefined };
  arpCacheMs?: number;
  /** undefined: no Prefer; []: Prefer None. */
  prefer?: ClassicAddress[];
  vifs: ClassicAddress[][];
  /** undefined: no Notify; []: Notify none. */
  notify?: ClassicNotify[];
  /** Directives read but with no equivalent (name and line). */
  ignored: { directive: string; line: number }[];
}

interface Token {
  readonly text: string;
  readonly line: number;
}

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] ?? "").replace(/#.*$/, "");
    const re = /[{}=]|[^\s{}=]+/g;
    for (let m = re.exec(line); m !== null; m = re.exec(line)) out.push({ text: m[0], line: i + 1 });
    if (out.length > 100_000)
      throw new ConfigError(`line ${i + 1}`, "(file)", "a configuration under 100,000 tokens", "more");
  }
  return out;
}

const ADDRESS = /^(?:([A-Za-z0-9_.-]{1,15}):)?(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?(?:n(\d{1,2}))?$/i;

export function parseWackamoleConf(text: string, file = "wackamole.conf"): ClassicConf {
  const toks = tokenize(text);
  let i = 0;
  const conf: ClassicConf = { vifs: [], ignored: [] };
  const lastLine = toks.at(-1)?.line ?? 1;
  const at = (t: Token | undefined) => `${file}:${t?.line ?? lastLine}`;
  const fail = (t: Token | undefined, key: string, expected: string): never => {
    throw new ConfigError(at(t), key, expected, t === undefined ? "end of file" : t.text);
  };
  const peek = (): Token | undefined => toks[i];
  const next = (key: string, expected: string): Token => {
    const t = toks[i];
    if (t === undefined) return fail(t, key, expected);
    i++;
    return t;
  };
  const expect = (key: string, text: string): void => {
    const t = next(key, `"${text}"`);
    if (t.text !== text) fail(t, key, `"${text}"`);
  };
  const equalsValue = (key: string, expected: string): Token => {
    expect(key, "=");
    const t = next(key, expected);
    if (t.text === "{" || t.text === "}" || t.text === "=") fail(t, key, expected);
    return t;
  };
  const time = (key: string): number => {
    const t = equalsValue(key, "a time (e.g. 5s, 2m, 1h)");
    const m = /^(\d{1,9})([smh]?)$/i.exec(t.text);
    if (m === null) return fail(t, key, "a time (e.g. 5s, 2m, 1h)");
    const unit = (m[2] ?? "").toLowerCase();
    return Number(m[1]) * (unit === "m" ? 60_000 : unit === "h" ? 3_600_000 : 1000);
  };
  const address = (t: Token, key: string): ClassicAddress => {
    const m = ADDRESS.exec(t.text);
    if (m === null) return fail(t, key, "an address [if:]a.b.c.d/len[nNN] (hostnames are not resolved)");
    const octets = (m[2] as string).split(".").map(Number);
    if (octets.some((o) => o > 255)) fail(t, key, "an IPv4 address");
    const len = m[3] === undefined ? 32 : Number(m[3]);
    if (len > 32) fail(t, key, "a prefix length 0..32");
    const hint = m[4] === undefined ? undefined : Number(m[4]);
    if (hint !== undefined && hint > 32) fail(t, key, "a network hint n0..n32");
    return { iface: m[1], address: m[2] as string, prefixLength: len, hint };
  };
  /** `{ addr addr ... }` */
  const addressBlock = (key: string): ClassicAddress[] => {
    const out: ClassicAddress[] = [];
    for (;;) {
      const t = next(key, 'an address or "}"');
      if (t.text === "}") return out;
      out.push(address(t, key));
    }
  };

  while (i < toks.length) {
    const d = next("(directive)", "a directive");
    const key = d.text.toLowerCase();
    switch (key) {
      case "spread": {
        const t = equalsValue("Spread", "a port or port@host");
        const m = /^(\d{1,5})(?:@(\S+))?$/.exec(t.text);
        if (m === null || Number(m[1]) < 1 || Number(m[1]) > 65535) fail(t, "Spread", "a port or port@host");
        conf.spread = { port: Number(m?.[1]), host: m?.[2] };
        break;
      }
      case "spreadretryinterval":
        conf.spreadRetryMs = time("SpreadRetryInterval");
        break;
      case "group": {
        const t = equalsValue("Group", "a group name");
        if (!/^[A-Za-z0-9_.-]{1,32}$/.test(t.text))
          fail(t, "Group", "a group name of 1-32 of A-Z a-z 0-9 _ . -");
        conf.group = t.text;
        break;
      }
      case "control":
        conf.control = equalsValue("Control", "a socket path").text;
        break;
      case "mature":
        conf.matureMs = time("Mature");
        break;
      case "arp-cache":
        conf.arpCacheMs = time("Arp-Cache");
        break;
      case "balance": {
        expect("Balance", "{");
        const b: { perRound: number | "all"; intervalMs: number | undefined } = {
          perRound: 1,
          intervalMs: undefined,
        };
        for (;;) {
          const t = next("Balance", 'AcquisitionsPerRound, Interval or "}"');
          const k = t.text.toLowerCase();
          if (k === "}") break;
          if (k === "acquisitionsperround") {
            const v = equalsValue("Balance.AcquisitionsPerRound", "a number or all");
            if (v.text.toLowerCase() === "all") b.perRound = "all";
            else if (/^\d{1,4}$/.test(v.text) && Number(v.text) >= 1) b.perRound = Number(v.text);
            else fail(v, "Balance.AcquisitionsPerRound", "a number >= 1 or all");
          } else if (k === "interval") {
            b.intervalMs = time("Balance.Interval");
          } else fail(t, "Balance", 'AcquisitionsPerRound, Interval or "}"');
        }
        conf.balance = b;
        break;
      }
      case "prefer": {
        const t = next("Prefer", "None, an address or { addresses }");
        if (t.text.toLowerCase() === "none") conf.prefer = [];
        else if (t.text === "{") conf.prefer = [...(conf.prefer ?? []), ...addressBlock("Prefer")];
        else conf.prefer = [...(conf.prefer ?? []), address(t, "Prefer")];
        break;
      }
      case "virtualinterfaces":
      case "vifs":
      case "vips": {
        expect(d.text, "{");
        for (;;) {
          const t = next(d.text, 'an address, { addresses } or "}"');
          if (t.text === "}") break;
          if (t.text === "{") {
            const g = addressBlock(d.text);
            if (g.length === 0) fail(t, d.text, "a group with at least one address");
            conf.vifs.push(g);
          } else conf.vifs.push([address(t, d.text)]);
        }
        break;
      }
      case "notify": {
        const t = next("Notify", "none, arp-cache or { targets }");
        const low = t.text.toLowerCase();
        const item = (first: Token): ClassicNotify => {
          const isCache = first.text.toLowerCase() === "arp-cache";
          const n: {
            kind: "address" | "arp-cache";
            address?: ClassicAddress;
            throttle?: number;
            ping: boolean;
          } = isCache
            ? { kind: "arp-cache", ping: false }
            : { kind: "address", address: address(first, "Notify"), ping: false };
          for (;;) {
            const p = peek();
            const pl = p?.text.toLowerCase();
            if (pl === "ping") {
              i++;
              n.ping = true;
            } else if (pl === "throttle") {
              i++;
              const v = next("Notify.throttle", "a number of targets per second");
              if (!/^\d{1,6}$/.test(v.text) || Number(v.text) < 1)
                fail(v, "Notify.throttle", "a number >= 1");
              n.throttle = Number(v.text);
            } else return n;
          }
        };
        if (low === "none") conf.notify = [];
        else if (low === "arp-cache") conf.notify = [...(conf.notify ?? []), item(t)];
        else if (t.text === "{") {
          const list = conf.notify ?? [];
          for (;;) {
            const u = next("Notify", 'a target, arp-cache or "}"');
            if (u.text === "}") break;
            list.push(item(u));
          }
          conf.notify = list;
        } else fail(t, "Notify", "none, arp-cache or { targets }");
        break;
      }
      case "rundynamic": {
        // RunDynamic lib:func on|post up|down
        next("RunDynamic", "lib:func");
        const w = next("RunDynamic", "on or post");
        if (!/^(on|post)$/i.test(w.text)) fail(w, "RunDynamic", "on or post");
        const e = next("RunDynamic", "up or down");
        if (!/^(up|down)$/i.test(e.text)) fail(e, "RunDynamic", "up or down");
        conf.ignored.push({ directive: "RunDynamic", line: d.line });
        break;
      }
      case "moduledir":
      case "perluselib":
      case "perluse":
      case "logfacility": {
        if (peek()?.text === "=") i++;
        next(d.text, "a value");
        conf.ignored.push({ directive: d.text, line: d.line });
        break;
      }
      default:
        fail(
          d,
          "(directive)",
          "a wackamole.conf directive (Spread, Group, Control, Mature, Balance, Arp-Cache, Prefer, Notify, VirtualInterfaces, ...)",
        );
    }
  }
  if (conf.vifs.length === 0)
    throw new ConfigError(file, "VirtualInterfaces", "at least one virtual interface", "none");
  return conf;
}

/** The group name an imported VIF gets: its first ("head") address, as in `wackatrl -l`. */
export function vifName(vif: readonly ClassicAddress[]): string {
  return (vif[0] as ClassicAddress).address;
}

/** The wackamole-node YAML for a classic wackamole.conf, with notes on what did not carry over. */
export function importWackamoleConf(text: string, file = "wackamole.conf"): string {
  const c = parseWackamoleConf(text, file);
  const notes: string[] = [];
  let noIface = false;
  const addr = (a: ClassicAddress) => {
    if (a.iface === undefined) noIface = true;
    return `${a.iface ?? "eth0"} ${a.address}/${a.prefixLength}`;
  };
  const groups = c.vifs.map((v) => ({ name: vifName(v), addresses: v.map(addr) }));
  if (c.vifs.some((v) => v.some((a) => a.hint !== undefined)))
    notes.push(
      "nNN network hints dropped: announcements notify the VIP's own /24 (IPv4) or /64 (IPv6) neighbours",
    );
  const prefer: string[] = [];
  for (const p of c.prefer ?? []) {
    const g = c.vifs.find((v) => v.some((a) => a.address === p.address));
    if (g === undefined)
      throw new ConfigError(file, "Prefer", "an address of a virtual interface", p.address);
    const name = vifName(g);
    if (!prefer.includes(name)) prefer.push(name);
  }
  const vips: Record<string, unknown> = { groups };
  if (prefer.length > 0) vips.prefer = prefer;
  if (c.matureMs !== undefined) vips.matureMs = c.matureMs;
  else notes.push("no Mature: the default 5 s hold-off applies (Wackamole's effective default was 300 s)");
  if (c.balance !== undefined) {
    const b = c.balance;
    if (b.perRound === "all" || b.intervalMs === 0) vips.balance = { mode: "immediate" };
    else vips.balance = { mode: "periodic", intervalMs: b.intervalMs ?? 4000, maxMoves: b.perRound };
  }
  if (c.arpCacheMs !== undefined) vips.neighborShareMs = c.arpCacheMs;
  const out: Record<string, unknown> = {
    id: 1,
    group: c.group ?? "wackamole",
    bind: { host: "0.0.0.0", port: c.spread?.port ?? 4803 },
    peers: [],
    vips,
  };
  if (c.group === undefined) notes.push('no Group: "wackamole" used');
  if (c.spread?.host !== undefined)
    notes.push(
      `Spread = ${c.spread.port}@${c.spread.host}: membership is built in; bind is this node's own address`,
    );
  if (c.spreadRetryMs !== undefined)
    notes.push("SpreadRetryInterval dropped: membership is built in (the node rejoins by itself)");
  if (c.notify !== undefined) {
    const notify = c.notify
      .filter((n) => n.kind === "address")
      .map((n) => {
        const a = n.address as ClassicAddress;
        if (a.iface === undefined) noIface = true;
        return {
          iface: a.iface ?? "eth0",
          address: `${a.address}/${a.prefixLength}`,
          ...(n.throttle !== undefined ? { throttle: n.throttle } : {}),
        };
      });
    if (notify.length > 0) out.notify = notify;
    if (c.notify.some((n) => n.ping))
      notes.push("Notify ... ping dropped: targets get ARP (and for IPv6 NA) only");
    if (c.notify.some((n) => n.kind === "arp-cache"))
      notes.push(
        "Notify arp-cache: always on here (neighbours shared by the members are notified on takeover)",
      );
  }
  if (noIface) notes.push('some addresses name no interface: "eth0" was assumed; check every address');
  out.driver = "linux";
  if (c.control !== undefined) out.control = { socket: c.control };
  for (const ig of c.ignored)
    notes.push(
      `${ig.directive} (line ${ig.line}) not imported: ${/rundynamic|moduledir|perl/i.test(ig.directive) ? "hooks are commands here (hooks.up / hooks.down)" : "logs are pino JSON on stdout"}`,
    );
  const header = [
    `# Imported from ${file} (classic Wackamole) by wackamole-node --import-wackamole-conf.`,
    "# Before use, on each member: set a unique id, bind to its own address, and list the",
    "# other members under peers (or configure discovery); add auth: { keyFile: ... }.",
    ...notes.map((n) => `# note: ${n}`),
  ];
  return `${header.join("\n")}\n${stringify(out, { lineWidth: 0, flowCollectionPadding: true })}`;
}
