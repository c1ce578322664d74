/**
 * `pnpm bench soak [--quick] [--duration SEC] [--seed S]`: five spawned spines-node daemons on
 * loopback (endpoints 1 and 5, transits 2, 3, 4; every transit fault leaves a path) under steady
 * traffic — two byte-checked stream sessions (1 -> 5 and 5 -> 1) and a sequence-numbered datagram
 * flow 1 -> 5 — while a seeded fault schedule SIGKILLs and restarts transit daemons, partitions
 * links (100 % receive loss at both ends), makes links fail one way (at one end), and changes loss
 * rates, and abusive local clients hit the endpoints (connection floods past the client limit that
 * end in resets, clients and control clients that write and never read). Checks that no stream
 * byte is lost or duplicated (sessions survive transit crashes) and that no endpoint daemon dies,
 * and reports RSS start / peak / end and a curve per daemon, and whether the endpoints stayed flat after
 * warm-up (the first half; runs under 5 minutes are warm-up only). 10 minutes by default,
 * `--quick` 1 minute. Writes bench/results/soak.json. Diagnostics: `--no-abuse`, `--no-faults` leave
 * out the abusive clients or the network faults.
 */
import { createServer, connect as netConnect, type Socket } from "node:net";
import { type BenchReport, runBench, type Table } from "@spines-ts/bench";
import { SpinesClient } from "@spines-ts/client";
import { Rng } from "@spines-ts/primitives";
import {
  alive,
  type Daemon,
  freeUdpPorts,
  restartDaemon,
  rssOf,
  sleep,
  startDaemon,
  tmp,
} from "../src/procs.ts";
import { type CheckedStream, type StreamReport, startCheckedStream } from "../src/stream.ts";

/** Links of the overlay; 1 and 5 are the endpoints. Every single transit or link fault leaves a 1-5 path. */
const EDGES: [number, number][] = [
  [1, 2],
  [1, 3],
  [2, 4],
  [3, 4],
  [2, 5],
  [3, 5],
  [4, 5],
];
const TRANSITS = [2, 3, 4];
const MiB = 2 ** 20;
/** Shorter runs (--quick) are all warm-up: their RSS is reported, not judged. */
const MIN_JUDGED_SEC = 300;

/** Up to 11 evenly spaced sample times over the run. */
function curveTimes(memory: readonly MemSample[]): number[] {
  const t0 = memory[0]?.atSec ?? 0;
  const t1 = memory[memory.length - 1]?.atSec ?? t0;
  return Array.from({ length: 11 }, (_, i) => t0 + ((t1 - t0) * i) / 10);
}

/** The sample of daemon `id` nearest to `at` (within 10 s). */
function nearest(memory: readonly MemSample[], id: number, at: number): MemSample | undefined {
  let best: MemSample | undefined;
  for (const m of memory)
    if (m.id === id && (best === undefined || Math.abs(m.atSec - at) < Math.abs(best.atSec - at))) best = m;
  return best !== undefined && Math.abs(best.atSec - at) <= 10 ? best : undefined;
}

interface FaultRecord {
  atSec: number;
  kind: "kill-restart" | "partition" | "one-way" | "loss" | "connect-flood" | "slow-client" | "slow-control";
  target: string;
  durationSec: number;
  note?: string;
}

/** One memory sample of one daemon (bytes; `status` → `memory`, i.e. `process.memoryUsage()`). */
interface MemSample {
  atSec: number;
  id: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** The daemon's worst event-loop stall of the last 5-10 s (status `eventLoop.recentMaxStallMs`). */
  loopStallMs?: number;
}

