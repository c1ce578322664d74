/**
 * Asymmetric link faults (one direction down or lossy, the other working) and process stalls
 * (a node frozen for a while; its inputs queue and are handled in order when it resumes).
 */
import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { forEachSeed, Simulator } from "../src/index.ts";
import { Chatter, Recorder, Sender, unstamp } from "./helpers.ts";

/** Sends a stamped packet to `to` every 10 ms and records what it receives, with the time. */
class Pinger implements NodeProgram {
  readonly host: Host;
  sent = 0;
  readonly got: { t: number; from: NodeId; seq: number }[] = [];
  readonly timerAt: number[] = [];
  constructor(host: Host, to: NodeId) {
    this.host = host;
    const tick = (): void => {
      this.timerAt.push(host.clock.now());
      const b = new Uint8Array(12);
      new DataView(b.buffer).setUint32(0, this.sent++);
      host.send(to, b);
      host.schedule(host.clock.now() + 10, tick);
    };
    host.schedule(10, tick);
  }
  receive(from: NodeId, data: Uint8Array): void {
    this.got.push({ t: this.host.clock.now(), from, seq: unstamp(data).seq });
  }
}

function conservation(sim: Simulator): string | undefined {
  const s = sim.stats;
  return s.sent + s.duplicated === s.delivered + s.dropped + s.inFlight
    ? undefined
    : `sent ${s.sent} + dup ${s.duplicated} != delivered ${s.delivered} + dropped ${s.dropped} + inFlight ${s.inFlight}`;
}

describe("asymmetric link faults", () => {
  it("linkDown(a, b, false) cuts a → b only (in-flight packets on it are lost); linkUp(a, b, false) restores it", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 20 });
    sim.addNode(1, (h) => new Pinger(h, 2));
    sim.addNode(2, (h) => new Pinger(h, 1));
    sim.addInvariant("conservation", conservation);
    sim.run(25); // packets sent at 10 and 20 are in flight both ways
    sim.linkDown(1, 2, false);
    expect(sim.isLinkUp(1, 2)).toBe(false);
    expect(sim.isLinkUp(2, 1)).toBe(true);
    sim.run(100);
    const p1 = sim.program<Pinger>(1) as Pinger;
    const p2 = sim.program<Pinger>(2) as Pinger;
    // 2 → 1 kept working: everything sent at 10..80 arrived (20 ms later)
    expect(p1.got.map((g) => g.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // 1 → 2 lost its 2 in-flight packets and the 8 sent at 30..100
    expect(p2.got).toEqual([]);
    expect(sim.stats.drops.down).toBe(2 + 8);
    expect(sim.linkStats(1, 2)?.dropped).toBe(10);
    expect(sim.linkStats(2, 1)?.dropped).toBe(0);
    sim.linkUp(1, 2, false);
    sim.run(200); // sends at 110..180 arrive by 200
    expect(p2.got.map((g) => g.seq)).toEqual([10, 11, 12, 13, 14, 15, 16, 17]);
    expect(sim.trace().some((r) => r.kind === "linkDown" && r.info === 1)).toBe(true);
  });

  it("a one-way down needs the link in that direction; a two-way down needs either", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connectOneWay(1, 2, { delayMs: 1 });
    expect(() => sim.linkDown(2, 1, false)).toThrow(RangeError);
    expect(() => sim.linkUp(2, 1, false)).toThrow(RangeError);
    sim.linkDown(2, 1); // both ways: 1 → 2 exists
    expect(sim.isLinkUp(1, 2)).toBe(false);
  });

  it("loss 100 % in one direction only (setLink(..., false)), then healed", () => {
    const sim = new Simulator({ seed: 2 });
    sim.connect(1, 2, { delayMs: 5 });
    sim.addNode(1, (h) => new Pinger(h, 2));
    sim.addNode(2, (h) => new Pinger(h, 1));
    sim.run(50);
    sim.setLink(2, 1, { loss: 1 }, false);
    expect(sim.linkParams(1, 2)?.loss).toBeUndefined();
    const before1 = (sim.program<Pinger>(1) as Pinger).got.length;
    const before2 = (sim.program<Pinger>(2) as Pinger).got.length;
    sim.run(550);
    expect((sim.program<Pinger>(1) as Pinger).got.length - before1).toBeLessThanOrEqual(1); // one was in flight
    expect((sim.program<Pinger>(2) as Pinger).got.length - before2).toBeGreaterThanOrEqual(49);
    sim.setLink(2, 1, { loss: 0 }, false);
    sim.run(650);
    expect((sim.program<Pinger>(1) as Pinger).got.at(-1)?.t).toBeGreaterThan(600);
  });

  it("random one-way flaps are drawn from the seed, leave the reverse direction up, and are all repaired", () => {
    forEachSeed(20, (seed) => {
      const run = (): Simulator => {
        const sim = new Simulator({ seed });
        const ids = [1, 2, 3, 4];
        for (const id of ids)
          sim.addNode(
            id,
            (h) =>
              new Chatter(
                h,
                ids.filter((x) => x !== id),
              ),
          );
        sim.mesh(ids, { delayMs: 2 });
        let asymmetric = 0;
        sim.addInvariant("conservation", conservation);
        sim.addInvariant("one way", (s) => {
          for (const a of ids)
            for (const b of ids) if (a !== b && !s.isLinkUp(a, b) && s.isLinkUp(b, a)) asymmetric++;
          return undefined;
        });
        sim.randomFaults({ until: 900, meanIntervalMs: 30, meanDurationMs: 40, kinds: ["oneWayFlap"] });
        sim.run(1000);
        expect(asymmetric).toBeGreaterThan(0);
        for (const a of ids) for (const b of ids) if (a !== b) expect(sim.isLinkUp(a, b)).toBe(true);
        return sim;
      };
      const sim = run();
      expect(run().traceHash()).toBe(sim.traceHash());
      expect(sim.stats.drops.down).toBeGreaterThan(0);
    });
  });
});

