import type { Host, NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { SimEventError, SimInvariantError, Simulator } from "../src/index.ts";
import { Chatter, Recorder, Sender } from "./helpers.ts";

function chatterRun(seed: number, until = 500): Simulator {
  const sim = new Simulator({ seed });
  const ids = [1, 2, 3, 4, 5];
  for (const id of ids)
    sim.addNode(
      id,
      (h) =>
        new Chatter(
          h,
          ids.filter((x) => x !== id),
        ),
    );
  sim.mesh(ids, { delayMs: 3, jitterMs: 2, loss: 0.05, reorder: 0.05, duplicate: 0.02 });
  sim.randomFaults({ from: 50, until: 450, meanIntervalMs: 40 });
  sim.run(until);
  return sim;
}

describe("determinism", () => {
  it("same seed gives the same trace hash and stats; different seeds differ", () => {
    const hashes = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) {
      const a = chatterRun(seed);
      const b = chatterRun(seed);
      expect(a.traceHash()).toBe(b.traceHash());
      expect(a.stats).toEqual(b.stats);
      expect(a.stats.delivered).toBeGreaterThan(100);
      hashes.add(a.traceHash());
    }
    expect(hashes.size).toBe(20);
  });

  it("the hash covers every event: running longer changes it", () => {
    const a = chatterRun(7, 400);
    const b = chatterRun(7, 500);
    expect(a.traceHash()).not.toBe(b.traceHash());
  });

  it("events at the same time run in insertion order", () => {
    const sim = new Simulator({ seed: 1 });
    const order: number[] = [];
    for (let i = 0; i < 10; i++) sim.at(5, () => order.push(i));
    sim.at(1, () => order.push(-1));
    sim.run(10);
    expect(order).toEqual([-1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(sim.now).toBe(10);
  });
});

describe("nodes, links and timers", () => {
  it("delivers after the link delay with the right sender", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 10 });
    sim.addNode(1, (h) => new Sender(h, 2, 3, 1));
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(100);
    const got = sim.program<Recorder>(2)?.got ?? [];
    expect(got.map((g) => g.t)).toEqual([10, 11, 12]);
    expect(got.every((g) => g.from === 1)).toBe(true);
    expect(sim.stats.sent).toBe(3);
    expect(sim.stats.delivered).toBe(3);
  });

  it("drops packets to nodes without a link (noLink) and over-MTU packets (mtu)", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 1, mtu: 100 });
    sim.addNode(1, (h) => ({
      receive() {},
      _: h.schedule(0, () => {
        h.send(3, new Uint8Array(10));
        h.send(2, new Uint8Array(101));
        h.send(2, new Uint8Array(100));
      }),
    }));
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(10);
    expect(sim.stats.drops.noLink).toBe(1);
    expect(sim.stats.drops.mtu).toBe(1);
    expect(sim.stats.delivered).toBe(1);
    expect(sim.stats.dropped).toBe(2);
  });

  it("copies packets at send time, so a sender may reuse its buffer", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(1, (h) => {
      const buf = new Uint8Array(1);
      h.schedule(0, () => {
        buf[0] = 7;
        h.send(2, buf);
        buf[0] = 9;
      });
      return { receive() {} };
    });
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(5);
    expect(sim.program<Recorder>(2)?.got[0]?.data[0]).toBe(7);
  });

  it("cancelled timers do not fire; past deadlines fire now", () => {
    const sim = new Simulator({ seed: 1 });
    const fired: string[] = [];
    sim.addNode(1, (h) => {
      const c = h.schedule(5, () => fired.push("cancelled"));
      h.schedule(3, () => {
        c();
        c();
        h.schedule(-10, () => fired.push(`past@${h.clock.now()}`));
      });
      return { receive() {} };
    });
    sim.run(20);
    expect(fired).toEqual(["past@3"]);
  });

  it("bounds the event queue with a clear error", () => {
    const sim = new Simulator({ seed: 5, maxEvents: 100 });
    const flood = (h: Host): NodeProgram => {
      for (let i = 0; i < 101; i++) h.schedule(i, () => {});
      return { receive() {} };
    };
    expect(() => sim.addNode(1, flood)).toThrow(/event queue.*seed 5.*limit 100/);
  });

  it("many cancelled timers are compacted away", () => {
    const sim = new Simulator({ seed: 1, maxEvents: 10_000 });
    let fired = 0;
    sim.addNode(1, (h) => {
      let cancel = h.schedule(1e9, () => {});
      const tick = (): void => {
        cancel();
        cancel = h.schedule(h.clock.now() + 1000, () => fired++);
        h.schedule(h.clock.now() + 0.01, tick);
      };
      h.schedule(0, tick);
      return { receive() {} };
    });
    sim.run(500); // 50,000 re-armed timers, never more than ~10,000 pending
    expect(fired).toBe(0);
    expect(sim.pending).toBeLessThan(10_000);
  });

  it("validates arguments", () => {
    const sim = new Simulator({ seed: 1 });
    expect(() => new Simulator({ seed: 1.5 })).toThrow(RangeError);
    expect(() => sim.connect(1, 1, { delayMs: 1 })).toThrow(RangeError);
    expect(() => sim.connect(1, 2, { delayMs: -1 })).toThrow(RangeError);
    expect(() => sim.connect(1, 2, { delayMs: 1, loss: 2 })).toThrow(RangeError);
    sim.connect(1, 2, { delayMs: 1 });
    expect(() => sim.connect(1, 2, { delayMs: 1 })).toThrow(/setLink/);
    expect(() => sim.crash(9)).toThrow(RangeError);
    expect(() => sim.at(-1, () => {})).toThrow(RangeError);
    sim.addNode(1, (h) => new Recorder(h));
    expect(() => sim.addNode(1, (h) => new Recorder(h))).toThrow(/already exists/);
    expect(() => sim.restart(1)).toThrow(/is up/);
    expect(() => sim.partition([[1], [1]])).toThrow(/two groups/);
  });
});

