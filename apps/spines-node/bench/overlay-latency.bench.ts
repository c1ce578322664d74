/**
 * `pnpm bench overlay-latency [--quick] [--trace] [--only rate-capped|tcp-fair] [--rate N]
 * [--seconds S] [--loss 0,1,5] [--session JSON] [--daemon-config FILE]` (issue 10; no root).
 * `--session` adds session settings to every daemon's configuration (before/after comparisons);
 * `--quick` (CI) runs rate-capped links only, at 200 messages/s for 3 s, losses 0 and 5 %.
 *
 * Five spawned spines-node daemons in a line on loopback, every link emulated by the daemons'
 * built-in emulation (on receive: 10 ms one way, independent loss per direction at 0, 1 and 5 %).
 * 1,000-byte messages from node 1 to node 5, one-way latency per message (one process times both
 * ends through two client connections, so one clock):
 *   - rate-capped links (20 Mbit/s per link) at 1,000 messages/s, and
 *   - TCP-fair links (the default) at 100 messages/s.
 * Rows: `stream` (a stream session over hop-by-hop reliable links), `datagram` (reliable datagrams
 * over reliable links), `e2e-stream` (a stream over best-effort links: end-to-end recovery only),
 * and the model (`model-ordered` for streams, `model-unordered` for datagrams; the port of
 * latency_model.py in tools/netlab/src/latency-model.ts, hop-by-hop scheme, 1 ms detection gap)
 * computed for the same path, loss and rate. `e2eRetransmissions` is the sending daemon's
 * `segmentsRetransmitted` of the session (control socket `sessions`, read just before it closes).
 *
 * `--trace`: attributes each stream message's latency beyond the path's free-flow latency to its
 * own delay (short: link recovery; long: an end-to-end retransmission or a stall, told apart by the
 * session's counter) or to waiting behind an earlier message (head-of-line), from the delivery
 * bursts at the receiver (see `attribute`). `--diag` prints every daemon's links after each case.
 * Always printed (diagnostics table): the sending daemon's stream session at the end (e2e
 * retransmissions, `transportBlocked`, `windowBlocked`), every daemon's CPU µs per message during
 * the case, and for datagram rows their arrivals put in send order ("ordered"): what a stream over
 * the same links would give if the session added nothing to them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { runBench, type Table } from "@spines-ts/bench";
import { benchPriority } from "../../../tools/netlab/bench/priority.ts";
import { simulate } from "../../../tools/netlab/src/latency-model.ts";
import { summarize } from "../../../tools/netlab/src/stats.ts";
import { LinkType, SpinesClient } from "../src/client.ts";
import { monotonicOffsetMs, TraceStage } from "../src/trace.ts";
import { freeUdpPorts, type Spawned, spawnDaemon, tmp } from "../test/helpers.ts";

const HOPS = 4;
const NODES = HOPS + 1;
const DELAY = 10;
const SIZE = 1000;
/** Rate cap of the rate-capped mode (as tools/netlab's latency bench): 20 Mbit/s per link. */
const RATE_CAP_BYTES_PER_MS = 2500;

type System = "stream" | "datagram" | "e2e-stream" | "model-ordered" | "model-unordered";
type LinkMode = "rate-capped" | "tcp-fair";

interface Case {
  system: System;
  linkMode: LinkMode;
  rate: number;
  lossPct: number;
  durationSec: number;
  sent: number;
  delivered: number;
  duplicates: number;
  meanMs: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  /** Standard deviation of the one-way latency. */
  jitterMs: number;
  /** Session segments sent again end to end by the sending daemon (streams); null when not measured. */
  e2eRetransmissions: number | null;
  /** Mean release error of the daemons' built-in emulation (ms per hop; null: not reported). */
  emulationErrorMs?: number | null;
  /** 1-minute load average when the case ended (the machine is shared). */
  loadAvg1: number;
  trace?: Trace;
  /** CPU time of each daemon (nodes 1..5) during the case, µs per message sent (10 ms ticks). */
  cpuUsPerMsg?: number[];
  /** Streams: the sending daemon's session at the end (control `sessions`: window, blocked counts). */
  senderSession?: Record<string, unknown>;
  /**
   * Datagrams: their arrival times put in send order at the receiver (each message waits for every
   * earlier one), i.e. what a stream over the same links would show if it added nothing to them.
   */
  orderedFromArrivals?: { meanMs: number; p50Ms: number; p99Ms: number };
  /** Where the latency went, from the daemons' own packet traces (`--trace`). */
  daemonTrace?: DaemonTrace;
  note?: string;
}

/**
 * Mean per-message time between stamps of the daemons' packet traces (control `trace`,
 * src/trace.ts), over the messages whose every stamp was found (ms). Hop k is node k to node k+1.
 */
