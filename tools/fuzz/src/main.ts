/**
 * `pnpm fuzz [--count N] [--quick] [--seed S] [--rate PPS] [--out FILE]`: a million (default) malformed
 * and mutated packets, derived from the golden wire vectors, at three running spines-node daemons
 * with a live session and at a running three-member membership group. Exits 0 when every process
 * stayed up, the session delivered every byte intact and in order, the view did not change, and
 * memory stayed bounded; 1 otherwise (the failures are printed and written to the JSON).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, join } from "node:path";
import { renderTable, type Table } from "@spines-ts/bench";
import { type FuzzResult, runLiveFuzz } from "./live.ts";

const HELP = `usage: pnpm fuzz [options]

Sends malformed and mutated packets (from the golden wire vectors) at 3 running spines-node daemons
(with a live, byte-checked session), a running 3-member membership group and a 3-node
wackamole-node cluster (dry-run address driver); checks that everything
stays up, the session and the view are undisturbed, drops are counted and memory is bounded.

options:
  --count N      packets to send (default 1000000; at least 1000)
  --quick        50000 packets
  --seed S       seed of the packet generator (default 1; the same seed sends the same packets)
  --rate PPS     packets per second offered, all targets together (default 20000)
  --membership-timing tolerant|default
                 membership timing (default tolerant: 4 s failure timeout, for loaded machines)
  --no-wackamole leave out the 3-node wackamole-node cluster (dry-run driver)
  --out FILE     JSON result (default bench/results/fuzz.json)
  -h, --help     this text
`;

function fail(msg: string): never {
  console.error(`pnpm fuzz: ${msg}\n\n${HELP}`);
  process.exit(2);
}

function parse(argv: string[]) {
  const o = {
    count: 1_000_000,
    seed: 1,
    rate: 20_000,
    membershipTiming: "tolerant" as "tolerant" | "default",
    out: join(import.meta.dirname, "..", "..", "..", "bench", "results", "fuzz.json"),
    quick: false,
    wackamole: true,
  };
  const num = (flag: string, v: string | undefined, min: number, max: number): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < min || n > max)
      fail(`${flag} expects an integer from ${min} to ${max}, got ${v ?? "nothing"}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "-h" || a === "--help") {
      console.log(HELP);
      process.exit(0);
    } else if (a === "--quick") {
      o.quick = true;
      o.count = 50_000;
    } else if (a === "--count") o.count = num(a, argv[++i], 1000, 100_000_000);
    else if (a === "--seed") o.seed = num(a, argv[++i], 0, 0xffffffff);
    else if (a === "--rate") o.rate = num(a, argv[++i], 100, 1_000_000);
    else if (a === "--no-wackamole") o.wackamole = false;
    else if (a === "--membership-timing") {
      const v = argv[++i];
      if (v !== "tolerant" && v !== "default")
        fail(`--membership-timing expects tolerant or default, got ${v}`);
      o.membershipTiming = v;
    } else if (a === "--out") {
      const v = argv[++i];
      if (!v) fail("--out expects a file name");
      o.out = v;
    } else fail(`unknown argument ${a}`);
  }
  return o;
}

/** Counters that count a dropped or refused datagram (traffic counters left out). */
const DROP_COUNTERS =
  /^(rxUnknownPeer|decodeErrors|senderMismatch|unexpectedType|rxHandlerErrors|noRoute|ttlExpired|noPort|badPackets|foreignGroup|host\.rxUnknownPeer|host\.rxHandlerErrors|host\.peersRejected|peersRejected|listenerErrors|timerErrors|authDropped|badMessages|tableMismatches|driverErrors|host\.timerErrors)$|^decodeErrorsByCode\./;

const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

