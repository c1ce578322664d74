/**
 * `pnpm bench netsim`: simulated packet deliveries per second of wall time. 100 nodes in 50 pairs
 * ping-pong small packets (each pair keeps 8 packets in flight), under several link models. The
 * baseline, measured in the same run, is a bare `MinHeap` push/pop loop over the same number of
 * events (the least any event-queue simulator must do), so the ratio is the simulator's overhead.
 */
import { runBench, type Table } from "@spines-ts/bench";
import { MinHeap, type NodeId } from "@spines-ts/primitives";
import { type LinkParams, Simulator } from "../src/index.ts";

interface Case {
  name: string;
  params: LinkParams;
  invariant?: boolean;
}

const cases: Case[] = [
  { name: "plain 1 ms links", params: { delayMs: 1 } },
  { name: "jitter 0.5 ms + loss 1 %", params: { delayMs: 1, jitterMs: 0.5, loss: 0.01 } },
  {
    name: "all features (GE, reorder, dup, 100 Mbps)",
    params: {
      delayMs: 1,
      jitterMs: 0.5,
      gilbertElliott: { pGoodToBad: 0.001, pBadToGood: 0.3, lossGood: 0, lossBad: 0.5 },
      reorder: 0.01,
      duplicate: 0.01,
      bandwidthBps: 100_000_000,
    },
  },
  { name: "plain + 1 invariant", params: { delayMs: 1 }, invariant: true },
];

const NODES = 100;
const WINDOW = 8;

/**
 * Node i (even) keeps WINDOW packets circulating with node i+1, which echoes everything. A packet is
 * [slot, 0, 0, 0, round (uint32 LE)]; the initiator forwards only the current round of a slot (so a
 * duplicate does not multiply) and re-sends a slot not heard from for 5 ms (so loss does not drain
 * the window).
 */
function build(c: Case, seed: number): Simulator {
  const sim = new Simulator({ seed, traceCapacity: 10_000 });
  for (let i = 0; i < NODES; i += 2) sim.connect(i, i + 1, c.params);
  for (let i = 0; i < NODES; i++) {
    const peer = i ^ 1;
    if ((i & 1) === 1) {
      sim.addNode(i, (host) => ({
        receive(from: NodeId, data: Uint8Array) {
          host.send(from, data);
        },
      }));
      continue;
    }
    sim.addNode(i, (host) => {
      const round = new Uint32Array(WINDOW);
      const heard = new Float64Array(WINDOW);
      const buf = new Uint8Array(8);
      const view = new DataView(buf.buffer);
      const send = (k: number): void => {
        round[k] = ((round[k] as number) + 1) >>> 0;
        heard[k] = host.clock.now();
        buf[0] = k;
        view.setUint32(4, round[k] as number, true);
        host.send(peer, buf);
      };
      const sweep = (): void => {
        const now = host.clock.now();
        for (let k = 0; k < WINDOW; k++) if (now - (heard[k] as number) >= 5) send(k);
        host.schedule(now + 5, sweep);
      };
      host.schedule(0, () => {
        for (let k = 0; k < WINDOW; k++) send(k);
        host.schedule(5, sweep);
      });
      return {
        receive(_from: NodeId, data: Uint8Array) {
          const k = data[0] as number;
          const r =
            (data[4] as number) |
            ((data[5] as number) << 8) |
            ((data[6] as number) << 16) |
            ((data[7] as number) << 24);
          if (k < WINDOW && r >>> 0 === round[k]) send(k);
        },
      };
    });
  }
  if (c.invariant === true)
    sim.addInvariant("no drops by crash", (s) => (s.stats.drops.crashed === 0 ? undefined : "crash drop"));
  return sim;
}

/** Runs the case for `virtualMs`; returns deliveries, events and wall seconds. */
function measure(c: Case, virtualMs: number): { deliveries: number; events: number; sec: number } {
  const sim = build(c, 1);
  const t0 = performance.now();
  sim.run(virtualMs);
  const sec = (performance.now() - t0) / 1000;
  return { deliveries: sim.stats.delivered, events: sim.stats.events, sec };
}

/** Baseline 1: `events` pop/push pairs on the shared `MinHeap` of fresh (time, seq) records, 400 in flight. */
function minHeapLoop(events: number, jitter: number): number {
  interface E {
    time: number;
    seq: number;
    node: number;
  }
  const heap = new MinHeap<E>((a, b) => a.time < b.time || (a.time === b.time && a.seq < b.seq));
  let seq = 0;
  for (let i = 0; i < NODES * WINDOW; i++) heap.push({ time: 1, seq: seq++, node: i });
  let sink = 0;
  let x = 0x2545f491; // xorshift32 for the jitter, as cheap as it gets
  const t0 = performance.now();
  for (let i = 0; i < events; i++) {
    const e = heap.pop() as E;
    sink += e.node;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    heap.push({
      time: e.time + 1 + jitter * (((x >>> 0) / 4294967296) * 2 - 1),
      seq: seq++,
      node: e.node ^ 1,
    });
  }
  const sec = (performance.now() - t0) / 1000;
  if (sink === -1) console.log(sink);
  return sec;
}

