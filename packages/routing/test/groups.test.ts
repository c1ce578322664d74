/**
 * Done-when for issue 4, groups (netsim, many seeds): with the topology stable, every member of a
 * multicast group receives each packet exactly once (and non-members none), following trees rooted
 * at the source; anycast packets reach exactly one member, the nearest one. Membership changes
 * are flooded and the property holds again once they have spread.
 */
import { forEachSeed } from "@spines-ts/netsim";
import { type Datagram, DestKind } from "@spines-ts/wire";
import { describe, expect, it } from "vitest";
import {
  addBoundsInvariant,
  buildNet,
  fullCheck,
  liveAdjacency,
  type Net,
  randomTopology,
  runToQuiescence,
  scenarioRng,
} from "./helpers/scenario.ts";

const G1 = 0xe0000001;
const G2 = 0xe0000002;

/** Hop distances from `src` in the live network (ties to the nearest member go to the smaller id). */
function hops(net: Net, src: number): Map<number, number> {
  const adj = liveAdjacency(net);
  const d = new Map<number, number>([[src, 0]]);
  const q = [src];
  for (let i = 0; i < q.length; i++) {
    const u = q[i] as number;
    for (const v of adj.get(u) ?? []) {
      if (!d.has(v)) {
        d.set(v, (d.get(u) as number) + 1);
        q.push(v);
      }
    }
  }
  return d;
}

function payload(src: number, seq: number): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, src);
  dv.setUint32(4, seq);
  return b;
}

function packetId(d: Datagram): string {
  const dv = new DataView(d.payload.buffer, d.payload.byteOffset, d.payload.byteLength);
  return `${d.header.dst}:${dv.getUint32(0)}:${dv.getUint32(4)}`;
}

describe("routing in netsim: multicast and anycast", () => {
  it("every member receives each multicast packet exactly once; anycast reaches the nearest member (100 seeds)", () => {
    let packets = 0;
    forEachSeed(
      100,
      (seed) => {
        const rng = scenarioRng(seed);
        const n = 5 + (seed % 36);
        const topo = randomTopology(rng, n, rng.uniform(0, 1.2), [1, 10]);
        const members = new Map<number, Set<number>>([
          [G1, new Set(topo.ids.filter(() => rng.chance(0.35)))],
          [G2, new Set(topo.ids.filter(() => rng.chance(0.15)))],
        ]);
        const got = new Map<string, number>(); // `${node}|${packetId}` -> copies
        const net = buildNet(seed, topo, {
          groups: [],
          onDeliver: (node, d) => {
            const k = `${node}|${packetId(d)}`;
            got.set(k, (got.get(k) ?? 0) + 1);
          },
        });
        addBoundsInvariant(net);
        expect(runToQuiescence(net, 3_000)).toBeDefined();
        for (const [g, set] of members) for (const id of set) net.node(id)?.join(g);
        expect(runToQuiescence(net, net.sim.now + 2_000)).toBeDefined();
        expect(fullCheck(net)).toBeUndefined();

        const round = (label: string): void => {
          got.clear();
          const sent: { g: number; src: number; seq: number; kind: 1 | 2 }[] = [];
          let seq = 0;
          for (const src of topo.ids) {
            for (const g of [G1, G2]) {
              for (const kind of [DestKind.Multicast, DestKind.Anycast] as const) {
                if (!rng.chance(0.5)) continue;
                seq++;
                sent.push({ g, src, seq, kind });
                net.node(src)?.sendDatagram({
                  _tag: "Datagram",
                  header: { src, srcPort: 1, dst: g, dstPort: 2, dstKind: kind, ttl: 64 },
                  payload: payload(src, seq),
                });
              }
            }
          }
          net.sim.runFor(300);
          packets += sent.length;
          for (const s of sent) {
            const id = `${s.g}:${s.src}:${s.seq}`;
            const set = members.get(s.g) as Set<number>;
            if (s.kind === DestKind.Multicast) {
              for (const node of topo.ids) {
                const copies = got.get(`${node}|${id}`) ?? 0;
                expect(copies, `${label}: node ${node} (member: ${set.has(node)}) copies of ${id}`).toBe(
                  set.has(node) ? 1 : 0,
                );
              }
            } else {
              const d = hops(net, s.src);
              const reachable = [...set].filter((m) => d.has(m));
              const best = Math.min(...reachable.map((m) => d.get(m) as number));
              const nearest = reachable.filter((m) => d.get(m) === best);
              const at = topo.ids.filter((node) => (got.get(`${node}|${id}`) ?? 0) > 0);
              expect(at.length, `${label}: anycast ${id} delivered at ${at}`).toBe(
                reachable.length > 0 ? 1 : 0,
              );
              if (at.length === 1) {
                expect(nearest, `${label}: anycast ${id} went to ${at[0]}`).toContain(at[0]);
                expect(got.get(`${at[0]}|${id}`)).toBe(1);
              }
            }
          }
        };
        round("initial groups");
        // membership changes: some leave, some join; once flooded the property holds again
        for (const [g, set] of members) {
          for (const id of topo.ids) {
            if (!rng.chance(0.2)) continue;
            if (set.has(id)) {
              set.delete(id);
              net.node(id)?.leave(g);
            } else {
              set.add(id);
              net.node(id)?.join(g);
            }
          }
        }
        expect(runToQuiescence(net, net.sim.now + 2_000)).toBeDefined();
        round("after joins and leaves");
      },
      { startSeed: 40_001 },
    );
    expect(packets).toBeGreaterThan(0);
  });
});
