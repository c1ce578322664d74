/**
 * The simulator checked by its own machinery: many seeds, every link feature and every fault kind
 * at once, with invariants after every event that the model must keep.
 */
import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { forEachSeed, type LinkParams, Simulator } from "../src/index.ts";

/** Sends numbered packets to random peers; checks what arrives against what the model allows. */
class Prober implements NodeProgram {
  readonly host: Host;
  readonly peers: NodeId[];
  readonly violations: string[] = [];
  /** (sender, sender's incarnation nonce) -> last sequence number seen. */
  readonly lastSeqFrom = new Map<string, number>();
  readonly nonce: number;
  readonly fifo: boolean;
  seq = 0;
  constructor(host: Host, peers: NodeId[], fifo: boolean) {
    this.host = host;
    this.peers = peers;
    this.nonce = host.rng.uint32();
    const tick = (): void => {
      const to = host.rng.pick(peers);
      const b = new Uint8Array(20 + host.rng.int(200));
      const v = new DataView(b.buffer);
      v.setUint32(0, host.id);
      v.setUint32(16, this.nonce);
      v.setUint32(4, this.seq++);
      v.setFloat64(8, host.clock.now());
      host.send(to, b);
      host.schedule(host.clock.now() + host.rng.exponential(2), tick);
    };
    host.schedule(host.rng.uniform(0, 2), tick);
    this.fifo = fifo;
  }
  receive(from: NodeId, data: Uint8Array): void {
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    if (v.getUint32(0) !== from) this.violations.push(`sender ${from} but packet says ${v.getUint32(0)}`);
    if (v.getFloat64(8) > this.host.clock.now()) this.violations.push("packet from the future");
    const seq = v.getUint32(4);
    const key = `${from}/${v.getUint32(16)}`;
    const last = this.lastSeqFrom.get(key);
    if (this.fifo && last !== undefined && seq <= last)
      this.violations.push(`FIFO broken from ${from}: ${seq} after ${last}`);
    this.lastSeqFrom.set(key, seq);
  }
}

function scenario(seed: number, fifo: boolean): Simulator {
  const sim = new Simulator({ seed, traceCapacity: 200 });
  const ids = [1, 2, 3, 4, 5];
  const params: LinkParams = {
    delayMs: 1 + (seed % 5),
    jitterMs: 1,
    loss: 0.02,
    gilbertElliott: { pGoodToBad: 0.02, pBadToGood: 0.3, lossGood: 0, lossBad: 0.8 },
    ...(fifo ? {} : { reorder: 0.05, duplicate: 0.05 }),
    bandwidthBps: 60_000, // below the ~85 kbit/s offered per link (after MTU drops), so queues fill
    queueBytes: 1_500,
    mtu: 150,
  };
  sim.mesh(ids, params);
  for (const id of ids)
    sim.addNode(
      id,
      (h) =>
        new Prober(
          h,
          ids.filter((x) => x !== id),
          fifo,
        ),
    );
  sim.randomFaults({ from: 10, until: 250, meanIntervalMs: 15, meanDurationMs: 20 });
  let lastNow = 0;
  sim.addInvariant("time never goes back", (s) => {
    const bad = s.now < lastNow;
    lastNow = s.now;
    return bad ? `now ${s.now} < ${lastNow}` : undefined;
  });
  sim.addInvariant("packets are conserved", (s) => {
    const st = s.stats;
    return st.sent + st.duplicated === st.delivered + st.dropped + st.inFlight
      ? undefined
      : `sent ${st.sent} + dup ${st.duplicated} != delivered ${st.delivered} + dropped ${st.dropped} + in flight ${st.inFlight}`;
  });
  sim.addInvariant("drops add up", (s) => {
    const d = s.stats.drops;
    const sum = d.loss + d.queue + d.down + d.partition + d.crashed + d.mtu + d.noLink;
    return sum === s.stats.dropped ? undefined : `causes sum to ${sum}, dropped ${s.stats.dropped}`;
  });
  sim.addInvariant("programs see only what the model allows", (s) => {
    for (const id of ids) {
      const p = s.program<Prober>(id);
      if (p !== undefined && p.violations.length > 0) return `node ${id}: ${p.violations[0]}`;
    }
    return undefined;
  });
  sim.addInvariant("down nodes have no program", (s) => {
    for (const id of ids) if (s.isUp(id) !== (s.program(id) !== undefined)) return `node ${id}`;
    return undefined;
  });
  sim.run(300);
  return sim;
}

describe("the simulator under every feature and fault at once", () => {
  it("keeps its invariants over 1,000 seeds, and replays each one exactly", () => {
    const causes = new Set<string>();
    forEachSeed(1000, (seed) => {
      const sim = scenario(seed, seed % 2 === 0);
      for (const [k, v] of Object.entries(sim.stats.drops)) if (v > 0) causes.add(k);
      expect(sim.stats.inFlight).toBeGreaterThanOrEqual(0);
      if (seed % 20 === 0) expect(scenario(seed, seed % 2 === 0).traceHash()).toBe(sim.traceHash());
    });
    // the scenario exercises every drop cause except noLink (a full mesh has every link)
    expect([...causes].sort()).toEqual(["crashed", "down", "loss", "mtu", "partition", "queue"]);
  });
});
