/**
 * `spines-traceroute NODE`: the overlay path to NODE and the round trip to each hop.
 *
 * Design: every node holds the whole link-state database, so the local daemon knows the full path
 * it routes on (the ROUTE request; Spines answers its SPINES_TRACEROUTE socket option the same
 * way). For each hop the tool then probes that hop's echo service (datagram port 7) and prints the
 * round trips. The overlay header has a TTL, but the overlay sends nothing back when it expires, so
 * TTL-limited probes cannot name the hop that dropped them; asking the route is the honest design.
 * Exit codes: 0 a route was found, 1 no route or no daemon, 2 bad usage.
 */
import { SpinesClient } from "@spines-ts/client";
import {
  DAEMON_HELP,
  daemonTarget,
  Exit,
  type Io,
  LINK_NAMES,
  ms,
  parse,
  parseId,
  parseLink,
  parseNumber,
  processIo,
  run,
  UsageError,
} from "./cli.ts";
import { MIN_PROBE_BYTES, Prober } from "./echo.ts";

export const HELP = `Usage: spines-traceroute [options] NODE

Print the overlay path to NODE as the local daemon's link-state routing sees it,
and the round trip to every hop on it (echo probes to each hop's port 7).

Options:
  -q, --queries N        probes per hop, 1..10 (default 3)
  -W, --timeout MS       how long to wait for each reply (default 2000)
  -s, --size BYTES       probe size, ${MIN_PROBE_BYTES}..65536 (default 56)
      --link TYPE        best-effort|reliable|realtime (default best-effort)
${DAEMON_HELP}
      --json             print JSON instead of text
  -h, --help             show this help

Exit codes: 0 route found, 1 no route or no daemon, 2 bad usage.
`;

const OPTIONS = {
  queries: { type: "string", short: "q" },
  timeout: { type: "string", short: "W" },
  size: { type: "string", short: "s" },
  link: { type: "string" },
  daemon: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return run("spines-traceroute", io, async () => {
    const { values: v, positionals: pos } = parse(argv, OPTIONS);
    if (v.help) {
      io.stdout.write(HELP);
      return Exit.Ok;
    }
    if (pos.length !== 1) throw new UsageError(pos.length === 0 ? "missing NODE" : "one NODE only");
    const node = parseId(pos[0]);
    const queries =
      v.queries === undefined ? 3 : parseNumber(v.queries, "queries", { min: 1, max: 10, int: true });
    const timeout =
      v.timeout === undefined ? 2000 : parseNumber(v.timeout, "timeout", { min: 1, max: 3_600_000 });
    const size =
      v.size === undefined
        ? 56
        : parseNumber(v.size, "size", { min: MIN_PROBE_BYTES, max: 65536, int: true });
    const link = v.link === undefined ? 0 : parseLink(v.link);
    const client = await SpinesClient.connect(daemonTarget(v.daemon, io.env));
    let route: { path: number[]; cost: number };
    try {
      route = await client.route(node);
    } catch (e) {
      client.close();
      throw e;
    }
    const prober = await Prober.open(client, link);
    if (!v.json) {
      io.stdout.write(
        `traceroute to node ${node} from node ${client.node}: ${route.path.length - 1} hops, cost ${route.cost} (${LINK_NAMES[link]} links)\n`,
      );
    }
    const hops: { hop: number; node: number; rttMs: (number | null)[] }[] = [];
    for (let i = 1; i < route.path.length && !io.signal.aborted; i++) {
      const hopNode = route.path[i] as number;
      const rtts: (number | null)[] = [];
      for (let q = 0; q < queries && !io.signal.aborted; q++) {
        const r = await prober.probe(hopNode, size, timeout);
        rtts.push(r.ok ? r.rttMs : null);
      }
      hops.push({ hop: i, node: hopNode, rttMs: rtts });
      if (!v.json) {
        const times = rtts.map((x) => (x === null ? "*" : `${ms(x)} ms`)).join("  ");
        io.stdout.write(`${String(i).padStart(2)}  node ${String(hopNode).padEnd(10)}  ${times}\n`);
      }
    }
    prober.close();
    if (v.json) {
      io.stdout.write(
        `${JSON.stringify({ node, from: client.node, cost: route.cost, path: route.path, link: LINK_NAMES[link], hops })}\n`,
      );
    }
    return Exit.Ok;
  });
}
