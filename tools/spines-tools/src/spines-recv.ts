/**
 * `spines-recv`: receives what spines-send offers (the job of Spines' flooders' receiving side) and
 * prints latency (mean, p50, p99, max), jitter, loss and throughput. Exit codes: 0 something was
 * received, 1 nothing arrived or the daemon failed, 2 bad usage.
 */
import {
  createServer,
  createSocket,
  type DatagramSource,
  SpinesClient,
  type SpinesStream,
} from "@spines-ts/client";
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
  parsePort,
  processIo,
  run,
  sleep,
  UsageError,
  wallMs,
} from "./cli.ts";
import { FLAG_END, Progress, RunStats, readHeader, StreamParser, type Summary } from "./traffic.ts";

export const HELP = `Usage: spines-recv [options]

Receive spines-send traffic on a virtual port and report latency (mean, p50, p99,
max), jitter, loss and throughput. Latency uses the send time inside each message:
run both tools on one host (or on hosts with synchronised clocks).

Options:
  -p, --port PORT        virtual port to receive on (default 5555)
      --stream           accept one stream session (default: datagrams)
      --datagram         receive datagrams
      --link TYPE        best-effort|reliable|realtime, for the socket
                         (default best-effort; a stream rides the sender's)
  -g, --group GROUP      join multicast group GROUP (datagrams)
  -n, --count N          stop after N messages
  -d, --duration SEC     stop after SEC seconds
      --grace MS         after the sender's end-of-run message, wait this long
                         for stragglers (default 200)
${DAEMON_HELP}
      --json             print a JSON summary instead of text
  -h, --help             show this help

It stops at the sender's end of run, after --count or --duration, or on SIGINT,
then prints the summary. Live progress is drawn on stderr when it is a terminal.
Exit codes: 0 something received, 1 nothing received or daemon failure, 2 bad usage.
`;

