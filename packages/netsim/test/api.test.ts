import type { NodeProgram } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { Simulator } from "../src/index.ts";
import { Recorder, Sender, unstamp } from "./helpers.ts";

describe("random streams", () => {
  it("adding a node does not perturb other nodes' or links' random streams", () => {
    const run = (extra: boolean): { got: string; first: number[] } => {
      const sim = new Simulator({ seed: 99 });
      const first: number[] = [];
      sim.connect(1, 2, { delayMs: 5, jitterMs: 3, loss: 0.2, duplicate: 0.1 });
      if (extra) {
        sim.connect(1, 3, { delayMs: 1, loss: 0.5 });
        sim.addNode(3, (h) => {
          h.rng.uint32();
          return new Sender(h, 1, 50, 1);
        });
      }
      sim.addNode(1, (h) => {
        first.push(h.rng.uint32(), h.rng.uint32());
        if (extra) h.schedule(0, () => h.send(3, new Uint8Array(4)));
        return new Sender(h, 2, 200, 1);
      });
      sim.addNode(2, (h) => new Recorder(h));
      sim.run(1000);
      const got = (sim.program<Recorder>(2)?.got ?? []).map((g) => `${g.t}:${unstamp(g.data).seq}`).join(",");
      return { got, first };
    };
    const a = run(false);
    const b = run(true);
    expect(a.got.length).toBeGreaterThan(100);
    expect(b.got).toBe(a.got);
    expect(b.first).toEqual(a.first);
  });

  it("different nodes and different seeds get different streams", () => {
    const firsts: number[] = [];
    for (const seed of [1, 2]) {
      const sim = new Simulator({ seed });
      for (const id of [1, 2])
        sim.addNode(id, (h) => {
          firsts.push(h.rng.uint32());
          return { receive() {} };
        });
    }
    expect(new Set(firsts).size).toBe(4);
  });
});

describe("trace", () => {
  it("keeps the last traceCapacity records, oldest first, and hashes all of them", () => {
    const sim = new Simulator({ seed: 1, traceCapacity: 5 });
    sim.connect(1, 2, { delayMs: 1 });
    sim.addNode(1, (h) => new Sender(h, 2, 10, 1));
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(100);
    const t = sim.trace();
    expect(t.length).toBe(5);
    expect(t.map((r) => r.kind)).toEqual(["send", "deliver", "timer", "send", "deliver"]);
    expect(t[4]).toEqual({ time: 10, kind: "deliver", node: 2, peer: 1, info: 12 });
    expect(sim.trace(2).length).toBe(2);
    const off = new Simulator({ seed: 1, traceCapacity: 0 });
    off.connect(1, 2, { delayMs: 1 });
    off.addNode(1, (h) => new Sender(h, 2, 10, 1));
    off.addNode(2, (h) => new Recorder(h));
    off.run(100);
    expect(off.trace()).toEqual([]);
    expect(off.traceHash()).toBe(sim.traceHash());
  });

  it("drops are recorded with their cause", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 1, loss: 1 });
    sim.addNode(1, (h) => new Sender(h, 2, 1, 1));
    sim.run(10);
    expect(sim.trace().find((r) => r.kind === "drop")?.info).toBe("loss");
  });
});

describe("running", () => {
  it("step runs one live event; runUntil stops when the condition holds", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 2 });
    sim.addNode(1, (h) => new Sender(h, 2, 100, 1));
    sim.addNode(2, (h) => new Recorder(h));
    expect(sim.step()).toBe(true); // first send at t=0
    expect(sim.now).toBe(0);
    expect(sim.stats.sent).toBe(1);
    const got = (): number => sim.program<Recorder>(2)?.got.length ?? 0;
    expect(sim.runUntil(() => got() === 10, 1000)).toBe(true);
    expect(sim.now).toBe(11);
    expect(sim.runUntil(() => got() === 1000, 50)).toBe(false);
    expect(sim.now).toBe(50);
    const empty = new Simulator({ seed: 1 });
    expect(empty.step()).toBe(false);
  });

  it("run refuses to go back in time and to nest", () => {
    const sim = new Simulator({ seed: 1 });
    sim.run(10);
    expect(() => sim.run(5)).toThrow(RangeError);
    sim.at(20, (s) => s.run(30));
    expect(() => sim.run(40)).toThrow(/already running/);
  });

  it("schedule(Infinity) never fires and holds no slot", () => {
    const sim = new Simulator({ seed: 1 });
    let fired = false;
    sim.addNode(1, (h) => {
      h.schedule(Number.POSITIVE_INFINITY, () => {
        fired = true;
      });
      return { receive() {} };
    });
    expect(sim.pending).toBe(0);
    sim.run();
    expect(fired).toBe(false);
  });
});

describe("changing links and programs", () => {
  it("setLink changes only the given fields, from now on", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 5, mtu: 1000 });
    sim.addNode(1, (h) => new Sender(h, 2, 20, 10));
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(95);
    sim.setLink(1, 2, { delayMs: 1 });
    expect(sim.linkParams(1, 2)).toEqual({ delayMs: 1, mtu: 1000 });
    expect(sim.linkParams(2, 1)).toEqual({ delayMs: 1, mtu: 1000 });
    sim.run(300);
    const delays = (sim.program<Recorder>(2)?.got ?? []).map((g) => g.t - unstamp(g.data).t);
    expect(delays).toEqual([...new Array<number>(10).fill(5), ...new Array<number>(10).fill(1)]);
    sim.setLink(3, 4, { delayMs: 2 }, false);
    expect(sim.hasLink(3, 4)).toBe(true);
    expect(sim.hasLink(4, 3)).toBe(false);
  });

  it("a partition loses the packets in flight across the cut", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 50 });
    sim.addNode(1, (h) => new Sender(h, 2, 10, 1));
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(20);
    sim.partition([[1], [2]]);
    sim.run(30);
    sim.heal();
    sim.run(200);
    expect(sim.stats.drops.partition).toBe(10);
    expect(sim.stats.delivered).toBe(0);
  });

  it("restart may install a new program", () => {
    const sim = new Simulator({ seed: 1 });
    const v1: NodeProgram = { receive() {} };
    const v2: NodeProgram = { receive() {} };
    sim.addNode(1, () => v1);
    sim.crash(1);
    sim.restart(1, () => v2);
    expect(sim.program(1)).toBe(v2);
    sim.crash(1);
    sim.restart(1);
    expect(sim.program(1)).toBe(v2);
  });
});
