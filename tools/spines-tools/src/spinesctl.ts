/**
 * `spinesctl`: the spines-node control socket without `nc`. Exit codes: 0 ok, 1 the daemon could not
 * be reached or refused the command, 2 bad usage.
 */

import { tmpdir } from "node:os";
import { join } from "node:path";
import { Exit, type Io, ms, parse, parseId, parseNumber, processIo, run, table, UsageError } from "./cli.ts";
import { ControlClient } from "./control.ts";

export const HELP = `Usage: spinesctl [options] COMMAND [ARGS]

Talk to a spines-node daemon's control socket.

Commands:
  status                     node id, version, uptime; auth, what routing and the
                             links rejected, memory (all counters with --json)
  neighbours | neighbors     configured neighbours and their state
  links                      per-link state, RTT, loss, window, queue, cost, emulation
  routes                     link-state routes: destination, next hop, cost, path
  groups                     multicast/anycast groups and their members
  sessions                   open sessions on this node
  ping                       check that the daemon answers
  emulation get NEIGHBOUR    the receive-side emulation on the link from NEIGHBOUR
  emulation set NEIGHBOUR [--delay-ms N] [--jitter-ms N] [--loss-pct N]
                [--burst-pct N] [--bandwidth-kbps N] [--queue-bytes N]
                             emulate that link (as Spines' setlink); omitted = 0
  emulation clear NEIGHBOUR  remove the emulation
  log-level LEVEL            trace|debug|info|warn|error|fatal|silent

Options:
  -c, --control PATH         control socket (default: $SPINES_NODE_CONTROL, else
                             $TMPDIR/spines-node-8100.ctl)
      --json                 print the daemon's reply as JSON
  -h, --help                 show this help

Exit codes: 0 ok, 1 daemon unreachable or command refused, 2 bad usage.
`;