describe("process stalls", () => {
  it("a stalled node runs nothing; its packets and timers queue and run in order at the resume time", () => {
    const sim = new Simulator({ seed: 3 });
    sim.connect(1, 2, { delayMs: 5 });
    sim.addNode(1, (h) => new Pinger(h, 2));
    sim.addNode(2, (h) => new Pinger(h, 1));
    sim.addInvariant("conservation", conservation);
    sim.run(100);
    const p2 = sim.program<Pinger>(2) as Pinger;
    const got = p2.got.length;
    const timers = p2.timerAt.length;
    sim.stall(2, 300);
    expect(sim.isStalled(2)).toBe(true);
    sim.run(399);
    expect(p2.got.length).toBe(got); // nothing handled while frozen
    expect(p2.timerAt.length).toBe(timers);
    expect(sim.stalledEvents(2)).toBe(30 + 1); // 30 packets (sent 100..390) + the timer due at 110
    sim.run(400);
    expect(sim.isStalled(2)).toBe(false);
    // the queued packets, in order, all at t = 400; the late timer too
    const late = p2.got.slice(got);
    expect(late.map((g) => g.seq)).toEqual(Array.from({ length: 30 }, (_, i) => got + i));
    expect(late.every((g) => g.t === 400)).toBe(true);
    expect(p2.timerAt[timers]).toBe(400);
    // node 2 sent nothing while stalled; node 1 saw a 300 ms gap
    sim.run(500);
    const p1 = sim.program<Pinger>(1) as Pinger;
    const ts = p1.got.map((g) => g.t);
    const gaps = ts.slice(1).map((t, i) => t - (ts[i] as number));
    expect(Math.max(...gaps)).toBeGreaterThanOrEqual(300);
    expect(sim.stats.dropped).toBe(0);
    expect(sim.trace().some((r) => r.kind === "stall")).toBe(true);
    expect(sim.trace().some((r) => r.kind === "resume")).toBe(true);
  });

  it("an event held by a stall keeps its order with events arriving exactly at the resume time", () => {
    const sim = new Simulator({ seed: 4 });
    sim.connect(1, 2, { delayMs: 10 });
    sim.addNode(2, (h) => new Recorder(h));
    sim.addNode(1, (h) => new Sender(h, 2, 50, 2)); // one packet every 2 ms from t=0
    sim.at(5, (s) => s.stall(2, 45)); // resumes at 50, when a packet is also due
    sim.run(200);
    const r = sim.program<Recorder>(2) as Recorder;
    expect(r.got.map((g) => unstamp(g.data).seq)).toEqual(Array.from({ length: 50 }, (_, i) => i));
  });

  it("the inbox of a stalled node is bounded: beyond stallQueuePackets, arrivals drop (cause queue)", () => {
    const sim = new Simulator({ seed: 5, stallQueuePackets: 10 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(2, (h) => new Recorder(h));
    sim.addNode(1, (h) => new Sender(h, 2, 100, 1, 12, 10));
    sim.addInvariant("conservation", conservation);
    sim.at(0, (s) => s.stall(2, 1000));
    sim.run(2000);
    expect((sim.program<Recorder>(2) as Recorder).got.length).toBe(10);
    expect(sim.stats.drops.queue).toBe(90);
  });

  it("stalling again extends the stall; a crash ends it and loses the queue; timers of the old life never run", () => {
    const sim = new Simulator({ seed: 6 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(1, (h) => new Pinger(h, 2));
    sim.addNode(2, (h) => new Pinger(h, 1));
    sim.addInvariant("conservation", conservation);
    sim.stall(2, 100);
    sim.run(50);
    sim.stall(2, 20); // ends at 70 < 100: no change
    sim.stall(2, 150); // now ends at 200
    sim.run(150);
    expect(sim.isStalled(2)).toBe(true);
    const queued = sim.stalledEvents(2);
    expect(queued).toBeGreaterThan(10);
    const old = sim.program<Pinger>(2) as Pinger;
    sim.crash(2);
    expect(sim.isStalled(2)).toBe(false);
    expect(sim.stalledEvents(2)).toBe(0);
    expect(sim.stats.drops.crashed).toBe(14); // packets sent at 10..140 were queued
    sim.run(300);
    expect(old.got).toEqual([]);
    expect(old.timerAt).toEqual([]);
    expect(() => sim.stall(2, 10)).toThrow(RangeError);
    sim.restart(2);
    sim.run(400);
    expect((sim.program<Pinger>(2) as Pinger).got.length).toBeGreaterThan(5);
  });

  it("random stalls: deterministic, FIFO links stay in order, nothing is lost but the queue overflow, all resumed", () => {
    forEachSeed(20, (seed) => {
      const run = (): Simulator => {
        const sim = new Simulator({ seed, stallQueuePackets: 200 });
        const ids = [1, 2, 3];
        for (const id of ids)
          sim.addNode(
            id,
            (h) =>
              new Chatter(
                h,
                ids.filter((x) => x !== id),
              ),
          );
        sim.mesh(ids, { delayMs: 3, jitterMs: 2 });
        let stalledSeen = 0;
        sim.addInvariant("conservation", conservation);
        sim.addInvariant("stall seen", (s) => {
          if (ids.some((id) => s.isStalled(id))) stalledSeen++;
          return undefined;
        });
        sim.randomFaults({ until: 2000, meanIntervalMs: 100, meanDurationMs: 300, kinds: ["stall"] });
        sim.run(2500);
        expect(stalledSeen).toBeGreaterThan(0);
        expect(ids.some((id) => sim.isStalled(id))).toBe(false);
        expect(sim.stats.dropped).toBe(sim.stats.drops.queue);
        return sim;
      };
      const sim = run();
      expect(run().traceHash()).toBe(sim.traceHash());
    });
    // FIFO through a stall, many seeds
    forEachSeed(50, (seed) => {
      const sim = new Simulator({ seed });
      sim.connect(1, 2, { delayMs: 4, jitterMs: 3 });
      sim.addNode(2, (h) => new Recorder(h));
      sim.addNode(1, (h) => new Sender(h, 2, 400, 1));
      sim.randomFaults({ nodes: [2], until: 380, meanIntervalMs: 60, meanDurationMs: 50, kinds: ["stall"] });
      sim.run(1000);
      const seqs = (sim.program<Recorder>(2) as Recorder).got.map((g) => unstamp(g.data).seq);
      expect(seqs).toEqual(Array.from({ length: 400 }, (_, i) => i));
    });
  });
});