interface RssTrack {
  start: number;
  peak: number;
  end: number;
  restarts: number;
  /** RSS right after the last (re)start, for transits. */
  lastStart: number;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
const HELLO = Buffer.concat([u32(6), Buffer.from([0x01]), u32(0x5350434c), Buffer.from([1])]);
const PING = Buffer.concat([u32(5), Buffer.from([0x09]), u32(7)]);

function openUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(path);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

function openTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect(port, "127.0.0.1");
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/**
 * 300 client connections at once (past the 256 limit): half on the Unix socket, half over
 * `--client-tcp` (without the token); all write a HELLO and junk, then the TCP ones end with a reset.
 */
async function connectFlood(d: Daemon, tcpPort: number): Promise<string> {
  const socks: { s: Socket; tcp: boolean }[] = [];
  let failed = 0;
  await Promise.all(
    Array.from({ length: 300 }, async (_, i) => {
      try {
        const tcp = i % 2 === 1;
        const s = tcp ? await openTcp(tcpPort) : await openUnix(d.clientSocket);
        s.on("error", () => {});
        s.write(HELLO);
        s.write(Buffer.alloc(512, 0x41));
        socks.push({ s, tcp });
      } catch {
        failed++;
      }
    }),
  );
  await sleep(500);
  for (const { s, tcp } of socks) {
    if (tcp) s.resetAndDestroy();
    else s.destroy();
  }
  return `${socks.length} opened, ${failed} refused at connect`;
}

/** A client (or control client) that writes requests and never reads its replies, for `ms`. */
async function slowReader(
  path: string,
  chunk: Buffer,
  hello: Buffer | undefined,
  ms: number,
): Promise<string> {
  let s: Socket;
  try {
    s = await openUnix(path);
  } catch (e) {
    return `could not connect: ${String(e)}`;
  }
  let closed = false;
  s.on("error", () => {});
  s.once("close", () => {
    closed = true;
  });
  s.pause();
  if (hello) s.write(hello);
  let written = 0;
  const t0 = Date.now();
  while (!closed && Date.now() - t0 < ms) {
    if (s.writableLength > 0) {
      await sleep(20);
      continue;
    }
    s.write(chunk);
    written += chunk.length;
  }
  const wasClosed = closed;
  s.destroy();
  return `${(written / MiB).toFixed(1)} MiB written, ${wasClosed ? "disconnected by the daemon" : "still connected at the end"}`;
}

interface DatagramFlow {
  sent: number;
  received: number;
  duplicates: number;
  reordered: number;
  stop(): void;
}

function freeTcpPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

async function datagramFlow(from: Daemon, to: Daemon, toNode: number, perSec: number): Promise<DatagramFlow> {
  const rx = await SpinesClient.connect({ path: to.clientSocket });
  const tx = await SpinesClient.connect({ path: from.clientSocket });
  rx.on("error", () => {});
  tx.on("error", () => {});
  tx.on("protocolError", () => {});
  const sock = await rx.openDatagram(6001);
  const out = await tx.openDatagram(6002);
  const seen = new Set<number>();
  const f: DatagramFlow = {
    sent: 0,
    received: 0,
    duplicates: 0,
    reordered: 0,
    stop: () => {
      clearInterval(timer);
      if (tx.closed) return;
      tx.close();
      rx.close();
    },
  };
  let highest = -1;
  sock.on("message", (b: Buffer) => {
    if (b.length < 4) return;
    const seq = b.readUInt32BE(0);
    if (seen.has(seq)) f.duplicates++;
    else {
      seen.add(seq);
      f.received++;
    }
    if (seq < highest) f.reordered++;
    highest = Math.max(highest, seq);
  });
  const payload = Buffer.alloc(200, 0x5a);
  const timer = setInterval(() => {
    for (let i = 0; i < perSec / 20; i++) {
      payload.writeUInt32BE(f.sent, 0);
      try {
        out.send(toNode, 6001, payload);
        f.sent++;
      } catch {
        // the daemon connection is gone: counted as not sent
      }
    }
  }, 50);
  return f;
}

let failed = false;
await runBench("soak", async (ctx): Promise<BenchReport> => {
  const durIdx = ctx.args.indexOf("--duration");
  const seedIdx = ctx.args.indexOf("--seed");
  const durationSec = durIdx >= 0 ? Number(ctx.args[durIdx + 1]) : ctx.quick ? 60 : 600;
  const seed = seedIdx >= 0 ? Number(ctx.args[seedIdx + 1]) : 1;
  // Diagnostics: leave out the abusive clients or the network faults (memory investigations).
  const withAbuse = !ctx.args.includes("--no-abuse");
  const withFaults = !ctx.args.includes("--no-faults");
  if (!Number.isFinite(durationSec) || durationSec < 10) throw new Error("--duration expects seconds >= 10");
  const rng = new Rng(seed);
  const dir = tmp("soak-");
  const ports = await freeUdpPorts(5);
  const tcpPorts = new Map([
    [1, await freeTcpPort()],
    [5, await freeTcpPort()],
  ]);
  const port = (id: number) => ports[id - 1] as number;
  const neighbors = (id: number) =>
    EDGES.filter(([a, b]) => a === id || b === id).map(([a, b]) => {
      const n = a === id ? b : a;
      return { id: n, host: "127.0.0.1", port: port(n) };
    });
  const daemons = new Map<number, Daemon>();
  const rss = new Map<number, RssTrack>();
  const faults: FaultRecord[] = [];
  const memory: MemSample[] = [];
  const problems: string[] = [];
  const streams: CheckedStream[] = [];
  let flow: DatagramFlow | undefined;
  const t0 = performance.now();
  const now = () => (performance.now() - t0) / 1000;
  try {
    console.error("soak: starting 5 spines-node daemons");
    await Promise.all(
      [1, 2, 3, 4, 5].map(async (id) => {
        const tcp = tcpPorts.get(id);
        const extraArgs = tcp === undefined ? [] : ["--client-tcp", `127.0.0.1:${tcp}`];
        daemons.set(
          id,
          await startDaemon({ id, port: port(id), dir, neighbors: neighbors(id), extraArgs }, 120_000),
        );
      }),
    );
    const d = (id: number) => daemons.get(id) as Daemon;
    for (let i = 0; ; i++) {
      const r1 = await d(1).call<{ dst: number }[]>("routes");
      const r5 = await d(5).call<{ dst: number }[]>("routes");
      if (r1.some((r) => r.dst === 5) && r5.some((r) => r.dst === 1)) break;
      if (i > 600) throw new Error("no route between 1 and 5 after 60 s");
      await sleep(100);
    }
    streams.push(
      await startCheckedStream({
        fromSocket: d(1).clientSocket,
        toSocket: d(5).clientSocket,
        toNode: 5,
        port: 5000,
        bytesPerSec: 128 * 1024,
        salt: seed,
      }),
      await startCheckedStream({
        fromSocket: d(5).clientSocket,
        toSocket: d(1).clientSocket,
        toNode: 1,
        port: 5001,
        bytesPerSec: 128 * 1024,
        salt: seed + 1,
      }),
    );
    flow = await datagramFlow(d(1), d(5), 5, 200);
    await sleep(2000);
    for (const [id, dm] of daemons) {
      const r = rssOf(dm.proc.pid);
      rss.set(id, { start: r, peak: r, end: r, restarts: 0, lastStart: r });
    }
    const sampler = setInterval(() => {
      for (const [id, dm] of daemons) {
        const t = rss.get(id);
        if (t) t.peak = Math.max(t.peak, rssOf(dm.proc.pid));
      }
    }, 1000);
    // The memory curve: every daemon's RSS and V8 heap every 5 s (from its own process.memoryUsage()).
    const sampleMemory = async () => {
      const at = now();
      await Promise.all(
        [...daemons].map(async ([id, dm]) => {
          if (!alive(dm.proc)) return;
          try {
            const st = await dm.call<{
              memory?: Omit<MemSample, "atSec" | "id">;
              eventLoop?: { recentMaxStallMs: number };
            }>("status");
            if (st.memory)
              memory.push({
                atSec: Math.round(at * 10) / 10,
                id,
                ...st.memory,
                ...(st.eventLoop ? { loopStallMs: st.eventLoop.recentMaxStallMs } : {}),
              });
          } catch {
            // busy or restarting: no sample this time
          }
        }),
      );
    };
    await sampleMemory();
    const memSampler = setInterval(() => void sampleMemory(), 5000);
    console.error(
      `soak: traffic flowing; ${withFaults ? "faults" : "no faults"}, ${withAbuse ? "abusive clients" : "no abusive clients"} for ${durationSec} s`,
    );
    const ticker = setInterval(() => {
      const [a, b] = streams.map((x) => x.report());
      const last = faults[faults.length - 1];
      console.error(
        `soak ${now().toFixed(0)}s: stream 1->5 ${a?.receivedBytes}/${a?.sentBytes} B, 5->1 ${b?.receivedBytes}/${b?.sentBytes} B, ` +
          `datagrams ${flow?.received}/${flow?.sent}, faults ${faults.length}${last ? ` (last ${last.kind} ${last.target})` : ""}`,
      );
    }, 10_000);
    const end = performance.now() + durationSec * 1000;

    // Abusive local clients, concurrently with the network faults.
    const abuse = (async () => {
      let k = 0;
      while (withAbuse && performance.now() < end - 5000) {
        await sleep(3000 + rng.int(5000));
        if (performance.now() >= end - 5000) break;
        const ep = d(rng.pick([1, 5]));
        const at = now();
        const kind = (["connect-flood", "slow-client", "slow-control"] as const)[
          k++ % 3
        ] as FaultRecord["kind"];
        let note: string;
        if (kind === "connect-flood") note = await connectFlood(ep, tcpPorts.get(ep.id) as number);
        else if (kind === "slow-client")
          note = await slowReader(ep.clientSocket, Buffer.concat(Array(8192).fill(PING)), HELLO, 12_000);
        else
          note = await slowReader(
            ep.control,
            Buffer.concat(Array(4096).fill(Buffer.from('{"cmd":"status"}\n'))),
            undefined,
            12_000,
          );
        faults.push({ atSec: at, kind, target: `node ${ep.id}`, durationSec: now() - at, note });
      }
    })();

    // Network faults, one at a time.
    while (withFaults && performance.now() < end - 8000) {
      const at = now();
      const kind = rng.pick(["kill-restart", "partition", "one-way", "loss"] as const);
      const hold = 2000 + rng.int(4000);
      if (kind === "kill-restart") {
        const id = rng.pick(TRANSITS);
        const dm = d(id);
        dm.proc.kill("SIGKILL");
        await dm.exited;
        await sleep(hold);
        try {
          await restartDaemon(dm, 120_000);
          const t = rss.get(id) as RssTrack;
          t.restarts++;
          t.lastStart = rssOf(dm.proc.pid);
        } catch (e) {
          problems.push(`transit ${id} did not restart: ${String(e)}`);
        }
        faults.push({ atSec: at, kind, target: `node ${id}`, durationSec: now() - at });
      } else {
        const [a, b] = rng.pick(EDGES);
        const emu = kind === "loss" ? { lossPct: 1 + rng.int(15), burstPct: rng.int(50) } : { lossPct: 100 };
        const ends: [number, number][] =
          kind === "one-way"
            ? [rng.chance(0.5) ? [a, b] : [b, a]]
            : [
                [a, b],
                [b, a],
              ];
        const set = async (emulation: unknown) => {
          for (const [x, y] of ends) {
            if (!alive(d(x).proc)) continue;
            try {
              await d(x).call("set-link", { neighbor: y, emulation });
            } catch (e) {
              problems.push(`set-link ${x}->${y}: ${String(e)}`);
            }
          }
        };
        await set(emu);
        await sleep(kind === "loss" ? hold * 2 : hold);
        await set(null);
        faults.push({
          atSec: at,
          kind,
          target: ends.map(([x, y]) => `${x}<-${y}`).join(" "),
          durationSec: now() - at,
          note: JSON.stringify(emu),
        });
      }
      ctx.progress(Math.min(1, (performance.now() - t0) / (end - t0)), `${faults.length} faults`);
      await sleep(1000 + rng.int(2000));
    }
    await abuse;
    while (performance.now() < end) await sleep(200);
    clearInterval(sampler);
    clearInterval(ticker);
    clearInterval(memSampler);
    await sampleMemory();
    // Let the sessions drain and end.
    const reports: StreamReport[] = [];
    for (const s of streams) reports.push(await s.finish(60_000));
    await sleep(2000);
    flow.stop();
    for (const [id, dm] of daemons) {
      const t = rss.get(id) as RssTrack;
      t.end = rssOf(dm.proc.pid);
      t.peak = Math.max(t.peak, t.end);
      if (!alive(dm.proc)) problems.push(`node ${id} is not running at the end: ${dm.stderr().slice(-1500)}`);
    }
    for (const id of [1, 5]) if (rss.get(id)?.restarts) problems.push(`endpoint ${id} restarted`);
    const counters: Record<number, unknown> = {};
    for (const [id, dm] of daemons) {
      try {
        const st = await dm.call<{ counters: Record<string, unknown> }>("status");
        counters[id] = {
          clientProtocol: st.counters.clientProtocol,
          control: st.counters.control,
          decodeErrors: st.counters.decodeErrors,
          rxHandlerErrors: st.counters.rxHandlerErrors,
          timerErrors: st.counters.timerErrors,
        };
      } catch (e) {
        problems.push(`status of node ${id}: ${String(e)}`);
      }
    }
    const sessionRows = reports.map((r, i) => {
      const ok = r.intact && r.ended && r.receivedBytes === r.sentBytes && r.errors.length === 0;
      if (!ok) problems.push(`stream ${i === 0 ? "1->5" : "5->1"} disturbed: ${JSON.stringify(r)}`);
      return [
        i === 0 ? "stream 1 -> 5" : "stream 5 -> 1",
        r.sentBytes,
        r.receivedBytes,
        r.sentBytes - r.receivedBytes,
        r.intact ? "yes" : `NO at ${r.firstMismatchAt}`,
        r.ended ? "yes" : "NO",
      ];
    });
    // A flat RSS, after warm-up. Under the abusive clients' bursts V8 grows its heap reservation
    // (heapTotal: 20 -> 50-90 MiB) and the allocator keeps what it got, while the live heap stays
    // at 11-13 MiB (heap snapshots after 0, 2 and 4 minutes of abuse): RSS rises for the first
    // minute or two, then stays (tools/fuzz/README.md, "Memory"). So the baseline is the highest
    // RSS of the first half of the run (the warm-up), and the tolerance is the one the soak always
    // had: max(32 MiB, 25 % of the start). Runs shorter than MIN_JUDGED_SEC (--quick) are all
    // warm-up: their RSS is reported, not judged.
    const half = (memory[0]?.atSec ?? 0) + durationSec / 2;
    const warmHigh = (id: number, t: RssTrack): number =>
      Math.max(t.start, ...memory.filter((m) => m.id === id && m.atSec <= half).map((m) => m.rss));
    const tolerance = (t: RssTrack) => Math.max(32 * MiB, 0.25 * t.start);
    const judged = durationSec >= MIN_JUDGED_SEC;
    const flat = (id: number, t: RssTrack) => t.end - warmHigh(id, t) <= tolerance(t);
    const rssRows = [...rss.entries()].map(([id, t]) => [
      `node ${id}${TRANSITS.includes(id) ? " (transit)" : " (endpoint)"}`,
      Math.round((t.start / MiB) * 10) / 10,
      Math.round((warmHigh(id, t) / MiB) * 10) / 10,
      Math.round((t.peak / MiB) * 10) / 10,
      Math.round((t.end / MiB) * 10) / 10,
      Math.round((t.end / t.start) * 100) / 100,
      t.restarts,
      t.restarts > 0 ? "n/a (restarted)" : !judged ? "warm-up only" : flat(id, t) ? "yes" : "NO",
    ]);
    for (const id of [1, 5]) {
      const t = rss.get(id) as RssTrack;
      if (judged && !flat(id, t))
        problems.push(
          `endpoint ${id} RSS not flat after warm-up: ${(warmHigh(id, t) / MiB).toFixed(1)} MiB (highest of the first half) -> ${(t.end / MiB).toFixed(1)} MiB at the end`,
        );
    }
    // The RSS curve: every daemon's RSS at (up to) 11 points of the run, from its memory samples.
    const curveAt = memory.length === 0 ? [] : curveTimes(memory);
    const curveRows = [...rss.keys()].map((id) => [
      `node ${id}`,
      ...curveAt.map((at) => {
        const m = nearest(memory, id, at);
        return m === undefined ? "-" : `${Math.round(m.rss / MiB)}/${Math.round(m.heapUsed / MiB)}`;
      }),
    ]);
    const byKind: Record<string, number> = {};
    for (const f of faults) byKind[f.kind] = (byKind[f.kind] ?? 0) + 1;
    const tables: Table[] = [
      {
        title: `soak: 5 spines-node daemons, ${durationSec} s of faults (seed ${seed}, loopback, shared 2-core machine)`,
        columns: ["session", "sent bytes", "received", "missing", "intact, in order", "end seen"],
        rows: [
          ...sessionRows,
          [
            "datagrams 1 -> 5 (best effort)",
            flow.sent,
            flow.received,
            flow.sent - flow.received,
            `dup ${flow.duplicates}, reordered ${flow.reordered}`,
            "-",
          ],
        ],
        notes: [
          `faults: ${Object.entries(byKind)
            .map(([k, v]) => `${k} ${v}`)
            .join(", ")}`,
          "datagrams are best effort: loss during faults is expected; duplicates are not",
        ],
      },
      {
        title: "RSS curve (MiB, RSS/heapUsed, from each daemon's status every 5 s; t in s)",
        columns: ["daemon", ...curveAt.map((t) => `t=${Math.round(t)}`)],
        rows: curveRows,
        notes: [
          "a restarted transit's curve starts over at its restart",
          `worst event-loop stall (status eventLoop; a stall over the 10 s session dead-peer timeout ends sessions): ${[
            ...rss.keys(),
          ]
            .map((id) => {
              const w = memory
                .filter((m) => m.id === id && m.loopStallMs !== undefined)
                .reduce<MemSample | undefined>(
                  (a, m) => (a === undefined || (m.loopStallMs ?? 0) > (a.loopStallMs ?? 0) ? m : a),
                  undefined,
                );
              return w === undefined
                ? `node ${id} -`
                : `node ${id} ${w.loopStallMs} ms (t=${Math.round(w.atSec)})`;
            })
            .join(", ")}`,
        ],
      },
      {
        title: "RSS per daemon (MiB; start = at the start of the fault schedule)",
        columns: ["daemon", "start", "warm-up high", "peak", "end", "end/start", "restarts", "flat"],
        rows: rssRows,
        notes: [
          `flat: end within max(32 MiB, 25 % of start) of the highest RSS of the first half (the warm-up); runs under ${MIN_JUDGED_SEC} s are warm-up only; a restarted transit starts over`,
          problems.length === 0 ? "RESULT: ok" : `RESULT: FAILED\n  - ${problems.join("\n  - ")}`,
        ],
      },
    ];
    failed = problems.length > 0;
    return {
      tables,
      data: {
        ok: problems.length === 0,
        seed,
        durationSec,
        streams: reports,
        datagrams: {
          sent: flow.sent,
          received: flow.received,
          duplicates: flow.duplicates,
          reordered: flow.reordered,
        },
        rss: Object.fromEntries(
          [...rss.entries()].map(([id, t]) => [
            id,
            { ...t, warmUpHigh: warmHigh(id, t), flat: t.restarts > 0 || !judged ? null : flat(id, t) },
          ]),
        ),
        faults,
        counters,
        memory,
        problems,
      },
    };
  } finally {
    for (const s of streams) s.close();
    flow?.stop();
    for (const dm of daemons.values()) if (alive(dm.proc)) dm.proc.kill("SIGTERM");
    await Promise.all([...daemons.values()].map((dm) => Promise.race([dm.exited, sleep(5000)])));
    for (const dm of daemons.values()) if (alive(dm.proc)) dm.proc.kill("SIGKILL");
  }
});
// Exit even if a socket of a killed daemon's client lingers; 1 when the soak found a problem.
process.exit(failed ? 1 : 0);
