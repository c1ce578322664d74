/**
 * Randomised simulator scenarios for the membership protocol: a LAN mesh with loss, jitter,
 * reordering and duplication, steady multicast traffic, random crashes/restarts, link flaps and
 * partitions, scripted cascades (a second failure while the view change for the first is running)
 * and pauses. The `MembershipObserver` is checked after every event; after the faults stop the
 * run must converge: every live member in one view of exactly the live members, nothing pending.
 */
import { type FaultKind, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import {
  type MembershipNode,
  MembershipObserver,
  membershipFactory,
  type ProfileName,
  profiles,
} from "../src/index.ts";

export interface ScenarioOptions {
  seed: number;
  n?: number;
  profile?: ProfileName;
  /** Random faults between `faultsFrom` and `faultsUntil`. */
  kinds?: readonly FaultKind[];
  faultsFrom?: number;
  faultsUntil?: number;
  meanFaultIntervalMs?: number;
  /** Scripted cascades: a crash, then the likely new coordinator crashes during the view change. */
  cascades?: number;
  /** Short pauses (simulated GC stalls) of random members. */
  pauses?: number;
  pauseMs?: number;
  loss?: number;
  reorder?: number;
  duplicate?: number;
  /** Multicasts per second across the group. */
  rate?: number;
}

export interface ScenarioResult {
  sim: Simulator;
  obs: MembershipObserver;
  ids: number[];
  /** Virtual ms from the end of the faults to convergence, or undefined if the bound passed. */
  convergeMs: number | undefined;
  bound: number;
  summary: string;
}

/** The liveness bound, once faults stop: detect + the stated number of view-change rounds. */
export function livenessBound(profile: ProfileName): number {
  const t = profiles[profile];
  return 2 * t.failureTimeoutMs + 4 * t.viewChangeTimeoutMs + 3 * t.heartbeatIntervalMs;
}

export function converged(sim: Simulator, ids: readonly number[]): boolean {
  const up = ids.filter((id) => sim.isUp(id));
  const want = up.join(",");
  let key: string | undefined;
  for (const id of up) {
    const c = sim.program<MembershipNode>(id)?.core;
    if (c === undefined) return false;
    const v = c.view;
    if (v === undefined || c.blocked || c.pendingCount > 0) return false;
    if (v.members.join(",") !== want) return false;
    if (key === undefined) key = v.key;
    else if (key !== v.key) return false;
  }
  return true;
}

export function runScenario(o: ScenarioOptions): ScenarioResult {
  const n = o.n ?? 4;
  const profile = o.profile ?? "default";
  const t = profiles[profile];
  const sim = new Simulator({ seed: o.seed, traceCapacity: 64 });
  const rng = new Rng((o.seed * 7919 + 17) >>> 0);
  const obs = new MembershipObserver();
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const factory = membershipFactory({ group: "test", peers: ids, profile }, (ev, node) =>
    obs.record(node.host.id, node.core.incarnation, ev),
  );
  for (const id of ids) sim.addNode(id, factory);
  const lossy = {
    delayMs: 0.3,
    jitterMs: 0.2,
    loss: o.loss ?? 0.02,
    reorder: o.reorder ?? 0.02,
    reorderDelayMs: 2,
    duplicate: o.duplicate ?? 0.01,
  };
  sim.mesh(ids, lossy);
  sim.addInvariant("membership", () => obs.violation);

  const from = o.faultsFrom ?? 300;
  const until = o.faultsUntil ?? 2500;
  const rate = o.rate ?? 100;
  let msgNo = 0;
  const traffic = (): void => {
    const id = rng.pick(ids);
    const node = sim.program<MembershipNode>(id);
    // bursts, so that a sender has several messages in flight (exercises FIFO under reordering)
    const burst = rng.intBetween(1, 4);
    for (let i = 0; i < burst && node?.core.joined; i++) {
      node.multicast(new Uint8Array([id, msgNo & 0xff, (msgNo >> 8) & 0xff]));
      msgNo++;
    }
    const next = sim.now + rng.exponential(2500 / rate);
    if (next < until + 200) sim.at(next, traffic);
  };
  sim.at(100, traffic);
  if (o.kinds && o.kinds.length > 0)
    sim.randomFaults({
      from,
      until,
      meanIntervalMs: o.meanFaultIntervalMs ?? 400,
      kinds: o.kinds,
      meanDurationMs: 500,
    });
  const downUntil = new Map<number, number>();
  for (let c = 0; c < (o.cascades ?? 0); c++) {
    const at = rng.uniform(from, until - 3 * t.failureTimeoutMs);
    sim.at(at, (s) => {
      const up = ids.filter((id) => s.isUp(id));
      if (up.length < 3) return;
      const first = rng.pick(up);
      s.crash(first);
      downUntil.set(first, until);
      // the second failure lands while the view change for the first is in progress:
      // just after detection (proposal/flush) or a little later (install/sync)
      const second = at + t.failureTimeoutMs + rng.uniform(-t.heartbeatIntervalMs, 3 * t.retransmitMs);
      s.at(Math.max(s.now, second), (s2) => {
        const rest = ids.filter((id) => s2.isUp(id));
        if (rest.length < 2) return;
        const victim = rng.chance(0.7) ? (rest[0] as number) : rng.pick(rest);
        s2.crash(victim);
        s2.at(until, (s3) => {
          if (!s3.isUp(victim)) s3.restart(victim);
        });
      });
      s.at(until, (s3) => {
        if (!s3.isUp(first)) s3.restart(first);
      });
    });
  }
  for (let p = 0; p < (o.pauses ?? 0); p++) {
    const len = o.pauseMs ?? 100;
    const at = rng.uniform(from, Math.max(from, until - len)); // pauses are faults too: over by `until`
    const id = rng.pick(ids);
    sim.at(at, (s) => {
      const node = s.program<MembershipNode>(id);
      if (node === undefined) return;
      node.pause();
      s.after(len, () => node.resume());
    });
  }
  // faults stop at `until`: links become clean, every crashed node is back
  sim.at(until, (s) => {
    s.heal();
    for (const a of ids) for (const b of ids) if (a < b) s.setLink(a, b, { loss: 0, duplicate: 0 });
  });
  sim.at(until + 1, (s) => {
    for (const id of ids) if (!s.isUp(id)) s.restart(id);
  });
  sim.run(until + 1);
  const bound = livenessBound(profile);
  const ok = sim.runUntil((s) => converged(s, ids), until + bound);
  const convergeMs = ok ? sim.now - until : undefined;
  if (ok) {
    // nothing a live member multicast was lost
    for (const id of ids) {
      const c = sim.program<MembershipNode>(id)?.core;
      if (c === undefined) continue;
      const lost = obs.firstLost(id, c.incarnation, c.sentCount);
      if (lost !== undefined && obs.violation === undefined)
        obs.violation = `self-delivery: ${id}/${c.incarnation} multicast #${lost} was delivered nowhere`;
    }
  }
  const summary = ids
    .map((id) => JSON.stringify(sim.program<MembershipNode>(id)?.core.snapshot() ?? { id, down: true }))
    .join("\n");
  return { sim, obs, ids, convergeMs, bound, summary };
}
