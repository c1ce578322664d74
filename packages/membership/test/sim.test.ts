import { forEachSeed, SimSeedError, Simulator } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import {
  type MembershipEvent,
  type MembershipNode,
  MembershipObserver,
  membershipFactory,
  profiles,
} from "../src/index.ts";
import { runScenario, type ScenarioOptions } from "./scenario.ts";

/**
 * Each seed is a short randomised run (a few virtual seconds); the observer is checked after every
 * simulator event, and liveness (one view of exactly the live members, nothing pending) within
 * `livenessBound(profile)` once faults stop. A failing seed is printed by forEachSeed
 * (SimSeedError); replay it with NETSIM_SEED=<seed> pnpm exec vitest run --project membership.
 */
function check(o: ScenarioOptions): number {
  const r = runScenario(o);
  if (r.obs.violation !== undefined) throw new Error(r.obs.violation);
  if (r.convergeMs === undefined)
    throw new Error(`no convergence within ${r.bound} ms after the faults stopped:\n${r.summary}`);
  expect(r.obs.counts.views).toBeGreaterThan(0);
  return r.convergeMs;
}

function sweep(count: number, make: (seed: number) => ScenarioOptions): number[] {
  const times: number[] = [];
  forEachSeed(count, (seed) => {
    times.push(check(make(seed)));
  });
  return times;
}

