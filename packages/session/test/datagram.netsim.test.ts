import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { DatagramUnreachableError, SessionDriver, type SessionEvent } from "../src/index.ts";
import { pattern, randomLink } from "./harness.ts";

/** Message i: 4-byte index then a pattern derived from the seed and the index. */
function message(seed: number, i: number, len: number): Uint8Array {
  const m = pattern(seed * 1000 + i, Math.max(4, len));
  new DataView(m.buffer).setUint32(0, i);
  return m;
}

function sizes(rng: Rng): number[] {
  const n = 3 + rng.int(10);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(rng.chance(0.1) ? 4 + rng.int(65_533) : 4 + rng.int(3000));
  if (rng.chance(0.2)) out.push(65_536);
  return out;
}

interface Run {
  delivered: Map<number, number>;
  acked: Set<number>;
  failed: SessionEvent[];
  violation: string | undefined;
  sim: Simulator;
}

function runDatagrams(seed: number, reliable: boolean, maxLoss: number): Run & { count: number } {
  const rng = new Rng(seed);
  const link = randomLink(rng, maxLoss);
  const lens = sizes(rng);
  const sim = new Simulator({ seed, traceCapacity: 100 });
  const r: Run = { delivered: new Map(), acked: new Set(), failed: [], violation: undefined, sim };
  const config = {
    initialRtoMs: 200,
    datagramTimeoutMs: 60_000,
    datagramFlowIdleMs: 60_000,
    maxReassemblyBytes: 65_536 * 2 + rng.int(65_536 * 4),
    datagramSendBufferBytes: 65_536 + rng.int(200_000),
    maxOutstandingPerFlow: 1 + rng.int(16),
    datagramFragmentBytes: 200 + rng.int(1200),
  };
  sim.addNode(
    2,
    SessionDriver.factory(
      {
        config,
        onEvent: (e) => {
          if (e.type !== "datagram") return;
          const i = new DataView(e.data.buffer, e.data.byteOffset).getUint32(0);
          const want = message(seed, i, lens[i] ?? -1);
          if (e.reliable !== reliable) r.violation ??= "reliability flag wrong";
          if (e.src !== 1 || e.srcPort !== 5 || e.port !== 9) r.violation ??= "addressing wrong";
          if (i >= lens.length || want.length !== e.data.length || want.some((b, k) => b !== e.data[k])) {
            r.violation ??= `message ${i} corrupted (${e.data.length} bytes)`;
          }
          r.delivered.set(i, (r.delivered.get(i) ?? 0) + 1);
          if ((r.delivered.get(i) ?? 0) > 1) r.violation ??= `message ${i} delivered twice`;
        },
      },
      (d) => d.bind(9),
    ),
  );
  let next = 0;
  const handles = new Map<number, number>();
  const pump = (d: SessionDriver): void => {
    while (next < lens.length) {
      const h = d.sendDatagram({
        srcPort: 5,
        dst: 2,
        dstPort: 9,
        data: message(seed, next, lens[next] as number),
        reliable,
      });
      if (h === false) return;
      handles.set(h, next);
      next++;
    }
  };
  sim.addNode(
    1,
    SessionDriver.factory(
      {
        config,
        onEvent: (e, d) => {
          if (e.type === "datagramWritable") pump(d);
          if (e.type === "datagramAcked") r.acked.add(handles.get(e.id) ?? -1);
          if (e.type === "datagramFailed") r.failed.push(e);
        },
      },
      (d) => d.bind(5),
    ),
  );
  sim.connect(1, 2, link);
  sim.at(1, (s) => pump(s.program<SessionDriver>(1)!));
  sim.addInvariant("datagrams exactly once, intact", () => r.violation);
  sim.addInvariant("reassembly and send buffers bounded", (s) => {
    for (const id of [1, 2]) {
      const d = s.program<SessionDriver>(id)!;
      const c = d.core.config;
      if (d.core.datagrams.reassemblyBytes > c.maxReassemblyBytes)
        return `reassembly ${d.core.datagrams.reassemblyBytes}`;
      if (d.core.datagrams.outstandingBytes > c.datagramSendBufferBytes) return "send buffer over bound";
    }
    return undefined;
  });
  if (reliable) sim.runUntil(() => r.acked.size === lens.length || r.failed.length > 0, 120_000);
  else sim.run(10_000);
  return { ...r, count: lens.length };
}

describe("datagrams over a lossy, reordering, duplicating link (netsim)", () => {
  it("1,000 seeds: reliable datagrams up to 64 KiB arrive exactly once and intact, all acknowledged", () => {
    let msgs = 0;
    let dups = 0;
    let retx = 0;
    forEachSeed(Number(process.env.SESSION_STRESS_SEEDS ?? 1000), (seed) => {
      const r = runDatagrams(seed, true, 0.2);
      expect(r.failed, `seed ${seed}`).toEqual([]);
      expect(r.acked.size).toBe(r.count);
      expect(r.delivered.size).toBe(r.count);
      for (const n of r.delivered.values()) expect(n).toBe(1);
      // the receiver's reassembly memory is released once everything arrived
      expect(r.sim.program<SessionDriver>(2)!.core.datagrams.reassemblyBytes).toBe(0);
      msgs += r.count;
      dups += r.sim.program<SessionDriver>(2)!.core.datagrams.counters.duplicates;
      retx += r.sim.program<SessionDriver>(1)!.core.datagrams.counters.retransmittedFragments;
    });
    expect(msgs).toBeGreaterThan(5000);
    // the runs did exercise loss recovery and duplicate suppression
    expect(dups).toBeGreaterThan(100);
    expect(retx).toBeGreaterThan(1000);
  });

  it("300 seeds: best-effort datagrams arrive at most once and intact; all of them without loss", () => {
    forEachSeed(300, (seed) => {
      const r = runDatagrams(seed, false, 0.2);
      for (const n of r.delivered.values()) expect(n).toBe(1);
    });
    forEachSeed(100, (seed) => {
      const r = runDatagrams(seed, false, 0);
      expect(r.delivered.size, `seed ${seed}`).toBe(r.count);
    });
  });

  it("a reliable datagram to a port nothing is bound to fails with DatagramUnreachableError", () => {
    const sim = new Simulator({ seed: 1 });
    const ev: SessionEvent[] = [];
    sim.addNode(2, SessionDriver.factory({}));
    sim.addNode(
      1,
      SessionDriver.factory({ onEvent: (e) => ev.push(e) }, (d) => d.bind(5)),
    );
    sim.connect(1, 2, { delayMs: 5 });
    let h = false as number | false;
    sim.at(1, (s) => {
      h = s
        .program<SessionDriver>(1)!
        .sendDatagram({ srcPort: 5, dst: 2, dstPort: 77, data: new Uint8Array(3000), reliable: true });
    });
    sim.run(1000);
    const f = ev.find((e) => e.type === "datagramFailed");
    expect(f).toBeDefined();
    expect(f?.type === "datagramFailed" && f.id === h && f.error instanceof DatagramUnreachableError).toBe(
      true,
    );
  });
});
