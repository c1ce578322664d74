/**
 * Simulator scenarios for the VIP protocol running on the real membership core: a LAN mesh, random
 * crashes (with restarts), partitions and link flaps, scripted cascades (a second crash during the
 * exchange for the first), graceful leaves and joins. The exactly-once invariant is checked after
 * every simulator event at every completed exchange; after the faults stop, the run must converge
 * to one view in which every group is held exactly once.
 */
import { type FaultKind, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import {
  type BalanceMode,
  type VipConfig,
  type VipGroupInput,
  type VipNode,
  vipFactory,
} from "../../src/index.ts";

export interface VipScenarioOptions {
  seed: number;
  n?: number;
  groups?: number;
  kinds?: readonly FaultKind[];
  faultsUntil?: number;
  cascades?: number;
  /** Graceful leaves followed by a rejoin. */
  leaves?: number;
  balance?: BalanceMode;
  matureMs?: number;
  holdOffMs?: number;
  /** Members prefer some groups. */
  preferences?: boolean;
  /** Run the state exchange in every view (the protocol before removal-only views carried the table over). */
  exchangeEveryView?: boolean;
  /** Replace the allocation at member `id` (to check that the invariant catches a broken one). */
  allocatorFor?: (id: number) => NonNullable<VipConfig["allocator"]>;
}

export interface VipScenarioResult {
  sim: Simulator;
  ids: number[];
  /** Completed exchanges at which the invariant was checked (must be > 0 for the test to mean anything). */
  checks: number;
  converged: boolean;
  violation: string | undefined;
  /** Tables computed at a view's installation from the previous one (removal-only views), at any member. */
  carried: number;
}

export function makeGroups(g: number): VipGroupInput[] {
  return Array.from({ length: g }, (_, i) => ({
    name: `g${i}`,
    addresses:
      i % 3 === 2
        ? [`eth0 10.0.${i}.1/32`, `eth1 fd00::${(i + 1).toString(16)}/128`]
        : [`eth0 10.0.${i}.1/32`],
  }));
}

/**
 * Exactly-once at completed exchanges: for every view that all its members have installed, whose
 * exchange all of them completed, and at which all of them have processed the same prefix of the
 * view's total order, every group is held by exactly one of them, their agreed tables are equal and
 * each member holds exactly the groups its table gives it. Returns a violation or undefined, and
 * counts the checks.
 */
export function checkExactlyOnce(
  sim: Simulator,
  ids: readonly number[],
  groups: number,
  count: { n: number },
): string | undefined {
  const byView = new Map<string, VipNode[]>();
  for (const id of ids) {
    const node = sim.program<VipNode>(id);
    if (node === undefined) continue;
    const v = node.membership.core.view;
    if (v === undefined || node.core.phase !== "run") continue;
    const list = byView.get(v.key);
    if (list === undefined) byView.set(v.key, [node]);
    else list.push(node);
  }
  for (const [key, nodes] of byView) {
    const first = nodes[0] as VipNode;
    const view = first.membership.core.view;
    if (view === undefined || nodes.length !== view.members.length) continue;
    const at = first.core.delivered;
    if (nodes.some((x) => x.core.delivered !== at)) continue;
    count.n++;
    const t0 = first.core.table;
    if (t0 === undefined) return `view ${key}: ${first.host.id} in run without a table`;
    const holders = new Array<number>(groups).fill(0);
    for (const x of nodes) {
      const t = x.core.table;
      if (t === undefined) return `view ${key}: ${x.host.id} in run without a table`;
      const me = view.members.indexOf(x.host.id);
      for (let g = 0; g < groups; g++) {
        if (t.owner[g] !== t0.owner[g])
          return `view ${key}: tables differ at group ${g}: ${t0.owner[g]} at ${first.host.id}, ${t.owner[g]} at ${x.host.id}`;
        const holds = x.core.held.has(g);
        if (holds !== (t.owner[g] === me))
          return `view ${key}: ${x.host.id} holds=${holds} group ${g}, its table says owner ${t.owner[g]}`;
        if (holds) holders[g] = (holders[g] as number) + 1;
      }
    }
    for (let g = 0; g < groups; g++) {
      const h = holders[g] as number;
      if (t0.mature && h !== 1)
        return `view ${key} (members ${view.members.join(",")}): group ${g} held ${h} times`;
      if (!t0.mature && h !== 0) return `view ${key}: immature view but group ${g} held ${h} times`;
    }
  }
  return undefined;
}

export function runVipScenario(o: VipScenarioOptions): VipScenarioResult {
  const n = o.n ?? 4;
  const G = o.groups ?? 6;
  const sim = new Simulator({ seed: o.seed, traceCapacity: 0 });
  const rng = new Rng((o.seed * 7919 + 23) >>> 0);
  const ids = Array.from({ length: n }, (_, i) => i + 1);
  const groups = makeGroups(G);
  const until = o.faultsUntil ?? 2000;
  let carried = 0;
  for (const id of ids) {
    const prefer = o.preferences && id <= G ? [`g${(id * 2) % G}`] : [];
    sim.addNode(
      id,
      vipFactory({
        vip: {
          groups,
          prefer,
          matureMs: o.matureMs ?? 200,
          holdOffMs: o.holdOffMs ?? 400,
          balance: o.balance ?? { mode: "periodic", intervalMs: 150, movesPerRound: 1 },
          neighborShareMs: 0,
          ...(o.exchangeEveryView ? { exchangeEveryView: true } : {}),
          ...(o.allocatorFor ? { allocator: o.allocatorFor(id) } : {}),
        },
        membership: { group: "vip", peers: ids },
        onEvent: (ev) => {
          if (ev.type === "allocated" && ev.carried) carried++;
        },
      }),
    );
  }
  sim.mesh(ids, { delayMs: 0.3, jitterMs: 0.2, loss: 0.01, reorder: 0.01, reorderDelayMs: 2 });
  const count = { n: 0 };
  let violation: string | undefined;
  sim.addInvariant("vip exactly-once", (s) => {
    const v = checkExactlyOnce(s, ids, G, count);
    if (v !== undefined && violation === undefined) violation = v;
    return v;
  });
  if (o.kinds && o.kinds.length > 0)
    sim.randomFaults({ from: 300, until, meanIntervalMs: 350, kinds: o.kinds, meanDurationMs: 400 });
  for (let c = 0; c < (o.cascades ?? 0); c++) {
    // a crash, then a second one while the survivors run the exchange for the first
    const at = rng.uniform(300, until - 800);
    sim.at(at, (s) => {
      const up = ids.filter((id) => s.isUp(id));
      if (up.length < 3) return;
      const first = rng.pick(up);
      s.crash(first);
      s.at(at + 350 + rng.uniform(-20, 40), (s2) => {
        const rest = ids.filter((id) => s2.isUp(id));
        if (rest.length < 2) return;
        const victim = rng.pick(rest);
        s2.crash(victim);
      });
    });
  }
  for (let l = 0; l < (o.leaves ?? 0); l++) {
    const at = rng.uniform(300, until - 400);
    const id = rng.pick(ids);
    sim.at(at, (s) => {
      const node = s.program<VipNode>(id);
      if (node === undefined || node.core.phase === "failed") return;
      node.fail();
      s.after(rng.uniform(50, 400), () => {
        if (s.program<VipNode>(id) === node) node.rejoin();
      });
    });
  }
  sim.at(until, (s) => {
    s.heal();
    for (const a of ids) for (const b of ids) if (a < b) s.setLink(a, b, { loss: 0, reorder: 0 });
  });
  sim.at(until + 1, (s) => {
    for (const id of ids) if (!s.isUp(id)) s.restart(id);
  });
  sim.run(until + 1);
  const converged = sim.runUntil((s) => {
    const nodes = ids.map((id) => s.program<VipNode>(id));
    if (nodes.some((x) => x === undefined || x.core.phase !== "run")) return false;
    const key = nodes[0]?.membership.core.view?.key;
    if (
      nodes.some((x) => x?.membership.core.view?.key !== key || x?.membership.core.view?.members.length !== n)
    )
      return false;
    const snaps = nodes.map((x) => x?.core.snapshot());
    if (!snaps.every((x) => x?.mature && x.delivered === snaps[0]?.delivered)) return false;
    const held = snaps.flatMap((x) => x?.held ?? []).sort((a, b) => a - b);
    return held.length === G && held.every((g, i) => g === i);
  }, until + 4000);
  return { sim, ids, checks: count.n, converged, violation, carried };
}
