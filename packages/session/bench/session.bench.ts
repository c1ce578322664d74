/**
 * `pnpm bench session [--quick]`: CPU cost of the session core. Two `SessionEndpoint`s are joined in
 * memory (every packet encoded to a frame and decoded again, as on a real wire; virtual time
 * advances 0.05 ms per delivery round) and stream 1 KB writes from one to the other, with no loss
 * and with 5 % loss plus reordering. The baseline, measured in the same run, is the codec alone:
 * encoding and decoding the same number of SessionData frames and one SessionAck per two segments,
 * the least any implementation of this wire format does per byte carried.
 */
import { opsPerSec, runBench, stats } from "@spines-ts/bench";
import { Rng } from "@spines-ts/primitives";
import { DestKind, decode, encode, type SessionMessage } from "@spines-ts/wire";
import { SessionEndpoint } from "../src/index.ts";

const MSS = 1100;
/** Application write size: each write becomes one segment when the window is open. */
const WRITE = 1000;

/** Streams `bytes` from node 1 to node 2; returns segments sent (including retransmissions). */
function transfer(bytes: number, loss: number, seed: number): number {
  const rng = new Rng(seed);
  const cfg = { mss: MSS };
  const a = new SessionEndpoint({ nodeId: 1, rng: new Rng(seed + 1), config: cfg });
  const b = new SessionEndpoint({ nodeId: 2, rng: new Rng(seed + 2), config: cfg });
  const eps = [a, b];
  b.listen(80);
  let now = 0;
  const sid = a.connect(now, 2, 80);
  let sidB: number | undefined;
  const chunk = new Uint8Array(WRITE).fill(7);
  let written = 0;
  let read = 0;
  let connected = false;
  let queue: { to: number; bytes: Uint8Array }[] = [];
  let held: { to: number; bytes: Uint8Array }[] = [];
  const write = (): void => {
    while (written < bytes) {
      const n = a.write(now, sid, chunk.subarray(0, Math.min(WRITE, bytes - written)));
      written += n;
      if (n === 0) return;
    }
  };
  for (let guard = 0; guard < 10_000_000 && read < bytes; guard++) {
    for (const [i, ep] of eps.entries()) {
      for (const e of ep.takeEvents()) {
        if (e.type === "connected") {
          connected = true;
          write();
        } else if (e.type === "writable" && connected) write();
        else if (e.type === "incoming") sidB = b.accept(80);
        else if (e.type === "readable") read += b.read(now, e.sid).length;
      }
      for (const p of ep.takePackets())
        queue.push({ to: p.to, bytes: encode({ sender: i + 1, incarnation: 1 }, p.msg) });
    }
    if (queue.length === 0 && held.length === 0) {
      const d = Math.min(a.nextDeadline() ?? Infinity, b.nextDeadline() ?? Infinity);
      if (d === Infinity) break;
      now = Math.max(now, d);
      a.handleTimeout(now);
      b.handleTimeout(now);
      continue;
    }
    now += 0.05;
    const q = [...held, ...queue];
    queue = [];
    held = [];
    for (const p of q) {
      if (loss > 0 && rng.chance(loss)) continue;
      if (loss > 0 && rng.chance(0.02)) {
        held.push(p); // reordered behind the next round
        continue;
      }
      (p.to === 1 ? a : b).receiveFrame(now, p.bytes);
    }
  }
  if (read !== bytes || sidB === undefined) throw new Error(`transfer incomplete: ${read}/${bytes}`);
  return a.info(sid).segmentsSent;
}

/** The codec floor: the frames a lossless transfer of `bytes` in 1 KB writes needs, encoded and decoded. */
function codecOnly(bytes: number): number {
  const header = { src: 1, srcPort: 40000, dst: 2, dstPort: 80, dstKind: DestKind.Node, ttl: 64 };
  const payload = new Uint8Array(WRITE).fill(7);
  const segments = Math.ceil(bytes / WRITE);
  let sink = 0;
  for (let i = 0; i < segments; i++) {
    const d: SessionMessage = {
      _tag: "SessionData",
      header,
      dstSid: 1,
      flags: 0,
      seq: i,
      ack: 0,
      window: 262144,
      payload,
    };
    sink += decode(encode({ sender: 1, incarnation: 1 }, d)).type;
    if (i % 2 === 1) {
      const k: SessionMessage = {
        _tag: "SessionAck",
        header,
        dstSid: 2,
        flags: 0,
        ack: i + 1,
        window: 262144,
        sack: [],
      };
      sink += decode(encode({ sender: 2, incarnation: 1 }, k)).type;
    }
  }
  return sink;
}

await runBench("session", (ctx) => {
  const bytes = ctx.quick ? 1_000_000 : 4_000_000;
  const roundMs = ctx.quick ? 300 : 1500;
  const rounds = ctx.quick ? 3 : 5;
  let seed = 1;
  let segLossless = 0;
  let segLossy = 0;
  const ops: [string, () => void][] = [
    ["baseline: codec only (encode + decode the frames)", () => void codecOnly(bytes)],
    [
      "session core, no loss",
      () => {
        segLossless = transfer(bytes, 0, seed++);
      },
    ],
    [
      "session core, 5 % loss + 2 % reordering",
      () => {
        segLossy = transfer(bytes, 0.05, seed++);
      },
    ],
  ];
  const samples = new Map<string, number[]>(ops.map(([n]) => [n, []]));
  let done = 0;
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of ops) {
      samples.get(name)?.push(opsPerSec(fn, roundMs, 1));
      ctx.progress(++done / (rounds * ops.length), name);
    }
  }
  const median = (name: string): number => stats(samples.get(name) ?? []).p50;
  const base = median(ops[0]?.[0] ?? "");
  const segsFor = (name: string): number =>
    name.includes("5 %") ? segLossy : name.includes("no loss") ? segLossless : Math.ceil(bytes / WRITE);
  const rows = ops.map(([name]) => {
    const o = median(name);
    const mbps = (o * bytes * 8) / 1e6;
    return [name, (o * bytes) / 1e6, mbps, Math.round(o * segsFor(name)), base / o];
  });
  return {
    tables: [
      {
        title: `session: ${bytes / 1e6} MB in 1 KB writes between two in-memory endpoints, median of ${rounds} rounds`,
        columns: ["case", "MB/s", "Mbit/s", "segments/s", "time vs codec only"],
        rows,
        notes: [
          "One core thread does both endpoints and the codec for both directions (a daemon does one side).",
          "time vs codec only = (time per transfer) / (time of the baseline for the same bytes), this run; lower is better.",
          `segments sent per transfer: lossless ${segLossless}, lossy ${segLossy} (${Math.ceil(bytes / WRITE)} writes; the baseline codes that many SessionData frames and half as many SessionAcks).`,
        ],
      },
    ],
    data: {
      bytes,
      mss: MSS,
      results: Object.fromEntries(
        ops.map(([n]) => [n, { transfersPerSec: median(n), samples: samples.get(n) }]),
      ),
      segmentsLossless: segLossless,
      segmentsLossy: segLossy,
    },
  };
});
