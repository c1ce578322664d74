/**
 * The path of the real-daemon benchmark `pnpm bench overlay-latency`
 * (apps/spines-node/bench/overlay-latency.bench.ts) in netsim, with the daemon's settings
 * (`DAEMON_DEFAULTS`, and in rate-capped mode the bench's `link.congestion` rate of 20 Mbit/s):
 * 5 overlay nodes in a line, 10 ms one way per link, independent loss per direction; 1,000-byte
 * messages from node 1 to node 5, at 1,000 messages/s on rate-capped links and at 100 messages/s
 * on the default TCP-fair links; a stream session over reliable links and reliable datagrams over
 * reliable links (session datagrams with `reliable: false` on link type 1, as the daemon's client
 * datagram socket sends them). One-way latency per message in virtual time, against the
 * hop-by-hop model of tools/netlab/src/latency-model.ts as the bench computes it (1 ms detection
 * gap; ordered for the stream, unordered for datagrams).
 *
 * Checked: every message delivered exactly once (the stream also in order), no datagram refused,
 * 0 end-to-end retransmissions of the stream, and the ratios to the model within the bounds in
 * `BOUNDS` (measured; see docs/benchmarks.md, "Simulator against the real daemons").
 *
 * `lag`: the same path with the event-loop lag a loaded machine gives real daemons (each node
 * frozen now and then, `Simulator.randomFaults` kind "stall", plus the emulation's timer lateness
 * per hop), calibrated on the real 0 % rows; the lossy rows then predict the real ones.
 * `LATENCY_PATH_SEEDS` sets the seeds per case (default 3).
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { simulate } from "../../../tools/netlab/src/latency-model.ts";
import { DAEMON_DEFAULTS, OverlayNode } from "../src/index.ts";
import { addEventLoopLag, type EventLoopLag, RecordReader } from "./harness.ts";

const IDS = [1, 2, 3, 4, 5];
const HOPS = IDS.length - 1;
const DELAY = 10;
const SIZE = 1000;
const PORT = 100;
const DPORT_SRC = 201;
const DPORT_DST = 200;
/** The bench's rate cap: 20 Mbit/s per link. */
const RATE_CAP_BYTES_PER_MS = 2500;

type LinkMode = "rate-capped" | "tcp-fair";
type System = "stream" | "datagram";

interface PathCase {
  linkMode: LinkMode;
  rate: number;
  lossPct: number;
  system: System;
}

interface PathResult {
  sent: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
  refused: number;
  latencies: number[];
  e2eRetransmissions: number;
  segmentsSent: number;
  /**
   * Least share, over the links that resent 20 packets or more, of the lost packets the loss probe
   * resent: (probes − spurious probes) / (retransmissions − spurious probes).
   */
  probeShare: number;
}

