import type { Host, NodeId, NodeProgram } from "@spines-ts/primitives";
import { afterEach, describe, expect, it, vi } from "vitest";
import { forEachSeed, SimSeedError, Simulator } from "../src/index.ts";
import { Chatter, Recorder } from "./helpers.ts";

/** Counts its ticks in memory (state a crash must lose) and sends each tick to `to`. */
class Ticker implements NodeProgram {
  readonly host: Host;
  ticks = 0;
  readonly firstRandom: number;
  constructor(host: Host, to: NodeId | undefined) {
    this.host = host;
    this.firstRandom = host.rng.uint32();
    const tick = (): void => {
      this.ticks++;
      if (to !== undefined) host.send(to, new Uint8Array([this.ticks & 0xff]));
      host.schedule(host.clock.now() + 10, tick);
    };
    host.schedule(host.clock.now() + 10, tick);
  }
  receive(): void {}
}

describe("crash and restart", () => {
  it("a crash drops the program, its timers and packets to it; restart calls the factory again", () => {
    const sim = new Simulator({ seed: 3 });
    let built = 0;
    sim.connect(1, 2, { delayMs: 5 });
    sim.addNode(1, (h) => {
      built++;
      return new Ticker(h, 2);
    });
    sim.addNode(2, (h) => new Recorder(h));
    sim.run(100);
    const before = sim.program<Ticker>(1);
    expect(before?.ticks).toBe(10);
    const firstRandom = before?.firstRandom;

    sim.crash(2);
    sim.run(200); // node 1 keeps sending into the void
    expect(sim.isUp(2)).toBe(false);
    expect(sim.program(2)).toBeUndefined();
    expect(sim.stats.drops.crashed).toBe(10);

    sim.crash(1);
    sim.restart(2);
    const ticksAtCrash = before?.ticks;
    sim.run(300);
    expect(before?.ticks).toBe(ticksAtCrash); // the old incarnation's timers are dead
    // only the packet node 1 sent at t=200, just before it crashed, was still in flight
    expect(sim.program<Recorder>(2)?.got.map((g) => g.data[0])).toEqual([20]);

    sim.restart(1);
    expect(built).toBe(2);
    const after = sim.program<Ticker>(1);
    expect(after).not.toBe(before);
    expect(after?.ticks).toBe(0);
    expect(after?.firstRandom).not.toBe(firstRandom); // new incarnation, new random stream
    expect(sim.incarnation(1)).toBe(1);
    sim.run(355);
    expect(after?.ticks).toBe(5);
    expect(sim.program<Recorder>(2)?.got.map((g) => g.data[0])).toEqual([20, 1, 2, 3, 4, 5]);
  });

  it("a stale host from before a crash can neither send nor schedule", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 1 });
    let old: Host | undefined;
    sim.addNode(1, (h) => {
      old ??= h;
      return { receive() {} };
    });
    sim.addNode(2, (h) => new Recorder(h));
    sim.crash(1);
    sim.restart(1);
    let fired = false;
    old?.schedule(1, () => {
      fired = true;
    });
    old?.send(2, new Uint8Array(1));
    sim.run(10);
    expect(fired).toBe(false);
    expect(sim.stats.delivered).toBe(0);
    expect(sim.stats.drops.crashed).toBe(1);
  });
});