interface DaemonTrace {
  /** Messages with a full set of stamps. */
  traced: number;
  /** Probe's send to the first daemon taking the bytes from the client socket. */
  clientIn: number;
  /** Source daemon: from the client's bytes to the first transmission of the packet. */
  source: number;
  /** Per hop: first transmission by the sender to release by the receiver's emulation, minus the 10 ms delay (kernel, timer lateness, link retransmissions). */
  hopExcess: number[];
  /** Per transit node (2..4): released by emulation to first transmission onwards. */
  transit: number[];
  /** Last node: released by emulation to handed to the session endpoint (link reordering). */
  linkDeliver: number;
  /** Last node: session endpoint to the client (session reordering, hand-over). */
  session: number;
  /** Daemon's hand-over to the probe's receipt (client socket, the probe's event loop). */
  clientOut: number;
  /** Sum of the above plus 4 × 10 ms, against the measured mean over the same messages. */
  accountedMs: number;
  measuredMs: number;
}

interface Trace {
  /** Free-flow latency used as the base (the run's 1st percentile), ms. */
  baseMs: number;
  /**
   * Mean excess over the base, split by cause (ms per message, summing to the mean excess): own
   * delay under the threshold (link recovery), own delay above it (end-to-end retransmission or a
   * stall), waiting behind an earlier message.
   */
  ownLinkRecoveryMs: number;
  ownE2eRecoveryMs: number;
  headOfLineMs: number;
  /** Messages whose own recovery looked like an end-to-end retransmission. */
  e2eRecoveredMsgs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface TraceDumpLike {
  t: number[];
  stage: number[];
  key: number[];
  len: number[];
  overwritten: number;
}

async function traceAll(line: Line, action: "start" | "stop"): Promise<TraceDumpLike[]> {
  const out: TraceDumpLike[] = [];
  for (const d of line.daemons) {
    const c = await d.ctl();
    try {
      out.push(await c.call<TraceDumpLike>("trace", { action, capacity: 1 << 18 }));
    } finally {
      c.close();
    }
  }
  return out;
}

interface Line {
  daemons: Spawned[];
  sock: (node: number) => string;
  setLoss: (lossPct: number) => Promise<void>;
  stop: () => Promise<void>;
}

async function startLine(
  linkMode: LinkMode,
  extraConfig: string | undefined,
  session: Record<string, unknown> | undefined,
): Promise<Line> {
  const dir = tmp();
  const ports = await freeUdpPorts(NODES);
  const sock = (n: number) => join(dir, `n${n}.sock`);
  const daemons = await Promise.all(
    Array.from({ length: NODES }, (_, i) => {
      const id = i + 1;
      const neighbors = [];
      for (const j of [i - 1, i + 1]) {
        if (j < 0 || j >= NODES) continue;
        neighbors.push({ id: j + 1, address: `127.0.0.1:${ports[j]}`, emulation: { delayMs: DELAY } });
      }
      const cfg = join(dir, `n${id}.json`);
      writeFileSync(
        cfg,
        JSON.stringify({
          neighbors,
          ...(session !== undefined ? { session } : {}),
          ...(linkMode === "rate-capped"
            ? { link: { congestion: { kind: "rate", rateBytesPerMs: RATE_CAP_BYTES_PER_MS } } }
            : {}),
        }),
      );
      const args = [
        "--id",
        String(id),
        "--listen",
        `127.0.0.1:${ports[i]}`,
        "--control",
        join(dir, `n${id}.ctl`),
        "--client-socket",
        sock(id),
        "--log-level",
        "error",
        "--config",
        extraConfig ?? cfg,
      ];
      if (extraConfig !== undefined) {
        for (const n of neighbors) args.push("--neighbor", `${n.id}@${n.address}`);
      }
      // Generous: on the shared machine five tsx start-ups at once can take minutes.
      return spawnDaemon(args, join(dir, `n${id}.ctl`), 240_000);
    }),
  );
  const setLoss = async (lossPct: number) => {
    for (const [i, d] of daemons.entries()) {
      const c = await d.ctl();
      try {
        for (const j of [i - 1, i + 1]) {
          if (j < 0 || j >= NODES) continue;
          await c.call("set-link", { neighbor: j + 1, emulation: { delayMs: DELAY, lossPct } });
        }
      } finally {
        c.close();
      }
    }
  };
  // --daemon-config replaces the generated file: put the emulation in place from the control socket.
  if (extraConfig !== undefined) await setLoss(0);
  await waitRoute(sock(1), 60_000);
  return {
    daemons,
    sock,
    setLoss,
    stop: async () => {
      for (const d of daemons) d.proc.kill("SIGTERM");
      await Promise.all(daemons.map((d) => Promise.race([d.exited, sleep(3000)])));
      for (const d of daemons) d.proc.kill("SIGKILL");
    },
  };
}

/** Waits until node 1 has a route to the last node; returns how long it waited (ms). */
async function waitRoute(sock1: string, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (performance.now() - t0 > timeoutMs)
      throw new Error(`no route to node ${NODES} within ${timeoutMs} ms`);
    try {
      const c = await SpinesClient.connect({ path: sock1 });
      try {
        const r = await c.route(NODES);
        if (r.path.length === NODES) return performance.now() - t0;
      } finally {
        c.close();
      }
    } catch {
      // not yet
    }
    await sleep(200);
  }
}