/**
 * Baseline 2, the floor: the same loop on an inlined binary heap over typed arrays (time, seq,
 * payload), no allocation and no callbacks: what any event queue must at least do.
 */
function floorLoop(events: number, jitter: number): number {
  const cap = NODES * WINDOW + 1;
  const time = new Float64Array(cap);
  const seqs = new Float64Array(cap);
  const node = new Int32Array(cap);
  let n = 0;
  let seq = 0;
  const push = (t: number, s: number, v: number): void => {
    let i = n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = time[p] as number;
      if (pt < t || (pt === t && (seqs[p] as number) < s)) break;
      time[i] = pt;
      seqs[i] = seqs[p] as number;
      node[i] = node[p] as number;
      i = p;
    }
    time[i] = t;
    seqs[i] = s;
    node[i] = v;
  };
  for (let i = 0; i < NODES * WINDOW; i++) push(1, seq++, i);
  let sink = 0;
  let x = 0x2545f491; // xorshift32 for the jitter, as cheap as it gets
  const t0 = performance.now();
  for (let k = 0; k < events; k++) {
    const t = time[0] as number;
    const v = node[0] as number;
    sink += v;
    // pop: move the last element down from the root
    n--;
    const lt = time[n] as number;
    const ls = seqs[n] as number;
    const lv = node[n] as number;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let c = l;
      const r = l + 1;
      if (
        r < n &&
        ((time[r] as number) < (time[l] as number) ||
          (time[r] === time[l] && (seqs[r] as number) < (seqs[l] as number)))
      )
        c = r;
      const ct = time[c] as number;
      if (lt < ct || (lt === ct && ls < (seqs[c] as number))) break;
      time[i] = ct;
      seqs[i] = seqs[c] as number;
      node[i] = node[c] as number;
      i = c;
    }
    time[i] = lt;
    seqs[i] = ls;
    node[i] = lv;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    push(t + 1 + jitter * (((x >>> 0) / 4294967296) * 2 - 1), seq++, v ^ 1);
  }
  const sec = (performance.now() - t0) / 1000;
  if (sink === -1) console.log(sink);
  return sec;
}

await runBench("netsim", async (ctx) => {
  const virtualMs = ctx.quick ? 200 : 2_000;
  const reps = ctx.quick ? 1 : 3;
  // warm up the JIT on every code path
  for (const c of cases) measure(c, 50);
  minHeapLoop(200_000, 0.5);
  floorLoop(200_000, 0.5);

  const rows: (string | number)[][] = [];
  const data: Record<string, unknown>[] = [];
  let step = 0;
  for (const c of cases) {
    let best = { deliveries: 0, events: 0, sec: Number.POSITIVE_INFINITY };
    let bestHeap = Number.POSITIVE_INFINITY;
    let bestFloor = Number.POSITIVE_INFINITY;
    for (let r = 0; r < reps; r++) {
      const m = measure(c, virtualMs);
      if (m.sec < best.sec) best = m;
      const j = c.params.jitterMs ?? 0;
      bestHeap = Math.min(bestHeap, minHeapLoop(m.events, j));
      bestFloor = Math.min(bestFloor, floorLoop(m.events, j));
      ctx.progress(++step / (cases.length * reps), c.name);
    }
    const dps = best.deliveries / best.sec;
    const nsSim = (best.sec * 1e9) / best.events;
    const nsHeap = (bestHeap * 1e9) / best.events;
    const nsFloor = (bestFloor * 1e9) / best.events;
    rows.push([c.name, best.deliveries, Math.round(dps), nsSim, nsHeap, nsFloor, nsSim / nsFloor]);
    data.push({
      case: c.name,
      deliveries: best.deliveries,
      events: best.events,
      wallSec: best.sec,
      deliveriesPerSec: dps,
      nsPerEvent: nsSim,
      minHeapNsPerEvent: nsHeap,
      floorNsPerEvent: nsFloor,
      overVsFloor: nsSim / nsFloor,
    });
  }
  const table: Table = {
    title: `netsim: ${NODES} nodes ping-ponging 8-byte packets (${WINDOW} in flight per pair), ${virtualMs} ms virtual, best of ${reps}`,
    columns: [
      "case",
      "deliveries",
      "deliveries/s",
      "sim ns/event",
      "MinHeap ns/event",
      "floor ns/event",
      "sim/floor",
    ],
    rows,
    notes: [
      "deliveries/s is the figure of merit (target >= 1,000,000); an event is a delivery, a drop on arrival, a timer or an action",
      "baselines, same run, same number of events and the same delay +- jitter per event: MinHeap = primitives'",
      "  MinHeap pop+push of fresh {time,seq} records;",
      "  floor = an inlined typed-array heap pop+push (no allocation, no callbacks); sim/floor = the simulator's overhead",
    ],
  };
  return { tables: [table], data: { virtualMs, reps, nodes: NODES, window: WINDOW, cases: data } };
});
