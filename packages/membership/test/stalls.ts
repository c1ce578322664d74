/**
 * Whole-group stalls (heavy CPU load: every process descheduled for 0.3-1 s at about the same
 * time) in the simulator. Nobody crashes, so every view installed after the group formed is a
 * spurious change. `groupStalls` counts them; the test asserts on a short run, and
 * `tsx packages/membership/test/stalls.ts [minutes] [seeds]` prints the rate per 10 simulated
 * minutes for each profile (docs/membership.md §7).
 */
import { Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import {
  type MembershipNode,
  MembershipObserver,
  membershipFactory,
  type ProfileName,
} from "../src/index.ts";

export interface GroupStallOptions {
  seed: number;
  profile: ProfileName;
  n?: number;
  /** Simulated time after the group formed. */
  durationMs: number;
  /** Mean time between the ends of one stall and the start of the next (exponential). */
  meanGapMs?: number;
  stallMinMs?: number;
  stallMaxMs?: number;
  /** Each member starts and ends its stall up to this much later than the first one (uniform). */
  skewMs?: number;
}

export interface GroupStallResult {
  stalls: number;
  /** Distinct views installed after the group formed (every one is spurious: nobody failed). */
  spuriousViews: number;
  /** Exclusions: (member, view) pairs where a live member was left out of a view installed. */
  exclusions: number;
  violation: string | undefined;
  /** Every member in one view of all members at the end. */
  convergedAtEnd: boolean;
}

export function groupStalls(o: GroupStallOptions): GroupStallResult {
  const n = o.n ?? 8;
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const sim = new Simulator({ seed: o.seed, traceCapacity: 0 });
  const rng = new Rng((o.seed * 31 + 7) >>> 0);
  const obs = new MembershipObserver();
  const views = new Set<string>();
  let exclusions = 0;
  let formed = false;
  for (const id of ids)
    sim.addNode(
      id,
      membershipFactory({ group: "stalls", peers: ids, profile: o.profile }, (ev, node) => {
        obs.record(node.host.id, node.core.incarnation, ev);
        if (ev.type === "view" && formed && !views.has(ev.view.key)) {
          views.add(ev.view.key);
          exclusions += n - ev.view.members.length;
        }
      }),
    );
  sim.mesh(ids, { delayMs: 0.2, jitterMs: 0.1 });
  sim.addInvariant("membership", () => obs.violation);
  const full = (s: Simulator) =>
    ids.every((id) => s.program<MembershipNode>(id)?.core.view?.members.length === n);
  if (!sim.runUntil(full, 3000)) throw new Error(`seed ${o.seed}: the group did not form`);
  sim.runFor(500);
  formed = true;
  const start = sim.now;
  const end = start + o.durationMs;
  const min = o.stallMinMs ?? 300;
  const max = o.stallMaxMs ?? 1000;
  const skew = o.skewMs ?? 0;
  let stalls = 0;
  let t = start + rng.exponential(o.meanGapMs ?? 4000);
  while (t < end - max - skew) {
    const len = rng.uniform(min, max);
    stalls++;
    for (const id of ids) {
      const from = t + rng.uniform(0, skew);
      const to = t + len + rng.uniform(0, skew);
      sim.at(from, (s) => s.program<MembershipNode>(id)?.pause());
      sim.at(to, (s) => s.program<MembershipNode>(id)?.resume());
    }
    t += len + skew + rng.exponential(o.meanGapMs ?? 4000);
  }
  sim.run(end);
  const conv = sim.runUntil(full, end + 3000);
  return {
    stalls,
    spuriousViews: views.size,
    exclusions,
    violation: obs.violation,
    convergedAtEnd: conv,
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const minutes = Number(process.argv[2] ?? 10);
  const seeds = Number(process.argv[3] ?? 3);
  for (const profile of ["default", "fast"] as const) {
    for (const skew of (process.env.SKEWS ?? "0,20,50").split(",").map(Number)) {
      let views = 0;
      let excl = 0;
      let stalls = 0;
      for (let s = 1; s <= seeds; s++) {
        const r = groupStalls({ seed: s, profile, durationMs: minutes * 60_000, skewMs: skew });
        if (r.violation) throw new Error(`seed ${s}: ${r.violation}`);
        if (!r.convergedAtEnd) throw new Error(`seed ${s}: not converged`);
        views += r.spuriousViews;
        excl += r.exclusions;
        stalls += r.stalls;
      }
      const per10 = (x: number) => ((x / seeds) * 10) / minutes;
      console.log(
        `${profile.padEnd(7)} skew ${String(skew).padStart(2)} ms: ${per10(stalls).toFixed(0)} stalls, ${per10(views).toFixed(1)} spurious views, ${per10(excl).toFixed(1)} exclusions per 10 min (${seeds} seeds x ${minutes} min)`,
      );
    }
  }
}