interface ProbeResult {
  sent: number;
  latMs: number[];
  /** Receive time (ms, performance.now) of each entry of latMs. */
  atMs: number[];
  /** Send time offset (ms from the start) of each entry of latMs. */
  sentAtMs: number[];
  /** Sequence number of each entry of latMs. */
  seqs: number[];
  /** Probe start (performance.now of this process). */
  t0: number;
  /** Daemon packet traces of this probe (nodes 1..5), with `--trace`. */
  dumps?: TraceDumpLike[];
  duplicates: number;
  blocked: number;
  e2eRetransmissions: number | null;
  /** The sending daemon's view of the stream session (control `sessions`), streams only. */
  senderSession?: Record<string, unknown>;
  /** Mean release error of the daemons' emulation over the emulated links (ms), when reported. */
  emulationErrorMs: number | null;
}

/**
 * One-way latency probe (after tools/netlab/bench/overlay-probe.ts, which cannot read the session's
 * counters before it closes the session): the sender paces `rate` messages/s; each carries a u32
 * sequence number and its send time.
 */
async function probe(
  line: Line,
  o: {
    mode: "stream" | "datagram";
    link: "reliable" | "best-effort";
    rate: number;
    durationMs: number;
    drainMs: number;
    port: number;
    trace?: boolean;
  },
): Promise<ProbeResult> {
  const total = Math.round((o.rate * o.durationMs) / 1000);
  const link = o.link === "reliable" ? LinkType.Reliable : LinkType.BestEffort;
  const rx = await SpinesClient.connect({ path: line.sock(NODES) });
  const tx = await SpinesClient.connect({ path: line.sock(1) });
  rx.on("error", () => {});
  tx.on("error", () => {});
  const latMs: number[] = [];
  const atMs: number[] = [];
  const sentAtMs: number[] = [];
  const seqs: number[] = [];
  const seen = new Uint8Array(total);
  let duplicates = 0;
  const t0 = performance.now();
  const record = (b: Uint8Array, off: number) => {
    const v = Buffer.from(b.buffer, b.byteOffset + off, 12);
    const seq = v.readUInt32BE(0);
    if (seq >= total) return;
    if (seen[seq] === 1) {
      duplicates++;
      return;
    }
    seen[seq] = 1;
    const now = performance.now();
    const sentAt = Number(v.readBigUInt64BE(4)) / 1e6;
    latMs.push(now - sentAt);
    atMs.push(now - t0);
    sentAtMs.push(sentAt - t0);
    seqs.push(seq);
  };
  const closers: (() => Promise<void> | void)[] = [];
  let send: (b: Buffer) => boolean;
  let sessionPort = -1;
  try {
    if (o.mode === "stream") {
      const l = await rx.listen(o.port, { link });
      const [s, peer] = await Promise.all([tx.connect(NODES, o.port, { link }), l.accept()]);
      s.on("error", () => {});
      peer.on("error", () => {});
      sessionPort = o.port;
      let buf: Buffer = Buffer.alloc(0);
      peer.on("data", (d: Buffer) => {
        buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
        let off = 0;
        while (buf.length - off >= SIZE) {
          record(buf, off);
          off += SIZE;
        }
        buf = buf.subarray(off);
      });
      send = (b) => s.write(b);
      closers.push(() => {
        s.destroy();
        peer.destroy();
      });
      closers.push(() => l.close());
    } else {
      const drx = await rx.openDatagram(o.port, { link });
      const dtx = await tx.openDatagram(o.port + 1, { link });
      drx.on("message", (...args: unknown[]) => {
        const data = args.find((a) => a instanceof Uint8Array) as Uint8Array | undefined;
        if (data !== undefined && data.length >= 12) record(data, 0);
      });
      send = (b) => dtx.send(NODES, o.port, b);
      closers.push(() => drx.close());
      closers.push(() => dtx.close());
    }
    if (o.trace) await traceAll(line, "start");
    let sent = 0;
    let blocked = 0;
    const start = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * o.rate) / 1000) + 1);
      while (sent < due) {
        const b = Buffer.alloc(SIZE);
        b.writeUInt32BE(sent, 0);
        b.writeUInt32BE(sent, SIZE - 4); // again at the end: the daemons' packet traces key on it
        b.writeBigUInt64BE(BigInt(Math.round(performance.now() * 1e6)), 4); // send time, ns (performance.now)
        if (!send(b)) blocked++;
        sent++;
      }
      await sleep(1);
    }
    const end = performance.now() + o.drainMs;
    while (latMs.length < total && performance.now() < end) await sleep(20);
    const dumps = o.trace ? await traceAll(line, "stop") : undefined;
    let e2eRetransmissions: number | null = null;
    let senderSession: Record<string, unknown> | undefined;
    if (sessionPort >= 0) {
      const c = await (line.daemons[0] as Spawned).ctl();
      try {
        const ss =
          await c.call<{ remoteNode: number; remotePort: number; retransmitted?: number }[]>("sessions");
        const mine = ss.filter((x) => x.remoteNode === NODES && x.remotePort === sessionPort);
        if (mine.length > 0) e2eRetransmissions = mine.reduce((a, x) => a + (x.retransmitted ?? 0), 0);
        if (mine.length === 1) senderSession = mine[0] as unknown as Record<string, unknown>;
      } finally {
        c.close();
      }
    }
    // The emulation's own delay error (release time − due time, mean per link): reported beside
    // every row, as netlab reports its emulator's overhead.
    const errs: number[] = [];
    for (const d of line.daemons) {
      const c = await d.ctl();
      try {
        const ls = await c.call<{ emulationStats?: { releaseErrorMs?: number; passed?: number } }[]>("links");
        for (const l of ls) {
          const e = l.emulationStats?.releaseErrorMs;
          if (typeof e === "number" && (l.emulationStats?.passed ?? 0) > 0) errs.push(e);
        }
      } finally {
        c.close();
      }
    }
    const emulationErrorMs = errs.length === 0 ? null : errs.reduce((a, b) => a + b, 0) / errs.length;
    if (process.argv.includes("--diag")) {
      const links: Record<string, unknown> = {};
      for (const [i, d] of line.daemons.entries()) {
        const c = await d.ctl();
        try {
          const st = await c.call<{ counters: { links: Record<string, Record<string, number>> } }>("status");
          const rel: Record<string, unknown> = {};
          for (const [n, k] of Object.entries(st.counters.links)) {
            rel[n] = Object.fromEntries(Object.entries(k).filter(([key]) => key.startsWith("reliable")));
          }
          links[String(i + 1)] = { links: await c.call("links"), reliable: rel };
        } finally {
          c.close();
        }
      }
      console.error(`diag ${o.mode}/${o.link}: ${JSON.stringify(links)}`);
    }
    return {
      sent,
      latMs,
      atMs,
      sentAtMs,
      seqs,
      t0,
      ...(dumps ? { dumps } : {}),
      duplicates,
      blocked,
      e2eRetransmissions,
      ...(senderSession !== undefined ? { senderSession } : {}),
      emulationErrorMs,
    };
  } finally {
    for (const c of closers) {
      try {
        await c();
      } catch {
        // closing after the run: ignore
      }
    }
    rx.close();
    tx.close();
  }
}

