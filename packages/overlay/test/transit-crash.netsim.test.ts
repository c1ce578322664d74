import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import type { OverlayNode } from "../src/index.ts";
import {
  addInvariants,
  addOverlayNodes,
  DEAD_MS,
  MAX_RTO_MS,
  makeStream,
  randomLink,
  startStreams,
} from "./harness.ts";

const A = 1;
const B = 2;
const C = 3;
const D = 4;
const EDGES = [
  [A, B],
  [B, D],
  [A, C],
  [C, D],
  [B, C],
] as const;

/**
 * After the crash, the stream must finish within: the link dead timeout (the crash is noticed),
 * a routing convergence allowance, two maximal RTOs (a retransmission timer backed off while the
 * path was broken, then one more round for the open/fin exchange), plus the time the bytes still to
 * send need on a healthy path (bounded here by `TRANSFER_MS`; measured runs are well inside).
 */
const CONVERGENCE_MS = 500;
const TRANSFER_MS = 2500;
const SEEDS = Number(process.env.OVERLAY_SEEDS ?? 600);
const BOUND_MS = DEAD_MS + CONVERGENCE_MS + 2 * MAX_RTO_MS + TRANSFER_MS;

interface Result {
  crashedAt: number;
  victim: number;
  finishedAt: number;
  rerouted: boolean;
}

function runDiamond(seed: number): Result {
  const rng = new Rng(seed);
  const sim = new Simulator({ seed, traceCapacity: 200 });
  const linkType = rng.pick([0, 1, 1, 2] as const);
  const st = makeStream(
    seed,
    0,
    A,
    D,
    20_000 + rng.int(60_000),
    rng.chance(0.5) ? rng.int(20_000) : 0,
    linkType,
  );
  const ids = [A, B, C, D];
  addOverlayNodes(sim, ids, EDGES, [st]);
  for (const [x, y] of EDGES) sim.connect(x, y, randomLink(rng, 0.05));
  addInvariants(sim, ids, [st]);
  startStreams(sim, rng, [st], 300);

  // Crash the node A currently forwards to when D has received a random share of the stream.
  const crashAtBytes = Math.floor(st.c.out.length * rng.uniform(0.05, 0.9));
  let crashedAt = -1;
  let victim = -1;
  st.s.onBytes = (side) => {
    if (crashedAt >= 0 || side.received < crashAtBytes) return;
    crashedAt = Number.POSITIVE_INFINITY;
    sim.after(0, (s) => {
      const a = s.program<OverlayNode>(A);
      const hop = a?.nextHop(D);
      // The path always goes through B or C (A and D are not adjacent).
      victim = hop === B || hop === C ? hop : rng.chance(0.5) ? B : C;
      crashedAt = s.now;
      s.crash(victim);
    });
  };
  const done = sim.runUntil(() => st.c.done && st.s.done, 60_000);
  if (!done) {
    throw new Error(
      `seed ${seed}: stream not finished by ${sim.now} ms (crash of ${victim} at ${crashedAt}; ` +
        `client wrote ${st.c.written}/${st.c.out.length}, server got ${st.s.received}, client got ${st.c.received}/${st.c.expectIn.length})`,
    );
  }
  const a = sim.program<OverlayNode>(A);
  const other = victim === B ? C : B;
  return {
    crashedAt,
    victim,
    finishedAt: Math.max(st.c.closedAt ?? 0, st.s.closedAt ?? 0),
    rerouted: a?.nextHop(D) === other,
  };
}

describe("a session survives the crash of a transit node (links, routing and sessions in netsim)", () => {
  it(`${SEEDS} seeds, diamond A-B-D / A-C-D with B-C: crash the transit node on the path mid-stream`, () => {
    let worst = 0;
    let rerouted = 0;
    let runs = 0;
    forEachSeed(SEEDS, (seed) => {
      runs++;
      const r = runDiamond(seed);
      expect(r.crashedAt, `seed ${seed}: the crash happened mid-stream`).toBeGreaterThan(0);
      expect(Number.isFinite(r.crashedAt), `seed ${seed}`).toBe(true);
      const after = r.finishedAt - r.crashedAt;
      worst = Math.max(worst, after);
      expect(
        after,
        `seed ${seed}: finished ${after} ms after the crash (bound ${BOUND_MS})`,
      ).toBeLessThanOrEqual(BOUND_MS);
      if (r.rerouted) rerouted++;
    });
    // Every seed ends with A routing to D around the dead node.
    expect(rerouted).toBe(runs);
    console.log(`transit crash: worst finish ${Math.round(worst)} ms after the crash (bound ${BOUND_MS} ms)`);
  });
});