function runPath(c: PathCase, seed: number, seconds: number, lag?: EventLoopLag): PathResult {
  const sim = new Simulator({ seed, traceCapacity: 0 });
  const total = Math.round(c.rate * seconds);
  const interval = 1000 / c.rate;
  const sentAt = new Float64Array(total);
  const seen = new Uint8Array(total);
  const latencies: number[] = [];
  let duplicates = 0;
  let outOfOrder = 0;
  let delivered = 0;
  let refused = 0;
  const record = (seq: number, now: number, inOrder: boolean) => {
    if (seq >= total || seen[seq] === 1) {
      duplicates++;
      return;
    }
    if (!inOrder) outOfOrder++;
    seen[seq] = 1;
    delivered++;
    latencies.push(now - (sentAt[seq] as number));
  };
  let rxSid: number | undefined;
  const rx = new RecordReader(SIZE);
  let rxNext = 0;
  const link =
    c.linkMode === "rate-capped"
      ? {
          ...DAEMON_DEFAULTS.link,
          congestion: { kind: "rate" as const, rateBytesPerMs: RATE_CAP_BYTES_PER_MS },
        }
      : DAEMON_DEFAULTS.link;
  for (const id of IDS) {
    const neighbors = IDS.filter((j) => Math.abs(j - id) === 1);
    sim.addNode(
      id,
      OverlayNode.factory(
        {
          neighbors,
          ...DAEMON_DEFAULTS,
          link,
          onEvent: (e, n) => {
            if (id === 1 && (e.type === "writable" || e.type === "connected")) pushStream(n);
            if (id !== 5) return;
            if (e.type === "incoming" && e.port === PORT) rxSid = n.accept(PORT);
            else if (e.type === "readable" && e.sid === rxSid) {
              for (let b = n.read(e.sid); b.length > 0; b = n.read(e.sid))
                rx.push(b, (seq) => {
                  record(seq, n.now, seq === rxNext);
                  rxNext = seq + 1;
                });
            } else if (e.type === "datagram" && e.port === DPORT_DST) {
              record(new DataView(e.data.buffer, e.data.byteOffset).getUint32(0), n.now, true);
            }
          },
        },
        (n) => {
          if (id === 5) {
            n.listen(PORT);
            n.bind(DPORT_DST);
          }
          if (id === 1) n.bind(DPORT_SRC);
        },
      ),
    );
  }
  for (let i = 0; i + 1 < IDS.length; i++)
    sim.connect(IDS[i] as number, IDS[i + 1] as number, {
      // The emulation releases a packet up to 2 × timerLateMs late (uniform; FIFO is kept).
      delayMs: DELAY + (lag?.timerLateMs ?? 0),
      jitterMs: lag?.timerLateMs ?? 0,
      loss: c.lossPct / 100,
    });
  const n1 = () => sim.program<OverlayNode>(1) as OverlayNode;
  if (!sim.runUntil(() => n1().hasRoute(5) && n1().route(5)?.path.length === 5, 30_000))
    throw new Error(`seed ${seed}: no route 1 -> 5`);
  // Stream: connect first (as the bench does), then the clock starts.
  let txSid: number | undefined;
  let txConnected = false;
  let pending: Uint8Array[] = [];
  let pendingOff = 0;
  function pushStream(n: OverlayNode): void {
    if (txSid === undefined || !txConnected) return;
    while (pending.length > 0) {
      const head = pending[0] as Uint8Array;
      const k = n.write(txSid, head.subarray(pendingOff));
      pendingOff += k;
      if (pendingOff < head.length) return;
      pending.shift();
      pendingOff = 0;
    }
  }
  if (c.system === "stream") {
    txSid = n1().connect(5, PORT, { linkType: 1 });
    const prev = n1().onEvent;
    n1().onEvent = (e, n) => {
      if (e.type === "connected" && e.sid === txSid) txConnected = true;
      prev?.(e, n);
    };
    if (!sim.runUntil(() => txConnected && rxSid !== undefined, 30_000))
      throw new Error(`seed ${seed}: stream did not connect`);
  }
  const t0 = sim.now + 1;
  if (lag !== undefined) addEventLoopLag(sim, IDS, lag, t0 + seconds * 1000 + 5000);
  // Messages the probe wrote that node 1 has not taken yet (it takes none while frozen).
  const clientQueue: number[] = [];
  let retryArmed = false;
  const flush = (): void => {
    if (sim.isStalled(1)) {
      if (!retryArmed) {
        retryArmed = true;
        sim.after(0.25, () => {
          retryArmed = false;
          flush();
        });
      }
      return;
    }
    const n = n1();
    for (const seq of clientQueue) {
      const msg = new Uint8Array(SIZE);
      new DataView(msg.buffer).setUint32(0, seq);
      if (c.system === "stream") {
        pending.push(msg);
      } else if (n.localRoom(5, DPORT_SRC, DPORT_DST) < 1) {
        refused++;
      } else {
        n.sendDatagram({
          srcPort: DPORT_SRC,
          dst: 5,
          dstPort: DPORT_DST,
          data: msg,
          linkType: 1,
          reliable: false,
        });
      }
    }
    clientQueue.length = 0;
    if (c.system === "stream") pushStream(n);
  };
  for (let i = 0; i < total; i++) {
    const t = t0 + i * interval;
    sentAt[i] = t;
    sim.at(t, () => {
      clientQueue.push(i);
      flush();
    });
  }
  sim.runUntil(() => delivered + refused >= total, seconds * 1000 + 30_000);
  sim.runFor(200); // late duplicates would show here
  const info = txSid === undefined ? undefined : n1().info(txSid);
  pending = [];
  let probeShare = 1;
  for (const id of IDS) {
    const driver = (sim.program<OverlayNode>(id) as OverlayNode).plane.driver;
    for (const nb of driver.neighbours) {
      const st = driver.link(nb)?.reliable.stats;
      if (st === undefined || st.retransmitted < 20) continue;
      probeShare = Math.min(
        probeShare,
        (st.probes - st.probesSpurious) / Math.max(1, st.retransmitted - st.probesSpurious),
      );
    }
  }
  return {
    sent: total,
    delivered,
    duplicates,
    outOfOrder,
    refused,
    latencies,
    e2eRetransmissions: info?.segmentsRetransmitted ?? 0,
    segmentsSent: info?.segmentsSent ?? 0,
    probeShare,
  };
}