/**
 * Splits each message's latency beyond the free-flow base into causes, from the receiver's view.
 * A delivery burst (messages handed over within 0.5 ms of each other) is led by the message with
 * the earliest send time that was late; the leader's excess is its own recovery, and every later
 * message of the burst waited behind it (head-of-line), except for the part of its excess that it
 * would have had anyway (none assumed). An own recovery above `e2eThresholdMs` (more than a link
 * retransmission chain can take) counts as an end-to-end retransmission.
 */
function attribute(r: ProbeResult, e2eThresholdMs: number): Trace {
  const n = r.latMs.length;
  const sorted = [...r.latMs].sort((a, b) => a - b);
  const base = sorted[Math.floor(0.01 * n)] ?? 0;
  let own = 0;
  let ownE2e = 0;
  let hol = 0;
  let e2eMsgs = 0;
  let burstAt = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const lat = r.latMs[i] as number;
    const ex = Math.max(0, lat - base - 1);
    const at = r.atMs[i] as number;
    const inBurst = at - burstAt < 0.5 && i > 0;
    if (!inBurst) burstAt = at;
    if (ex === 0) continue;
    if (!inBurst) {
      if (ex > e2eThresholdMs) {
        ownE2e += ex;
        e2eMsgs++;
      } else own += ex;
    } else hol += ex;
  }
  const k = n === 0 ? 1 : n;
  return {
    baseMs: base,
    ownLinkRecoveryMs: own / k,
    ownE2eRecoveryMs: ownE2e / k,
    headOfLineMs: hol / k,
    e2eRecoveredMsgs: e2eMsgs,
  };
}

/**
 * Lines up the daemons' stamps of each message (keyed by the sequence number at its end, data-sized
 * packets only) with the probe's send and receive times: every process reads CLOCK_MONOTONIC.
 */
