/**
 * `spines-ping NODE`: round trips across the overlay to NODE's echo service (datagram port 7).
 * Exit codes: 0 at least one reply, 1 no reply (or no daemon), 2 bad usage.
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
  sleep,
  UsageError,
  wallMs,
} from "./cli.ts";
import { MIN_PROBE_BYTES, Prober, rttStats } from "./echo.ts";

export const HELP = `Usage: spines-ping [options] NODE

Send echo requests across the overlay to NODE (a node id or dotted IPv4 address).
Every spines-node daemon echoes datagrams sent to its virtual port 7; the round
trip is measured on this host's clock.

Options:
  -c, --count N          probes to send (default 5; 0 = until interrupted)
  -i, --interval MS      time between probes (default 1000)
  -s, --size BYTES       probe size, ${MIN_PROBE_BYTES}..65536 (default 56)
  -W, --timeout MS       how long to wait for each reply (default 2000)
      --link TYPE        best-effort|reliable|realtime (default best-effort)
${DAEMON_HELP}
      --json             print a JSON summary instead of text
  -h, --help             show this help

Exit codes: 0 at least one reply, 1 no reply or no daemon, 2 bad usage.
`;

const OPTIONS = {
  count: { type: "string", short: "c" },
  interval: { type: "string", short: "i" },
  size: { type: "string", short: "s" },
  timeout: { type: "string", short: "W" },
  link: { type: "string" },
  daemon: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return run("spines-ping", io, async () => {
    const { values: v, positionals: pos } = parse(argv, OPTIONS);
    if (v.help) {
      io.stdout.write(HELP);
      return Exit.Ok;
    }
    if (pos.length !== 1) throw new UsageError(pos.length === 0 ? "missing NODE" : "one NODE only");
    const node = parseId(pos[0]);
    const count = v.count === undefined ? 5 : parseNumber(v.count, "count", { min: 0, max: 1e9, int: true });
    const interval =
      v.interval === undefined ? 1000 : parseNumber(v.interval, "interval", { min: 1, max: 3_600_000 });
    const size =
      v.size === undefined
        ? 56
        : parseNumber(v.size, "size", { min: MIN_PROBE_BYTES, max: 65536, int: true });
    const timeout =
      v.timeout === undefined ? 2000 : parseNumber(v.timeout, "timeout", { min: 1, max: 3_600_000 });
    const link = v.link === undefined ? 0 : parseLink(v.link);
    const client = await SpinesClient.connect(daemonTarget(v.daemon, io.env));
    const prober = await Prober.open(client, link);
    const say = (s: string) => {
      if (!v.json) io.stdout.write(s);
    };
    say(
      `PING node ${node} from node ${client.node} (echo port 7, ${size} bytes, ${LINK_NAMES[link]} links)\n`,
    );
    const t0 = wallMs();
    const replies: { seq: number; rttMs: number | null; error?: string }[] = [];
    const inflight: Promise<void>[] = [];
    for (let i = 0; (count === 0 || i < count) && !io.signal.aborted; i++) {
      const seq = i + 1;
      inflight.push(
        prober.probe(node, size, timeout).then((r) => {
          if (r.ok) {
            replies.push({ seq, rttMs: r.rttMs });
            say(`${r.bytes} bytes from node ${node}: seq=${seq} time=${ms(r.rttMs)} ms\n`);
          } else {
            replies.push({ seq, rttMs: null, error: r.reason });
            say(
              `node ${node}: seq=${seq} ${r.reason === "timeout" ? "no reply" : "destination unreachable"}\n`,
            );
          }
        }),
      );
      if (count === 0 || i + 1 < count) await sleep(interval, io.signal);
    }
    await Promise.all(inflight);
    prober.close();
    const elapsed = wallMs() - t0;
    replies.sort((a, b) => a.seq - b.seq);
    const rtts = replies.flatMap((r) => (r.rttMs === null ? [] : [r.rttMs]));
    const sent = replies.length;
    const lossPct = sent === 0 ? 0 : (100 * (sent - rtts.length)) / sent;
    const stats = rttStats(rtts);
    if (v.json) {
      io.stdout.write(
        `${JSON.stringify({ node, from: client.node, size, link: LINK_NAMES[link], sent, received: rtts.length, lossPct, timeMs: elapsed, rttMs: stats, replies })}\n`,
      );
    } else {
      say(`--- node ${node} ping statistics ---\n`);
      say(
        `${sent} sent, ${rtts.length} received, ${lossPct.toFixed(1)}% loss, time ${Math.round(elapsed)} ms\n`,
      );
      if (stats)
        say(
          `rtt min/avg/max/mdev = ${ms(stats.min)}/${ms(stats.avg)}/${ms(stats.max)}/${ms(stats.mdev)} ms\n`,
        );
    }
    return rtts.length > 0 ? Exit.Ok : Exit.Failure;
  });
}