const OPTIONS = {
  control: { type: "string", short: "c" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  "delay-ms": { type: "string" },
  "jitter-ms": { type: "string" },
  "loss-pct": { type: "string" },
  "burst-pct": { type: "string" },
  "bandwidth-kbps": { type: "string" },
  "queue-bytes": { type: "string" },
} as const;

const EMULATION_FLAGS = {
  "delay-ms": ["delayMs", 60_000],
  "jitter-ms": ["jitterMs", 60_000],
  "loss-pct": ["lossPct", 100],
  "burst-pct": ["burstPct", 100],
  "bandwidth-kbps": ["bandwidthKbps", 100_000_000],
  "queue-bytes": ["queueBytes", 1 << 30],
} as const;

type Row = Record<string, unknown>;

function render(cmd: string, result: unknown): string {
  const rows = Array.isArray(result) ? (result as Row[]) : [];
  switch (cmd) {
    case "neighbours":
    case "neighbors":
      return table(
        ["NODE", "ENDPOINT", "STATE", "LAST HEARD (ms)", "RX", "TX"],
        rows.map((r) => [r.id, r.endpoint, r.state, r.lastHeardMsAgo, r.rxFrames, r.txFrames]),
      );
    case "links":
      return table(
        [
          "NEIGHBOUR",
          "TYPE",
          "STATE",
          "RTT (ms)",
          "LOSS",
          "WINDOW",
          "QUEUE",
          "COST",
          "ADVERTISED",
          "EMULATION",
        ],
        rows.map((r) => [
          r.neighbor,
          r.type,
          r.state,
          ms(r.rttMs as number | null),
          r.loss === null || r.loss === undefined ? null : `${((r.loss as number) * 100).toFixed(2)}%`,
          r.window,
          r.queue,
          r.cost,
          r.advertisedCost,
          r.emulation,
        ]),
      );
    case "routes":
      return table(
        ["DESTINATION", "NEXT HOP", "COST", "PATH"],
        rows.map((r) => [
          r.dst,
          r.nextHop,
          r.cost,
          Array.isArray(r.path) ? (r.path as number[]).join(" > ") : null,
        ]),
      );
    case "groups":
      return table(
        ["GROUP", "MEMBERS"],
        rows.map((r) => [r.group, Array.isArray(r.members) ? (r.members as number[]).join(",") : r.members]),
      );
    case "sessions":
      return table(
        ["LOCAL PORT", "REMOTE", "LINK", "STATE", "BYTES IN", "BYTES OUT", "SRTT (ms)"],
        rows.map((r) => [
          r.localPort,
          `${r.remoteNode}:${r.remotePort}`,
          r.link,
          r.state,
          r.bytesIn,
          r.bytesOut,
          ms(r.srttMs as number | null),
        ]),
      );
    case "status": {
      const s = result as Row;
      const keys = [
        "id",
        "version",
        "pid",
        "uptimeMs",
        "udp",
        "neighbors",
        "clients",
        "sessions",
        "logLevel",
      ];
      const lines = keys.map((k) => `${`${k}:`.padEnd(11)} ${s[k] ?? "-"}`);
      lines.push(...securityLines(s));
      return `${lines.join("\n")}\n`;
    }
    case "ping":
      return `daemon ${(result as Row).id} answers\n`;
    default:
      return `${JSON.stringify(result, null, 2)}\n`;
  }
}

/**
 * The status lines on authentication and what routing and the links rejected (docs/security.md);
 * the full counters are in `status --json`.
 */
function securityLines(s: Row): string[] {
  const num = (v: unknown): number => (typeof v === "number" ? v : 0);
  const obj = (v: unknown): Row => (typeof v === "object" && v !== null ? (v as Row) : {});
  const counters = obj(s.counters);
  const out: string[] = [];
  const auth = obj(s.auth);
  if (s.auth !== undefined) out.push(`${"auth:".padEnd(11)} ${auth.enabled ? (auth.mode ?? "on") : "off"}`);
  if (s.counters !== undefined) {
    const r = obj(counters.routing);
    out.push(
      `${"routing:".padEnd(11)} dropped badNode ${num(r.dropBadNode)}, versionJump ${num(r.dropVersionJump)}, ` +
        `staleIncarnation ${num(counters.routingStaleIncarnation)}`,
    );
    const sum = { unproven: 0, challenges: 0, forgedGoodbyes: 0 };
    for (const l of Object.values(obj(counters.links))) {
      const st = obj(l);
      sum.unproven += num(st.unproven);
      sum.challenges += num(st.challenges);
      sum.forgedGoodbyes += num(st.forgedGoodbyes);
    }
    out.push(
      `${"links:".padEnd(11)} unproven ${sum.unproven}, challenges ${sum.challenges}, forgedGoodbyes ${sum.forgedGoodbyes}`,
    );
  }
  const m = obj(s.memory);
  if (typeof m.rss === "number") {
    const mib = (v: unknown) => `${(num(v) / 2 ** 20).toFixed(1)} MiB`;
    out.push(`${"memory:".padEnd(11)} rss ${mib(m.rss)}, heap ${mib(m.heapUsed)} of ${mib(m.heapTotal)}`);
  }
  return out;
}

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return run("spinesctl", io, async () => {
    const { values: v, positionals: pos } = parse(argv, OPTIONS);
    if (v.help) {
      io.stdout.write(HELP);
      return Exit.Ok;
    }
    const [cmd, ...rest] = pos;
    if (cmd === undefined) throw new UsageError("missing command");
    let request: { cmd: string; args: Record<string, unknown> };
    const noArgs = (n: number) => {
      if (rest.length > n) throw new UsageError(`unexpected argument ${JSON.stringify(rest[n])}`);
    };
    const emulationFlagsUsed = Object.keys(EMULATION_FLAGS).some((f) => v[f] !== undefined);
    if (emulationFlagsUsed && !(cmd === "emulation" && rest[0] === "set")) {
      throw new UsageError("emulation flags go with 'emulation set'");
    }
    switch (cmd) {
      case "status":
      case "links":
      case "routes":
      case "groups":
      case "sessions":
      case "ping":
        noArgs(0);
        request = { cmd, args: {} };
        break;
      case "neighbours":
      case "neighbors":
        noArgs(0);
        request = { cmd: "neighbors", args: {} };
        break;
      case "log-level": {
        noArgs(1);
        const level = rest[0];
        const levels = ["trace", "debug", "info", "warn", "error", "fatal", "silent"];
        if (level === undefined || !levels.includes(level)) {
          throw new UsageError(`log-level needs one of ${levels.join(", ")}`);
        }
        request = { cmd, args: { level } };
        break;
      }
      case "emulation": {
        const [sub, nb] = rest;
        noArgs(2);
        if (sub !== "get" && sub !== "set" && sub !== "clear") {
          throw new UsageError("emulation needs get, set or clear");
        }
        const neighbor = parseId(nb, "neighbour");
        if (sub === "get") request = { cmd: "get-link", args: { neighbor } };
        else if (sub === "clear") request = { cmd: "set-link", args: { neighbor, emulation: null } };
        else {
          const emulation: Record<string, number> = {};
          for (const [flag, [key, max]] of Object.entries(EMULATION_FLAGS)) {
            if (v[flag] !== undefined) emulation[key] = parseNumber(v[flag], flag, { min: 0, max });
          }
          request = { cmd: "set-link", args: { neighbor, emulation } };
        }
        break;
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
    const path =
      typeof v.control === "string"
        ? v.control
        : io.env.SPINES_NODE_CONTROL || join(io.env.TMPDIR ?? tmpdir(), "spines-node-8100.ctl");
    const c = await ControlClient.connect(path);
    try {
      const result = await c.call(request.cmd, request.args);
      io.stdout.write(v.json ? `${JSON.stringify(result)}\n` : render(cmd, result));
      return Exit.Ok;
    } finally {
      c.close();
    }
  });
}
