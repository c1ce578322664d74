/**
 * `wackactl`: the control tool (after Wackamole's `wackatrl`). Exit codes: 0 ok, 1 the daemon
 * answered with an error or is not running, 2 bad usage.
 */
import { ControlClient } from "@spines-ts/daemon-kit";
import { ConfigError } from "@spines-ts/primitives";
import { defaultControlPath, loadConfigFile, VERSION } from "./config.ts";
import type { ListEntry, StatusResult } from "./daemon.ts";

export const WACKACTL_HELP = `Usage: wackactl [--socket PATH | --config FILE] [--json] COMMAND

Talk to a running wackamole-node over its control socket.

Commands:
  status     this node: view, phase, groups held, agreed owners, health, counters
  list       every VIP group: its owner, addresses, and whether it is here
  fail       give up every VIP and leave the cluster (like wackatrl -f)
  succeed    take part again (like wackatrl -s; not while the track check fails)
  balance    ask the cluster for a full balancing round now

Options:
  -s, --socket PATH   control socket (default: ${defaultControlPath()})
  -c, --config FILE   read the socket path from a wackamole-node config file
  -j, --json          print the reply as JSON
  -h, --help          print this help and exit
  -V, --version       print the version and exit

Exit status: 0 ok; 1 the daemon is not running or refused; 2 bad usage.
`;

const COMMANDS = ["status", "list", "fail", "succeed", "balance"];

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + " ".repeat(n - s.length);
}

function human(cmd: string, result: unknown): string {
  if (cmd === "status") {
    const s = result as StatusResult;
    const lines = [
      `node ${s.id} in group ${s.group}: ${s.phase}${s.adminFailed ? " (failed by wackactl)" : ""}${s.healthy ? "" : " (track failing)"}`,
      `view ${s.view === null ? "none" : `${s.view.id} members ${s.view.members.join(",")}`}`,
      `held ${s.held.length === 0 ? "nothing" : s.held.join(", ")}`,
      `mature ${s.mature} settled ${s.settled} profile ${s.profile} driver ${s.driver} auth ${s.auth}`,
    ];
    const owners = Object.entries(s.owners);
    if (owners.length > 0)
      lines.push(`owners ${owners.map(([g, o]) => `${g}=${o === 0 ? "-" : o}`).join(" ")}`);
    return `${lines.join("\n")}\n`;
  }
  if (cmd === "list") {
    const l = result as ListEntry[];
    const w = Math.max(5, ...l.map((e) => e.group.length));
    const rows = [`${pad("GROUP", w)}  OWNER  HERE  ADDRESSES`];
    for (const e of l)
      rows.push(
        `${pad(e.group, w)}  ${pad(e.owner === 0 ? "-" : String(e.owner), 5)}  ${pad(e.local ? "yes" : "", 4)}  ${e.addresses.join(", ")}`,
      );
    return `${rows.join("\n")}\n`;
  }
  if (cmd === "fail") return "failed: every VIP given up; this node stays out until `wackactl succeed`\n";
  if (cmd === "succeed") {
    const r = result as { healthy: boolean; joining: boolean };
    return r.joining ? "rejoining the cluster\n" : "not rejoining yet: the track check is failing\n";
  }
  return "balancing round requested\n";
}

export async function wackactl(
  argv: readonly string[],
  out = process.stdout,
  err = process.stderr,
): Promise<number> {
  let socket: string | undefined;
  let config: string | undefined;
  let json = false;
  let cmd: string | undefined;
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i] as string;
      if (a === "-h" || a === "--help") {
        out.write(WACKACTL_HELP);
        return 0;
      }
      if (a === "-V" || a === "--version") {
        out.write(`wackactl ${VERSION}\n`);
        return 0;
      }
      if (a === "-j" || a === "--json") json = true;
      else if (a === "-s" || a === "--socket" || a.startsWith("--socket=")) {
        socket = a.startsWith("--socket=") ? a.slice(9) : argv[++i];
        if (!socket) throw new ConfigError("command line", "--socket", "a path", "nothing");
      } else if (a === "-c" || a === "--config" || a.startsWith("--config=")) {
        config = a.startsWith("--config=") ? a.slice(9) : argv[++i];
        if (!config) throw new ConfigError("command line", "--config", "a file", "nothing");
      } else if (a.startsWith("-"))
        throw new ConfigError("command line", a, "a known option (see --help)", "unknown option");
      else if (cmd === undefined) cmd = a;
      else throw new ConfigError("command line", a, "one command", "a second argument");
    }
    if (cmd === undefined) throw new ConfigError("command line", "COMMAND", COMMANDS.join("|"), "nothing");
    if (!COMMANDS.includes(cmd)) throw new ConfigError("command line", "COMMAND", COMMANDS.join("|"), cmd);
    if (socket === undefined && config !== undefined) socket = loadConfigFile(config).control;
  } catch (e) {
    if (e instanceof ConfigError) {
      err.write(`wackactl: ${e.message}\nTry 'wackactl --help' for more information.\n`);
      return 2;
    }
    throw e;
  }
  const path = socket ?? defaultControlPath();
  let client: ControlClient;
  try {
    client = await ControlClient.connect(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" || code === "ECONNREFUSED"
        ? "wackamole-node is not running (or uses another --socket)"
        : code === "EACCES"
          ? "permission denied (the socket is mode 0600: run as the daemon's user)"
          : (e as Error).message;
    err.write(`wackactl: cannot connect to ${path}: ${why}\n`);
    return 1;
  }
  try {
    const r = await client.request(cmd);
    if (!r.ok) {
      if (json) out.write(`${JSON.stringify(r.error)}\n`);
      err.write(`wackactl: ${cmd}: ${r.error?.message ?? "failed"} (${r.error?.code ?? "?"})\n`);
      return 1;
    }
    out.write(json ? `${JSON.stringify(r.result)}\n` : human(cmd, r.result));
    return 0;
  } catch (e) {
    err.write(`wackactl: ${cmd}: ${(e as Error).message}\n`);
    return 1;
  } finally {
    client.close();
  }
}