describe("membership in netsim (invariants after every event, liveness after faults)", () => {
  it("random crashes/restarts, link flaps and partitions with loss, reordering, duplication (1,000 seeds)", () => {
    const t = sweep(1000, (seed) => ({ seed, n: 3 + (seed % 4), kinds: ["crash", "linkFlap", "partition"] }));
    expect(t).toHaveLength(1000);
  });

  it("cascades: a second crash (often the new coordinator) during the view change (1,000 seeds)", () => {
    sweep(1000, (seed) => ({ seed: 100_000 + seed, n: 4 + (seed % 3), cascades: 2 }));
  });

  it("fast profile with cascades and partitions (1,000 seeds)", () => {
    sweep(1000, (seed) => ({
      seed: 200_000 + seed,
      n: 4 + (seed % 4),
      profile: "fast",
      cascades: 3,
      faultsUntil: 1500,
      kinds: ["crash", "partition"],
    }));
  });

  it("harsh links: 10% loss, 10% reordering, 5% duplication, frequent faults (300 seeds)", () => {
    sweep(300, (seed) => ({
      seed: 300_000 + seed,
      n: 3 + (seed % 5),
      loss: 0.1,
      reorder: 0.1,
      duplicate: 0.05,
      kinds: ["crash", "linkFlap", "partition"],
      meanFaultIntervalMs: 150,
      cascades: 1,
      rate: 300,
    }));
  });

  it("larger groups, 8-12 members (150 seeds)", () => {
    sweep(150, (seed) => ({
      seed: 400_000 + seed,
      n: 8 + (seed % 5),
      kinds: ["crash", "linkFlap", "partition"],
      cascades: 1,
      faultsUntil: 2000,
    }));
  });

  it("long pauses (SIGSTOP-like, 0.2-1.1 s) amid crashes and partitions: excluded, then rejoin cleanly (400 seeds)", () => {
    sweep(400, (seed) => ({
      seed: 600_000 + seed,
      n: 3 + (seed % 4),
      pauses: 3,
      pauseMs: 200 + (seed % 7) * 150,
      kinds: ["crash", "partition"],
      profile: seed % 2 ? "fast" : "default",
    }));
  });

  it("members busy for 100 ms are never excluded (default and fast profiles, 300 seeds)", () => {
    forEachSeed(300, (seed) => {
      const profile = seed % 2 === 0 ? "default" : "fast";
      const r = runScenario({
        seed: 500_000 + seed,
        n: 4,
        profile,
        pauses: 6,
        pauseMs: 100,
        loss: 0,
        reorder: 0,
        duplicate: 0,
      });
      if (r.obs.violation !== undefined) throw new Error(r.obs.violation);
      // the group forms once (at most a merge of early singletons) and then never changes
      for (const id of r.ids) {
        const c = r.sim.program<MembershipNode>(id)?.core;
        expect(c?.view?.members).toEqual(r.ids);
        expect(c?.stats.viewsInstalled).toBeLessThanOrEqual(2);
      }
    });
  });

  it("the observer catches violations (VS, total order, view agreement)", () => {
    const vid = (c: number) => ({ counter: c, coord: 1, coordInc: 1 });
    const view = (c: number, members: number[], me: number, prev: number): MembershipEvent => ({
      type: "view",
      view: {
        id: vid(c),
        key: `${c}.1.1`,
        members,
        incarnations: members.map(() => 1),
        myIndex: members.indexOf(me),
        transitional: members,
        previous: prev === 0 ? { counter: 0, coord: 0, coordInc: 0 } : vid(prev),
      },
    });
    const msg = (c: number, seq: number, sender: number, senderSeq: number): MembershipEvent => ({
      type: "message",
      message: { view: vid(c), seq, sender, senderSeq, payload: new Uint8Array() },
    });
    const trans: MembershipEvent = { type: "transitional", view: vid(1) };
    // a clean history passes
    const ok = new MembershipObserver();
    for (const id of [1, 2]) ok.record(id, 1, view(1, [1, 2], id, 0));
    for (const id of [1, 2]) ok.record(id, 1, msg(1, 1, 2, 1));
    for (const id of [1, 2]) ok.record(id, 1, trans);
    for (const id of [1, 2]) ok.record(id, 1, view(2, [1, 2], id, 1));
    expect(ok.violation).toBeUndefined();
    // virtual synchrony: 1 delivered a message in view 1 that 2 did not, both moved to view 2
    const vs = new MembershipObserver();
    for (const id of [1, 2]) vs.record(id, 1, view(1, [1, 2], id, 0));
    vs.record(1, 1, msg(1, 1, 2, 1));
    for (const id of [1, 2]) vs.record(id, 1, trans);
    for (const id of [1, 2]) vs.record(id, 1, view(2, [1, 2], id, 1));
    expect(vs.violation).toMatch(/virtual synchrony/);
    // total order: different first messages in the same view
    const to = new MembershipObserver();
    for (const id of [1, 2]) to.record(id, 1, view(1, [1, 2], id, 0));
    to.record(1, 1, msg(1, 1, 2, 1));
    to.record(2, 1, msg(1, 1, 1, 1));
    expect(to.violation).toMatch(/total order/);
    // view agreement: one id, two member lists
    const va = new MembershipObserver();
    va.record(1, 1, view(1, [1, 2], 1, 0));
    va.record(3, 1, view(1, [1, 3], 3, 0));
    expect(va.violation).toMatch(/view 1.1.1/);
  });

  it("a failing seed names itself and replays identically", () => {
    const hash = (seed: number) => runScenario({ seed, n: 4, kinds: ["crash", "partition"] }).sim.traceHash();
    expect(hash(42)).toBe(hash(42));
    expect(hash(42)).not.toBe(hash(43));
    let caught: unknown;
    try {
      forEachSeed(3, (seed) => {
        if (seed === 2) throw new Error("boom");
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SimSeedError);
    expect(String((caught as Error).message)).toContain("2");
  });
});

describe("membership scenarios", () => {
  function group(n: number, profile: "default" | "fast" = "default", seed = 1) {
    const sim = new Simulator({ seed });
    const obs = new MembershipObserver();
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    const views: { t: number; id: number; members: number[] }[] = [];
    for (const id of ids)
      sim.addNode(
        id,
        membershipFactory({ group: "g", peers: ids, profile }, (ev, node) => {
          obs.record(node.host.id, node.core.incarnation, ev);
          if (ev.type === "view") views.push({ t: sim.now, id: node.host.id, members: [...ev.view.members] });
        }),
      );
    sim.mesh(ids, { delayMs: 0.25, jitterMs: 0.05 });
    sim.addInvariant("membership", () => obs.violation);
    const node = (id: number) => sim.program<MembershipNode>(id) as MembershipNode;
    return { sim, obs, ids, views, node };
  }

  it("graceful leave and join need no timeout", () => {
    const { sim, ids, views, node } = group(5);
    sim.run(1000);
    for (const id of ids) expect(node(id).core.view?.members).toEqual(ids);
    const t0 = sim.now;
    node(3).leave();
    sim.runUntil(
      (s) =>
        [1, 2, 4, 5].every((id) => s.program<MembershipNode>(id)?.core.view?.members.join() === "1,2,4,5"),
      t0 + 1000,
    );
    const leaveMs = sim.now - t0;
    expect(leaveMs).toBeLessThan(profiles.default.failureTimeoutMs / 4);
    // a new process on node 3 joins
    sim.crash(3);
    sim.restart(3);
    const t1 = sim.now;
    sim.runUntil(
      (s) => ids.every((id) => s.program<MembershipNode>(id)?.core.view?.members.join() === "1,2,3,4,5"),
      t1 + 1000,
    );
    expect(sim.now - t1).toBeLessThan(profiles.default.failureTimeoutMs / 4);
    expect(views.length).toBeGreaterThan(0);
  });

  it("a crash is excluded after the failure timeout, not before", () => {
    for (const profile of ["default", "fast"] as const) {
      const { sim, node } = group(4, profile);
      sim.run(1000);
      const t0 = sim.now;
      sim.crash(2);
      sim.runUntil((s) => s.program<MembershipNode>(1)?.core.view?.members.join() === "1,3,4", t0 + 2000);
      const ms = sim.now - t0;
      expect(ms).toBeGreaterThanOrEqual(
        profiles[profile].failureTimeoutMs - profiles[profile].heartbeatIntervalMs,
      );
      expect(ms).toBeLessThanOrEqual(profiles[profile].failureTimeoutMs + 10);
      expect(node(1).core.view?.members).toEqual([1, 3, 4]);
    }
  });

  it("a partition gives each side its own view and a heal merges them", () => {
    const { sim, ids, node } = group(5);
    sim.run(800);
    sim.partition([
      [1, 2],
      [3, 4, 5],
    ]);
    sim.runFor(1000);
    expect(node(1).core.view?.members).toEqual([1, 2]);
    expect(node(2).core.view?.members).toEqual([1, 2]);
    for (const id of [3, 4, 5]) expect(node(id).core.view?.members).toEqual([3, 4, 5]);
    expect(node(1).core.view?.key).not.toBe(node(3).core.view?.key);
    sim.heal();
    sim.runFor(1000);
    const key = node(1).core.view?.key;
    for (const id of ids) {
      expect(node(id).core.view?.members).toEqual(ids);
      expect(node(id).core.view?.key).toBe(key);
    }
  });

  it("a member paused for 2 s (SIGSTOP) is excluded, then rejoins cleanly on resume", () => {
    const { sim, ids, node, obs } = group(4, "default", 7);
    sim.run(800);
    for (const id of ids) node(id).multicast(new Uint8Array([id]));
    node(2).pause();
    sim.runFor(2000);
    expect(node(1).core.view?.members).toEqual([1, 3, 4]);
    node(2).resume();
    sim.runFor(1000);
    for (const id of ids) expect(node(id).core.view?.members).toEqual(ids);
    expect(node(2).core.pendingCount).toBe(0);
    expect(obs.violation).toBeUndefined();
  });

  it("total order with self-delivery in a stable view", () => {
    const { sim, ids, node, obs } = group(4);
    sim.run(800);
    for (let i = 0; i < 50; i++) for (const id of ids) node(id).multicast(new Uint8Array([id, i]));
    sim.runFor(500);
    for (const id of ids) {
      expect(node(id).core.pendingCount).toBe(0);
      expect(node(id).core.stats.delivered).toBe(200);
      expect(obs.ownDelivered(id, node(id).core.incarnation)).toBe(50);
    }
    expect(obs.violation).toBeUndefined();
  });
});