const OPTIONS = {
  port: { type: "string", short: "p" },
  stream: { type: "boolean" },
  datagram: { type: "boolean" },
  link: { type: "string" },
  group: { type: "string", short: "g" },
  count: { type: "string", short: "n" },
  duration: { type: "string", short: "d" },
  grace: { type: "string" },
  daemon: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export interface RecvReport extends Summary {
  mode: "stream" | "datagram";
  node: number;
  port: number;
  group: number | null;
  from: { node: number; port: number } | null;
}

export function formatSummary(s: Summary): string {
  const m = s.messages;
  const lat = s.latencyMs;
  return (
    `received ${m.received}/${m.expected} messages (${m.lossPct.toFixed(2)}% loss, ${m.duplicates} duplicates, ${m.reordered} reordered), ` +
    `${s.bytes} bytes in ${(s.durationMs / 1000).toFixed(3)} s: ${s.throughputMbps === null ? "-" : s.throughputMbps.toFixed(2)} Mbit/s\n` +
    (lat
      ? `latency ms: mean ${ms(lat.mean)}  p50 ${ms(lat.p50)}  p99 ${ms(lat.p99)}  max ${ms(lat.max)}  jitter ${ms(s.jitterMs)}\n`
      : "latency ms: -\n")
  );
}

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return run("spines-recv", io, async () => {
    const { values: v, positionals: pos } = parse(argv, OPTIONS);
    if (v.help) {
      io.stdout.write(HELP);
      return Exit.Ok;
    }
    if (pos.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(pos[0])}`);
    if (v.stream && v.datagram) throw new UsageError("--stream and --datagram exclude each other");
    const stream = v.stream === true;
    const port = v.port === undefined ? 5555 : parsePort(v.port);
    const link = v.link === undefined ? (stream ? 1 : 0) : parseLink(v.link);
    const group = v.group === undefined ? undefined : parseId(v.group as string, "group");
    if (group !== undefined && stream) throw new UsageError("--group needs datagrams");
    const count =
      v.count === undefined ? undefined : parseNumber(v.count, "count", { min: 1, max: 2 ** 32, int: true });
    const duration =
      v.duration === undefined
        ? undefined
        : parseNumber(v.duration, "duration", { min: 0.001, max: 365 * 86400 });
    const grace = v.grace === undefined ? 200 : parseNumber(v.grace, "grace", { min: 0, max: 60_000 });
    const client = await SpinesClient.connect(daemonTarget(v.daemon, io.env));
    const stats = new RunStats();
    let from: { node: number; port: number } | null = null;
    const done = new AbortController();
    const stop = () => done.abort();
    io.signal.addEventListener("abort", stop, { once: true });
    let deadline: NodeJS.Timeout | undefined;
    if (duration !== undefined) deadline = setTimeout(stop, duration * 1000);
    const progress = new Progress(io.stderr, io.isTTY, () => {
      const s = stats.summary();
      return `recv: ${s.messages.received} msgs, ${s.bytes} bytes, ${s.throughputMbps?.toFixed(2) ?? "-"} Mbit/s, loss ${s.messages.lossPct.toFixed(2)}%, p50 ${ms(stats.percentile(50))} ms`;
    });
    const counted = () => {
      if (count !== undefined && stats.received >= count) stop();
    };
    let runId: number | undefined;
    try {
      if (stream) {
        const server = createServer({ daemon: client });
        const got = new Promise<SpinesStream>((resolve, reject) => {
          server.once("connection", resolve);
          server.once("error", reject);
        });
        await new Promise<void>((resolve, reject) => {
          server.once("listening", resolve);
          server.once("error", reject);
          server.listen({ port, link });
        });
        io.stderr.write(`spines-recv: node ${client.node} listening on stream port ${port}\n`);
        const s = await Promise.race([
          got,
          new Promise<undefined>((r) => done.signal.addEventListener("abort", () => r(undefined))),
        ]);
        server.close();
        if (s !== undefined) {
          from = { node: s.remoteNode, port: s.remotePort };
          const parser = new StreamParser((h, now) => {
            stats.add(h.seq, h.size, h.sentAt, now);
            counted();
          });
          s.on("data", (c: Buffer) => parser.push(c, wallMs()));
          const ended = new Promise<void>((resolve) => {
            s.once("end", () => {
              s.end();
              resolve();
            });
            s.once("error", () => resolve());
            s.once("close", () => resolve());
          });
          await Promise.race([
            ended,
            new Promise<void>((r) => done.signal.addEventListener("abort", () => r())),
          ]);
          if (!s.destroyed && !s.writableEnded) s.end();
          // Let the session finish its close handshake, briefly.
          await Promise.race([new Promise((r) => s.once("close", r)), sleep(1000)]);
          s.destroy();
        }
      } else {
        const sock = createSocket({ daemon: client, link });
        sock.on("message", (msg: Buffer, src: DatagramSource) => {
          const h = readHeader(msg);
          if (h === undefined) return;
          if (runId === undefined) {
            runId = h.run;
            from = { node: src.node, port: src.port };
          } else if (h.run !== runId) return;
          if (h.flags & FLAG_END) {
            stats.announced = h.total;
            setTimeout(stop, grace).unref();
            return;
          }
          stats.add(h.seq, msg.length, h.sentAt, wallMs());
          counted();
        });
        await new Promise<void>((resolve, reject) => {
          sock.once("error", reject);
          sock.bind(port, () => resolve());
        });
        if (group !== undefined) await sock.addMembership(group);
        io.stderr.write(
          `spines-recv: node ${client.node} receiving datagrams on port ${port}${group !== undefined ? ` (group ${group})` : ""}\n`,
        );
        if (!done.signal.aborted)
          await new Promise((r) => done.signal.addEventListener("abort", r, { once: true }));
        sock.close();
      }
    } finally {
      if (deadline) clearTimeout(deadline);
      io.signal.removeEventListener("abort", stop);
      progress.stop();
      client.close();
    }
    const summary = stats.summary();
    const report: RecvReport = {
      mode: stream ? "stream" : "datagram",
      node: client.node,
      port,
      group: group ?? null,
      from,
      ...summary,
    };
    if (v.json) io.stdout.write(`${JSON.stringify({ ...report, link: LINK_NAMES[link] })}\n`);
    else io.stdout.write(formatSummary(summary));
    return summary.messages.received > 0 ? Exit.Ok : Exit.Failure;
  });
}