function daemonTrace(r: ProbeResult): DaemonTrace | undefined {
  const dumps = r.dumps;
  if (dumps === undefined || dumps.length !== NODES) return undefined;
  const off = monotonicOffsetMs();
  // first stamp per node, stage and key
  const first: Map<number, number>[][] = dumps.map((d) => {
    const by: Map<number, number>[] = Array.from({ length: 6 }, () => new Map());
    for (let i = 0; i < d.t.length; i++) {
      if ((d.len[i] as number) < SIZE) continue;
      const m = by[d.stage[i] as number] as Map<number, number>;
      const k = d.key[i] as number;
      if (!m.has(k)) m.set(k, d.t[i] as number);
    }
    return by;
  });
  const at = (node: number, stage: number, k: number) => first[node - 1]?.[stage]?.get(k);
  const acc = {
    clientIn: 0,
    source: 0,
    hopExcess: new Array<number>(HOPS).fill(0),
    transit: new Array<number>(HOPS - 1).fill(0),
    linkDeliver: 0,
    session: 0,
    clientOut: 0,
    measured: 0,
  };
  let n = 0;
  outer: for (let i = 0; i < r.seqs.length; i++) {
    const k = r.seqs[i] as number;
    const sent = (r.sentAtMs[i] as number) + r.t0 + off;
    const got = (r.atMs[i] as number) + r.t0 + off;
    const fromClient = at(1, TraceStage.FromClient, k);
    const tx: number[] = [];
    const emu: number[] = [];
    for (let node = 1; node <= NODES; node++) {
      const t = at(node, TraceStage.Tx, k);
      const e = at(node, TraceStage.Emu, k);
      if (node < NODES) {
        if (t === undefined) continue outer;
        tx.push(t);
      }
      if (node > 1) {
        if (e === undefined) continue outer;
        emu.push(e);
      }
    }
    const local = at(NODES, TraceStage.Local, k);
    const client = at(NODES, TraceStage.Client, k);
    if (fromClient === undefined || local === undefined || client === undefined) continue;
    n++;
    acc.clientIn += fromClient - sent;
    acc.source += (tx[0] as number) - fromClient;
    for (let h = 0; h < HOPS; h++)
      acc.hopExcess[h] = (acc.hopExcess[h] ?? 0) + (emu[h] as number) - (tx[h] as number) - DELAY;
    for (let h = 0; h < HOPS - 1; h++)
      acc.transit[h] = (acc.transit[h] ?? 0) + (tx[h + 1] as number) - (emu[h] as number);
    acc.linkDeliver += local - (emu[HOPS - 1] as number);
    acc.session += client - local;
    acc.clientOut += got - client;
    acc.measured += r.latMs[i] as number;
  }
  if (n === 0) return undefined;
  const m = (x: number) => r2(x / n);
  const out: DaemonTrace = {
    traced: n,
    clientIn: m(acc.clientIn),
    source: m(acc.source),
    hopExcess: acc.hopExcess.map(m),
    transit: acc.transit.map(m),
    linkDeliver: m(acc.linkDeliver),
    session: m(acc.session),
    clientOut: m(acc.clientOut),
    accountedMs: 0,
    measuredMs: m(acc.measured),
  };
  out.accountedMs = r2(
    out.clientIn +
      out.source +
      out.hopExcess.reduce((a, b) => a + b, 0) +
      HOPS * DELAY +
      out.transit.reduce((a, b) => a + b, 0) +
      out.linkDeliver +
      out.session +
      out.clientOut,
  );
  return out;
}

/**
 * The datagrams' latencies as an ordered stream would deliver them: message k is handed over when it
 * and every earlier message have arrived. Messages that never arrived are skipped.
 */
function orderedFromArrivals(r: ProbeResult): { meanMs: number; p50Ms: number; p99Ms: number } {
  const n = r.seqs.length;
  const idx = Array.from({ length: n }, (_, i) => i).sort(
    (a, b) => (r.seqs[a] as number) - (r.seqs[b] as number),
  );
  const out: number[] = [];
  let horizon = Number.NEGATIVE_INFINITY;
  for (const i of idx) {
    horizon = Math.max(horizon, r.atMs[i] as number);
    out.push(horizon - (r.sentAtMs[i] as number));
  }
  const s = summarize(out);
  return { meanMs: r2(s.meanMs), p50Ms: r2(s.p50Ms), p99Ms: r2(s.p99Ms) };
}

