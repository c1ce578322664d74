/**
 * The spines-node daemon runs `OverlayNode` with `DAEMON_DEFAULTS` (apps/spines-node/src/daemon.ts).
 * These sweeps run exactly that object, so every default the daemon uses is one a simulation ran:
 * a stream across a lossy diamond whose transit node crashes mid-stream, and a stream between two
 * ports of one node (the loopback path) beside it, with the harness invariants (every byte once and
 * in order, every buffer within its bound) checked after every event. A failure names its seed.
 */
import { defaultLinkConfig } from "@spines-ts/link-arq";
import { forEachSeed, Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { defaultSessionConfig } from "@spines-ts/session";
import { describe, expect, it } from "vitest";
import { DAEMON_DEFAULTS, type OverlayNode } from "../src/index.ts";
import { addInvariants, addOverlayNodes, makeStream, randomLink, startStreams } from "./harness.ts";

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
const IDS = [A, B, C, D];

const SEEDS = Number(process.env.OVERLAY_DAEMON_SEEDS ?? 200);

const link = { ...defaultLinkConfig, ...DAEMON_DEFAULTS.link };
const session = { ...defaultSessionConfig, ...DAEMON_DEFAULTS.session };
/**
 * After the crash the stream must finish within: the link dead timeout, a routing convergence
 * allowance, two maximal RTOs (a timer backed off while the path was broken, then one more round),
 * and the time the rest of the stream needs on a healthy path.
 */
const BOUND_MS = link.deadTimeoutMs + 500 + 2 * session.maxRtoMs + 2500;

interface Result {
  crashedAt: number;
  finishedAt: number;
  rerouted: boolean;
}

function run(seed: number): Result {
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
  // A session between two ports of node A: the loopback path, at the same time.
  const local = makeStream(
    seed,
    1,
    A,
    A,
    5_000 + rng.int(30_000),
    rng.int(10_000),
    rng.pick([0, 1, 2] as const),
  );
  const streams = [st, local];
  addOverlayNodes(sim, IDS, EDGES, streams, DAEMON_DEFAULTS);
  for (const [x, y] of EDGES) sim.connect(x, y, randomLink(rng, 0.05));
  addInvariants(sim, IDS, streams);
  startStreams(sim, rng, streams, 1500);

  const crashAtBytes = Math.floor(st.c.out.length * rng.uniform(0.05, 0.9));
  let crashedAt = -1;
  let victim = -1;
  st.s.onBytes = (side) => {
    if (crashedAt >= 0 || side.received < crashAtBytes) return;
    crashedAt = Number.POSITIVE_INFINITY;
    sim.after(0, (s) => {
      const hop = s.program<OverlayNode>(A)?.nextHop(D);
      victim = hop === B || hop === C ? hop : rng.chance(0.5) ? B : C;
      crashedAt = s.now;
      s.crash(victim);
    });
  };
  const done = sim.runUntil(() => st.c.done && st.s.done && local.c.done && local.s.done, 120_000);
  if (!done) {
    throw new Error(
      `seed ${seed}: streams not finished by ${sim.now} ms (crash of ${victim} at ${crashedAt}; ` +
        `remote ${st.s.received}/${st.c.out.length}, local ${local.s.received}/${local.c.out.length})`,
    );
  }
  const finishedAt = Math.max(st.c.closedAt ?? 0, st.s.closedAt ?? 0);
  // Let the crash be noticed (the stream may finish first: acks can avoid the victim) and routing
  // converge, then the status snapshots must agree: the surviving link is up, the dead one is not,
  // and the route to D avoids the victim.
  sim.run(Math.max(sim.now, crashedAt + link.deadTimeoutMs + 500));
  const a = sim.program<OverlayNode>(A) as OverlayNode;
  const other = victim === B ? C : B;
  const links = new Map(a.linkStatus().map((l) => [l.neighbor, l.state]));
  expect(links.get(other), `seed ${seed}: link A-${other}`).toBe("up");
  expect(links.get(victim), `seed ${seed}: link A-${victim}`).not.toBe("up");
  const route = a.routes().find((r) => r.dst === D);
  expect(route?.path?.includes(victim) ?? true, `seed ${seed}: route to D avoids ${victim}`).toBe(false);
  expect(a.counters.decodeErrors, `seed ${seed}`).toBe(0);
  expect(a.sessionCounters.malformed, `seed ${seed}`).toBe(0);
  return {
    crashedAt,
    finishedAt,
    rerouted: a.nextHop(D) === other,
  };
}

describe("DAEMON_DEFAULTS: the daemon's exact settings in netsim", () => {
  it("are the settings the daemon documents (session and link ack frequency, RTO floor, mss)", () => {
    expect(DAEMON_DEFAULTS.session).toEqual({ minRtoMs: 250, ackEvery: 16, ackDelayMs: 20, mss: 1300 });
    expect(DAEMON_DEFAULTS.coalesceWrites).toBe(true);
    expect(DAEMON_DEFAULTS.link).toEqual({ ackEvery: 8 });
    expect(Object.isFrozen(DAEMON_DEFAULTS)).toBe(true);
  });

  it(`${SEEDS} seeds: lossy diamond, transit crash mid-stream, plus a loopback session`, () => {
    let worst = 0;
    let rerouted = 0;
    let runs = 0;
    forEachSeed(SEEDS, (seed) => {
      runs++;
      const r = run(seed);
      expect(Number.isFinite(r.crashedAt) && r.crashedAt > 0, `seed ${seed}: crashed mid-stream`).toBe(true);
      const after = r.finishedAt - r.crashedAt;
      worst = Math.max(worst, after);
      expect(
        after,
        `seed ${seed}: finished ${after} ms after the crash (bound ${BOUND_MS})`,
      ).toBeLessThanOrEqual(BOUND_MS);
      if (r.rerouted) rerouted++;
    });
    expect(rerouted).toBe(runs);
    console.log(
      `daemon defaults: worst finish ${Math.round(worst)} ms after the crash (bound ${BOUND_MS} ms)`,
    );
  });
});
