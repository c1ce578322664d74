/**
 * Overload (issue 10): a node floods a narrow link with reliable-link datagrams while a stream of
 * its own shares the link and a stream in the other direction needs its acks to get out.
 * - Datagrams are admitted only when the local queue has room (`localRoom`, what the daemon asks
 *   before it accepts a client's datagram); every admitted one arrives; the rest were refused
 *   (would-block), none dropped on the way.
 * - Local sources share the link fairly (deficit round robin over local flows): neither the flood
 *   nor the stream starves the other.
 * - Session control messages (acks) do not wait behind data: the reverse stream runs without
 *   end-to-end retransmissions.
 */
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { DAEMON_DEFAULTS, OverlayNode } from "../src/index.ts";

const SEEDS = Number(process.env.OVERLAY_OVERLOAD_SEEDS ?? 10);
const LOAD_MS = 20_000;
const DGRAM_BYTES = 1000;
const STREAM_PORT = 80;
const REVERSE_PORT = 81;
const DGRAM_SRC = 90;
const DGRAM_DST = 91;

interface Run {
  offered: number;
  accepted: number;
  refused: number;
  delivered: number;
  duplicates: number;
  dgramBytesInLoad: number;
  streamBytesInLoad: number;
  reverseBytes: number;
  reverseRetransmitted: number;
  localDrops: number;
  controlDrops: number;
  linkDowns: number;
}

function run(seed: number): Run {
  const sim = new Simulator({ seed, traceCapacity: 100 });
  const opts = {
    ...DAEMON_DEFAULTS,
    neighbors: [] as number[],
    link: { ...DAEMON_DEFAULTS.link },
    session: { ...DAEMON_DEFAULTS.session },
  };
  let streamSid: number | undefined;
  let reverseRx: number | undefined;
  let forwardRx: number | undefined;
  let reverseTx: number | undefined;
  const seen = new Set<number>();
  let duplicates = 0;
  let loadEnded = false;
  let dgramBytesInLoad = 0;
  let streamBytesInLoad = 0;
  let reverseBytes = 0;
  const chunk = new Uint8Array(16 * 1024);
  const pushWrites = (n: OverlayNode, sid: number | undefined) => {
    if (sid === undefined) return;
    while (n.write(sid, chunk) === chunk.length) {}
  };
  sim.addNode(
    1,
    OverlayNode.factory({
      ...opts,
      neighbors: [2],
      onEvent: (e, n) => {
        if (e.type === "connected" && e.sid === streamSid) pushWrites(n, streamSid);
        if (e.type === "writable" && e.sid === streamSid) pushWrites(n, streamSid);
        if (e.type === "incoming" && e.port === REVERSE_PORT) reverseRx = n.accept(REVERSE_PORT);
        if (e.type === "readable" && e.sid === reverseRx) {
          for (let b = n.read(e.sid); b.length > 0; b = n.read(e.sid)) reverseBytes += b.length;
        }
      },
    }),
  );
  sim.addNode(
    2,
    OverlayNode.factory({
      ...opts,
      neighbors: [1],
      onEvent: (e, n) => {
        if (e.type === "incoming" && e.port === STREAM_PORT) forwardRx = n.accept(STREAM_PORT);
        if (e.type === "readable" && e.sid === forwardRx) {
          for (let b = n.read(e.sid); b.length > 0; b = n.read(e.sid))
            if (!loadEnded) streamBytesInLoad += b.length;
        }
        if (e.type === "connected" && e.sid === reverseTx) pushWrites(n, reverseTx);
        if (e.type === "writable" && e.sid === reverseTx) pushWrites(n, reverseTx);
        if (e.type === "datagram" && e.port === DGRAM_DST) {
          const k = new DataView(e.data.buffer, e.data.byteOffset).getUint32(0);
          if (seen.has(k)) duplicates++;
          seen.add(k);
          if (!loadEnded) dgramBytesInLoad += e.data.length;
        }
      },
    }),
  );
  // 1 Mbit/s with a 64 KiB queue, 10 ms each way.
  sim.connect(1, 2, { delayMs: 10, bandwidthBps: 1_000_000, queueBytes: 64 * 1024 });
  const n1 = () => sim.program<OverlayNode>(1) as OverlayNode;
  const n2 = () => sim.program<OverlayNode>(2) as OverlayNode;
  expect(
    sim.runUntil(() => n1().hasRoute(2) && n2().hasRoute(1), 10_000),
    `seed ${seed}: route`,
  ).toBe(true);
  n2().listen(STREAM_PORT);
  n1().listen(REVERSE_PORT);
  n2().bind(DGRAM_DST);
  n1().bind(DGRAM_SRC);
  streamSid = n1().connect(2, STREAM_PORT, { linkType: 1 });
  reverseTx = n2().connect(1, REVERSE_PORT, { linkType: 1 });
  // 2,000 datagrams/s of 1,000 bytes (16 Mbit/s) offered on the reliable link type.
  let offered = 0;
  let accepted = 0;
  let refused = 0;
  const t0 = sim.now;
  const tick = () => {
    if (sim.now - t0 >= LOAD_MS) return;
    for (let k = 0; k < 2; k++) {
      offered++;
      if (n1().localRoom(2, DGRAM_SRC, DGRAM_DST) < 1) {
        refused++;
        continue;
      }
      const d = new Uint8Array(DGRAM_BYTES);
      new DataView(d.buffer).setUint32(0, accepted);
      n1().sendDatagram({ srcPort: DGRAM_SRC, dst: 2, dstPort: DGRAM_DST, data: d, linkType: 1 });
      accepted++;
    }
    sim.after(1, tick);
  };
  sim.after(0, tick);
  sim.runFor(LOAD_MS);
  loadEnded = true;
  const reverseRetransmitted = reverseTx === undefined ? -1 : n2().info(reverseTx).segmentsRetransmitted;
  // Stop the streams; let the datagrams already accepted drain.
  if (streamSid !== undefined) n1().reset(streamSid);
  if (reverseTx !== undefined) n2().reset(reverseTx);
  sim.runUntil(() => seen.size >= accepted, 60_000);
  const p = n1().plane;
  return {
    offered,
    accepted,
    refused,
    delivered: seen.size,
    duplicates,
    dgramBytesInLoad,
    streamBytesInLoad,
    reverseBytes,
    reverseRetransmitted,
    localDrops: p.localQueueDrops,
    controlDrops: p.controlQueueDrops,
    linkDowns: (p.driver.link(2)?.stats.downs ?? 0) + (n2().plane.driver.link(1)?.stats.downs ?? 0),
  };
}