function fromProbe(
  system: System,
  linkMode: LinkMode,
  rate: number,
  lossPct: number,
  durationSec: number,
  r: ProbeResult,
  trace: boolean,
): Case {
  const s = summarize(r.latMs);
  const c: Case = {
    system,
    linkMode,
    rate,
    lossPct,
    durationSec,
    sent: r.sent,
    delivered: s.delivered,
    duplicates: r.duplicates,
    meanMs: s.meanMs,
    p50Ms: s.p50Ms,
    p99Ms: s.p99Ms,
    p999Ms: s.p999Ms,
    maxMs: s.maxMs,
    jitterMs: s.sdMs,
    e2eRetransmissions: r.e2eRetransmissions,
    emulationErrorMs: r.emulationErrorMs,
    loadAvg1: loadavg()[0] ?? Number.NaN,
  };
  // An own recovery longer than three link retransmissions on one hop is taken as end to end.
  if (trace && system !== "datagram") c.trace = attribute(r, 3 * (2 * DELAY + 1) + 5);
  const dt = trace ? daemonTrace(r) : undefined;
  if (dt !== undefined) c.daemonTrace = dt;
  if (r.blocked > 0) c.note = `client send refused ${r.blocked} times`;
  if (r.senderSession !== undefined) c.senderSession = r.senderSession;
  if (system === "datagram") c.orderedFromArrivals = orderedFromArrivals(r);
  return c;
}

function modelCase(
  system: "model-ordered" | "model-unordered",
  linkMode: LinkMode,
  rate: number,
  lossPct: number,
  n: number,
): Case {
  const row = simulate("hop-by-hop", { hops: HOPS, delayMs: DELAY, loss: lossPct / 100, rate, gapMs: 1, n });
  const m = system === "model-ordered" ? row.ordered : row.unordered;
  return {
    system,
    linkMode,
    rate,
    lossPct,
    durationSec: n / rate,
    sent: n,
    delivered: n,
    duplicates: 0,
    meanMs: m.meanMs,
    p50Ms: m.p50Ms,
    p99Ms: m.p99Ms,
    p999Ms: m.p999Ms,
    maxMs: Number.NaN,
    jitterMs: m.sdMs,
    e2eRetransmissions: 0,
    loadAvg1: loadavg()[0] ?? Number.NaN,
  };
}

const r2 = (x: number) => (Number.isFinite(x) ? Math.round(x * 100) / 100 : Number.NaN);

const TICKS = 100; // Linux USER_HZ
/** utime + stime of a process in seconds (0 when it is gone). */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / TICKS;
  } catch {
    return 0;
  }
}

