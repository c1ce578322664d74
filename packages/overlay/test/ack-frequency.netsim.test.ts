/**
 * Acks per data frame on a bulk stream across two reliable links with the daemon's settings
 * (`DAEMON_DEFAULTS`, issue 10): each ack is a datagram, and the UDP send and receive are most of a
 * transit daemon's work. With link acks every 8 frames (or 2 ms) and session acks every 16
 * segments (or 5 ms), the transit node sent 0.19 link acks per frame it received in this run (hellos, the
 * stream's start and end and the 2 ms timer add some); with the link core's own default (every 2
 * frames) 0.54. Every byte still arrives once and in order.
 */
import { Simulator } from "@spines-ts/netsim";
import { Rng } from "@spines-ts/primitives";
import { describe, expect, it } from "vitest";
import { DAEMON_DEFAULTS, type OverlayNode } from "../src/index.ts";
import { addInvariants, addOverlayNodes, makeStream, startStreams } from "./harness.ts";

const BYTES = 4_000_000;

function run(link: Record<string, unknown>) {
  const sim = new Simulator({ seed: 3, traceCapacity: 50 });
  const st = makeStream(3, 0, 1, 3, BYTES, 0, 1);
  addOverlayNodes(
    sim,
    [1, 2, 3],
    [
      [1, 2],
      [2, 3],
    ],
    [st],
    {
      ...DAEMON_DEFAULTS,
      link: { ...DAEMON_DEFAULTS.link, ...link },
    },
  );
  for (const [x, y] of [
    [1, 2],
    [2, 3],
  ] as const)
    sim.connect(x, y, { delayMs: 2, bandwidthBps: 200e6 });
  addInvariants(sim, [1, 2, 3], [st]);
  startStreams(sim, new Rng(3), [st], 10);
  sim.runUntil(() => st.s.received >= BYTES && st.c.done, 60_000);
  const transit = sim.program<OverlayNode>(2);
  const up = transit?.plane.driver.link(1);
  const down = transit?.plane.driver.link(3);
  return {
    received: st.s.received,
    // link acks node 2 sent for the data frames node 1 sent it
    acksPerFrame: (up?.reliableIn.stats.acksSent ?? 0) / Math.max(1, up?.reliableIn.stats.received ?? 0),
    // datagrams node 2 sent per data frame it forwarded
    sentPerForward:
      ((up?.stats.framesOut ?? 0) + (down?.stats.framesOut ?? 0)) /
      Math.max(1, down?.reliable.stats.sent ?? 1),
  };
}

describe("ack frequency with DAEMON_DEFAULTS (netsim)", () => {
  it("a transit node sends under a quarter as many link acks as frames (over half with ackEvery 2)", () => {
    const daemon = run({});
    const every2 = run({ ackEvery: 2 });
    expect(daemon.received).toBe(BYTES);
    expect(every2.received).toBe(BYTES);
    expect(daemon.acksPerFrame).toBeLessThanOrEqual(0.25);
    expect(every2.acksPerFrame).toBeGreaterThanOrEqual(0.45);
    expect(daemon.sentPerForward).toBeLessThan(every2.sentPerForward - 0.25);
  });
});
