import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import {
  type MembershipNode,
  MembershipObserver,
  membershipFactory,
  type ProfileName,
} from "../src/index.ts";

/**
 * Returning members must merge into the established view, never split it: no member may install a
 * view that lacks a member of its established view that is still running.
 *
 * - "restart": a member crashes, the view settles, it restarts (a new incarnation, no view). It is
 *   the coordinator (lowest id) in most seeds, any other member in the rest.
 * - "heal": a partition into [1..k] and [k+1..8] (k = 1..4) settles into two views, then heals:
 *   each side must go straight to the merged view.
 *
 * Links have jitter and, in a third of the seeds, 1% loss.
 */
function noSplit(seed: number, profile: ProfileName, kind: "restart" | "heal"): void {
  const n = 8;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const sim = new Simulator({ seed, traceCapacity: 64 });
  const rng = new Rng((seed * 7919 + 3) >>> 0);
  const obs = new MembershipObserver();
  /** Per member: the members of the view it installed last, once the group has settled. */
  const established = new Map<number, number[]>();
  let violation: string | undefined;
  let watching = false;
  for (const id of ids)
    sim.addNode(
      id,
      membershipFactory({ group: "rejoin", peers: ids, profile }, (ev, node) => {
        obs.record(node.host.id, node.core.incarnation, ev);
        if (ev.type !== "view" || !watching) return;
        const me = node.host.id;
        const before = established.get(me);
        if (before === undefined) return; // the restarted member itself
        const missing = before.filter((m) => sim.isUp(m) && !ev.view.members.includes(m));
        if (missing.length > 0 && violation === undefined)
          violation = `member ${me} left its view [${before}] for [${ev.view.members}] at ${sim.now.toFixed(1)} ms: split off ${missing} although they run`;
        established.set(me, [...ev.view.members]);
      }),
    );
  const loss = seed % 3 === 0 ? 0.01 : 0;
  sim.mesh(ids, { delayMs: 0.25, jitterMs: 0.15, loss });
  sim.addInvariant("membership", () => obs.violation ?? violation);
  const view = (id: number) => sim.program<MembershipNode>(id)?.core.view?.members.join(",");
  const all = (want: number[]) => (s: Simulator) =>
    want.every((id) => s.program<MembershipNode>(id)?.core.view?.members.join(",") === want.join(","));
  expect(sim.runUntil(all(ids), 3000)).toBe(true);
  sim.runFor(rng.uniform(0, 200));
  if (kind === "restart") {
    const victim = rng.chance(0.6) ? 1 : rng.intBetween(2, n);
    const rest = ids.filter((id) => id !== victim);
    sim.crash(victim);
    expect(sim.runUntil(all(rest), sim.now + 3000)).toBe(true);
    sim.runFor(rng.uniform(50, 400));
    for (const id of rest) established.set(id, (view(id) ?? "").split(",").map(Number));
    watching = true;
    sim.restart(victim);
  } else {
    const k = rng.intBetween(1, 4);
    const sides = [ids.slice(0, k), ids.slice(k)];
    sim.partition(sides);
    expect(sim.runUntil((s) => sides.every((side) => all(side)(s)), sim.now + 3000)).toBe(true);
    sim.runFor(rng.uniform(50, 400));
    for (const id of ids) established.set(id, (view(id) ?? "").split(",").map(Number));
    watching = true;
    sim.heal();
  }
  const merged = sim.runUntil(all(ids), sim.now + 3000);
  sim.runFor(300);
  if (violation !== undefined) throw new Error(violation);
  if (obs.violation !== undefined) throw new Error(obs.violation);
  expect(merged).toBe(true);
}

describe("a returning member merges into the established view", () => {
  it("8 members, the coordinator (or another member) crashes and restarts: no survivor splits off (default, 300 seeds)", () => {
    forEachSeed(300, (seed) => noSplit(700_000 + seed, "default", "restart"));
  });

  it("the same with the fast profile (300 seeds)", () => {
    forEachSeed(300, (seed) => noSplit(710_000 + seed, "fast", "restart"));
  });

  it("a healed partition goes straight to the merged view on both sides (default and fast, 300 seeds)", () => {
    forEachSeed(300, (seed) => noSplit(720_000 + seed, seed % 2 ? "fast" : "default", "heal"));
  });
});
