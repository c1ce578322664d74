import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { type NodeId, Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { OverlayNode } from "../src/index.ts";
import { edgeKey, LINK, randomLink } from "./harness.ts";

const SEEDS = Number(process.env.OVERLAY_MCAST_SEEDS ?? 200);
const GROUP = 0xe0000007;

describe("multicast through the plane (netsim)", () => {
  it(`${SEEDS} seeds, 5-10 nodes: every member gets every packet exactly once, non-members none`, () => {
    let copies = 0;
    forEachSeed(SEEDS, (seed) => {
      const rng = new Rng(seed);
      const sim = new Simulator({ seed, traceCapacity: 200 });
      const n = 5 + rng.int(6);
      const ids = Array.from({ length: n }, (_, i) => i + 1);
      const edges: [NodeId, NodeId][] = [];
      const have = new Set<string>();
      const add = (a: NodeId, b: NodeId): void => {
        if (a !== b && !have.has(edgeKey(a, b))) {
          have.add(edgeKey(a, b));
          edges.push([a, b]);
        }
      };
      for (let i = 2; i <= n; i++) add(i, 1 + rng.int(i - 1));
      for (let k = rng.int(n); k > 0; k--) add(1 + rng.int(n), 1 + rng.int(n));
      const members = new Set(ids.filter(() => rng.chance(0.5)));
      const source = rng.pick(ids);
      const count = 20 + rng.int(80);
      // got.get(node)[i]: copies of packet i delivered at node.
      const got = new Map<NodeId, number[]>(ids.map((id) => [id, new Array<number>(count).fill(0)]));
      let violation: string | undefined;
      for (const id of ids) {
        const neighbors = edges.flatMap(([a, b]) => (a === id ? [b] : b === id ? [a] : []));
        sim.addNode(
          id,
          OverlayNode.factory(
            {
              neighbors,
              link: LINK,
              onMulticast: (m, node) => {
                const i = (m.data[0] as number) | ((m.data[1] as number) << 8);
                const row = got.get(node.id) as number[];
                if (m.group !== GROUP || m.src !== source || m.port !== 9 || i >= count) {
                  violation ??= `node ${node.id}: unexpected packet ${JSON.stringify({ ...m, data: i })}`;
                  return;
                }
                if (!members.has(node.id)) violation ??= `non-member ${node.id} got packet ${i}`;
                row[i] = (row[i] as number) + 1;
                if ((row[i] as number) > 1) violation ??= `node ${node.id} got packet ${i} twice`;
                for (let k = 2; k < m.data.length; k++)
                  if (m.data[k] !== ((i + k) & 0xff)) violation ??= `packet ${i} corrupted at ${node.id}`;
              },
            },
            (node) => {
              if (members.has(id)) node.join(GROUP);
            },
          ),
        );
      }
      for (const [a, b] of edges) sim.connect(a, b, randomLink(rng, 0.05));
      sim.addInvariant("multicast exactly once to members only", () => violation);
      // After the group state has flooded, the source sends paced packets on the reliable channel.
      const gap = rng.uniform(1, 10);
      for (let i = 0; i < count; i++) {
        sim.at(1500 + i * gap, (s) => {
          const data = new Uint8Array(2 + rng.int(1000)).map((_, k) => (i + k) & 0xff);
          data[0] = i & 0xff;
          data[1] = i >> 8;
          s.program<OverlayNode>(source)?.sendMulticast(GROUP, 9, data, { srcPort: 5 });
        });
      }
      sim.run(1500 + count * gap + 3000);
      for (const id of ids) {
        const row = got.get(id) as number[];
        const sum = row.reduce((x, y) => x + y, 0);
        copies += sum;
        if (members.has(id))
          expect(
            row.every((c) => c === 1),
            `seed ${seed}: member ${id} got ${sum} of ${count}`,
          ).toBe(true);
        else expect(sum, `seed ${seed}: non-member ${id}`).toBe(0);
      }
    });
    expect(copies).toBeGreaterThan(0);
  });
});
