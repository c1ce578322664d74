import { forEachSeed } from "@spines-ts/netsim";
import { describe, expect, it } from "vitest";
import { randomPairOptions, runPair } from "./harness.ts";

function check(r: ReturnType<typeof runPair>, bytesAB: number, bytesBA: number, what: string): void {
  const { a, b, done } = r;
  if (!done) {
    throw new Error(
      `${what}: not finished by ${r.sim.now} ms: 1 got ${a.received}/${bytesAB}, 2 got ${b.received}/${bytesBA}, ` +
        `a info ${JSON.stringify(a.sid !== undefined && r.da.core.sessionIds().includes(a.sid) ? r.da.core.info(a.sid) : null)}, ` +
        `b info ${JSON.stringify(b.sid !== undefined && r.db.core.sessionIds().includes(b.sid) ? r.db.core.info(b.sid) : null)}`,
    );
  }
  expect(a.closeError, `${what}: a closed with error`).toBeUndefined();
  expect(b.closeError, `${what}: b closed with error`).toBeUndefined();
  expect(a.received, `${what}: bytes 2->1`).toBe(bytesAB);
  expect(b.received, `${what}: bytes 1->2`).toBe(bytesBA);
}

describe("reliable stream over a lossy, reordering, duplicating link (netsim)", () => {
  it("1,000 seeds: every byte once and in order both ways, buffers bounded, clean close", () => {
    let totalBytes = 0;
    let retransmitted = 0;
    forEachSeed(1000, (seed) => {
      const o = randomPairOptions(seed);
      const r = runPair(o);
      const { bytesAB, bytesBA, link } = o;
      check(r, bytesAB, bytesBA, `seed ${seed} ${JSON.stringify(link)}`);
      totalBytes += bytesAB + bytesBA;
      // after the linger both tables are empty
      r.sim.runFor(5000);
      expect(r.da.core.sessionCount + r.db.core.sessionCount).toBe(0);
      retransmitted += r.sim.stats.sent;
    });
    expect(totalBytes).toBeGreaterThan(10_000_000);
    expect(retransmitted).toBeGreaterThan(0);
  });

  it("a slow reader throttles the sender through the window (in flight never above the receive buffer)", () => {
    forEachSeed(50, (seed) => {
      const r = runPair({
        seed,
        link: { delayMs: 5, loss: 0.05 },
        bytesAB: 200_000,
        bytesBA: 0,
        slowReader: true,
        config: { receiveBufferBytes: 8192, sendBufferBytes: 16384, mss: 1000, initialRtoMs: 200 },
        maxMs: 600_000,
      });
      check(r, 200_000, 0, `seed ${seed}`);
    });
  });
});