function stats(xs: number[]): { mean: number; p99: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return { mean, p99: s[Math.min(s.length - 1, Math.floor(0.99 * s.length))] as number };
}

const CASES: PathCase[] = [
  ...[0, 1, 5].flatMap((lossPct) =>
    (["stream", "datagram"] as const).map((system) => ({
      linkMode: "rate-capped" as const,
      rate: 1000,
      lossPct,
      system,
    })),
  ),
  ...[1, 5].flatMap((lossPct) =>
    (["stream", "datagram"] as const).map((system) => ({
      linkMode: "tcp-fair" as const,
      rate: 100,
      lossPct,
      system,
    })),
  ),
];

const SEEDS = Number(process.env.LATENCY_PATH_SEEDS ?? 3);
/** Virtual seconds per seed: 3,000 messages at 1,000/s, 1,500 at 100/s. */
const seconds = (c: PathCase) => (c.rate === 1000 ? 3 : 15);

/**
 * Event-loop lag of the real daemons at load 4-6 on 2 cores, calibrated on the real 0 % rows
 * (42.3-43.0 ms mean, 57.6-58.1 ms p99 against 40/40): every node frozen for an exponential
 * time of mean 10 ms about once a second (waiting for a core), and the emulation's timers up to
 * 1 ms late per hop (mean 0.5 ms).
 */
const REAL_LAG: EventLoopLag = { meanIntervalMs: 1000, meanStallMs: 10, timerLateMs: 0.5 };

interface Bounds {
  mean: [number, number];
  p99: [number, number];
}
/**
 * Ratio to the model (mean, p99), [min, max]. Plain netsim, rate-capped: the links recover at the
 * model's one round trip plus under 1 ms, so 1.00 (0.98-1.02; the stream's p99 0.84-1.02 over
 * seeds: one loss holds ~20 later messages, so 3,000 messages hold few independent events). TCP-fair at
 * 100 messages/s: 1.00-1.04 / 1.03-1.13 (docs/links.md §4, §6: the loss probe resends a packet
 * whose ack is overdue instead of waiting 10 ms for the next packet's ack, which cost 1.03 / 1.15
 * at 1 % and 1.11-1.14 / 1.37-1.59 at 5 %; before that the NewReno window, halved to 2 MSS by
 * losses in consecutive round trips, blocked the link's queue: 1.26-1.31 / 1.71-1.87 at 5 %).
 * With lag: the real rows' ratios (1.06-1.07 mean, 1.45 p99 at 0 %; 1.44-1.72 in netsim over
 * seeds, stalls being rare events), and at 1 and 5 % 1.06-1.12 / 1.08-1.18 as measured
 * (TCP-fair: 1.07 / 1.11-1.16 at 1 %, 1.09-1.12 / 1.16-1.32 at 5 %, where single 10 s runs
 * spread ±10 % in the mean); a lag that did not act would fail the lower bounds of the 0 % and
 * TCP-fair rows. Netsim with lag, TCP-fair, since a hole-filling retransmission is echoed and lone
 * frames are acked at once (docs/links.md §4): 1.06-1.07 / 1.10-1.12 at 1 %, 1.07-1.09 / 1.13-1.16
 * at 5 % (1.09-1.11 / 1.17-1.18 before); real daemons 1.03-1.08 / 1.06-1.22 at 5 % (were 1.10-1.16
 * / 1.24-1.55).
 */
function bounds(c: PathCase, lagged: boolean): Bounds {
  if (lagged && c.linkMode === "tcp-fair")
    return c.lossPct === 1
      ? { mean: [1.03, 1.15], p99: [1.05, 1.45] }
      : { mean: [1.05, 1.25], p99: [1.1, 1.6] };
  if (lagged)
    return c.lossPct === 0
      ? { mean: [1.02, 1.15], p99: [1.15, 1.9] }
      : { mean: [1.03, 1.2], p99: [1.02, 1.35] };
  if (c.linkMode === "rate-capped")
    return c.system === "stream"
      ? { mean: [0.97, 1.03], p99: [0.8, 1.15] }
      : { mean: [0.98, 1.02], p99: [0.97, 1.03] };
  if (c.lossPct === 1) return { mean: [0.99, 1.05], p99: [0.98, 1.1] };
  return { mean: [0.99, 1.08], p99: [0.98, 1.2] };
}

interface Row {
  c: PathCase;
  lagged: boolean;
  mean: number;
  p99: number;
  modelMean: number;
  modelP99: number;
  rtx: number;
  segments: number;
}