describe("link down/up and partitions", () => {
  it("link down drops both directions and the packets in flight; link up restores it", () => {
    const sim = new Simulator({ seed: 1 });
    sim.connect(1, 2, { delayMs: 20 });
    sim.addNode(1, (h) => new Ticker(h, 2));
    sim.addNode(2, (h) => new Ticker(h, 1));
    sim.run(25); // ticks at 10 and 20 are in flight (arrive at 30 and 40), per direction
    sim.linkDown(2, 1);
    expect(sim.isLinkUp(1, 2)).toBe(false);
    expect(sim.isLinkUp(2, 1)).toBe(false);
    sim.run(100); // in flight: 2 per direction lost at arrival; sends at 30..100: 8 per direction
    expect(sim.stats.drops.down).toBe(2 * 2 + 2 * 8);
    expect(sim.stats.delivered).toBe(0);
    sim.linkUp(1, 2);
    sim.run(200); // sends at 110..200, arriving up to 200: 110..180 -> 8 per direction
    expect(sim.stats.delivered).toBe(16);
    expect(sim.linkStats(1, 2)?.delivered).toBe(8);
  });

  it("a partition cuts traffic between groups only, until heal", () => {
    const sim = new Simulator({ seed: 1 });
    const ids = [1, 2, 3, 4, 5];
    sim.mesh(ids, { delayMs: 3 });
    const seen = new Map<number, Set<number>>();
    for (const id of ids) {
      seen.set(id, new Set());
      sim.addNode(id, (h) => {
        const tick = (): void => {
          for (const p of ids) if (p !== id) h.send(p, new Uint8Array(1));
          h.schedule(h.clock.now() + 10, tick);
        };
        h.schedule(1, tick);
        return { receive: (from: NodeId) => seen.get(id)?.add(from) };
      });
    }
    sim.run(100);
    sim.partition([
      [1, 2],
      [3, 4],
    ]); // 5 is cut off from everyone
    for (const s of seen.values()) s.clear();
    sim.run(200);
    expect([...(seen.get(1) ?? [])]).toEqual([2]);
    expect([...(seen.get(3) ?? [])]).toEqual([4]);
    expect(seen.get(5)?.size).toBe(0);
    expect(sim.stats.drops.partition).toBeGreaterThan(0);
    sim.heal();
    for (const s of seen.values()) s.clear();
    sim.run(300);
    for (const id of ids) expect(seen.get(id)?.size).toBe(4);
  });
});

describe("random faults", () => {
  function faulty(seed: number): Simulator {
    const sim = new Simulator({ seed });
    const ids = [1, 2, 3, 4, 5, 6];
    for (const id of ids)
      sim.addNode(
        id,
        (h) =>
          new Chatter(
            h,
            ids.filter((x) => x !== id),
          ),
      );
    sim.mesh(ids, { delayMs: 2, jitterMs: 1 });
    sim.randomFaults({ from: 0, until: 900, meanIntervalMs: 20, meanDurationMs: 50, maxCrashed: 2 });
    let maxDown = 0;
    sim.addInvariant("at most 2 crashed", (s) => {
      const down = ids.filter((id) => !s.isUp(id)).length;
      maxDown = Math.max(maxDown, down);
      return down <= 2 ? undefined : `${down} nodes down`;
    });
    sim.run(1000);
    expect(maxDown).toBeGreaterThan(0);
    return sim;
  }

  it("draws crashes, flaps and partitions from the seed and repairs them all by `until`", () => {
    forEachSeed(30, (seed) => {
      const sim = faulty(seed);
      const kinds = new Set(sim.trace().map((r) => r.kind));
      for (const k of ["crash", "restart", "linkDown", "linkUp", "partition", "heal"])
        expect(kinds).toContain(k);
      expect(sim.nodeIds().every((id) => sim.isUp(id))).toBe(true);
      expect(sim.partitioned).toBe(false);
      for (const a of sim.nodeIds())
        for (const b of sim.nodeIds()) if (a !== b) expect(sim.isLinkUp(a, b)).toBe(true);
      expect(faulty(seed).traceHash()).toBe(sim.traceHash());
    });
  });

  it("only draws the kinds asked for", () => {
    const sim = new Simulator({ seed: 9 });
    for (const id of [1, 2, 3]) sim.addNode(id, (h) => new Recorder(h));
    sim.mesh([1, 2, 3], { delayMs: 1 });
    sim.randomFaults({ until: 1000, meanIntervalMs: 10, kinds: ["linkFlap"] });
    sim.run(1000);
    const kinds = new Set(sim.trace().map((r) => r.kind));
    expect(kinds).toContain("linkDown");
    expect(kinds).not.toContain("crash");
    expect(kinds).not.toContain("partition");
  });
});

describe("forEachSeed", () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("rethrows the first failure naming the seed", () => {
    const seen: number[] = [];
    let err: unknown;
    try {
      forEachSeed(
        10,
        (seed) => {
          seen.push(seed);
          if (seed === 13) throw new Error("nope");
        },
        { startSeed: 10 },
      );
    } catch (e) {
      err = e;
    }
    expect(seen).toEqual([10, 11, 12, 13]);
    expect(err).toBeInstanceOf(SimSeedError);
    expect((err as SimSeedError).seed).toBe(13);
    expect((err as Error).message).toMatch(/seed 13.*nope/);
  });

  it("NETSIM_SEED replays one seed", () => {
    vi.stubEnv("NETSIM_SEED", "77");
    const seen: number[] = [];
    forEachSeed(100, (s) => {
      seen.push(s);
    });
    expect(seen).toEqual([77]);
  });
});
