/**
 * `spines-send`: offers traffic to a node (or a multicast/anycast group) for spines-recv to measure
 * (the job of Spines' flooders' sending side). Exit codes: 0 sent, 1 the daemon or the session
 * failed, 2 bad usage.
 */
import { randomInt } from "node:crypto";
import { connect, createSocket, SpinesClient, type SpinesStream } from "@spines-ts/client";
import {
  DAEMON_HELP,
  daemonTarget,
  Exit,
  type Io,
  LINK_NAMES,
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
import { FLAG_END, HEADER_BYTES, mbps, Progress, writeHeader } from "./traffic.ts";

export const HELP = `Usage: spines-send [options] NODE
       spines-send [options] --group GROUP | --anycast GROUP

Offer traffic to spines-recv on NODE (a node id or dotted IPv4 address), to every
member of a multicast group, or to the nearest member of an anycast group.

Options:
  -p, --port PORT        destination virtual port (default 5555)
      --stream           one stream session, reliable end to end (default: datagrams)
      --datagram         datagrams, best effort end to end
      --link TYPE        best-effort|reliable|realtime hop by hop
                         (default: reliable for a stream, best-effort for datagrams)
  -g, --group GROUP      multicast to GROUP (datagrams)
      --anycast GROUP    send to the nearest member of GROUP (datagrams)
  -r, --rate KBPS        offered rate in kbit/s (default: 1000 for datagrams,
                         0 = as fast as the session takes for a stream)
  -s, --size BYTES       message size, ${HEADER_BYTES}..65536 (default 1000)
  -n, --count N          messages to send (default 1000 unless --duration)
  -d, --duration SEC     send for SEC seconds
${DAEMON_HELP}
      --json             print a JSON summary instead of text
  -h, --help             show this help

Every message carries a sequence number and its send time; spines-recv computes
latency, jitter and loss from them. Live progress is drawn on stderr on a terminal.
Exit codes: 0 sent, 1 daemon or session failure, 2 bad usage.
`;

const OPTIONS = {
  port: { type: "string", short: "p" },
  stream: { type: "boolean" },
  datagram: { type: "boolean" },
  link: { type: "string" },
  group: { type: "string", short: "g" },
  anycast: { type: "string" },
  rate: { type: "string", short: "r" },
  size: { type: "string", short: "s" },
  count: { type: "string", short: "n" },
  duration: { type: "string", short: "d" },
  daemon: { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

/** Pacing granularity. */
const TICK_MS = 5;

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  return run("spines-send", io, async () => {
    const { values: v, positionals: pos } = parse(argv, OPTIONS);
    if (v.help) {
      io.stdout.write(HELP);
      return Exit.Ok;
    }
    if (v.stream && v.datagram) throw new UsageError("--stream and --datagram exclude each other");
    const stream = v.stream === true;
    const group = v.group === undefined ? undefined : parseId(v.group as string, "group");
    const anycast = v.anycast === undefined ? undefined : parseId(v.anycast as string, "anycast group");
    if (group !== undefined && anycast !== undefined)
      throw new UsageError("--group and --anycast exclude each other");
    if ((group ?? anycast) !== undefined && stream)
      throw new UsageError("--group and --anycast need datagrams");
    if ((group ?? anycast) !== undefined && pos.length > 0)
      throw new UsageError("NODE goes without --group/--anycast");
    if ((group ?? anycast) === undefined && pos.length !== 1) {
      throw new UsageError(pos.length === 0 ? "missing NODE" : "one NODE only");
    }
    const node = (group ?? anycast) === undefined ? parseId(pos[0]) : undefined;
    const port = v.port === undefined ? 5555 : parsePort(v.port);
    const link = v.link === undefined ? (stream ? 1 : 0) : parseLink(v.link);
    const rateKbps =
      v.rate === undefined ? (stream ? 0 : 1000) : parseNumber(v.rate, "rate", { min: 0, max: 100_000_000 });
    if (!stream && rateKbps === 0) throw new UsageError("datagrams need a --rate above 0");
    const size =
      v.size === undefined ? 1000 : parseNumber(v.size, "size", { min: HEADER_BYTES, max: 65536, int: true });
    const duration =
      v.duration === undefined
        ? undefined
        : parseNumber(v.duration, "duration", { min: 0.001, max: 365 * 86400 });
    const count =
      v.count === undefined
        ? duration === undefined
          ? 1000
          : Number.POSITIVE_INFINITY
        : parseNumber(v.count, "count", { min: 1, max: 2 ** 32 - 1, int: true });
    const target = daemonTarget(v.daemon, io.env);
    const runId = randomInt(1, 2 ** 32 - 1);
    let sent = 0;
    let bytes = 0;
    const t0 = wallMs();
    const endAt = duration === undefined ? Number.POSITIVE_INFINITY : t0 + duration * 1000;
    const progress = new Progress(io.stderr, io.isTTY, () => {
      const el = wallMs() - t0;
      return `send: ${sent} msgs, ${bytes} bytes, ${mbps(bytes, el)?.toFixed(2) ?? "-"} Mbit/s`;
    });
    const message = (seq: number, flags = 0, total = 0): Buffer => {
      const b = Buffer.alloc(flags & FLAG_END ? HEADER_BYTES : size);
      writeHeader(b, { flags, run: runId, seq, size: b.length, sentAt: wallMs(), total });
      return b;
    };
    /** Bytes the rate allows by now. */
    const budget = () => (rateKbps === 0 ? Number.POSITIVE_INFINITY : ((wallMs() - t0) * rateKbps) / 8);
    const more = () => sent < count && wallMs() < endAt && !io.signal.aborted;
    let daemonNode = 0;
    try {
      if (stream) {
        const s: SpinesStream = connect({
          node: node as number,
          port,
          link,
          daemon: target,
          signal: io.signal,
        });
        await new Promise<void>((resolve, reject) => {
          s.once("connect", resolve);
          s.once("error", reject);
        });
        let failure: Error | undefined;
        s.on("error", (e) => {
          failure = e;
        });
        s.resume(); // the receiver sends nothing; drain its end
        while (more() && failure === undefined) {
          if (bytes + size > budget()) {
            await sleep(TICK_MS, io.signal);
            continue;
          }
          const ok = s.write(message(sent));
          sent++;
          bytes += size;
          if (!ok) await new Promise((r) => s.once("drain", r));
        }
        s.end();
        await new Promise<void>((resolve) => {
          if (s.destroyed) resolve();
          s.once("close", () => resolve());
        });
        if (failure !== undefined) throw failure;
      } else {
        const client = await SpinesClient.connect(target);
        daemonNode = client.node;
        const sock = createSocket({ daemon: client, link });
        let failure: Error | undefined;
        sock.on("error", (e) => {
          failure = e;
        });
        await new Promise<void>((resolve) => sock.bind(0, resolve));
        const send = (b: Buffer) => {
          if (group !== undefined) sock.sendToGroup(b, port, group);
          else if (anycast !== undefined) sock.sendAnycast(b, port, anycast);
          else sock.send(b, port, node as number);
        };
        while (more() && failure === undefined) {
          if (bytes + size > budget()) {
            await sleep(TICK_MS, io.signal);
            continue;
          }
          send(message(sent));
          sent++;
          bytes += size;
          if (sent % 64 === 0) await client.drained();
        }
        // End of run, three times (best effort), so the receiver learns how many were sent.
        for (let i = 0; i < 3 && failure === undefined; i++) {
          send(message(sent, FLAG_END, sent));
          await sleep(20);
        }
        await client.drained();
        sock.close();
        client.close();
        if (failure !== undefined) throw failure;
      }
    } finally {
      progress.stop();
    }
    const elapsed = wallMs() - t0;
    const report = {
      mode: stream ? "stream" : "datagram",
      from: daemonNode || null,
      to: node ?? null,
      group: group ?? null,
      anycast: anycast ?? null,
      port,
      link: LINK_NAMES[link],
      size,
      rateKbps,
      messages: sent,
      bytes,
      durationMs: elapsed,
      throughputMbps: mbps(bytes, elapsed),
    };
    if (v.json) io.stdout.write(`${JSON.stringify(report)}\n`);
    else {
      io.stdout.write(
        `sent ${sent} messages, ${bytes} bytes in ${(elapsed / 1000).toFixed(3)} s: ${report.throughputMbps?.toFixed(2) ?? "-"} Mbit/s offered (${report.mode}, ${report.link} links)\n`,
      );
    }
    return Exit.Ok;
  });
}