await runBench("overlay-latency", async (ctx) => {
  // the bench, its daemons and baselines at nice -10 with their autogroup (--nice N; 0: unchanged):
  // on a shared machine both the overlay and its baseline then compete less with unrelated work
  const nice = benchPriority(ctx.args);
  console.log(`niceness of the bench, its daemons and baselines: ${nice} (--nice N)`);
  const quick = ctx.quick;
  const trace = ctx.args.includes("--trace");
  const at = ctx.args.indexOf("--daemon-config");
  const daemonConfig = at >= 0 ? ctx.args[at + 1] : undefined;
  const arg = (k: string) => {
    const i = ctx.args.indexOf(k);
    return i >= 0 ? ctx.args[i + 1] : undefined;
  };
  const session = arg("--session") === undefined ? undefined : JSON.parse(arg("--session") as string);
  const only = arg("--only");
  let phases: { linkMode: LinkMode; rate: number; durationSec: number }[] = quick
    ? [{ linkMode: "rate-capped", rate: 200, durationSec: 3 }]
    : [
        { linkMode: "rate-capped", rate: 1000, durationSec: 10 },
        { linkMode: "tcp-fair", rate: 100, durationSec: 10 },
      ];
  if (only !== undefined) phases = phases.filter((p) => p.linkMode === only);
  if (arg("--rate") !== undefined) phases = phases.map((p) => ({ ...p, rate: Number(arg("--rate")) }));
  if (arg("--seconds") !== undefined)
    phases = phases.map((p) => ({ ...p, durationSec: Number(arg("--seconds")) }));
  const losses = arg("--loss")?.split(",").map(Number) ?? (quick ? [0, 5] : [0, 1, 5]);
  const wanted = arg("--systems")?.split(",");
  const systems = (
    [
      { system: "stream", mode: "stream", link: "reliable" },
      { system: "datagram", mode: "datagram", link: "reliable" },
      { system: "e2e-stream", mode: "stream", link: "best-effort" },
    ] as const
  ).filter((x) => wanted === undefined || wanted.includes(x.system));
  const idle: { linkMode: LinkMode; cpuPctPerDaemon: number[]; loadAvg1: number }[] = [];
  const cases: Case[] = [];
  const total = phases.length * losses.length * systems.length;
  let done = 0;
  let port = 6400;
  for (const ph of phases) {
    const line = await startLine(ph.linkMode, daemonConfig, session);
    try {
      // warm-up (JIT, link windows, start-up transients): not recorded
      await probe(line, {
        mode: "stream",
        link: "reliable",
        rate: ph.rate,
        durationMs: quick ? 1000 : 2000,
        // until the warm-up's messages are through: a backlog left on the links would be charged to
        // the first measured case
        drainMs: 5000,
        port: port++,
      }).catch((e: unknown) => console.error(`overlay-latency: warm-up failed: ${String(e)}`));
      for (const lossPct of losses) {
        await line.setLoss(lossPct);
        const n = quick ? 20_000 : 200_000;
        cases.push(modelCase("model-ordered", ph.linkMode, ph.rate, lossPct, n));
        cases.push(modelCase("model-unordered", ph.linkMode, ph.rate, lossPct, n));
        for (const s of systems) {
          ctx.progress(done++ / total, `${s.system} ${ph.linkMode} ${lossPct}%`);
          port += 2;
          try {
            const waited = await waitRoute(line.sock(1), 30_000);
            if (waited > 500) console.error(`overlay-latency: waited ${Math.round(waited)} ms for the route`);
            const pids = line.daemons.map((d) => d.proc.pid);
            const cpu0 = pids.map(cpuSeconds);
            const r = await probe(line, {
              mode: s.mode,
              link: s.link,
              rate: ph.rate,
              durationMs: ph.durationSec * 1000,
              drainMs: quick ? 1500 : 5000,
              port,
              trace,
            });
            const c = fromProbe(s.system, ph.linkMode, ph.rate, lossPct, ph.durationSec, r, trace);
            // CPU of every daemon over the case (set-up, drain and control calls included), µs per message sent
            c.cpuUsPerMsg = pids.map((p, i) =>
              Math.round(((cpuSeconds(p) - (cpu0[i] as number)) * 1e6) / Math.max(1, r.sent)),
            );
            cases.push(c);
            if (r.latMs.length < r.sent) await sleep(500);
          } catch (e) {
            cases.push({
              ...modelCase("model-ordered", ph.linkMode, ph.rate, lossPct, 1),
              system: s.system,
              sent: 0,
              delivered: 0,
              meanMs: Number.NaN,
              p50Ms: Number.NaN,
              p99Ms: Number.NaN,
              p999Ms: Number.NaN,
              jitterMs: Number.NaN,
              e2eRetransmissions: null,
              note: `failed: ${String(e).slice(0, 200)}`,
            });
          }
        }
      }
      // Idle CPU: no traffic (hellos only), 5 s, every daemon.
      await line.setLoss(0);
      await sleep(1000);
      const pids = line.daemons.map((d) => d.proc.pid);
      const c0 = pids.map(cpuSeconds);
      const t0 = performance.now();
      await sleep(5000);
      const secs = (performance.now() - t0) / 1000;
      idle.push({
        linkMode: ph.linkMode,
        cpuPctPerDaemon: pids.map((p, i) => r2((100 * (cpuSeconds(p) - (c0[i] as number))) / secs)),
        loadAvg1: r2(loadavg()[0] ?? Number.NaN),
      });
    } finally {
      await line.stop();
    }
  }
  const model = (c: Case) =>
    cases.find(
      (m) =>
        m.linkMode === c.linkMode &&
        m.lossPct === c.lossPct &&
        m.system === (c.system === "datagram" ? "model-unordered" : "model-ordered"),
    );
  const tables: Table[] = phases.map((ph) => ({
    title: `One-way latency, 5 daemons in a line on loopback (4 hops, 10 ms each), ${ph.linkMode} links, ${ph.rate} msgs/s of ${SIZE} B for ${ph.durationSec} s`,
    columns: [
      "system",
      "loss %",
      "sent",
      "delivered",
      "dup",
      "mean ms",
      "p50",
      "p99",
      "p99.9",
      "max",
      "jitter (sd)",
      "e2e rtx",
      "model mean",
      "model p99",
      "mean/model",
      "p99/model",
      "emu err",
      "load1",
    ],
    rows: cases
      .filter((c) => c.linkMode === ph.linkMode && !c.system.startsWith("model"))
      .map((c) => {
        const m = model(c);
        return [
          c.system,
          c.lossPct,
          c.sent,
          c.delivered,
          c.duplicates,
          r2(c.meanMs),
          r2(c.p50Ms),
          r2(c.p99Ms),
          r2(c.p999Ms),
          r2(c.maxMs),
          r2(c.jitterMs),
          c.e2eRetransmissions === null ? "-" : c.e2eRetransmissions,
          m ? m.meanMs : Number.NaN,
          m ? m.p99Ms : Number.NaN,
          m ? r2(c.meanMs / m.meanMs) : Number.NaN,
          m ? r2(c.p99Ms / m.p99Ms) : Number.NaN,
          c.emulationErrorMs === null || c.emulationErrorMs === undefined ? "-" : r2(c.emulationErrorMs),
          r2(c.loadAvg1),
        ];
      }),
    notes: [
      "model: hop-by-hop scheme of tools/netlab/src/latency-model.ts (1 ms detection gap), ordered for streams, unordered for datagrams; same path, loss and rate.",
      "e2e rtx: stream segments the sending daemon sent again end to end (control socket `sessions`); '-' = not measured (datagrams).",
      "emu err: the daemons' built-in emulation's own error, mean (release time - due time) per emulated hop, ms (emulationStats.releaseErrorMs).",
      "load1: 1-minute load average of the (shared) machine when the case ended; ratios to the same-run model are the figures that count.",
    ],
  }));
  tables.push({
    title: "Idle daemons: CPU over 5 s with no traffic (hellos only), % of one core per daemon",
    columns: ["link mode", "node 1", "node 2", "node 3", "node 4", "node 5", "load1"],
    rows: idle.map((x) => [x.linkMode, ...x.cpuPctPerDaemon, x.loadAvg1]),
  });
  const diagRows = cases.filter(
    (c) =>
      c.senderSession !== undefined || c.orderedFromArrivals !== undefined || c.cpuUsPerMsg !== undefined,
  );
  if (diagRows.length > 0) {
    tables.push({
      title: "Stream sender and datagram arrivals in send order (diagnostics)",
      columns: [
        "system",
        "link mode",
        "loss %",
        "mean ms",
        "p99",
        "ordered mean",
        "ordered p99",
        "CPU µs/msg nodes 1..5",
        "sender session",
      ],
      rows: diagRows.map((c) => [
        c.system,
        c.linkMode,
        c.lossPct,
        r2(c.meanMs),
        r2(c.p99Ms),
        c.orderedFromArrivals?.meanMs ?? "-",
        c.orderedFromArrivals?.p99Ms ?? "-",
        c.cpuUsPerMsg?.join(" / ") ?? "-",
        c.senderSession === undefined
          ? "-"
          : JSON.stringify(
              Object.fromEntries(
                Object.entries(c.senderSession).filter(([k]) =>
                  ["srttMs", "peerWindow", "retransmitted", "transportBlocked", "windowBlocked"].includes(k),
                ),
              ),
            ),
      ]),
      notes: [
        "ordered: the datagram row's arrivals put in send order (each waits for every earlier message): what a stream over the same links would give if it added nothing to them.",
      ],
    });
  }
  if (trace) {
    tables.push({
      title: "Trace: mean latency beyond free flow, by cause (ms per message; stream rows)",
      columns: [
        "system",
        "link mode",
        "loss %",
        "base ms",
        "own short delay",
        "own long delay",
        "head-of-line",
        "long-delay msgs",
        "e2e rtx (counter)",
      ],
      rows: cases
        .filter((c) => c.trace !== undefined)
        .map((c) => {
          const t = c.trace as Trace;
          return [
            c.system,
            c.linkMode,
            c.lossPct,
            r2(t.baseMs),
            r2(t.ownLinkRecoveryMs),
            r2(t.ownE2eRecoveryMs),
            r2(t.headOfLineMs),
            t.e2eRecoveredMsgs,
            c.e2eRetransmissions ?? "-",
          ];
        }),
      notes: [
        "Estimated at the receiver from delivery bursts: a burst's first late message carries its own delay; later messages of the burst waited behind it (head-of-line).",
        "own short delay (< 68 ms, at most three retransmissions on one hop): link recovery; own long delay: an end-to-end retransmission if the counter shows them, else a stall (link queues, a starved process).",
      ],
    });
  }
  if (trace) {
    tables.push({
      title: "Daemon trace: mean ms per message between the daemons' own stamps (control `trace`)",
      columns: [
        "system",
        "loss %",
        "traced",
        "client in",
        "source",
        "hop excess 1..4",
        "transit 2..4",
        "link deliver",
        "session",
        "client out",
        "accounted",
        "measured",
      ],
      rows: cases
        .filter((c) => c.daemonTrace !== undefined)
        .map((c) => {
          const t = c.daemonTrace as DaemonTrace;
          return [
            c.system,
            c.lossPct,
            t.traced,
            t.clientIn,
            t.source,
            t.hopExcess.join(" / "),
            t.transit.join(" / "),
            t.linkDeliver,
            t.session,
            t.clientOut,
            t.accountedMs,
            t.measuredMs,
          ];
        }),
      notes: [
        "hop excess: first transmission by the sender to the receiver's emulation releasing it, minus the emulated 10 ms (kernel, timer lateness, link retransmissions).",
        "transit: a middle daemon from the emulation releasing a packet to its first transmission onwards; session: the last daemon's session endpoint to the client hand-over.",
      ],
    });
  }
  return {
    tables,
    data: { hops: HOPS, delayMs: DELAY, messageBytes: SIZE, session: session ?? null, cases, idle },
  };
});