describe("overload on a 1 Mbit/s link (netsim)", () => {
  it(`${SEEDS} seeds: admitted datagrams all arrive, local flows share fairly, acks are not starved`, () => {
    forEachSeed(SEEDS, (seed) => {
      const r = run(seed);
      const msg = `seed ${seed}: ${JSON.stringify(r)}`;
      if (process.env.OVERLOAD_PRINT) console.log(msg);
      // Overload was real: most offered datagrams were refused at once.
      expect(r.refused, msg).toBeGreaterThan(r.offered / 2);
      expect(r.accepted, msg).toBeGreaterThan(0);
      // 0 admitted and lost, none twice, nothing dropped from the local queue.
      expect(r.delivered, msg).toBe(r.accepted);
      expect(r.duplicates, msg).toBe(0);
      expect(r.localDrops, msg).toBe(0);
      expect(r.controlDrops, msg).toBe(0);
      // Fair share between the two local flows (each at least a third of what both got through).
      // Seed 9 starved the stream (372 kB against 1 MB) while its retransmissions ignored the send
      // room: each timeout queued the window again behind itself in the plane, and the stream
      // waited 10 s for its own duplicates to drain. Retransmissions now wait for room as well.
      const both = r.dgramBytesInLoad + r.streamBytesInLoad;
      expect(r.dgramBytesInLoad, msg).toBeGreaterThan(both / 3);
      expect(r.streamBytesInLoad, msg).toBeGreaterThan(both / 3);
      // The reverse stream's acks cross the flooded direction: it keeps going, with few end-to-end
      // retransmissions (under 10 % of its segments; 0-6 % in the runs so far: its acks still
      // cross the emulated link's 0.5 s bottleneck queue, which the link's loss-based congestion
      // control keeps full, so the RTT jumps from 20 ms to about 0.5 s as it fills), at over half of
      // the 1 Mbit/s (125 kB/s) the other way. Before, with one FIFO local queue, its acks waited
      // behind the flood: 438 retransmissions of about 240 segments.
      expect(r.reverseRetransmitted, msg).toBeGreaterThanOrEqual(0);
      expect(r.reverseRetransmitted, msg).toBeLessThanOrEqual(r.reverseBytes / 1100 / 10);
      expect(r.reverseBytes, msg).toBeGreaterThan((0.5 * 125_000 * LOAD_MS) / 1000);
    });
  });
});