export function tables(r: FuzzResult): Table[] {
  const reasons = (d: Record<string, number>) =>
    Object.entries(d)
      .filter(([k]) => DROP_COUNTERS.test(k))
      .map(([k, v]) => `${k.replace(/^decodeErrorsByCode\.ERR_WIRE_/, "").replace(/^host\./, "")}=${v}`)
      .join(" ");
  return [
    {
      title: `pnpm fuzz: ${r.packetsSent.toLocaleString("en-US")} packets, seed ${r.seed}, ${r.sendSec.toFixed(0)} s of sending`,
      columns: [
        "target",
        "sent",
        "kernel drops",
        "alive",
        "RSS before MiB",
        "peak",
        "after",
        "drops by reason",
      ],
      rows: r.targets.map((t) => [
        t.name,
        t.sent,
        t.kernelDrops,
        t.alive ? "yes" : `NO (${t.exit})`,
        mib(t.rssBefore),
        mib(t.rssPeak),
        mib(t.rssAfter),
        reasons(t.drops),
      ]),
      notes: [
        `sources: ${r.bySource.neighbour} from the configured neighbour/peer 9, ${r.bySource.unknown} from an unknown address`,
        "kernel drops: the socket's receive buffer was full (/proc/net/udp); the rest reached the process",
      ],
    },
    {
      title: "phases (one mutation kind each; health checked after each)",
      columns: ["kind", "sent", "sec", "all up", "view unchanged", "session intact", "session KiB"],
      rows: r.phases.map((p) => [
        p.kind,
        p.sent,
        Math.round(p.durationSec * 10) / 10,
        p.allAlive ? "yes" : "NO",
        p.viewUnchanged ? "yes" : "NO",
        p.streamIntact ? "yes" : "NO",
        Math.round(p.streamBytes / 1024),
      ]),
      notes: [
        `session: ${r.session.sentBytes} bytes sent, ${r.session.receivedBytes} received, intact=${r.session.intact}, ended=${r.session.ended}`,
        `membership: view ${r.membership.viewBefore?.key} -> ${r.membership.viewAfter.map((v) => v?.key).join(", ")}; view events during the run ${r.membership.viewEvents.join(",")}`,
        `baseline (${r.baseline.sec} s before the fuzz, no fuzz packets): session ${Math.round(r.baseline.sessionBytes / 1024)} KiB, ` +
          `member view events ${r.baseline.memberViewEvents.join(",")}, wackamole view events ${r.baseline.wackViewEvents.join(",")}, fail-overs ${r.baseline.wackFailovers.join(",")}`,
        r.wackamole.fuzzed
          ? `wackamole-node: view ${r.wackamole.viewBefore} -> ${r.wackamole.viewAfter.join(", ")}; view events ${r.wackamole.viewEvents.join(",")}; fail-overs ${r.wackamole.failovers.join(",")}`
          : "wackamole-node: not fuzzed (--no-wackamole)",
        r.ok ? "RESULT: ok" : `RESULT: FAILED\n  - ${r.failures.join("\n  - ")}`,
      ],
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const o = parse(process.argv.slice(2));
  const started = new Date();
  const r = await runLiveFuzz({
    count: o.count,
    seed: o.seed,
    rate: o.rate,
    membershipTiming: o.membershipTiming,
    wackamole: o.wackamole,
    log: (l) => console.error(`[fuzz ${((Date.now() - started.getTime()) / 1000).toFixed(0)}s] ${l}`),
  });
  for (const t of tables(r)) console.log(renderTable(t));
  mkdirSync(dirname(o.out), { recursive: true });
  const cpu = cpus()[0];
  writeFileSync(
    o.out,
    `${JSON.stringify(
      {
        name: "fuzz",
        date: started.toISOString(),
        quick: o.quick,
        durationSec: r.durationSec,
        host: {
          node: process.version,
          cpus: cpus().length,
          cpuModel: cpu?.model ?? "unknown",
          loadavg: loadavg(),
        },
        data: r,
      },
      null,
      2,
    )}\n`,
  );
  console.log(`\nwrote ${o.out}`);
  process.exit(r.ok ? 0 : 1);
}