describe("errors carry the seed", () => {
  it("an invariant violation throws SimInvariantError naming the seed and how to replay", () => {
    const sim = new Simulator({ seed: 4242 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(1, (h) => new Sender(h, 2, 10, 1));
    sim.addNode(2, (h) => new Recorder(h));
    sim.addInvariant("fewer than 5 deliveries", (s) =>
      s.stats.delivered < 5 ? undefined : `delivered ${s.stats.delivered}`,
    );
    let err: unknown;
    try {
      sim.run(100);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SimInvariantError);
    const e = err as SimInvariantError;
    expect(e.seed).toBe(4242);
    expect(e.invariant).toBe("fewer than 5 deliveries");
    expect(e.time).toBe(5);
    expect(e.code).toBe("ERR_SIM_INVARIANT");
    expect(e.message).toMatch(/seed 4242/);
    expect(e.message).toMatch(/replay/);
    expect(e.trace.length).toBeGreaterThan(0);
  });

  it("a program that throws is reported with the seed, the node and the cause", () => {
    const sim = new Simulator({ seed: 77 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(1, (h) => new Sender(h, 2, 1, 1));
    const boom: NodeProgram = {
      receive() {
        throw new Error("boom");
      },
    };
    sim.addNode(2, (_h: Host) => boom);
    expect(() => sim.run(10)).toThrow(SimEventError);
    const sim2 = new Simulator({ seed: 77 });
    sim2.at(1, () => {
      throw new Error("bad script");
    });
    expect(() => sim2.run(10)).toThrow(/scripted action threw at t=1 ms, seed 77: Error: bad script/);
    const sim3 = new Simulator({ seed: 78 });
    sim3.addInvariant("throws", () => {
      throw new TypeError("oops");
    });
    sim3.at(2, () => {});
    expect(() => sim3.run(10)).toThrow(/invariant "throws" threw at t=2 ms, seed 78: TypeError: oops/);
  });
});