function measure(c: PathCase, lag: EventLoopLag | undefined): Row {
  const lat: number[] = [];
  let rtx = 0;
  let segments = 0;
  forEachSeed(SEEDS, (seed) => {
    const r = runPath(c, seed, seconds(c), lag);
    const what = `${name(c)} seed ${seed}`;
    expect(r.refused, `${what}: datagrams refused`).toBe(0);
    expect(r.duplicates, `${what}: duplicates`).toBe(0);
    expect(r.delivered, `${what}: delivered`).toBe(r.sent);
    if (c.system === "stream") {
      expect(r.outOfOrder, `${what}: stream out of order`).toBe(0);
      expect(r.e2eRetransmissions, `${what}: end-to-end retransmissions of ${r.segmentsSent}`).toBe(0);
    }
    // An application-limited link (100 messages/s) finds its losses with the loss probe, a round
    // trip after the send, on every link and for the whole run. Measured 0.74-0.97 per link over
    // seeds, with lag too; before the receiver echoed a hole-filling retransmission, a batch
    // (event-loop lag) made links take it for reordering and stop probing: 0.11-0.49 on some links.
    if (c.linkMode === "tcp-fair")
      expect(r.probeShare, `${what}: least share of losses found by the probe`).toBeGreaterThanOrEqual(0.6);
    lat.push(...r.latencies);
    rtx += r.e2eRetransmissions;
    segments += r.segmentsSent;
  });
  const s = stats(lat);
  const m = simulate("hop-by-hop", {
    hops: HOPS,
    delayMs: DELAY,
    loss: c.lossPct / 100,
    rate: c.rate,
    gapMs: 1,
  });
  const mm = c.system === "stream" ? m.ordered : m.unordered;
  return { c, lagged: lag !== undefined, ...s, modelMean: mm.meanMs, modelP99: mm.p99Ms, rtx, segments };
}

const name = (c: PathCase) => `${c.linkMode} ${c.rate}/s ${c.system} ${c.lossPct} %`;

function check(rows: Row[]): void {
  console.log(
    [
      "| case | netsim mean / p99 ms | model mean / p99 | mean / model | p99 / model | e2e rtx |",
      "|---|---|---|---|---|---|",
      ...rows.map(
        (r) =>
          `| ${name(r.c)}${r.lagged ? ", lag" : ""} | ${r.mean.toFixed(1)} / ${r.p99.toFixed(1)} | ${r.modelMean} / ${r.modelP99} | ${(r.mean / r.modelMean).toFixed(2)} | ${(r.p99 / r.modelP99).toFixed(2)} | ${r.rtx}/${r.segments} |`,
      ),
    ].join("\n"),
  );
  for (const r of rows) {
    const b = bounds(r.c, r.lagged);
    const mr = r.mean / r.modelMean;
    const pr = r.p99 / r.modelP99;
    expect(mr, `${name(r.c)}: mean ${r.mean.toFixed(1)} / model ${r.modelMean}`).toBeGreaterThanOrEqual(
      b.mean[0],
    );
    expect(mr, `${name(r.c)}: mean ${r.mean.toFixed(1)} / model ${r.modelMean}`).toBeLessThanOrEqual(
      b.mean[1],
    );
    expect(pr, `${name(r.c)}: p99 ${r.p99.toFixed(1)} / model ${r.modelP99}`).toBeGreaterThanOrEqual(
      b.p99[0],
    );
    expect(pr, `${name(r.c)}: p99 ${r.p99.toFixed(1)} / model ${r.modelP99}`).toBeLessThanOrEqual(b.p99[1]);
  }
}

describe("the overlay-latency bench path in netsim (DAEMON_DEFAULTS, 5 nodes, 4 × 10 ms)", () => {
  it(`${SEEDS} seeds per case: every message once, 0 e2e retransmissions, latency against the model`, () => {
    const cpu = process.cpuUsage();
    check(CASES.map((c) => measure(c, undefined)));
    const u = process.cpuUsage(cpu);
    console.log(`CPU ${((u.user + u.system) / 1e6).toFixed(1)} s`);
  }, 300_000);

  it(`with the real daemons' event-loop lag (calibrated at 0 %): ${SEEDS} seeds per case`, () => {
    const cpu = process.cpuUsage();
    check(CASES.map((c) => measure(c, REAL_LAG)));
    const u = process.cpuUsage(cpu);
    console.log(`CPU ${((u.user + u.system) / 1e6).toFixed(1)} s`);
  }, 300_000);
});
